"""What the daemon read from the pictures (OCR facts), shaped for the desk.

Everything shown from here is labelled 机读，仅供参考 on the page: a machine's reading, for
reference only. Without readings (`[pictures] read = false`) the desk shows the pictures alone.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from checks.content_rules import certainty, flags_for
from checks.facts import NUCLEIC_ACID
from intake.models import Case
from intake.pictures.readings import load_case_facts
from intake.staff import labels


def _flagged(key: str, field: str, value, flags: list[str]) -> bool:
    if field == "starred":
        return bool(value)
    if field == "result":
        return value == "阳性"
    if field == "popup":
        return value == 4
    if field == "looks_like":
        return value != key
    if field == "name":
        return any(flag.startswith(f"{key}姓名") for flag in flags)
    return False


def _shown(value) -> str:
    if isinstance(value, list):
        return "、".join(str(part) for part in value)
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        return value[:16].replace("T", " ")
    return str(value)


def facts_shown(facts: dict[str, dict | None], flags: list[str]) -> dict[str, list[dict]]:
    """item key -> [{"label", "value", "flagged"}] from `StaffDesk.show`'s facts and flags."""
    shown: dict[str, list[dict]] = {}
    for key, found in facts.items():
        if not found or found.get("looks_like") is None:
            shown[key] = [{"label": "内容", "value": "未能识别", "flagged": True}]
            continue
        shown[key] = [{"label": labels.FACTS.get(field, field), "value": _shown(value),
                       "flagged": _flagged(key, field, value, flags) or certainty(found, field) == "不确定",
                       "certainty": certainty(found, field)}
                      for field, value in found.items()
                      if value not in (None, [], "") and field != "scores"
                      and (field != "looks_like" or value != key)]
    return shown


def flagged_and_alert_cases(session: Session, case_ids) -> tuple[set[int], set[int]]:
    """Of these cases (ids, or a select of them), those with something read that staff should
    look at (a flag, never a rejection), and those whose 核酸 picture reads 阳性 (staff look at
    these first)."""
    found = load_case_facts(session, case_ids)
    if not found:
        return set(), set()
    names = dict(session.execute(select(Case.id, Case.name).where(Case.id.in_(list(found)))).all())
    flagged = {case_id for case_id, facts in found.items() if flags_for(facts, names[case_id])}
    alerts = {case_id for case_id, facts in found.items()
              if ((facts.get(NUCLEIC_ACID) or {}).get("result")) == "阳性"}
    return flagged, alerts
