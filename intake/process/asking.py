"""When a student's mail is a question for a person, and what its acknowledgement says: the
case's state and when the next digest goes to the office."""
from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

import email.utils

from checks.facts import NUCLEIC_ACID
from checks.findings import Problem
from checks.names import writes_for_a_student
from checks.questions import asks_something, own_words, says_something
from checks.submission import Assessment
from intake.models import Case
from intake.process.reader import ReadMail
from intake.pictures.readings import short_time
from intake.process.stale import same_as_before
from intake.record import cases


def is_question(read: ReadMail, case: Case | None, opened: bool, brought: list[str],
                assessment: Assessment, changed: list[str]) -> bool:
    """A mail without a usable file that asks something, or one answering our mail about its
    case with words of its own but nothing new: for a person to answer."""
    if brought and not (case is not None and not opened and same_as_before(assessment, changed)):
        return False
    if asks_something(read.subject, read.body_text):
        return True
    return case is not None and not opened and bool(read.references) \
        and says_something(read.body_text)


def state_of(case: Case | None) -> str:
    """What the acknowledgement of a question says of the case: none, incomplete, held,
    complete (waiting for the digest) or forwarded."""
    if case is None:
        return "none"
    if case.digest_id is not None:
        return "forwarded"
    return case.status if case.status in {cases.COMPLETE, cases.HELD} else "incomplete"


def parent_writing(read: ReadMail) -> bool:
    """The mail comes from a parent (家长/爸爸/妈妈 in the From name or in their own words)."""
    display = email.utils.parseaddr((read.headers.get("from") or [""])[0])[0]
    return writes_for_a_student(display, own_words(read.body_text))


def next_digest_at(now: datetime, digest_time: str, zone: tzinfo) -> datetime:
    """When the next daily digest goes to the office."""
    hour, minute = (int(part) for part in digest_time.split(":"))
    local = now.astimezone(zone)
    at = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    return at + timedelta(days=1) if at <= local else at


def next_digest_label(now: datetime, digest_time: str, zone: tzinfo) -> str:
    """"今天 17:00", "明天 17:00" or "12月8日 17:00": when the next digest goes out."""
    local = now.astimezone(zone)
    at = next_digest_at(now, digest_time, zone)
    days = (at.date() - local.date()).days
    day = {0: "今天", 1: "明天"}.get(days, f"{at.month}月{at.day}日")
    return f"{day} {at:%H:%M}"


def nucleic_acid_timing(case: Case, judgement, hours: int, now: datetime, digest_time: str,
                        zone: tzinfo, extra: dict) -> list[Problem]:
    """Until when the case's 核酸 counts (from its sampling as read, else its arrival), into
    `extra`; a problem telling the student at once when that is before the next digest."""
    nucleic = next((item for item in case.items if item.kind == NUCLEIC_ACID and item.usable), None)
    start = judgement.sampled_at if judgement is not None and judgement.sampled_at else (
        nucleic.received_at if nucleic is not None else None)
    if start is None:
        return []
    expires = start + timedelta(hours=hours)
    valid_until = short_time(expires, zone) or ""  # never empty: `expires` is a time
    extra["valid_until"] = valid_until
    if expires > next_digest_at(now, digest_time, zone):
        return []
    return [Problem("nucleic_acid_expires_before_digest", valid_until,
                    next_digest_label(now, digest_time, zone))]
