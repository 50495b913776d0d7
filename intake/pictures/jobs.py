"""Reading pictures as shared work: each picture is a job in the database, claimed by one worker.

A mail's pictures become jobs when the mail is checked; whichever worker has a free reader claims
the next job (FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite the writer's lock serialises the
claims), reads it and stores the facts. The mail is processed once all its pictures are read, by
the worker that checked it. So a second worker adds reading capacity, and no picture is read
twice. A worker that dies holding a claim loses it when its lease runs out, or at once to a
worker on the same host.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.db.claims import claim_lapsed, gone_holders
from intake.db.engine import read_session
from intake.failpoints import NONE, Failpoints
from intake.models import Mail, MailOutcome, PictureJob
from intake.processes import process_token
from intake.pictures.pool import ReadingPool

log = logging.getLogger(__name__)

PENDING, READING, DONE = "pending", "reading", "done"
_UNFINISHED = {MailOutcome.PENDING, MailOutcome.FAILED}
MAX_ATTEMPTS = 3  # a picture that kills its reader three times is recorded as unreadable


def enqueue(session: Session, mail_id: int, shas: Iterable[str], now: datetime) -> None:
    """Jobs for pictures not yet known; a picture already queued or read keeps its job."""
    rows = [{"sha256": sha, "mail_id": mail_id, "status": PENDING, "attempts": 0,
             "created_at": now} for sha in shas]
    if not rows:
        return
    # The dialect modules load here: the PostgreSQL one costs 20 ms of every start-up.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]  # same insert API
    session.execute(dialect.insert(PictureJob).values(rows)
                    .on_conflict_do_nothing(index_elements=["sha256"]))


def claim(session: Session, worker: str, limit: int, now: datetime, lease: timedelta,
          prefer: set[str]) -> tuple[list[PictureJob], int]:
    """Up to `limit` jobs nobody holds, `prefer`red ones first, and how many of them a stopped
    worker held. A claim lapses when its lease is up, or at once when its process on this host is
    gone (a daemon restarted after a crash, say)."""
    gone = gone_holders(session, PictureJob.claimed_by, PictureJob.lease_until, now,
                        PictureJob.status == READING)
    claimable = or_(PictureJob.status == PENDING,
                    and_(PictureJob.status == READING,
                         claim_lapsed(PictureJob.claimed_by, PictureJob.lease_until, now, gone)))
    jobs: list[PictureJob] = []
    for extra in ([PictureJob.sha256.in_(prefer)] if prefer else []), []:
        if len(jobs) >= limit:
            break
        jobs += session.scalars(
            select(PictureJob).where(claimable, PictureJob.id.not_in([j.id for j in jobs]), *extra)
            .order_by(PictureJob.id).limit(limit - len(jobs))
            .with_for_update(skip_locked=True)).all()
    taken_over = sum(1 for job in jobs if job.claimed_by in gone)
    for job in jobs:
        job.status, job.claimed_by, job.lease_until = READING, worker, now + lease
        job.attempts += 1
    return jobs, taken_over


def finish(session: Session, job_id: int, worker: str, facts: dict | None, now: datetime) -> None:
    session.execute(update(PictureJob).where(PictureJob.id == job_id,
                                             PictureJob.claimed_by == worker)
                    .values(status=DONE, facts=facts, read_at=now, lease_until=None))


def give_back(session: Session, job_id: int, worker: str) -> None:
    """The reader failed (not the picture): another try, here or elsewhere, unless it was the last."""
    job = session.get(PictureJob, job_id)
    if job is None or job.claimed_by != worker:
        return
    if job.attempts >= MAX_ATTEMPTS:
        job.status, job.facts, job.lease_until = DONE, None, None
    else:
        job.status, job.lease_until = PENDING, None


def states(session: Session, shas: Iterable[str]) -> dict[str, PictureJob]:
    return {job.sha256: job for job in session.scalars(
        select(PictureJob).where(PictureJob.sha256.in_(list(shas))))}


def consume(session: Session, shas: Iterable[str]) -> None:
    """The mail is processed: its facts now live in `reading`; the jobs go, with their copy."""
    session.execute(delete(PictureJob).where(PictureJob.sha256.in_(list(shas)),
                                             PictureJob.status == DONE))


@dataclass
class _Running:
    job_id: int
    sha256: str
    started: float


class PictureWork:
    """This worker's side of the shared reading: queue, claim, read on the pool, record."""

    def __init__(self, sessions: sessionmaker, pool: ReadingPool, clock: Callable[[], datetime],
                 pictures_of_mail: Callable[[int], dict[str, bytes]],
                 lease: timedelta = timedelta(minutes=2), failpoint: Failpoints = NONE):
        self._sessions = sessions
        self._pool = pool
        self._clock = clock
        self._worker = process_token()
        self._failpoint = failpoint
        self._pictures_of_mail = pictures_of_mail  # for jobs another worker queued
        self._lease = lease
        self._known: dict[str, bytes] = {}  # the pictures of the mails this worker holds
        self._holders: Counter = Counter()  # how many of those mails carry each picture
        self._running: dict[Future, _Running] = {}

    @property
    def pool(self) -> ReadingPool:
        return self._pool

    def want(self, mail_id: int, pictures: dict[str, bytes]) -> None:
        """Queue a mail's pictures; the mail is held here until `forget`."""
        self._known.update(pictures)
        self._holders.update(pictures.keys())
        self._enqueue(mail_id, pictures)

    def _enqueue(self, mail_id: int, pictures: dict[str, bytes]) -> None:
        with self._sessions.begin() as session:
            # A mail another worker processed meanwhile (it retried what it found unfinished)
            # took its jobs with it: queueing them again would read its pictures twice.
            if session.scalar(select(Mail.outcome).where(Mail.id == mail_id)) in _UNFINISHED:
                enqueue(session, mail_id, pictures, self._clock())

    def facts(self, mail_id: int, pictures: dict[str, bytes]) -> dict[str, dict | None] | None:
        """The facts of all these pictures once every one is read; None while any is not."""
        with read_session(self._sessions) as session:
            jobs = states(session, pictures)
            found = {sha: job.facts for sha, job in jobs.items() if job.status == DONE}
            gone = {sha: data for sha, data in pictures.items() if sha not in jobs}
            if gone and session.scalar(select(Mail.outcome).where(Mail.id == mail_id)) \
                    not in _UNFINISHED:
                # Another worker (retrying what it found unfinished) processed this very mail
                # and took its jobs: nothing more to read; processing sees it is handled.
                return {sha: found.get(sha) for sha in pictures}
        if len(found) == len(pictures):
            return found
        if gone:  # another mail with the same picture was processed and took the job
            self._enqueue(mail_id, gone)
        return None

    def used_up(self, pictures: Iterable[str]) -> set[str]:
        """Of a mail's pictures, those no other mail held here still waits for."""
        return {sha for sha in pictures if self._holders[sha] <= 1}

    def forget(self, pictures: Iterable[str]) -> None:
        for sha in pictures:
            self._holders[sha] -= 1
            if self._holders[sha] <= 0:
                del self._holders[sha]
                self._known.pop(sha, None)

    def pump(self, block: bool) -> None:
        """Record finished readings and give the free readers more; `block`: wait for progress."""
        self._collect()
        free = self._pool.slots - len(self._running)
        if free > 0:
            self._start(free)
        if block:
            if self._running:
                wait(list(self._running), timeout=1.0, return_when=FIRST_COMPLETED)
                self._collect()
            else:
                time.sleep(0.2)  # the pictures waited for are in another worker's readers

    def help(self, stop_requested: Callable[[], bool]) -> None:
        """Read what is queued, this worker's or others', until nothing is left to claim."""
        while not stop_requested():
            self._collect()
            free = self._pool.slots - len(self._running)
            started = self._start(free) if free > 0 else 0
            if not self._running and not started:
                break
            if self._running:
                wait(list(self._running), timeout=1.0, return_when=FIRST_COMPLETED)
        self.drain()

    def drain(self) -> None:
        """Wait for the readings under way and record them (before this worker stops)."""
        while self._running:
            wait(list(self._running), timeout=1.0, return_when=FIRST_COMPLETED)
            self._collect()

    def _start(self, free: int) -> int:
        with self._sessions.begin() as session:
            jobs, taken_over = claim(session, self._worker, free, self._clock(), self._lease,
                                     set(self._known))
            claimed = [(job.id, job.sha256, job.mail_id) for job in jobs]
        if taken_over:
            log.warning("%d picture job(s) of a stopped worker on this host released", taken_over)
        if claimed:
            self._failpoint("picture-claimed")
        others: dict[int, dict[str, bytes]] = {}
        for job_id, sha, mail_id in claimed:
            data = self._known.get(sha)
            if data is None:
                if mail_id not in others:
                    try:
                        others[mail_id] = self._pictures_of_mail(mail_id)
                    except Exception as err:  # that mail's own processing records the failure
                        log.warning("picture job=%s: its mail=%s cannot be read again (%s)",
                                    job_id, mail_id, type(err).__name__)
                        others[mail_id] = {}
                data = others[mail_id].get(sha)
            if data is None:  # its mail no longer yields it: nothing to read, nobody waits
                with self._sessions.begin() as session:
                    finish(session, job_id, self._worker, None, self._clock())
                continue
            self._running[self._pool.submit(data)] = _Running(job_id, sha, time.monotonic())
        return len(claimed)

    def _collect(self) -> None:
        for future in [future for future in self._running if future.done()]:
            running = self._running.pop(future)
            try:
                facts = future.result()
            except Exception as err:  # the reader failed, not the picture
                log.warning("picture job=%s: reader failed (%s); given back", running.job_id,
                            type(err).__name__)
                with self._sessions.begin() as session:
                    give_back(session, running.job_id, self._worker)
                continue
            with self._sessions.begin() as session:
                finish(session, running.job_id, self._worker, facts, self._clock())
            log.info("picture job=%s read as %s in %d ms", running.job_id,
                     (facts or {}).get("looks_like") or "unknown",
                     (time.monotonic() - running.started) * 1000)
