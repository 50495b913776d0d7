"""The desk on a phone (issue 23): counsellors review at 390 px wide, in a real Chromium."""
from __future__ import annotations

import time

import pytest

from tests.support.desk import ARTIFACTS, chromium_page, log_in

PHONE = {"width": 390, "height": 844}
WIDTH = "document.documentElement.scrollWidth"


@pytest.fixture
def phone(desk):
    yield from chromium_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def _pictures_loaded(page) -> None:
    loaded = "Array.from(document.querySelectorAll('.pictures img'))" \
             ".every(img => img.complete && img.naturalWidth > 0)"
    deadline = time.monotonic() + 30
    while not page.evaluate(loaded) and time.monotonic() < deadline:
        page.wait_for_timeout(200)


@pytest.mark.browser
def test_the_desk_works_on_a_390_px_phone(desk, phone):
    page = phone
    log_in(page, desk.url)
    page.wait_for_url(f"{desk.url}/cases")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "desk-phone-queue.png"), full_page=True)
    assert page.evaluate(WIDTH) <= PHONE["width"], "the queue scrolls sideways"
    for link in page.locator("a.case-link").all():
        # A name on one line, not one character a line.
        assert link.evaluate("el => el.getClientRects().length") == 1, link.inner_text()
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.tap("text=张伟")
    page.wait_for_selector(".pictures img")
    _pictures_loaded(page)
    page.screenshot(path=str(ARTIFACTS / "desk-phone-case.png"), full_page=True)
    print(f"phone screenshots: {ARTIFACTS}/desk-phone-*.png")
    assert page.evaluate(WIDTH) <= PHONE["width"], "the case page scrolls sideways"
    figures = [figure.bounding_box() for figure in page.locator(".pictures figure").all()]
    assert len(figures) == 5
    for above, below in zip(figures, figures[1:]):  # one under another, each nearly full width
        assert below["y"] >= above["y"] + above["height"] - 1
    assert all(box["width"] >= PHONE["width"] * 0.85 for box in figures)
    button = page.locator("#action-approve")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] and box["height"] >= 36
    button.tap()
    page.wait_for_selector("text=已批准")
