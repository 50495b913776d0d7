"""`intake status` exit codes for healthy and unhealthy states."""
from __future__ import annotations

import json

import pytest

from tests.support import builders as b


# These worlds run on SQLite only.
pytestmark = pytest.mark.sqlite_only


def _submit(world, sender="zw@example.test"):
    world.deliver(b.mail(sender=sender, attachments=[("张伟+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))


def test_never_polled_needs_attention(world):
    result = world.cli("status")
    assert result.returncode == 1
    assert "需要处理：文件夹「INBOX」：还没有成功收过信" in result.stdout


def test_healthy_after_a_poll(world):
    _submit(world)
    assert world.cli("poll").returncode == 0
    result = world.cli("status")
    assert result.returncode == 0, result.stdout
    assert "一切正常" in result.stdout and "提交材料 1 封" in result.stdout
    data = json.loads(world.cli("status", "--json").stdout)
    assert data["cases"] == {"complete": 1} and data["outbox_pending"] == 0
    assert set(data["next_runs"]) == {"poll", "digest", "purge"}
    assert data["attention"] == []


def test_stale_poll_quarantine_and_failed_sends_need_attention(world):
    _submit(world)
    world.smtp.refuse_next("554 DT:SPM spam")
    world.cli("poll")
    result = world.cli("status")
    assert result.returncode == 1
    assert "发送失败、不再重试" in result.stdout
    _submit(world, sender="lz@example.test")
    for _ in range(3):
        world.cli("poll", env={"INTAKE_FAILPOINTS": "processing=raise"})
    result = world.cli("status")
    assert "需要处理：隔离邮件：1 封" in result.stdout
    stale = world.cli("status", "--stale-polls", "0")
    assert stale.returncode == 1 and "没有成功收信，上次是" in stale.stdout


def test_pictures_waiting_long_need_attention(world):
    """Pictures queued for reading that nobody reads (no daemon with readers running) show up."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import select

    from intake.models import Mail, PictureJob
    _submit(world)
    assert world.cli("poll").returncode == 0
    app = world.app()
    try:
        with app.sessions.begin() as session:
            mail_id = session.scalar(select(Mail.id).where(Mail.sender == "zw@example.test"))
            session.add(PictureJob(sha256="1" * 64, mail_id=mail_id, status="pending", attempts=0,
                                   created_at=datetime.now(timezone.utc) - timedelta(minutes=20)))
    finally:
        app.close()
    result = world.cli("status")
    assert result.returncode == 1
    assert "读图队列" in result.stdout and "1 张图片待读" in result.stdout
    assert "需要处理：读图：1 张图片排队" in result.stdout
    assert json.loads(world.cli("status", "--json").stdout)["pictures_waiting"] == 1
