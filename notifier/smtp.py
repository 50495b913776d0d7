"""Delivering one built message over SMTP, and telling a retryable failure from a final one."""
from __future__ import annotations

import enum
import smtplib
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


class Delivery(str, enum.Enum):
    SENT = "sent"
    RETRY = "retry"      # 4xx or a connection problem: the server may take it later
    REJECTED = "rejected"  # 5xx: retrying will not help


@dataclass(frozen=True)
class SendResult:
    delivery: Delivery
    detail: str = ""


@dataclass(frozen=True)
class SmtpEndpoint:
    host: str
    port: int
    security: str  # "ssl" | "starttls" | "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 60.0
    ca_file: str | None = None


class SmtpConnection:
    def __init__(self, client: smtplib.SMTP):
        self._client = client

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> SendResult:
        try:
            refused = self._client.sendmail(sender, list(recipients), raw)
        except smtplib.SMTPRecipientsRefused as err:
            return _from_codes([code for code, _ in err.recipients.values()], str(err.recipients))
        except smtplib.SMTPResponseException as err:
            return _from_codes([err.smtp_code], f"{err.smtp_code} {_text(err.smtp_error)}")
        except (smtplib.SMTPException, OSError) as err:
            return SendResult(Delivery.RETRY, f"{type(err).__name__}: {err}")
        if refused:
            # Some recipients took it; retrying would send those a second copy.
            return SendResult(Delivery.SENT, f"refused by some recipients: {refused}")
        return SendResult(Delivery.SENT)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _from_codes(codes: list[int], detail: str) -> SendResult:
    if codes and all(500 <= code < 600 for code in codes):
        return SendResult(Delivery.REJECTED, detail)
    return SendResult(Delivery.RETRY, detail)


class SmtpUnavailable(Exception):
    """The server could not be reached or refused the login; everything waits for the next try."""


@contextmanager
def smtp_connection(endpoint: SmtpEndpoint) -> Iterator[SmtpConnection]:
    # Loading the CA store costs a noticeable part of a short poll: only when TLS is used.
    context = ssl.create_default_context(cafile=endpoint.ca_file) \
        if endpoint.security != "none" else None
    client: smtplib.SMTP
    try:
        if endpoint.security == "ssl":
            client = smtplib.SMTP_SSL(endpoint.host, endpoint.port, timeout=endpoint.timeout,
                                      context=context)
        else:
            client = smtplib.SMTP(endpoint.host, endpoint.port, timeout=endpoint.timeout)
            if endpoint.security == "starttls":
                client.starttls(context=context)
        if endpoint.username:
            client.login(endpoint.username, endpoint.password or "")
    except (smtplib.SMTPException, OSError, socket.timeout) as err:
        raise SmtpUnavailable(f"{type(err).__name__}: {err}") from err
    try:
        yield SmtpConnection(client)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
