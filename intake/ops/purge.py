"""Retention: materials and raw mail of old cases are deleted; the case row and its history stay,
without the personal data."""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import sessionmaker

from intake.record.cases import record_event
from intake.models import Case, Mail, MailOutcome, Outbox, PictureJob, Question, Reading
from intake.store.files import FileStore

log = logging.getLogger(__name__)

PURGED = "（已清除）"
_OPEN_OUTCOMES = {MailOutcome.PENDING, MailOutcome.FAILED, MailOutcome.QUARANTINED}


@dataclass
class PurgeReport:
    cases: int = 0
    mails: int = 0
    outbox: int = 0
    files: int = 0


def purge(sessions: sessionmaker, store: FileStore, now: datetime, older_than_days: int) -> PurgeReport:
    """Everything last touched before the cutoff loses its personal data.

    Quarantined or unfinished mail is kept: the operator has not dealt with it yet.
    """
    cutoff = now - timedelta(days=older_than_days)
    report = PurgeReport()
    with sessions.begin() as session:
        old_cases = session.scalars(select(Case).where(
            Case.updated_at < cutoff, Case.sender.not_like("purged-%"))).all()
        for case in old_cases:
            for item in case.items:
                item.path, item.original_name = None, None
            # What was read on the pictures (ID and phone numbers) goes with the pictures.
            session.execute(delete(Reading).where(Reading.case_id == case.id))
            case.name = f"{PURGED}{case.id}"
            case.sender = f"purged-{case.id}@invalid"
            record_event(session, at=now, kind="purged", case=case, older_than_days=older_than_days)
            report.cases += 1
        old_mails = session.scalars(select(Mail).where(
            Mail.fetched_at < cutoff, Mail.outcome.not_in(_OPEN_OUTCOMES),
            or_(Mail.raw_path.is_not(None), Mail.sender.is_not(None)))).all()
        # A student's question is their own words: it goes with their mail.
        session.execute(delete(Question).where(Question.asked_at < cutoff))
        doomed_raw = set()
        for mail in old_mails:
            if mail.raw_path:
                doomed_raw.add(mail.raw_path)
            mail.raw_path, mail.sender = None, None
            report.mails += 1
        # Facts read for a mail another worker ended up answering can stay behind in the queue.
        session.execute(delete(PictureJob).where(or_(
            PictureJob.mail_id.in_([mail.id for mail in old_mails]),
            and_(PictureJob.status == "done", PictureJob.read_at < cutoff))))
        still_used = set(session.scalars(select(Mail.raw_path).where(
            Mail.raw_path.in_(doomed_raw))).all()) if doomed_raw else set()
        old_outbox = session.scalars(select(Outbox).where(
            Outbox.created_at < cutoff, Outbox.status.in_(["sent", "failed", "superseded"]),
            Outbox.recipient.not_like("purged-%"))).all()
        for row in old_outbox:
            row.raw, row.recipients, row.recipient = b"", [], f"purged-{row.id}@invalid"
            report.outbox += 1
    # The files go only after the rows that point at them are committed without them.
    for case in old_cases:
        folder = store.root / "cases" / str(case.id)
        if folder.exists():
            report.files += sum(1 for _ in folder.iterdir())
            shutil.rmtree(folder)
    for relative in doomed_raw - still_used:
        report.files += store.delete(relative)
    log.info("purge: %d case(s), %d mail(s), %d outbox row(s), %d file(s) older than %d days",
             report.cases, report.mails, report.outbox, report.files, older_than_days)
    return report
