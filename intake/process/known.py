"""What the database held for mails processed together, looked up once for all of them."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.models import Case, Outbox
from intake.process.prepare import Prepared
from intake.process.stale import unsent_replies
from intake.record import cases


def reply_key(mail_id: int) -> str:
    """The outbox dedupe key of a mail's reply: processing it again cannot queue a second one."""
    return f"reply:mail:{mail_id}"


def case_identity(prepared: Prepared) -> tuple[str, str, str] | None:
    """The identity of the case a submission's name points at; None without such a name."""
    who = prepared.assessment.submission_name if prepared.assessment is not None else None
    return cases.identity(prepared.read.sender, who) if who is not None else None


@dataclass
class Known:
    """What the database held for mails processed together, read with one query each for all of
    them instead of per mail: the cases their names point at, the replies already queued for them
    and how many replies each sender got in the last day. The mails' own changes are added as
    they are made (`copy` before a mail, to go back to if its changes are rolled back)."""
    cases: dict[tuple[str, str, str], Case | None] = field(default_factory=dict)  # None: no case
    queued: set[str] = field(default_factory=set)
    replies_today: Counter = field(default_factory=Counter)  # by recipient
    # Inserted for the group's mails at once (open_cases), not yet opened by one of them.
    unopened: dict[tuple[str, str, str], Case] = field(default_factory=dict)
    # Replies to these senders not yet handed to the SMTP server (by recipient): a later mail's
    # reply supersedes them. Locked for this transaction, so no sender claims them meanwhile.
    unsent: dict[str, list[Outbox]] = field(default_factory=dict)

    def copy(self) -> Known:
        return Known(dict(self.cases), set(self.queued), Counter(self.replies_today),
                     dict(self.unopened), {key: list(rows) for key, rows in self.unsent.items()})

    def restore(self, earlier: Known) -> None:
        self.cases, self.queued = earlier.cases, earlier.queued
        self.replies_today, self.unopened = earlier.replies_today, earlier.unopened
        self.unsent = earlier.unsent

    @classmethod
    def look_up(cls, session: Session, mails: list[tuple[int, Prepared]], now: datetime) -> Known:
        known = cls()
        senders = {prepared.read.sender for _, prepared in mails}
        names = {identity for _, prepared in mails
                 if (identity := case_identity(prepared)) is not None}
        # Nothing these mails add before their look-ups can change the answers: the mails' own
        # changes are added to `known` as they are made.
        with session.no_autoflush:
            if names:
                found = session.scalars(select(Case).where(
                    Case.sender.in_({sender for sender, _, _ in names})))
                by_identity = {(case.sender, case.name, case.department): case for case in found}
                known.cases = {key: by_identity.get(key) for key in names}
            known.queued = set(session.scalars(select(Outbox.dedupe_key).where(
                Outbox.dedupe_key.in_([reply_key(mail_id) for mail_id, _ in mails]))))
            if senders:
                known.replies_today.update(dict(session.execute(
                    select(Outbox.recipient, func.count(Outbox.id)).where(
                        Outbox.kind.like("reply%"), Outbox.recipient.in_(senders),
                        Outbox.created_at > now - timedelta(days=1))
                    .group_by(Outbox.recipient)).all()))
                for row in session.scalars(unsent_replies({sender.lower() for sender in senders})):
                    known.unsent.setdefault(row.recipient, []).append(row)
        return known
