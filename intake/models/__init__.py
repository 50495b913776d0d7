"""The tables: the daemon's (mail, cases, items, events, outbox, digests, readings) and the desk's.

Importing this package registers every table on one metadata, as Alembic and create_all need, and
is how the rest of intake/ names them (`from intake.models import Case`).
"""
from intake.models.base import Base, UtcDateTime
from intake.models.daemon import (Case, Digest, Event, FolderState, Item, Mail, MailOutcome, Outbox,
                                  PictureJob, Question, Reading)
from intake.models.desk import ADMIN, REVIEWER, ROLES, AuditEntry, LoginAttempt, StaffAccount, WebSession

__all__ = ["Base", "UtcDateTime", "Case", "Digest", "Event", "FolderState", "Item", "Mail", "MailOutcome",
           "Outbox", "PictureJob", "Question", "Reading", "ADMIN", "REVIEWER", "ROLES", "AuditEntry", "LoginAttempt",
           "StaffAccount", "WebSession"]
