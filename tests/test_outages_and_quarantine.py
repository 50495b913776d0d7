"""What goes wrong in a real mailbox's life: IMAP drops and restarts, missing folders, an
unreachable database, a mail that keeps failing; and what the logs may never contain."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from tests.support import builders as b
from tests.support.harness import Harness, body_text

STUDENT = "zhangwei@example.test"


# These worlds run on SQLite only.
pytestmark = pytest.mark.sqlite_only


def _submission(sender=STUDENT, name="张伟"):
    return b.mail(sender=sender, subject=f"{name}+物理系+健康宝弹窗",
                  attachments=[("a.zip", b.utf8_zip(b.five_pictures()))])


def test_a_mail_failing_three_times_is_quarantined_then_replayed(world):
    world.deliver(_submission())
    for _ in range(3):
        result = world.cli("poll", env={"INTAKE_FAILPOINTS": "processing=raise"})
        assert result.returncode == 0, result.stderr
    assert world.smtp.messages == []
    held = [m for m in world.mails() if m.outcome == "quarantined"]
    assert len(held) == 2  # the harness's set-up notice and the submission
    mail = held[-1]
    assert mail.attempts == 3 and "InjectedFault" in mail.error
    listing = world.cli("quarantine")
    assert f"邮件 {mail.id} " in listing.stdout and "InjectedFault" in listing.stdout

    assert world.cli("poll").returncode == 0  # quarantined mail is not retried by itself
    assert world.smtp.messages == []
    replayed = world.cli("replay", str(mail.id))
    assert replayed.returncode == 0, replayed.stderr
    assert "提交材料" in replayed.stdout
    assert len(world.replies_to(STUDENT)) == 1
    again = world.cli("replay", str(mail.id))
    assert again.returncode == 1 and "已经处理过" in again.stderr
    assert f"邮件 {mail.id} " not in world.cli("quarantine").stdout


def test_a_failure_is_retried_on_the_next_poll(world):
    world.deliver(_submission())
    world.cli("poll", env={"INTAKE_FAILPOINTS": "processing=raise@2"})  # @1 is the set-up notice
    assert world.smtp.messages == []
    world.cli("poll")
    assert len(world.replies_to(STUDENT)) == 1
    assert [m.attempts for m in world.mails() if m.outcome == "submission"] == [1]


def test_a_mail_failing_after_opening_its_case_leaves_no_trace_for_the_next(world, monkeypatch):
    # Two submissions of one student, processed together: the first fails after it opened the
    # case, so the case is rolled back with it; the second must open it again, not use the
    # rolled-back one (nor think a reply was queued for the student).
    from intake.record import cases
    merge = cases.merge_items
    calls = []

    def fails_first(session, case, *args, **kwargs):
        calls.append(case.id)
        if len(calls) == 1:
            raise RuntimeError("disk hiccup")
        return merge(session, case, *args, **kwargs)

    monkeypatch.setattr(cases, "merge_items", fails_first)
    world.deliver(_submission())
    world.deliver(b.mail(sender=STUDENT, subject="张伟+物理系+健康宝弹窗",
                         attachments=[("b.zip", b.utf8_zip(b.five_pictures(skip=("核酸",))))]))
    world.poll()
    students = [m for m in world.mails() if m.outcome in {"failed", "submission", "follow-up"}]
    assert sorted((m.outcome, m.attempts) for m in students) == [("failed", 1), ("submission", 0)]
    [case] = world.cases()
    assert case.name == "张伟" and case.status == "incomplete"
    assert len(calls) == 2 and calls[1] == case.id
    [reply] = world.replies_to(STUDENT)
    assert "核酸" in body_text(reply.message)
    # The case's history holds what the second mail did, once, and nothing of the rolled-back try.
    assert _history(world, case.id) == Counter({"opened": 1, "item_received": 4, "reply_queued": 1})

    world.poll()  # the failed one again, now joining the case the second one opened
    assert sorted(m.outcome for m in world.mails() if m.id in {m.id for m in students}) == [
        "follow-up", "submission"]
    [case] = world.cases()
    assert case.status == "complete"
    assert len(world.replies_to(STUDENT)) == 2
    assert _history(world, case.id) == Counter({"opened": 1, "item_received": 5, "status": 1,
                                                "reply_queued": 2})


def _history(world, case_id: int) -> Counter:
    shown = world.cli("case", "show", str(case_id), "--json")
    assert shown.returncode == 0, shown.stderr
    return Counter(event["kind"] for event in json.loads(shown.stdout)["history"])


def test_a_case_another_worker_opens_meanwhile_is_joined_not_duplicated(world, monkeypatch):
    # The group's look-up finds no case for the student, and another worker opens it before the
    # group inserts its own: the insert conflicts, and the mails are processed one by one, the
    # student's joining the case the other worker opened.
    from intake.process import pipeline
    world.deliver(b.mail(sender=STUDENT, subject="张伟+物理系+健康宝弹窗",
                         attachments=[("a.zip", b.utf8_zip(b.five_pictures(skip=("核酸",))))]))
    world.poll()
    [case] = world.cases()
    look_up = pipeline.Known.look_up.__func__

    def misses_cases(cls, session, mails, now):
        known = look_up(cls, session, mails, now)
        known.cases = {identity: None for identity in known.cases}
        return known

    monkeypatch.setattr(pipeline.Known, "look_up", classmethod(misses_cases))
    world.deliver(_submission())
    world.deliver(_submission(sender="lisi@example.test", name="李四"))
    world.poll()
    assert sorted(m.outcome for m in world.mails() if m.sender in {STUDENT, "lisi@example.test"}
                  ) == ["follow-up", "submission", "submission"]
    cases = {c.name: c for c in world.cases()}
    assert set(cases) == {"张伟", "李四"} and cases["张伟"].id == case.id
    assert cases["张伟"].status == "complete" and cases["李四"].status == "complete"
    assert len(world.replies_to(STUDENT)) == 2 and len(world.replies_to("lisi@example.test")) == 1


def test_logs_of_a_full_run_carry_no_personal_data(world):
    body = f"老师好，我的身份证号 {b.FIXTURE_ID_NUMBER}，手机 {b.FIXTURE_PHONE}。"
    world.deliver(b.mail(sender=STUDENT, subject=f"张伟+物理系+健康宝弹窗 {b.FIXTURE_PHONE}", body=body,
                         attachments=[("张伟+物理系+健康宝弹窗.zip", b.windows_gbk_zip(b.five_pictures()))]))
    world.deliver(b.mail(sender=STUDENT, subject="张伟+物理系+健康宝弹窗",
                         attachments=[("a.zip", b"\x00corrupt" + b.FIXTURE_ID_NUMBER.encode())]))
    config = world.config.read_text() + '\n[logging]\nlevel = "DEBUG"\n'
    world.config.write_text(config)
    outputs = []
    for command in (["poll"], ["cases"], ["digest"], ["poll"]):
        result = world.cli(*command, env={"INTAKE_FAILPOINTS": ""})
        assert result.returncode == 0, result.stderr
        outputs.append(result.stderr)
    logs = "\n".join(outputs)
    assert "outcome=submission" in logs  # the logs are there, and at DEBUG
    for secret in (b.FIXTURE_ID_NUMBER, b.FIXTURE_PHONE, "张伟"):
        assert secret not in logs


def test_dropped_session_and_restarted_server(world, dovecot):
    app = world.app()
    try:
        world.deliver(_submission())
        app.poll_once()
        dovecot.kick(world.user)  # the provider drops the session between polls
        world.deliver(_submission(sender="lz@example.test", name="李喆"))
        report, _ = app.poll_once()
        assert report.ok and report.outcomes["submission"] == 1

        world.deliver(_submission(sender="wf@example.test", name="王芳"))
        dovecot.restart()
        report, _ = app.poll_once()
        assert report.ok and report.outcomes["submission"] == 1
    finally:
        app.close()
    assert sorted(m.recipients[0] for m in world.smtp.messages) == sorted(
        [STUDENT, "lz@example.test", "wf@example.test"])


def test_session_dropped_mid_poll_loses_nothing(world, dovecot):
    for index in range(12):
        world.deliver(_submission(sender=f"s{index}@example.test", name=f"学生{index}"))
    app = world.app()
    try:
        # The session is cut as the fifth mail is recorded.
        app.failpoint.call_at("recorded", 5, lambda: dovecot.kick(world.user))
        first, _ = app.poll_once()
        assert not first.ok and "IMAP" in first.errors[0]
        second, _ = app.poll_once()
        assert second.ok
    finally:
        app.close()
    assert first.outcomes["submission"] + second.outcomes["submission"] == 12
    assert sorted(len(world.replies_to(f"s{i}@example.test")) for i in range(12)) == [1] * 12


def test_missing_folder_is_reported_and_others_still_polled(world):
    world.config.write_text(world.config.read_text().replace('folders = ["INBOX", "Junk"]',
                                                             'folders = ["Nope", "INBOX"]'))
    world.deliver(_submission())
    result = world.cli("poll")
    assert result.returncode == 2  # a configuration error: the README's exit codes
    assert "the server has no folder 'Nope'; it has" in result.stderr
    assert len(world.replies_to(STUDENT)) == 1


def test_unreachable_database_marks_nothing_handled(world):
    world.deliver(_submission())
    good = world.config.read_text()
    broken = re.sub(r'url = "sqlite[^"]*"', 'url = "postgresql://nobody@127.0.0.1:1/none"', good)
    assert broken != good
    world.config.write_text(broken)
    result = world.cli("poll")
    assert result.returncode != 0
    assert "database" in result.stderr.lower()
    flags = world.flags()
    assert all(b"$JkbIntake" not in f for f in flags.values())
    world.config.write_text(good)
    assert world.cli("poll").returncode == 0
    assert len(world.replies_to(STUDENT)) == 1


def test_locked_database_fails_the_poll_cleanly(dovecot, smtp, mailbox_user, tmp_path, env_password):
    import sqlite3
    url = f"sqlite:///{tmp_path}/intake.db"
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=url, tmp_path=tmp_path)
    world.config.write_text(world.config.read_text().replace(
        f'url = "{url}"', f'url = "{url}"\nbusy_timeout_seconds = 1'))
    assert world.cli("cases").returncode == 0  # creates the schema
    world.deliver(_submission())
    other = sqlite3.connect(tmp_path / "intake.db")
    other.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        result = world.cli("poll")
    finally:
        other.rollback()
        other.close()
    assert result.returncode == 1
    assert "database" in result.stderr.lower()
    assert all(b"$JkbIntake" not in f for f in world.flags().values())
    assert world.smtp.messages == []
    assert world.cli("poll").returncode == 0
    assert len(world.replies_to(STUDENT)) == 1


def test_a_pending_mail_another_worker_is_finishing_is_left_to_it(world):
    # Two submissions recorded by a worker that then died before finishing them. One is held by
    # a worker still running on this host (reading its pictures): the next poll leaves it alone
    # until that worker is gone. The other's holder runs on another host, and its hold lapsed:
    # the next poll finishes it at once.
    import socket
    import subprocess
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from intake.models import Mail

    world.deliver(_submission())
    world.deliver(_submission(sender="lisi@example.test", name="李四"))
    killed = world.cli("poll", env={"INTAKE_FAILPOINTS": "recorded=kill@2"})
    assert killed.returncode == -9, killed.stderr
    pending = [m for m in world.mails() if m.outcome == "pending"]
    assert len(pending) == 3  # with the mailbox's welcome mail
    first, second = pending[-2:]
    still_reading = subprocess.Popen(["sleep", "60"])
    now = datetime.now(timezone.utc)
    app = world.app()
    try:
        with app.sessions.begin() as session:
            session.execute(update(Mail).where(Mail.id == first.id).values(
                held_by=f"{socket.gethostname()}~{still_reading.pid}",
                held_until=now + timedelta(minutes=1)))
            session.execute(update(Mail).where(Mail.id == second.id).values(
                held_by="another-host~4242", held_until=now - timedelta(seconds=1)))
    finally:
        app.close()
    try:
        world.poll()
        outcomes = {m.id: m.outcome for m in world.mails()}
        assert outcomes[first.id] == "pending" and outcomes[second.id] == "submission"
        assert len(world.smtp.messages) == 1
    finally:
        still_reading.kill()
        still_reading.wait()
    world.poll()  # its holder is gone: now it is this worker's to finish
    assert {m.id: m.outcome for m in world.mails()}[first.id] == "submission"
    assert len(world.replies_to(STUDENT)) == 1 and len(world.replies_to("lisi@example.test")) == 1
