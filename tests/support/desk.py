"""The web desk as the desk tests use it: accounts made with the real `intake staff add`, a test
client that keeps the CSRF token, the desk behind one proxy hop, and Chromium for the browser tests.

Desk test modules build their fixtures from these (`desk_on`, `served_desk`, `chromium_page`) instead
of importing one another's fixtures and helpers.
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from werkzeug.serving import make_server

from intake.app import build_desk
from intake.settings import load_settings
from tests.support import builders as b
from tests.support.harness import REPO, Clock, Harness
from tests.support.with_cases import with_cases

GOOD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"


def add_account(world: Harness, username: str, role: str, department: str | None = None,
                password: str = GOOD) -> str:
    """An account made as staff make one: `intake staff add`, the password on stdin."""
    args = [sys.executable, "-m", "intake", "--config", str(world.config), "staff", "add", username,
            "--role", role] + (["--department", department] if department else [])
    result = subprocess.run(args, input=password + "\n", capture_output=True, text=True, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def desk_on(world: Harness) -> Iterator[Harness]:
    """The desk on a polled database: 张伟, 王芳 (物理系), 李喆 (化学系); an administrator `admin`
    and the 物理系 reviewer `phys`, both with the password GOOD. For a fixture to `yield from`."""
    with_cases(world)
    add_account(world, "admin", "admin")
    add_account(world, "phys", "reviewer", "物理系")
    world.clock = Clock()
    world.web = build_desk(load_settings(world.config), clock=world.clock, testing=True)
    yield world
    world.web.extensions["desk"].engine.dispose()


class Browser:
    """A test client that keeps the CSRF token the pages carry."""

    def __init__(self, app):
        self.client = app.test_client()
        self.token = None

    def get(self, url, **kw):
        response = self.client.get(url, **kw)
        found = response.mimetype == "text/html" and re.search(
            r'name="csrf-token" content="([^"]+)"', response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, url, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            if self.token is None:
                self.get("/login")
            data.setdefault("csrf_token", self.token)
        return self.client.post(url, data=data, **kw)

    def login(self, username, password=GOOD, **kw):
        self.get("/login")
        response = self.post("/login", {"username": username, "password": password}, **kw)
        if response.status_code == 302:
            self.get("/login")  # a sign-in rotates the CSRF token: the next page carries the new one
        return response


def signed_in(world: Harness, username: str = "admin") -> Browser:
    browser = Browser(world.web)
    response = browser.login(username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def version_of(page: str) -> str:
    """The case version a case page's action forms carry (a stale one is refused)."""
    found = re.search(r'name="expected_version" value="(\d+)"', page)
    assert found, "no action form on the page"
    return found.group(1)


def behind_nginx(world: Harness):
    """The desk as config/jkb-intake-web.service runs it: one trusted proxy hop."""
    settings = load_settings(world.config)
    settings = settings.model_copy(update={"web": settings.web.model_copy(update={"proxy_hops": 1})})
    app = build_desk(settings, clock=world.clock, testing=True)
    app.extensions["desk"].engine.dispose()  # shares world's database; closed with the test
    return app


def served_desk(world: Harness) -> Iterator[Harness]:
    """The desk served over HTTP on loopback (world.url), with 张伟 (物理系, JPEG) and 孙八 (电子系,
    HEIC from an iPhone) polled and the reviewer `teacher` of every department."""
    for name, dept, sender, ext in [("张伟", "物理系", "zw@example.test", "jpg"),
                                    ("孙八", "电子系", "sb@example.test", "heic")]:
        world.deliver(b.mail(sender=sender, subject=f"{name}+{dept}+健康宝弹窗",
                             attachments=list(b.five_pictures(ext=ext).items())))
    world.poll()
    add_account(world, "teacher", "reviewer")
    app = build_desk(load_settings(world.config))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    world.url = f"http://127.0.0.1:{server.server_port}"
    yield world
    server.shutdown()
    app.extensions["desk"].engine.dispose()


def chromium_page(**context_options):
    """A page of Debian's Chromium through Playwright, dialogs accepted, console errors kept in
    `page.problems`. For a fixture to `yield from`."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        context = chromium.new_context(locale="zh-CN", **context_options)
        page = context.new_page()
        page.problems = []
        page.on("console", lambda message: message.type == "error"
                and page.problems.append(message.text))
        page.on("dialog", lambda dialog: dialog.accept())
        yield page
        chromium.close()


def log_in(page, url: str, username: str = "teacher", password: str = GOOD) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
