"""After the rules change: run the checks again on the stored raw mails and rebuild the cases.

Everything happens in one transaction that is rolled back unless the caller applies it, so a dry
run shows exactly what applying would do. Mails an earlier rule dropped as bounces are found here
too (`dropped_as_bounces`): the poller handles them again, one by one.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from checks.classify import MailKind
from checks.rules import Rules
from checks.submission import assess
from intake.record import cases as case_store
from intake.db.engine import read_session
from intake.models import Case, Event, Mail, MailOutcome, Reading
from intake.process.prepare import prepare_mail
from intake.pictures.readings import PictureFacts, case_facts
from intake.process.pipeline import IGNORED, queue
from intake.process.reader import read_mail
from intake.store.files import FileStore, material_path
from notifier.replies import ReplyFacts, ReplyWriter

log = logging.getLogger(__name__)

# Marks made by people or by the digest, not by the checks: a rebuild keeps them.
_KEPT_PROBLEMS = {"rejected", "expired"}
_KEPT_STATUSES = {case_store.HELD, case_store.REJECTED}


@dataclass(frozen=True)
class CaseChange:
    case_id: int
    old_status: str
    new_status: str
    old_missing: tuple[str, ...]
    new_missing: tuple[str, ...]
    facts_changed: tuple[str, ...] = ()  # items whose read facts differ after reading again


@dataclass(frozen=True)
class Dropped:
    """A mail recorded as a bounce that the current rules would not drop."""
    mail_id: int
    kind: str  # what it is now: submission, question, no-sender (for staff) ...


def dropped_as_bounces(sessions: sessionmaker, store: FileStore, rules: Rules,
                       own_addresses: frozenset[str], since: datetime | None) -> list[Dropped]:
    """Mails recorded as bounces (ignored-auto, reason bounce) that the current rules would
    answer or give to staff: until issue 26, a sender whose name was quoted (`"Zhang San"
    <zs@126.com>`, QQ Mail, Foxmail) could not be read, and a mail without one was taken for a
    bounce. Read-only; the stored mails are checked again without the database."""
    with read_session(sessions) as session:
        query = (select(Mail.id, Mail.raw_path, Event.detail)
                 .join(Event, Event.mail_id == Mail.id)
                 .where(Mail.outcome == MailOutcome.IGNORED_AUTO, Mail.raw_path.is_not(None),
                        Event.kind == "ignored")
                 .order_by(Mail.id))
        if since is not None:
            query = query.where(Mail.fetched_at >= since)
        recorded = {mail_id: raw_path for mail_id, raw_path, detail in session.execute(query)
                    if (detail or {}).get("reason") == MailKind.BOUNCE.value}
    found = []
    for mail_id, raw_path in recorded.items():
        try:
            kind = prepare_mail(store.read(raw_path), rules, own_addresses).kind
        except Exception as err:  # one unreadable mail must not hide the others
            log.warning("mail=%s: recorded as a bounce, cannot be checked again: %s", mail_id,
                        type(err).__name__)
            continue
        if kind not in IGNORED:
            found.append(Dropped(mail_id, kind.value))
    return found


class _DryStore:
    """Names the files a rebuild would write, without writing them."""

    def __init__(self, store: FileStore):
        self.root = store.root

    put_material = staticmethod(material_path)


def reprocess(sessions: sessionmaker, store: FileStore, rules: Rules, replies: ReplyWriter,
              now: datetime, since: datetime | None, apply: bool, send_corrections: bool,
              progress: Callable[[list[int]], Iterable[int]] = lambda ids: ids,
              pictures: PictureFacts | None = None) -> list[CaseChange]:
    """`pictures` set: the pictures are read again too (slow: about a second per picture)."""
    changes = []
    session = sessions()
    try:
        query = select(Mail.case_id).distinct().where(
            Mail.case_id.is_not(None), Mail.raw_path.is_not(None),
            Mail.outcome.in_([MailOutcome.SUBMISSION, MailOutcome.FOLLOW_UP]))
        if since is not None:
            query = query.where(Mail.fetched_at >= since)
        case_ids = sorted(session.scalars(query).all())
        writer = store if apply else _DryStore(store)
        for case_id in progress(case_ids):
            case = session.get(Case, case_id, with_for_update=True)
            change = _rebuild(session, case, writer, store, rules, now, pictures)
            if change is None:
                continue
            changes.append(change)
            if apply:
                case_store.record_event(session, at=now, kind="reprocessed", case=case,
                                        old=change.old_status, new=change.new_status,
                                        missing=list(change.new_missing))
                if send_corrections and case.status not in _KEPT_STATUSES:
                    _queue_correction(session, case, change, replies, now)
        if apply:
            session.commit()
        else:
            session.rollback()
        return changes
    finally:
        session.close()


def _rebuild(session, case: Case, writer, store: FileStore, rules: Rules,
             now: datetime, pictures: PictureFacts | None = None) -> CaseChange | None:
    old_status = case.status
    old_facts = case_facts(session, case)
    # The items are rebuilt, so their readings go too; without OCR they come back by picture.
    earlier = {reading.sha256: reading.facts for reading in session.scalars(
        select(Reading).where(Reading.case_id == case.id))}
    session.execute(delete(Reading).where(Reading.case_id == case.id))
    old_missing = tuple(case_store.missing_keys(case, rules.item_keys))
    kept = {item.kind: (item.sha256, item.problem) for item in case.items
            if item.problem in _KEPT_PROBLEMS}
    for item in list(case.items):
        case.items.remove(item)
        session.delete(item)
    session.flush()
    mails = session.scalars(select(Mail).where(
        Mail.case_id == case.id, Mail.raw_path.is_not(None),
        Mail.outcome.in_([MailOutcome.SUBMISSION, MailOutcome.FOLLOW_UP])).order_by(Mail.id)).all()
    for mail in mails:
        read = read_mail(store.read(mail.raw_path))
        assessment = assess(read.attachments, read.subject, rules, read.body_text)
        read_facts: dict[str, dict | None] = {}
        if pictures is not None:
            assessment, read_facts = pictures.read_and_refile(assessment)
        changed = case_store.merge_items(session, case, assessment, mail, writer,
                                         mail.processed_at or mail.fetched_at)
        if pictures is not None:
            pictures.store(session, case, read_facts, changed, now,
                           mail.processed_at or mail.fetched_at)
    for item in case.items:
        if item.kind in kept and kept[item.kind][0] == item.sha256:
            item.usable, item.problem = False, kept[item.kind][1]
    if old_status not in _KEPT_STATUSES:
        case_store.update_status(session, case, rules.item_keys, now, None)
    facts_changed: tuple[str, ...] = ()
    if pictures is None:
        session.flush()
        for item in case.items:
            if item.sha256 in earlier:
                session.add(Reading(item_id=item.id, case_id=case.id, sha256=item.sha256,
                                    facts=earlier[item.sha256], read_at=now))
    else:
        pictures.apply(session, case, now, rules.item_keys)
        new_facts = case_facts(session, case)
        facts_changed = tuple(key for key in dict.fromkeys([*old_facts, *new_facts])
                              if old_facts.get(key) != new_facts.get(key))
    new_missing = tuple(case_store.missing_keys(case, rules.item_keys))
    if (case.status, new_missing) == (old_status, old_missing) and not facts_changed:
        return None
    return CaseChange(case.id, old_status, case.status, old_missing, new_missing, facts_changed)


def _queue_correction(session, case: Case, change: CaseChange, replies: ReplyWriter,
                      now: datetime) -> None:
    facts = ReplyFacts("reply_complete" if not change.new_missing else "reply_incomplete",
                       name=case.name, department=case.department, case_id=case.id,
                       received_all=[k for k in replies.item_keys if k not in change.new_missing],
                       missing=change.new_missing)
    outgoing = replies.write(facts, case.sender, now, None, [])
    queue(session, key=f"correction:case:{case.id}:{now.isoformat()}", kind=facts.kind,
          outgoing=outgoing, now=now, case=case, recipient=case.sender)
