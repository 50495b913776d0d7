"""What kind of mail this is, and whether answering it could start a mail loop."""
from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from checks.addresses import normal_address
from checks.rules import Rules


class MailKind(str, enum.Enum):
    OWN = "own"                # sent by this mailbox itself
    BOUNCE = "bounce"          # a delivery failure report
    REPORT = "report"          # a machine-made report, e.g. a DMARC aggregate report (rua)
    AUTO_REPLY = "auto-reply"  # vacation notices, list traffic and other automatic mail
    SUBMISSION = "submission"
    CLOUD_LINK = "cloud-link"  # materials sent as a cloud-attachment link
    QUESTION = "question"      # about 健康宝/弹窗, but nothing attached
    OTHER = "other"
    # No address to answer could be read, and nothing says a machine sent it: a person's mail,
    # perhaps, that staff must read (a bounce is decided by positive evidence only).
    NO_SENDER = "no-sender"


@dataclass(frozen=True)
class MailFacts:
    sender: str  # "" when no address could be read from From or Sender
    subject: str
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    return_path: str | None = None  # None: no Return-Path header; "": the null sender <>
    content_type: str = "text/plain"
    body_text: str = ""
    has_materials: bool = False
    attachment_names: Sequence[str] = ()
    reply_to: Sequence[str] = ()  # the Reply-To addresses, parsed from the raw header

    def header(self, name: str) -> list[str]:
        return [value for value in self.headers.get(name.lower(), ())]


# Robot mailboxes, also in suffixed forms such as noreply-dmarc-support@ or mailer-daemon+x@.
_ROBOT_LOCALPARTS = re.compile(
    r"^(?:mailer-?daemon|mail-daemon|postmaster|no-?reply|do-?not-?reply|donotreply|bounces?)"
    r"(?:[-_.+][^@]*)?@", re.IGNORECASE)
# Senders of DMARC reports name themselves so (dmarcreport@, dmarc_agg@, opendmarc@...).
_REPORT_LOCALPARTS = re.compile(r"^[^@]*dmarc[^@]*@", re.IGNORECASE)
# DMARC aggregate reports (RFC 7489 section 7.2.1.1): "Report Domain: x Submitter: y Report-ID: z".
_REPORT_SUBJECT = re.compile(r"report\s*domain\s*:.*submitter\s*:", re.IGNORECASE | re.DOTALL)
# receiver!policy-domain!begin!end[!id].zip / .xml.gz, as the RFC names the report files.
_REPORT_FILE = re.compile(r"(?:^[^!]+![^!]+!\d+!\d+(?:![^!]*)?\.(?:zip|xml|gz|xml\.gz)$)|\.xml\.gz$",
                          re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"自动回复|自動回覆|auto(matic)?[ -]?reply|autoreply|out of (the )?office|vacation|休假|不在办公室",
    re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"系统退信|退信|undeliverable|undelivered|delivery status notification|delivery failure|"
    r"returned mail|failure notice|mail delivery failed", re.IGNORECASE)
_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
# Delivery systems that sign their reports with a name but no usable address
# (`Mail Delivery System <MAILER-DAEMON>`): read in the header's text only when no address was.
_DELIVERY_SYSTEM = re.compile(r"mailer-?daemon|mail-daemon|postmaster|mail delivery (sub)?system",
                              re.IGNORECASE)


def is_robot_address(address: str) -> bool:
    """A mailbox that no person reads: answering it only makes backscatter."""
    return bool(_ROBOT_LOCALPARTS.match(address) or _REPORT_LOCALPARTS.match(address))


def is_report(facts: MailFacts) -> bool:
    """A machine-made report (DMARC aggregate, delivery status), whatever it carries."""
    return (facts.content_type == "multipart/report"
            or bool(_REPORT_SUBJECT.search(facts.subject))
            or any(_REPORT_FILE.search(name.strip()) for name in facts.attachment_names))


class _Looked:
    """One mail as the robot rules see it; the Reply-To addresses are normalised once, when asked."""

    def __init__(self, facts: MailFacts, own_addresses: frozenset[str]):
        self.facts = facts
        self.sender = normal_address(facts.sender)
        self.own_addresses = own_addresses

    @functools.cached_property
    def reply_to(self) -> list[str]:
        return [normal_address(address) for address in self.facts.reply_to]


# The robot rules: each names one sign that a machine sent the mail, and what kind that makes it.
# They are asked in this order and the first that answers decides (as Mailman 3's rules chain).
# A bounce is known by positive evidence (the null Return-Path, a delivery report, a delivery
# system's name or address, a bounce's subject), never by a sender that could not be read.

def _our_own(mail: _Looked) -> MailKind | None:
    return MailKind.OWN if mail.sender and mail.sender in mail.own_addresses else None


def _null_return_path(mail: _Looked) -> MailKind | None:
    path = mail.facts.return_path
    return MailKind.BOUNCE if path is not None and path.strip() in {"", "<>"} else None


def _delivery_report(mail: _Looked) -> MailKind | None:
    return MailKind.BOUNCE if mail.facts.content_type == "multipart/report" else None


def _delivery_system_without_address(mail: _Looked) -> MailKind | None:
    if not mail.sender and any(_DELIVERY_SYSTEM.search(value)
                               for value in mail.facts.header("from") + mail.facts.header("sender")):
        return MailKind.BOUNCE
    return None


def _machine_report(mail: _Looked) -> MailKind | None:
    if (is_report(mail.facts) or _REPORT_LOCALPARTS.match(mail.sender)
            or any(_REPORT_LOCALPARTS.match(address) for address in mail.reply_to)):
        return MailKind.REPORT
    return None


def _robot_sender_or_bounce_subject(mail: _Looked) -> MailKind | None:
    if _ROBOT_LOCALPARTS.match(mail.sender) or _BOUNCE_SUBJECT.search(mail.facts.subject):
        return MailKind.BOUNCE
    return None


def _robot_reply_to(mail: _Looked) -> MailKind | None:
    return MailKind.AUTO_REPLY if any(is_robot_address(address) for address in mail.reply_to) else None


def _auto_submitted(mail: _Looked) -> MailKind | None:
    if any(value.strip().lower() != "no" for value in mail.facts.header("auto-submitted")):
        return MailKind.AUTO_REPLY
    return None


_AUTOMATIC_HEADERS = ("x-autoreply", "x-autorespond", "x-auto-response-suppress", "list-id",
                      "list-unsubscribe", "x-autogenerated", "feedback-id", "x-apple-action")


def _automatic_header(mail: _Looked) -> MailKind | None:
    return MailKind.AUTO_REPLY if any(mail.facts.header(name) for name in _AUTOMATIC_HEADERS) else None


def _bulk_precedence(mail: _Looked) -> MailKind | None:
    if any(value.strip().lower() in _BULK_PRECEDENCE for value in mail.facts.header("precedence")):
        return MailKind.AUTO_REPLY
    return None


def _automatic_subject(mail: _Looked) -> MailKind | None:
    return MailKind.AUTO_REPLY if _AUTO_SUBJECT.search(mail.facts.subject) else None


ROBOT_RULES: tuple[Callable[[_Looked], MailKind | None], ...] = (
    _our_own,
    _null_return_path,
    _delivery_report,
    _delivery_system_without_address,
    _machine_report,
    _robot_sender_or_bounce_subject,
    _robot_reply_to,
    _auto_submitted,
    _automatic_header,
    _bulk_precedence,
    _automatic_subject,
)


def loop_reason(facts: MailFacts, own_addresses: frozenset[str]) -> MailKind | None:
    """Why this mail must never be answered, or None when a reply is safe."""
    mail = _Looked(facts, own_addresses)
    for rule in ROBOT_RULES:
        kind = rule(mail)
        if kind is not None:
            return kind
    return None


def classify(facts: MailFacts, rules: Rules, own_addresses: frozenset[str]) -> MailKind:
    reason = loop_reason(facts, own_addresses)
    if reason is not None:
        return reason
    if not facts.sender:
        return MailKind.NO_SENDER
    if facts.has_materials:
        return MailKind.SUBMISSION
    text = f"{facts.subject}\n{facts.body_text}"
    if any(re.search(pattern, text, re.IGNORECASE) for pattern in rules.cloud_link_patterns):
        return MailKind.CLOUD_LINK
    if any(word in text for word in rules.question_keywords):
        return MailKind.QUESTION
    return MailKind.OTHER
