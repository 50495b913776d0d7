"""The desk with more cases than a page holds (issue 23): the queue pages by 50 and keeps its
counts; neither the queue nor a case page loads what was read twice or one case at a time."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from intake.settings import load_settings
from intake.app import build_desk
from tests.support import builders as b
from tests.support.harness import Clock, Harness
from tests.support.desk import add_account, signed_in

COUNT = 57


@pytest.fixture
def crowd(dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path)
    for index in range(COUNT):
        skip = ("核酸",) if index % 3 == 0 else ()
        world.deliver(b.mail(sender=f"s{index}@example.test", subject=f"学生{index}+物理系+健康宝弹窗",
                             attachments=[("a.zip", b.windows_gbk_zip(b.five_pictures(skip=skip)))]))
    world.poll()
    add_account(world, "admin", "admin")
    world.clock = Clock()
    world.web = build_desk(load_settings(world.config), clock=world.clock, testing=True)
    yield world
    world.web.extensions["desk"].engine.dispose()


def _statements(engine, action):
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return response, seen


def test_the_queue_pages_by_fifty_and_keeps_its_counts(crowd):
    browser = signed_in(crowd)
    engine = crowd.web.extensions["desk"].engine
    first, statements = _statements(engine, lambda: browser.get("/cases"))
    page = first.get_data(as_text=True)
    assert page.count('class="case-link"') == 50
    assert f'共 <b id="queue-total">{COUNT}</b> 条' in page and "第 1 / 2 页" in page
    incomplete = len(range(0, COUNT, 3))
    assert f"材料未齐 <b>{incomplete}</b>" in page and f"材料齐全 <b>{COUNT - incomplete}</b>" in page
    # A handful of queries whatever the number of cases: not one per case.
    assert len(statements) < 15, len(statements)
    assert sum(" reading" in s.lower() for s in statements) <= 1
    second = browser.get(re.search(r'id="page-next" href="([^"]+)"', page).group(1).replace("&amp;", "&"))
    rest = second.get_data(as_text=True)
    assert rest.count('class="case-link"') == COUNT - 50
    assert f"材料未齐 <b>{incomplete}</b>" in rest
    first_ids = set(re.findall(r'href="/cases/(\d+)" class="case-link"', page))
    assert not first_ids & set(re.findall(r'href="/cases/(\d+)" class="case-link"', rest))
    filtered = browser.get("/cases?status=incomplete&page=1").get_data(as_text=True)
    assert filtered.count('class="case-link"') == incomplete
    assert browser.get("/cases?page=9").status_code == 200  # past the end: the last page


def test_a_case_page_loads_what_was_read_once(crowd):
    browser = signed_in(crowd)
    engine = crowd.web.extensions["desk"].engine
    shown, statements = _statements(engine, lambda: browser.get("/cases/5"))
    assert shown.status_code == 200
    assert sum(" reading" in s.lower() for s in statements) == 1
    assert len(statements) < 20, len(statements)
    following = browser.get("/cases/5/next")
    assert following.status_code == 302 and re.search(r"/cases/\d+$", following.headers["Location"])
