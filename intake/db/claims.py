"""Claims that lapse: a row held by one worker (`holder`, `until`) until its time is up or its
holder is gone; the outbox, the picture jobs and the mail holds use the same rule."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from intake.processes import dead_on_this_host


def gone_holders(session: Session, holder, until, now: datetime, *where) -> list[str]:
    """Who holds a claim (`holder` and `until`, columns of the rows matching `where`) that has
    not run out, but was a process on this host that is gone: its claims lapse at once (a daemon
    restarted after a crash), not when their time is up."""
    tokens = session.scalars(select(holder).distinct().where(until >= now, *where)).all()
    return [token for token in tokens if token and dead_on_this_host(token)]


def claim_lapsed(holder, until, now: datetime, gone: list[str]):
    """The condition that nobody holds the claim in these columns any more: none was made, its
    time is up, or its holder is among the `gone` (gone_holders)."""
    return or_(until.is_(None), until < now, holder.in_(gone))
