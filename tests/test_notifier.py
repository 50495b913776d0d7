"""Rendering and MIME building, without servers."""
from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone

import jinja2
import pytest

from checks.findings import Problem
from checks.rules import Rules
from notifier.compose import FileAttachment, build_message
from notifier.digest import DigestCase, split_into_parts
from notifier.render import Rendered, TemplateRenderer
from notifier.replies import REPLY_KINDS, ReplyFacts, ReplyWriter, Signature
from notifier.wording import describe
from tests.support.servers import TEMPLATES

NOW = datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc)


CONTACT = "王老师 010-62750000 wang@example.edu.cn（工作日 9:00-17:00）"
FORMS = {"承诺书": FileAttachment("附件1 承诺书.docx", b"PK\x03\x04 form one"),
         "情况说明": FileAttachment("附件2 健康宝异常人员信息登记表.xlsx", b"PK\x03\x04 form two")}


def _writer(folder=TEMPLATES, hours=48, forms=None):
    return ReplyWriter(TemplateRenderer(folder), Rules(), "dept@example.test", "健康宝弹窗材料收取",
                       "昌平学工办", signature=Signature("物理系", CONTACT), forms=forms or {},
                       nucleic_acid_hours=hours)


def _every_kind(name="张伟", department="物理系"):
    for kind in REPLY_KINDS:
        yield ReplyFacts(kind, name=name, department=department, case_id=7, missing=("核酸",),
                         received_all=("承诺书", "情况说明", "健康宝", "行程码"),
                         extra={"nucleic_acid_at": "2026-11-19 08:00", "deadline": "11月21日 17:00",
                                "reason": "r", "rejected_items": []})


def _render(writer, facts):
    return TemplateRenderer(TEMPLATES).render(facts.kind, writer.context(facts))


def test_every_reply_kind_renders_in_chinese_and_ends_with_the_department_and_contact():
    writer = _writer()
    for facts in _every_kind():
        rendered = _render(writer, facts)
        assert rendered.subject and "\n" not in rendered.subject
        assert "同学" in rendered.text and "<p>" in rendered.html
        assert rendered.text.rstrip().splitlines()[-2:] == ["物理系", f"联系人：{CONTACT}"], facts.kind
        assert rendered.html.rstrip().endswith(f"物理系<br>联系人：{CONTACT}</p>"), facts.kind
        assert "案件编号" not in rendered.text
        if facts.kind not in {"reply_instructions", "reply_cloud_link"}:
            assert "登记编号：7" in rendered.text


def test_no_template_hard_codes_the_nucleic_acid_hours():
    for template in TEMPLATES.glob("*.j2"):
        assert "48" not in template.read_text(encoding="utf-8"), template.name
    writer = _writer(hours=72)
    for facts in _every_kind():
        text = _render(writer, facts).text
        assert "48" not in text, facts.kind
    renew = _render(writer, next(f for f in _every_kind() if f.kind == "reply_renew_nucleic_acid")).text
    assert "72 小时" in renew and "2026-11-19 08:00" in renew and "11月21日 17:00" in renew
    assert "只附上「核酸.jpg」" in renew and "不必重发" in renew
    complete = _render(writer, next(f for f in _every_kind() if f.kind == "reply_complete")).text
    assert "72 小时" in complete


def _instruction_count(text):
    """How many ways of sending this reply tells the student about."""
    return text.count("请这样发送") + text.count("请补交：")


def test_an_incomplete_case_gets_one_instruction_for_just_the_missing_item():
    facts = ReplyFacts("reply_incomplete", name="李喆", department="化学系", case_id=3,
                       received=("承诺书",), received_all=("承诺书", "情况说明", "健康宝", "行程码"),
                       missing=("核酸",))
    text = _render(_writer(), facts).text
    assert _instruction_count(text) == 1
    assert "回复本邮件，只附上「核酸.jpg」" in text and "新的 zip" in text
    assert "李喆+化学系+健康宝弹窗.zip" in text and "张伟" not in text
    assert "已收到的承诺书、情况说明、健康宝、行程码不必重发" in text
    assert "五张图片" not in text and "请这样发送" not in text


def test_nothing_usable_gets_the_full_instructions_and_never_dont_resend():
    from checks.findings import Problem as P
    facts = ReplyFacts("reply_incomplete", name="王芳", department="数学系", case_id=4,
                       missing=tuple(Rules().item_keys), problems=[P("encrypted", "王芳.zip")])
    text = _render(_writer(), facts).text
    assert _instruction_count(text) == 1 and "请这样发送" in text
    assert "不必重发" not in text and "已收到" not in text
    assert "王芳+数学系+健康宝弹窗.zip" in text
    assert all(f"{key}.jpg" in text for key in Rules().item_keys)
    assert "密码写在邮件正文里" in text and "去掉密码" not in text


def test_an_unknown_name_gets_the_full_instructions_with_the_rule():
    facts = ReplyFacts("reply_incomplete", received=("核酸",), received_all=("核酸",),
                       missing=("承诺书",))
    rendered = _render(_writer(), facts)
    assert _instruction_count(rendered.text) == 1 and "请这样发送" in rendered.text
    assert "换成你自己的姓名和院系" in rendered.text and "不必重发" not in rendered.text
    assert rendered.text.startswith("同学你好：") and "张伟" not in rendered.text  # no stranger's name


def _attached(mail):
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    return {part.get_filename(): part.get_content() for part in parsed.iter_attachments()}


def test_blank_forms_ride_with_the_replies_that_ask_for_them():
    writer = _writer(forms=FORMS)
    def sent(facts):
        return writer.write(facts, "s@example.test", NOW, None, [])
    everything = _attached(sent(ReplyFacts("reply_instructions")))
    assert everything == {"附件1 承诺书.docx": b"PK\x03\x04 form one",
                          "附件2 健康宝异常人员信息登记表.xlsx": b"PK\x03\x04 form two"}
    who = {"name": "张伟", "department": "物理系", "case_id": 1}
    asks_pledge = sent(ReplyFacts("reply_incomplete", **who, received_all=("核酸",),
                                  missing=("承诺书", "健康宝")))
    assert set(_attached(asks_pledge)) == {"附件1 承诺书.docx"}
    raw = asks_pledge.raw.decode("ascii")
    assert 'name="=?utf-8?b?' in raw and 'filename="=?utf-8?b?' in raw
    assert "附件1 承诺书.docx" in _render(writer, ReplyFacts("reply_incomplete", **who,
                                                            received_all=("核酸",), missing=("承诺书",))).text
    assert _attached(sent(ReplyFacts("reply_incomplete", **who, received_all=("承诺书",),
                                     missing=("核酸",)))) == {}
    assert _attached(sent(ReplyFacts("reply_complete", **who))) == {}
    rejected = sent(ReplyFacts("reply_rejected", **who, missing=("情况说明",),
                               extra={"reason": "未签名", "rejected_items": ["情况说明"]}))
    assert set(_attached(rejected)) == {"附件2 健康宝异常人员信息登记表.xlsx"}


def test_our_reply_subjects_still_name_the_case():
    from checks.names import SubmissionName, parse_submission_name
    writer = _writer()
    for facts in _every_kind(name="李喆", department="化学系"):
        if facts.name and facts.kind not in {"reply_instructions", "reply_cloud_link"}:
            subject = _render(writer, facts).subject
            assert parse_submission_name(f"Re: {subject}") == SubmissionName("李喆", "化学系"), subject


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
    assert "核酸.jpg" in describe(Problem("undecodable", "核酸.jpg"), 5)
    assert "GIF" in describe(Problem("type_not_allowed", "a.gif", "gif"), 5)
    assert describe(Problem("something-new", "x"), 5)  # unknown codes still say something


def test_problem_sentences_count_the_configured_items():
    # A sixth item in the rules is a config change: the sentences count from it, never say 五.
    assert "只放六张材料图片" in describe(Problem("too_many_members", "a.zip", "40"), 6)
    assert "把六张图片" in describe(Problem("too_deep", "b.zip"), 6)
    assert "五" not in describe(Problem("too_many_members", "a.zip", "40"), 6)


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


def test_a_long_chinese_subject_does_not_start_with_a_blank():
    subject = "【化学与分子工程学院】健康宝弹窗材料汇总 2026-11-21：12 人（第 1/3 封）"
    mail = build_message(sender="dept@example.test", sender_name="健康宝", to=["o@example.test"],
                         rendered=Rendered(subject, "正文", "<p>正文</p>"), message_id="<m@x>", date=NOW)
    assert b"Subject: =?utf-8?b?" in mail.raw
    assert email.message_from_bytes(mail.raw, policy=email.policy.default)["Subject"] == subject


def test_the_replies_count_the_configured_items_not_a_fixed_five():
    """The item list is data: a sixth item in the rules is counted in what the student reads."""
    from dataclasses import replace

    from checks.rules import DEFAULT_ITEMS, ItemRule
    sixth = ItemRule("体温", ("体温", "temperature"), "近三天的体温记录")
    rules = replace(Rules(), items=(*DEFAULT_ITEMS, sixth))
    writer = ReplyWriter(TemplateRenderer(TEMPLATES), rules, "dept@example.test", "健康宝弹窗材料收取",
                         "昌平学工办", signature=Signature("物理系", CONTACT))
    keys = rules.item_keys
    complete = _render(writer, ReplyFacts("reply_complete", name="张伟", department="物理系",
                                          case_id=7, received_all=keys))
    assert "六项已全部收到" in complete.text and "六项已全部收到" in complete.html
    assert "五项" not in complete.text
    assert "六张图片" in _render(writer, ReplyFacts("reply_cloud_link")).text
    assert "五项" in _render(_writer(), ReplyFacts("reply_complete", name="张伟", department="物理系",
                                                   case_id=7, received_all=Rules().item_keys)).text


@pytest.mark.parametrize("number, word", [(1, "一"), (5, "五"), (10, "十"), (12, "十二"), (20, "二十"),
                                          (36, "三十六")])
def test_counts_are_written_as_a_chinese_sentence_writes_them(number, word):
    from notifier.wording import count_word
    assert count_word(number) == word
