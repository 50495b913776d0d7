"""`intake digests` lists what went to the office; no empty note follows a digest the same day."""
from __future__ import annotations

import json

from tests.support import builders as b
from tests.support.harness import Harness

OFFICE = "changping@example.test"
DAY = "2026-11-21"


def _world(dovecot, smtp, mailbox_user, db_url, tmp_path) -> Harness:
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path)
    world.deliver(b.mail(sender="zw@example.test", attachments=[
        ("张伟+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))
    assert world.cli("poll").returncode == 0
    return world


def test_no_empty_note_after_the_days_digest(dovecot, smtp, mailbox_user, sqlite_url, tmp_path,
                                             env_password):
    world = _world(dovecot, smtp, mailbox_user, sqlite_url, tmp_path)
    first = world.cli("digest", "--date", DAY)
    assert "报送 1 个登记" in first.stdout, first.stdout + first.stderr
    later = world.cli("digest", "--scheduled", "--date", DAY)
    assert later.returncode == 0, later.stderr
    assert "今天的汇总 1 发出后，没有新的材料齐全的登记" in later.stdout
    [only] = world.smtp.to(OFFICE)
    assert "无新增" not in only.message["Subject"]
    # Another day with nothing new still gets its short note (digest.send_empty = true).
    next_day = world.cli("digest", "--date", "2026-11-22")
    assert next_day.returncode == 0 and len(world.smtp.to(OFFICE)) == 2
    assert "无新增" in world.smtp.to(OFFICE)[-1].message["Subject"]


def test_intake_digests_lists_date_parts_recipients_cases_and_status(
        dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    world = _world(dovecot, smtp, mailbox_user, db_url, tmp_path)
    empty = world.cli("digests")
    assert empty.returncode == 0 and "还没有汇总" in empty.stdout
    assert world.cli("digest", "--scheduled", "--date", DAY).returncode == 0

    listed = world.cli("digests", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["date"] == DAY and row["parts"] == 1 and row["cases"] == 1
    assert row["recipients"] == [OFFICE, "staff@example.test"]
    assert row["status"] == "sent" and row["scheduled"] and row["sent_at"].endswith("+08:00")
    text = world.cli("digests").stdout
    assert f"汇总 {row['id']}（{DAY}）" in text and "报送 1 个登记" in text and "；已发送" in text
    # The message that points to `intake digests` points to a command that exists.
    missing = world.cli("digest", "--resend", "99")
    assert missing.returncode == 1 and "`intake digests` 列出全部汇总" in missing.stderr
