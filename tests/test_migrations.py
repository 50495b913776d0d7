"""Schema migrations: `intake migrate`, and refusing a database of an unknown version."""
from __future__ import annotations

import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from intake.db.engine import make_engine, migrate
from intake.models import Base
from tests.support.harness import Harness

# The newest revision (each branch adds one; the lead chains them).
HEAD = "0010_i21_questions"


def test_migrations_build_exactly_the_models(db_url):
    engine = make_engine(db_url)
    try:
        before, after = migrate(engine)
        assert before is None and after == HEAD
        assert migrate(engine) == (HEAD, HEAD)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_cli_migrate_and_refusals(dovecot, smtp, mailbox_user, sqlite_url, tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path)
    fresh = world.cli("migrate")
    assert fresh.returncode == 0 and f"empty -> {HEAD}" in fresh.stdout
    assert f"already at {HEAD}" in world.cli("migrate").stdout
    assert world.cli("poll").returncode == 0

    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    for command in (["poll"], ["run"], ["cases"]):
        refused = world.cli(*command)
        assert refused.returncode == 1
        assert "unknown revision 'ffff'" in refused.stderr and "refusing" in refused.stderr


def test_a_database_not_made_by_migrations_is_refused(dovecot, smtp, mailbox_user, tmp_path, env_password):
    url = f"sqlite:///{tmp_path}/legacy.db"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=url, tmp_path=tmp_path)
    refused = world.cli("poll")
    assert refused.returncode == 1 and "refusing" in refused.stderr


def test_a_database_at_0001_gains_the_reading_table(db_url):
    engine = make_engine(db_url)
    try:
        migrate(engine, to="0001")
        assert migrate(engine) == ("0001", HEAD)
        assert "reading" in sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_database_behind_this_version_is_told_to_migrate(dovecot, smtp, mailbox_user, sqlite_url,
                                                           tmp_path, env_password):
    engine = make_engine(sqlite_url)
    migrate(engine, to="0001")
    engine.dispose()
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path)
    refused = world.cli("poll")
    assert refused.returncode == 1
    assert f"at revision 0001, this version needs {HEAD}" in refused.stderr
    assert "intake migrate" in refused.stderr
    assert world.cli("migrate").returncode == 0
    assert world.cli("poll").returncode == 0
