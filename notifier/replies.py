"""The automatic replies to students, from what the checks found.

Each reply gives one instruction. Which one is decided here, once, so that no template can say
"send only what is missing" and "send them all in a zip" in the same mail:
- "full": nothing usable has arrived, or we could not read a name: every item and the rule;
- "missing": some items are in: reply with just the missing pictures, or send a new zip;
- "none": nothing more to send.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast
from datetime import datetime

from checks.findings import Problem
from checks.rules import Rules
from notifier.compose import FileAttachment, OutgoingMail, build_message, new_message_id
from notifier.render import TemplateRenderer
from notifier.wording import count_word, describe

REPLY_KINDS = ("reply_complete", "reply_incomplete", "reply_instructions", "reply_cloud_link",
               "reply_renew_nucleic_acid", "reply_rejected", "reply_positive", "reply_popup_four",
               "reply_not_beijing", "reply_no_popup", "reply_nucleic_acid_unclear", "reply_unchanged",
               "reply_question", "reply_answer")
_ASK_FOR_EVERYTHING = {"reply_instructions", "reply_cloud_link"}
# Never a stranger's name as if it were theirs: the rule is shown with what to put where.
_PLACEHOLDER_NAME = "你的姓名"
_PLACEHOLDER_DEPARTMENT = "你的院系"


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


@dataclass(frozen=True)
class Signature:
    """Who answers: the department's name and a person to ask, at the end of every mail."""
    department: str = ""
    contact: str = ""
    duty_contact: str = ""  # a phone answered outside office hours (阳性)


class ReplyWriter:
    def __init__(self, renderer: TemplateRenderer, rules: Rules, sender: str, sender_name: str,
                 office_name: str, *, signature: Signature = Signature(),
                 forms: Mapping[str, FileAttachment] | None = None, nucleic_acid_hours: int = 48):
        self._renderer = renderer
        self._rules = rules
        self._sender = sender
        self._sender_name = sender_name
        self._office = office_name
        self._signature = signature
        self._forms = dict(forms or {})
        self._hours = nucleic_acid_hours

    @property
    def nucleic_acid_hours(self) -> int:
        return self._hours

    @property
    def item_keys(self) -> tuple[str, ...]:
        return self._rules.item_keys

    def signature_context(self) -> dict:
        """What every mail's templates share, replies and digest alike: the sign-off, the office,
        the hours a 核酸 result is good for, and how many items the rules ask for (五)."""
        return {"department_name": self._signature.department or self._sender_name,
                "contact": self._signature.contact, "duty_contact": self._signature.duty_contact, "sender_name": self._sender_name,
                "office": self._office, "hours": self._hours,
                "item_count": count_word(len(self.item_keys))}

    def plan(self, facts: ReplyFacts) -> str:
        """The one instruction this reply gives: "full", "missing" or "none"."""
        if facts.kind in _ASK_FOR_EVERYTHING:
            return "full"
        if facts.kind == "reply_question":  # how to submit, only to one who has no case yet
            return "none" if facts.case_id else "full"
        if facts.kind == "reply_incomplete":
            return "missing" if facts.name and facts.received_all else "full"
        return ("none" if facts.kind in {"reply_complete", "reply_unchanged", "reply_answer"}
                else "missing")

    def asked_items(self, facts: ReplyFacts) -> list[str]:
        """The items this reply asks the student to send, in the rules' order."""
        plan = self.plan(facts)
        if plan == "full":
            return list(self.item_keys)
        if plan == "none":
            return []
        rejected = cast(Iterable[str], facts.extra.get("rejected_items", ()))
        wanted = {*facts.missing, *rejected}
        return [key for key in self.item_keys if key in wanted]

    def forms_for(self, facts: ReplyFacts) -> list[FileAttachment]:
        return [self._forms[key] for key in self.asked_items(facts) if key in self._forms]

    def context(self, facts: ReplyFacts) -> dict:
        hints = {rule.key: rule.hint.replace("{hours}", str(self._hours)) for rule in self._rules.items}
        items = [{"key": key, "hint": hints[key]} for key in self.item_keys]
        name, department = facts.name or "", facts.department or ""
        example_name = name or _PLACEHOLDER_NAME
        example_department = department or self._signature.department or _PLACEHOLDER_DEPARTMENT
        asked = self.asked_items(facts)
        forms = self.forms_for(facts)
        parent = bool(facts.extra.get("parent"))
        greeting = "家长您好：" if parent else (f"{name}同学：" if name else "同学你好：")
        return {
            **self.signature_context(),
            "greeting": greeting,
            "parent": parent,    # a parent wrote for the student: greeted so, asked to copy them
            "name": name,
            "department": department,
            "name_known": bool(facts.name),
            "case_id": facts.case_id or "",
            "received": list(facts.received),
            "received_all": list(facts.received_all),
            "missing": [{"key": key, "hint": hints.get(key, "")} for key in facts.missing],
            "asked": [{"key": key, "hint": hints.get(key, ""), "file": f"{key}.jpg"} for key in asked],
            "problems": [describe(problem, len(self.item_keys)) for problem in facts.problems
                         if problem.code != "taken_as"],
            # Pictures named as phones name them, filed by what they show: "IMG_…jpg → 核酸".
            "filed": [f"{problem.subject} → {problem.detail}" for problem in facts.problems
                      if problem.code == "taken_as"],
            "encrypted": any(problem.code == "encrypted" for problem in facts.problems),
            "unmatched": list(facts.unmatched),
            "items": items,
            "plan": self.plan(facts),
            "rule_name": f"{example_name}+{example_department}+{self._rules.name_suffix}",
            "rule_example": f"{example_name}+{example_department}+{self._rules.name_suffix}.zip",
            "forms": [form.name for form in forms],
            "forwarded": False,
            "sampled_at": None,  # 核酸 sampling time as read from the picture, "11月19日 08:32"
            "places": [],        # 行程码 cities as read
            "doubts": [],
            "valid_until": "",   # 已收齐: until when the 核酸 counts ("11月23日 14:05")        # what could not be read for sure on the 核酸 picture
            "sender": "",
            "next_digest": "",   # "今天 17:00": when the next digest goes to the office
            "state": "none",     # reply_question: what is said of the case
            "answer": "", "question": "", "asked_subject": "",  # reply_answer: staff's answer
            **facts.extra,
        }

    def write(self, facts: ReplyFacts, to: str, now: datetime, in_reply_to: str | None,
              references: Sequence[str]) -> OutgoingMail:
        rendered = self._renderer.render(facts.kind, self.context(facts))
        refs = list(dict.fromkeys([*references, *([in_reply_to] if in_reply_to else [])]))
        return build_message(sender=self._sender, sender_name=self._sender_name, to=[to],
                             rendered=rendered, message_id=new_message_id(self._sender), date=now,
                             in_reply_to=in_reply_to, references=refs, auto_reply=True,
                             attachments=self.forms_for(facts))

    def write_alert(self, facts: ReplyFacts, recipients: Sequence[str], now: datetime) -> OutgoingMail:
        """A mail to staff that cannot wait for the digest (e.g. a 阳性 result was read)."""
        rendered = self._renderer.render(facts.kind, self.context(facts))
        return build_message(sender=self._sender, sender_name=self._sender_name, to=list(recipients),
                             rendered=rendered, message_id=new_message_id(self._sender), date=now)
