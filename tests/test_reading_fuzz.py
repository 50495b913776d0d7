"""Random drawn 核酸 pages through the real OCR engine (issue 25): whatever the result, the time
format, the order of the records and the layout noise, a case is never forwarded with a result
or a sampling time other than the drawn one. Held for staff is an acceptable outcome; a wrong
fact is not.

The engine reads all 200 pages (once per session, small pages to keep it affordable); the facts
and rules run on its output, as the daemon runs them; a handful go end to end through
`intake poll` and the digest."""
from __future__ import annotations

import random
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from checks.content_rules import POSITIVE, clear, judge
from checks.facts import read_facts
from tests.support import builders as b
from tests.support import drawn

BEIJING = ZoneInfo("Asia/Shanghai")
PAGES = 200
END_TO_END = 4


@pytest.fixture(scope="module")
def pages() -> list[drawn.DrawnPage]:
    rng = random.Random(25)
    return [drawn.random_nucleic_page(rng, BEIJING) for _ in range(PAGES)]


def picture(page: drawn.DrawnPage) -> bytes:
    return drawn.jpeg(page.image, quality=75)


def mailed(page: drawn.DrawnPage):
    return page.queried + timedelta(minutes=30)


def describe(page: drawn.DrawnPage, facts: dict) -> str:
    return (f"drawn {page.result} {page.sampled:%Y-%m-%d %H:%M} ({page.how}, "
            f"{'newest' if page.newest_first else 'oldest'} first), read {facts}")


@pytest.mark.slow
def test_random_pages_are_never_forwarded_with_a_wrong_result_or_time(picture_reader, pages):
    wrong, held, false_alarms = [], 0, []
    for page in pages:
        facts = read_facts(picture_reader.read(picture(page)), BEIJING, mailed(page))
        judgement = judge({"核酸": facts}, "张伟", mailed(page), 48)
        forwarded = judgement.blocked is None and not judgement.too_old
        if not forwarded:
            held += 1
            if judgement.blocked == POSITIVE and page.result != "阳性":
                false_alarms.append(describe(page, facts))
            continue
        if (clear(facts, "result"), judgement.sampled_at) != (page.result, page.sampled):
            wrong.append(describe(page, facts))
    assert wrong == [], "\n".join(wrong)
    assert false_alarms == [], "\n".join(false_alarms)
    # Useful, not merely cautious: the drawn pages are clean enough to read most of.
    assert held <= PAGES * 0.2 + sum(page.result == "阳性" for page in pages), held


# These worlds run on SQLite only.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def world_options(clock, picture_reader):
    return {"clock": clock, "reader": picture_reader}


@pytest.mark.slow
def test_a_handful_end_to_end_forward_only_what_was_drawn(world, pages):
    chosen = pages[:END_TO_END]
    for number, page in enumerate(chosen):
        world.clock.now = mailed(page)
        files = drawn.five(page.sampled)
        del files["核酸.png"]
        files["核酸.jpg"] = picture(page)
        world.deliver(b.mail(sender=f"s{number}@example.test", attachments=[
            (f"学生{number}+物理系+健康宝弹窗.zip", b.utf8_zip(files))]))
        world.poll()
        app = world.app()
        try:
            app.digests.run()
            app.drain()
        finally:
            app.close()
    cases = {case["sender"]: case for case in world.cases_json()}
    for number, page in enumerate(chosen):
        case = cases[f"s{number}@example.test"]
        facts = case["facts"]["核酸"]
        if case["digest_id"] is not None:
            assert facts["result"] == page.result == "阴性", describe(page, facts)
            assert facts["sampled_at"] == page.sampled.isoformat(), describe(page, facts)
        else:
            assert case["status"] in ("held", "incomplete"), case
