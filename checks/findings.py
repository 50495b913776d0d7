"""What the checks found, as values the notifier turns into words."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing the student has to fix.

    `code` names the kind of problem (see notifier.wording for the sentences); `subject` is the
    file, archive or item it concerns, as the student named it.
    """

    code: str
    subject: str = ""
    detail: str = ""
