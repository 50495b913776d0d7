"""Named fault-injection points for the crash and outage tests.

Inert unless INTAKE_FAILPOINTS is set, e.g. `recorded=kill@3,send.after-accept=raise`:
at the 3rd time the poller passes `recorded` the process kills itself with SIGKILL, as a power cut
would; `raise` (every time, or `@N` for the Nth only) raises InjectedFault, as a bug would;
`pause` sleeps PAUSE_SECONDS there, as a slow disk or a busy machine would (the concurrency tests
use it so that a poll is surely still writing while staff act).
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from intake.errors import ConfigError, IntakeError

ENV = "INTAKE_FAILPOINTS"
PAUSE_SECONDS = 0.2


class InjectedFault(IntakeError):
    pass


@dataclass(frozen=True)
class _Rule:
    action: str
    nth: int | None  # None: every time


class Failpoints:
    def __init__(self, spec: str = ""):
        self._rules: dict[str, _Rule] = {}
        self._hits: Counter = Counter()
        self._calls: dict[str, tuple[int, Callable[[], None]]] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, action = item.partition("=")
            action, _, nth = action.partition("@")
            if action not in {"kill", "raise", "pause"} or (nth and not nth.isdigit()):
                raise ConfigError(f"{ENV}: {item!r} should look like name=kill@3, name=raise or name=pause")
            self._rules[name] = _Rule(action, int(nth) if nth else None)

    @classmethod
    def from_environment(cls) -> "Failpoints":
        return cls(os.environ.get(ENV, ""))

    def call_at(self, name: str, nth: int, action: Callable[[], None]) -> None:
        """Run `action` the nth time `name` is passed: the seam for a test that makes something
        happen at that point (a server dropping the connection), where a fault would not do."""
        if self is NONE:
            raise IntakeError("the shared inert failpoints take no actions; pass Failpoints()")
        self._calls[name] = (nth, action)

    def __call__(self, name: str) -> None:
        rule = self._rules.get(name)
        if rule is None and name not in self._calls:
            return
        self._hits[name] += 1
        nth, action = self._calls.get(name, (None, None))
        if action is not None and self._hits[name] == nth:
            action()
        if rule is None:
            return
        if rule.nth is not None and self._hits[name] != rule.nth:
            return
        if rule.action == "pause":
            time.sleep(PAUSE_SECONDS)
            return
        if rule.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise InjectedFault(f"injected fault at {name}")


NONE = Failpoints()
