"""SIGKILL at every interesting point of `intake poll` and `intake digest`, restart, and check that
nothing was lost and nothing was done twice."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from tests.support import builders as b
from tests.support.dovecot import PASSWORD
from tests.support.harness import REPO, Harness

KILLED = -9

# (failpoint, nth time it is reached): before/after storing the raw mail, mid-transaction, after
# commit before the server keyword, after the keyword, before SMTP DATA, after the server accepted.
POLL_KILLS = [
    ("raw-stored", 1), ("recorded", 3), ("processing", 5), ("processed", 8), ("keyword-set", 13),
    ("raw-stored", 7), ("processing", 7), ("recorded", 7), ("processed", 7), ("keyword-set", 7),
    # The mail still in the box is handled in the next run, which then dies while sending.
    ("send.before", 2), ("send.after-accept", 11), ("send.before", 30),
]


def _intake(world, *args, failpoints=""):
    env = {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": PASSWORD, "INTAKE_FAILPOINTS": failpoints}
    return subprocess.run([sys.executable, "-m", "intake", "--config", str(world.config), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(params=[("sqlite", 200), ("postgresql", 130)], ids=["sqlite", "postgresql"])
def crashed_world(request, dovecot, smtp, mailbox_user, tmp_path, env_password):
    kind, count = request.param
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "db_url_pg")
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=url, tmp_path=tmp_path)
    for index in range(count):
        skip = ("核酸",) if index % 5 == 0 else ()
        world.deliver(b.mail(sender=f"s{index}@example.test", subject=f"学生{index}+物理系+健康宝弹窗",
                             attachments=[("材料.zip", b.utf8_zip(b.five_pictures(skip=skip)))]),
                      folder="Junk" if index % 7 == 0 else None)
    world.count = count
    return world


def test_poll_survives_sigkill_anywhere(crashed_world):
    world = crashed_world
    kills = 0
    for point, nth in POLL_KILLS:
        result = _intake(world, "poll", failpoints=f"{point}=kill@{nth}")
        assert result.returncode in (0, KILLED), result.stderr
        kills += result.returncode == KILLED
    assert kills >= 12  # nearly every point were really reached before the mailbox ran dry
    for _ in range(2):
        result = _intake(world, "poll")
        assert result.returncode == 0, result.stderr

    mails = [m for m in world.mails() if m.sender and m.sender.startswith("s")]
    locations = Counter((m.folder, m.uid) for m in world.mails())
    assert max(locations.values()) == 1
    assert Counter(m.outcome for m in mails) == Counter({"submission": world.count})

    per_student = Counter()
    ids_per_student: dict[str, set] = {}
    for captured in world.smtp.messages:
        [to] = captured.recipients
        per_student[to] += 1
        ids_per_student.setdefault(to, set()).add(captured.message["Message-ID"])
    assert set(per_student) == {f"s{i}@example.test" for i in range(world.count)}
    twice = [to for to, n in per_student.items() if n > 1]
    # The one window SMTP leaves: killed after the server accepted, before it was marked sent.
    # The repeat is the same message (same Message-ID), so clients show it once.
    assert len(twice) <= 1 and all(len(ids_per_student[to]) == 1 for to in twice)

    cases = world.cases_json()
    assert len(cases) == world.count
    for case in cases:
        index = int(case["sender"][1:].split("@")[0])
        assert case["missing"] == (["核酸"] if index % 5 == 0 else [])
    assert list(world.storage.rglob(".tmp-*")) == []
    assert all(row.status == "sent" for row in world.outbox())


def test_digest_survives_sigkill_anywhere(crashed_world):
    world = crashed_world
    assert _intake(world, "poll").returncode == 0
    world.smtp.clear()
    for point in ["digest.before-commit", "digest.after-commit", "send.before"]:
        result = _intake(world, "digest", failpoints=f"{point}=kill@1")
        assert result.returncode == KILLED, (point, result.stdout, result.stderr)
        assert world.smtp.messages == [] or point == "send.before"
    result = _intake(world, "digest", failpoints="send.after-accept=kill@1")
    assert result.returncode in (0, KILLED)
    for _ in range(2):
        assert _intake(world, "poll").returncode == 0  # drains what the digest queued
    final = _intake(world, "digest")
    assert final.returncode == 0, final.stderr

    digests = [m for m in world.smtp.messages if "changping@example.test" in m.recipients]
    with_cases = [m for m in digests if "无新增" not in m.message["Subject"]]
    assert len({m.message["Message-ID"] for m in with_cases}) == 1
    complete = [c for c in world.cases_json() if c["status"] == "complete"]
    assert len({c["digest_id"] for c in complete}) == 1 and None not in {c["digest_id"] for c in complete}
    attached = [p.get_filename() for p in with_cases[0].message.iter_attachments()]
    assert sum(name.endswith("+健康宝弹窗.zip") for name in attached) == len(complete)
