"""A raw mail as the pipeline needs it: decoded subject, sender, loop headers, attachments.

mail-parser reads the message and its bodies; the names Chinese clients write are decoded here,
from the raw headers, because mail-parser garbles GBK-only characters and raw 8-bit names.
"""
from __future__ import annotations

import email.message
import re
from dataclasses import dataclass, field

from checks.addresses import ADDRESS_HEADERS, NamedAddress, is_null_path, parse_addresses
from checks.classify import MailFacts
from checks.decoding import decode_header_value, header_param
from checks.submission import Attachment

_MAX_BODY_CHARS = 200_000
_TAGS = re.compile(r"<[^>]+>")


@dataclass
class ReadMail:
    message_id: str | None
    sender: str  # the From (else Sender) address in its normal form; "" when none could be read
    subject: str
    return_path: str | None  # None: no Return-Path, or no address in it; "": the null sender <>
    headers: dict[str, list[str]]
    content_type: str
    body_text: str
    attachments: list[Attachment] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    # From, Sender, Reply-To, To, Cc and Return-Path, as parsed from the raw headers.
    addresses: dict[str, tuple[NamedAddress, ...]] = field(default_factory=dict)

    def facts(self, has_materials: bool) -> MailFacts:
        return MailFacts(sender=self.sender, subject=self.subject, headers=self.headers,
                         return_path=self.return_path, content_type=self.content_type,
                         body_text=self.body_text, has_materials=has_materials,
                         attachment_names=tuple(a.name for a in self.attachments),
                         reply_to=tuple(each.address for each in self.addresses.get("reply-to", ())))


def read_mail(raw: bytes) -> ReadMail:
    import mailparser  # here: a daemon whose check processes parse never loads it (15 ms)

    parsed = mailparser.parse_from_bytes(raw)
    message: email.message.Message = parsed.message
    headers: dict[str, list[str]] = {}
    raw_addresses: dict[str, list[str]] = {}
    for key, value in message.raw_items():
        headers.setdefault(key.lower(), []).append(decode_header_value(value))
        if key.lower() in ADDRESS_HEADERS:
            raw_addresses.setdefault(key.lower(), []).append(value)
    addresses = {key: tuple(found for value in values for found in parse_addresses(key, value))
                 for key, values in raw_addresses.items()}
    sender = next((found.address for key in ("from", "sender") for found in addresses.get(key, ())),
                  "")
    return_path = None
    if "return-path" in raw_addresses:
        # The first is the one the delivering server wrote; a forwarded mail may carry older ones.
        first = raw_addresses["return-path"][0]
        if is_null_path(first):
            return_path = ""
        elif found := parse_addresses("return-path", first):
            return_path = found[0].address
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
        addresses=addresses,
    )


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
        if not isinstance(payload, bytes):  # decode=True gives bytes, or None for a multipart
            payload = b""
        yield Attachment(name=name.replace("/", "_").replace("\\", "_"), data=payload)
