"""Every page of the desk, found by walking Flask's URL map rather than listed by hand: a page that
a new blueprint adds is behind the sign-in, a post to it needs the CSRF token, every form a page
shows carries that token, and a department reviewer is told 404 for another department's case
wherever a page names one."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import url_for
from sqlalchemy import select

from intake.models.desk import AuditEntry
from intake.web.common import OPEN
from tests.support import builders as b
from tests.support.desk import Browser, desk_on, signed_in
from tests.support.harness import REPO

TEMPLATES = Path(REPO) / "intake" / "web" / "templates"
BLUEPRINTS = {"auth", "cases", "questions", "digests", "admin"}
POST_FORM = re.compile(r'<form\b[^>]*method="post"[^>]*>(.*?)</form>', re.DOTALL | re.IGNORECASE)


@pytest.fixture
def world(world):
    yield from desk_on(world)  # the desk on a polled database: 张伟, 王芳 (物理系), 李喆 (化学系)


def _routes(world, **samples) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every route but the static files, its arguments filled from
    `samples`: a route with an argument not sampled here fails the test until one is added."""
    values = {"case_id": world.ids["张伟"], "item_key": "承诺书", "action": "note", "digest_id": 1,
              "question_id": 1, **samples}
    app = world.web
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        missing = set(rule.arguments) - set(values)
        assert not missing, f"{rule.rule}: no sample value for {missing} in _routes"
        with app.test_request_context():
            url = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    assert {endpoint.split(".")[0] for endpoint, _, _ in found} == BLUEPRINTS
    return found


def test_only_the_login_form_and_static_files_are_open():
    assert OPEN == {"auth.login", "static"}


def test_every_route_but_the_login_form_needs_a_session(world):
    with world.web.extensions["desk"].sessions() as session:
        audited_before = len(session.scalars(select(AuditEntry.id)).all())
    browser = Browser(world.web)
    browser.get("/login")  # a CSRF token, so that a post is refused for the session, not the token
    for endpoint, method, url in _routes(world):
        if endpoint in OPEN:
            continue
        if method == "GET":
            response = browser.client.get(url)
        else:
            response = browser.post(url, {"expected_version": "1", "operation": "add",
                                          "username": "intruder", "password": "long enough pass",
                                          "role": "admin", "answer": "x", "text": "x"})
        assert response.status_code == 302, (method, url, response.status_code)
        assert response.headers["Location"].endswith("/login"), (method, url)
        htmx = browser.client.open(url, method=method, headers={
            "HX-Request": "true", "X-CSRFToken": browser.token})
        assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].endswith("/login"), (method, url)
    with world.web.extensions["desk"].sessions() as session:
        assert len(session.scalars(select(AuditEntry.id)).all()) == audited_before
    assert "intruder" not in world.cli("staff", "list").stdout


def test_every_post_needs_the_csrf_token(world):
    browser = signed_in(world)
    posts = [(endpoint, url) for endpoint, method, url in _routes(world) if method == "POST"]
    assert {endpoint for endpoint, _ in posts} >= {"auth.login", "auth.logout", "cases.act",
                                                   "digests.resend", "admin.accounts",
                                                   "questions.answer"}
    for endpoint, url in posts:
        refused = browser.post(url, {"expected_version": "1", "operation": "disable",
                                     "username": "phys", "answer": "x", "text": "x"}, csrf=False)
        assert refused.status_code == 400, (endpoint, refused.status_code)
        assert "页面已过期" in refused.get_data(as_text=True), endpoint
    assert browser.get("/cases").status_code == 200  # the logout without a token ended nothing
    assert signed_in(world, "phys").get("/cases").status_code == 200  # nor disabled anyone


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    forms = []
    for template in sorted(TEMPLATES.glob("*.html")):
        for body in POST_FORM.findall(template.read_text(encoding="utf-8")):
            forms.append(template.name)
            assert 'name="csrf_token" value="{{ csrf_token() }}"' in body, template.name
    assert {"login.html", "base.html", "case.html", "accounts.html", "digests.html",
            "questions.html"} <= set(forms)


def test_every_post_form_on_every_page_carries_the_current_token(world):
    world.deliver(b.mail(sender="zw@example.test", subject="健康宝弹窗", body="请问什么时候报送？",
                         message_id="<ask-guard@example.test>"))
    world.poll()  # a question waiting, so that 待回复 shows its answer form
    assert world.cli("digest").returncode == 0  # a digest made, so that it can be resent
    browser = signed_in(world)
    adapter = world.web.url_map.bind("localhost")
    posted_to = set()
    for endpoint, method, url in _routes(world, case_id=world.ids["李喆"]):
        if method != "GET" or endpoint in {"cases.home", "cases.next_case"}:
            continue
        response = browser.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if response.mimetype != "text/html":
            continue
        page = response.get_data(as_text=True)
        for form in re.finditer(r'<form\b([^>]*)>(.*?)</form>', page, re.DOTALL):
            attributes, body = form.groups()
            if 'method="post"' not in attributes:
                continue
            action = re.search(r'action="([^"]+)"', attributes).group(1)
            posted_to.add(adapter.match(action, method="POST")[0])
            token = re.search(r'name="csrf_token" value="([^"]+)"', body)
            assert token and token.group(1) == browser.token, (url, action)
    assert posted_to == {"auth.login", "auth.logout", "cases.act", "digests.resend", "admin.accounts",
                         "questions.answer"}


def test_another_departments_case_is_not_found_on_any_page_that_names_one(world):
    chem = world.ids["李喆"]
    browser = signed_in(world, "phys")
    named = [(endpoint, method, url) for endpoint, method, url in _routes(world, case_id=chem)
             if f"/cases/{chem}" in url]
    assert {endpoint for endpoint, _, _ in named} == {"cases.case_page", "cases.next_case",
                                                      "cases.picture", "cases.act", "cases.export"}
    for endpoint, method, url in named:
        if method == "GET":
            response = browser.get(url)
        else:
            response = browser.post(url, {"expected_version": "1", "text": "x"})
        assert "李喆" not in response.get_data(as_text=True), url
        if endpoint == "cases.next_case":  # the first of the reviewer's own cases instead
            assert response.status_code == 302 and not response.headers["Location"].endswith(
                f"/cases/{chem}"), url
        else:
            assert response.status_code == 404, (method, url, response.status_code)
    with world.web.extensions["desk"].sessions() as session:
        touched = session.scalars(select(AuditEntry).where(AuditEntry.case_id == chem)).all()
    assert touched == []
