"""One transaction is one transaction, on SQLite as on PostgreSQL: a dry run or a crash leaves no
digest behind, and a staff command waits for the daemon instead of failing."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

from tests.support import builders as b
from tests.support.dovecot import PASSWORD
from tests.support.harness import REPO, Harness

OFFICE = "changping@example.test"
DAY = "2026-11-21"
KILLED = -9


def _world(dovecot, smtp, user, db_url, tmp_path) -> Harness:
    return Harness(dovecot=dovecot, smtp=smtp, user=user, db_url=db_url, tmp_path=tmp_path)


def _submit(world: Harness, count: int, skip_every: int = 0) -> None:
    for index in range(count):
        skip = ("核酸",) if skip_every and index % skip_every == 0 else ()
        world.deliver(b.mail(sender=f"s{index}@example.test", subject=f"学生{index}+物理系+健康宝弹窗",
                             attachments=[("材料.zip", b.utf8_zip(b.five_pictures(skip=skip)))]))


def _forwarded_case_zips(world: Harness) -> Counter:
    """How many times each case's zip reached the office, over every digest part sent."""
    seen: Counter = Counter()
    for captured in world.smtp.messages:
        if OFFICE not in captured.recipients:
            continue
        for part in captured.message.iter_attachments():
            name = part.get_filename() or ""
            if name.endswith("+健康宝弹窗.zip"):
                seen[name] += 1
    return seen


def _complete_cases(world: Harness) -> list[dict]:
    return [case for case in world.cases_json() if case["status"] == "complete"]


def test_a_dry_run_of_the_scheduled_digest_leaves_the_real_one_to_happen(
        dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    world = _world(dovecot, smtp, mailbox_user, db_url, tmp_path)
    _submit(world, 4, skip_every=3)
    assert world.cli("poll").returncode == 0
    world.smtp.clear()

    dry = world.cli("digest", "--dry-run", "--scheduled", "--date", DAY,
                    "--out", str(tmp_path / "preview"))
    assert dry.returncode == 0, dry.stderr
    assert "试运行：报送 2 个登记" in dry.stdout
    assert world.smtp.messages == []

    real = world.cli("digest", "--scheduled", "--date", DAY)
    assert real.returncode == 0, real.stderr
    assert "未生成汇总" not in real.stdout, real.stdout
    complete = _complete_cases(world)
    assert len(complete) == 2
    sent = _forwarded_case_zips(world)
    assert len(sent) == 2 and set(sent.values()) == {1}
    assert None not in {case["digest_id"] for case in complete}

    again = world.cli("digest", "--scheduled", "--date", DAY)
    assert "已经生成过" in again.stdout
    assert set(_forwarded_case_zips(world).values()) == {1}


def test_a_kill_before_the_digest_commits_then_a_rerun_sends_once(
        dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    world = _world(dovecot, smtp, mailbox_user, db_url, tmp_path)
    _submit(world, 3)
    assert world.cli("poll").returncode == 0
    world.smtp.clear()

    killed = world.cli("digest", "--scheduled", "--date", DAY,
                       env={"INTAKE_FAILPOINTS": "digest.before-commit=kill@1"})
    assert killed.returncode == KILLED, killed.stderr
    assert world.smtp.messages == []
    assert {case["digest_id"] for case in world.cases_json()} == {None}

    rerun = world.cli("digest", "--scheduled", "--date", DAY)
    assert rerun.returncode == 0, rerun.stderr
    assert "汇总 " in rerun.stdout and "报送 3 个登记" in rerun.stdout, rerun.stdout
    assert world.cli("digest", "--scheduled", "--date", DAY).returncode == 0
    assert world.cli("poll").returncode == 0
    sent = _forwarded_case_zips(world)
    assert len(sent) == 3 and set(sent.values()) == {1}


def test_staff_commands_wait_for_a_poll_that_is_writing(
        dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    world = _world(dovecot, smtp, mailbox_user, db_url, tmp_path)
    _submit(world, 1)
    assert world.cli("poll").returncode == 0
    [case] = world.cases_json()
    for index in range(100):
        world.deliver(b.mail(sender=f"p{index}@example.test", subject=f"同学{index}+化学系+健康宝弹窗",
                             attachments=[("材料.zip", b.utf8_zip(b.five_pictures()))]))

    # The poll lingers a little after each mail (as fetching the next one does over a real
    # network), so that the staff commands surely meet it in the middle of its work, however
    # fast the machine.
    env = {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": PASSWORD, "INTAKE_FAILPOINTS": "processed=pause"}
    poll = subprocess.Popen([sys.executable, "-m", "intake", "--config", str(world.config), "poll"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    results, while_polling = [], 0
    try:
        time.sleep(1)  # the poll is past start-up and recording mail
        while poll.poll() is None and len(results) < 12:
            for command in (("note", str(case["id"]), f"checked {len(results)}"),
                            ("hold", str(case["id"]), "--reason", "phone call"),
                            ("release", str(case["id"]))):
                results.append(world.cli("case", *command, "--by", "desk"))
                while_polling += poll.poll() is None
    finally:
        _, err = poll.communicate(timeout=600)
    assert poll.returncode == 0, err
    assert while_polling >= 2, "the poll finished before the staff commands ran"
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "locked" not in result.stderr
    assert len(world.cases_json()) == 101
