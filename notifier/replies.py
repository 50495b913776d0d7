"""The automatic replies to students, from what the checks found."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from checks.findings import Problem
from checks.rules import Rules
from notifier.compose import OutgoingMail, build_message, new_message_id
from notifier.render import TemplateRenderer
from notifier.wording import describe

REPLY_KINDS = ("reply_complete", "reply_incomplete", "reply_instructions", "reply_cloud_link",
               "reply_renew_nucleic_acid", "reply_positive", "reply_popup_four", "reply_not_beijing")


@dataclass(frozen=True)
class ReplyFacts:
    kind: str
    name: str | None = None
    department: str | None = None
    case_id: int | None = None
    received: Sequence[str] = ()       # usable items this mail brought
    received_all: Sequence[str] = ()   # usable items the case now has
    missing: Sequence[str] = ()        # item keys still missing or unusable
    problems: Sequence[Problem] = field(default_factory=tuple)
    unmatched: Sequence[str] = ()
    extra: Mapping[str, object] = field(default_factory=dict)  # what one kind alone needs


class ReplyWriter:
    def __init__(self, renderer: TemplateRenderer, rules: Rules, sender: str, sender_name: str,
                 office_name: str):
        self._renderer = renderer
        self._rules = rules
        self._sender = sender
        self._sender_name = sender_name
        self._office = office_name

    @property
    def item_keys(self) -> tuple[str, ...]:
        return self._rules.item_keys

    def context(self, facts: ReplyFacts) -> dict:
        items = [{"key": rule.key, "hint": rule.hint} for rule in self._rules.items]
        hints = {rule.key: rule.hint for rule in self._rules.items}
        return {
            "name": facts.name or "",
            "department": facts.department or "",
            "name_known": bool(facts.name),
            "case_id": facts.case_id or "",
            "received": list(facts.received),
            "received_all": list(facts.received_all),
            "missing": [{"key": key, "hint": hints.get(key, "")} for key in facts.missing],
            "problems": [describe(problem) for problem in facts.problems],
            "unmatched": list(facts.unmatched),
            "items": items,
            "rule_example": f"张伟+物理系+{self._rules.name_suffix}.zip",
            "office": self._office,
            "forwarded": False,
            "sampled_at": None,  # 核酸 sampling time as read from the picture, "11月19日 08:32"
            "places": [],        # 行程码 cities as read
            "sender": "",
            **facts.extra,
        }

    def write(self, facts: ReplyFacts, to: str, now: datetime, in_reply_to: str | None,
              references: Sequence[str]) -> OutgoingMail:
        rendered = self._renderer.render(facts.kind, self.context(facts))
        refs = list(dict.fromkeys([*references, *([in_reply_to] if in_reply_to else [])]))
        return build_message(sender=self._sender, sender_name=self._sender_name, to=[to],
                             rendered=rendered, message_id=new_message_id(self._sender), date=now,
                             in_reply_to=in_reply_to, references=refs, auto_reply=True)

    def write_alert(self, facts: ReplyFacts, recipients: Sequence[str], now: datetime) -> OutgoingMail:
        """A mail to staff that cannot wait for the digest (e.g. a 阳性 result was read)."""
        rendered = self._renderer.render(facts.kind, self.context(facts))
        return build_message(sender=self._sender, sender_name=self._sender_name, to=list(recipients),
                             rendered=rendered, message_id=new_message_id(self._sender), date=now)
