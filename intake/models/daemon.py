"""The daemon's tables: what mail was seen, the cases, their items and history, and the outbox."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.models.base import Base, UtcDateTime


class MailOutcome:
    PENDING = "pending"
    SUBMISSION = "submission"
    FOLLOW_UP = "follow-up"
    QUESTION = "question"
    CLOUD_LINK = "cloud-link"
    IGNORED_AUTO = "ignored-auto"
    IGNORED_OTHER = "ignored-other"
    DUPLICATE = "duplicate"
    TOO_OLD = "too-old"
    TOO_LARGE = "too-large"
    FAILED = "failed"
    QUARANTINED = "quarantined"


class FolderState(Base):
    __tablename__ = "folder_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    folder: Mapped[str] = mapped_column(String(255), unique=True)
    uidvalidity: Mapped[int] = mapped_column(Integer)
    last_uid: Mapped[int] = mapped_column(Integer, default=0)
    last_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Mail(Base):
    __tablename__ = "mail"
    __table_args__ = (UniqueConstraint("folder", "uidvalidity", "uid", name="uq_mail_location"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(Integer)
    uid: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    # The first copy of a message claims its key; later copies are duplicates of it.
    dedupe_key: Mapped[str | None] = mapped_column(String(998), unique=True)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    internal_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    raw_path: Mapped[str | None] = mapped_column(String(512))
    sender: Mapped[str | None] = mapped_column(String(320))
    outcome: Mapped[str] = mapped_column(String(32), default=MailOutcome.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("mail.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    # The worker that recorded (or retries) a pending mail, until when: while its pictures are
    # read, other workers' retries leave the mail to it, unless it is gone or its hold lapsed.
    held_by: Mapped[str | None] = mapped_column(String(128))
    held_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Case(Base):
    __tablename__ = "case"
    __table_args__ = (UniqueConstraint("sender", "name", "department", name="uq_case_identity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), default="incomplete", index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digest.id"), index=True)
    hold_reason: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    # Bumped by every recorded change (cases.record_event): a reviewer's action carries the
    # version they looked at and is refused when the case changed meanwhile.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    items: Mapped[list[Item]] = relationship(back_populates="case", order_by="Item.id")


class Item(Base):
    """The current file for one of a case's items (the rules' item list)."""

    __tablename__ = "item"
    __table_args__ = (UniqueConstraint("case_id", "kind", name="uq_item_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    kind: Mapped[str] = mapped_column(String(50))
    path: Mapped[str | None] = mapped_column(String(512))
    sha256: Mapped[str | None] = mapped_column(String(64))
    file_type: Mapped[str | None] = mapped_column(String(16))
    original_name: Mapped[str | None] = mapped_column(String(512))
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id"))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    usable: Mapped[bool] = mapped_column(Boolean)
    problem: Mapped[str | None] = mapped_column(String(64))

    case: Mapped[Case] = relationship(back_populates="items")


class Event(Base):
    """The append-only history of a case (and of mails that never became one)."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mail.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Outbox(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # e.g. "reply:mail:42": processing the same mail again cannot queue a second reply.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mail.id"))
    sender: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list] = mapped_column(JSON)
    recipient: Mapped[str] = mapped_column(String(320), index=True)  # the first, for the reply cap
    message_id: Mapped[str] = mapped_column(String(998))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # "host~pid" of the sender
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Digest(Base):
    """One digest run; its cases point at it through case.digest_id."""

    __tablename__ = "digest"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "scheduled:2026-11-21" for the daemon's daily run (at most one per date, whichever worker
    # gets there first); "manual:<date>:<random>" for `intake digest`.
    run_key: Mapped[str] = mapped_column(String(100), unique=True)
    date: Mapped[str] = mapped_column(String(10), index=True)
    recipients: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    case_count: Mapped[int] = mapped_column(Integer, default=0)
    held_back: Mapped[int] = mapped_column(Integer, default=0)
    parts: Mapped[int] = mapped_column(Integer, default=0)


class Reading(Base):
    """What the OCR read on one item's current picture (facts only: the raw text is not kept).

    The facts can hold ID and phone numbers: they live here only, never in logs or events.
    """

    __tablename__ = "reading"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))  # the picture that was read
    facts: Mapped[dict | None] = mapped_column(JSON)  # None: the picture could not be read
    read_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PictureJob(Base):
    """One picture waiting to be read, being read, or read and not yet used by its mail.

    Any worker may claim a pending job (FOR UPDATE SKIP LOCKED), so each picture is read once
    however many workers share the database. The bytes are not copied here: the job names the
    stored mail that carries them. The row goes when its mail is processed, with the facts (they
    can hold ID numbers, and the `reading` table keeps them from then on).
    """

    __tablename__ = "picture_job"
    __table_args__ = (Index("ix_picture_job_claimable", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending, reading, done
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    facts: Mapped[dict | None] = mapped_column(JSON)  # None when done: unreadable
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Question(Base):
    """Something a student asked that a person must answer: on the sender's case when there is
    one. Answered from the desk (a threaded reply through the outbox), which closes it."""

    __tablename__ = "question"
    __table_args__ = (Index("ix_question_open", "status", "asked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id"), unique=True)
    sender: Mapped[str] = mapped_column(String(320), index=True)
    asked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    subject: Mapped[str] = mapped_column(String(500), default="")
    text: Mapped[str] = mapped_column(Text, default="")  # the student's own words, quote cut off
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, answered
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(100))
    answer: Mapped[str | None] = mapped_column(Text)
