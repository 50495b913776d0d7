"""The desk's case actions, one handler each in a table: what the case page's buttons do.

Each calls the same staff action as the CLI, with the desk's audit row written in the action's
own transaction (`audited`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from intake.errors import IntakeError
from intake.web.desk import DeskContext

ACTIONS = ("approve", "hold", "reject", "note", "reopen")


@dataclass(frozen=True)
class DeskAction:
    """One case action asked for on the desk, as the action handlers take it."""
    case_id: int
    form: MultiDict
    reason: str  # the chosen template reason and the typed one
    by: str
    expected: int  # the case version the reviewer saw
    audited: Callable[[Session], None]


def _approve(desk: DeskContext, asked: DeskAction) -> None:
    desk.staff.approve(asked.case_id, asked.by, expected_version=asked.expected, also=asked.audited)


def _hold(desk: DeskContext, asked: DeskAction) -> None:
    if not asked.reason:
        raise IntakeError("请填写暂缓原因")
    desk.staff.hold(asked.case_id, asked.reason, asked.by, expected_version=asked.expected,
                    also=asked.audited)


def _reject(desk: DeskContext, asked: DeskAction) -> None:
    if not asked.reason:
        raise IntakeError("请选择或填写退回原因")
    desk.staff.reject(asked.case_id, asked.reason, asked.by, tuple(asked.form.getlist("items")),
                      expected_version=asked.expected, also=asked.audited)


def _note(desk: DeskContext, asked: DeskAction) -> None:
    text = asked.form.get("text", "").strip()
    if not text:
        raise IntakeError("备注不能为空")
    desk.staff.note(asked.case_id, text, asked.by, expected_version=asked.expected,
                    also=asked.audited)


def _reopen(desk: DeskContext, asked: DeskAction) -> None:
    desk.staff.reopen(asked.case_id, asked.by, expected_version=asked.expected, also=asked.audited)


# One handler per action in ACTIONS (tests/test_layout.py checks that none is missing).
DESK_ACTIONS: dict[str, Callable[[DeskContext, DeskAction], None]] = {
    "approve": _approve, "hold": _hold, "reject": _reject, "note": _note, "reopen": _reopen,
}
