"""Where pictures are read: in the daemon's own process, or in a pool of processes, one per core.

The OCR engine scales poorly across threads within one picture, so on a machine with several
cores a pool of single-threaded readers, each with its engine loaded once and kept warm, reads
several pictures at a time. Both kinds hand back futures, so the caller does not care which.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import tzinfo
from typing import Protocol

from intake.pictures.ocr import PictureReader, ReaderOptions
from intake.pools import child_process_setup, done_future, spawned_pool
from intake.pictures.readings import PictureFacts

log = logging.getLogger(__name__)


class ReadingPool(Protocol):
    slots: int  # pictures it reads at the same time

    def submit(self, data: bytes) -> Future: ...  # the picture's facts, or None: unreadable

    def warm(self) -> float: ...

    def close(self) -> None: ...


class InlinePool:
    """Reads in the calling process, one picture at a time (the future is done on return)."""

    slots = 1

    def __init__(self, facts: PictureFacts):
        self._facts = facts

    def submit(self, data: bytes) -> Future:
        return done_future(self._facts.read, data)

    def warm(self) -> float:
        return self._facts.reader.warm()

    def close(self) -> None:
        pass


# One per pool process, set by its initializer: the process's warm engine. Module state is the
# only place a ProcessPoolExecutor initializer can leave something for the tasks that follow.
_worker_facts: PictureFacts | None = None


def _start_worker(parent: int, threads: int, zone: tzinfo, nucleic_acid_hours: int) -> None:
    global _worker_facts
    child_process_setup(parent)
    _worker_facts = PictureFacts(PictureReader(ReaderOptions(threads)), zone, nucleic_acid_hours)
    _worker_facts.reader.warm()


def _read_in_worker(data: bytes) -> dict | None:
    if _worker_facts is None:
        raise RuntimeError("the reading process was started without _start_worker")
    return _worker_facts.read(data)


def _worker_pid() -> int:
    time.sleep(0.05)  # long enough that a batch of these spreads over every ready process
    return os.getpid()


class ProcessPool:
    """`processes` readers, each with its own engine on `threads` threads."""

    def __init__(self, processes: int, threads: int, zone: tzinfo, nucleic_acid_hours: int):
        self.slots = processes
        self._arguments = (threads, zone, nucleic_acid_hours)
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = spawned_pool(self.slots, _start_worker, self._arguments)
        return self._executor

    def submit(self, data: bytes) -> Future:
        try:
            return self._pool().submit(_read_in_worker, data)
        except BrokenProcessPool:
            # A reader died (out of memory, killed): start a fresh pool and go on.
            log.warning("a picture reader process died; starting new ones")
            self._discard()
            return self._pool().submit(_read_in_worker, data)

    def warm(self) -> float:
        """Start every reader and load its engine now; seconds taken."""
        started = time.monotonic()
        pool = self._pool()
        seen: set[int] = set()
        # A task runs only after its process's initializer: once every process has answered,
        # every engine is loaded.
        for _ in range(50):
            seen.update(future.result() for future in [pool.submit(_worker_pid)
                                                       for _ in range(self.slots)])
            if len(seen) >= self.slots:
                break
        return time.monotonic() - started

    def _discard(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def reading_pool(facts: PictureFacts, processes: int, threads: int) -> ReadingPool:
    """`processes` 0: one reader per core. One reader reads in the daemon's own process."""
    cores = os.cpu_count() or 1
    processes = processes or cores
    if processes <= 1:
        return InlinePool(facts)
    return ProcessPool(processes, threads or max(1, cores // processes), facts.zone,
                       facts.nucleic_acid_hours)
