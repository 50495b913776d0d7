"""`intake digests`: every digest made, with what became of its mails."""
from __future__ import annotations

from datetime import tzinfo

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from intake.db.engine import read_session
from intake.models import Digest, Outbox


def list_digests(sessions: sessionmaker, zone: tzinfo) -> list[dict]:
    with read_session(sessions) as session:
        digests = session.scalars(select(Digest).order_by(Digest.id)).all()
        parts = session.execute(select(Outbox.dedupe_key, Outbox.status, Outbox.sent_at)
                                .where(Outbox.kind == "digest")).all()
    by_digest: dict[int, list] = {}
    for key, status, sent_at in parts:
        # "digest:<id>:part:<n>"
        by_digest.setdefault(int(key.split(":")[1]), []).append((status, sent_at))
    return [{
        "id": digest.id,
        "date": digest.date,
        "made_at": digest.created_at.astimezone(zone).isoformat(timespec="seconds"),
        "scheduled": digest.run_key.startswith("scheduled:"),
        "parts": digest.parts,
        "recipients": list(digest.recipients or []),
        "cases": digest.case_count,
        "held_back": digest.held_back,
        "status": _status(by_digest.get(digest.id, [])),
        "sent_at": max((sent.astimezone(zone).isoformat(timespec="seconds")
                        for status, sent in by_digest.get(digest.id, []) if sent), default=None),
    } for digest in digests]


def _status(parts: list[tuple[str, object]]) -> str:
    if not parts:
        return "nothing to send"  # only held-back cases
    statuses = {status for status, _ in parts}
    if statuses == {"sent"}:
        return "sent"
    if "failed" in statuses:
        return "failed"
    return "waiting"
