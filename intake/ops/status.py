"""`intake status`: is the daemon healthy, and what needs a person's attention?"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from intake.daemon import digest_trigger
from intake.db.engine import read_session
from intake.models import Case, Digest, Event, FolderState, Mail, MailOutcome, Outbox, PictureJob
from intake.settings import Settings
from intake.staff.questions import oldest_open
from intake.staff.view import age as ago
from intake.staff.view import iso


@dataclass
class Status:
    folders: list[dict] = field(default_factory=list)
    handled_today: dict[str, int] = field(default_factory=dict)
    # Mails fetched today and not answered as bounces or robots' mail, by reason: a wave of
    # wrongly dropped mail shows here.
    dropped_today: dict[str, int] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)
    outbox_pending: int = 0
    oldest_pending: str | None = None
    outbox_failed_recently: int = 0
    quarantined: int = 0
    questions_open: int = 0  # students' questions nobody has answered yet
    pictures_waiting: int = 0  # queued or being read (picture_job), none when reading is off
    last_digest: dict | None = None
    next_runs: dict[str, str] = field(default_factory=dict)
    attention: list[str] = field(default_factory=list)


def _questions(session, status: Status, hours: int, now: datetime, shown) -> None:
    """Students' questions nobody answered: attention once the oldest waited `hours`."""
    status.questions_open, oldest = oldest_open(session)
    if oldest and now - oldest > timedelta(hours=hours):
        status.attention.append(f"学生提问：{status.questions_open} 个待回复，最早的自 "
                                f"{shown(oldest)} 起没有答复（`intake questions`）")


def gather(sessions: sessionmaker, settings: Settings, now: datetime, stale_polls: int = 3,
           scope: str | None = None) -> Status:
    """`scope`: one department's cases only (a department reviewer on the desk)."""
    zone = settings.zone
    def local(moment):  # machine time with the offset; the CLI shows it to people
        return iso(moment, zone)

    def shown(moment):
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "-"
    status = Status()
    interval = timedelta(seconds=settings.schedule.poll_seconds)
    start_of_day = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    with read_session(sessions) as session:
        states = {s.folder: s for s in session.scalars(select(FolderState))}
        for folder in settings.mailbox.folders:
            state = states.get(folder)
            last = state.last_poll_at if state else None
            age = (now - last) if last else None
            status.folders.append({"folder": folder, "last_poll": local(last),
                                   "age_seconds": int(age.total_seconds()) if age else None})
            if age is None or age > interval * stale_polls:
                status.attention.append(
                    f"文件夹「{folder}」："
                    + (f"超过 {stale_polls} 个收信间隔（每个 {settings.schedule.poll_seconds} 秒）"
                       f"没有成功收信，上次是{ago(last, now)}" if last else "还没有成功收过信"))
        status.handled_today = dict(session.execute(
            select(Mail.outcome, func.count()).where(Mail.fetched_at >= start_of_day)
            .group_by(Mail.outcome)).all())
        status.dropped_today = dict(Counter(
            detail.get("reason", "-") for detail in session.scalars(
                select(Event.detail).join(Mail, Event.mail_id == Mail.id).where(
                    Event.kind == "ignored", Mail.fetched_at >= start_of_day,
                    Mail.outcome.in_([MailOutcome.IGNORED_AUTO, MailOutcome.IGNORED_OTHER])))))
        status.cases = dict(session.execute(
            select(Case.status, func.count()).where(
                Case.digest_id.is_(None), *([Case.department == scope] if scope else []))
            .group_by(Case.status)).all())
        status.outbox_pending = session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.status == "pending")) or 0
        oldest = session.scalar(select(func.min(Outbox.created_at)).where(Outbox.status == "pending"))
        status.oldest_pending = local(oldest)
        if oldest and now - oldest > timedelta(hours=1):
            status.attention.append(f"待发邮件：最早的一封自 {shown(oldest)} 起一直没有发出")
        status.outbox_failed_recently = session.scalar(
            select(func.count()).select_from(Outbox).where(
                Outbox.status == "failed", Outbox.created_at >= now - timedelta(days=7))) or 0
        if status.outbox_failed_recently:
            status.attention.append(f"待发邮件：近 7 天有 {status.outbox_failed_recently} 封"
                                    f"发送失败、不再重试（见日志）")
        status.quarantined = session.scalar(select(func.count()).select_from(Mail).where(
            Mail.outcome == MailOutcome.QUARANTINED)) or 0
        if status.quarantined:
            status.attention.append(f"隔离邮件：{status.quarantined} 封，"
                                    f"用 `intake quarantine` 查看")
        _questions(session, status, settings.replies.question_hours, now, shown)
        status.pictures_waiting, oldest_picture = session.execute(
            select(func.count(), func.min(PictureJob.created_at)).where(PictureJob.status != "done")
        ).one()
        if oldest_picture and now - oldest_picture > timedelta(minutes=15):
            status.attention.append(f"读图：{status.pictures_waiting} 张图片排队，最早的自 "
                                    f"{shown(oldest_picture)} 起还没读完（`intake run` 是否在运行？）")
        digest = session.scalar(select(Digest).order_by(Digest.id.desc()).limit(1))
        if digest is not None:
            status.last_digest = {"id": digest.id, "date": digest.date,
                                  "made_at": local(digest.created_at),
                                  "cases": digest.case_count if not scope else session.scalar(
                                      select(func.count()).select_from(Case).where(
                                          Case.digest_id == digest.id, Case.department == scope)),
                                  "held_back": digest.held_back, "parts": digest.parts}
    last_polls = [s.last_poll_at for s in states.values() if s.last_poll_at]
    next_poll = max(last_polls) + interval if last_polls else now
    status.next_runs = {
        "poll": local(max(next_poll, now)),
        "digest": local(digest_trigger(settings.digest.time, zone).get_next_fire_time(None, now)),
        "purge": local(digest_trigger(settings.retention.time, zone).get_next_fire_time(None, now)),
    }
    return status
