"""Retention: old cases lose their materials and personal data; their rows and history stay."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from intake.models import Event, Mail, PictureJob
from tests.support import builders as b
from tests.support.harness import Clock, Harness


def test_purge_keeps_anonymous_history(dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    clock = Clock()
    clock.now -= timedelta(days=200)  # the first case is handled 200 days ago
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path,
                    clock=clock)
    world.deliver(b.mail(sender="old@example.test", subject="张伟+物理系+健康宝弹窗",
                         attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    clock.now += timedelta(days=200)
    world.deliver(b.mail(sender="new@example.test", subject="李喆+化学系+健康宝弹窗",
                         attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    old_case, new_case = world.cases()
    old_files = list((world.storage / "cases" / str(old_case.id)).iterdir())
    assert len(old_files) == 5

    app = world.app()
    try:
        from intake.ops.purge import purge
        with app.sessions.begin() as session:
            # What a worker read for a mail another worker then answered, left in the queue.
            old_mail = session.scalar(select(Mail.id).where(Mail.case_id == old_case.id))
            session.add(PictureJob(sha256="0" * 64, mail_id=old_mail, status="done", attempts=1,
                                   facts={"身份证号": "110101199003074518"},
                                   created_at=clock() - timedelta(days=200),
                                   read_at=clock() - timedelta(days=200)))
        report = purge(app.sessions, app.store, clock(), 180)
        with app.sessions() as session:
            events = session.scalars(select(Event).where(Event.case_id == old_case.id)).all()
            assert session.scalars(select(PictureJob)).all() == []
    finally:
        app.close()
    assert report.cases == 1 and report.files >= 6

    cases = {c["id"]: c for c in world.cases_json()}
    assert cases[old_case.id]["status"] == "complete"
    assert "张伟" not in cases[old_case.id]["name"] and "old@" not in cases[old_case.id]["sender"]
    assert cases[new_case.id]["name"] == "李喆"
    assert not (world.storage / "cases" / str(old_case.id)).exists()
    assert len(list((world.storage / "cases" / str(new_case.id)).iterdir())) == 5
    kinds = [event.kind for event in events]
    assert kinds[0] == "opened" and kinds[-1] == "purged" and "status" in kinds
    old_mails = [m for m in world.mails() if m.case_id == old_case.id]
    assert old_mails and all(m.raw_path is None and m.sender is None for m in old_mails)
    remaining = {p.name for p in (world.storage / "raw").rglob("*.eml")}
    assert all(m.raw_path.rsplit("/", 1)[1] in remaining for m in world.mails() if m.raw_path)
    for row in world.outbox():
        if row.case_id == old_case.id:
            assert row.raw == b"" and row.recipients == []

    again = world.cli("purge", "--older-than", "180")
    assert again.returncode == 0 and "已清理：0 个登记" in again.stdout
