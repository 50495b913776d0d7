"""The PostgreSQL tests run on a machine without a running server: the suite starts its own."""
from __future__ import annotations

import sqlalchemy

from tests.support.dovecot import free_port
from tests.support.postgres import answers
from tests.support.servers import drop_postgres_schema, postgres_schema, postgres_server


def test_a_throwaway_cluster_is_started_when_nothing_answers_and_stopped_afterwards():
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    assert not answers(nowhere)
    with postgres_server(nowhere) as server:
        assert server != nowhere and server.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        url, schema = postgres_schema(server)
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE probe (id integer)")
            assert connection.exec_driver_sql("SELECT current_schema()").scalar() == schema
        engine.dispose()
        drop_postgres_schema(schema, server)
    assert not answers(server)


def test_a_server_that_answers_is_used_as_it_is(pg_server):
    with postgres_server(pg_server) as server:
        assert server == pg_server
