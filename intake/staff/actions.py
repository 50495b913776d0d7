"""What department staff do to a case: look, hold, release, reopen, reject, approve, note, export.

Every action is an event in the case's history, with who did it. Each action is one function
taking the caller's session, the case and the actor; the command line and the web desk both call
them (through StaffDesk, which owns one transaction per action).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from checks.content_rules import department_flags, flags_for
from checks.rules import Rules
from intake.record import cases as case_store
from intake.db.engine import read_session
from intake.errors import IntakeError
from intake.models import Case, Event, Mail, Outbox
from intake.process.pipeline import queue
from intake.pictures.readings import case_facts, case_state
from intake.staff.questions import answer_question
from intake.staff import labels
from intake.staff.view import event_detail, iso
from intake.store.files import FileStore, material_name, sha256_hex
from notifier.replies import ReplyFacts, ReplyWriter

class CaseChanged(IntakeError):
    """The case changed after the reviewer looked at it: their action is refused."""

    def __init__(self, case_id: int, expected: int, current: int, changes: list[dict]):
        self.case_id, self.expected, self.current, self.changes = case_id, expected, current, changes
        super().__init__(f"登记 {case_id} 在您查看之后已有变化（版本 {expected}，现为 {current}）："
                         + "；".join(f"{c['actor']} {c['label']}" for c in changes))


@dataclass(frozen=True)
class CaseRules:
    """What the actions need besides a session: the items and how to write to the student."""
    replies: ReplyWriter
    item_keys: tuple[str, ...]


def lock_case(session: Session, case_id: int, expected_version: int | None = None) -> Case:
    """The case, locked for this transaction; refused when it is not at `expected_version`.

    The first statement is a write, so that on SQLite the transaction takes the write lock (and
    waits for the daemon's) before it reads anything it then changes.
    """
    session.execute(update(Case).where(Case.id == case_id).values(version=Case.version)
                    .execution_options(synchronize_session=False))
    case = session.get(Case, case_id, with_for_update=True, populate_existing=True)
    if case is None:
        raise IntakeError(f"没有登记 {case_id}；`intake cases` 列出全部登记")
    if expected_version is not None and case.version != expected_version:
        newer = max(case.version - expected_version, 0)
        events = session.scalars(select(Event).where(Event.case_id == case_id)
                                 .order_by(Event.id.desc()).limit(min(newer, 50) or 1)).all()
        changes = [{"at": event.at, "actor": event.actor, "kind": event.kind,
                    "detail": event.detail, "label": labels.label(labels.EVENTS, event.kind),
                    "said": event_detail(event.kind, event.detail)}
                   for event in reversed(events)] if newer else []
        raise CaseChanged(case_id, expected_version, case.version, changes)
    return case


def _not_forwarded(case: Case) -> None:
    if case.digest_id is not None:
        raise IntakeError(f"登记 {case.id} 已随汇总 {case.digest_id} 报送")


def hold_case(session: Session, case: Case, reason: str, actor: str, now: datetime) -> Case:
    _not_forwarded(case)
    case_store.record_event(session, at=now, kind="held", case=case, actor=actor, reason=reason,
                            old=case.status)
    case.status, case.hold_reason, case.updated_at = case_store.HELD, reason, now
    return case


def release_case(session: Session, case: Case, actor: str, now: datetime,
                 rules: CaseRules) -> Case:
    if case.status != case_store.HELD:
        raise IntakeError(f"登记 {case.id} 没有暂缓（现为{labels.label(labels.CASE_STATES, case.status)}）")
    case_store.record_event(session, at=now, kind="released", case=case, actor=actor)
    case.status, case.hold_reason = case_store.INCOMPLETE, None
    case_store.update_status(session, case, rules.item_keys, now, None)
    return case


def reopen_case(session: Session, case: Case, actor: str, now: datetime, rules: CaseRules) -> Case:
    """A held or rejected case goes back to following its items (rejected items stay unusable)."""
    if case.status not in (case_store.HELD, case_store.REJECTED):
        raise IntakeError(f"登记 {case.id} 现为{labels.label(labels.CASE_STATES, case.status)}；"
                          f"只有暂缓报送或审核未通过的登记可以重新打开")
    _not_forwarded(case)
    case_store.record_event(session, at=now, kind="reopened", case=case, actor=actor,
                            old=case.status)
    case.status, case.hold_reason = case_store.INCOMPLETE, None
    case_store.update_status(session, case, rules.item_keys, now, None)
    return case


def reject_case(session: Session, case: Case, reason: str, actor: str, now: datetime,
                rules: CaseRules, items: tuple[str, ...] = ()) -> Case:
    """Turn the case down and tell the student why; named items must be sent again."""
    unknown = set(items) - set(rules.item_keys)
    if unknown:
        raise IntakeError(f"没有这项材料：{'、'.join(sorted(unknown))}；"
                          f"材料只有：{'、'.join(rules.item_keys)}")
    _not_forwarded(case)
    for item in case.items:
        if item.kind in items:
            item.usable, item.problem = False, "rejected"
    case_store.record_event(session, at=now, kind="rejected", case=case, actor=actor,
                            reason=reason, items=list(items), old=case.status)
    case.status, case.hold_reason, case.updated_at = case_store.REJECTED, None, now
    session.flush()
    missing = case_store.missing_keys(case, rules.item_keys)
    # The same rejection of the same files tells the student once; a new reason, other
    # items or a file sent since is a new rejection and is told again.
    key = "rejected:case:{}:{}".format(case.id, sha256_hex("\n".join(
        [reason.strip(), *sorted(items),
         *sorted(f"{item.kind}={item.sha256}" for item in case.items)]).encode()))
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is None:
        facts = ReplyFacts("reply_rejected", name=case.name, department=case.department,
                           case_id=case.id, missing=missing,
                           received_all=[k for k in rules.item_keys if k not in missing],
                           extra={"reason": reason, "rejected_items": list(items)})
        outgoing = rules.replies.write(facts, case.sender, now, None, [])
        queue(session, key=key, kind="reply_rejected", outgoing=outgoing, now=now,
              case=case, recipient=case.sender)
    return case


def approve_case(session: Session, case: Case, actor: str, now: datetime) -> Case:
    if case.status != case_store.COMPLETE:
        raise IntakeError(f"登记 {case.id} 现为{labels.label(labels.CASE_STATES, case.status)}；"
                          f"只有材料齐全的登记可以审核通过")
    _not_forwarded(case)
    case.approved_at, case.approved_by = now, actor
    case_store.record_event(session, at=now, kind="approved", case=case, actor=actor)
    return case


def note_case(session: Session, case: Case, text: str, actor: str, now: datetime) -> Case:
    case_store.record_event(session, at=now, kind="note", case=case, actor=actor, text=text)
    return case


# Written in a staff action's own transaction, after the action (e.g. the desk's audit row).
Also = Callable[[Session], None] | None


@dataclass(frozen=True)
class StaffDesk:
    """The staff actions, each in its own transaction: what the CLI and the web desk call."""
    sessions: sessionmaker
    store: FileStore
    replies: ReplyWriter
    item_keys: tuple[str, ...]
    clock: Callable[[], datetime]
    submission_rules: Rules  # the department's name and aliases: is a case's department ours

    @property
    def rules(self) -> CaseRules:
        return CaseRules(self.replies, self.item_keys)

    @contextmanager
    def _transaction(self, also: Also) -> Iterator[Session]:
        """The action's transaction; `also` writes what goes with the action (the desk's audit
        row) in it, so that both are committed or neither."""
        with self.sessions.begin() as session:
            yield session
            if also is not None:
                also(session)

    def _case(self, session: Session, case_id: int, expected_version: int | None = None) -> Case:
        return lock_case(session, case_id, expected_version)

    def answer(self, question_id: int, text: str, by: str, also: Also = None):
        """Answer a student's question (intake/staff/questions.py)."""
        with self._transaction(also) as session:
            return answer_question(session, self.replies, question_id, text, by, self.clock())

    def hold(self, case_id: int, reason: str, by: str, expected_version: int | None = None,
             also: Also = None) -> Case:
        with self._transaction(also) as session:
            return hold_case(session, self._case(session, case_id, expected_version), reason, by,
                             self.clock())

    def release(self, case_id: int, by: str, expected_version: int | None = None,
                also: Also = None) -> Case:
        with self._transaction(also) as session:
            return release_case(session, self._case(session, case_id, expected_version), by,
                                self.clock(), self.rules)

    def reopen(self, case_id: int, by: str, expected_version: int | None = None,
               also: Also = None) -> Case:
        with self._transaction(also) as session:
            return reopen_case(session, self._case(session, case_id, expected_version), by,
                               self.clock(), self.rules)

    def reject(self, case_id: int, reason: str, by: str, items: tuple[str, ...] = (),
               expected_version: int | None = None,
             also: Also = None) -> Case:
        with self._transaction(also) as session:
            return reject_case(session, self._case(session, case_id, expected_version), reason, by,
                               self.clock(), self.rules, items)

    def approve(self, case_id: int, by: str, expected_version: int | None = None,
                also: Also = None) -> Case:
        with self._transaction(also) as session:
            return approve_case(session, self._case(session, case_id, expected_version), by,
                                self.clock())

    def note(self, case_id: int, text: str, by: str, expected_version: int | None = None,
             also: Also = None) -> None:
        with self._transaction(also) as session:
            note_case(session, self._case(session, case_id, expected_version), text, by,
                      self.clock())

    def export(self, case_id: int, folder: Path, by: str) -> list[Path]:
        """The case's usable materials under canonical names, readable by this user only."""
        with self.sessions.begin() as session:
            case = self._case(session, case_id)
            items = [item for item in case.items if item.usable and item.path]
            if not items:
                raise IntakeError(f"登记 {case_id} 没有可导出的可用材料")
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            written = []
            for item in items:
                if item.path is None:
                    continue
                target = folder / material_name(item.kind, item.file_type)
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "wb") as stream:
                    stream.write(self.store.read(item.path))
                written.append(target)
            case_store.record_event(session, at=self.clock(), kind="exported", case=case, actor=by,
                                    files=len(written))
            return written

    def show(self, case_id: int, zone: tzinfo) -> dict:
        """Everything about one case, for a person to read."""
        return show_case(self.sessions, case_id, zone, self.submission_rules)


def show_case(sessions: sessionmaker, case_id: int, zone: tzinfo, rules: Rules) -> dict:
    """Everything about one case, for a person to read (only reads: `intake case show`); the
    codes with their words beside them (`*label`, `said`) for the desk's page."""
    with read_session(sessions) as session:
        case = session.get(Case, case_id)
        if case is None:
            raise IntakeError(f"没有登记 {case_id}；`intake cases` 列出全部登记")
        def local(moment):  # machine time with the offset; `case show` shows it locally
            return iso(moment, zone)
        mails = session.scalars(select(Mail).where(Mail.case_id == case_id).order_by(Mail.id)).all()
        replies = session.scalars(select(Outbox).where(Outbox.case_id == case_id)
                                  .order_by(Outbox.id)).all()
        events = session.scalars(select(Event).where(Event.case_id == case_id)
                                 .order_by(Event.id)).all()
        facts = case_facts(session, case)
        state = case_state(case.status, case.hold_reason)
        return {
            "facts": facts, "flags": flags_for(facts, case.name)
            + department_flags(case.department, rules),
            "id": case.id, "name": case.name, "department": case.department,
            "foreign_department": rules.is_foreign_department(case.department),
            "sender": case.sender, "status": case.status, "hold_reason": case.hold_reason,
            "state": state, "state_label": labels.label(labels.CASE_STATES, state),
            "version": case.version,
            "created_at": local(case.created_at), "completed_at": local(case.completed_at),
            "approved_by": case.approved_by, "digest_id": case.digest_id,
            "missing": case_store.missing_keys(case, rules.item_keys),
            "items": [{"kind": item.kind, "usable": item.usable, "problem": item.problem,
                       "problem_label": labels.label(labels.PROBLEMS, item.problem),
                       "file": item.original_name, "type": item.file_type,
                       "mail_id": item.mail_id, "received_at": local(item.received_at)}
                      for item in case.items],
            "mails": [{"id": mail.id, "folder": mail.folder, "uid": mail.uid,
                       "outcome": mail.outcome, "fetched_at": local(mail.fetched_at),
                       "outcome_label": labels.label(labels.MAIL_OUTCOMES, mail.outcome)}
                      for mail in mails],
            "replies": [{"id": row.id, "kind": row.kind, "status": row.status,
                         "queued_at": local(row.created_at), "sent_at": local(row.sent_at),
                         "kind_label": labels.label(labels.REPLY_KINDS, row.kind),
                         "status_label": labels.label(labels.OUTBOX_STATES, row.status)}
                        for row in replies],
            "history": [{"at": local(event.at), "actor": event.actor, "kind": event.kind,
                         "detail": event.detail, "label": labels.label(labels.EVENTS, event.kind),
                         "said": event_detail(event.kind, event.detail)} for event in events],
        }
