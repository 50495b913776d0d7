"""A real SMTP server (aiosmtpd) on loopback that keeps what it is sent."""
from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass, field

import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.support.dovecot import free_port


@dataclass
class Captured:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class _Handler:
    messages: list[Captured] = field(default_factory=list)
    # Replies to give instead of accepting, one per DATA, e.g. "451 MI:DMC rate limited".
    refusals: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refusals:
                return self.refusals.pop(0)
            self.messages.append(Captured(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content or envelope.content)))
        return "250 OK"


def _accept(login: bytes, password: bytes):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == login and auth_data.password == password
        return AuthResult(success=ok, handled=False)
    return authenticator


class SmtpCapture:
    def __init__(self, tls: str | None = None, context: ssl.SSLContext | None = None,
                 credentials: tuple[str, str] | None = None):
        """tls: None, "ssl" (implicit, like port 465) or "starttls"; credentials: required login."""
        self.port = free_port()
        self.handler = _Handler()
        options = {}
        if tls == "ssl":
            options["ssl_context"] = context
        elif tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        if credentials:
            options.update(authenticator=_accept(*(c.encode() for c in credentials)),
                           auth_required=True, auth_require_tls=tls == "starttls")
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)

    def start(self) -> "SmtpCapture":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[Captured]:
        with self.handler.lock:
            return list(self.handler.messages)

    def to(self, address: str) -> list[Captured]:
        return [m for m in self.messages if address in m.recipients]

    def refuse_next(self, *replies: str) -> None:
        with self.handler.lock:
            self.handler.refusals.extend(replies)

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.messages.clear()
