"""One pass over the configured folders: record each new mail, process it, acknowledge it.

Order per mail (the invariants): store the raw bytes durably, commit the mail's record, process
it (inside a transaction shared with the other mails ready at the same time: all of them in one
savepoint, or, when one fails, each in a savepoint of its own), and only then mark it on the
server. A crash anywhere means the next pass handles the mail
again, and the unique keys make that second handling a no-op.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from intake import cases
from intake.check_pool import CheckPool
from intake.db import claim_lapsed, gone_holders, read_session
from intake.errors import (IntakeError, MailboxError, MailboxFolderMissing, MailboxLoginRefused,
                           StorageError)
from intake.failpoints import NONE, Failpoints
from intake.mailbox import Mailbox, MessageSummary
from intake.models import FolderState, Mail, MailOutcome
from intake.picture_work import PictureWork, consume as picture_jobs_done
from intake.pipeline import Known, Pipeline
from intake.prepare import Prepared
from intake.pools import done_future
from intake.processes import process_token
from intake.storage import FileStore, sha256_hex

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# How long a worker's hold on a pending mail keeps other hosts' workers from retrying it (one on
# this host that is gone releases it at once), as a picture job's claim does.
HOLD = timedelta(minutes=2)


@dataclass(frozen=True)
class PollSettings:
    folders: tuple[str, ...]
    max_age_days: int
    max_message_bytes: int
    keyword: str | None
    fetch_batch: int = 50
    # One FETCH of bodies and one keyword STORE per chunk: at most this many mails and bytes (the
    # bytes bound the memory a poll takes; the count bounds how much a crash leaves unmarked).
    chunk_mails: int = 10
    chunk_bytes: int = 16 * 1024 * 1024


@dataclass
class _Checked:
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


# The statements run for every mail, built once: building one costs more than SQLite running it.
_ORIGINAL_OF = select(Mail.id).where(Mail.dedupe_key == bindparam("key"))
# The copy that claimed this key, else any first copy of the same bytes.
_ORIGINAL_OR_SAME_BYTES = (
    select(Mail.id)
    .where(or_(Mail.dedupe_key == bindparam("key"),
               (Mail.sha256 == bindparam("sha256")) & Mail.dedupe_key.is_not(None)))
    .order_by((Mail.dedupe_key == bindparam("key")).desc(), Mail.id).limit(1))
_AT_LOCATION = select(Mail.id).where(Mail.folder == bindparam("folder"),
                                     Mail.uidvalidity == bindparam("uidvalidity"),
                                     Mail.uid == bindparam("uid"))
# (Parameters of an UPDATE may not share a name with a column of its table.)
_ADVANCE = (update(FolderState)
            .where(FolderState.folder == bindparam("in_folder"),
                   FolderState.last_uid < bindparam("to_uid"))
            .values(last_uid=bindparam("to_uid")).execution_options(synchronize_session=False))
_MAILS_TO_PROCESS = select(Mail).with_for_update(skip_locked=True)


@dataclass
class _Seen:
    """What the database knew of a chunk's mails when the chunk began: the UIDs already recorded
    and the Message-IDs already claimed (kept up to date as the chunk's mails are recorded).

    A mail that is neither skips the per-mail look-up; the insert's own checks still catch what
    another worker records meanwhile."""
    recorded: set[int]
    claimed: set[str]

    def is_new(self, summary: MessageSummary) -> bool:
        return summary.uid not in self.recorded and (
            not summary.message_id or summary.message_id not in self.claimed)


@dataclass
class _Fetched:
    """A mail's bytes as the fetch thread hands them over."""
    raw: bytes
    sha256: str  # hashed on the fetch thread: hashing releases the GIL
    checking: Future | None = None  # its checks, started on a check process as it arrived


@dataclass(frozen=True)
class _Recorded:
    mail_id: int
    raw: bytes | None  # the bytes just stored under raw_path, None when nothing was stored
    raw_path: str | None
    checking: Future | None = None  # checks already started on these bytes


@dataclass(frozen=True)
class Handled:
    outcome: str
    case_id: int | None


@dataclass
class PollReport:
    outcomes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    # The exit code the errors call for: 1 run-time, 2 a folder the server lacks, 3 login refused.
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


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


def _chunks(summaries: list[MessageSummary], most: int, budget: int) -> Iterator[list[MessageSummary]]:
    """Consecutive runs of at most `most` summaries whose sizes add up to at most `budget` bytes
    (at least one each)."""
    chunk: list[MessageSummary] = []
    total = 0
    for summary in summaries:
        if chunk and (len(chunk) >= most or total + summary.size > budget):
            yield chunk
            chunk, total = [], 0
        chunk.append(summary)
        total += summary.size
    if chunk:
        yield chunk


def _dedupe_key(mail: Mail) -> str:
    """What makes a mail the same as one handled before: its Message-ID, else its bytes."""
    return mail.message_id or f"sha256:{mail.sha256}"


def _unsaved_copy(mail: Mail) -> Mail:
    """A new, unsaved record of the same mail, as _new_mail and _store_raw made it."""
    return Mail(folder=mail.folder, uidvalidity=mail.uidvalidity, uid=mail.uid,
                message_id=mail.message_id, sha256=mail.sha256, size=mail.size,
                internal_date=mail.internal_date, fetched_at=mail.fetched_at,
                raw_path=mail.raw_path, outcome=mail.outcome, attempts=mail.attempts,
                processed_at=mail.processed_at, held_by=mail.held_by, held_until=mail.held_until)


def _copy_as_duplicate(mail: Mail, original_id: int | None) -> Mail:
    copy = _unsaved_copy(mail)
    copy.outcome, copy.attempts = MailOutcome.DUPLICATE, 0
    copy.duplicate_of_id, copy.processed_at = original_id, mail.fetched_at
    return copy


def _taken_elsewhere(mail: Mail | None) -> Handled | None:
    """What became of a mail another worker holds (None: its row is locked by one) or has
    processed; None when it is this worker's to process."""
    if mail is None or mail.outcome not in {MailOutcome.PENDING, MailOutcome.FAILED}:
        return Handled(mail.outcome if mail else MailOutcome.PENDING,
                       mail.case_id if mail else None)
    return None


class Poller:
    def __init__(self, mailbox: Mailbox, sessions: sessionmaker, store: FileStore,
                 pipeline: Pipeline, settings: PollSettings, clock: Callable[[], datetime],
                 failpoint: Failpoints = NONE, pictures: PictureWork | None = None,
                 checker: CheckPool | None = None):
        self._mailbox = mailbox
        self._sessions = sessions
        self._store = store
        self._pipeline = pipeline
        self._settings = settings
        self._clock = clock
        self._failpoint = failpoint
        self._pictures = pictures  # None: pictures are not read ([pictures] read = false)
        self._checker = checker  # None: mail is parsed and checked in this process
        self._stop_requested: Callable[[], bool] = lambda: False
        self._token = process_token()

    def stop_when(self, predicate: Callable[[], bool]) -> None:
        self._stop_requested = predicate

    def poll(self) -> PollReport:
        report = PollReport()
        # First what earlier passes left unfinished (a crash, a failure): one more try each.
        self.retry_unfinished(report)
        for folder in self._settings.folders:
            if self._stop_requested():
                break
            try:
                if not self._mailbox.alive():
                    self._mailbox.connect()
                self._poll_folder(folder, report)
            except MailboxLoginRefused as err:
                log.error("poll stopped: %s", err)
                report.errors.append(str(err))
                report.exit_code = err.exit_code
                break
            except MailboxFolderMissing as err:
                log.error("folder %r skipped: %s", folder, err)
                report.errors.append(str(err))
                report.exit_code = max(report.exit_code, err.exit_code)
            except MailboxError as err:
                log.error("poll of folder %r stopped: %s", folder, err)
                report.errors.append(str(err))
            except SQLAlchemyError as err:
                log.error("poll of folder %r stopped, database unavailable: %s", folder,
                          type(err).__name__)
                report.errors.append(f"database: {type(err).__name__}")
                break
            except StorageError as err:
                # Disk full or gone: every mail would fail alike. They stay recorded or on the
                # server, unmarked, for the next poll.
                log.error("poll of folder %r stopped, storage unavailable: %s", folder, err)
                report.errors.append(str(err))
                break
        if self._pictures is not None and not report.errors and not self._stop_requested():
            # Pictures other workers queued and nobody is reading: this worker's readers are free.
            self._pictures.help(self._stop_requested)
        return report

    def _poll_folder(self, folder: str, report: PollReport) -> None:
        status = self._mailbox.select(folder)
        last_uid = self._folder_start(folder, status.uidvalidity)
        uids = self._mailbox.uids_after(last_uid)
        if self._checker is not None and self._checker.worth_starting(len(uids)):
            self._checker.start()  # many new mails: parse and check them on every core
        chunks = self._chunks_of(uids)
        # One FETCH for a chunk's bodies, one STORE for its keywords after the commits. The next
        # chunk's FETCH runs on a thread of its own while this chunk is handled (the network and
        # the server work while we parse); the Mailbox runs its commands one at a time.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap-fetch") as fetcher:
            chunk = next(chunks, None)
            bodies = fetcher.submit(self._fetch_bodies, chunk) if chunk else None
            while chunk is not None:
                fetched = bodies.result()
                following = next(chunks, None)
                bodies = fetcher.submit(self._fetch_bodies, following) if following else None
                handled_uids: list[int] = []
                waiting: list[_Checked] = []  # checked, their pictures being read
                try:
                    for summary, recorded in self._record_chunk(folder, status, chunk, fetched):
                        self._failpoint("recorded")
                        waiting.append(self._check(recorded.mail_id, time.monotonic(), summary,
                                                   folder, recorded))
                    self._finish_ready(waiting, report, handled_uids, block=False)
                    while waiting and not self._stop_requested():
                        self._finish_ready(waiting, report, handled_uids, block=True)
                except BaseException:
                    self._mark(status, handled_uids, quietly=True)
                    raise
                if bodies is not None:
                    # The STORE waits for that FETCH on the connection anyway; waiting here means a
                    # FETCH that broke the connection is reported as itself, by result() below.
                    wait([bodies])
                self._mark(status, handled_uids)
                if self._stop_requested():
                    return
                chunk = following
        with self._sessions.begin() as session:
            state = session.scalar(select(FolderState).where(FolderState.folder == folder))
            state.last_poll_at = self._clock()

    def _chunks_of(self, uids: list[int]) -> Iterator[list[MessageSummary]]:
        batch = self._settings.fetch_batch
        for start in range(0, len(uids), batch):
            summaries = list(self._mailbox.summaries(uids[start:start + batch]))
            yield from _chunks(summaries, self._settings.chunk_mails, self._settings.chunk_bytes)

    def _fetch_bodies(self, chunk: list[MessageSummary]) -> dict[int, _Fetched]:
        """The chunk's bodies, hashed, their checks started when check processes run (checks are
        pure: a mail found recorded already only wastes its check). The check processes read
        the bytes from storage, where they are written now and made durable when recorded."""
        raws = self._mailbox.fetch_raws([s.uid for s in chunk if self._wanted(s)])
        fetched = {uid: _Fetched(raw, sha256_hex(raw)) for uid, raw in raws.items()}
        if self._checker is not None and self._checker.running:
            for one in fetched.values():
                one.checking = self._checker.submit(
                    one.raw, self._store.stage_raw_mail(one.raw, one.sha256))
        return fetched

    def _wanted(self, summary: MessageSummary) -> bool:
        """Whether the body is worth fetching: not obviously too large or too old to handle."""
        too_old = summary.internal_date and summary.internal_date < self._clock() - timedelta(
            days=self._settings.max_age_days)
        return summary.size <= self._settings.max_message_bytes and not too_old

    def _seen(self, folder: str, uidvalidity: int, chunk: list[MessageSummary]) -> _Seen:
        """One read for the whole chunk instead of a write transaction per mail."""
        uids = [summary.uid for summary in chunk]
        message_ids = list({summary.message_id for summary in chunk if summary.message_id})
        with read_session(self._sessions) as session:
            recorded = set(session.scalars(select(Mail.uid).where(
                Mail.folder == folder, Mail.uidvalidity == uidvalidity, Mail.uid.in_(uids))))
            claimed = set(session.scalars(select(Mail.dedupe_key).where(
                Mail.dedupe_key.in_(message_ids)))) if message_ids else set()
        return _Seen(recorded, claimed)

    def _record_chunk(self, folder: str, status, chunk: list[MessageSummary],
                      fetched: dict[int, _Fetched]) -> list[tuple[MessageSummary, _Recorded]]:
        """Record the chunk's new mails, in the chunk's order; the mails recorded before are left
        out. One sync makes all their raw bytes durable and one commit records them all."""
        seen = self._seen(folder, status.uidvalidity, chunk)
        staged = [one.sha256 for one in fetched.values()]
        recorded: list[tuple[MessageSummary, _Recorded]] = []
        new: list[tuple[MessageSummary, _Fetched | None]] = []
        for summary in chunk:
            if self._stop_requested():
                break
            if seen.is_new(summary):
                new.append((summary, fetched.pop(summary.uid, None)))
                continue
            # Met before (a crash, another worker, a copy in another folder): one at a time.
            one = self._record_mail(folder, status.uidvalidity, summary,
                                    fetched.pop(summary.uid, None), seen)
            if one is not None:
                recorded.append((summary, one))
        recorded += self._record_new(folder, status.uidvalidity, new)
        self._store.forget_staged(staged)
        order = {summary.uid: index for index, summary in enumerate(chunk)}
        recorded.sort(key=lambda pair: order[pair[0].uid])
        return recorded

    def _new_mail(self, folder: str, uidvalidity: int, summary: MessageSummary,
                  now: datetime) -> Mail:
        mail = Mail(folder=folder, uidvalidity=uidvalidity, uid=summary.uid,
                    message_id=summary.message_id, size=summary.size,
                    internal_date=summary.internal_date, fetched_at=now,
                    outcome=MailOutcome.PENDING, attempts=0, held_by=self._token,
                    held_until=now + HOLD)
        if summary.internal_date and summary.internal_date < now - timedelta(
                days=self._settings.max_age_days):
            mail.outcome, mail.processed_at = MailOutcome.TOO_OLD, now
        elif summary.size > self._settings.max_message_bytes:
            mail.outcome, mail.processed_at = MailOutcome.TOO_LARGE, now
        return mail

    def _store_raw(self, store: FileStore, mail: Mail, summary: MessageSummary,
                   fetched: _Fetched | None) -> bytes | None:
        """Store the mail's bytes (fetching them if the chunk's FETCH did not); None when the mail
        was expunged meanwhile by someone using the mailbox."""
        raw = fetched.raw if fetched is not None else self._mailbox.fetch_raw(summary.uid)
        if raw is None:
            return None
        mail.sha256 = fetched.sha256 if fetched is not None else sha256_hex(raw)
        mail.size = len(raw)
        mail.raw_path = store.put_raw_mail(raw, mail.sha256)
        self._failpoint("raw-stored")
        return raw

    def _record_new(self, folder: str, uidvalidity: int,
                    new: list[tuple[MessageSummary, _Fetched | None]]
                    ) -> list[tuple[MessageSummary, _Recorded]]:
        now = self._clock()
        stored: list[tuple[MessageSummary, Mail, bytes | None, Future | None]] = []
        with self._sessions.begin() as session:
            # The files are written while the records are made, and synced together when the
            # batch ends: before the commit names them.
            with self._store.batch() as store:
                for summary, fetched in new:
                    mail = self._new_mail(folder, uidvalidity, summary, now)
                    raw = None
                    if mail.outcome == MailOutcome.PENDING:
                        raw = self._store_raw(store, mail, summary, fetched)
                        if raw is None:
                            continue
                    stored.append((summary, mail, raw, fetched.checking if fetched else None))
                inserted = self._insert_all(session, [_unsaved_copy(mail)
                                                      for _, mail, _, _ in stored])
                if not inserted:  # a copy within the chunk, or another worker was quicker
                    inserted = [self._insert_or_duplicate(session, folder, uidvalidity, summary,
                                                          mail)
                                for summary, mail, _, _ in stored]
                if new:
                    self._advance(session, folder, max(summary.uid for summary, _ in new))
        return [(summary, _Recorded(mail.id, raw if mail.raw_path else None, mail.raw_path,
                                    checking))
                for (summary, _, raw, checking), mail in zip(stored, inserted) if mail is not None]

    def _insert_all(self, session: Session, mails: list[Mail]) -> list[Mail]:
        """Insert the mails with one look-up for their originals and one INSERT, as _insert
        would one by one; [] (and nothing inserted) when that is not safe: two of them are
        copies of each other, or another worker inserted one of them meanwhile."""
        if not mails:
            return []
        pending = [mail for mail in mails if mail.outcome == MailOutcome.PENDING]
        keys = [_dedupe_key(mail) for mail in pending]
        hashes = [mail.sha256 for mail in pending]
        if len(set(keys)) < len(keys) or len(set(hashes)) < len(hashes):
            return []
        known = session.execute(select(Mail.id, Mail.dedupe_key, Mail.sha256).where(or_(
            Mail.dedupe_key.in_(keys),
            Mail.sha256.in_(hashes) & Mail.dedupe_key.is_not(None)))).all() if pending else []
        by_key = {row.dedupe_key: row.id for row in known}
        by_bytes: dict[str, int] = {}
        for row in sorted(known, key=lambda row: row.id):
            by_bytes.setdefault(row.sha256, row.id)
        for mail, key in zip(pending, keys):
            original = by_key.get(key, by_bytes.get(mail.sha256))
            if original is None:
                mail.dedupe_key = key
            else:
                mail.outcome, mail.duplicate_of_id = MailOutcome.DUPLICATE, original
                mail.processed_at = mail.fetched_at
        try:
            with session.begin_nested():
                session.add_all(mails)
                session.flush()
        except IntegrityError:
            return []
        return mails

    def _insert_or_duplicate(self, session: Session, folder: str, uidvalidity: int,
                             summary: MessageSummary, mail: Mail) -> Mail | None:
        """Insert the mail's record; None when another worker recorded this very mail first."""
        try:
            with session.begin_nested():
                self._insert(session, mail)
            return mail
        except IntegrityError:
            if mail in session:
                session.expunge(mail)
            if self._already_recorded(session, folder, uidvalidity, summary.uid):
                return None  # another worker took this one
            # Another worker claimed the same Message-ID from another folder just now:
            # this copy is recorded as its duplicate.
            duplicate = _copy_as_duplicate(mail, self._original(session, mail.dedupe_key))
            session.add(duplicate)
            session.flush()
            return duplicate

    def _finish_ready(self, waiting: list[_Checked], report: PollReport, handled_uids: list[int],
                      block: bool) -> None:
        """Process the waiting mails that are checked and whose pictures are all read."""
        self._wait_for_progress(waiting, block)
        ready = []
        for checked in list(waiting):
            facts = self._facts_if_read(checked)
            if facts is not None:
                waiting.remove(checked)
                ready.append((checked, facts))
        if not ready:
            return
        for checked, handled in zip((checked for checked, _ in ready), self._finish(ready)):
            report.outcomes[handled.outcome] += 1
            self._failpoint("processed")
            summary = checked.summary
            log.info("mail=%s folder=%r uid=%s outcome=%s case=%s bytes=%d ms=%d",
                     checked.mail_id, checked.folder or "-",
                     summary.uid if summary else "-", handled.outcome, handled.case_id or "-",
                     summary.size if summary else 0, (time.monotonic() - checked.started) * 1000)
            if summary is not None and handled.outcome not in {MailOutcome.FAILED,
                                                               MailOutcome.QUARANTINED}:
                handled_uids.append(summary.uid)

    def _wait_for_progress(self, waiting: list[_Checked], block: bool) -> None:
        """Keep the readers busy; `block`: return once a check or a reading has moved on."""
        checking = [checked.checking for checked in waiting
                    if checked.checking is not None and not checked.checking.done()]
        reading = self._pictures is not None and any(checked.pictures for checked in waiting)
        if reading:
            self._pictures.pump(block and not checking)
        if block and checking:
            wait(checking, timeout=0.1 if reading else 1.0, return_when=FIRST_COMPLETED)

    def _mark(self, status, uids: list[int], quietly: bool = False) -> None:
        """Set the keyword on the chunk's handled mails, after their commits. `quietly`: while
        another error is on its way up, a lost connection here is not reported over it."""
        if not (uids and self._settings.keyword and status.keywords_allowed):
            return
        if not self._mailbox.connected:
            return  # the connection broke mid-chunk: the marks are cosmetic, the database knows
        try:
            self._mailbox.add_keyword(uids, self._settings.keyword)
        except MailboxError:
            if not quietly:
                raise
            return
        for _ in uids:
            self._failpoint("keyword-set")

    def _folder_start(self, folder: str, uidvalidity: int) -> int:
        with self._sessions.begin() as session:
            state = session.scalar(select(FolderState).where(FolderState.folder == folder))
            if state is None:
                try:
                    with session.begin_nested():
                        session.add(FolderState(folder=folder, uidvalidity=uidvalidity, last_uid=0))
                except IntegrityError:
                    pass
                return 0
            if state.uidvalidity != uidvalidity:
                # UIDs were renumbered: look at everything again; Message-ID and content
                # hashes recognise what was handled before.
                log.warning("folder %r UIDVALIDITY changed %s -> %s; rescanning", folder,
                            state.uidvalidity, uidvalidity)
                state.uidvalidity, state.last_uid = uidvalidity, 0
            return state.last_uid

    def _record(self, folder: str, uidvalidity: int, summary: MessageSummary,
                prefetched: bytes | None = None) -> int | None:
        """Commit the mail's record (after storing its raw bytes); None if already recorded."""
        fetched = _Fetched(prefetched, sha256_hex(prefetched)) if prefetched is not None else None
        recorded = self._record_mail(folder, uidvalidity, summary, fetched)
        return recorded.mail_id if recorded else None

    def _record_mail(self, folder: str, uidvalidity: int, summary: MessageSummary,
                     fetched: _Fetched | None = None, seen: _Seen | None = None) -> _Recorded | None:
        """_record, also handing back the stored bytes so that processing need not read them."""
        now = self._clock()
        mail = self._new_mail(folder, uidvalidity, summary, now)
        if seen is None or not seen.is_new(summary):
            with self._sessions.begin() as session:
                if self._already_recorded(session, folder, uidvalidity, summary.uid):
                    self._advance(session, folder, summary.uid)
                    return None
                original = self._original(session, summary.message_id)
                if original is not None:
                    mail.outcome, mail.duplicate_of_id = MailOutcome.DUPLICATE, original
                    mail.processed_at = now
        raw = None
        if mail.outcome == MailOutcome.PENDING:
            raw = self._store_raw(self._store, mail, summary, fetched)
            if raw is None:
                return None
        with self._sessions.begin() as session:
            mail = self._insert_or_duplicate(session, folder, uidvalidity, summary, mail)
            self._advance(session, folder, summary.uid)
            if mail is None:
                return None
        if seen is not None:
            seen.recorded.add(summary.uid)
            if mail.dedupe_key:
                seen.claimed.add(mail.dedupe_key)
        return _Recorded(mail.id, raw if mail.raw_path else None, mail.raw_path,
                         fetched.checking if fetched is not None else None)

    def _insert(self, session: Session, mail: Mail) -> None:
        if mail.outcome == MailOutcome.PENDING:
            key = _dedupe_key(mail)
            original = session.scalar(_ORIGINAL_OR_SAME_BYTES, {"key": key, "sha256": mail.sha256})
            if original is None:
                mail.dedupe_key = key
            else:
                mail.outcome, mail.duplicate_of_id = MailOutcome.DUPLICATE, original
                mail.processed_at = mail.fetched_at
        session.add(mail)
        session.flush()

    @staticmethod
    def _original(session: Session, key: str | None) -> int | None:
        if not key:
            return None
        return session.scalar(_ORIGINAL_OF, {"key": key})

    @staticmethod
    def _already_recorded(session: Session, folder: str, uidvalidity: int, uid: int) -> bool:
        return session.scalar(_AT_LOCATION, {"folder": folder, "uidvalidity": uidvalidity,
                                             "uid": uid}) is not None

    @staticmethod
    def _advance(session: Session, folder: str, uid: int) -> None:
        session.execute(_ADVANCE, {"in_folder": folder, "to_uid": uid})

    def _process(self, mail_id: int) -> Handled:
        """Check, read and process one recorded mail, waiting for its pictures."""
        checked = self._check(mail_id, time.monotonic(), None)
        while True:
            facts = self._facts_if_read(checked)
            if facts is not None:
                [handled] = self._finish([(checked, facts)])
                return handled
            self._wait_for_progress([checked], block=True)

    def _check(self, mail_id: int, started: float, summary: MessageSummary | None,
               folder: str | None = None, recorded: _Recorded | None = None) -> _Checked:
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
        checked = _Checked(mail_id, raw_path, raw, None, {}, started, summary, folder)
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

    def _take_checks(self, checked: _Checked) -> bool:
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

    def _facts_if_read(self, checked: _Checked) -> dict[str, dict | None] | None:
        """The facts of the mail's pictures once all are read (empty: it has none); else None
        (also while the mail is being checked)."""
        if not self._take_checks(checked):
            return None
        if not checked.pictures or self._pictures is None:
            return {}
        return self._pictures.facts(checked.mail_id, checked.pictures)

    def _finish(self, ready: list[tuple[_Checked, dict[str, dict | None]]]) -> list[Handled]:
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
                    failed, failure = together if together is not None else (None, None)
                    return [Handled(self._record_failure(session, checked.mail_id, failure), None)
                            if index == failed else
                            self._process_one(session, pipeline, checked, facts,
                                              mails.get(checked.mail_id), known)
                            for index, (checked, facts) in enumerate(ready)]
        finally:
            if self._pictures is not None:
                for checked, _ in ready:
                    self._pictures.forget(checked.pictures)

    def _process_together(self, session: Session, pipeline: Pipeline,
                          ready: list[tuple[_Checked, dict[str, dict | None]]],
                          mails: dict[int, Mail], known: Known
                          ) -> list[Handled] | tuple[int, Exception] | None:
        """The common case, cheaply: every mail of the group processed inside one savepoint and
        written with one flush (their new cases inserted at once first). Returns their Handled;
        or, everything rolled back, (the index of the mail that failed, its error); or None when
        the group as a whole could not be written (another worker opened one of its cases)."""
        now = self._clock()
        work: list[tuple[_Checked, Mail | None, Prepared | None]] = []
        for checked, facts in ready:
            mail = mails.get(checked.mail_id)
            if _taken_elsewhere(mail) is not None:
                work.append((checked, mail, None))
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
        before = known.copy()
        handled: list[Handled] = []
        failing: int | None = None  # the mail being processed, while one is
        try:
            with session.begin_nested(), cases.events_together(session):
                pipeline.open_cases(session, known, [prepared for _, _, prepared in work
                                                     if prepared is not None], now)
                for index, (checked, mail, prepared) in enumerate(work):
                    if prepared is None:
                        handled.append(_taken_elsewhere(mail))
                        continue
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
        except IntegrityError:
            known.restore(before)
            return None
        except SQLAlchemyError:
            raise
        except Exception as err:  # one bad mail must never stop the others
            known.restore(before)
            return (failing, err) if failing is not None else None
        return handled

    def _process_one(self, session: Session, pipeline: Pipeline, checked: _Checked,
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
                taken = _taken_elsewhere(mail)
                if taken is not None:
                    return taken
                if mail.raw_path != checked.raw_path:  # cannot happen today; never act on other bytes
                    raw, prepared = self._store.read(mail.raw_path), None
                self._failpoint("processing")
                outcome = pipeline.handle(session, mail, raw, self._clock(), prepared,
                                          known if prepared is not None else None)
                if checked.pictures and self._pictures is not None:
                    picture_jobs_done(session, self._pictures.used_up(checked.pictures))
                return Handled(outcome, mail.case_id)
        except SQLAlchemyError:
            raise
        except Exception as err:  # one bad mail must never stop the others
            known.restore(before)  # the cases it opened and its reply were rolled back
            return Handled(self._record_failure(session, mail_id, err), None)

    @staticmethod
    def _record_failure(session: Session, mail_id: int, err: Exception) -> str:
        mail = session.get(Mail, mail_id)
        mail.attempts += 1
        mail.error = f"{type(err).__name__}: {str(err)[:500]}"
        mail.outcome = MailOutcome.QUARANTINED if mail.attempts >= MAX_ATTEMPTS else MailOutcome.FAILED
        # The type only: messages and tracebacks can quote names from the mail.
        log.error("mail=%s processing failed (attempt %s, now %s): %s", mail_id, mail.attempts,
                  mail.outcome, type(err).__name__)
        log.debug("mail=%s failure detail", mail_id, exc_info=err)
        return mail.outcome

    def retry_unfinished(self, report: PollReport) -> None:
        """Mails recorded but not finished (a crash, or an earlier failure) get another go; not
        those another worker is still finishing (their pictures being read)."""
        now = self._clock()
        with self._sessions.begin() as session:
            gone = gone_holders(session, Mail.held_by, Mail.held_until, now,
                                Mail.outcome == MailOutcome.PENDING)
            ids = session.scalars(
                select(Mail.id)
                .where(or_(Mail.outcome == MailOutcome.FAILED,
                           (Mail.outcome == MailOutcome.PENDING)
                           & or_(Mail.held_by == self._token,
                                 claim_lapsed(Mail.held_by, Mail.held_until, now, gone))))
                .order_by(Mail.id).with_for_update(skip_locked=True)).all()
            if ids:
                session.execute(update(Mail).where(Mail.id.in_(ids))
                                .values(held_by=self._token, held_until=now + HOLD)
                                .execution_options(synchronize_session=False))
        for mail_id in ids:
            if self._stop_requested():
                return
            handled = self._process(mail_id)
            report.outcomes[handled.outcome] += 1
            log.info("mail=%s retried outcome=%s case=%s", mail_id, handled.outcome,
                     handled.case_id or "-")

    def replay(self, mail_id: int) -> str:
        """Process a quarantined (or failed) mail again, e.g. after a fix."""
        return self._again(mail_id, {MailOutcome.QUARANTINED, MailOutcome.FAILED},
                           "only quarantined or failed mail is replayed")

    def handle_dropped(self, mail_id: int) -> str:
        """Process again a mail recorded as automatic mail and not answered, one that an earlier
        rule took for a bounce (`intake reprocess` finds them). Its reply is keyed to the mail,
        so a second run cannot answer it twice."""
        return self._again(mail_id, {MailOutcome.IGNORED_AUTO},
                           "only mail recorded as automatic (ignored-auto) is handled again")

    def _again(self, mail_id: int, outcomes: set[str], rule: str) -> str:
        with self._sessions.begin() as session:
            mail = session.get(Mail, mail_id, with_for_update=True)
            if mail is None:
                raise IntakeError(f"no mail {mail_id}; `intake quarantine` lists the held ones")
            if mail.outcome not in outcomes:
                raise IntakeError(f"mail {mail_id} was already handled ({mail.outcome}); {rule}")
            cases.record_event(session, at=self._clock(), kind="handled_again", mail=mail,
                               was=mail.outcome)
            mail.outcome, mail.attempts = MailOutcome.PENDING, 0
            mail.held_by, mail.held_until = self._token, self._clock() + HOLD
        return self._process(mail_id).outcome
