"""Two `intake run` daemons on one PostgreSQL database and one mailbox."""
from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support import builders as b
from tests.support.harness import Harness

COUNT = 200


def test_two_daemons_handle_each_mail_once_and_send_one_digest(dovecot, smtp, mailbox_user, db_url_pg,
                                                                tmp_path, env_password):
    # The digest time is set two minutes ahead, so it fires while both daemons run.
    at = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(minutes=2)
    if at.hour == 0 and at.minute < 3:
        at += timedelta(minutes=5)  # not across midnight: the digest date would change under us
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url_pg, tmp_path=tmp_path,
                    extra_config=f'time = "{at:%H:%M}"\n[schedule]\npoll_seconds = 2\n')
    for index in range(COUNT):
        world.deliver(b.mail(sender=f"s{index}@example.test", subject=f"学生{index}+物理系+健康宝弹窗",
                             attachments=[("a.zip", b.utf8_zip(b.five_pictures(skip=("核酸",) if index % 4 == 0 else ())))]))
    daemons = world.start_daemons(2)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            digests = world.smtp.to("changping@example.test")
            if len({m.recipients[0] for m in world.smtp.messages}) >= COUNT + 1 and digests:
                time.sleep(3)  # would a second digest or reply follow?
                break
            time.sleep(1)
    finally:
        errors = world.stop_daemons(daemons)
    assert [daemon.returncode for daemon in daemons] == [0, 0], errors

    replies = Counter(m.recipients[0] for m in world.smtp.messages if "changping@example.test" not in m.recipients)
    assert replies == Counter({f"s{i}@example.test": 1 for i in range(COUNT)})
    mails = world.mails()
    assert max(Counter((m.folder, m.uid) for m in mails).values()) == 1
    assert Counter(m.outcome for m in mails if m.outcome != "ignored-auto") == Counter({"submission": COUNT})
    [digest] = world.smtp.to("changping@example.test")
    zips = [p.get_filename() for p in digest.message.iter_attachments() if p.get_filename().endswith(".zip")]
    assert len(zips) == COUNT - COUNT // 4
    # Both daemons really worked: each logged handled mail.
    assert all("outcome=submission" in err for err in errors)
