"""The desk's 待回复 list: students' questions, answered from here with a threaded reply through
the outbox (the same function as `intake questions answer`)."""
from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from intake.errors import IntakeError
from intake.models import Case, Question
from intake.staff.questions import list_questions
from intake.web.common import address, ctx
from intake.web.desk import audit as audit_in

blueprint = Blueprint("questions", __name__)


@blueprint.route("/questions")
def waiting():
    desk = ctx()
    with desk.sessions() as session:
        rows = list_questions(session, department=g.user.scope)
    return render_template("questions.html", rows=rows,
                           message=request.args.get("message"))


@blueprint.route("/questions/<int:question_id>/answer", methods=["POST"])
def answer(question_id: int):
    desk = ctx()
    with desk.sessions() as session:
        question = session.get(Question, question_id)
        case = session.get(Case, question.case_id) if question and question.case_id else None
        if question is None or (g.user.scope and case is not None and case.department != g.user.scope):
            abort(404)
    by, where = g.user.username, address()

    def audited(session: Session) -> None:  # in the answer's own transaction
        audit_in(session, at=desk.clock(), actor=by, action="question_answer",
                 case_id=case.id if case else None, address=where, question=question_id)
    try:
        desk.staff.answer(question_id, request.form.get("answer", ""), by, also=audited)
        message = f"已答复提问 {question_id}"
    except IntakeError as err:
        message = str(err)
    return redirect(url_for("questions.waiting", message=message))
