"""The queue of cases for one reviewer: filters, counts, and what needs a person first."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from intake.record import cases as case_store
from intake.models import Case, Item, Mail
from intake.pictures.readings import case_state
from intake.web import reading

STATUSES = (case_store.INCOMPLETE, case_store.COMPLETE, case_store.HELD, case_store.REJECTED)


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


class BadFilter(ValueError):
    """A filter the queue cannot apply: the reviewer is told which and why."""


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        found = date.fromisoformat(value)
    except ValueError as err:
        raise BadFilter(f"日期「{value[:20]}」无效：请按 YYYY-MM-DD 填写。") from err
    if not FIRST_DAY <= found <= LAST_DAY:
        raise BadFilter(f"日期 {found.isoformat()} 超出范围：请填写 {FIRST_DAY} 至 {LAST_DAY} 之间的日期。")
    return found


@dataclass(frozen=True)
class QueueFilter:
    status: str = ""        # one of STATUSES, "forwarded", or "" for every waiting case
    department: str = ""
    since: date | None = None
    until: date | None = None
    search: str = ""

    @classmethod
    def from_args(cls, args) -> QueueFilter:
        """From the query string; BadFilter for a date that is no date or out of range."""
        status = args.get("status", "")
        return cls(status=status if status in (*STATUSES, "forwarded") else "",
                   department=args.get("department", "").strip()[:200],
                   since=_day(args.get("since")), until=_day(args.get("until")),
                   search=args.get("q", "").strip()[:100])


@dataclass(frozen=True)
class QueueRow:
    id: int
    name: str
    department: str
    status: str
    missing: list[str]
    created_at: datetime
    updated_at: datetime
    flagged: bool
    alert: bool
    approved: bool
    state: str = ""  # status, or positive / popup_four / not_beijing when the reading holds it

    @property
    def priority(self) -> int:
        return _priority(self.alert, self.flagged, self.status)


PAGE_SIZE = 50


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]      # this page's cases, in the order to work on them
    counts: dict[str, int]    # by status, over every page
    departments: list[str]    # those one may filter by
    total: int                # cases matching the filter
    page: int
    pages: int


def scoped(query, scope: str | None):
    return query.where(Case.department == scope) if scope else query


def _matching(wanted: QueueFilter, scope: str | None, zone: tzinfo) -> list:
    """The WHERE conditions of the filter (and the reviewer's department)."""
    where = [Case.department == scope] if scope else []
    if wanted.status == "forwarded":
        where.append(Case.digest_id.is_not(None))
    else:
        where.append(Case.digest_id.is_(None))
        if wanted.status:
            where.append(Case.status == wanted.status)
    if wanted.department:
        where.append(Case.department == wanted.department)
    if wanted.since:
        where.append(Case.created_at >= datetime.combine(wanted.since, time(), zone))
    if wanted.until:
        where.append(Case.created_at < datetime.combine(wanted.until + timedelta(days=1), time(),
                                                        zone))
    if wanted.search:
        where.append(Case.name.contains(wanted.search, autoescape=True))
    return where


def _priority(alert: bool, flagged: bool, status: str) -> int:
    """阳性 alerts first, then flagged mail, then held cases, then everything else."""
    if alert:
        return 0
    if flagged:
        return 1
    if status == case_store.HELD:
        return 2
    return 3


@dataclass(frozen=True)
class Ranking:
    """The matching cases' ids in the order to work on them, and which stand out."""
    ids: list[int]
    flagged: set[int]
    alerts: set[int]


def ranked(session: Session, wanted: QueueFilter, scope: str | None, zone: tzinfo) -> Ranking:
    """阳性 alerts first, then flagged mail, then held cases, then everything else, oldest change
    first within each. The database orders by held and last change and hands back ids only;
    what was read on the pictures is loaded once, for the matching cases that have readings;
    a stable sort then lifts the few alerts and flags to the top."""
    where = _matching(wanted, scope, zone)
    ids = session.scalars(select(Case.id).where(*where).order_by(
        case((Case.status == case_store.HELD, 0), else_=1), Case.updated_at, Case.id)).all()
    if not ids:
        return Ranking([], set(), set())
    matching = select(Case.id).where(*where)
    flagged = {case_id for case_id in session.scalars(select(Mail.case_id).distinct().where(
        Mail.case_id.in_(matching), Mail.flagged.is_(True))) if case_id is not None}
    by_reading, alerts = reading.flagged_and_alert_cases(session, matching)
    flagged |= by_reading
    if flagged or alerts:
        ids = sorted(ids, key=lambda case_id: 0 if case_id in alerts else 1 if case_id in flagged
                     else 2)
    return Ranking(list(ids), flagged, alerts)


def _page_rows(session: Session, shown: list[int], ranking: Ranking,
               item_keys: tuple[str, ...]) -> list[QueueRow]:
    """The queue rows of one page: two light queries, whatever the page size."""
    if not shown:
        return []
    cases = {row.id: row for row in session.execute(
        select(Case.id, Case.name, Case.department, Case.status, Case.created_at,
               Case.updated_at, Case.approved_at, Case.hold_reason).where(Case.id.in_(shown)))}
    usable: dict[int, set[str]] = {}
    for case_id, kind in session.execute(select(Item.case_id, Item.kind).where(
            Item.case_id.in_(shown), Item.usable.is_(True))):
        usable.setdefault(case_id, set()).add(kind)
    rows = []
    for case_id in shown:
        found = cases[case_id]
        missing = [key for key in item_keys if key not in usable.get(case_id, set())]
        rows.append(QueueRow(found.id, found.name, found.department, found.status, missing,
                             found.created_at, found.updated_at, case_id in ranking.flagged,
                             case_id in ranking.alerts, found.approved_at is not None,
                             case_state(found.status, found.hold_reason)))
    return rows


def load_queue(session: Session, wanted: QueueFilter, scope: str | None, item_keys: tuple[str, ...],
               zone: tzinfo, page: int = 1) -> QueuePage:
    """One page of the queue, the counts by status and the departments one may filter by."""
    ranking = ranked(session, wanted, scope, zone)
    pages = max(1, -(-len(ranking.ids) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = _page_rows(session, ranking.ids[(page - 1) * PAGE_SIZE:page * PAGE_SIZE], ranking,
                      item_keys)
    counts = dict(session.execute(scoped(select(Case.status, func.count()), scope)
                                  .where(Case.digest_id.is_(None)).group_by(Case.status)).all())
    counts["forwarded"] = session.scalar(scoped(select(func.count()).select_from(Case), scope)
                                         .where(Case.digest_id.is_not(None)))
    departments = [scope] if scope else sorted(session.scalars(select(Case.department).distinct()))
    return QueuePage(rows, counts, departments, len(ranking.ids), page, pages)
