"""One pass over the configured folders: record each new mail, process it, acknowledge it.

Order per mail (the invariants): store the raw bytes durably, commit the mail's record, process
it (inside a transaction shared with the other mails ready at the same time: all of them in one
savepoint, or, when one fails, each in a savepoint of its own), and only then mark it on the
server. A crash anywhere means the next pass handles the mail
again, and the unique keys make that second handling a no-op.

This module is the pass itself: folders, chunks, the fetch-ahead thread, the keyword marks.
Recording is intake/record/recorder.py; checking and processing, intake/process/groups.py.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from intake.errors import MailboxError, MailboxFolderMissing, MailboxLoginRefused, StorageError
from intake.failpoints import NONE, Failpoints
from intake.fetch.mailbox import Mailbox, MessageSummary
from intake.models import FolderState, MailOutcome
from intake.pictures.jobs import PictureWork
from intake.process.check_pool import CheckPool
from intake.process.groups import Checked, GroupProcessor
from intake.process.pipeline import Pipeline
from intake.processes import process_token
from intake.record.recorder import Fetched, RecordLimits, Recorder
from intake.store.files import FileStore, sha256_hex

log = logging.getLogger(__name__)


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
class PollReport:
    outcomes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    # The exit code the errors call for: 1 run-time, 2 a folder the server lacks, 3 login refused.
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


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


class Poller:
    def __init__(self, mailbox: Mailbox, sessions: sessionmaker, store: FileStore,
                 pipeline: Pipeline, settings: PollSettings, clock: Callable[[], datetime],
                 failpoint: Failpoints = NONE, pictures: PictureWork | None = None,
                 checker: CheckPool | None = None):
        self._mailbox = mailbox
        self._sessions = sessions
        self._store = store
        self._settings = settings
        self._clock = clock
        self._failpoint = failpoint
        self._pictures = pictures  # None: pictures are not read ([pictures] read = false)
        self._checker = checker  # None: mail is parsed and checked in this process
        self._stop_requested: Callable[[], bool] = lambda: False
        self.recorder = Recorder(mailbox, sessions, store,
                                 RecordLimits(settings.max_age_days, settings.max_message_bytes),
                                 clock, process_token(), failpoint)
        self.groups = GroupProcessor(sessions, store, pipeline, clock, failpoint, pictures, checker)

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
            while chunk is not None and bodies is not None:
                fetched = bodies.result()
                following = next(chunks, None)
                bodies = fetcher.submit(self._fetch_bodies, following) if following else None
                handled_uids: list[int] = []
                waiting: list[Checked] = []  # checked, their pictures being read
                try:
                    for summary, recorded in self.recorder.record_chunk(
                            folder, status.uidvalidity, chunk, fetched, self._stop_requested):
                        self._failpoint("recorded")
                        waiting.append(self.groups.check(recorded.mail_id, time.monotonic(),
                                                         summary, folder, recorded))
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

    def _fetch_bodies(self, chunk: list[MessageSummary]) -> dict[int, Fetched]:
        """The chunk's bodies, hashed, their checks started when check processes run (checks are
        pure: a mail found recorded already only wastes its check). The check processes read
        the bytes from storage, where they are written now and made durable when recorded."""
        raws = self._mailbox.fetch_raws([s.uid for s in chunk if self._wanted(s)])
        fetched = {uid: Fetched(raw, sha256_hex(raw)) for uid, raw in raws.items()}
        if self._checker is not None and self._checker.running:
            for one in fetched.values():
                one.checking = self._checker.submit(
                    one.raw, self._store.stage_raw_mail(one.raw, one.sha256))
                one.staged = True
        return fetched

    def _wanted(self, summary: MessageSummary) -> bool:
        """Whether the body is worth fetching: not obviously too large or too old to handle."""
        too_old = summary.internal_date and summary.internal_date < self._clock() - timedelta(
            days=self._settings.max_age_days)
        return summary.size <= self._settings.max_message_bytes and not too_old

    def _finish_ready(self, waiting: list[Checked], report: PollReport, handled_uids: list[int],
                      block: bool) -> None:
        """Process the waiting mails that are checked and whose pictures are all read."""
        self.groups.wait_for_progress(waiting, block)
        ready = []
        for checked in list(waiting):
            facts = self.groups.facts_if_read(checked)
            if facts is not None:
                waiting.remove(checked)
                ready.append((checked, facts))
        if not ready:
            return
        for checked, handled in zip((checked for checked, _ in ready), self.groups.finish(ready)):
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

    def retry_unfinished(self, report: PollReport) -> None:
        """Mails recorded but not finished (a crash, or an earlier failure) get another go; not
        those another worker is still finishing (their pictures being read)."""
        for mail_id in self.recorder.claim_unfinished():
            if self._stop_requested():
                return
            handled = self.groups.process(mail_id)
            report.outcomes[handled.outcome] += 1
            log.info("mail=%s retried outcome=%s case=%s", mail_id, handled.outcome,
                     handled.case_id or "-")

    def replay(self, mail_id: int) -> str:
        """Process a quarantined (or failed) mail again, e.g. after a fix."""
        self.recorder.claim_again(mail_id, {MailOutcome.QUARANTINED, MailOutcome.FAILED},
                                  "只有隔离或处理失败的邮件可以重新处理")
        return self.groups.process(mail_id).outcome

    def handle_dropped(self, mail_id: int) -> str:
        """Process again a mail recorded as automatic mail and not answered, one that an earlier
        rule took for a bounce (`intake reprocess` finds them). Its reply is keyed to the mail,
        so a second run cannot answer it twice."""
        self.recorder.claim_again(mail_id, {MailOutcome.IGNORED_AUTO},
                                  "只有记为自动邮件的邮件可以重新处理")
        return self.groups.process(mail_id).outcome
