"""The department's rules applied to what the pictures say.

Reading makes the product stricter only where it is sure: an unreadable picture never blocks a
case nor bounces a student; it becomes a flag for staff.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from checks.facts import HEALTH_KIT, ITINERARY, NUCLEIC_ACID, STATEMENT

BEIJING = "北京市"

# Why a case is not forwarded, by what was read (the reply kind tells the student what to do).
POSITIVE = "positive"
POPUP_FOUR = "popup_four"
NOT_BEIJING = "not_beijing"
NO_POPUP = "no_popup"      # a 健康宝 without a popup: the process is for a popup; is it gone?
UNCLEAR = "unclear"        # the 核酸 result or sampling time cannot be read for sure: staff look

# The recogniser's score under which a fact counts as unreadable (RapidOCR gives clean print
# about 0.95-1.0; blurred or half-covered words fall well below).
CLEAR_SCORE = 0.8
NO_POPUP_FLAG = "健康宝未见弹窗"


def refile(named: dict[str, str | None]) -> dict[str, str | None]:
    """Where each picture belongs: {named item: item it is filed under, or None if it counts for none}.

    `named` maps the item a picture was named after to the item its content shows (None: unsure).
    A picture that clearly shows another item is filed under that one, unless a picture showing
    that item is already there; then it counts for nothing and its named item is missing.
    """
    filed: dict[str, str | None] = {}
    stays = {key for key, shows in named.items() if shows is None or shows == key}
    taken: set[str | None] = set(stays)
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
    blocked: str | None = None         # POSITIVE, POPUP_FOUR, NO_POPUP, NOT_BEIJING or UNCLEAR
    too_old: bool = False              # 核酸 sampled longer ago than the limit
    sampled_at: datetime | None = None
    places: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)  # what is unclear on the 核酸 picture


def clear(found: dict | None, key: str):
    """A fact as read, or None when it was not read, or read with a score under CLEAR_SCORE,
    or is a time whose year is unknown: such a fact counts as unreadable."""
    value = (found or {}).get(key)
    score = ((found or {}).get("scores") or {}).get(key)
    if value is None or (score is not None and score < CLEAR_SCORE):
        return None
    if key.endswith("_at") and (not isinstance(value, str) or value.startswith("--")):
        return None
    return value


def certainty(found: dict | None, key: str) -> str | None:
    """清晰 or 不确定, as staff read the recogniser's score of a fact (None: no score kept)."""
    score = ((found or {}).get("scores") or {}).get(key)
    if score is None:
        return None
    return "清晰" if score >= CLEAR_SCORE else "不确定"


def sampled_at(facts: dict[str, dict | None]) -> datetime | None:
    found = clear(facts.get(NUCLEIC_ACID), "sampled_at")
    return datetime.fromisoformat(found) if found else None


def nucleic_acid_doubts(facts: dict[str, dict | None]) -> list[str]:
    """What keeps the 核酸 picture from being sure (the case then waits for a person): an
    unreadable page, result or sampling time, or both 阴性 and 阳性 for the newest record."""
    if NUCLEIC_ACID not in facts:
        return []
    found = facts[NUCLEIC_ACID]
    if found is None or found.get("looks_like") != NUCLEIC_ACID:
        return [f"{NUCLEIC_ACID}：未能识别"]
    doubts = list(found.get("doubts") or [])
    if clear(found, "sampled_at") is None:
        doubts.append("核酸采样时间：未能识别")
    if clear(found, "result") is None and not any(doubt.startswith("核酸检测结果") for doubt in doubts):
        doubts.append("核酸检测结果：未能识别")
    return doubts


def no_popup(facts: dict[str, dict | None]) -> bool:
    """A 健康宝 screenshot read as one, without a 温馨提示 popup (a green code, 未见异常)."""
    health = facts.get(HEALTH_KIT) or {}
    return health.get("looks_like") == HEALTH_KIT and health.get("popup") is None


def too_old(sampled: datetime | None, at: datetime, hours: int) -> bool:
    """Whether a 核酸 sampled at `sampled` is past the limit at `at` (arrival or digest time)."""
    return sampled is not None and at - sampled > timedelta(hours=hours)


_IGNORED_IN_NAMES = re.compile(r"[\s·•・．.‧∙⋅]+")


def name_matches(shown: str | None, submitted: str) -> bool:
    """Whether a masked name as an app shows it fits the submitted name: `*` stands for one
    or more characters (阿*孜 fits 阿卜杜拉·艾则孜), middle dots and spaces do not count, and a
    lone visible character fits when the name begins or ends with it (冯 for 冯雪)."""
    shown = _IGNORED_IN_NAMES.sub("", (shown or "").replace("＊", "*")).casefold()
    submitted = _IGNORED_IN_NAMES.sub("", submitted or "").casefold()
    if not shown.strip("*") or not submitted:
        return True  # nothing to compare: not a mismatch
    if "*" not in shown and len(shown) == 1:
        return submitted.startswith(shown) or submitted.endswith(shown)
    pattern = ".+".join(re.escape(part) for part in shown.split("*"))
    return re.fullmatch(pattern, submitted) is not None


def itinerary_off_the_test(updated: datetime, sampled: datetime, hours: int) -> bool:
    """Whether the 行程码 cannot cover the 核酸: taken before the sampling day (it would not show
    where the student went since), or after the result stopped being valid."""
    return updated.date() < sampled.date() or updated > sampled + timedelta(hours=hours)


def flags_for(facts: dict[str, dict | None], submitted_name: str, hours: int = 48) -> list[str]:
    """What staff should look at; never a reason to reject."""
    flags = []
    for key, found in facts.items():
        if found is None or found.get("looks_like") is None:
            flags.append(f"{key}：未能识别")
    itinerary = facts.get(ITINERARY) or {}
    flags += [doubt for doubt in nucleic_acid_doubts(facts) if doubt not in flags]
    if no_popup(facts):
        flags.append(NO_POPUP_FLAG)
    flags += [f"行程码含{city}*" for city in itinerary.get("starred") or []]
    sampled = sampled_at(facts)
    updated = itinerary.get("updated_at")
    if sampled and updated and itinerary_off_the_test(datetime.fromisoformat(updated), sampled, hours):
        flags.append("行程码与核酸日期不一致")
    if (facts.get(STATEMENT) or {}).get("身份证号校验不符"):
        flags.append("情况说明身份证号校验位不符")
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
    doubts = nucleic_acid_doubts(facts)
    blocked = None
    if clear(nucleic, "result") == "阳性":
        blocked = POSITIVE
    elif health.get("popup") == 4:
        blocked = POPUP_FOUR
    elif no_popup(facts):
        blocked = NO_POPUP
    elif places and BEIJING not in places:
        blocked = NOT_BEIJING
    elif doubts:
        blocked = UNCLEAR
    sampled = sampled_at(facts)
    old = nucleic_acid_arrived is not None and too_old(sampled, nucleic_acid_arrived, hours)
    return Judgement(blocked, old, sampled, list(places), flags_for(facts, submitted_name, hours), doubts)
