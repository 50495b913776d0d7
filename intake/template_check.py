"""Every template rendered with sample data, so a broken edit shows in `check-config`, not in a
student's inbox."""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo

import jinja2

from checks.findings import Problem
from intake.errors import ConfigError
from notifier.compose import FileAttachment
from notifier.digest import DigestAddressing, DigestCase, build_digest
from notifier.render import Rendered, TemplateRenderer
from notifier.replies import ReplyFacts, ReplyWriter

_NOW = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)


def sample_replies(item_keys: tuple[str, ...]) -> list[ReplyFacts]:
    who = {"name": "张伟", "department": "物理系", "case_id": 1}
    return [
        ReplyFacts("reply_complete", **who, received=item_keys, received_all=item_keys,
                   unmatched=["IMG_0001.jpg"]),
        ReplyFacts("reply_incomplete", **who, received=item_keys[:-1], received_all=item_keys[:-1],
                   missing=item_keys[-1:], problems=[Problem("undecodable", "核酸.jpg")],
                   unmatched=["IMG_0001.jpg"]),
        ReplyFacts("reply_incomplete", missing=item_keys, problems=[Problem("encrypted", "材料.zip")]),
        ReplyFacts("reply_instructions"),
        ReplyFacts("reply_cloud_link"),
        ReplyFacts("reply_renew_nucleic_acid", **who,
                   missing=item_keys[-1:], received_all=item_keys[:-1],
                   extra={"nucleic_acid_at": "2026-11-19 08:00", "deadline": "11月21日 17:00"}),
        ReplyFacts("reply_rejected", **who, missing=item_keys[:1],
                   extra={"reason": "承诺书没有签名", "rejected_items": list(item_keys[:1])}),
    ]


def check_templates(renderer: TemplateRenderer, writer: ReplyWriter, item_keys: tuple[str, ...],
                    addressing: DigestAddressing, zone: tzinfo) -> Rendered:
    """Render every kind; returns the sample incomplete reply. Raises ConfigError naming the file."""
    sample = None
    try:
        for facts in sample_replies(item_keys):
            rendered = renderer.render(facts.kind, writer.context(facts))
            if facts.kind == "reply_incomplete" and sample is None:
                sample = rendered
        case = DigestCase(1, "张伟", "物理系", "zhangwei@example.com", _NOW, _NOW, _NOW, (1,),
                          tuple(FileAttachment(f"{key}.jpg", b"\xff\xd8\xff") for key in item_keys))
        for cases in ([case], []):
            build_digest(cases, date_label="2026-11-21", digest_id=1, held_back=[case],
                         renderer=renderer, addressing=addressing, max_bytes=40_000_000, now=_NOW,
                         zone=zone, extra={"hours": writer.signature_context()["hours"]})
    except jinja2.TemplateNotFound as err:
        raise ConfigError(f"replies.templates: template {err.name} is missing") from err
    except jinja2.TemplateSyntaxError as err:
        raise ConfigError(f"replies.templates: {err.name or err.filename} line {err.lineno}: "
                          f"{err.message}") from err
    except jinja2.UndefinedError as err:
        raise ConfigError(f"replies.templates: a template uses an unknown variable: {err.message}") from err
    return sample
