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
    assert rows[1][:5] == (1, "学生1", "物理系", "s1@example.test", "2026-11-21 17:30")
