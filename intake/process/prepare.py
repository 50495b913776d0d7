"""What a mail is and holds, worked out from its bytes alone: no database, no OCR engine.

The check processes import this module and little else, so that they start in a fraction of the
daemon's own start-up time; keep its imports to `checks` and `intake.process.reader`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from checks.classify import MailKind, classify
from checks.rules import Rules
from checks.submission import Assessment, Attachment, assess, carries_materials
from intake.process.reader import ReadMail, read_mail


@dataclass(frozen=True)
class Prepared:
    """What one mail is and holds, worked out without the database (Pipeline.prepare)."""
    read: ReadMail
    kind: MailKind
    assessment: Assessment | None  # for a submission
    read_facts: dict[str, dict | None]  # what the pictures show, by the item each is filed under


def prepare_mail(raw: bytes, rules: Rules, own_addresses: frozenset[str]) -> Prepared:
    """Parse and check one mail: pure, so it can run before the mail's transaction (on SQLite
    the write lock stays free meanwhile) and in another process."""
    read = read_mail(raw)
    has_materials = carries_materials(read.attachments, read.subject, read.body_text, rules)
    kind = classify(read.facts(has_materials), rules, own_addresses)
    assessment = None
    if kind is MailKind.SUBMISSION:
        assessment = assess(read.attachments, read.subject, rules, read.body_text)
    return Prepared(read, kind, assessment, {})


def without_attachment_bytes(prepared: Prepared) -> Prepared:
    """The same, minus the attachments' bytes (names stay): what a check process sends back. After
    the checks nothing reads them (the items carry their own files), and they are as large as the
    mail itself."""
    read = dataclasses.replace(prepared.read, attachments=[
        Attachment(attachment.name, b"") for attachment in prepared.read.attachments])
    return dataclasses.replace(prepared, read=read)
