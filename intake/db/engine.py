"""Engines for the embedded SQLite default and for PostgreSQL, through the same code."""
from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from intake.errors import IntakeError


def make_engine(url: str, busy_timeout_seconds: float = 30) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_seconds})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


# Execution option for a connection that only reads: its transaction starts deferred and so
# never waits for, or holds up, a writer.
READ_ONLY = {"sqlite_begin": "DEFERRED"}


def _sqlite_connect(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    # WAL lets `intake cases` read while the daemon writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # SQLAlchemy's pysqlite recipe: Python's sqlite3 driver would emit BEGIN only before DML and
    # treat a SAVEPOINT as the start of a transaction, so releasing a begin_nested() committed
    # everything so far. The driver stays in autocommit and _sqlite_begin emits BEGIN instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection) -> None:
    # IMMEDIATE takes the write lock at the start, waiting up to the busy timeout: the daemon and
    # a staff command wait for each other instead of one failing with "database is locked" when
    # both upgrade a read to a write at once (which SQLite cannot wait out).
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _alembic(connection):
    # alembic (with mako) takes a tenth of a second to import: only when the schema has to change
    # or a revision has to be explained.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def schema_revisions(engine: Engine) -> tuple[str | None, str, bool]:
    """(the database's revision, the code's, whether the database has any tables at all)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic(None)).get_current_head()
    if head is None:
        raise IntakeError("the installed package has no database migrations: reinstall intake")
    with engine.connect().execution_options(**READ_ONLY) as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        has_tables = bool(inspect(connection).get_table_names())
    return current, head, has_tables


def migrate(engine: Engine, to: str = "head") -> tuple[str | None, str]:
    """Bring the schema to this version's head (or to the revision `to`: an older database,
    as the migration tests make); returns (from, to)."""
    try:
        before, head, _ = schema_revisions(engine)
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Workers starting together on a fresh database: one migrates, the rest wait.
                connection.execute(text("SELECT pg_advisory_xact_lock(742031)"))
            from alembic import command

            command.upgrade(_alembic(connection), to)
    except SQLAlchemyError as err:
        raise IntakeError(f"database unreachable or not writable: {type(err).__name__}") from err
    return before, head if to == "head" else to


def create_schema(engine: Engine) -> None:
    """A fresh database gets the schema; an existing one must be at this version's revision."""
    if _at_head(engine):
        return
    try:
        current, head, has_tables = schema_revisions(engine)
    except SQLAlchemyError as err:
        raise IntakeError(f"database unreachable: {type(err).__name__}") from err
    if current == head:
        return
    if current is None and not has_tables:
        migrate(engine)
        return
    from alembic.script import ScriptDirectory

    known = {rev.revision for rev in ScriptDirectory.from_config(_alembic(None)).walk_revisions()}
    if current in known:
        raise IntakeError(f"the database schema is at revision {current}, this version needs {head}: "
                          f"run `intake migrate` (back up the database first)")
    raise IntakeError(f"the database schema is at an unknown revision {current!r} (made by a newer "
                      f"version of intake, or not by intake at all); refusing to run against it")


_REVISION = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(?:['\"]([^'\"]+)['\"]|None)\s*$",
                       re.MULTILINE)


def _head_from_files() -> str | None:
    """The newest revision, read from the migration files as text; None unless every file names
    one revision and they form a single chain (then alembic itself decides)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        source = path.read_text(encoding="utf-8")
        found: dict[str, str | None] = {match[1]: match[2] for match in _REVISION.finditer(source)}
        if set(found) != {"revision", "down_revision"} or not found["revision"]:
            return None
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _at_head(engine: Engine) -> bool:
    """Whether the database is at this version's revision, asked without importing alembic:
    the usual case at every start of `intake poll` and the daemon."""
    head = _head_from_files()
    if head is None:
        return False
    try:
        with engine.connect().execution_options(**READ_ONLY) as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:  # no such table yet, or unreachable: the full check says which
        return False
    return current == [head]


def read_session(sessions: sessionmaker) -> Session:
    """A session for looking only: on SQLite it neither waits for nor holds up a writer."""
    session = sessions()
    session.connection(execution_options=READ_ONLY)
    return session


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
