"""Draining the outbox: claim due rows, send each over SMTP, record what the server said."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.db.claims import claim_lapsed, gone_holders
from intake.failpoints import NONE, Failpoints
from intake.models import Outbox
from intake.processes import process_token
from notifier.smtp import Delivery, SmtpConnection, SmtpUnavailable

log = logging.getLogger(__name__)

_CLAIM = timedelta(minutes=10)
_MAX_BACKOFF = timedelta(hours=2)


@dataclass
class DrainReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


_ADDRESS = re.compile(r"[^\s<>\"'@,;]+@[^\s<>\"',;]+")


def loggable(detail: str) -> str:
    """A server's answer for the log: bounce texts quote recipients' addresses; those stay out."""
    return _ADDRESS.sub("<address>", detail)[:200]


def backoff(attempts: int) -> timedelta:
    return min(timedelta(minutes=1) * (2 ** max(attempts - 1, 0)), _MAX_BACKOFF)


def drain_outbox(sessions: sessionmaker, connect: Callable[[], AbstractContextManager[SmtpConnection]],
                 clock: Callable[[], datetime], max_attempts: int, batch: int = 50,
                 failpoint: Failpoints = NONE) -> DrainReport:
    report = DrainReport()
    while True:
        claimed = _claim(sessions, clock(), batch)
        if not claimed:
            return report
        try:
            with connect() as connection:
                for row_id, sender, recipients, raw, kind, attempts in claimed:
                    failpoint("send.before")
                    result = connection.send(sender, recipients, raw)
                    failpoint("send.after-accept")
                    if result.delivery is Delivery.SENT:
                        _settle_sent(sessions, row_id, kind, attempts, result.detail, clock(),
                                     report)
                    else:
                        _settle(sessions, row_id, result.delivery, result.detail, clock(),
                                max_attempts, report)
        except SmtpUnavailable as err:
            log.warning("SMTP unavailable, %d message(s) wait in the outbox: %s", len(claimed),
                        loggable(str(err)))
            report.errors.append(str(err))
            for row_id, *_ in claimed:
                _settle(sessions, row_id, Delivery.RETRY, str(err), clock(), max_attempts, report)
            return report
        if len(claimed) < batch:
            return report


def _claim(sessions: sessionmaker, now: datetime, batch: int) -> list[tuple]:
    """Mark due rows as ours for a while, so another worker does not send them too.

    A claim lapses when its time is up, or at once when its process on this host is gone.
    """
    with sessions.begin() as session:
        gone = gone_holders(session, Outbox.claimed_by, Outbox.claimed_until, now,
                            Outbox.status == "pending")
        rows = session.scalars(
            select(Outbox)
            .where(Outbox.status == "pending", Outbox.next_attempt_at <= now,
                   claim_lapsed(Outbox.claimed_by, Outbox.claimed_until, now, gone))
            .order_by(Outbox.id).limit(batch)
            .with_for_update(skip_locked=True)).all()
        me = process_token()
        for row in rows:
            row.claimed_until, row.claimed_by = now + _CLAIM, me
        return [(row.id, row.sender, list(row.recipients), row.raw, row.kind, row.attempts)
                for row in rows]


_SENT = (update(Outbox).where(Outbox.id == bindparam("row_id"))
         .values(status="sent", sent_at=bindparam("now"), last_error=bindparam("detail"),
                 attempts=Outbox.attempts + 1, claimed_until=None, claimed_by=None)
         .execution_options(synchronize_session=False))


def _settle_sent(sessions: sessionmaker, row_id: int, kind: str, attempts: int, detail: str,
                 now: datetime, report: DrainReport) -> None:
    """The common case in one statement: the row need not be loaded to be marked sent. On a
    connection of its own, not an ORM session: this runs once per message sent, and a session's
    set-up and commit cost half as much again as the statement."""
    with sessions.kw["bind"].begin() as connection:
        connection.execute(_SENT, {"row_id": row_id, "now": now, "detail": detail or None})
    report.sent += 1
    log.info("sent outbox=%s kind=%s attempts=%s", row_id, kind, attempts + 1)


def _settle(sessions: sessionmaker, row_id: int, delivery: Delivery, detail: str, now: datetime,
            max_attempts: int, report: DrainReport) -> None:
    """A send that did not go through (sent ones: _settle_sent): retry later or give up."""
    with sessions.begin() as session:
        row = session.get(Outbox, row_id)
        row.attempts += 1
        row.claimed_until, row.claimed_by = None, None
        row.last_error = detail[:2000]
        if delivery is Delivery.REJECTED or row.attempts >= max_attempts:
            row.status = "failed"
            report.failed += 1
            log.error("outbox=%s kind=%s failed permanently after %s attempt(s): %s",
                      row.id, row.kind, row.attempts, loggable(detail))
        else:
            row.next_attempt_at = now + backoff(row.attempts)
            report.retrying += 1
            log.warning("outbox=%s kind=%s will retry at %s: %s", row.id, row.kind,
                        row.next_attempt_at.isoformat(), loggable(detail))


def pending_count(session: Session) -> int:
    return len(session.scalars(select(Outbox.id).where(Outbox.status == "pending")).all())
