"""Rendering and MIME building, without servers."""
from __future__ import annotations

import email
import email.policy
import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import jinja2
import pytest
from openpyxl import load_workbook

from checks.findings import Problem
from checks.rules import Rules
from notifier.compose import FileAttachment, build_message
from notifier.digest import DigestCase, register_xlsx, split_into_parts
from notifier.render import Rendered, TemplateRenderer
from notifier.replies import REPLY_KINDS, ReplyFacts, ReplyWriter
from notifier.wording import describe
from tests.support.servers import TEMPLATES

NOW = datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc)


def _writer(folder=TEMPLATES):
    return ReplyWriter(TemplateRenderer(folder), Rules(), "dept@example.test", "健康宝弹窗材料收取", "昌平学工办")


def test_every_reply_kind_renders_in_chinese():
    writer = _writer()
    for kind in REPLY_KINDS:
        facts = ReplyFacts(kind, name="张伟", department="物理系", case_id=7, missing=("核酸",),
                           extra={"hours": 48, "nucleic_acid_at": "2026-11-19 08:00", "reason": "r",
                                  "rejected_items": []})
        rendered = TemplateRenderer(TEMPLATES).render(kind, writer.context(facts))
        assert rendered.subject and "\n" not in rendered.subject
        assert "同学" in rendered.text and "<p>" in rendered.html


def test_a_missing_variable_is_an_error_not_an_empty_string(tmp_path):
    (tmp_path / "x.subject.j2").write_text("{{ name }}")
    (tmp_path / "x.txt.j2").write_text("{{ nmae }}")
    (tmp_path / "x.html.j2").write_text("")
    with pytest.raises(jinja2.UndefinedError):
        TemplateRenderer(tmp_path).render("x", {"name": "张伟"})


def test_html_is_escaped_and_subject_is_one_line(tmp_path):
    (tmp_path / "x.subject.j2").write_text("{{ name }}")
    (tmp_path / "x.txt.j2").write_text("{{ name }}")
    (tmp_path / "x.html.j2").write_text("<b>{{ name }}</b>")
    rendered = TemplateRenderer(tmp_path).render("x", {"name": "<i>a</i>\r\nBcc: x@y"})
    assert rendered.subject == "<i>a</i> Bcc: x@y"
    assert rendered.html == "<b>&lt;i&gt;a&lt;/i&gt;\r\nBcc: x@y</b>"


def test_attachment_names_are_quoted_rfc2047_words_that_decode_back():
    name = "李喆+化学与分子工程学院（系）+健康宝弹窗-一个很长很长的名字.zip"
    mail = build_message(sender="dept@example.test", sender_name="健康宝", to=["o@example.test"],
                         rendered=Rendered("主题", "正文", "<p>正文</p>"), message_id="<m@x>",
                         date=NOW, attachments=[FileAttachment(name, b"PK\x05\x06" + b"\0" * 18)])
    raw = mail.raw.decode("ascii")
    assert 'filename="=?utf-8?b?' in raw and "filename*" not in raw
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == name
    assert parsed["Subject"] == "主题" and parsed["Message-ID"] == "<m@x>"


def test_problem_sentences_name_the_file():
    assert "核酸.jpg" in describe(Problem("undecodable", "核酸.jpg"))
    assert "GIF" in describe(Problem("type_not_allowed", "a.gif", "gif"))
    assert describe(Problem("something-new", "x"))  # unknown codes still say something


def _case(index: int, size: int) -> DigestCase:
    return DigestCase(index, f"学生{index}", "物理系", f"s{index}@example.test", NOW, NOW, NOW, (index,),
                      (FileAttachment("核酸.jpg", b"x" * size),))


def test_parts_keep_order_and_fit():
    cases = [_case(i, 100_000) for i in range(10)]
    parts = split_into_parts(cases, max_bytes=500_000)
    assert [c.case_id for part in parts for c in part] == list(range(10))
    assert all(len(part) >= 1 for part in parts) and len(parts) > 1
    assert split_into_parts([], 500_000) == [[]]
    assert split_into_parts([_case(1, 10_000_000)], 500_000) == [[_case(1, 10_000_000)]]


def test_register_rows_in_shanghai_time():
    sheet = load_workbook(io.BytesIO(register_xlsx([_case(1, 10)], ZoneInfo("Asia/Shanghai")))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[3][:3] == (1, "学生1", "物理系") and rows[3][12] == "s1@example.test"


def test_register_is_the_office_form_filled_from_what_was_read():
    from notifier.register import NOTE, REGISTER_COLUMNS
    zone = ZoneInfo("Asia/Shanghai")
    case = DigestCase(1, "张伟", "物理系", "zw@example.test", NOW, NOW, NOW, (1,), (),
                      sampled_at=datetime(2026, 11, 21, 6, 5, tzinfo=timezone.utc),
                      facts={"情况说明": {"looks_like": "情况说明", "现住址": "北京市昌平区",
                                          "手机号码": "13800138000", "身体健康状况": "良好",
                                          "身份证号": "11010519491231002X", "是否去过中高风险地区": "否",
                                          "近7天行程轨迹": "北京市"},
                             "健康宝": {"looks_like": "健康宝", "popup": 3}})
    book = load_workbook(io.BytesIO(register_xlsx([case], zone)))
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=True))
    assert "健康宝异常人员信息登记表" in rows[0][0] and rows[1][0] == NOTE and "机器读取" in NOTE
    assert rows[2] == REGISTER_COLUMNS
    assert rows[3] == (1, "张伟", "物理系", "北京市昌平区", "13800138000", "良好", "11010519491231002X",
                       "否", "北京市", None, datetime(2026, 11, 21, 14, 5), 3, "zw@example.test")
    assert sheet.cell(4, 11).number_format == "yyyy-mm-dd hh:mm"
    assert sheet.freeze_panes == "A4"
    assert sheet.page_setup.orientation == "landscape" and int(sheet.page_setup.paperSize) == 9  # A4
    assert sheet.column_dimensions["D"].width >= 30
