"""The desk as production runs it: gunicorn with several workers on PostgreSQL, while `intake poll`
handles a few hundred mails in the same database. The reviewer must never see an error."""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support import builders as b
from tests.support.dovecot import PASSWORD, free_port
from tests.support.harness import REPO, Harness
from tests.support.desk import GOOD, add_account, version_of

POLLED_MAILS = 300  # as on SQLite (tests/test_desk_browser.py)
WORKERS = 3
GUNICORN = Path(sys.executable).with_name("gunicorn")
TROUBLE = re.compile(r"database is locked|could not serialize|deadlock detected|Traceback"
                     r"|Internal Server Error", re.IGNORECASE)


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Show the desk's 302 answers as they are: they are what a successful action returns."""

    def redirect_request(self, *args, **kwargs):
        return None


class Reviewer:
    """A person at a browser: a cookie jar, and the CSRF token the last page carried."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _KeepRedirects())
        self.token = None
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status), for the failure message

    def _send(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with self.opener.open(request, timeout=60) as response:
                status, body = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as answer:  # 3xx (not followed), 4xx and 5xx
            status, body = answer.code, answer.read().decode("utf-8", "replace")
        self.seen.append((method, path, status))
        found = re.search(r'name="csrf-token" content="([^"]+)"', body)
        if found:
            self.token = found.group(1)
        return status, body

    def get(self, path: str) -> tuple[int, str]:
        return self._send("GET", path)

    def post(self, path: str, form: dict) -> tuple[int, str]:
        return self._send("POST", path, {**form, "csrf_token": self.token})


def _wait_for_desk(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text(errors="replace")
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not answer within 60 s:\n" + log.read_text(errors="replace"))


def test_reviewer_acts_through_gunicorn_workers_during_a_poll_on_postgresql(
        dovecot, smtp, mailbox_user, db_url_pg, tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url_pg,
                    tmp_path=tmp_path)
    for name, sender in [("张伟", "zw@example.test"), ("王芳", "wf@example.test")]:
        world.deliver(b.mail(sender=sender, subject=f"{name}+物理系+健康宝弹窗",
                             attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    ids = {case["name"]: case["id"] for case in world.cases_json()}
    noted, held = ids["张伟"], ids["王芳"]
    # One small picture per mail keeps the mails cheap to build and to handle.
    for number in range(POLLED_MAILS):
        world.deliver(b.mail(sender=f"s{number}@example.test",
                             subject=f"学生{number}+物理系+健康宝弹窗",
                             attachments=[("核酸.jpg", b.picture(color=(number % 256, 9, 9)))]))
    add_account(world, "admin", "admin")

    environment = {**os.environ, "INTAKE_CONFIG": str(world.config),
                   "INTAKE_TEST_IMAP_PASSWORD": PASSWORD}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = tmp_path / "gunicorn.log"
    with server_log.open("w") as log:
        server = subprocess.Popen([str(GUNICORN), "--workers", str(WORKERS), "--bind",
                                   f"127.0.0.1:{port}", "intake.web.wsgi:app"],
                                  cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
    poller = None
    try:
        _wait_for_desk(url, server, server_log)
        reviewer = Reviewer(url)
        reviewer.get("/login")
        status, body = reviewer.post("/login", {"username": "admin", "password": GOOD})
        assert status == 302, body

        # Its output goes to files: the loop below runs until the poll ends, and a pipe nobody
        # reads meanwhile would fill with the poll's log lines and stop it.
        with (tmp_path / "poll.out").open("w") as poll_out, \
                (tmp_path / "poll.err").open("w") as poll_err:
            poller = subprocess.Popen([sys.executable, "-m", "intake", "--config",
                                       str(world.config), "poll"], cwd=REPO, env=environment,
                                      stdout=poll_out, stderr=poll_err, text=True)
        expected = {noted: [], held: []}
        failures = []
        rounds = 0
        while poller.poll() is None or rounds < 5:
            # A note on one case; on the other, hold and reopen in turn.
            hold_now = rounds % 2 == 0
            for case_id, action, form, kind in [
                    (noted, "note", {"text": f"第{rounds}次备注"}, "note"),
                    (held, "hold" if hold_now else "reopen",
                     {"reason": f"核对身份 {rounds}"} if hold_now else {},
                     "held" if hold_now else "reopened")]:
                status, page = reviewer.get(f"/cases/{case_id}")
                if status != 200 or TROUBLE.search(page):
                    failures.append(("GET case", case_id, status, page[:500]))
                    continue
                status, page = reviewer.post(f"/cases/{case_id}/actions/{action}",
                                             {"expected_version": version_of(page), **form})
                if status != 302 or TROUBLE.search(page):
                    failures.append((action, case_id, status, page[:500]))
                    continue
                expected[case_id].append(kind)
            status, page = reviewer.get("/cases")
            if status != 200 or TROUBLE.search(page):
                failures.append(("GET /cases", None, status, page[:500]))
            rounds += 1
        poller.wait(timeout=600)
        out, err = ((tmp_path / name).read_text() for name in ("poll.out", "poll.err"))
    finally:
        if poller is not None and poller.poll() is None:
            poller.kill()
            poller.wait()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    server_output = server_log.read_text(errors="replace")

    assert not failures, failures
    assert poller.returncode == 0, err
    handled = re.search(r"已处理：([^；]*)；", out).group(1)
    assert sum(int(count) for count in re.findall(r" (\d+) 封", handled)) == POLLED_MAILS, out
    for case_id, kinds in expected.items():
        history = json.loads(world.cli("case", "show", str(case_id), "--json").stdout)["history"]
        assert [event["kind"] for event in history if event["actor"] == "admin"] == kinds
    # gunicorn ran its workers, and none of them logged an error.
    assert server.returncode == 0, server_output
    assert not TROUBLE.search(server_output), server_output
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", server_output))) == WORKERS
    assert len(world.cases_json()) == POLLED_MAILS + 2
    assert sum(1 for method, _, _ in reviewer.seen if method == "POST") >= 10
