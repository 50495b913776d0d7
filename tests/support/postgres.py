"""A throwaway PostgreSQL cluster for a machine where none is running: Debian's server binaries,
initdb in a temp folder as a non-root user, a free loopback port, stopped and removed afterwards."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy

from tests.support.dovecot import free_port

DATABASE = "test"


def answers(url: str) -> bool:
    """Whether a PostgreSQL server accepts a connection at url (within a few seconds)."""
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sqlalchemy.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def server_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parts[4]) if Path(path).parts[4].isdigit() else 0)
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: "
                           "run `bash scripts/setup` (it installs Debian's postgresql)")
    return Path(found[-1]).parent


def _as_owner(owner: str | None, command: list[str]) -> list[str]:
    # The server refuses to run as root; as root, the cluster belongs to `postgres`.
    return ["runuser", "-u", owner, "--", *command] if owner else command


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster with a `test` database; yields its URL; stops and removes it afterwards."""
    binaries = server_binaries()
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="jkb-postgres-"))
    data, sockets, log = root / "data", root / "run", root / "server.log"
    sockets.mkdir()
    if owner:
        account = pwd.getpwnam(owner)
        for path in (root, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    port = free_port()
    started = False
    try:
        try:
            subprocess.run(_as_owner(owner, [
                str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--no-locale", "--no-sync"]), check=True, capture_output=True, cwd=root)
            subprocess.run(_as_owner(owner, [
                str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start"]),
                check=True, capture_output=True, cwd=root)
        except subprocess.CalledProcessError as err:
            detail = (err.stderr or b"").decode(errors="replace")
            if log.exists():
                detail += log.read_text(errors="replace")
            raise RuntimeError(f"could not start a throwaway PostgreSQL: {detail.strip()}") from err
        started = True
        admin = sqlalchemy.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
                                         isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {DATABASE}")
        admin.dispose()
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            subprocess.run(_as_owner(owner, [str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                                             "-w", "stop"]), capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
