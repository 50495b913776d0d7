"""Staff tools end to end: filters, show, hold/release, reject, approve, note, export."""
from __future__ import annotations

import csv
import io
import json
import re
import stat
from datetime import datetime, timedelta

import pytest

from tests.support import builders as b
from tests.support.harness import Harness, body_text
from tests.support.with_cases import ok, with_cases

OFFICE = "changping@example.test"
ISO_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00")


@pytest.fixture
def world(world):
    return with_cases(world)


def test_filters_and_csv(world):
    def names(*args):
        return sorted(c["name"] for c in json.loads(ok(world.cli("cases", "--json", *args))))

    assert names("--status", "complete") == ["张伟", "王芳"]
    assert names("--department", "物理系") == ["张伟", "王芳"]
    assert names("--search", "LZ@EXAMPLE") == ["李喆"]
    assert names("--search", "芳") == ["王芳"]
    assert names("--since", "2000-01-01", "--until", "2000-12-31") == []
    raw = world.cli("cases", "--csv").stdout
    assert raw.startswith("\ufeff"), "a BOM, so that Excel reads UTF-8"
    rows = list(csv.DictReader(io.StringIO(raw.lstrip("\ufeff"))))
    assert [(r["姓名"], r["缺少材料"], r["状态"]) for r in rows] == [
        ("张伟", "", "材料齐全"), ("李喆", "核酸", "材料未齐"), ("王芳", "", "材料齐全")]
    assert all(ISO_WITH_OFFSET.fullmatch(r["登记时间"]) for r in rows)


def test_hold_release_and_the_digest(world):
    case_id = world.ids["张伟"]
    assert "已暂缓报送" in ok(world.cli("case", "hold", str(case_id), "--reason", "核对身份", "--by", "老师甲"))
    ok(world.cli("digest"))
    [digest] = world.smtp.to(OFFICE)
    assert "王芳" in body_text(digest.message) and "张伟" not in body_text(digest.message)
    assert "现为材料齐全" in ok(world.cli("case", "release", str(case_id), "--by", "老师甲"))
    ok(world.cli("digest"))
    assert "张伟" in body_text(world.smtp.to(OFFICE)[1].message)
    shown = json.loads(ok(world.cli("case", "show", str(case_id), "--json")))
    actions = [(e["actor"], e["kind"]) for e in shown["history"] if e["actor"] != "system"]
    assert actions == [("老师甲", "held"), ("老师甲", "released")]


def test_reject_tells_the_student_and_a_resubmission_reopens(world):
    case_id = world.ids["张伟"]
    ok(world.cli("case", "reject", str(case_id), "--reason", "承诺书没有签名", "--item", "承诺书"))
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
    assert bad.returncode == 1 and "没有这项材料：身份证" in bad.stderr


def test_require_approval_lets_only_approved_cases_through(dovecot, smtp, mailbox_user, sqlite_url,
                                                          tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path,
                    extra_config="require_approval = true\n")
    for name, sender in [("张伟", "zw@example.test"), ("王芳", "wf@example.test")]:
        world.deliver(b.mail(sender=sender, subject=f"{name}+物理系+健康宝弹窗",
                             attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    ids = {c["name"]: c["id"] for c in world.cases_json()}
    ok(world.cli("case", "approve", str(ids["王芳"]), "--by", "老师乙"))
    ok(world.cli("digest"))
    [digest] = world.smtp.to(OFFICE)
    assert "王芳" in body_text(digest.message) and "张伟" not in body_text(digest.message)


def test_show_note_and_export(world, tmp_path):
    case_id = world.ids["李喆"]
    ok(world.cli("case", "note", str(case_id), "学生电话说明天补交核酸", "--by", "老师丙"))
    text = ok(world.cli("case", "show", str(case_id)))
    assert "李喆" in text and re.search(r"缺少材料 +核酸", text)
    assert "承诺书" in text and "来自邮件" in text and "补交提醒" in text and "材料未齐" in text
    assert re.search(r"老师丙 +备注 +.*明天补交核酸", text)
    assert "reply_incomplete" not in text and "incomplete" not in text
    out = tmp_path / "export"
    ok(world.cli("case", "export", str(case_id), str(out)))
    assert sorted(p.name for p in out.iterdir()) == ["健康宝.jpg", "情况说明.jpg", "承诺书.jpg", "行程码.jpg"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    assert (out / "承诺书.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    missing = world.cli("case", "show", "9999")
    assert missing.returncode == 1 and "没有登记 9999" in missing.stderr


def test_the_same_rejection_is_told_once(world):
    case_id = world.ids["张伟"]
    for _ in range(2):
        ok(world.cli("case", "reject", str(case_id), "--reason", "承诺书没有签名", "--item", "承诺书"))
    [told] = world.replies_to("zw@example.test")
    text = body_text(told.message)
    assert "只附上「承诺书.jpg」" in text and "登记编号" in text
    ok(world.cli("case", "reject", str(case_id), "--reason", "情况说明不完整", "--item", "情况说明"))
    assert len(world.replies_to("zw@example.test")) == 2


def test_cases_table_speaks_chinese_in_aligned_columns_and_json_has_zoned_times(world):
    text = ok(world.cli("cases"))
    lines = text.splitlines()
    assert lines[0].split() == ["登记编号", "状态", "姓名", "院（系）", "邮箱", "登记时间", "最近更新", "缺少材料"]
    assert "材料齐全" in text and "材料未齐" in text and "complete" not in text
    assert re.search(r"(刚刚|\d+ 分钟前)", text)
    from wcwidth import wcswidth
    # Every column starts at the same terminal column on every line, Chinese or not.
    for heading in ("院（系）", "邮箱", "登记时间"):
        start = wcswidth(lines[0][:lines[0].index(heading)])
        for line in lines[1:]:
            cell = line.split()[lines[0].split().index(heading)]
            assert wcswidth(line[:line.index(cell)]) == start, (heading, line)
    rows = json.loads(ok(world.cli("cases", "--json")))
    for row in rows:
        assert ISO_WITH_OFFSET.fullmatch(row["created_at"]) and ISO_WITH_OFFSET.fullmatch(row["updated_at"])
        created = datetime.fromisoformat(row["created_at"])
        assert created.utcoffset() == timedelta(hours=8)
        assert abs((datetime.now(created.tzinfo) - created).total_seconds()) < 3600
    shown = json.loads(ok(world.cli("case", "show", str(world.ids["张伟"]), "--json")))
    assert ISO_WITH_OFFSET.fullmatch(shown["created_at"])
    assert all(ISO_WITH_OFFSET.fullmatch(event["at"]) for event in shown["history"])


def test_status_speaks_chinese_with_zoned_iso_in_json(world):
    result = world.cli("status")
    assert "上次成功收信" in result.stdout and re.search(r"（(刚刚|\d+ 分钟前)）", result.stdout)
    assert "今日处理" in result.stdout and "提交材料 3 封" in result.stdout
    assert "未报送的登记" in result.stdout and "材料齐全 2 人" in result.stdout
    data = json.loads(world.cli("status", "--json").stdout)
    assert ISO_WITH_OFFSET.fullmatch(data["folders"][0]["last_poll"])
    assert all(ISO_WITH_OFFSET.fullmatch(moment) for moment in data["next_runs"].values())


def test_ages_iso_times_and_display_width_without_servers():
    from datetime import timezone
    from zoneinfo import ZoneInfo

    from intake.staff.view import age, iso, table, width
    now = datetime(2026, 11, 22, 6, 11, 30, 123456, tzinfo=timezone.utc)
    assert [age(now - timedelta(seconds=s), now) for s in (5, 360, 7300, 200000)] == [
        "刚刚", "6 分钟前", "2 小时前", "2 天前"]
    assert iso(now, ZoneInfo("Asia/Shanghai")) == "2026-11-22T14:11:30+08:00"
    lines = table(["姓名", "院（系）"], [["张伟", "物理系"], ["Ann", "x"]])
    assert [width(line[:line.index(cell)]) for line, cell in zip(lines, ["院（系）", "物理系", "x"])] == [6, 6, 6]


def test_read_only_commands_need_no_mail_secrets(world):
    import os
    import subprocess
    import sys

    from tests.support.harness import REPO
    environment = {key: value for key, value in os.environ.items()
                   if key != "INTAKE_TEST_IMAP_PASSWORD"}
    for command in (["cases"], ["case", "show", str(world.ids["张伟"])], ["status"], ["digests"]):
        run = subprocess.run([sys.executable, "-m", "intake", "--config", str(world.config), *command],
                             capture_output=True, text=True, env=environment, cwd=REPO, timeout=120)
        assert "INTAKE_TEST_IMAP_PASSWORD" not in run.stderr, (command, run.stderr)
        assert run.returncode in (0, 1) and run.stdout, (command, run.stderr)  # status: 1 = attention
    poll = subprocess.run([sys.executable, "-m", "intake", "--config", str(world.config), "poll"],
                          capture_output=True, text=True, env=environment, cwd=REPO, timeout=120)
    assert poll.returncode != 0 and "INTAKE_TEST_IMAP_PASSWORD" in poll.stderr, "poll still needs it"


def test_staff_commands_answer_in_chinese(world):
    case_id = world.ids["张伟"]
    assert "审核通过" in ok(world.cli("case", "approve", str(case_id), "--by", "老师乙"))
    assert "已添加备注" in ok(world.cli("case", "note", str(case_id), "已电话核实"))
    other = world.ids["王芳"]
    told = ok(world.cli("case", "reject", str(other), "--reason", "承诺书没有签名", "--item", "承诺书"))
    assert told.startswith(f"登记 {other}：") and "已通知学生" in told
    history = ok(world.cli("case", "show", str(case_id))).split("经过：")[1]
    assert "审核通过" in history and "=" not in history
