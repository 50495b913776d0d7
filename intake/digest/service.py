"""The digest run: complete cases not yet forwarded become one digest, exactly once.

In one transaction: the digest row, the cases' forwarded marks, the held-back cases (核酸 too old)
with their renewal requests, and the outbox rows of every part. A crash before the commit leaves
no digest; after it, the outbox sends it. A second run finds the cases already forwarded.
"""
from __future__ import annotations

import email
import email.policy
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from checks.content_rules import department_flags, flags_for, sampled_at, too_old
from checks.facts import NUCLEIC_ACID
from checks.rules import Rules
from intake.record import cases as case_store
from intake.db.engine import read_session
from intake.pictures.readings import case_facts, load_case_facts, short_time
from intake.errors import IntakeError
from intake.failpoints import NONE, Failpoints
from intake.models import Case, Digest, Item, Mail, Outbox
from intake.process.pipeline import queue
from intake.store.files import FileStore, material_name
from notifier.compose import FileAttachment, build_message, new_message_id
from notifier.digest import DigestAddressing, DigestCase, build_digest
from notifier.pictures import office_jpeg
from notifier.render import TemplateRenderer, local_time
from notifier.replies import ReplyFacts, ReplyWriter
from notifier.wording import count_word

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class DigestOptions:
    addressing: DigestAddressing
    max_message_bytes: int
    send_empty: bool
    nucleic_acid_hours: int
    zone: tzinfo
    submission_rules: Rules  # the items, and the department's name and aliases: is a case ours
    require_approval: bool = True
    send_time: str = "17:00"  # digest.time: the next digest is a student's deadline to renew
    opinion: str = ""  # [department] opinion: 院系意见 in the register for an approved case
    desk_url: str | None = None  # [web] public_url, linked from the approval reminder

    @property
    def item_keys(self) -> tuple[str, ...]:
        return self.submission_rules.item_keys


@dataclass
class DigestResult:
    digest_id: int | None
    forwarded: int = 0
    held_back: int = 0
    parts: int = 0
    waiting: int = 0  # complete cases that wait for approval
    skipped: str | None = None  # why nothing was done
    preview: list[Path] | None = None


@dataclass
class DigestPreview:
    """The cases the next digest would take, as rows for a page (no files, no mail)."""
    scope: str | None = None
    forward: list[dict] = field(default_factory=list)    # the first rows, for the page
    held_back: list[dict] = field(default_factory=list)
    forward_count: int = 0
    held_back_count: int = 0


class DigestService:
    def __init__(self, sessions: sessionmaker, store: FileStore, renderer: TemplateRenderer,
                 replies: ReplyWriter, options: DigestOptions, clock: Callable[[], datetime],
                 failpoint: Failpoints = NONE):
        self._sessions = sessions
        self._store = store
        self._renderer = renderer
        self._replies = replies
        self._options = options
        self._clock = clock
        self._failpoint = failpoint

    def today(self) -> str:
        return self._clock().astimezone(self._options.zone).date().isoformat()

    def run(self, date: str | None = None, scheduled: bool = False,
            dry_run_to: Path | None = None) -> DigestResult:
        now = self._clock()
        date = date or self.today()
        run_key = f"scheduled:{date}" if scheduled else f"manual:{date}:{secrets.token_hex(6)}"
        session = self._sessions()
        try:
            result = self._prepare(session, now, date, run_key)
            if result.skipped or dry_run_to is not None:
                if dry_run_to is not None and not result.skipped and result.digest_id is not None:
                    result.preview = _write_preview(session, result.digest_id, dry_run_to)
                session.rollback()
            else:
                self._failpoint("digest.before-commit")
                session.commit()
                self._failpoint("digest.after-commit")
                log.info("digest=%s date=%s cases=%d held_back=%d parts=%d", result.digest_id,
                         date, result.forwarded, result.held_back, result.parts)
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _prepare(self, session: Session, now: datetime, date: str, run_key: str) -> DigestResult:
        options = self._options
        if session.scalar(select(Digest.id).where(Digest.run_key == run_key)) is not None:
            return DigestResult(None, skipped=f"汇总 {run_key} 已经生成过")
        digest = Digest(run_key=run_key, date=date, created_at=now,
                        recipients=[*options.addressing.to, *options.addressing.cc])
        try:
            with session.begin_nested():
                session.add(digest)
        except IntegrityError:
            return DigestResult(None, skipped=f"汇总 {run_key} 正由另一个进程生成")

        query = select(Case).where(Case.status == case_store.COMPLETE, Case.digest_id.is_(None))
        waiting = 0
        if options.require_approval:
            waiting = len(_waiting_for_approval(session))
            query = query.where(Case.approved_at.is_not(None))
        ready = session.scalars(query.order_by(Case.completed_at, Case.id)
                                .with_for_update(skip_locked=True)).all()
        forward: list[Case] = []
        held: list[Case] = []
        for case in ready:
            nat = _item(case, NUCLEIC_ACID)
            too_old_now = self._held_back(nat.received_at if nat else None,
                                          case_facts(session, case), now)
            (held if too_old_now else forward).append(case)
        held_rows = [self._digest_case(session, case) for case in held]
        for case in held:
            self._hold_back(session, case, now)
        earlier = None if forward else session.scalar(select(Digest.id).where(
            Digest.date == date, Digest.parts > 0, Digest.id != digest.id).order_by(Digest.id))
        if not forward and (not options.send_empty or earlier is not None):
            result = DigestResult(digest.id, held_back=len(held), waiting=waiting)
            if not held:
                # An empty note after the day's digest would only confuse the office.
                result.skipped = (f"今天的汇总 {earlier} 发出后，没有新的材料齐全的登记"
                                  if earlier is not None else
                                  "没有新的材料齐全的登记（digest.send_empty = false）")
            digest.held_back = len(held)
            return result

        rows = [self._digest_case(session, case) for case in forward]
        mails = build_digest(rows, date_label=date, digest_id=digest.id, held_back=held_rows,
                             renderer=self._renderer, addressing=options.addressing,
                             max_bytes=options.max_message_bytes, now=now, zone=options.zone,
                             extra={"hours": options.nucleic_acid_hours, "waiting": waiting,
                                    "item_count": count_word(len(options.item_keys))})
        for case in forward:
            case.digest_id = digest.id
            case_store.record_event(session, at=now, kind="forwarded", case=case, digest=digest.id)
        for number, outgoing in enumerate(mails, start=1):
            queue(session, key=f"digest:{digest.id}:part:{number}", kind="digest", outgoing=outgoing,
                  now=now)
        digest.case_count, digest.held_back, digest.parts = len(forward), len(held), len(mails)
        return DigestResult(digest.id, forwarded=len(forward), held_back=len(held), parts=len(mails),
                            waiting=waiting)

    def _held_back(self, nucleic_acid_received: datetime | None, facts: dict,
                   now: datetime, arrived_too_long_ago: bool | None = None) -> bool:
        """Whether the case's 核酸 is too old to forward: the rule counts from the sampling when
        it was read, else from the picture's arrival (or `arrived_too_long_ago`, when the
        database compared the arrival already)."""
        hours = self._options.nucleic_acid_hours
        sampled = sampled_at(facts)
        if sampled is not None:
            return too_old(sampled, now, hours)
        if arrived_too_long_ago is not None:
            return arrived_too_long_ago
        return nucleic_acid_received is not None and \
            nucleic_acid_received < now - timedelta(hours=hours)

    def preview(self, scope: str | None = None, listed: int = 200) -> DigestPreview:
        """Who the next digest would forward and hold back now, for the desk: read only (no
        write lock, nothing built), light rows, limited to one department when `scope` is
        given; the first `listed` of each kind are listed, all are counted."""
        now = self._clock()
        limit = now - timedelta(hours=self._options.nucleic_acid_hours)
        where = [Case.status == case_store.COMPLETE, Case.digest_id.is_(None)]
        if self._options.require_approval:
            where.append(Case.approved_at.is_not(None))
        if scope:
            where.append(Case.department == scope)
        preview = DigestPreview(scope=scope)
        with read_session(self._sessions) as session:
            # The database compares the 核酸 arrival with the limit: no times to parse per case.
            ready = session.execute(
                select(Case.id, Case.name, Case.department, Item.received_at < limit)
                .outerjoin(Item, and_(Item.case_id == Case.id, Item.kind == NUCLEIC_ACID))
                .where(*where).order_by(Case.completed_at, Case.id)).all()
            facts = load_case_facts(session, select(Case.id).where(*where))
            for case_id, name, department, arrived_long_ago in ready:
                found = facts.get(case_id, {})
                held = self._held_back(None, found, now, bool(arrived_long_ago))
                if held:
                    preview.held_back_count += 1
                else:
                    preview.forward_count += 1
                rows = preview.held_back if held else preview.forward
                if len(rows) < listed:
                    rows.append({"case_id": case_id, "name": name, "department": department,
                                 "sampled_at": sampled_at(found),
                                 "flags": "；".join(flags_for(found, name)
                                                   + department_flags(
                                                       department, self._options.submission_rules))})
            listed_rows = preview.forward + preview.held_back
            completed = dict(session.execute(
                select(Case.id, func.coalesce(Case.completed_at, Case.updated_at))
                .where(Case.id.in_([row["case_id"] for row in listed_rows]))).all()) \
                if listed_rows else {}
        for row in listed_rows:
            row["completed_at"] = completed.get(row["case_id"])
        return preview

    def _digest_case(self, session: Session, case: Case) -> DigestCase:
        files = []
        for key in self._options.item_keys:
            item = _item(case, key)
            if item is None or not item.usable or item.path is None:
                raise IntakeError(f"登记 {case.id} 材料齐全，但{key}没有可用的文件")
            files.append(office_file(key, item.file_type, self._store.read(item.path)))
        mail_ids = tuple(session.scalars(
            select(Mail.id).where(Mail.case_id == case.id).order_by(Mail.id)).all())
        nat = _item(case, NUCLEIC_ACID)
        facts = case_facts(session, case)
        return DigestCase(case.id, case.name, case.department, case.sender, case.created_at,
                          case.completed_at or case.updated_at, nat.received_at if nat else None,
                          mail_ids, tuple(files), sampled_at=sampled_at(facts), facts=facts,
                          flags=tuple(flags_for(facts, case.name, self._options.nucleic_acid_hours)
                                      + department_flags(case.department,
                                                         self._options.submission_rules)),
                          approved_by=case.approved_by,
                          approved_at=case.approved_at,
                          opinion=self._options.opinion if case.approved_at else "")

    def remind(self, date: str | None = None) -> int:
        """Staff's one mail a day listing the complete cases that wait for approval; how many
        it listed (0: nothing waits, or today's reminder was already queued)."""
        options = self._options
        now = self._clock()
        date = date or self.today()
        key = f"approval-reminder:{date}"
        if not options.require_approval or not options.addressing.cc:
            return 0
        with self._sessions.begin() as session:
            if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
                return 0
            waiting = _waiting_for_approval(session)
            if not waiting:
                return 0
            rows = [{"case_id": case.id, "name": case.name, "department": case.department,
                     "completed_at": local_time(case.completed_at, options.zone) or "",
                     "flags": "；".join(flags_for(case_facts(session, case), case.name,
                                                       options.nucleic_acid_hours)
                                             + department_flags(case.department,
                                                                options.submission_rules))}
                    for case in waiting]
            addressing = options.addressing
            rendered = self._renderer.render("approval_reminder", {
                "count": len(rows), "cases": rows, "desk_url": desk_link(options.desk_url),
                "digest_time": options.send_time, "department_name": addressing.department_name,
                "date": date})
            outgoing = build_message(sender=addressing.sender, sender_name=addressing.sender_name,
                                     to=addressing.cc, rendered=rendered,
                                     message_id=new_message_id(addressing.sender), date=now)
            try:
                with session.begin_nested():
                    queue(session, key=key, kind="approval_reminder", outgoing=outgoing, now=now)
            except IntegrityError:
                return 0  # another worker queued it first
            log.info("approval reminder for %s: %d case(s) waiting", date, len(rows))
            return len(rows)

    def _hold_back(self, session: Session, case: Case, now: datetime) -> None:
        """核酸 too old to forward: the item no longer counts, and the student is asked once."""
        nat = _item(case, NUCLEIC_ACID)
        if nat is None:  # held for its time without one: nothing to take back
            return
        received = nat.received_at
        nat.usable, nat.problem = False, "expired"
        case_store.record_event(session, at=now, kind="held_back", case=case,
                                reason="nucleic acid result too old",
                                received_at=received.isoformat())
        case_store.update_status(session, case, self._options.item_keys, now, None)
        key = f"renew-nucleic-acid:case:{case.id}:{nat.sha256}"
        if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
            return
        sampled = sampled_at(case_facts(session, case))
        facts = ReplyFacts("reply_renew_nucleic_acid", name=case.name, department=case.department,
                           case_id=case.id, missing=(NUCLEIC_ACID,),
                           received_all=sorted(case_store.usable_keys(case),
                                               key=self._options.item_keys.index),
                           extra={
                               "hours": self._options.nucleic_acid_hours,
                               "nucleic_acid_at": local_time(received, self._options.zone),
                               "sampled_at": short_time(sampled, self._options.zone),
                               "deadline": self._next_digest(now)})
        last_mail = session.get(Mail, nat.mail_id)
        outgoing = self._replies.write(facts, case.sender, now, None, [])
        queue(session, key=key, kind="reply_renew_nucleic_acid", outgoing=outgoing, now=now,
              case=case, mail=last_mail, recipient=case.sender)

    def _next_digest(self, now: datetime) -> str:
        """The next scheduled digest after `now`, as the student reads it: 11月24日 17:00."""
        zone = self._options.zone
        local = now.astimezone(zone)
        hour, minute = (int(part) for part in self._options.send_time.split(":"))
        moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if moment <= local:
            moment = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0,
                                                          microsecond=0)
        return f"{moment.month}月{moment.day}日 {moment:%H:%M}"

    def resend(self, digest_id: int) -> int:
        """Queue an earlier digest's mails again, byte for byte."""
        now = self._clock()
        with self._sessions.begin() as session:
            originals = session.scalars(select(Outbox).where(
                Outbox.kind == "digest", Outbox.dedupe_key.like(f"digest:{digest_id}:part:%"))
                .order_by(Outbox.id)).all()
            if not originals:
                raise IntakeError(f"没有汇总 {digest_id}；`intake digests` 列出全部汇总")
            stamp = now.strftime("%Y%m%dT%H%M%S%f")
            for row in originals:
                session.add(Outbox(
                    dedupe_key=f"resend:{row.dedupe_key}:{stamp}", kind="digest-resend",
                    sender=row.sender, recipients=row.recipients, recipient=row.recipient,
                    message_id=row.message_id, raw=row.raw, status="pending", attempts=0,
                    created_at=now, next_attempt_at=now))
            return len(originals)


OFFICE_PICTURE_SIDE = 2000  # pixels: a phone photo of a form stays legible
OFFICE_PICTURE_BYTES = 300_000  # five of them: about 1.5 MB per student


def office_file(key: str, file_type: str | None, data: bytes) -> FileAttachment:
    """An item as the office receives it: pictures as upright JPEG without metadata (HEIC and
    WebP open on no office PC), legible but small, under the canonical name; a PDF as it came."""
    if file_type in {"jpeg", "png", "heif", "webp", "gif", "bmp", "tiff"}:
        return FileAttachment(f"{key}.jpg", office_jpeg(data, max_side=OFFICE_PICTURE_SIDE, quality=85,
                                                         max_bytes=OFFICE_PICTURE_BYTES))
    return FileAttachment(material_name(key, file_type), data)


def desk_link(url: str | None) -> str | None:
    """The desk's address with one trailing slash, so that `cases/ID` can follow it."""
    return url.rstrip("/") + "/" if url else None


def _waiting_for_approval(session: Session) -> list[Case]:
    return list(session.scalars(select(Case).where(
        Case.status == case_store.COMPLETE, Case.digest_id.is_(None), Case.approved_at.is_(None))
        .order_by(Case.completed_at, Case.id)))


def _item(case: Case, key: str) -> Item | None:
    return next((item for item in case.items if item.kind == key), None)


def _write_preview(session: Session, digest_id: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    rows = session.scalars(select(Outbox).where(Outbox.dedupe_key.like(f"digest:{digest_id}:part:%"))
                           .order_by(Outbox.id)).all()
    for number, row in enumerate(rows, start=1):
        eml = folder / f"digest-part{number}.eml"
        eml.write_bytes(row.raw)
        eml.chmod(0o600)
        message = email.message_from_bytes(row.raw, policy=email.policy.default)
        html = message.get_body(preferencelist=("html",))
        preview = folder / f"digest-part{number}.html"
        preview.write_text(html.get_content() if html else "", encoding="utf-8")
        preview.chmod(0o600)
        written += [eml, preview]
    return written
