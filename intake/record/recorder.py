"""Recording what was seen: each new mail's raw bytes stored durably and its row committed, once.

One rule says whether a mail is one handled before (`dedupe_key` and `originals`): the same
Message-ID, else the same bytes. A chunk's new mails are recorded with one look-up, one sync and
one commit; a mail met before (a crash, another worker, a copy in another folder) one at a time.
What earlier passes left unfinished is claimed here for another try (`claim_unfinished`,
`claim_for_replay`), and a failure is recorded, up to quarantine (`record_failure`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from intake.db.claims import claim_lapsed, gone_holders
from intake.db.engine import read_session
from intake.errors import IntakeError
from intake.failpoints import NONE, Failpoints
from intake.fetch.mailbox import Mailbox, MessageSummary
from intake.models import FolderState, Mail, MailOutcome
from intake.record import cases
from intake.staff.labels import MAIL_OUTCOMES, label
from intake.store.files import Batch, FileStore, sha256_hex

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# How long a worker's hold on a pending mail keeps other hosts' workers from retrying it (one on
# this host that is gone releases it at once), as a picture job's claim does.
HOLD = timedelta(minutes=2)

# The statements run for every mail, built once: building one costs more than SQLite running it.
_AT_LOCATION = select(Mail.id).where(Mail.folder == bindparam("folder"),
                                     Mail.uidvalidity == bindparam("uidvalidity"),
                                     Mail.uid == bindparam("uid"))
# (Parameters of an UPDATE may not share a name with a column of its table.)
_ADVANCE = (update(FolderState)
            .where(FolderState.folder == bindparam("in_folder"),
                   FolderState.last_uid < bindparam("to_uid"))
            .values(last_uid=bindparam("to_uid")).execution_options(synchronize_session=False))


@dataclass(frozen=True)
class RecordLimits:
    """Mail recorded but never answered: older than this many days, or larger than this."""
    max_age_days: int
    max_message_bytes: int


@dataclass
class Fetched:
    """A mail's bytes as the fetch thread hands them over."""
    raw: bytes
    sha256: str  # hashed on the fetch thread: hashing releases the GIL
    checking: Future | None = None  # its checks, started on a check process as it arrived
    staged: bool = False  # written to storage already, not yet durably (FileStore.stage_raw_mail)


@dataclass(frozen=True)
class Recorded:
    mail_id: int
    raw: bytes | None  # the bytes just stored under raw_path, None when nothing was stored
    raw_path: str | None
    checking: Future | None = None  # checks already started on these bytes


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


def dedupe_key(mail: Mail) -> str:
    """What makes a mail the same as one handled before: its Message-ID, else its bytes."""
    return mail.message_id or f"sha256:{mail.sha256}"


def originals(session: Session, keys: list[str], hashes: list[str | None]) -> list[int | None]:
    """The rule "is this the same mail?", for each (dedupe key, content hash): the mail that
    claimed that key, else the first mail of the same bytes that claimed any key; None: none."""
    known_hashes = [sha for sha in hashes if sha is not None]
    condition: ColumnElement[bool] = Mail.dedupe_key.in_(keys)
    if known_hashes:
        condition = or_(condition, Mail.sha256.in_(known_hashes) & Mail.dedupe_key.is_not(None))
    known = session.execute(select(Mail.id, Mail.dedupe_key, Mail.sha256).where(condition)).all()
    by_key = {row.dedupe_key: row.id for row in known}
    by_bytes: dict[str, int] = {}
    for row in sorted(known, key=lambda row: row.id):
        by_bytes.setdefault(row.sha256, row.id)
    return [by_key.get(key, by_bytes.get(sha) if sha is not None else None)
            for key, sha in zip(keys, hashes)]


def _mark_original(mail: Mail, key: str, original: int | None) -> None:
    if original is None:
        mail.dedupe_key = key
    else:
        mail.outcome, mail.duplicate_of_id = MailOutcome.DUPLICATE, original
        mail.processed_at = mail.fetched_at


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


def record_failure(session: Session, mail_id: int, err: Exception) -> str:
    """One more failed attempt at the mail; at the MAX_ATTEMPTS-th it is quarantined."""
    mail = session.get_one(Mail, mail_id)
    mail.attempts += 1
    mail.error = f"{type(err).__name__}: {str(err)[:500]}"
    mail.outcome = MailOutcome.QUARANTINED if mail.attempts >= MAX_ATTEMPTS else MailOutcome.FAILED
    # The type only: messages and tracebacks can quote names from the mail.
    log.error("mail=%s processing failed (attempt %s, now %s): %s", mail_id, mail.attempts,
              mail.outcome, type(err).__name__)
    log.debug("mail=%s failure detail", mail_id, exc_info=err)
    return mail.outcome


class Recorder:
    def __init__(self, mailbox: Mailbox, sessions: sessionmaker, store: FileStore,
                 limits: RecordLimits, clock: Callable[[], datetime], token: str,
                 failpoint: Failpoints = NONE):
        self._mailbox = mailbox  # for a body the chunk's FETCH did not bring
        self._sessions = sessions
        self._store = store
        self._limits = limits
        self._clock = clock
        self._token = token
        self._failpoint = failpoint

    def record_chunk(self, folder: str, uidvalidity: int, chunk: list[MessageSummary],
                     fetched: dict[int, Fetched], stop_requested: Callable[[], bool]
                     ) -> list[tuple[MessageSummary, Recorded]]:
        """Record the chunk's new mails, in the chunk's order; the mails recorded before are left
        out. One sync makes all their raw bytes durable and one commit records them all."""
        seen = self._seen(folder, uidvalidity, chunk)
        recorded: list[tuple[MessageSummary, Recorded]] = []
        new: list[tuple[MessageSummary, Fetched | None]] = []
        for summary in chunk:
            if stop_requested():
                break
            if seen.is_new(summary):
                new.append((summary, fetched.pop(summary.uid, None)))
                continue
            # Met before (a crash, another worker, a copy in another folder): one at a time.
            one = self.record_mail(folder, uidvalidity, summary, fetched.pop(summary.uid, None), seen)
            if one is not None:
                recorded.append((summary, one))
        recorded += self._record_new(folder, uidvalidity, new)
        order = {summary.uid: index for index, summary in enumerate(chunk)}
        recorded.sort(key=lambda pair: order[pair[0].uid])
        return recorded

    def _seen(self, folder: str, uidvalidity: int, chunk: list[MessageSummary]) -> _Seen:
        """One read for the whole chunk instead of a write transaction per mail."""
        uids = [summary.uid for summary in chunk]
        message_ids = list({summary.message_id for summary in chunk if summary.message_id})
        with read_session(self._sessions) as session:
            recorded = set(session.scalars(select(Mail.uid).where(
                Mail.folder == folder, Mail.uidvalidity == uidvalidity, Mail.uid.in_(uids))))
            claimed = {key for key in session.scalars(select(Mail.dedupe_key).where(
                Mail.dedupe_key.in_(message_ids))) if key is not None} if message_ids else set()
        return _Seen(recorded, claimed)

    def _new_mail(self, folder: str, uidvalidity: int, summary: MessageSummary,
                  now: datetime) -> Mail:
        mail = Mail(folder=folder, uidvalidity=uidvalidity, uid=summary.uid,
                    message_id=summary.message_id, size=summary.size,
                    internal_date=summary.internal_date, fetched_at=now,
                    outcome=MailOutcome.PENDING, attempts=0, held_by=self._token,
                    held_until=now + HOLD)
        if summary.internal_date and summary.internal_date < now - timedelta(
                days=self._limits.max_age_days):
            mail.outcome, mail.processed_at = MailOutcome.TOO_OLD, now
        elif summary.size > self._limits.max_message_bytes:
            mail.outcome, mail.processed_at = MailOutcome.TOO_LARGE, now
        return mail

    def _store_raw(self, store: FileStore | Batch, mail: Mail, summary: MessageSummary,
                   fetched: Fetched | None) -> bytes | None:
        """Store the mail's bytes (fetching them if the chunk's FETCH did not); None when the mail
        was expunged meanwhile by someone using the mailbox."""
        raw = fetched.raw if fetched is not None else self._mailbox.fetch_raw(summary.uid)
        if raw is None:
            return None
        mail.sha256 = fetched.sha256 if fetched is not None else sha256_hex(raw)
        mail.size = len(raw)
        mail.raw_path = store.put_raw_mail(raw, mail.sha256,
                                           staged=fetched is not None and fetched.staged)
        self._failpoint("raw-stored")
        return raw

    def _record_new(self, folder: str, uidvalidity: int,
                    new: list[tuple[MessageSummary, Fetched | None]]
                    ) -> list[tuple[MessageSummary, Recorded]]:
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
                inserted: Sequence[Mail | None] = self._insert_all(
                    session, [_unsaved_copy(mail) for _, mail, _, _ in stored])
                if not inserted:  # a copy within the chunk, or another worker was quicker
                    inserted = [self._insert_or_duplicate(session, folder, uidvalidity, summary,
                                                          mail)
                                for summary, mail, _, _ in stored]
                if new:
                    self._advance(session, folder, max(summary.uid for summary, _ in new))
        return [(summary, Recorded(mail.id, raw if mail.raw_path else None, mail.raw_path,
                                   checking))
                for (summary, _, raw, checking), mail in zip(stored, inserted) if mail is not None]

    def _insert_all(self, session: Session, mails: list[Mail]) -> list[Mail]:
        """Insert the mails with one look-up for their originals and one INSERT, as `insert`
        would one by one; [] (and nothing inserted) when that is not safe: two of them are
        copies of each other, or another worker inserted one of them meanwhile."""
        if not mails:
            return []
        pending = [mail for mail in mails if mail.outcome == MailOutcome.PENDING]
        keys = [dedupe_key(mail) for mail in pending]
        hashes = [mail.sha256 for mail in pending]
        if len(set(keys)) < len(keys) or len(set(hashes)) < len(hashes):
            return []
        found = originals(session, keys, hashes) if pending else []
        for mail, key, original in zip(pending, keys, found):
            _mark_original(mail, key, original)
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
                self.insert(session, mail)
            return mail
        except IntegrityError:
            if mail in session:
                session.expunge(mail)
            if self._already_recorded(session, folder, uidvalidity, summary.uid):
                return None  # another worker took this one
            # Another worker claimed the same Message-ID from another folder just now:
            # this copy is recorded as its duplicate.
            duplicate = _copy_as_duplicate(mail, self.original_of(session, mail.dedupe_key))
            session.add(duplicate)
            session.flush()
            return duplicate

    def insert(self, session: Session, mail: Mail) -> None:
        """Insert one mail's row, marked as the duplicate of its original if it has one."""
        if mail.outcome == MailOutcome.PENDING:
            key = dedupe_key(mail)
            [original] = originals(session, [key], [mail.sha256])
            _mark_original(mail, key, original)
        session.add(mail)
        session.flush()

    @staticmethod
    def original_of(session: Session, key: str | None) -> int | None:
        """The mail that claimed this dedupe key (a Message-ID), before the bytes are known."""
        if not key:
            return None
        [original] = originals(session, [key], [None])
        return original

    @staticmethod
    def _already_recorded(session: Session, folder: str, uidvalidity: int, uid: int) -> bool:
        return session.scalar(_AT_LOCATION, {"folder": folder, "uidvalidity": uidvalidity,
                                             "uid": uid}) is not None

    @staticmethod
    def _advance(session: Session, folder: str, uid: int) -> None:
        session.execute(_ADVANCE, {"in_folder": folder, "to_uid": uid})

    def record_mail(self, folder: str, uidvalidity: int, summary: MessageSummary,
                    fetched: Fetched | None = None, seen: _Seen | None = None) -> Recorded | None:
        """Commit one mail's record (after storing its raw bytes), handing back the stored bytes
        so that processing need not read them; None if it was recorded already."""
        now = self._clock()
        mail = self._new_mail(folder, uidvalidity, summary, now)
        if seen is None or not seen.is_new(summary):
            with self._sessions.begin() as session:
                if self._already_recorded(session, folder, uidvalidity, summary.uid):
                    self._advance(session, folder, summary.uid)
                    return None
                original = self.original_of(session, summary.message_id)
                if original is not None:
                    mail.outcome, mail.duplicate_of_id = MailOutcome.DUPLICATE, original
                    mail.processed_at = now
        raw = None
        if mail.outcome == MailOutcome.PENDING:
            raw = self._store_raw(self._store, mail, summary, fetched)
            if raw is None:
                return None
        with self._sessions.begin() as session:
            inserted = self._insert_or_duplicate(session, folder, uidvalidity, summary, mail)
            self._advance(session, folder, summary.uid)
            if inserted is None:
                return None
        if seen is not None:
            seen.recorded.add(summary.uid)
            if inserted.dedupe_key:
                seen.claimed.add(inserted.dedupe_key)
        return Recorded(inserted.id, raw if inserted.raw_path else None, inserted.raw_path,
                        fetched.checking if fetched is not None else None)

    def claim_unfinished(self) -> list[int]:
        """Mails recorded but not finished (a crash, or an earlier failure), held by this worker
        for another go; not those another worker is still finishing (their pictures being read)."""
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
        return list(ids)

    def claim_again(self, mail_id: int, outcomes: set[str], rule: str) -> None:
        """A mail with one of these outcomes made pending again, held by this worker, for
        another go (`rule` says which mails may have one, when this one may not)."""
        with self._sessions.begin() as session:
            mail = session.get(Mail, mail_id, with_for_update=True)
            if mail is None:
                raise IntakeError(f"没有邮件 {mail_id}；`intake quarantine` 列出隔离的邮件")
            if mail.outcome not in outcomes:
                raise IntakeError(f"邮件 {mail_id} 已经处理过（{label(MAIL_OUTCOMES, mail.outcome)}）；"
                                  f"{rule}")
            cases.record_event(session, at=self._clock(), kind="handled_again", mail=mail,
                               was=mail.outcome)
            mail.outcome, mail.attempts = MailOutcome.PENDING, 0
            mail.held_by, mail.held_until = self._token, self._clock() + HOLD
