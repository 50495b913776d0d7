"""The world of the end-to-end reading tests: the real OCR engine, the day after the drawn
pictures were taken, a student sending them zipped."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support import builders as b
from tests.support.harness import body_text

BEIJING = ZoneInfo("Asia/Shanghai")
SAMPLED = datetime(2026, 11, 21, 14, 5, tzinfo=BEIJING)
STUDENT = "zhangwei@example.test"
STAFF = "staff@example.test"
OFFICE = "changping@example.test"


@pytest.fixture
def world_options(clock, picture_reader):
    """A module's `world_options` (import it there): the pictures read by the real engine."""
    clock.now = SAMPLED + timedelta(hours=20)  # the day after the pictures were taken
    return {"clock": clock, "reader": picture_reader}


def send(world, files: dict[str, bytes]) -> None:
    world.deliver(b.mail(sender=STUDENT, attachments=[("张伟+物理系+健康宝弹窗.zip",
                                                       b.utf8_zip(files))]))
    world.poll()


def only_reply(world) -> tuple[str, str]:
    [reply] = world.replies_to(STUDENT)
    return reply.message["Subject"], body_text(reply.message)


def run_digest(world):
    """Run the digest and send it; its result and the HTML table of its first mail ("" if none)."""
    app = world.app()
    try:
        result = app.digests.run()
        app.drain()
    finally:
        app.close()
    digests = world.replies_to(OFFICE)
    table = digests[0].message.get_body(preferencelist=("html",)).get_content() if digests else ""
    return result, table
