"""The desk's wiring, its sign-in sessions kept in the database, login throttling and the audit
log."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from intake.staff import accounts
from intake.models.desk import AuditEntry, LoginAttempt, StaffAccount, WebSession
from intake.digest.service import DigestService
from intake.settings import Settings
from intake.staff.actions import StaffDesk
from intake.store.files import FileStore

ACCOUNT_FAILURES, ACCOUNT_WINDOW = 5, timedelta(minutes=15)
ADDRESS_FAILURES, ADDRESS_WINDOW = 20, timedelta(hours=1)
# A desk sign-in ends after this long without a request, and at the latest this long after it began.
IDLE = timedelta(minutes=30)
LONGEST = timedelta(hours=10)
TOUCH_EVERY = timedelta(seconds=30)  # last_seen is written at most this often


@dataclass(frozen=True)
class DeskContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    store: FileStore
    digests: DigestService
    staff: StaffDesk
    item_keys: tuple[str, ...]
    zone: tzinfo
    clock: Callable[[], datetime]
    idle: timedelta
    longest: timedelta


@dataclass(frozen=True)
class SignedIn:
    """Who is signed in, detached from any database session."""
    account_id: int
    username: str
    role: str
    department: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def scope(self) -> str | None:
        """The only department this person may see, or None for all."""
        return None if self.is_admin else self.department


class LoginRefused(Exception):
    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.message, self.reason = message, reason


WRONG = "用户名或密码不正确。"
WAIT = "登录失败次数过多，请 15 分钟后再试。"
BLOCKED = "此地址登录失败次数过多，已暂停登录，请一小时后再试。"


def _digest(session_id: str) -> str:
    # Only a hash is stored: a copy of the database does not sign anyone in.
    return hashlib.sha256(session_id.encode()).hexdigest()


def log_in(session: Session, username: str, password: str, address: str,
           now: datetime, replacing: str | None = None) -> tuple[str, SignedIn]:
    """A new session id for the browser, or LoginRefused (the same words for an unknown user and a
    wrong password). `replacing`: the session id this browser held before; a sign-in ends it."""
    username = username.strip()[:64]
    address_failures = session.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.address == address, LoginAttempt.succeeded.is_(False),
        LoginAttempt.at > now - ADDRESS_WINDOW)) or 0
    if address_failures >= ADDRESS_FAILURES:
        raise LoginRefused(BLOCKED, "address blocked")
    account_failures = session.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == username, LoginAttempt.succeeded.is_(False),
        LoginAttempt.at > now - ACCOUNT_WINDOW)) or 0
    if account_failures >= ACCOUNT_FAILURES:
        raise LoginRefused(WAIT, "account waiting")
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == username))
    good = accounts.password_matches(account, password) and account is not None and not account.disabled
    session.add(LoginAttempt(username=username, address=address, at=now, succeeded=good))
    if account is None or not good:
        raise LoginRefused(WRONG, "wrong password or unknown user")
    log_out(session, replacing)
    session_id = secrets.token_urlsafe(32)
    session.add(WebSession(id=_digest(session_id), account_id=account.id, created_at=now,
                           last_seen_at=now, address=address))
    # Old sessions and attempts are of no further use.
    session.execute(delete(WebSession).where(WebSession.last_seen_at < now - timedelta(days=1)))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=30)))
    return session_id, _signed_in(account)


def _signed_in(account: StaffAccount) -> SignedIn:
    return SignedIn(account.id, account.username, account.role, account.department)


class TouchDue(Exception):
    """A session looked up without writing is due to have its last use written."""


def current(session: Session, session_id: str | None, now: datetime, idle: timedelta,
            longest: timedelta, writable: bool = True) -> SignedIn | None:
    """Who this cookie signs in, if its session is still alive; touches it (when not `writable`,
    raises TouchDue instead, and leaves an ended session for the next sign-in to sweep)."""
    if not session_id:
        return None
    row = session.get(WebSession, _digest(session_id))
    if row is None:
        return None
    account = session.get(StaffAccount, row.account_id)
    if account is None or account.disabled or now - row.last_seen_at > idle \
            or now - row.created_at > longest:
        if writable:
            session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        if not writable:
            raise TouchDue
        row.last_seen_at = now
    return _signed_in(account)


def log_out(session: Session, session_id: str | None) -> None:
    if session_id:
        session.execute(delete(WebSession).where(WebSession.id == _digest(session_id)))


LOGIN_FAILED = "login_failed"


@dataclass(frozen=True)
class AuditView:
    """One page of the audit log for the admin: failed logins, which anyone can cause, apart
    from what signed-in people did, so that a flood of the one never hides the other."""
    kind: str = ""          # "" what people did; LOGIN_FAILED the failed logins; else one action
    page: int = 1
    size: int = 50

    @classmethod
    def from_args(cls, args) -> AuditView:
        kind = args.get("audit", "").strip()[:64]
        page = args.get("audit_page", "1")
        return cls(kind=kind, page=int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1)

    def entries(self, session: Session) -> list[AuditEntry]:
        query = select(AuditEntry)
        query = query.where(AuditEntry.action == self.kind) if self.kind else \
            query.where(AuditEntry.action != LOGIN_FAILED)
        return list(session.scalars(query.order_by(AuditEntry.id.desc()).offset(
            (self.page - 1) * self.size).limit(self.size)))


def audit(session: Session, *, at: datetime, actor: str, action: str, case_id: int | None = None,
          address: str | None = None, **detail) -> None:
    """Record who did or saw what. Callers pass ids, kinds and reasons, never ID or phone
    numbers or picture content."""
    session.add(AuditEntry(at=at, actor=actor[:64], action=action, case_id=case_id,
                           address=address, detail=detail))
