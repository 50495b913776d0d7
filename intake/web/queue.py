"""The queue of cases for one reviewer: filters, counts, and what needs a person first."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake import cases as case_store
from intake.models import Case, Mail
from intake.readings import case_state
from intake.web import reading

STATUSES = (case_store.INCOMPLETE, case_store.COMPLETE, case_store.HELD, case_store.REJECTED)
STATUS_LABELS = {"incomplete": "材料不全", "complete": "材料齐全", "held": "暂缓", "rejected": "未通过",
                 "positive": "阳性", "popup_four": "温馨提示④", "not_beijing": "不在北京",
                 "forwarded": "已转发"}


@dataclass(frozen=True)
class QueueFilter:
    status: str = ""        # one of STATUSES, "forwarded", or "" for every waiting case
    department: str = ""
    since: date | None = None
    until: date | None = None
    search: str = ""

    @classmethod
    def from_args(cls, args) -> QueueFilter:
        def day(value):
            try:
                return date.fromisoformat(value) if value else None
            except ValueError:
                return None
        status = args.get("status", "")
        return cls(status=status if status in (*STATUSES, "forwarded") else "",
                   department=args.get("department", "").strip(),
                   since=day(args.get("since")), until=day(args.get("until")),
                   search=args.get("q", "").strip())


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
        """阳性 alerts first, then flagged mail, then held cases, then everything else."""
        if self.alert:
            return 0
        if self.flagged:
            return 1
        if self.status == case_store.HELD:
            return 2
        return 3


def scoped(query, scope: str | None):
    return query.where(Case.department == scope) if scope else query


def load_queue(session: Session, wanted: QueueFilter, scope: str | None, item_keys: tuple[str, ...],
               zone: tzinfo) -> tuple[list[QueueRow], dict[str, int], list[str]]:
    """(rows in the order to work on them, counts by status, the departments one may filter by)."""
    query = scoped(select(Case), scope)
    if wanted.status == "forwarded":
        query = query.where(Case.digest_id.is_not(None))
    else:
        query = query.where(Case.digest_id.is_(None))
        if wanted.status:
            query = query.where(Case.status == wanted.status)
    if wanted.department:
        query = query.where(Case.department == wanted.department)
    if wanted.since:
        query = query.where(Case.created_at >= datetime.combine(wanted.since, time(), zone))
    if wanted.until:
        query = query.where(Case.created_at < datetime.combine(wanted.until + timedelta(days=1),
                                                               time(), zone))
    if wanted.search:
        query = query.where(Case.name.contains(wanted.search, autoescape=True))
    found = session.scalars(query.order_by(Case.id)).all()
    ids = [case.id for case in found]
    flagged = set(session.scalars(select(Mail.case_id).where(
        Mail.case_id.in_(ids), Mail.flagged.is_(True)))) if ids else set()
    flagged_by_reading, alerts = reading.flagged_and_alert_cases(session, ids)
    flagged |= flagged_by_reading
    rows = [QueueRow(case.id, case.name, case.department, case.status,
                     case_store.missing_keys(case, item_keys), case.created_at, case.updated_at,
                     case.id in flagged, case.id in alerts, case.approved_at is not None,
                     case_state(case.status, case.hold_reason))
            for case in found]
    rows.sort(key=lambda row: (row.priority, row.updated_at, row.id))
    counts = dict(session.execute(scoped(select(Case.status, func.count()), scope)
                                  .where(Case.digest_id.is_(None)).group_by(Case.status)).all())
    counts["forwarded"] = session.scalar(scoped(select(func.count()).select_from(Case), scope)
                                         .where(Case.digest_id.is_not(None)))
    departments = [scope] if scope else sorted(session.scalars(select(Case.department).distinct()))
    return rows, counts, departments
