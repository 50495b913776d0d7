"""The staff desk in a real Chromium (Debian's /usr/bin/chromium through Playwright), and the desk
acting while the daemon polls."""
from __future__ import annotations

import json
import threading
import time

import pytest

from intake.settings import load_settings
from intake.app import build_desk
from tests.support import builders as b
from tests.support.harness import Harness
from tests.support.desk import (ARTIFACTS, add_account, chromium_page, log_in, signed_in,
                                 version_of)


@pytest.fixture
def page(desk):
    yield from chromium_page(viewport={"width": 1400, "height": 1000})


@pytest.mark.browser
def test_review_a_case_in_chromium(desk, page):
    log_in(page, desk.url)
    page.wait_for_url(f"{desk.url}/cases")
    assert page.locator("table.queue").inner_text().count("物理系") == 1
    page.click("text=孙八")  # HEIC from an iPhone: the desk shows JPEG previews
    # Polled from here: Playwright's wait_for_function evaluates strings, which the CSP forbids.
    loaded = "Array.from(document.querySelectorAll('.pictures img'))" \
             ".every(img => img.complete && img.naturalWidth > 0)"
    deadline = time.monotonic() + 30
    while not page.evaluate(loaded) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert page.evaluate(loaded), "a picture did not load"
    assert page.locator(".pictures img").count() == 5
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "desk-case-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot of the case page: {shot}")

    page.goto(f"{desk.url}/digests/preview")
    assert "孙八" not in page.locator("#digest-preview").inner_text()  # not approved yet
    page.go_back()
    page.wait_for_selector("#action-approve")
    page.keyboard.press("a")  # the shortcut clicks 批准; the confirmation is accepted
    page.wait_for_selector("text=已批准")
    assert "teacher" in page.locator(".history").inner_text()
    page.goto(f"{desk.url}/digests/preview")
    assert "孙八" in page.locator("#digest-preview").inner_text()
    assert not [p for p in page.problems if "Content Security Policy" in p], page.problems


@pytest.mark.browser
def test_six_wrong_passwords_lock_the_account(desk, page):
    for _ in range(6):
        log_in(page, desk.url, password="not the password")
        assert "用户名或密码不正确" in page.content() or "15 分钟" in page.content()
    log_in(page, desk.url)
    assert "15 分钟" in page.locator("[role=alert]").inner_text()
    assert page.url.endswith("/login")


POLLED_MAILS = 300  # the figure: a reviewer acting during a 300-mail poll


def test_the_desk_acts_during_a_300_mail_poll_without_database_is_locked(
        dovecot, smtp, mailbox_user, sqlite_url, tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                    tmp_path=tmp_path)
    world.deliver(b.mail(sender="zw@example.test", subject="张伟+物理系+健康宝弹窗",
                         attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    [case_id] = [c["id"] for c in world.cases_json()]
    # One small picture per mail keeps 300 mails cheap to build and to handle.
    for number in range(POLLED_MAILS):
        world.deliver(b.mail(sender=f"s{number}@example.test",
                             subject=f"学生{number}+物理系+健康宝弹窗",
                             attachments=[("核酸.jpg", b.picture(color=(number % 256, 9, 9)))]))
    add_account(world, "admin", "admin")
    app = build_desk(load_settings(world.config))
    browser = signed_in(type("W", (), {"web": app})())
    finished, outcome = threading.Event(), {}

    def poll():
        try:
            outcome["report"], _ = world.poll()
        except Exception as err:  # noqa: BLE001 - reported below
            outcome["error"] = err
        finally:
            finished.set()

    thread = threading.Thread(target=poll)
    thread.start()
    actions = 0
    try:
        while not finished.is_set() or actions < 5:
            version = version_of(browser.get(f"/cases/{case_id}").get_data(as_text=True))
            response = browser.post(f"/cases/{case_id}/actions/note",
                                    {"expected_version": version, "text": f"note {actions}"})
            assert response.status_code == 302, response.get_data(as_text=True)
            assert browser.get("/cases").status_code == 200
            actions += 1
            # At a person's pace (still several actions a second): a loop at full speed
            # would mostly take the interpreter from the poll thread and slow the test.
            time.sleep(0.05)
    finally:
        thread.join()
        app.extensions["desk"].engine.dispose()
    assert "error" not in outcome, outcome.get("error")
    assert actions >= 5  # every desk request above succeeded: the desk never saw a lock
    report = outcome["report"]
    assert report.ok, report.errors
    assert sum(report.outcomes.values()) == POLLED_MAILS
    history = json.loads(world.cli("case", "show", str(case_id), "--json").stdout)["history"]
    notes = [event for event in history if event["kind"] == "note" and event["actor"] == "admin"]
    assert len(notes) == actions  # every note the desk accepted was kept
