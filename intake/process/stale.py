"""Which replies a later mail makes stale: a reply waiting in the outbox that the next one says
all of is superseded (never sent), in the transaction that queues the next; the same files sent
again are told so in one line."""
from __future__ import annotations

from sqlalchemy import select

from checks.submission import Assessment
from intake.models import Case, Outbox

SUPERSEDED = "superseded"  # an outbox status: a later reply says it all, this one is never sent
_MAIL_REPLY_KEYS = "reply:mail:%"


def unsent_replies(recipients: set[str]):
    """Replies to mail that no sender has tried or claimed yet: what a later mail of the same
    poll may supersede. Rows a sender holds are skipped (FOR UPDATE SKIP LOCKED)."""
    return (select(Outbox).where(Outbox.recipient.in_(recipients), Outbox.status == "pending",
                                 Outbox.dedupe_key.like(_MAIL_REPLY_KEYS), Outbox.attempts == 0,
                                 Outbox.claimed_by.is_(None))
            .order_by(Outbox.id).with_for_update(skip_locked=True))


def supersedes(row: Outbox, case: Case | None) -> bool:
    """A reply about a case says everything a waiting reply about that case, or about no case,
    said; a reply about no case replaces only another such."""
    return row.case_id is None or (case is not None and row.case_id == case.id)


def same_as_before(assessment: Assessment, changed: list[str]) -> bool:
    """A mail whose files are all on the case already, each usable, and nothing else: a resend."""
    return (bool(assessment.items) and not changed and not assessment.unmatched
            and not assessment.problems and all(found.usable for found in assessment.items.values()))
