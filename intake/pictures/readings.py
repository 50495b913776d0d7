"""Reading a mail's pictures and acting on what they say, inside the caller's transaction.

The OCR engine is the adapter in intake/pictures/ocr.py; the facts and the rules are pure code in checks/.
Facts can carry ID and phone numbers: they go to the `reading` table only, never into logs or
events (events carry item names and rule names).
"""
from __future__ import annotations

import dataclasses
import logging
import posixpath
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checks.content_rules import (NO_POPUP, NOT_BEIJING, POPUP_FOUR, POSITIVE, UNCLEAR, Judgement,
                                  certainty, judge, refile)
from checks.facts import NUCLEIC_ACID, read_facts, settle_years
from checks.findings import Problem
from checks.submission import Assessment, ItemFile
from intake.record import cases as case_store
from intake.errors import IntakeError
from intake.models import Case, Item, Reading
from intake.pictures.ocr import PictureReader
from intake.staff import labels

log = logging.getLogger(__name__)

HOLD_PREFIX = "读图："  # holds the reading set (and lifts again when a new picture clears them)
HOLD_REASONS = {POSITIVE: "核酸结果为阳性", POPUP_FOUR: "温馨提示④（核酸后自动消除）",
                NOT_BEIJING: "行程码无北京市", NO_POPUP: "健康宝未见弹窗",
                UNCLEAR: "核酸需人工核对"}
BLOCKED_STATES = (POSITIVE, POPUP_FOUR, NOT_BEIJING)  # in the order staff look at them


def case_state(status: str, hold_reason: str | None) -> str:
    """The case's status, or what the reading found that holds it (positive, popup_four,
    not_beijing): a held case "will go later", these will not until something changes."""
    for blocked in BLOCKED_STATES:
        if hold_reason == HOLD_PREFIX + HOLD_REASONS[blocked]:
            return blocked
    return status


REPLY_KINDS = {POSITIVE: "reply_positive", POPUP_FOUR: "reply_popup_four",
               NOT_BEIJING: "reply_not_beijing", NO_POPUP: "reply_no_popup",
               UNCLEAR: "reply_nucleic_acid_unclear"}


def hold_reason(judgement: Judgement) -> str:
    """Why the reading holds the case, as staff read it (the unclear facts named)."""
    if judgement.blocked is None:
        raise ValueError("hold_reason of a reading that holds nothing")
    reason = HOLD_PREFIX + HOLD_REASONS[judgement.blocked]
    if judgement.blocked == UNCLEAR and judgement.doubts:
        reason += "（" + "；".join(judgement.doubts) + "）"
    return reason


def short_time(moment: datetime | None, zone: tzinfo) -> str | None:
    """"11月19日 08:32", as the reply names the sampling time."""
    if moment is None:
        return None
    local = moment.astimezone(zone)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


@dataclass(frozen=True)
class PictureFacts:
    reader: PictureReader
    zone: tzinfo
    nucleic_acid_hours: int

    def read(self, data: bytes) -> dict | None:
        """The facts of one picture, or None when it cannot be read (never an error)."""
        started = time.monotonic()
        try:
            facts = read_facts(self.reader.read(data), self.zone)
        except IntakeError as err:
            log.warning("picture not read: %s", err)
            return None
        log.info("picture read as %s in %d ms", facts.get("looks_like") or "unknown",
                 (time.monotonic() - started) * 1000)
        return facts

    def read_and_refile(self, assessment: Assessment) -> tuple[Assessment, dict[str, dict | None]]:
        """Read the usable pictures here and now, then file them (`refile_by_content`)."""
        pictures = pictures_to_read(assessment)
        return refile_by_content(assessment, {sha: self.read(data) for sha, data in pictures.items()})

    def store(self, session: Session, case: Case, facts_by_key: dict[str, dict | None],
              changed: list[str], now: datetime, mail_date: datetime | None = None) -> None:
        """Keep the facts of the pictures this mail put on the case; a time a picture wrote
        without its year takes the latest year not after the mail's date (`mail_date`)."""
        session.flush()
        for item in case.items:
            if item.kind not in changed or item.kind not in facts_by_key:
                continue
            reading = session.scalar(select(Reading).where(Reading.item_id == item.id))
            if reading is None:
                reading = Reading(item_id=item.id, case_id=case.id)
                session.add(reading)
            facts = settle_years(facts_by_key[item.kind], mail_date or now, self.zone)
            reading.sha256, reading.facts, reading.read_at = item.sha256, facts, now

    def apply(self, session: Session, case: Case, now: datetime, item_keys: tuple[str, ...],
              mail=None, events: case_store.EventBuffer | None = None) -> Judgement:
        """The rules on the case's readings: 核酸 too old, or a hold that stops forwarding.
        `events`: where the changes' events go (case_store.record_event)."""
        facts = case_facts(session, case)
        nucleic = next((item for item in case.items if item.kind == NUCLEIC_ACID), None)
        judgement = judge(facts, case.name, nucleic.received_at if nucleic else None,
                          self.nucleic_acid_hours)
        if judgement.too_old and nucleic is not None and nucleic.usable:
            nucleic.usable, nucleic.problem = False, "expired"
            case_store.record_event(session, at=now, kind="item_expired", case=case, mail=mail,
                                    item=NUCLEIC_ACID, reason="sampled too long ago", events=events)
            case_store.update_status(session, case, item_keys, now, mail, events)
        reading_hold = case.status == case_store.HELD and (case.hold_reason or "").startswith(HOLD_PREFIX)
        if judgement.blocked and case.status != case_store.HELD:
            old = case.status
            case.status, case.hold_reason = case_store.HELD, hold_reason(judgement)
            case_store.record_event(session, at=now, kind="status", case=case, mail=mail, old=old,
                                    new=case.status, reason=judgement.blocked, events=events)
        elif not judgement.blocked and reading_hold:
            case.status, case.hold_reason = case_store.INCOMPLETE, None
            case_store.record_event(session, at=now, kind="released", case=case, mail=mail,
                                    reason="new pictures clear the reading's hold", events=events)
            case_store.update_status(session, case, item_keys, now, mail, events)
        return judgement


def pictures_to_read(assessment: Assessment) -> dict[str, bytes]:
    """The usable pictures of a submission, named or not, by content hash (one reading serves
    copies)."""
    return {found.sha256: found.data
            for found in [*assessment.items.values(), *assessment.unnamed.values()]
            if found.usable and found.data is not None and found.sha256 is not None}


def refile_by_content(assessment: Assessment, facts_by_sha: dict[str, dict | None]
                      ) -> tuple[Assessment, dict[str, dict | None]]:
    """File each read picture under the item it shows; the problems tell the student.

    Returns the refiled assessment and the facts by the item each picture is now filed under.
    """
    read = {key: facts_by_sha[found.sha256] for key, found in assessment.items.items()
            if found.usable and found.data is not None and found.sha256 is not None}
    shows = {key: (facts or {}).get("looks_like") for key, facts in read.items()}
    filed = refile(shows)
    items = {key: found for key, found in assessment.items.items() if key not in read}
    facts_by_key: dict[str, dict | None] = {}
    problems = list(assessment.problems)
    for key, target in filed.items():
        found = assessment.items[key]
        name = posixpath.basename(found.source_name)
        if target is None:
            problems.append(Problem("shows_other", name, shows[key] or ""))
            continue
        if target != key:
            problems.append(Problem("refiled", name, target))
        items[target] = dataclasses.replace(found, key=target)
        facts_by_key[target] = read[key]
    unmatched = list(assessment.unmatched)
    for target, name, found in _unnamed_by_content(assessment, facts_by_sha, items):
        previous = items.get(target)
        if previous is not None and previous.usable and previous.key == "":
            older = posixpath.basename(previous.source_name)
            problems.remove(Problem("taken_as", older, target))
            problems.append(Problem("same_item_newer", older, f"{target}|{name}"))
        items[target] = found
        facts_by_key[target] = facts_by_sha.get(found.sha256 or "")
        problems.append(Problem("taken_as", name, target))
        unmatched.remove(name)
    items = {key: dataclasses.replace(found, key=key) for key, found in items.items()}
    ordered = {key: items[key] for key in [*assessment.items, *items] if key in items}
    return dataclasses.replace(assessment, items=ordered, problems=problems,
                               unmatched=unmatched), facts_by_key


def _unnamed_by_content(assessment: Assessment, facts_by_sha: dict[str, dict | None],
                        items: dict[str, ItemFile]) -> list[tuple[str, str, ItemFile]]:
    """(item, file name, picture) for each unnamed picture whose content shows an item that no
    named picture fills; of two showing one item, the newer comes last (it is kept)."""
    chosen = []
    for name, found in sorted(assessment.unnamed.items(), key=lambda pair: _taken_at(pair[0])):
        shows = (facts_by_sha.get(found.sha256 or "") or {}).get("looks_like")
        if shows is None:
            continue
        named = items.get(shows)
        if named is not None and named.usable and named.key != "":
            continue
        chosen.append((shows, name, found))
    return chosen


def _taken_at(name: str) -> str:
    """The moment a phone's file name carries (IMG_20261206_101122, mmexport1733451122…), as
    sortable digits; names without one sort first, in the mail's order."""
    digits = "".join(ch for ch in name if ch.isdigit())
    return digits[:14].ljust(14, "0") if len(digits) >= 8 else ""


def case_facts(session: Session, case: Case) -> dict[str, dict | None]:
    """The facts read on the case's current pictures, keyed by item (None: unreadable)."""
    readings = {reading.item_id: reading for reading in session.scalars(
        select(Reading).where(Reading.case_id == case.id))}
    found = {}
    for item in case.items:
        reading = readings.get(item.id)
        if reading is not None and reading.sha256 == item.sha256:
            found[item.kind] = reading.facts
    return found


def load_case_facts(session: Session, case_ids) -> dict[int, dict[str, dict | None]]:
    """Facts for many cases at once (the case list), keyed by case id then item; `case_ids` a
    list or a select of ids. Only the columns needed, one query: fast for thousands of cases."""
    if isinstance(case_ids, list) and not case_ids:
        return {}
    rows = session.execute(select(Reading.case_id, Item.kind, Reading.facts, Reading.sha256,
                                  Item.sha256).join(Item, Item.id == Reading.item_id)
                           .where(Reading.case_id.in_(case_ids))).all()
    found: dict[int, dict[str, dict | None]] = {}
    for case_id, kind, facts, read_sha, item_sha in rows:
        if read_sha == item_sha:  # a reading of the picture the item holds now
            found.setdefault(case_id, {})[kind] = facts
    return found


def describe_facts(facts: dict[str, dict | None], flags: list[str]) -> list[str]:
    """What was read, in Chinese, for `intake case show` (staff only: it shows ID numbers)."""
    lines = ["读图结果（机器读取，请核对）:"] if facts else []
    for key, found in facts.items():
        if not found or found.get("looks_like") is None:
            lines.append(f"  {key}：未能识别")
            continue
        parts = []
        for field, value in found.items():
            if field in ("looks_like", "scores") or value in (None, [], ""):
                continue
            if isinstance(value, list):
                value = "、".join(value)
            elif isinstance(value, str) and field.endswith("_at"):
                value = value[:16].replace("T", " ")
            sure = certainty(found, field)
            parts.append(f"{labels.FACTS.get(field, field)}：{value}" + (f"（{sure}）" if sure else ""))
        shows = "" if found["looks_like"] == key else f"（内容为{found['looks_like']}）"
        lines.append(f"  {key}{shows}：" + "；".join(parts))
    if flags:
        lines.append("提醒：" + "；".join(flags))
    return lines
