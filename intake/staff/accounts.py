"""Staff accounts of the web desk: created, listed, disabled and given new passwords.

Passwords are stored only as argon2id hashes (argon2-cffi's defaults).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from intake.models.desk import ROLES, StaffAccount, WebSession
from intake.errors import IntakeError

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so that both answers take the same time.

    Made on first use, not at import: an argon2 hash costs 64 MB and a good part of a second, and
    every `intake` command (an idle `intake poll` too) imports this module."""
    return _hasher.hash("no such account: the same work as a real check")


@dataclass(frozen=True)
class AccountView:
    username: str
    role: str
    department: str | None
    disabled: bool
    created_at: datetime


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise IntakeError(f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符")
    return _hasher.hash(password)


def password_matches(account: StaffAccount | None, password: str) -> bool:
    try:
        return _hasher.verify(account.password_hash if account else _dummy_hash(), password) \
            and account is not None
    except (VerificationError, InvalidHashError):
        return False


def _valid_username(username: str) -> str:
    username = username.strip()
    if not username or len(username) > 64 or any(ch.isspace() for ch in username):
        raise IntakeError("用户名为 1 至 64 个字符，不含空格")
    return username


def add_account(session: Session, username: str, password: str, role: str,
                department: str | None, now: datetime) -> StaffAccount:
    username = _valid_username(username)
    if role not in ROLES:
        raise IntakeError(f"角色只能是：{'、'.join(ROLES)}")
    if session.scalar(select(StaffAccount.id).where(StaffAccount.username == username)):
        raise IntakeError(f"账号 {username!r} 已存在；`intake staff passwd {username}` 可更改"
                          f"它的密码")
    account = StaffAccount(username=username, password_hash=hash_password(password), role=role,
                           department=department or None, disabled=False, created_at=now,
                           password_changed_at=now)
    session.add(account)
    session.flush()
    return account


def find_account(session: Session, username: str) -> StaffAccount:
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == username))
    if account is None:
        raise IntakeError(f"没有账号 {username!r}；`intake staff list` 列出全部账号")
    return account


def set_password(session: Session, username: str, password: str, now: datetime) -> None:
    account = find_account(session, username)
    account.password_hash, account.password_changed_at = hash_password(password), now
    # A new password signs every browser out.
    session.execute(delete(WebSession).where(WebSession.account_id == account.id))


def set_disabled(session: Session, username: str, disabled: bool = True) -> None:
    account = find_account(session, username)
    account.disabled = disabled
    if disabled:
        session.execute(delete(WebSession).where(WebSession.account_id == account.id))


def list_accounts(session: Session) -> list[AccountView]:
    return [AccountView(a.username, a.role, a.department, a.disabled, a.created_at)
            for a in session.scalars(select(StaffAccount).order_by(StaffAccount.username))]
