"""`intake run`: the poll, the outbox and the daily digest on an APScheduler 3 schedule."""
from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from intake.db.engine import read_session
from intake.errors import IntakeError
from intake.models import Digest

if TYPE_CHECKING:  # the composition root builds the App a Daemon runs; only its type is needed here
    from intake.app import App

log = logging.getLogger(__name__)

_OUTBOX_SECONDS = 60
_MAX_POLL_BACKOFF = timedelta(hours=1)


def digest_trigger(clock_time: str, zone) -> CronTrigger:
    hour, minute = (int(part) for part in clock_time.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=zone)


def reminder_time(clock_time: str, minutes_before: int) -> str | None:
    """The approval reminder's time of day (HH:MM), `minutes_before` the digest; None: none."""
    if minutes_before <= 0:
        return None
    hour, minute = (int(part) for part in clock_time.split(":"))
    total = (hour * 60 + minute - minutes_before) % (24 * 60)
    return f"{total // 60:02d}:{total % 60:02d}"


def digest_due(now: datetime, clock_time: str, zone, already_made: bool) -> bool:
    """After downtime: today's digest time has passed and today's digest was not made."""
    hour, minute = (int(part) for part in clock_time.split(":"))
    local = now.astimezone(zone)
    return not already_made and local.time() >= time(hour, minute)


class Daemon:
    def __init__(self, app: App):
        self.app = app
        self.stopping = threading.Event()
        self._poll_failures = 0
        self._next_poll_allowed: datetime | None = None
        app.poller.stop_when(self.stopping.is_set)

    def build_scheduler(self) -> BackgroundScheduler:
        settings = self.app.settings
        zone = settings.zone
        scheduler = BackgroundScheduler(timezone=zone)
        # A slow job is never started twice, and runs missed while busy collapse into one.
        once = {"max_instances": 1, "coalesce": True}
        now = self.app.clock()
        scheduler.add_job(self.poll_job, IntervalTrigger(seconds=settings.schedule.poll_seconds,
                                                         timezone=zone),
                          id="poll", next_run_time=now,
                          misfire_grace_time=settings.schedule.poll_seconds, **once)
        scheduler.add_job(self.drain_job, IntervalTrigger(seconds=_OUTBOX_SECONDS, timezone=zone),
                          id="outbox", misfire_grace_time=_OUTBOX_SECONDS, **once)
        scheduler.add_job(self.digest_job, digest_trigger(settings.digest.time, zone), id="digest",
                          misfire_grace_time=6 * 3600, **once)
        reminder = reminder_time(settings.digest.time, settings.digest.remind_before)
        if settings.digest.require_approval and reminder is not None:
            scheduler.add_job(self.remind_job, digest_trigger(reminder, zone), id="remind",
                              misfire_grace_time=settings.digest.remind_before * 60, **once)
        scheduler.add_job(self.purge_job, digest_trigger(settings.retention.time, zone), id="purge",
                          misfire_grace_time=12 * 3600, **once)
        return scheduler

    def poll_job(self) -> None:
        now = self.app.clock()
        if self._next_poll_allowed and now < self._next_poll_allowed:
            return
        try:
            report, drained = self.app.poll_once()
        except IntakeError as err:
            report, drained = None, None
            log.error("poll failed: %s", err)
        if report is not None and report.ok and drained is not None:
            self._poll_failures, self._next_poll_allowed = 0, None
            log.info("poll done: %s; sent %d, waiting %d", dict(report.outcomes), drained.sent,
                     drained.retrying)
            return
        # The server is down or refusing us: back off instead of hammering it (NetEase throttles).
        self._poll_failures += 1
        self.app.mailbox.close()
        delay = min(timedelta(seconds=self.app.settings.schedule.poll_seconds) *
                    2 ** (self._poll_failures - 1), _MAX_POLL_BACKOFF)
        self._next_poll_allowed = now + delay
        log.warning("poll failed %d time(s) in a row; next try after %s", self._poll_failures,
                    self._next_poll_allowed.isoformat())

    def drain_job(self) -> None:
        try:
            self.app.drain()
        except IntakeError as err:
            log.error("outbox drain failed: %s", err)

    def digest_job(self) -> None:
        try:
            result = self.app.digests.run(scheduled=True)
        except IntakeError as err:
            log.error("digest failed: %s", err)
            return
        if result.skipped:
            log.info("digest skipped: %s", result.skipped)
        self.drain_job()

    def remind_job(self) -> None:
        try:
            self.app.digests.remind()
        except IntakeError as err:
            log.error("approval reminder failed: %s", err)
            return
        self.drain_job()

    def purge_job(self) -> None:
        from intake.ops.purge import purge
        try:
            purge(self.app.sessions, self.app.store, self.app.clock(),
                  self.app.settings.retention.days)
        except IntakeError as err:
            log.error("purge failed: %s", err)

    def catch_up(self) -> None:
        """Run today's digest once if the daemon was down at its time."""
        settings = self.app.settings
        today = self.app.digests.today()
        with read_session(self.app.sessions) as session:
            made = session.scalar(select(Digest.id).where(
                Digest.run_key == f"scheduled:{today}")) is not None
        if digest_due(self.app.clock(), settings.digest.time, settings.zone, made):
            log.info("digest time %s passed while stopped; sending today's digest now",
                     settings.digest.time)
            self.digest_job()

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        scheduler = self.build_scheduler()
        self.app.warm_pictures()
        self.catch_up()
        scheduler.start()
        log.info("daemon started: poll every %ss, digest at %s %s",
                 self.app.settings.schedule.poll_seconds, self.app.settings.digest.time,
                 self.app.settings.schedule.timezone)
        self.stopping.wait()
        log.info("stopping: finishing the mail in hand")
        scheduler.shutdown(wait=True)
        self.app.close()
        log.info("stopped")
        return 0
