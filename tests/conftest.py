"""Real servers for the tests: Dovecot (IMAP + LMTP) and aiosmtpd on loopback, SQLite and
PostgreSQL databases."""
from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy

from tests.support.dovecot import PASSWORD, Dovecot
from tests.support.smtp_capture import SmtpCapture

PG_URL = os.environ.get("INTAKE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_users = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Dovecot:
    # Not under pytest's tmp folder: that is 0700 root, and Dovecot delivers as user `mail`.
    root = Path(tempfile.mkdtemp(prefix="jkb-dovecot-"))
    server = Dovecot.start(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def smtp() -> SmtpCapture:
    server = SmtpCapture().start()
    yield server
    server.stop()


@pytest.fixture
def mailbox_user() -> str:
    """A fresh mailbox per test: the static userdb creates it on first delivery."""
    return f"dept{next(_users)}-{uuid.uuid4().hex[:6]}"


def _postgres_url() -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    separator = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{separator}options=-csearch_path%3D{schema}", schema


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/intake.db"
    return request.getfixturevalue("db_url_pg")


@pytest.fixture
def db_url_pg() -> str:
    """A fresh schema in the PostgreSQL test database, dropped afterwards."""
    url, schema = _postgres_url()
    yield url
    engine = sqlalchemy.create_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/intake.db"


TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "templates"


def write_config(path: Path, *, dovecot: Dovecot, smtp: SmtpCapture, user: str, db_url: str,
                 storage: Path, extra: str = "", folders=("INBOX", "Junk")) -> Path:
    folder_list = ", ".join(f'"{f}"' for f in folders)
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

[replies]
templates = "{TEMPLATES}"

[digest]
to = ["changping@example.test"]
cc = ["staff@example.test"]
{extra}
""", encoding="utf-8")
    return path


@pytest.fixture
def env_password(monkeypatch):
    monkeypatch.setenv("INTAKE_TEST_IMAP_PASSWORD", PASSWORD)


@pytest.fixture(scope="session")
def bomb_1_5_gb() -> bytes:
    """1.5 GB of zeros deflated to about 1.5 MB, built by streaming."""
    from tests.support.builders import bomb_zip
    return bomb_zip("核酸.jpg", size=1536 * 1024 * 1024)
