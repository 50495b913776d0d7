"""Staff approve before anything is forwarded (the default), and get one reminder before the digest."""
from __future__ import annotations

import io
import json

from openpyxl import load_workbook

from tests.support import builders as b
from tests.support.harness import Harness, body_text, html_text
from tests.support.with_cases import ok, with_cases

OFFICE, STAFF = "changping@example.test", "staff@example.test"
DESK = "https://desk.example.test/jkb"


def _world(dovecot, smtp, mailbox_user, db_url, tmp_path, extra: str = "") -> Harness:
    # forward_unapproved=False: the product's own default, as an operator's config leaves it.
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path,
                    extra_config=extra, forward_unapproved=False)
    return with_cases(world, [("张伟", "物理系", "zw@example.test", ()),
                              ("王芳", "物理系", "wf@example.test", ())], zipped=b.utf8_zip)


def test_by_default_only_approved_cases_go_to_the_office(dovecot, smtp, mailbox_user, db_url,
                                                        tmp_path, env_password):
    world = _world(dovecot, smtp, mailbox_user, db_url, tmp_path)
    first = ok(world.cli("digest", "--date", "2026-11-21"))
    assert "2 个登记等待审核" in first
    [note] = world.smtp.to(OFFICE)
    assert not list(note.message.iter_attachments()), "nothing is forwarded before approval"
    assert "另有 2 人材料齐全，正在等待本系审核" in body_text(note.message)
    assert all(not case["digest_id"] for case in world.cases_json())

    ok(world.cli("case", "approve", str(world.ids["王芳"]), "--by", "老师乙"))
    ok(world.cli("digest", "--date", "2026-11-22"))
    digest = world.smtp.to(OFFICE)[1]
    text = body_text(digest.message)
    assert "王芳" in text and "张伟" not in text
    assert "老师乙" in text and "老师乙" in html_text(digest.message)
    assert "另有 1 人材料齐全，正在等待本系审核" in text
    register = next(part for part in digest.message.iter_attachments()
                    if part.get_filename().endswith(".xlsx"))
    book = load_workbook(io.BytesIO(register.get_content()))
    cells = {str(cell) for sheet in book.worksheets
             for row in sheet.iter_rows(values_only=True) for cell in row if cell is not None}
    assert "老师乙" in cells and "情况属实、同意解除健康宝异常" in cells
    forwarded = {c["name"]: c["digest_id"] for c in world.cases_json()}
    assert forwarded["王芳"] and not forwarded["张伟"]


def test_staff_get_one_reminder_listing_the_waiting_cases(dovecot, smtp, mailbox_user, db_url,
                                                         tmp_path, env_password):
    world = _world(dovecot, smtp, mailbox_user, db_url, tmp_path,
                   extra=f'[web]\npublic_url = "{DESK}"\n')
    assert "列出 2 个" in ok(world.cli("digest", "--remind", "--date", "2026-11-21"))
    [reminder] = world.smtp.to(STAFF)
    assert OFFICE not in reminder.recipients
    text = body_text(reminder.message)
    assert "张伟" in text and "王芳" in text and f"{DESK}/" in text
    assert f'href="{DESK}/cases/{world.ids["张伟"]}"' in html_text(reminder.message)
    ok(world.cli("digest", "--remind", "--date", "2026-11-21"))
    assert len(world.smtp.to(STAFF)) == 1, "one reminder a day"

    for name in ("张伟", "王芳"):
        ok(world.cli("case", "approve", str(world.ids[name]), "--by", "老师乙"))
    assert "没有等待审核的登记" in ok(world.cli("digest", "--remind", "--date", "2026-11-22"))
    assert len(world.smtp.to(STAFF)) == 1, "no reminder when nothing waits"


def test_the_daemon_reminds_an_hour_before_the_digest(dovecot, smtp, mailbox_user, sqlite_url,
                                                      tmp_path, env_password):
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from intake.daemon import Daemon
    from tests.support.harness import Clock
    clock = Clock(datetime(2026, 11, 21, 1, 0, tzinfo=timezone.utc))
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                    tmp_path=tmp_path, clock=clock, forward_unapproved=False)
    daemon = Daemon(world.app())
    try:
        jobs = {job.id: job for job in daemon.build_scheduler().get_jobs()}
        fires = jobs["remind"].trigger.get_next_fire_time(None, clock())
        assert fires == datetime(2026, 11, 21, 16, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    finally:
        daemon.app.close()


def test_the_example_config_asks_for_approval(tmp_path):
    from pathlib import Path

    from intake.settings import load_settings
    example = Path(__file__).resolve().parents[1] / "config" / "intake.example.toml"
    settings = load_settings(example)
    assert settings.digest.require_approval is True and settings.digest.remind_before == 60
    assert settings.department.opinion == "情况属实、同意解除健康宝异常"
    json.dumps(settings.model_dump(mode="json"))
