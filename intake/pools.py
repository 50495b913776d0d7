"""Futures and process pools as the daemon uses them: the check and reading pools' common ground.

The check processes import this module: keep its imports to the standard library.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor


def done_future(function, *arguments) -> Future:
    """`function(*arguments)` run here and now, as a finished future (what a pool would return)."""
    future: Future = Future()
    try:
        future.set_result(function(*arguments))
    except Exception as err:  # the future carries it, as a pool's would
        future.set_exception(err)
    return future


def child_process_setup(parent: int) -> None:
    """What every pool process of the daemon does first; `parent`: the daemon's process id."""
    # A stop (Ctrl-C, or systemd's SIGTERM to the whole group) is the daemon's to handle: it lets
    # the work in hand finish, then shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _exit_with_parent(parent)


def spawned_pool(processes: int, initializer, initargs: tuple) -> ProcessPoolExecutor:
    """A pool whose `initializer(parent_pid, *initargs)` starts each process."""
    # spawn, not fork: the daemon holds sockets and database connections a child must not share,
    # and onnxruntime's threads do not survive a fork.
    return ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer, initargs=(os.getpid(), *initargs))


def _exit_with_parent(parent: int) -> None:
    """A daemon killed outright (SIGKILL, out of memory) must not leave its readers behind, each
    holding an engine of hundreds of MB: they notice they were orphaned and leave (also when the
    daemon died while they were still starting: their parent is then already another)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
