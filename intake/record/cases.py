"""Cases and their items: find or open a case, merge a mail's items, record every change."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checks.names import SubmissionName
from checks.submission import Assessment
from intake.models import Case, Event, Item, Mail, Outbox
from intake.store.files import MaterialStore

COMPLETE = "complete"
INCOMPLETE = "incomplete"
HELD = "held"          # staff stopped it; new mail still adds items, the status waits for release
REJECTED = "rejected"  # staff turned it down; a new submission reopens it


class EventBuffer:
    """The events of mails processed together, kept until `insert` writes them with one
    statement. Events are never read back, and an INSERT that need not return their ids is one
    executemany: the ORM inserts them one by one on SQLite, to learn their ids in order. Every
    case and mail they name must have its id already."""

    def __init__(self) -> None:
        self._rows: list[dict] = []

    def add(self, row: dict) -> None:
        self._rows.append(row)

    def insert(self, session: Session) -> None:
        rows, self._rows = self._rows, []
        if rows:
            session.execute(insert(Event), rows)


def record_event(session: Session, *, at: datetime, kind: str, case: Case | None = None,
                 mail: Mail | None = None, actor: str = "system",
                 events: EventBuffer | None = None, **detail) -> None:
    """Record a change. `events`: kept there until the caller inserts them (with the others of
    its group); None: added to the session at once."""
    if case is not None:
        # Every change to a case is recorded here, so this is where its version moves.
        case.version = (case.version or 1) + 1
    row = {"case_id": case.id if case else None, "mail_id": mail.id if mail else None,
           "at": at, "actor": actor, "kind": kind, "detail": detail}
    if events is not None:
        events.add(row)
    else:
        session.add(Event(**row))


def find_or_open_case(session: Session, sender: str, who: SubmissionName, now: datetime,
                      mail: Mail, events: EventBuffer | None = None) -> tuple[Case, bool]:
    """The case for this sender, name and department; True when it was opened just now."""
    # Cases are only ever added through open_case, which flushes them: nothing pending can change
    # this answer, and the mail's own changes wait for one flush at the end.
    with session.no_autoflush:
        case = session.scalar(_identity_query(sender, who))
    if case is not None:
        return case, False
    return open_case(session, sender, who, now, mail, events)


def open_case(session: Session, sender: str, who: SubmissionName, now: datetime,
              mail: Mail, events: EventBuffer | None = None) -> tuple[Case, bool]:
    """Open the case that was not there when looked for; (the case, True), or (the one another
    worker opened meanwhile, False)."""
    try:
        with session.begin_nested():
            case = new_case(identity(sender, who), now)
            session.add(case)
    except IntegrityError:
        # Another worker opened it between our look-up and insert.
        return session.scalars(_identity_query(sender, who)).one(), False
    record_event(session, at=now, kind="opened", case=case, mail=mail, events=events)
    return case, True


def identity(sender: str, who: SubmissionName) -> tuple[str, str, str]:
    """What tells one case from another (uq_case_identity): sender, name, department."""
    return sender, who.name, who.department


def new_case(case_identity: tuple[str, str, str], now: datetime) -> Case:
    sender, name, department = case_identity
    # A new case has no items: said here, so that merging them needs no SELECT.
    return Case(sender=sender, name=name, department=department, status=INCOMPLETE,
                created_at=now, updated_at=now, items=[])


def _identity_query(sender: str, who: SubmissionName):
    return select(Case).where(Case.sender == sender, Case.name == who.name,
                              Case.department == who.department)


def sole_case_of(session: Session, sender: str) -> Case | None:
    """A follow-up without the naming rule belongs to the sender's case if there is just one
    open (else just one at all)."""
    cases = list(session.scalars(select(Case).where(Case.sender == sender).order_by(Case.id)))
    open_cases = [case for case in cases if case.status != COMPLETE]
    if len(open_cases) == 1:
        return open_cases[0]
    return cases[0] if len(cases) == 1 else None


def case_answered_by(session: Session, sender: str, references: list[str]) -> Case | None:
    """The sender's case that one of our replies in `references` (In-Reply-To/References) was
    about: a student answering our mail means that case, whatever they typed as the subject."""
    if not references:
        return None
    return session.scalar(
        select(Case).join(Outbox, Outbox.case_id == Case.id)
        .where(Outbox.message_id.in_(references[-50:]), Case.sender == sender)
        .order_by(Outbox.id.desc()).limit(1))


def merge_items(session: Session, case: Case, assessment: Assessment, mail: Mail,
                store: MaterialStore, now: datetime,
                events: EventBuffer | None = None) -> list[str]:
    """Add or replace the case's items with this mail's; returns the item keys that changed.

    An unusable new file never displaces a usable one already on the case.
    """
    current = {item.kind: item for item in case.items}
    changed = []
    for key, found in assessment.items.items():
        existing = current.get(key)
        if existing is not None and existing.usable and not found.usable:
            record_event(session, at=now, kind="item_rejected", case=case, mail=mail, item=key,
                         problem=found.problem.code if found.problem else None, events=events)
            continue
        path = digest = None
        if found.data is not None:
            digest = found.sha256
            path = store.put_material(case.id, key, found.data, found.kind, digest)
        if existing is None:
            existing = Item(case_id=case.id, kind=key)
            case.items.append(existing)
        elif existing.sha256 == digest and digest is not None and existing.usable:
            continue  # the same picture again: nothing changes
        existing.path, existing.sha256, existing.file_type = path, digest, found.kind
        existing.original_name = found.source_name[:512]
        existing.mail_id, existing.received_at = mail.id, now
        existing.usable = found.usable
        existing.problem = found.problem.code if found.problem else None
        record_event(session, at=now, kind="item_received", case=case, mail=mail, item=key,
                     usable=found.usable, problem=existing.problem, events=events)
        changed.append(key)
    return changed


def usable_keys(case: Case) -> set[str]:
    return {item.kind for item in case.items if item.usable}


def missing_keys(case: Case, required: tuple[str, ...]) -> list[str]:
    """The items the case still lacks or has only unusable files for, in the rules' order."""
    usable = usable_keys(case)
    return [key for key in required if key not in usable]


def status_from_items(case: Case, required: tuple[str, ...]) -> str:
    return COMPLETE if set(required) <= usable_keys(case) else INCOMPLETE


def update_status(session: Session, case: Case, required: tuple[str, ...], now: datetime,
                  mail: Mail | None, events: EventBuffer | None = None) -> None:
    case.updated_at = now
    if case.status == HELD:
        return
    new_status = status_from_items(case, required)
    complete = new_status == COMPLETE
    if new_status != case.status:
        record_event(session, at=now, kind="status", case=case, mail=mail,
                     old=case.status, new=new_status, events=events)
        case.status = new_status
        if complete:
            case.completed_at = now
