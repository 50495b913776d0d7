"""Throwaway servers and configs shared by the tests, the demo and the benchmark."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy

from tests.support.dovecot import Dovecot
from tests.support.smtp_capture import SmtpCapture

PG_URL = os.environ.get("INTAKE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def throwaway_servers(prefix: str) -> Iterator[tuple[Path, Dovecot, SmtpCapture]]:
    """A Dovecot and an SMTP capture on loopback, and a folder, all gone afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # Dovecot delivers as user `mail`
    dovecot = Dovecot.start(root / "dovecot")
    smtp = SmtpCapture().start()
    try:
        yield root, dovecot, smtp
    finally:
        smtp.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_server(url: str = PG_URL) -> Iterator[str]:
    """The PostgreSQL at url if one answers there, else a throwaway cluster of our own."""
    from tests.support.postgres import answers, throwaway_cluster
    if answers(url):
        yield url
        return
    with throwaway_cluster() as own:
        yield own


def postgres_schema(server: str = PG_URL) -> tuple[str, str]:
    """A fresh schema in the PostgreSQL test database: (url that uses it, schema name)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(server)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options=-csearch_path%3D{schema}", schema


def drop_postgres_schema(schema: str, server: str = PG_URL) -> None:
    engine = sqlalchemy.create_engine(server)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


TEMPLATES = Path(__file__).resolve().parents[2] / "notifier" / "templates"


def write_config(path: Path, *, dovecot: Dovecot, smtp: SmtpCapture, user: str, db_url: str,
                 storage: Path, extra: str = "", folders=("INBOX", "Junk"),
                 read_pictures: bool = False, forward_unapproved: bool = True,
                 department: str = "") -> Path:
    folder_list = ", ".join(f'"{f}"' for f in folders)
    # OCR is slow: only the tests about reading pictures turn it on.
    # Last, so that `extra` may continue the [digest] section.
    pictures = "" if read_pictures or "[pictures]" in extra else "[pictures]\nread = false"
    # Most tests are about the way a complete case goes on to the office, not about approving
    # it: they forward automatically unless they say otherwise (the product's default is true).
    approval = "require_approval = false" if forward_unapproved and "require_approval" not in extra else ""
    path.write_text(f"""
[mailbox]
host = "127.0.0.1"
port = {dovecot.imap_port}
security = "none"
username = "{user}"
address = "{user}@example.test"
password_env = "INTAKE_TEST_IMAP_PASSWORD"
folders = [{folder_list}]

[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
sender = "{user}@example.test"

[database]
url = "{db_url}"

[storage]
path = "{storage}"

[department]
name = "物理系"
contact = "王老师 010-62750000"
duty_contact = "学院值班电话 010-62751111"
{department}

[digest]
to = ["changping@example.test"]
cc = ["staff@example.test"]
{approval}
{extra}
{pictures}
""", encoding="utf-8")
    return path
