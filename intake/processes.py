"""Which process on which host holds a claim or writes a temporary file, and whether it is gone."""
from __future__ import annotations

import os
import socket


def process_token() -> str:
    """Who is writing or sending: this host and process, so a dead one can be recognised."""
    return f"{socket.gethostname()}~{os.getpid()}"


def dead_on_this_host(token: str) -> bool:
    host, _, pid = token.rpartition("~")
    return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
