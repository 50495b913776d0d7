"""The composition root: the only place that turns settings into adapters and wires them.

One small builder per entry point: `open_database` (read-only commands: the database and nothing
else), `build_daemon` (the poll, the outbox, the digest, the staff actions: `intake run` and the
commands that change things) and `build_desk` (the web desk). `running_daemon` and
`opened_database` are the context managers the commands use, so that each closes what it opened.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from intake.process.check_pool import CheckPool, check_pool
from intake.db.engine import create_schema, make_engine, session_factory
from intake.digest.service import DigestOptions, DigestService
from intake.errors import ConfigError
from intake.failpoints import NONE as NO_FAILPOINTS, Failpoints
from intake.fetch.mailbox import Mailbox, MailboxEndpoint
from intake.outbox.drain import DrainReport, drain_outbox
from intake.pictures.ocr import PictureReader, ReaderOptions
from intake.pictures.jobs import PictureWork
from intake.process.groups import stored_pictures
from intake.process.pipeline import Pipeline
from intake.pictures.pool import InlinePool, ReadingPool, reading_pool
from intake.pictures.readings import PictureFacts
from intake.fetch.poller import PollReport, Poller, PollSettings
from intake.settings import Settings, secret
from intake.staff.actions import StaffDesk
from intake.store.files import FileStore
from notifier.digest import DigestAddressing

if TYPE_CHECKING:
    from flask import Flask
from notifier.render import TemplateRenderer
from notifier.compose import FileAttachment
from notifier.replies import ReplyWriter, Signature
from notifier.smtp import SmtpEndpoint, smtp_connection


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Database:
    """The database alone: what read-only commands need."""
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    clock: Callable[[], datetime]

    def close(self) -> None:
        self.engine.dispose()


def open_database(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Database:
    """The engine and sessions, the schema created or checked; no store, mailbox, OCR or pools."""
    engine = make_engine(settings.database.url, settings.database.busy_timeout_seconds)
    try:
        create_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return Database(settings, engine, session_factory(engine), clock)


@contextmanager
def opened_database(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Iterator[Database]:
    database = open_database(settings, clock)
    try:
        yield database
    finally:
        database.close()


@dataclass
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    store: FileStore
    mailbox: Mailbox
    poller: Poller
    smtp: SmtpEndpoint
    digests: DigestService
    staff: StaffDesk
    replies: ReplyWriter
    clock: Callable[[], datetime]
    failpoint: Failpoints
    pictures: PictureFacts | None = None
    picture_work: PictureWork | None = None
    checker: CheckPool | None = None

    def warm_pictures(self) -> None:
        """Load the OCR engines now (the daemon's start), not when the first mail arrives."""
        if self.picture_work is not None:
            pool = self.picture_work.pool
            seconds = pool.warm()
            logging.getLogger(__name__).info("OCR engine loaded in %.1f s (%d reader%s)", seconds,
                                             pool.slots, "s" if pool.slots > 1 else "")

    def poll_once(self) -> tuple[PollReport, DrainReport]:
        report = self.poller.poll()
        return report, self.drain()

    def drain(self) -> DrainReport:
        return drain_outbox(self.sessions, lambda: smtp_connection(self.smtp), self.clock,
                            self.settings.smtp.max_attempts, failpoint=self.failpoint)

    def close(self) -> None:
        if self.checker is not None:
            self.checker.close()
        if self.picture_work is not None:
            self.picture_work.drain()
            self.picture_work.pool.close()
        self.mailbox.close()
        self.store.close()
        self.engine.dispose()


def mailbox_endpoint(settings: Settings, with_secret: bool = True) -> MailboxEndpoint:
    """The IMAP server; `with_secret=False` for commands that only read the database (the
    password variable need not be set where staff look at cases)."""
    box = settings.mailbox
    return MailboxEndpoint(box.host, box.port, box.security, box.username,
                           (secret(box.password_env, "mailbox.password_env") if with_secret else None) or "",
                           box.timeout_seconds, str(box.ca_file) if box.ca_file else None)


def smtp_endpoint(settings: Settings, with_secret: bool = True) -> SmtpEndpoint:
    smtp = settings.smtp
    return SmtpEndpoint(smtp.host, smtp.port, smtp.security, smtp.username,
                        secret(smtp.password_env, "smtp.password_env") if with_secret else None,
                        smtp.timeout_seconds,
                        str(smtp.ca_file) if smtp.ca_file else None)


def renderer(settings: Settings) -> TemplateRenderer:
    folder = settings.replies.templates
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"replies.templates: {folder} is not a folder; create it and put there only "
                          f"the templates you change (the defaults ship with intake), or remove the key")
    return TemplateRenderer(folder)


def picture_facts(settings: Settings, reader: PictureReader | None = None) -> PictureFacts | None:
    """What reads the pictures, or None when [pictures] read = false.

    One engine per process: pass the same `reader` to every app built in it.
    """
    if not settings.pictures.read:
        return None
    return PictureFacts(reader or PictureReader(ReaderOptions(settings.pictures.threads)),
                        settings.zone, settings.digest.nucleic_acid_hours)


def picture_work(settings: Settings, sessions: sessionmaker, store: FileStore, pipeline: Pipeline,
                 clock: Callable[[], datetime], reader: PictureReader | None,
                 failpoint: Failpoints) -> PictureWork | None:
    """This worker's share of the reading; None when [pictures] read = false.

    A `reader` passed in (one engine shared by every app in a process) reads in this process.
    """
    if pipeline.pictures is None:
        return None
    pool: ReadingPool
    if reader is not None:
        pool = InlinePool(pipeline.pictures)
    else:
        pool = reading_pool(pipeline.pictures, settings.pictures.processes, settings.pictures.threads)
    return PictureWork(sessions, pool, clock, stored_pictures(sessions, store, pipeline),
                       failpoint=failpoint)


def reply_writer(settings: Settings, templates: TemplateRenderer) -> ReplyWriter:
    """The student replies, signed by the department, with the operator's blank forms."""
    forms = {key: FileAttachment(path.name, path.read_bytes())
             for key, path in settings.replies.attachments.items()}
    return ReplyWriter(templates, settings.submission_rules(), settings.smtp.sender,
                       settings.smtp.sender_name, settings.digest.office_name,
                       signature=Signature(settings.department.name, settings.department.contact,
                                           settings.department.duty_contact),
                       forms=forms, nucleic_acid_hours=settings.digest.nucleic_acid_hours)


def digest_addressing(settings: Settings) -> DigestAddressing:
    digest = settings.digest
    return DigestAddressing(settings.smtp.sender, settings.smtp.sender_name, tuple(digest.to),
                            tuple(digest.cc), digest.office_name,
                            settings.department.name, settings.department.contact)


def digest_service(settings: Settings, sessions: sessionmaker, store: FileStore,
                   templates: TemplateRenderer, writer: ReplyWriter, clock: Callable[[], datetime],
                   failpoint: Failpoints = NO_FAILPOINTS) -> DigestService:
    """The digest as the daemon, the CLI and the desk all make it."""
    digest = settings.digest
    return DigestService(sessions, store, templates, writer, DigestOptions(
        addressing=digest_addressing(settings),
        max_message_bytes=digest.max_message_bytes, send_empty=digest.send_empty,
        nucleic_acid_hours=digest.nucleic_acid_hours, zone=settings.zone,
        submission_rules=settings.submission_rules(),
        require_approval=digest.require_approval, send_time=digest.time,
        opinion=settings.department.opinion, desk_url=settings.web.public_url),
        clock, failpoint)


def build_daemon(settings: Settings, clock: Callable[[], datetime] = utc_now,
                 failpoint: Failpoints | None = None, reader: PictureReader | None = None,
                 read_only: bool = False) -> App:
    """The daemon; `read_only`: no mailbox or SMTP secret is read (commands that only look open
    the database alone instead, `open_database`)."""
    failpoint = failpoint or Failpoints.from_environment()
    logging.getLogger().setLevel(settings.logging.level)
    rules = settings.submission_rules()
    engine = make_engine(settings.database.url, settings.database.busy_timeout_seconds)
    create_schema(engine)
    sessions = session_factory(engine)
    store = FileStore(settings.storage.path)
    store.ensure()
    store.sweep_temporaries(older_than_epoch=(clock() - timedelta(hours=1)).timestamp())
    templates = renderer(settings)
    pictures = picture_facts(settings, reader)
    writer = reply_writer(settings, templates)
    pipeline = Pipeline(rules=rules, store=store, replies=writer,
                        own_addresses=settings.own_addresses,
                        replies_per_sender_per_day=settings.replies.per_sender_per_day,
                        pictures=pictures, alert_recipients=settings.alert_recipients,
                        digest_time=settings.digest.time, zone=settings.zone)
    work = picture_work(settings, sessions, store, pipeline, clock, reader, failpoint)
    mailbox = Mailbox(mailbox_endpoint(settings, with_secret=not read_only))
    box = settings.mailbox
    checker = check_pool(rules, settings.own_addresses, box.check_processes)
    poller = Poller(mailbox, sessions, store, pipeline,
                    PollSettings(tuple(box.folders), box.max_age_days, box.max_message_bytes,
                                 box.keyword, box.fetch_batch), clock, failpoint, work, checker)
    digests = digest_service(settings, sessions, store, templates, writer, clock, failpoint)
    staff = StaffDesk(sessions, store, writer, rules.item_keys, clock, rules)
    return App(settings, engine, sessions, store, mailbox, poller,
               smtp_endpoint(settings, with_secret=not read_only),
               digests, staff, writer, clock, failpoint, pictures, work, checker)


@contextmanager
def running_daemon(settings: Settings) -> Iterator[App]:
    """The whole daemon, closed (its pools, mailbox, store and engine) when the block ends."""
    app = build_daemon(settings)
    try:
        yield app
    finally:
        app.close()


def build_desk(settings: Settings, *, clock: Callable[[], datetime] = utc_now,
               testing: bool = False) -> Flask:
    """The web desk: the same database, case actions and digests as the CLI, behind Flask."""
    # Imported here: the daemon and the CLI never load Flask.
    from intake.web import create_app
    from intake.web.desk import IDLE, LONGEST, DeskContext
    rules = settings.submission_rules()
    engine = make_engine(settings.database.url, settings.database.busy_timeout_seconds)
    # make_engine already gives SQLite writers BEGIN IMMEDIATE: the desk waits for the daemon.
    create_schema(engine)
    sessions = session_factory(engine)
    store = FileStore(settings.storage.path)
    templates = renderer(settings)
    writer = reply_writer(settings, templates)
    digests = digest_service(settings, sessions, store, templates, writer, clock)
    desk = DeskContext(
        settings=settings, engine=engine, sessions=sessions, store=store, digests=digests,
        staff=StaffDesk(sessions, store, writer, rules.item_keys, clock, rules),
        item_keys=rules.item_keys, zone=settings.zone, clock=clock, idle=IDLE, longest=LONGEST)
    return create_app(desk, testing=testing)
