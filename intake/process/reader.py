"""A raw mail as the pipeline needs it: decoded subject, sender, loop headers, attachments.

mail-parser reads the message and its bodies; the names Chinese clients write are decoded here,
from the raw headers, because mail-parser garbles GBK-only characters and raw 8-bit names.
"""
from __future__ import annotations

import email.message
import email.utils
import re
from dataclasses import dataclass, field

from checks.classify import MailFacts
from checks.decoding import decode_header_value, header_param
from checks.submission import Attachment

_MAX_BODY_CHARS = 200_000
_TAGS = re.compile(r"<[^>]+>")


@dataclass
class ReadMail:
    message_id: str | None
    sender: str
    subject: str
    return_path: str | None
    headers: dict[str, list[str]]
    content_type: str
    body_text: str
    attachments: list[Attachment] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

    def facts(self, has_materials: bool) -> MailFacts:
        return MailFacts(sender=self.sender, subject=self.subject, headers=self.headers,
                         return_path=self.return_path, content_type=self.content_type,
                         body_text=self.body_text, has_materials=has_materials,
                         attachment_names=tuple(a.name for a in self.attachments))


def read_mail(raw: bytes) -> ReadMail:
    import mailparser  # here: a daemon whose check processes parse never loads it (15 ms)

    parsed = mailparser.parse_from_bytes(raw)
    message: email.message.Message = parsed.message
    headers: dict[str, list[str]] = {}
    for key, value in message.raw_items():
        headers.setdefault(key.lower(), []).append(decode_header_value(value))
    sender = _bare_address(headers.get("from", [""])[0])
    if not sender:
        sender = _bare_address(headers.get("sender", [""])[0])
    return_path = None
    if "return-path" in headers:
        return_path = _bare_address(headers["return-path"][0]) or ""
    message_id = (headers.get("message-id") or [""])[0].strip() or None
    references = re.findall(r"<[^<>\s]+>", " ".join(headers.get("references", []) +
                                                    headers.get("in-reply-to", [])))
    body = _body_text(parsed)
    return ReadMail(
        message_id=message_id[:998] if message_id else None,
        sender=sender,
        subject=(headers.get("subject") or [""])[0],
        return_path=return_path,
        headers=headers,
        content_type=message.get_content_type(),
        body_text=body,
        attachments=list(_attachments(message)),
        references=references,
    )


def _bare_address(value: str) -> str:
    _name, address = email.utils.parseaddr(value)
    return address.strip().lower() if "@" in address else ""


def _body_text(parsed) -> str:
    parts = list(parsed.text_plain) or [_TAGS.sub(" ", html) for html in parsed.text_html]
    return "\n".join(parts)[:_MAX_BODY_CHARS]


def _attachments(message: email.message.Message):
    """Every named leaf part, including those inside forwarded messages (message/rfc822)."""
    for part in message.walk():
        if part.is_multipart() or part.get_content_type() == "message/rfc822":
            continue
        name = (header_param(part, "content-disposition", "filename")
                or header_param(part, "content-type", "name"))
        if not name:
            continue
        payload = part.get_payload(decode=True)
        if payload is None:
            payload = b""
        yield Attachment(name=name.replace("/", "_").replace("\\", "_"), data=payload)
