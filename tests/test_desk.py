"""The staff desk through Flask's test client, on a real database filled by a real poll."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile

import pytest
from PIL import Image
from sqlalchemy import select

from intake.models.desk import AuditEntry
from tests.support import builders as b
from tests.support.dovecot import PASSWORD
from tests.support.harness import REPO
from tests.support.desk import (GOOD, Browser, behind_nginx, desk_on, signed_in,
                                 version_of)

OFFICE = "changping@example.test"


@pytest.fixture
def world(world):
    yield from desk_on(world)


def test_everything_but_login_needs_a_session(world):
    client = world.web.test_client()
    for url in ["/cases", f"/cases/{world.ids['张伟']}", f"/cases/{world.ids['张伟']}/pictures/核酸",
                "/digests", "/digests/preview", "/status", "/admin/accounts",
                f"/cases/{world.ids['张伟']}/export"]:
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].endswith("/login"), url
    login = client.get("/login")
    page = login.get_data(as_text=True)
    assert 'name="username"' in page and 'name="password"' in page
    assert '<meta name="renderer" content="webkit">' in page
    csp = login.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert login.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in page and "onclick" not in page
    assert client.get("/static/htmx.min.js").status_code == 200
    assert client.get("/static/desk.js").status_code == 200


def test_login_cookie_queue_case_pictures_and_audit(world):
    browser = Browser(world.web)
    browser.get("/login")
    response = browser.post("/login", {"username": "admin", "password": GOOD})
    cookie = response.headers["Set-Cookie"]
    assert "desk_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind TLS see test_secure_cookie_behind_tls
    queue = browser.get("/cases").get_data(as_text=True)
    assert all(name in queue for name in ["张伟", "李喆", "王芳"])
    assert "材料齐全 <b>2</b>" in queue and "材料未齐 <b>1</b>" in queue
    assert "李喆" in browser.get("/cases?q=喆").get_data(as_text=True)
    assert "张伟" not in browser.get("/cases?q=喆").get_data(as_text=True)
    assert "张伟" not in browser.get("/cases?department=化学系").get_data(as_text=True)
    assert "李喆" in browser.get("/cases?status=incomplete").get_data(as_text=True)
    assert "张伟" not in browser.get("/cases?since=2000-01-01&until=2000-01-02").get_data(as_text=True)

    case_id = world.ids["李喆"]
    case = browser.get(f"/cases/{case_id}")
    assert case.status_code == 200 and case.headers["Cache-Control"] == "no-store"
    page = case.get_data(as_text=True)
    assert "缺少：<b>核酸</b>" in page and page.count("<img ") == 4
    assert "补交提醒" in page and "reply_incomplete" not in page and "历史" in page
    picture = browser.get(f"/cases/{case_id}/pictures/承诺书")
    assert picture.status_code == 200 and picture.mimetype == "image/jpeg"
    assert picture.headers["Cache-Control"] == "no-store"
    with Image.open(io.BytesIO(picture.data)) as shown:
        assert shown.format == "JPEG" and not shown.info.get("exif")
    assert browser.get(f"/cases/{case_id}/pictures/承诺书?full=1").status_code == 200
    assert browser.get(f"/cases/{case_id}/pictures/核酸").status_code == 404  # never received
    assert browser.get(f"/cases/{case_id}/pictures/..%2F..%2Fetc%2Fpasswd").status_code == 404
    exported = browser.get(f"/cases/{case_id}/export")
    assert sorted(zipfile.ZipFile(io.BytesIO(exported.data)).namelist()) == [
        "健康宝.jpg", "情况说明.jpg", "承诺书.jpg", "行程码.jpg"]

    with world.web.extensions["desk"].sessions() as session:
        actions = [(e.actor, e.action, e.case_id) for e in session.scalars(select(AuditEntry))]
    assert ("admin", "login", None) in actions
    assert ("admin", "case_view", case_id) in actions
    assert ("admin", "picture_view", case_id) in actions
    assert ("admin", "export", case_id) in actions


def test_actions_share_the_cli_functions_and_refuse_a_staleversion_of(world):
    browser = signed_in(world)
    case_id = world.ids["张伟"]
    page = browser.get(f"/cases/{case_id}").get_data(as_text=True)
    seen = version_of(page)
    # The student (here: a staff note through the CLI) changes the case meanwhile.
    assert world.cli("case", "note", str(case_id), "学生来电", "--by", "老师甲").returncode == 0
    refused = browser.post(f"/cases/{case_id}/actions/approve", {"expected_version": seen})
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "操作未执行" in text and "老师甲" in text
    fresh = version_of(text)
    done = browser.post(f"/cases/{case_id}/actions/approve", {"expected_version": fresh})
    assert done.status_code == 302
    shown = world.cli("case", "show", str(case_id), "--json").stdout
    assert '"approved_by": "admin"' in shown

    other = world.ids["王芳"]
    version = version_of(browser.get(f"/cases/{other}").get_data(as_text=True))
    response = browser.post(f"/cases/{other}/actions/reject",
                            {"expected_version": version, "template": "承诺书没有签名",
                             "reason": "请重签", "items": "承诺书"},
                            headers={"HX-Request": "true"})
    assert response.status_code == 200 and "已退回" in response.get_data(as_text=True)
    [told] = world.replies_to("wf@example.test") or [None]
    assert told is None  # queued in the outbox; the daemon sends it
    rows = [r for r in world.outbox() if r.kind == "reply_rejected"]
    assert len(rows) == 1 and "承诺书没有签名 请重签".encode() not in b""  # queued
    version = version_of(browser.get(f"/cases/{other}").get_data(as_text=True))
    assert browser.post(f"/cases/{other}/actions/reopen",
                        {"expected_version": version}).status_code == 302
    version = version_of(browser.get(f"/cases/{other}").get_data(as_text=True))
    assert browser.post(f"/cases/{other}/actions/hold",
                        {"expected_version": version, "reason": "核对身份"}).status_code == 302
    version = version_of(browser.get(f"/cases/{other}").get_data(as_text=True))
    assert browser.post(f"/cases/{other}/actions/note",
                        {"expected_version": version, "text": "已电话联系"}).status_code == 302
    history = json.loads(world.cli("case", "show", str(other), "--json").stdout)["history"]
    done_by_admin = [event["kind"] for event in history if event["actor"] == "admin"]
    assert done_by_admin[-4:] == ["rejected", "reopened", "held", "note"]


def test_csrf_is_required(world):
    browser = signed_in(world)
    case_id = world.ids["张伟"]
    version = version_of(browser.get(f"/cases/{case_id}").get_data(as_text=True))
    refused = browser.post(f"/cases/{case_id}/actions/approve", {"expected_version": version},
                           csrf=False)
    assert refused.status_code == 400
    assert "approved_by\": null" in world.cli("case", "show", str(case_id), "--json").stdout
    # htmx sends the token in a header instead of the form.
    by_header = browser.client.post(f"/cases/{case_id}/actions/approve",
                                    data={"expected_version": version},
                                    headers={"X-CSRFToken": browser.token, "HX-Request": "true"})
    assert by_header.status_code == 200
    assert Browser(world.web).client.post("/login", data={"username": "admin",
                                                          "password": GOOD}).status_code == 400


def test_department_scope(world):
    browser = signed_in(world, "phys")
    queue = browser.get("/cases").get_data(as_text=True)
    assert "张伟" in queue and "王芳" in queue and "李喆" not in queue
    chem = world.ids["李喆"]
    assert browser.get(f"/cases/{chem}").status_code == 404
    assert browser.get(f"/cases/{chem}/pictures/承诺书").status_code == 404
    assert browser.get(f"/cases/{chem}/export").status_code == 404
    assert browser.post(f"/cases/{chem}/actions/note", {"expected_version": "1",
                                                        "text": "x"}).status_code == 404
    assert browser.get(f"/cases/{world.ids['张伟']}/pictures/承诺书").status_code == 200
    assert browser.get("/admin/accounts").status_code == 403
    assert browser.post("/digests/1/resend").status_code == 403


def test_throttling_and_the_same_message(world):
    browser = Browser(world.web)
    unknown = browser.login("nobody", "whatever-it-is").get_data(as_text=True)
    wrong = browser.login("phys", "wrong password!").get_data(as_text=True)
    message = re.search(r'role="alert">([^<]+)<', wrong).group(1)
    assert message in unknown
    for _ in range(4):
        assert browser.login("phys", "wrong password!").status_code == 401
    waiting = browser.login("phys", GOOD)  # the right password, but the account waits
    assert waiting.status_code == 401 and "15 分钟" in waiting.get_data(as_text=True)
    world.clock.advance(minutes=16)
    assert browser.login("phys", GOOD).status_code == 302
    # 20 failures in an hour from one address block it, whatever the account.
    for number in range(20):
        browser.login(f"guess{number}", "nope-nope-nope")
    blocked = browser.login("admin", GOOD)
    assert blocked.status_code == 401 and "此地址" in blocked.get_data(as_text=True)
    other = Browser(world.web)
    other.client.environ_base["REMOTE_ADDR"] = "127.0.0.2"
    assert other.login("admin", GOOD).status_code == 302
    with world.web.extensions["desk"].sessions() as session:
        failed = session.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed")).all()
    assert len(failed) >= 25


def test_session_idle_and_maximum_and_logout(world):
    browser = signed_in(world)
    world.clock.advance(minutes=29)
    assert browser.get("/cases").status_code == 200
    world.clock.advance(minutes=31)
    assert browser.get("/cases").status_code == 302  # idle too long
    browser = signed_in(world)
    for _ in range(20):
        world.clock.advance(minutes=29)
        assert browser.get("/cases").status_code == 200
    world.clock.advance(minutes=29)  # past 10 hours, though never idle
    assert browser.get("/cases").status_code == 302
    browser = signed_in(world)
    cookie = browser.client.get_cookie("desk_session").value
    assert browser.post("/logout").status_code == 302
    thief = world.web.test_client()
    thief.set_cookie("desk_session", cookie)
    assert thief.get("/cases").status_code == 302  # ended on the server, not just in the browser


def test_secure_cookie_behind_tls(world):
    app = behind_nginx(world)
    browser = Browser(app)
    # nginx says the browser came over TLS: ProxyFix makes the request secure, the cookies too.
    form = browser.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in form.headers["Set-Cookie"]
    browser.client = app.test_client()
    browser.get("/login", base_url="https://localhost")
    response = browser.post("/login", {"username": "admin", "password": GOOD},
                            base_url="https://localhost",
                            headers={"X-Forwarded-Proto": "https", "Referer": "https://localhost/login"})
    assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]


def test_digests_status_and_accounts(world):
    browser = signed_in(world)
    version = version_of(browser.get(f"/cases/{world.ids['张伟']}").get_data(as_text=True))
    browser.post(f"/cases/{world.ids['张伟']}/actions/hold",
                 {"expected_version": version, "reason": "核对"})
    preview = browser.get("/digests/preview").get_data(as_text=True)
    assert "王芳" in preview and "张伟" not in preview.split("下一份汇总预览")[1]
    assert world.smtp.to(OFFICE) == []  # a preview sends nothing
    assert world.cli("digest").returncode == 0
    history = browser.get("/digests").get_data(as_text=True)
    assert "重新发送" in history
    digest_id = re.search(r"/digests/(\d+)/resend", history).group(1)
    resent = browser.post(f"/digests/{digest_id}/resend")
    assert "已重新排队" in resent.get_data(as_text=True)
    assert "resend" not in signed_in(world, "phys").get("/digests").get_data(as_text=True)
    status = browser.get("/status").get_data(as_text=True)
    assert "发件箱" in status and "上一份汇总" in status
    accounts = browser.post("/admin/accounts", {"operation": "add", "username": "chem",
                                                "password": "another long one", "role": "reviewer",
                                                "department": "化学系"})
    assert "chem" in accounts.get_data(as_text=True)
    assert Browser(world.web).login("chem", "another long one").status_code == 302
    browser.post("/admin/accounts", {"operation": "disable", "username": "chem"})
    assert Browser(world.web).login("chem", "another long one").status_code == 401


def test_staff_commands(world):
    listed = world.cli("staff", "list")
    assert "admin" in listed.stdout and "物理系" in listed.stdout
    assert world.cli("staff", "disable", "phys").returncode == 0
    assert "已停用" in world.cli("staff", "list").stdout
    assert Browser(world.web).login("phys").status_code == 401
    short = subprocess.run([sys.executable, "-m", "intake", "--config", str(world.config), "staff",
                            "passwd", "admin"], input="short\n", capture_output=True, text=True,
                           cwd=REPO)
    assert short.returncode == 1 and "至少" in short.stderr
    duplicate = world.cli("staff", "add", "admin", "--role", "admin")
    assert duplicate.returncode == 1


def test_staff_commands_without_the_mailbox_password(world, monkeypatch):
    monkeypatch.delenv("INTAKE_TEST_IMAP_PASSWORD")
    env = {"INTAKE_TEST_IMAP_PASSWORD": PASSWORD}
    assert world.cli("staff", "list", env=env).returncode == 0


def test_intake_web_serves_the_desk_on_loopback(world):
    import socket
    import time
    import urllib.request
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "intake", "--config", str(world.config), "web",
                               "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "intake web did not start"
                time.sleep(0.3)
        assert 'name="username"' in page
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_cli_reopen_uses_the_same_action(world):
    case_id = world.ids["王芳"]
    assert world.cli("case", "reject", str(case_id), "--reason", "模糊", "--by", "老师甲").returncode == 0
    reopened = world.cli("case", "reopen", str(case_id), "--by", "老师甲")
    assert reopened.returncode == 0 and "现为材料齐全" in reopened.stdout
    again = world.cli("case", "reopen", str(case_id))
    assert again.returncode == 1 and "只有暂缓报送或审核未通过的登记可以重新打开" in again.stderr


def test_what_was_read_is_shown_labelled_and_alerts_come_first(world):
    """Readings stored by the daemon (written here as the daemon would) reach the case page
    labelled as a machine's reading, with flags highlighted, and a 阳性 case tops the queue."""
    from datetime import datetime, timezone

    from intake.db.engine import make_engine, session_factory
    from intake.models import Case, Reading

    engine = make_engine(world.db_url)
    read = {"核酸": {"looks_like": "核酸", "result": "阳性", "sampled_at": "2026-11-21T14:05:00+08:00",
                     "name": "王*", "scores": {"result": 0.99, "sampled_at": 0.55}},
            "行程码": {"looks_like": "行程码", "places": ["北京市", "上海市"], "starred": ["上海市"]},
            "健康宝": None}
    with session_factory(engine).begin() as session:
        case = session.get(Case, world.ids["王芳"])
        for item in case.items:
            if item.kind in read:
                session.add(Reading(item_id=item.id, case_id=case.id, sha256=item.sha256,
                                    facts=read[item.kind], read_at=datetime.now(timezone.utc)))
    engine.dispose()
    browser = signed_in(world)
    page = browser.get(f"/cases/{world.ids['王芳']}").get_data(as_text=True)
    assert page.count("机读，仅供参考") == 3
    assert re.search(r'class="flagged">检测结果：阳性<', page)
    assert re.search(r'class="flagged">带\*城市：上海市<', page)
    assert re.search(r'class="flagged">内容：未能识别<', page)
    assert "核酸采样时间：2026-11-21 14:05" in page
    # The recogniser's score in words: a fact under the threshold is 不确定, and highlighted.
    assert re.search(r'class="flagged">检测结果：阳性<span class="certainty">（清晰）', page)
    assert re.search(r'class="flagged">核酸采样时间：2026-11-21 14:05<span class="certainty">（不确定）', page)
    queue = browser.get("/cases").get_data(as_text=True)
    assert queue.index("王芳") < min(queue.index("张伟"), queue.index("李喆"))
    assert 'class="tag alert">阳性' in queue


def test_questions_wait_on_the_desk_and_an_answer_is_a_threaded_reply(world):
    # Issue 21: a student's question reaches a person, who answers it from the desk.
    for sender, text in (("zw@example.test", "请问什么时候报送？"), ("lz@example.test", "核酸要重做吗？")):
        world.deliver(b.mail(sender=sender, subject="健康宝弹窗", body=text,
                             message_id=f"<ask-{sender}>"))
    world.poll()
    world.smtp.clear()
    phys = signed_in(world, "phys").get("/questions").get_data(as_text=True)
    assert "请问什么时候报送？" in phys and "核酸要重做吗" not in phys  # 李喆 is 化学系
    page = signed_in(world).get("/questions").get_data(as_text=True)
    assert "请问什么时候报送？" in page and "核酸要重做吗？" in page
    question_id = re.search(r'id="question-(\d+)"', page).group(1)
    browser = signed_in(world)
    browser.get("/questions")
    done = browser.post(f"/questions/{question_id}/answer", {"answer": "今天 17:00 报送。"})
    assert done.status_code == 302
    world.poll()  # the daemon sends what the desk queued
    [reply] = world.smtp.to("zw@example.test")
    assert reply.message["In-Reply-To"] == "<ask-zw@example.test>"
    assert "今天 17:00 报送。" in reply.message.get_body(preferencelist=("plain",)).get_content()
    after = browser.get("/questions").get_data(as_text=True)
    assert "请问什么时候报送？" not in after and "核酸要重做吗？" in after
    case_page = browser.get(f"/cases/{world.ids['张伟']}").get_data(as_text=True)
    assert "今天 17:00 报送。" in case_page or "已答复提问" in case_page
