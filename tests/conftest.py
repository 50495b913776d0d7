"""Real servers for the tests: Dovecot (IMAP + LMTP) and aiosmtpd on loopback, SQLite and
PostgreSQL databases."""
from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.desk import served_desk
from tests.support.dovecot import PASSWORD, Dovecot
from tests.support.harness import Clock, Harness
from tests.support.servers import drop_postgres_schema, postgres_schema, postgres_server
from tests.support.smtp_capture import SmtpCapture

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


# Which tests ran on which database, for the line in the terminal summary.
_RAN_ON = pytest.StashKey[dict]()


def _ran_on(request, database: str) -> None:
    request.config.stash.setdefault(_RAN_ON, {})[request.node.nodeid] = database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each test taking it runs on SQLite and on PostgreSQL; on SQLite alone when marked
    `sqlite_only` (a module: `pytestmark = pytest.mark.sqlite_only`)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("db_url_pg")


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc) -> None:
    if "db_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker("sqlite_only"):
        # As a mark, so that it takes the place of the fixture's own two parameters.
        metafunc.definition.add_marker(pytest.mark.parametrize("db_url", ["sqlite"], indirect=True))


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The configured PostgreSQL (INTAKE_TEST_PG_URL) if it answers, else a throwaway cluster
    started for this session on a free loopback port."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def db_url_pg(request, pg_server) -> str:
    """A fresh schema in the PostgreSQL test database, dropped afterwards."""
    _ran_on(request, "postgresql")
    url, schema = postgres_schema(pg_server)
    yield url
    drop_postgres_schema(schema, pg_server)


@pytest.fixture
def sqlite_url(request, tmp_path) -> str:
    _ran_on(request, "sqlite")
    return f"sqlite:///{tmp_path}/intake.db"


def pytest_terminal_summary(terminalreporter, config) -> None:
    ran = config.stash.get(_RAN_ON, {})
    counts = {database: sum(1 for value in ran.values() if value == database)
              for database in ("sqlite", "postgresql")}
    terminalreporter.write_line(f"database tests: {counts['sqlite']} on SQLite, "
                                f"{counts['postgresql']} on PostgreSQL")


@pytest.fixture
def env_password(monkeypatch):
    monkeypatch.setenv("INTAKE_TEST_IMAP_PASSWORD", PASSWORD)


@pytest.fixture(scope="session")
def bomb_1_5_gb() -> bytes:
    """1.5 GB of zeros deflated to about 1.5 MB, built by streaming."""
    from tests.support.builders import bomb_zip
    return bomb_zip("核酸.jpg", size=1536 * 1024 * 1024)


class _RememberingReader:
    """The session's one real OCR engine; a picture drawn twice is read once (OCR is slow)."""

    def __init__(self):
        from intake.pictures.ocr import PictureReader
        self._reader = PictureReader()
        self._seen: dict[bytes, list] = {}

    def warm(self) -> float:
        return self._reader.warm()

    def read(self, data: bytes) -> list:
        import hashlib
        key = hashlib.sha256(data).digest()
        if key not in self._seen:
            self._seen[key] = self._reader.read(data)
        return self._seen[key]


@pytest.fixture(scope="session")
def picture_reader():
    """The OCR engine, loaded once per test session."""
    reader = _RememberingReader()
    reader.warm()
    return reader


@pytest.fixture
def clock() -> Clock:
    """The injected clock a test moves by hand, to the second (as the database keeps time)."""
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def desk(dovecot, smtp, mailbox_user, sqlite_url, tmp_path, env_password) -> Iterator[Harness]:
    """The desk served over HTTP on loopback for the browser tests (tests/support/desk.served_desk),
    approval required."""
    yield from served_desk(Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                                   tmp_path=tmp_path, extra_config="require_approval = true\n"))


@pytest.fixture
def world_options() -> dict:
    """What a module's `world` needs besides the defaults, as Harness keywords (`clock`, `reader`,
    `extra_config`): a module overrides this fixture. By default the daemon runs at real time and
    does not read pictures."""
    return {}


@pytest.fixture
def world(dovecot, smtp, mailbox_user, db_url, tmp_path, env_password, world_options) -> Harness:
    """A department mailbox on the real Dovecot, the SMTP capture, a configuration and a database,
    on SQLite and on PostgreSQL (a module that needs one only overrides `db_url`). A module that
    needs cases in it first overrides `world` with a fixture that takes this one."""
    return Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path,
                   **world_options)
