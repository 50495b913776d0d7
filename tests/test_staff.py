"""Staff tools end to end: filters, show, hold/release, reject, approve, note, export."""
from __future__ import annotations

import csv
import io
import json
import stat

import pytest

from tests.support import builders as b
from tests.support.harness import Harness, body_text

OFFICE = "changping@example.test"


@pytest.fixture
def world(dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path)
    for name, dept, sender, skip in [("张伟", "物理系", "zw@example.test", ()),
                                     ("李喆", "化学系", "lz@example.test", ("核酸",)),
                                     ("王芳", "物理系", "wf@example.test", ())]:
        world.deliver(b.mail(sender=sender, subject=f"{name}+{dept}+健康宝弹窗",
                             attachments=[("a.zip", b.windows_gbk_zip(b.five_pictures(skip=skip)))]))
    world.poll()
    world.smtp.clear()
    world.ids = {c["name"]: c["id"] for c in world.cases_json()}
    return world


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_filters_and_csv(world):
    names = lambda *args: sorted(c["name"] for c in json.loads(_ok(world.cli("cases", "--json", *args))))
    assert names("--status", "complete") == ["张伟", "王芳"]
    assert names("--department", "物理系") == ["张伟", "王芳"]
    assert names("--search", "LZ@EXAMPLE") == ["李喆"]
    assert names("--search", "芳") == ["王芳"]
    assert names("--since", "2000-01-01", "--until", "2000-12-31") == []
    rows = list(csv.DictReader(io.StringIO(_ok(world.cli("cases", "--csv")).lstrip("\ufeff"))))
    assert [(r["name"], r["missing"]) for r in rows] == [("张伟", ""), ("李喆", "核酸"), ("王芳", "")]


def test_hold_release_and_the_digest(world):
    case_id = world.ids["张伟"]
    assert "held" in _ok(world.cli("case", "hold", str(case_id), "--reason", "核对身份", "--by", "老师甲"))
    _ok(world.cli("digest"))
    [digest] = world.smtp.to(OFFICE)
    assert "王芳" in body_text(digest.message) and "张伟" not in body_text(digest.message)
    assert "complete" in _ok(world.cli("case", "release", str(case_id), "--by", "老师甲"))
    _ok(world.cli("digest"))
    assert "张伟" in body_text(world.smtp.to(OFFICE)[1].message)
    shown = json.loads(_ok(world.cli("case", "show", str(case_id), "--json")))
    actions = [(e["actor"], e["kind"]) for e in shown["history"] if e["actor"] != "system"]
    assert actions == [("老师甲", "held"), ("老师甲", "released")]


def test_reject_tells_the_student_and_a_resubmission_reopens(world):
    case_id = world.ids["张伟"]
    _ok(world.cli("case", "reject", str(case_id), "--reason", "承诺书没有签名", "--item", "承诺书"))
    [told] = world.replies_to("zw@example.test")
    assert "未通过审核" in told.message["Subject"]
    assert "承诺书没有签名" in body_text(told.message) and "承诺书" in body_text(told.message)
    [case] = [c for c in world.cases_json() if c["id"] == case_id]
    assert case["status"] == "rejected" and case["missing"] == ["承诺书"]
    world.deliver(b.mail(sender="zw@example.test", subject="Re: 材料未通过审核：张伟+物理系+健康宝弹窗",
                         attachments=[("承诺书.jpg", b.picture(color=(9, 9, 9)))]))
    world.poll()
    [case] = [c for c in world.cases_json() if c["id"] == case_id]
    assert case["status"] == "complete"
    bad = world.cli("case", "reject", str(case_id), "--reason", "x", "--item", "身份证")
    assert bad.returncode == 1 and "unknown item" in bad.stderr


def test_require_approval_lets_only_approved_cases_through(dovecot, smtp, mailbox_user, sqlite_url,
                                                          tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path,
                    extra_config="require_approval = true\n")
    for name, sender in [("张伟", "zw@example.test"), ("王芳", "wf@example.test")]:
        world.deliver(b.mail(sender=sender, subject=f"{name}+物理系+健康宝弹窗",
                             attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    ids = {c["name"]: c["id"] for c in world.cases_json()}
    _ok(world.cli("case", "approve", str(ids["王芳"]), "--by", "老师乙"))
    _ok(world.cli("digest"))
    [digest] = world.smtp.to(OFFICE)
    assert "王芳" in body_text(digest.message) and "张伟" not in body_text(digest.message)


def test_show_note_and_export(world, tmp_path):
    case_id = world.ids["李喆"]
    _ok(world.cli("case", "note", str(case_id), "学生电话说明天补交核酸", "--by", "老师丙"))
    text = _ok(world.cli("case", "show", str(case_id)))
    assert "李喆" in text and "missing: 核酸" in text
    assert "承诺书" in text and "from mail" in text and "reply_incomplete" in text
    assert "老师丙: note" in text and "明天补交核酸" in text
    out = tmp_path / "export"
    _ok(world.cli("case", "export", str(case_id), str(out)))
    assert sorted(p.name for p in out.iterdir()) == ["健康宝.jpg", "情况说明.jpg", "承诺书.jpg", "行程码.jpg"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    assert (out / "承诺书.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    missing = world.cli("case", "show", "9999")
    assert missing.returncode == 1 and "no case 9999" in missing.stderr


def test_the_same_rejection_is_told_once(world):
    case_id = world.ids["张伟"]
    for _ in range(2):
        _ok(world.cli("case", "reject", str(case_id), "--reason", "承诺书没有签名", "--item", "承诺书"))
    [told] = world.replies_to("zw@example.test")
    text = body_text(told.message)
    assert "只附上「承诺书.jpg」" in text and "登记编号" in text
    _ok(world.cli("case", "reject", str(case_id), "--reason", "情况说明不完整", "--item", "情况说明"))
    assert len(world.replies_to("zw@example.test")) == 2
