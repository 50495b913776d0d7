"""What the daemon read from the pictures (OCR facts), when this installation has it.

The reading comes from another part of intake (a `reading` module with `facts_for_case` and
`alert_case_ids`); without it the desk shows the pictures alone. Everything shown from here is
labelled 机读，仅供参考: a machine's reading, for reference only.
"""
from __future__ import annotations

import importlib

from sqlalchemy.orm import Session


def _module():
    try:
        return importlib.import_module("intake.reading")
    except ImportError:
        return None


def facts_for_case(session: Session, case_id: int) -> dict[str, list[dict]]:
    """item key -> [{"label", "value", "flagged"}]; empty when nothing was read."""
    module = _module()
    accessor = getattr(module, "facts_for_case", None) if module else None
    return accessor(session, case_id) if accessor else {}


def alert_cases(session: Session, case_ids: list[int]) -> set[int]:
    """The cases whose reading raised an alert (e.g. 阳性)."""
    module = _module()
    accessor = getattr(module, "alert_case_ids", None) if module else None
    return set(accessor(session, case_ids)) if accessor and case_ids else set()
