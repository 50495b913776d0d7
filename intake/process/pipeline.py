"""One mail's way from raw bytes to a recorded outcome, a case change and a queued reply.

The caller owns the transaction: everything here is one unit of work that commits or rolls back
together, so a reply is queued if and only if the state change it describes is recorded.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checks.addresses import normal_address
from checks.classify import MailKind
from checks.content_rules import POSITIVE
from checks.facts import NUCLEIC_ACID
from checks.findings import Problem
from checks.names import name_on_forms, with_name_from_forms
from checks.questions import own_words, says_something
from checks.rules import Rules
from checks.submission import Assessment, missing_items
from intake.record import cases
from intake.models import Case, Mail, MailOutcome, Outbox, Question
from intake.process.prepare import Prepared, prepare_mail
from intake.process.reader import ReadMail
from intake.process.asking import (is_question, next_digest_label, nucleic_acid_timing,
                                   parent_writing, state_of)
from intake.process.known import Known, case_identity, reply_key
from intake.process.stale import SUPERSEDED, same_as_before, supersedes
from intake.pictures.readings import REPLY_KINDS as BLOCKED_REPLIES, PictureFacts, short_time
from intake.pictures.readings import pictures_to_read, refile_by_content
from intake.store.files import MaterialStore
from notifier.compose import OutgoingMail
from notifier.replies import ReplyFacts, ReplyWriter

log = logging.getLogger(__name__)


# Kinds recorded as automatic mail (ignored-auto) and never answered.
IGNORED = {MailKind.OWN, MailKind.BOUNCE, MailKind.AUTO_REPLY}
# What `intake quarantine` says of a mail with no address to answer (kept, never dropped).
NO_SENDER_ERROR = ("NoSender: no address to answer could be read in From or Sender, and nothing "
                   "says a machine sent it; read the stored mail and contact the sender")


@dataclass(frozen=True)
class Pipeline:
    rules: Rules
    store: MaterialStore  # the FileStore, or the batch of the mails processed together
    replies: ReplyWriter
    own_addresses: frozenset[str]
    replies_per_sender_per_day: int = 8
    pictures: PictureFacts | None = None  # None: [pictures] read = false, names decide alone
    alert_recipients: tuple[str, ...] = ()
    digest_time: str = "17:00"  # digest.time, in `zone`: when a complete case goes to the office
    zone: tzinfo = timezone.utc
    # The events of the mails processed together, inserted at once; None: each added as recorded.
    events: cases.EventBuffer | None = None

    def record_event(self, session: Session, **event) -> None:
        """cases.record_event, into this pipeline's `events` when it has them."""
        cases.record_event(session, events=self.events, **event)

    def next_digest(self, now: datetime) -> str:
        return next_digest_label(now, self.digest_time, self.zone)

    def prepare(self, raw: bytes) -> Prepared:
        """Everything about one mail that needs neither the database nor the OCR engine
        (`prepare_mail`; a pool of check processes runs the same)."""
        return prepare_mail(raw, self.rules, self.own_addresses)

    def pictures_of(self, prepared: Prepared) -> dict[str, bytes]:
        """The pictures to read before the mail is processed, by content hash (none: reading off)."""
        if self.pictures is None or prepared.assessment is None:
            return {}
        return pictures_to_read(prepared.assessment)

    def with_facts(self, prepared: Prepared, facts_by_sha: dict[str, dict | None]) -> Prepared:
        """The mail once its pictures are read: each filed under the item it shows."""
        if self.pictures is None or prepared.assessment is None:
            return prepared
        assessment, read_facts = refile_by_content(prepared.assessment, facts_by_sha)
        assessment.submission_name = with_name_from_forms(
            assessment.submission_name, name_on_forms(read_facts), self.rules.department)
        return dataclasses.replace(prepared, assessment=assessment, read_facts=read_facts)

    def open_cases(self, session: Session, known: Known, mails: list[Prepared],
                   now: datetime) -> None:
        """Insert, with one statement, the cases these mails will open (their names point at no
        case): each is opened by the first of them that uses it. The caller's savepoint covers
        them; an IntegrityError means another worker opened one meanwhile."""
        wanted = {}
        for prepared in mails:
            identity = case_identity(prepared)
            if identity is not None and identity in known.cases and known.cases[identity] is None:
                wanted[identity] = cases.new_case(identity, now)
        if wanted:
            session.add_all(wanted.values())
            session.flush()
            known.unopened.update(wanted)
            known.cases.update(wanted)

    def handle(self, session: Session, mail: Mail, raw: bytes | None, now: datetime,
               prepared: Prepared | None = None, known: Known | None = None) -> str:
        """Process one stored mail; sets and returns its outcome. `known`: what was looked up for
        the mails processed with this one (None: looked up for this one alone)."""
        if prepared is None:
            if raw is None:
                raise ValueError("Pipeline.handle needs the mail's bytes or what prepare made of them")
            prepared = self.prepare(raw)
            pictures, reader = self.pictures_of(prepared), self.pictures
            if pictures and reader is not None:  # read here and now: a caller with no reading pool
                prepared = self.with_facts(prepared, {sha: reader.read(data)
                                                      for sha, data in pictures.items()})
        if known is None:
            known = Known.look_up(session, [(mail.id, prepared)], now)
        read, kind = prepared.read, prepared.kind
        outcome = HANDLERS[kind](self, session, mail, prepared, now, known)
        if kind in _WRITES_ITS_OWN_ROW:
            return outcome
        # Set with the outcome, not first: a case opened on the way is flushed on its own, and
        # the mail's row is then updated once.
        mail.sender = read.sender or None
        mail.outcome = outcome
        mail.processed_at = now
        mail.error = None
        return outcome

    def _submission(self, session: Session, mail: Mail, read: ReadMail, assessment: Assessment,
                    read_facts: dict[str, dict | None], now: datetime, known: Known) -> str:
        case, opened = None, False
        if assessment.submission_name is not None:
            who = assessment.submission_name
            identity = cases.identity(read.sender, who)
            if identity in known.unopened:
                case, opened = known.unopened.pop(identity), True
                self.record_event(session, at=now, kind="opened", case=case, mail=mail)
            elif identity not in known.cases:
                case, opened = cases.find_or_open_case(session, read.sender, who, now, mail,
                                                       self.events)
            elif known.cases[identity] is None:
                case, opened = cases.open_case(session, read.sender, who, now, mail, self.events)
            else:
                case = known.cases[identity]
            known.cases[identity] = case
            if who.written and opened:  # staff see both: 汉字 from the forms, pinyin as written
                self.record_event(session, at=now, kind="name_from_forms", case=case, mail=mail,
                                  written=who.written)
        else:
            case = (cases.case_answered_by(session, read.sender, read.references)
                    or cases.sole_case_of(session, read.sender))
        judgement, changed = None, []
        if case is not None:
            mail.case_id = case.id
            changed = cases.merge_items(session, case, assessment, mail, self.store, now,
                                        self.events)
            cases.update_status(session, case, self.rules.item_keys, now, mail, self.events)
            if self.pictures is not None:
                # The mail's date for a year a picture left out is its processing time, as for
                # the 48 hours (an item's received_at).
                self.pictures.store(session, case, read_facts, changed, now, now)
                judgement = self.pictures.apply(session, case, now, self.rules.item_keys, mail,
                                                self.events)
        brought = [key for key, found in assessment.items.items() if found.usable]
        if is_question(read, case, opened, brought, assessment, changed):
            self._question_asked(session, mail, read, case, now, known, assessment.problems)
            return MailOutcome.QUESTION
        have = cases.usable_keys(case) if case else set(brought)
        # What the rules on the case then took away (a 核酸 sampled too long ago) is missing, and
        # so not also listed as received: one reply never says both of one item.
        received = [key for key in brought if key in have]
        missing = missing_items(have, self.rules)
        problems = list(assessment.problems)
        problems += [found.problem for found in assessment.items.values()
                     if found.problem is not None and found.problem not in problems]
        kind = "reply_complete" if case is not None and not missing else "reply_incomplete"
        extra: dict[str, object] = {}
        # A judgement is made only on a case, with reading on.
        if judgement is not None and case is not None and self.pictures is not None:
            sampled = short_time(judgement.sampled_at, self.pictures.zone)
            extra["sampled_at"] = sampled
            if judgement.too_old and NUCLEIC_ACID in missing:
                problems.append(Problem("nucleic_acid_too_old", str(self.pictures.nucleic_acid_hours),
                                        sampled or "时间不明"))
            if judgement.blocked:
                kind = BLOCKED_REPLIES[judgement.blocked]
                extra["places"] = judgement.places
                extra["doubts"] = judgement.doubts
                if judgement.blocked == POSITIVE:
                    self._alert(session, case, mail, sampled, now)
        if case is not None and NUCLEIC_ACID not in missing:
            problems += nucleic_acid_timing(case, judgement, self.replies.nucleic_acid_hours, now,
                                            self.digest_time, self.zone, extra)
        if case is not None and not opened and same_as_before(assessment, changed):
            if any(row.case_id == case.id for row in known.unsent.get(read.sender.lower(), ())):
                # The same files twice in one poll: the reply already waiting says it all.
                self.record_event(session, at=now, kind="reply_skipped", case=case, mail=mail,
                                  reason="same as the mail before")
                return MailOutcome.FOLLOW_UP
            kind = "reply_unchanged" if kind in {"reply_complete", "reply_incomplete"} else kind
        facts = ReplyFacts(
            kind=kind,
            name=case.name if case else None,
            department=case.department if case else None,
            case_id=case.id if case else None,
            received=received,
            received_all=[key for key in self.rules.item_keys if key in have],
            missing=missing, problems=problems, unmatched=assessment.unmatched,
            extra={"forwarded": case is not None and case.digest_id is not None,
                   "next_digest": self.next_digest(now), **extra},
        )
        self._queue_reply(session, mail, read, facts, case, now, known)
        if case is None:
            return MailOutcome.SUBMISSION
        return MailOutcome.SUBMISSION if opened else MailOutcome.FOLLOW_UP

    def _question_asked(self, session: Session, mail: Mail, read: ReadMail, case: Case | None,
                        now: datetime, known: Known, problems=()) -> None:
        """Record the question where staff see it and tell the student a person will answer."""
        if case is not None:
            mail.case_id = case.id
        session.add(Question(case_id=case.id if case else None, mail_id=mail.id,
                             sender=read.sender, asked_at=now, subject=read.subject[:500],
                             text=own_words(read.body_text)[:4000], status="open"))
        self.record_event(session, at=now, kind="question", case=case, mail=mail)
        have = cases.usable_keys(case) if case else set()
        facts = ReplyFacts(
            kind="reply_question", name=case.name if case else None,
            department=case.department if case else None, case_id=case.id if case else None,
            received_all=[key for key in self.rules.item_keys if key in have],
            missing=missing_items(have, self.rules) if case else [],
            problems=list(problems),
            extra={"state": state_of(case), "next_digest": self.next_digest(now)})
        self._queue_reply(session, mail, read, facts, case, now, known)

    def _alert(self, session: Session, case: Case, mail: Mail, sampled: str | None,
               now: datetime) -> None:
        """Staff hear of a 阳性 result at once, not at digest time; once per picture."""
        if not self.alert_recipients:
            log.warning("case=%s: a positive result was read but [alerts] to and digest.cc are "
                        "empty; nobody was alerted", case.id)
            return
        nucleic = next(item for item in case.items if item.kind == NUCLEIC_ACID)
        key = f"alert:positive:case:{case.id}:{nucleic.sha256}"
        if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
            return
        facts = ReplyFacts("alert_positive", name=case.name, department=case.department,
                           case_id=case.id, extra={"sampled_at": sampled, "sender": case.sender})
        outgoing = self.replies.write_alert(facts, self.alert_recipients, now)
        queue(session, key=key, kind="alert_positive", outgoing=outgoing, now=now, case=case,
              mail=mail)
        self.record_event(session, at=now, kind="alert_queued", case=case, mail=mail,
                          alert="positive")

    def _queue_reply(self, session: Session, mail: Mail, read: ReadMail, facts: ReplyFacts,
                     case: Case | None, now: datetime, known: Known) -> None:
        key = reply_key(mail.id)
        if key in known.queued:
            return
        if known.replies_today[read.sender] >= self.replies_per_sender_per_day:
            # A runaway robot or a loop we did not recognise: stop answering for a day.
            self.record_event(session, at=now, kind="reply_suppressed", case=case, mail=mail,
                              reason="per-sender cap", cap=self.replies_per_sender_per_day)
            return
        if parent_writing(read):  # greeted as 家长, asked to copy the student next time
            facts = dataclasses.replace(facts, extra={**facts.extra, "parent": True})
        outgoing = self.replies.write(facts, read.sender, now, read.message_id, read.references)
        row = queue(session, key=key, kind=facts.kind, outgoing=outgoing, now=now, case=case,
                    mail=mail, recipient=read.sender)
        waiting = known.unsent.setdefault(row.recipient, [])
        for stale in [earlier for earlier in waiting if supersedes(earlier, case)]:
            # Made stale by this mail, in the transaction that queues its reply.
            stale.status = SUPERSEDED
            waiting.remove(stale)
            self.record_event(session, at=now, kind="reply_superseded", case=case, mail=mail,
                              outbox=stale.dedupe_key, reply=stale.kind)
        waiting.append(row)
        known.queued.add(key)
        known.replies_today[read.sender] += 1
        self.record_event(session, at=now, kind="reply_queued", case=case, mail=mail,
                          reply=facts.kind, missing=list(facts.missing))


def queue(session: Session, *, key: str, kind: str, outgoing: OutgoingMail, now: datetime,
          case: Case | None = None, mail: Mail | None = None, recipient: str | None = None) -> Outbox:
    row = Outbox(dedupe_key=key, kind=kind, case_id=case.id if case else None,
                 mail_id=mail.id if mail else None, sender=outgoing.sender,
                 recipients=list(outgoing.recipients),
                 recipient=normal_address(recipient or outgoing.recipients[0]),
                 message_id=outgoing.message_id, raw=outgoing.raw, status="pending",
                 attempts=0, created_at=now, next_attempt_at=now)
    session.add(row)
    return row


# What each kind of mail does: one handler per MailKind, each returning the mail's outcome. The
# table must name every kind (checked below and by tests/test_layout.py): a new kind cannot fall
# through to being treated as a submission.

def _no_sender(pipeline: Pipeline, session: Session, mail: Mail, prepared: Prepared,
               now: datetime, known: Known) -> str:
    # Kept for staff, who can read it; never taken for a bounce and dropped.
    log.warning("mail=%s: no sender address could be read; quarantined for staff", mail.id)
    pipeline.record_event(session, at=now, kind="quarantined", mail=mail, reason=prepared.kind.value)
    mail.sender, mail.outcome, mail.processed_at = None, MailOutcome.QUARANTINED, now
    mail.error = NO_SENDER_ERROR
    return mail.outcome


def _ignored_automatic(pipeline: Pipeline, session: Session, mail: Mail, prepared: Prepared,
                       now: datetime, known: Known) -> str:
    pipeline.record_event(session, at=now, kind="ignored", mail=mail, reason=prepared.kind.value)
    return MailOutcome.IGNORED_AUTO


def _ignored_report(pipeline: Pipeline, session: Session, mail: Mail, prepared: Prepared,
                    now: datetime, known: Known) -> str:
    # A machine's report (DMARC rua and the like) is other mail, never a submission.
    pipeline.record_event(session, at=now, kind="ignored", mail=mail, reason=prepared.kind.value)
    return MailOutcome.IGNORED_OTHER


def _ignored_other(pipeline: Pipeline, session: Session, mail: Mail, prepared: Prepared,
                   now: datetime, known: Known) -> str:
    # Words of the student's own in answer to one of our mails reach a person; other mail that
    # neither carries materials nor names the process is not ours to answer.
    read = prepared.read
    case = cases.case_answered_by(session, read.sender, read.references)
    if case is not None and says_something(read.body_text):
        pipeline._question_asked(session, mail, read, case, now, known)
        return MailOutcome.QUESTION
    return MailOutcome.IGNORED_OTHER


def _question(pipeline: Pipeline, session: Session, mail: Mail, prepared: Prepared,
              now: datetime, known: Known) -> str:
    read = prepared.read
    case = (cases.case_answered_by(session, read.sender, read.references)
            or cases.sole_case_of(session, read.sender))
    pipeline._question_asked(session, mail, read, case, now, known)
    return MailOutcome.QUESTION


def _cloud_link(pipeline: Pipeline, session: Session, mail: Mail, prepared: Prepared,
                now: datetime, known: Known) -> str:
    pipeline._queue_reply(session, mail, prepared.read, ReplyFacts("reply_cloud_link"), None, now,
                          known)
    return MailOutcome.CLOUD_LINK


def _submission(pipeline: Pipeline, session: Session, mail: Mail, prepared: Prepared,
                now: datetime, known: Known) -> str:
    if prepared.assessment is None:
        raise ValueError("a mail taken for a submission was not assessed (prepare_mail)")
    return pipeline._submission(session, mail, prepared.read, prepared.assessment,
                                prepared.read_facts, now, known)


MailHandler = Callable[[Pipeline, Session, Mail, Prepared, datetime, Known], str]

HANDLERS: dict[MailKind, MailHandler] = {
    **{kind: _ignored_automatic for kind in IGNORED},
    MailKind.REPORT: _ignored_report,
    MailKind.OTHER: _ignored_other,
    MailKind.QUESTION: _question,
    MailKind.CLOUD_LINK: _cloud_link,
    MailKind.SUBMISSION: _submission,
    MailKind.NO_SENDER: _no_sender,
}
# Kinds whose handler writes the mail's row itself (its outcome and error), not handle().
_WRITES_ITS_OWN_ROW = {MailKind.NO_SENDER}
if set(HANDLERS) != set(MailKind):
    raise ImportError(f"intake.process.pipeline: no handler for {set(MailKind) - set(HANDLERS)}")
