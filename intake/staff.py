"""What department staff do to a case: look, hold, release, reject, approve, note, export.

Every action is an event in the case's history, with who did it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from checks.content_rules import flags_for
from intake import cases as case_store
from intake.db import read_session
from intake.errors import IntakeError
from intake.models import Case, Event, Mail, Outbox
from intake.pipeline import queue
from intake.readings import case_facts
from intake.staff_view import iso
from intake.storage import FileStore, material_name, sha256_hex
from notifier.replies import ReplyFacts, ReplyWriter

@dataclass(frozen=True)
class StaffDesk:
    sessions: sessionmaker
    store: FileStore
    replies: ReplyWriter
    item_keys: tuple[str, ...]
    clock: Callable[[], datetime]

    def _case(self, session: Session, case_id: int) -> Case:
        case = session.get(Case, case_id, with_for_update=True)
        if case is None:
            raise IntakeError(f"no case {case_id}; `intake cases` lists them")
        return case

    def hold(self, case_id: int, reason: str, by: str) -> Case:
        with self.sessions.begin() as session:
            case = self._case(session, case_id)
            if case.digest_id is not None:
                raise IntakeError(f"case {case_id} was already forwarded in digest {case.digest_id}")
            now = self.clock()
            case_store.record_event(session, at=now, kind="held", case=case, actor=by,
                                    reason=reason, old=case.status)
            case.status, case.hold_reason, case.updated_at = case_store.HELD, reason, now
            return case

    def release(self, case_id: int, by: str) -> Case:
        with self.sessions.begin() as session:
            case = self._case(session, case_id)
            if case.status != case_store.HELD:
                raise IntakeError(f"case {case_id} is not held (it is {case.status})")
            now = self.clock()
            case_store.record_event(session, at=now, kind="released", case=case, actor=by)
            case.status, case.hold_reason = case_store.INCOMPLETE, None
            case_store.update_status(session, case, self.item_keys, now, None)
            return case

    def reject(self, case_id: int, reason: str, by: str, items: tuple[str, ...] = ()) -> Case:
        """Turn the case down and tell the student why; named items must be sent again."""
        unknown = set(items) - set(self.item_keys)
        if unknown:
            raise IntakeError(f"unknown item(s) {', '.join(sorted(unknown))}; "
                              f"items are {', '.join(self.item_keys)}")
        with self.sessions.begin() as session:
            case = self._case(session, case_id)
            if case.digest_id is not None:
                raise IntakeError(f"case {case_id} was already forwarded in digest {case.digest_id}")
            now = self.clock()
            for item in case.items:
                if item.kind in items:
                    item.usable, item.problem = False, "rejected"
            case_store.record_event(session, at=now, kind="rejected", case=case, actor=by,
                                    reason=reason, items=list(items), old=case.status)
            case.status, case.hold_reason, case.updated_at = case_store.REJECTED, None, now
            session.flush()
            missing = case_store.missing_keys(case, self.item_keys)
            # The same rejection of the same files tells the student once; a new reason, other
            # items or a file sent since is a new rejection and is told again.
            key = "rejected:case:{}:{}".format(case.id, sha256_hex("\n".join(
                [reason.strip(), *sorted(items),
                 *sorted(f"{item.kind}={item.sha256}" for item in case.items)]).encode()))
            if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is None:
                facts = ReplyFacts("reply_rejected", name=case.name, department=case.department,
                                   case_id=case.id, missing=missing,
                                   received_all=[k for k in self.item_keys if k not in missing],
                                   extra={"reason": reason, "rejected_items": list(items)})
                outgoing = self.replies.write(facts, case.sender, now, None, [])
                queue(session, key=key, kind="reply_rejected", outgoing=outgoing, now=now,
                      case=case, recipient=case.sender)
            return case

    def approve(self, case_id: int, by: str) -> Case:
        with self.sessions.begin() as session:
            case = self._case(session, case_id)
            if case.status != case_store.COMPLETE:
                raise IntakeError(f"case {case_id} is {case.status}; only complete cases are approved")
            now = self.clock()
            case.approved_at, case.approved_by = now, by
            case_store.record_event(session, at=now, kind="approved", case=case, actor=by)
            return case

    def note(self, case_id: int, text: str, by: str) -> None:
        with self.sessions.begin() as session:
            case = self._case(session, case_id)
            case_store.record_event(session, at=self.clock(), kind="note", case=case, actor=by,
                                    text=text)

    def export(self, case_id: int, folder: Path, by: str) -> list[Path]:
        """The case's usable materials under canonical names, readable by this user only."""
        with self.sessions.begin() as session:
            case = self._case(session, case_id)
            items = [item for item in case.items if item.usable and item.path]
            if not items:
                raise IntakeError(f"case {case_id} has no usable materials to export")
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            written = []
            for item in items:
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
        with read_session(self.sessions) as session:
            case = session.get(Case, case_id)
            if case is None:
                raise IntakeError(f"no case {case_id}; `intake cases` lists them")
            def local(moment):  # machine time with the offset; `case show` shows it locally
                return iso(moment, zone)
            mails = session.scalars(select(Mail).where(Mail.case_id == case_id).order_by(Mail.id)).all()
            replies = session.scalars(select(Outbox).where(Outbox.case_id == case_id)
                                      .order_by(Outbox.id)).all()
            events = session.scalars(select(Event).where(Event.case_id == case_id)
                                     .order_by(Event.id)).all()
            facts = case_facts(session, case)
            return {
                "facts": facts, "flags": flags_for(facts, case.name),
                "id": case.id, "name": case.name, "department": case.department,
                "sender": case.sender, "status": case.status, "hold_reason": case.hold_reason,
                "created_at": local(case.created_at), "completed_at": local(case.completed_at),
                "approved_by": case.approved_by, "digest_id": case.digest_id,
                "missing": case_store.missing_keys(case, self.item_keys),
                "items": [{"kind": item.kind, "usable": item.usable, "problem": item.problem,
                           "file": item.original_name, "type": item.file_type,
                           "mail_id": item.mail_id, "received_at": local(item.received_at)}
                          for item in case.items],
                "mails": [{"id": mail.id, "folder": mail.folder, "uid": mail.uid,
                           "outcome": mail.outcome, "fetched_at": local(mail.fetched_at)}
                          for mail in mails],
                "replies": [{"id": row.id, "kind": row.kind, "status": row.status,
                             "queued_at": local(row.created_at), "sent_at": local(row.sent_at)}
                            for row in replies],
                "history": [{"at": local(event.at), "actor": event.actor, "kind": event.kind,
                             "detail": event.detail} for event in events],
            }
