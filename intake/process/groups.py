"""Processing recorded mails as a group: checked (in the check pool or here), their pictures read,
then all of them in one transaction; one mail alone is a group of one.

A group is processed inside one savepoint and written with one flush; when one of its mails fails,
that savepoint is rolled back, the failure recorded, and the others processed again one by one,
each inside a savepoint of its own.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from intake.db.engine import read_session
from intake.failpoints import NONE, Failpoints
from intake.fetch.mailbox import MessageSummary
from intake.models import Mail, MailOutcome
from intake.pictures.jobs import PictureWork, consume as picture_jobs_done
from intake.pools import done_future
from intake.process.check_pool import CheckPool
from intake.process.pipeline import Known, Pipeline
from intake.process.prepare import Prepared
from intake.record import cases
from intake.record.recorder import Recorded, record_failure
from intake.store.files import FileStore

_MAILS_TO_PROCESS = select(Mail).with_for_update(skip_locked=True)


@dataclass
class Checked:
    """A recorded mail, parsed and checked, waiting for its pictures to be read."""
    mail_id: int
    raw_path: str | None
    raw: bytes | None
    prepared: Prepared | None
    pictures: dict[str, bytes]  # by content hash; empty when nothing is to be read
    started: float
    summary: MessageSummary | None  # None: retried or replayed, not just fetched
    folder: str | None = None
    failure: Exception | None = None
    checking: Future | None = None  # the checks under way (a Prepared when done)


@dataclass(frozen=True)
class Handled:
    outcome: str
    case_id: int | None


def stored_pictures(sessions: sessionmaker, store: FileStore,
                    pipeline: Pipeline) -> Callable[[int], dict[str, bytes]]:
    """The pictures a stored mail carries, by content hash: for reading another worker's job."""
    def pictures_of_mail(mail_id: int) -> dict[str, bytes]:
        with read_session(sessions) as session:
            raw_path = session.scalar(select(Mail.raw_path).where(Mail.id == mail_id))
        if not raw_path:
            return {}
        return pipeline.pictures_of(pipeline.prepare(store.read(raw_path)))
    return pictures_of_mail


def _ours_to_process(mail: Mail | None) -> Mail | Handled:
    """The mail when it is this worker's to process; else what became of it, as another worker
    holds it (None: its row is locked by one) or has processed it."""
    if mail is None:
        return Handled(MailOutcome.PENDING, None)
    if mail.outcome not in {MailOutcome.PENDING, MailOutcome.FAILED}:
        return Handled(mail.outcome, mail.case_id)
    return mail


class GroupProcessor:
    def __init__(self, sessions: sessionmaker, store: FileStore, pipeline: Pipeline,
                 clock: Callable[[], datetime], failpoint: Failpoints = NONE,
                 pictures: PictureWork | None = None, checker: CheckPool | None = None):
        self._sessions = sessions
        self._store = store
        self._pipeline = pipeline
        self._clock = clock
        self._failpoint = failpoint
        self._pictures = pictures  # None: pictures are not read ([pictures] read = false)
        self._checker = checker  # None: mail is parsed and checked in this process

    def process(self, mail_id: int) -> Handled:
        """Check, read and process one recorded mail, waiting for its pictures."""
        checked = self.check(mail_id, time.monotonic(), None)
        while True:
            facts = self.facts_if_read(checked)
            if facts is not None:
                [handled] = self.finish([(checked, facts)])
                return handled
            self.wait_for_progress([checked], block=True)

    def check(self, mail_id: int, started: float, summary: MessageSummary | None,
              folder: str | None = None, recorded: Recorded | None = None) -> Checked:
        """Parse and check a recorded mail, and queue its pictures for reading.

        None of it needs the database's write lock: on SQLite the staff and the desk can write
        meanwhile. A failure here is recorded when the mail is finished. `recorded`: the bytes
        this poll just stored, so not read back.
        """
        if recorded is not None:
            raw_path, raw = recorded.raw_path, recorded.raw
        else:
            with read_session(self._sessions) as session:
                raw_path = session.scalar(select(Mail.raw_path).where(Mail.id == mail_id))
            raw = None
        checked = Checked(mail_id, raw_path, raw, None, {}, started, summary, folder)
        try:
            if checked.raw is None and raw_path:
                checked.raw = self._store.read(raw_path)
            if recorded is not None and recorded.checking is not None:
                checked.checking = recorded.checking
            elif checked.raw is not None:
                checked.checking = (self._checker.submit(checked.raw) if self._checker is not None
                                    else done_future(self._pipeline.prepare, checked.raw))
        except Exception as err:  # one bad mail must never stop the others
            checked.failure = err
        self._take_checks(checked)
        return checked

    def _take_checks(self, checked: Checked) -> bool:
        """Once the mail's checks are done: queue its pictures. False while they run."""
        if checked.checking is None:
            return True
        if not checked.checking.done():
            return False
        future, checked.checking = checked.checking, None
        try:
            checked.prepared = future.result()
            checked.pictures = self._pipeline.pictures_of(checked.prepared)
            if checked.pictures and self._pictures is not None:
                self._pictures.want(checked.mail_id, checked.pictures)
        except SQLAlchemyError:
            raise
        except Exception as err:  # one bad mail must never stop the others
            checked.failure, checked.pictures = err, {}
        return True

    def facts_if_read(self, checked: Checked) -> dict[str, dict | None] | None:
        """The facts of the mail's pictures once all are read (empty: it has none); else None
        (also while the mail is being checked)."""
        if not self._take_checks(checked):
            return None
        if not checked.pictures or self._pictures is None:
            return {}
        return self._pictures.facts(checked.mail_id, checked.pictures)

    def wait_for_progress(self, waiting: list[Checked], block: bool) -> None:
        """Keep the readers busy; `block`: return once a check or a reading has moved on."""
        checking = [checked.checking for checked in waiting
                    if checked.checking is not None and not checked.checking.done()]
        pictures = self._pictures
        reading = pictures is not None and any(checked.pictures for checked in waiting)
        if pictures is not None and reading:
            pictures.pump(block and not checking)
        if block and checking:
            wait(checking, timeout=0.1 if reading else 1.0, return_when=FIRST_COMPLETED)

    def finish(self, ready: list[tuple[Checked, dict[str, dict | None]]]) -> list[Handled]:
        """Process checked mails in one transaction: all of them together in one savepoint; when
        one fails, that savepoint is rolled back, the failure recorded, and the others processed
        again, each inside a savepoint of its own. The materials they yield are synced together,
        before the commit names them.

        Their rows are locked, and what they need to know of cases and replies looked up, once
        for all of them."""
        try:
            with self._sessions.begin() as session:
                ids = [checked.mail_id for checked, _ in ready]
                # Rows another worker holds are skipped: that worker is processing those mails.
                mails = {mail.id: mail for mail in session.scalars(
                    _MAILS_TO_PROCESS.where(Mail.id.in_(ids)))}
                known = Known.look_up(session, [(checked.mail_id, checked.prepared)
                                                for checked, _ in ready
                                                if checked.prepared is not None
                                                and checked.mail_id in mails], self._clock())
                with self._store.batch() as store:
                    pipeline = replace(self._pipeline, store=store)
                    together = self._process_together(session, pipeline, ready, mails, known)
                    if isinstance(together, list):
                        return together
                    # One of them failed (rolled back with the rest), or the group could not be
                    # written as one: the failed one is recorded, the others go one by one.
                    handled: list[Handled] = []
                    for index, (checked, facts) in enumerate(ready):
                        if together is not None and index == together[0]:
                            handled.append(Handled(record_failure(session, checked.mail_id, together[1]),
                                                   None))
                        else:
                            handled.append(self._process_one(session, pipeline, checked, facts,
                                                             mails.get(checked.mail_id), known))
                    return handled
        finally:
            if self._pictures is not None:
                for checked, _ in ready:
                    self._pictures.forget(checked.pictures)

    def _group_work(self, pipeline: Pipeline, ready: list[tuple[Checked, dict[str, dict | None]]],
                    mails: dict[int, Mail]) -> list[tuple[Checked, Mail, Prepared] | Handled] | None:
        """What each mail of the group is to do (Handled: what became of one another worker has);
        None when one of them needs the one-by-one path."""
        work: list[tuple[Checked, Mail, Prepared] | Handled] = []
        for checked, facts in ready:
            mail = _ours_to_process(mails.get(checked.mail_id))
            if isinstance(mail, Handled):
                work.append(mail)
                continue
            if checked.failure is not None or checked.prepared is None \
                    or mail.raw_path != checked.raw_path:
                return None  # rare: the one-by-one path knows these
            prepared = checked.prepared
            if checked.pictures:
                try:
                    prepared = pipeline.with_facts(prepared, facts)
                except Exception:  # the one-by-one path records it as that mail's failure
                    return None
            work.append((checked, mail, prepared))
        return work

    def _process_together(self, session: Session, pipeline: Pipeline,
                          ready: list[tuple[Checked, dict[str, dict | None]]],
                          mails: dict[int, Mail], known: Known
                          ) -> list[Handled] | tuple[int, Exception] | None:
        """The common case, cheaply: every mail of the group processed inside one savepoint and
        written with one flush (their new cases inserted at once first). Returns their Handled;
        or, everything rolled back, (the index of the mail that failed, its error); or None when
        the group as a whole could not be written (another worker opened one of its cases)."""
        now = self._clock()
        work = self._group_work(pipeline, ready, mails)
        if work is None:
            return None
        before = known.copy()
        handled: list[Handled] = []
        failing: int | None = None  # the mail being processed, while one is
        try:
            with session.begin_nested():
                # The group's events are inserted with one statement, when all of it is done.
                events = cases.EventBuffer()
                pipeline = replace(pipeline, events=events)
                pipeline.open_cases(session, known, [entry[2] for entry in work
                                                     if not isinstance(entry, Handled)], now)
                for index, entry in enumerate(work):
                    if isinstance(entry, Handled):
                        handled.append(entry)
                        continue
                    checked, mail, prepared = entry
                    failing = index
                    self._failpoint("processing")
                    outcome = pipeline.handle(session, mail, checked.raw, now, prepared, known)
                    if checked.pictures and self._pictures is not None:
                        picture_jobs_done(session, self._pictures.used_up(checked.pictures))
                    handled.append(Handled(outcome, mail.case_id))
                    failing = None
                for case in known.unopened.values():  # cannot happen: each is some mail's
                    session.delete(case)
                known.unopened.clear()
                events.insert(session)
        except IntegrityError:
            known.restore(before)
            return None
        except SQLAlchemyError:
            raise
        except Exception as err:  # one bad mail must never stop the others
            known.restore(before)
            return (failing, err) if failing is not None else None
        return handled

    def _process_one(self, session: Session, pipeline: Pipeline, checked: Checked,
                     facts: dict[str, dict | None], mail: Mail | None, known: Known) -> Handled:
        """`mail`: its row, locked for this transaction; None when another worker holds it."""
        mail_id, raw, prepared = checked.mail_id, checked.raw, checked.prepared
        before = known.copy()
        try:
            if checked.failure is not None:
                raise checked.failure
            if prepared is not None and checked.pictures:
                prepared = pipeline.with_facts(prepared, facts)
            with session.begin_nested():
                ours = _ours_to_process(mail)
                if isinstance(ours, Handled):
                    return ours
                if ours.raw_path != checked.raw_path:  # cannot happen today; never act on other bytes
                    raw, prepared = (self._store.read(ours.raw_path) if ours.raw_path else None), None
                self._failpoint("processing")
                outcome = pipeline.handle(session, ours, raw, self._clock(), prepared,
                                          known if prepared is not None else None)
                if checked.pictures and self._pictures is not None:
                    picture_jobs_done(session, self._pictures.used_up(checked.pictures))
                return Handled(outcome, ours.case_id)
        except SQLAlchemyError:
            raise
        except Exception as err:  # one bad mail must never stop the others
            known.restore(before)  # the cases it opened and its reply were rolled back
            return Handled(record_failure(session, mail_id, err), None)
