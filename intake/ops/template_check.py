"""Every template rendered with sample data, so a broken edit shows in `check-config`, not in a
student's inbox."""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Any

import jinja2

from checks.findings import Problem
from intake.errors import ConfigError
from notifier.compose import FileAttachment
from notifier.digest import DigestAddressing, DigestCase, build_digest
from notifier.render import Rendered, TemplateRenderer
from notifier.replies import ReplyFacts, ReplyWriter

_NOW = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)


def _about_a_student(kind: str, **facts: Any) -> ReplyFacts:
    return ReplyFacts(kind, name="张伟", department="物理系", case_id=1, **facts)


def sample_replies(item_keys: tuple[str, ...]) -> list[ReplyFacts]:
    return [
        _about_a_student("reply_complete", received=item_keys, received_all=item_keys,
                   unmatched=["IMG_0001.jpg"]),
        _about_a_student("reply_incomplete", received=item_keys[:-1], received_all=item_keys[:-1],
                   missing=item_keys[-1:], problems=[Problem("undecodable", "核酸.jpg")],
                   unmatched=["IMG_0001.jpg"]),
        ReplyFacts("reply_incomplete", missing=item_keys, problems=[Problem("encrypted", "材料.zip")]),
        _about_a_student("reply_unchanged", received_all=item_keys),
        _about_a_student("reply_question", received_all=item_keys,
                   extra={"state": "complete", "next_digest": "今天 17:00"}),
        ReplyFacts("reply_question", extra={"state": "none"}),
        _about_a_student("reply_answer", extra={"answer": "今天 17:00 报送。", "question": "什么时候报送？",
                                                 "asked_subject": "请问"}),
        ReplyFacts("reply_instructions"),
        ReplyFacts("reply_cloud_link"),
        _about_a_student("reply_renew_nucleic_acid",
                   missing=item_keys[-1:], received_all=item_keys[:-1],
                   extra={"nucleic_acid_at": "2026-11-19 08:00", "deadline": "11月21日 17:00"}),
        _about_a_student("reply_positive", extra={"sampled_at": "11月21日 14:05"}),
        _about_a_student("reply_popup_four"),
        _about_a_student("reply_not_beijing", extra={"places": ["上海市"]}),
        _about_a_student("reply_no_popup"),
        _about_a_student("reply_nucleic_acid_unclear", extra={"doubts": ["核酸采样时间：未能识别"]}),
        _about_a_student("alert_positive", extra={"sampled_at": "11月21日 14:05",
                                                   "sender": "zhangwei@example.com"}),
        _about_a_student("reply_rejected", missing=item_keys[:1],
                   extra={"reason": "承诺书没有签名", "rejected_items": list(item_keys[:1])}),
    ]


def check_templates(renderer: TemplateRenderer, writer: ReplyWriter, item_keys: tuple[str, ...],
                    addressing: DigestAddressing, zone: tzinfo) -> Rendered:
    """Render every kind; returns the sample incomplete reply. Raises ConfigError naming the file."""
    sample: Rendered | None = None
    try:
        for facts in sample_replies(item_keys):
            rendered = renderer.render(facts.kind, writer.context(facts))
            if facts.kind == "reply_incomplete" and sample is None:
                sample = rendered
        case = DigestCase(1, "张伟", "物理系", "zhangwei@example.com", _NOW, _NOW, _NOW, (1,),
                          tuple(FileAttachment(f"{key}.jpg", b"\xff\xd8\xff") for key in item_keys))
        renderer.render("approval_reminder", {
            "count": 1, "date": "2026-11-21", "digest_time": "17:00", "desk_url": "https://desk.example/",
            "department_name": addressing.department_name,
            "cases": [{"case_id": 1, "name": "张伟", "department": "物理系",
                       "completed_at": "2026-11-21 09:00", "flags": ""}]})
        for cases in ([case], []):
            build_digest(cases, date_label="2026-11-21", digest_id=1, held_back=[case],
                         renderer=renderer, addressing=addressing, max_bytes=40_000_000, now=_NOW,
                         zone=zone, extra={"hours": writer.signature_context()["hours"],
                                           "item_count": writer.signature_context()["item_count"],
                                           "waiting": 0})
    except jinja2.TemplateError as err:
        raise ConfigError(describe_template_error(err)) from err
    if sample is None:
        raise ValueError("sample_replies lost its reply_incomplete")
    return sample


def check_configured_templates(settings, templates: TemplateRenderer) -> Rendered:
    """check_templates for the operator's settings: what `check-config` and `intake run` call."""
    from intake.app import digest_addressing, reply_writer  # app imports this module
    rules = settings.submission_rules()
    writer = reply_writer(settings, templates)
    addressing = digest_addressing(settings)
    return check_templates(templates, writer, rules.item_keys, addressing, settings.zone)


def describe_template_error(err: jinja2.TemplateError) -> str:
    """The template file and line at fault and what is wrong there, for the operator."""
    if isinstance(err, jinja2.TemplateNotFound):
        return f"replies.templates: template {err.name} is missing"
    if isinstance(err, jinja2.TemplateSyntaxError):
        return (f"replies.templates: {err.filename or err.name} line {err.lineno}: {err.message}; "
                f"fix the template, then run `intake check-config`")
    where = _template_position(err)
    place = f"{where[0]} line {where[1]}" if where else "a template"
    if isinstance(err, jinja2.UndefinedError):
        return (f"replies.templates: {place} uses an unknown variable: {err.message}; "
                f"fix the template, then run `intake check-config`")
    return f"replies.templates: {place}: {err.message or type(err).__name__}"


def _template_position(err: BaseException) -> tuple[str, int] | None:
    """Jinja puts the template's own file and line into the traceback: the innermost one."""
    found = None
    tb = err.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found
