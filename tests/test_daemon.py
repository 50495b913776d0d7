"""`intake run`: the schedule (driven by an injected clock) and the real process."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from intake.daemon import Daemon, digest_due, digest_trigger
from tests.support import builders as b
from tests.support.harness import Clock, Harness

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_digest_fires_at_the_configured_time_in_shanghai():
    trigger = digest_trigger("17:00", SHANGHAI)
    before = datetime(2026, 11, 21, 8, 59, tzinfo=timezone.utc)  # 16:59 in Shanghai
    fire = trigger.get_next_fire_time(None, before)
    assert fire == datetime(2026, 11, 21, 17, 0, tzinfo=SHANGHAI)
    assert fire.astimezone(timezone.utc) == datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)
    after = datetime(2026, 11, 21, 9, 0, 1, tzinfo=timezone.utc)
    assert trigger.get_next_fire_time(fire, after) == datetime(2026, 11, 22, 17, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize("local,made,due", [
    ((2026, 11, 21, 16, 59), False, False),
    ((2026, 11, 21, 17, 0), False, True),
    ((2026, 11, 21, 23, 30), False, True),
    ((2026, 11, 21, 23, 30), True, False),
])
def test_a_missed_digest_is_caught_up_once(local, made, due):
    now = datetime(*local, tzinfo=SHANGHAI).astimezone(timezone.utc)
    assert digest_due(now, "17:00", SHANGHAI, made) is due


def test_scheduler_jobs_never_overlap_and_coalesce(dovecot, smtp, mailbox_user, sqlite_url, tmp_path,
                                                   env_password):
    clock = Clock(datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc))
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                    tmp_path=tmp_path, clock=clock)
    daemon = Daemon(world.app())
    try:
        scheduler = daemon.build_scheduler()
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"poll", "outbox", "digest", "purge"}
        for job in jobs.values():
            assert job.max_instances == 1 and job.coalesce is True
        digest = jobs["digest"].trigger.get_next_fire_time(None, clock())
        assert digest == datetime(2026, 11, 21, 17, 0, tzinfo=SHANGHAI)
    finally:
        daemon.app.close()


def test_catch_up_sends_todays_missed_digest_once(dovecot, smtp, mailbox_user, sqlite_url, tmp_path,
                                                  env_password):
    clock = Clock(datetime.now(timezone.utc))
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                    tmp_path=tmp_path, clock=clock)
    world.deliver(b.mail(sender="zw@example.test",
                         attachments=[("张伟+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    # The daemon starts at 20:00 Shanghai time, after the 17:00 digest it missed.
    local = clock.now.astimezone(SHANGHAI).replace(hour=20, minute=0)
    clock.now = local.astimezone(timezone.utc)
    for _ in range(2):  # started twice that evening: caught up once
        daemon = Daemon(world.app())
        try:
            daemon.catch_up()
        finally:
            daemon.app.close()
    assert len(world.smtp.to("changping@example.test")) == 1


def test_run_polls_replies_and_stops_cleanly_on_sigterm(dovecot, smtp, mailbox_user, sqlite_url,
                                                         tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                    tmp_path=tmp_path, extra_config='time = "00:00"\nsend_empty = false\n'
                    '[schedule]\npoll_seconds = 2\n')
    [process] = world.start_daemons(1)
    try:
        world.deliver(b.mail(sender="zw@example.test",
                             attachments=[("张伟+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))
        deadline = time.monotonic() + 60
        while not world.smtp.to("zw@example.test") and time.monotonic() < deadline:
            time.sleep(0.2)
        world.deliver(b.mail(sender="lz@example.test", subject="李喆+化学系+健康宝弹窗",
                             attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]))
        while not world.smtp.to("lz@example.test") and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        [err] = world.stop_daemons([process])
    assert process.returncode == 0, err
    assert len(world.smtp.to("zw@example.test")) == 1
    assert len(world.smtp.to("lz@example.test")) == 1
    assert "stopped" in err
    # One IMAP login for the whole run: the session is kept across polls.
    log = world.dovecot.log_text()
    assert log.count(f"imap-login: Info: Login: user=<{world.user}>") == 1
    # The IMAP ID command went out (NetEase refuses SELECT without it).
    assert f"imap({world.user})" in log and "ID sent: name=jkb-intake" in log


def test_run_loads_the_ocr_engine_once_at_start(dovecot, smtp, mailbox_user, sqlite_url, tmp_path,
                                                env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                    tmp_path=tmp_path, extra_config='send_empty = false\n[schedule]\npoll_seconds = 2\n'
                    '[pictures]\nread = true\n')
    [process] = world.start_daemons(1)
    try:
        for sender in ("zw@example.test", "lz@example.test"):
            world.deliver(b.mail(sender=sender, attachments=[
                (f"{sender[:2]}+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))
        deadline = time.monotonic() + 240
        while len(world.smtp.to("lz@example.test")) + len(world.smtp.to("zw@example.test")) < 2 \
                and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        [err] = world.stop_daemons([process])
    assert process.returncode == 0, err
    assert err.count("OCR engine loaded") == 1
    assert err.index("OCR engine loaded") < err.index("daemon started")
    # Plain colour pictures, nothing to read; both mails carry the same five: each is read once.
    assert err.count("read as unknown") == 5
    assert world.smtp.to("zw@example.test") and world.smtp.to("lz@example.test")
