"""The department's rules applied to what the pictures say.

Reading makes the product stricter only where it is sure: an unreadable picture never blocks a
case nor bounces a student; it becomes a flag for staff.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from checks.facts import HEALTH_KIT, ITINERARY, NUCLEIC_ACID

BEIJING = "北京市"

# Why a case is not forwarded, by what was read (the reply kind tells the student what to do).
POSITIVE = "positive"
POPUP_FOUR = "popup_four"
NOT_BEIJING = "not_beijing"


def refile(named: dict[str, str | None]) -> dict[str, str | None]:
    """Where each picture belongs: {named item: item it is filed under, or None if it counts for none}.

    `named` maps the item a picture was named after to the item its content shows (None: unsure).
    A picture that clearly shows another item is filed under that one, unless a picture showing
    that item is already there; then it counts for nothing and its named item is missing.
    """
    filed: dict[str, str | None] = {}
    stays = {key for key, shows in named.items() if shows is None or shows == key}
    taken = set(stays)
    for key in stays:
        filed[key] = key
    for key, shows in named.items():
        if key in stays:
            continue
        if shows not in taken:
            filed[key] = shows
            taken.add(shows)
        else:
            filed[key] = None
    return filed


@dataclass(frozen=True)
class Judgement:
    blocked: str | None = None         # POSITIVE, POPUP_FOUR or NOT_BEIJING: not forwarded
    too_old: bool = False              # 核酸 sampled longer ago than the limit
    sampled_at: datetime | None = None
    places: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def sampled_at(facts: dict[str, dict | None]) -> datetime | None:
    found = (facts.get(NUCLEIC_ACID) or {}).get("sampled_at")
    return datetime.fromisoformat(found) if found else None


def too_old(sampled: datetime | None, at: datetime, hours: int) -> bool:
    """Whether a 核酸 sampled at `sampled` is past the limit at `at` (arrival or digest time)."""
    return sampled is not None and at - sampled > timedelta(hours=hours)


def name_matches(shown: str | None, submitted: str) -> bool:
    """Whether a masked name as the app shows it (张*伟, *伟) fits the submitted name."""
    shown = (shown or "").replace("＊", "*").strip()
    if not shown or not submitted:
        return True  # nothing to compare: not a mismatch
    if len(shown) == len(submitted):
        return all(a == "*" or a == b for a, b in zip(shown, submitted))
    visible = shown.strip("*")
    return submitted.startswith(visible) if shown.endswith("*") else submitted.endswith(visible)


def flags_for(facts: dict[str, dict | None], submitted_name: str) -> list[str]:
    """What staff should look at; never a reason to reject."""
    flags = []
    for key, found in facts.items():
        if found is None or found.get("looks_like") is None:
            flags.append(f"{key}：未能识别")
    itinerary = facts.get(ITINERARY) or {}
    flags += [f"行程码含{city}*" for city in itinerary.get("starred") or []]
    sampled = sampled_at(facts)
    updated = itinerary.get("updated_at")
    if sampled and updated and datetime.fromisoformat(updated).date() != sampled.date():
        flags.append("行程码与核酸日期不一致")
    for key in (NUCLEIC_ACID, HEALTH_KIT):
        shown = (facts.get(key) or {}).get("name")
        if not name_matches(shown, submitted_name):
            flags.append(f"{key}姓名与提交不符（{shown}）")
    return flags


def department_flags(department: str, rules) -> list[str]:
    """A case from a department that is not this mailbox's (nor one of its aliases)."""
    return [f"院系不是本院系：{department}"] if rules.is_foreign_department(department) else []


def judge(facts: dict[str, dict | None], submitted_name: str, nucleic_acid_arrived: datetime | None,
          hours: int) -> Judgement:
    """The rules on a case's readings, keyed by the item each picture is filed under."""
    nucleic = facts.get(NUCLEIC_ACID) or {}
    health = facts.get(HEALTH_KIT) or {}
    places = (facts.get(ITINERARY) or {}).get("places") or []
    blocked = None
    if nucleic.get("result") == "阳性":
        blocked = POSITIVE
    elif health.get("popup") == 4:
        blocked = POPUP_FOUR
    elif places and BEIJING not in places:
        blocked = NOT_BEIJING
    sampled = sampled_at(facts)
    old = nucleic_acid_arrived is not None and too_old(sampled, nucleic_acid_arrived, hours)
    return Judgement(blocked, old, sampled, list(places), flags_for(facts, submitted_name))
