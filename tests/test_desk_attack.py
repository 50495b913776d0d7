"""The desk attacked as an outside reviewer would (issue 23): department scope on every page,
forged X-Forwarded-For, bad parameters, a read-only digest preview, the audit view under a flood
of failed logins, sessions on a second sign-in, and a refused action that keeps what was typed."""
from __future__ import annotations

import re

import pytest

from sqlalchemy import event, select

from intake.models.desk import AuditEntry
from intake.settings import load_settings
from tests.support.desk import GOOD, Browser, add_account, behind_nginx, desk_on, signed_in, version_of


@pytest.fixture
def world(world):
    yield from desk_on(world)


def _chemist(world) -> Browser:
    add_account(world, "chem", "reviewer", "化学系")
    return signed_in(world, "chem")


def test_a_scoped_reviewer_sees_only_their_department_in_the_preview_and_status(world):
    chem = _chemist(world)
    preview = chem.get("/digests/preview")
    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert "张伟" not in page and "王芳" not in page  # 物理系's complete cases
    assert "仅显示本院系（化学系）" in page
    status = chem.get("/status").get_data(as_text=True)
    waiting = re.search(r"<li>未报送的登记：([^<]*)</li>", status).group(1)
    assert "材料未齐 1" in waiting and "材料齐全" not in waiting  # 李喆 only
    # Whoever may see every department still sees both.
    admin = signed_in(world).get("/digests/preview").get_data(as_text=True)
    assert "张伟" in admin and "王芳" in admin
    phys = signed_in(world, "phys")
    assert world.cli("digest").returncode == 0  # 张伟 and 王芳 (物理系) go to the office
    row = r"<tr><td>\d+</td><td>[\d-]+</td><td>[^<]*</td><td>(\d+)</td><td>([^<]*)</td>"
    assert re.search(row, chem.get("/digests").get_data(as_text=True)).groups() == ("0", "-")
    assert re.search(row, signed_in(world).get("/digests").get_data(as_text=True)).group(1) == "2"
    for case_id in (world.ids["张伟"], world.ids["王芳"]):  # nor as the next case
        following = phys.get(f"/cases/{case_id}/next")
        assert following.status_code == 302
        assert not following.headers["Location"].endswith(f"/cases/{world.ids['李喆']}")


def test_the_digest_preview_reads_only(world):
    """No write transaction, nothing built and thrown away: only the audit entry is written."""
    browser = signed_in(world)
    engine = world.web.extensions["desk"].engine
    written = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        words = statement.lstrip().split(None, 3)
        if words[0].upper() in {"INSERT", "UPDATE", "DELETE"} or statement.upper().startswith(
                "BEGIN IMMEDIATE") or "FOR UPDATE" in statement.upper():
            written.append(statement.split("(")[0][:60])

    event.listen(engine, "before_cursor_execute", seen)
    try:
        page = browser.get("/digests/preview").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert "王芳" in page and "张伟" in page
    others = [statement for statement in written if "audit_log" not in statement
              and not statement.upper().startswith("BEGIN IMMEDIATE")]
    assert others == []
    # One short write transaction (the audit entry) at most, not one around the whole preview.
    assert sum(1 for s in written if s.upper().startswith("BEGIN IMMEDIATE")) <= 1
    assert world.outbox() == [] or all(row.kind != "digest" for row in world.outbox())


def test_proxy_hops_defaults_to_trusting_no_forwarded_header(world):
    assert load_settings(world.config).web.proxy_hops == 0
    browser = Browser(world.web)
    for number in range(20):
        browser.login(f"guess{number}", "nope-nope-nope",
                      headers={"X-Forwarded-For": f"10.9.{number}.1"})
    blocked = browser.login("admin", GOOD, headers={"X-Forwarded-For": "10.9.99.1"})
    assert blocked.status_code == 401 and "此地址" in blocked.get_data(as_text=True)
    with world.web.extensions["desk"].sessions() as session:
        addresses = set(session.scalars(select(AuditEntry.address).where(
            AuditEntry.action == "login_failed")))
    assert addresses == {"127.0.0.1"}


def test_the_account_limit_holds_whatever_the_address(world):
    app = behind_nginx(world)  # X-Forwarded-For believed: each try comes from another address
    browser = Browser(app)
    for number in range(5):
        assert browser.login("phys", "wrong password!",
                             headers={"X-Forwarded-For": f"10.8.{number}.1"}).status_code == 401
    waiting = browser.login("phys", GOOD, headers={"X-Forwarded-For": "10.8.50.1"})
    assert waiting.status_code == 401 and "15 分钟" in waiting.get_data(as_text=True)


def test_bad_parameters_answer_400_not_500(world):
    browser = signed_in(world)
    for url in ["/cases?since=0001-01-01", "/cases?until=9999-12-31", "/cases?since=yesterday",
                "/cases/1000000000000000000000000000000",
                "/cases/1000000000000000000000000000000/pictures/核酸",
                "/cases/1000000000000000000000000000000/export"]:
        response = browser.get(url)
        assert response.status_code == 400, url
        page = response.get_data(as_text=True)
        assert "Traceback" not in page and "请求被拒绝" in page, url
    assert "超出范围" in browser.get("/cases?since=0001-01-01").get_data(as_text=True)
    posted = browser.post("/cases/1000000000000000000000000000000/actions/note",
                          {"expected_version": "1", "text": "x"})
    assert posted.status_code == 400
    assert browser.post(f"/cases/{world.ids['张伟']}/actions/note",
                        {"expected_version": "9" * 40, "text": "x"}).status_code == 400


def test_failed_logins_cannot_push_real_entries_out_of_the_audit_view(world):
    admin = signed_in(world)
    admin.get(f"/cases/{world.ids['张伟']}")
    nobody = Browser(world.web)
    for number in range(60):
        nobody.client.environ_base["REMOTE_ADDR"] = f"127.0.{number // 15}.{number % 15 + 2}"
        nobody.login(f"x{number}", "nope-nope-nope")
    page = admin.get("/admin/accounts").get_data(as_text=True)
    audit = page.split('id="audit"')[1]
    assert "<td>case_view</td>" in audit and "<td>login_failed</td>" not in audit
    failures = admin.get("/admin/accounts?audit=login_failed").get_data(as_text=True)
    assert failures.split('id="audit"')[1].count("<td>login_failed</td>") == 50
    older = admin.get("/admin/accounts?audit=login_failed&audit_page=2").get_data(as_text=True)
    assert older.split('id="audit"')[1].count("<td>login_failed</td>") == 10


def test_signing_in_again_ends_the_older_session_and_rotates_the_csrf_token(world):
    browser = signed_in(world)
    first_cookie = browser.client.get_cookie("desk_session").value
    browser.get("/cases")
    first_token = browser.token
    assert browser.post("/login", {"username": "admin", "password": GOOD}).status_code == 302
    assert browser.client.get_cookie("desk_session").value != first_cookie
    browser.get("/cases")
    assert browser.token != first_token
    thief = world.web.test_client()
    thief.set_cookie("desk_session", first_cookie)
    assert thief.get("/cases").status_code == 302  # the older session is over
    # The token read before the new sign-in no longer works.
    version = version_of(browser.get(f"/cases/{world.ids['张伟']}").get_data(as_text=True))
    stale = browser.client.post(f"/cases/{world.ids['张伟']}/actions/note",
                                data={"expected_version": version, "text": "x",
                                      "csrf_token": first_token})
    assert stale.status_code == 400


def test_a_refused_action_keeps_what_the_reviewer_typed(world):
    browser = signed_in(world)
    case_id = world.ids["王芳"]
    seen = version_of(browser.get(f"/cases/{case_id}").get_data(as_text=True))
    assert world.cli("case", "note", str(case_id), "学生来电", "--by", "老师甲").returncode == 0
    refused = browser.post(f"/cases/{case_id}/actions/reject",
                           {"expected_version": seen, "template": "承诺书没有签名",
                            "reason": "请用黑色笔重签", "items": "承诺书"})
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert "操作未执行" in page
    assert re.search(r'id="reject-reason" value="请用黑色笔重签"', page)
    assert re.search(r"<option selected>承诺书没有签名</option>", page)
    assert re.search(r'value="承诺书" checked', page)
    note = browser.post(f"/cases/{case_id}/actions/note", {"expected_version": seen,
                                                           "text": "已电话联系"},
                        headers={"HX-Request": "true"})
    assert 'id="note-text" value="已电话联系"' in note.get_data(as_text=True)


def test_the_desk_says_dengji_not_anjian(world):
    browser = signed_in(world)
    case_id = world.ids["张伟"]
    version = version_of(browser.get(f"/cases/{case_id}").get_data(as_text=True))
    world.cli("case", "note", str(case_id), "x", "--by", "老师甲")
    pages = [browser.get(url) for url in ["/cases", f"/cases/{case_id}", "/digests",
                                          "/digests/preview", "/status", "/admin/accounts",
                                          "/cases/999999", "/cases?since=x"]]
    pages.append(browser.post(f"/cases/{case_id}/actions/approve", {"expected_version": version}))
    for page in pages:
        text = page.get_data(as_text=True)
        assert "案件" not in text, text[:200]
    assert "登记队列" in pages[0].get_data(as_text=True)
