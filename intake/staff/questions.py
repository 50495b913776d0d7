"""Students' questions: the open ones for staff to see, and answering one (a threaded reply
through the outbox, the answer in the case's history, the question closed: one transaction)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from intake.errors import IntakeError
from intake.models import Case, Mail, Question
from intake.process.pipeline import queue
from intake.record import cases as case_store
from intake.staff.view import iso
from notifier.replies import ReplyFacts, ReplyWriter

OPEN, ANSWERED = "open", "answered"


@dataclass(frozen=True)
class QuestionRow:
    id: int
    case_id: int | None
    name: str | None
    department: str | None
    sender: str
    asked_at: datetime
    subject: str
    text: str
    status: str
    answer: str | None

    def as_json(self, zone: tzinfo) -> dict:
        return {"id": self.id, "case_id": self.case_id, "name": self.name,
                "department": self.department, "sender": self.sender,
                "asked_at": iso(self.asked_at, zone), "subject": self.subject, "text": self.text,
                "status": self.status, "answer": self.answer}


def list_questions(session: Session, *, include_answered: bool = False,
                   department: str | None = None) -> list[QuestionRow]:
    """Open questions, oldest first (answered ones too when asked for)."""
    query = (select(Question, Case).outerjoin(Case, Case.id == Question.case_id)
             .order_by(Question.asked_at, Question.id))
    if not include_answered:
        query = query.where(Question.status == OPEN)
    if department:  # a department's reviewer: its cases' questions and those of no case yet
        query = query.where(or_(Case.department == department, Question.case_id.is_(None)))
    return [QuestionRow(question.id, question.case_id, case.name if case else None,
                        case.department if case else None, question.sender, question.asked_at,
                        question.subject, question.text, question.status, question.answer)
            for question, case in session.execute(query)]


def oldest_open(session: Session) -> tuple[int, datetime | None]:
    return session.execute(select(func.count(), func.min(Question.asked_at))
                           .where(Question.status == OPEN)).one()


def answer_question(session: Session, writer: ReplyWriter, question_id: int, answer: str, by: str,
                    now: datetime) -> Question:
    """Send `answer` to the student in reply to their mail and close the question."""
    answer = answer.strip()
    if not answer:
        raise IntakeError("答复是空的：请写下学生要读到的内容")
    # A write first: on SQLite the transaction takes the write lock before it reads.
    session.execute(update(Question).where(Question.id == question_id)
                    .values(status=Question.status).execution_options(synchronize_session=False))
    question = session.get(Question, question_id, with_for_update=True, populate_existing=True)
    if question is None:
        raise IntakeError(f"没有提问 {question_id}；`intake questions` 列出待回复的提问")
    if question.status != OPEN:
        raise IntakeError(f"提问 {question_id} 已由 {question.answered_by} 答复")
    case = session.get(Case, question.case_id) if question.case_id else None
    mail = session.get(Mail, question.mail_id)
    facts = ReplyFacts("reply_answer", name=case.name if case else None,
                       department=case.department if case else None,
                       case_id=case.id if case else None,
                       extra={"answer": answer, "question": question.text,
                              "asked_subject": question.subject})
    outgoing = writer.write(facts, question.sender, now, mail.message_id if mail else None, [])
    queue(session, key=f"answer:question:{question.id}", kind="reply_answer", outgoing=outgoing,
          now=now, case=case, mail=mail, recipient=question.sender)
    question.status, question.answered_at, question.answered_by = ANSWERED, now, by
    question.answer = answer
    case_store.record_event(session, at=now, kind="question_answered", case=case, mail=mail,
                            actor=by, question=question.id, answer=answer)
    return question
