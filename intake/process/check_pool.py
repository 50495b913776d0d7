"""Parsing and checking mail on every core: while the daemon stores and records one mail, other
processes parse and check the next ones (`prepare_mail` is pure: bytes in, findings out).

A poll with a handful of new mails checks them in the daemon's own process: starting the pool
costs more than it saves.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from checks.rules import Rules
from intake.process.prepare import Prepared, prepare_mail, without_attachment_bytes
from intake.pools import child_process_setup, done_future, spawned_pool

# One per pool process, set by its initializer (see intake/pictures/pool.py on module state).
_worker_rules: tuple[Rules, frozenset[str]] | None = None


def _start_checker(parent: int, rules: Rules, own_addresses: frozenset[str]) -> None:
    global _worker_rules
    child_process_setup(parent)
    _worker_rules = (rules, own_addresses)


def _check_in_worker(raw: bytes) -> Prepared:
    if _worker_rules is None:
        raise RuntimeError("the checking process was started without _start_checker")
    return without_attachment_bytes(prepare_mail(raw, *_worker_rules))


def _check_stored_in_worker(path: str) -> Prepared:
    return _check_in_worker(Path(path).read_bytes())


class CheckPool:
    """`processes` checkers, started at the first poll that has `worth_it` new mails or more."""

    def __init__(self, rules: Rules, own_addresses: frozenset[str], processes: int,
                 worth_it: int = 8):
        self._arguments = (rules, own_addresses)
        self._processes = processes
        self._worth_it = worth_it
        self._executor: ProcessPoolExecutor | None = None

    def worth_starting(self, new_mails: int) -> bool:
        return self._executor is not None or (self._processes > 1 and new_mails >= self._worth_it)

    @property
    def running(self) -> bool:
        return self._executor is not None

    def submit(self, raw: bytes, stored: Path | None = None) -> Future:
        """The mail's Prepared, as a future; inline while the pool is not running. `stored`: where
        these bytes are on disk, for a check process to read (cheaper than sending them)."""
        if self._executor is None:
            return self._inline(raw)
        try:
            if stored is not None:
                return self._executor.submit(_check_stored_in_worker, str(stored))
            return self._executor.submit(_check_in_worker, raw)
        except BrokenProcessPool:
            self.close()
            return self._inline(raw)

    def start(self) -> None:
        if self._executor is None and self._processes > 1:
            self._executor = spawned_pool(self._processes, _start_checker, self._arguments)

    def _inline(self, raw: bytes) -> Future:
        return done_future(prepare_mail, raw, *self._arguments)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def check_pool(rules: Rules, own_addresses: frozenset[str], processes: int) -> CheckPool:
    """`processes` 0: one per core; 1: every mail is checked in the daemon's own process."""
    return CheckPool(rules, own_addresses, processes or os.cpu_count() or 1)
