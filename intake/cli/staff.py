"""`intake staff ...` (accounts of the web desk) and `intake web` (serve the desk)."""
from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timezone

import click
from sqlalchemy.orm import Session

from intake.app import build_desk, opened_database
from intake.cli.root import cli, current
from intake.staff import accounts, labels, view
from intake.models.desk import ROLES
from intake.settings import Settings


def _settings() -> Settings:
    return current().settings


def _in_transaction(work: Callable[[Session, datetime], str]) -> None:
    with opened_database(_settings()) as database, database.sessions.begin() as session:
        message = work(session, datetime.now(timezone.utc))
    click.echo(message)


def _new_password() -> str:
    """From standard input when it is not a terminal (scripts), else asked twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


@cli.group()
def staff() -> None:
    """Accounts of the staff web desk (`intake web`)."""


@staff.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--department", help="Only this department's cases (reviewers); default all.")
def staff_add(username: str, role: str, department: str | None) -> None:
    """Create an account; the password comes from stdin (piped) or is asked twice."""
    password = _new_password()

    def add(session: Session, now: datetime) -> str:
        accounts.add_account(session, username, password, role, department, now)
        return f"账号 {username}：{labels.label(labels.ROLES, role)}" + (f"（{department}）" if department else "")
    _in_transaction(add)


@staff.command("list")
def staff_list() -> None:
    """Every account, its role, department and whether it is disabled."""
    def show(session: Session, _now) -> str:
        rows = accounts.list_accounts(session)
        if not rows:
            return "还没有账号；`intake staff add NAME --role admin` 可创建一个"
        return "\n".join(view.table(["账号", "角色", "院（系）", "状态"], [
            [a.username, labels.label(labels.ROLES, a.role), a.department or "（全部院系）",
             "已停用" if a.disabled else "可用"] for a in rows]))
    _in_transaction(show)


@staff.command("disable")
@click.argument("username")
def staff_disable(username: str) -> None:
    """Stop an account from signing in, and sign it out everywhere."""

    def disable(session: Session, _now: datetime) -> str:
        accounts.set_disabled(session, username, True)
        return f"账号 {username}：已停用"
    _in_transaction(disable)


@staff.command("passwd")
@click.argument("username")
def staff_passwd(username: str) -> None:
    """Give an account a new password (signs it out everywhere)."""
    password = _new_password()

    def change(session: Session, now: datetime) -> str:
        accounts.set_password(session, username, password, now)
        return f"账号 {username}：密码已更改"
    _in_transaction(change)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
def web(host: str, port: int) -> None:
    """Serve the staff desk with the development server (production: gunicorn, see README)."""
    app = build_desk(_settings())
    click.echo(f"工作台：http://{host}:{port}/（按 Ctrl-C 停止）")
    app.run(host=host, port=port, debug=False, use_reloader=False)
