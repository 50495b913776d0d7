"""MIME messages that Chinese webmail (126, QQ) shows correctly."""
from __future__ import annotations

import email.policy
import mimetypes
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid

from notifier.render import Rendered

_WIRE = email.policy.compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class FileAttachment:
    name: str
    data: bytes


@dataclass(frozen=True)
class OutgoingMail:
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    raw: bytes


def new_message_id(sender: str) -> str:
    return make_msgid(idstring="jkb", domain=sender.rpartition("@")[2] or "localhost")


def encoded_word(text: str) -> str:
    """RFC 2047 words, which QQ Mail and 126 show in a quoted filename where RFC 2231 fails."""
    return Header(text, "utf-8").encode(maxlinelen=10_000)


def _boundary() -> str:
    """A multipart boundary no part can contain: every part is base64, and "_" is not in its
    alphabet. Given, not left to the generator, which compiles a new regular expression for each
    message to search the parts for the one it draws."""
    return f"===============jkb_{secrets.token_hex(12)}=="


def build_message(*, sender: str, sender_name: str, to: Sequence[str], rendered: Rendered,
                  message_id: str, date: datetime, cc: Sequence[str] = (),
                  in_reply_to: str | None = None, references: Sequence[str] = (),
                  auto_reply: bool = False,
                  attachments: Sequence[FileAttachment] = ()) -> OutgoingMail:
    body = MIMEMultipart("alternative", boundary=_boundary())
    body.attach(MIMEText(rendered.text, "plain", "utf-8"))
    body.attach(MIMEText(rendered.html, "html", "utf-8"))
    if attachments:
        message = MIMEMultipart("mixed", boundary=_boundary())
        message.attach(body)
        for attachment in attachments:
            message.attach(_attachment_part(attachment))
    else:
        message = body
    message["From"] = formataddr((str(Header(sender_name, "utf-8").encode()), sender))
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    # A Header object, not its encoded string: compat32 re-folds a long encoded string with a
    # blank first line, which webmail shows as a subject starting with a space.
    message["Subject"] = Header(rendered.subject, "utf-8")  # type: ignore[assignment]
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    if auto_reply:
        # RFC 3834: tell other robots not to answer us, and Exchange not to send its own replies.
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    recipients = tuple(dict.fromkeys([*to, *cc]))
    return OutgoingMail(message_id, sender, recipients, message.as_bytes(policy=_WIRE))


def _attachment_part(attachment: FileAttachment) -> MIMEApplication:
    mime = mimetypes.guess_type(attachment.name)[0] or "application/octet-stream"
    maintype, _, subtype = mime.partition("/")
    part = MIMEApplication(attachment.data, _subtype=subtype)
    if maintype != "application":
        part.replace_header("Content-Type", mime)
    name = encoded_word(attachment.name)
    part.set_param("name", name)
    part.add_header("Content-Disposition", "attachment", filename=name)
    return part
