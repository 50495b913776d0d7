"""`intake questions`: what students asked that a person must answer, and answering one."""
from __future__ import annotations

import click

from intake.cli.root import Context, by_option, cli, emit, staff_action
from intake.db.engine import read_session
from intake.staff.questions import list_questions


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option("--all", "include_answered", is_flag=True, help="Answered questions too.")
@click.pass_context
def questions(ctx: click.Context, as_json: bool, include_answered: bool) -> None:
    """Students' questions waiting for an answer, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    zone = obj.settings.zone
    with obj.database() as database, read_session(database.sessions) as session:
        rows = [row.as_json(zone) for row in list_questions(session, include_answered=include_answered)]
    emit(rows, as_json, "没有待回复的提问", "编号  登记  学生  提问时间  内容",
         lambda row: f"{row['id']:>4}  {row['case_id'] or '-':>4}  "
                     f"{row['name'] or row['sender']}  {row['asked_at'][:16].replace('T', ' ')}  "
                     f"{' '.join((row['text'] or row['subject']).split())[:60]}"
                     + ("" if row["status"] == "open" else f"  （已答复：{row['answer']}）"))


@questions.command("answer")
@click.argument("question_id", type=int)
@click.argument("text")
@by_option()
def answer(question_id: int, text: str, by: str) -> None:
    """Answer a question: the student gets TEXT in reply to their mail; the question closes."""
    staff_action(lambda app: f"提问 {app.staff.answer(question_id, text, by).id}：已答复，学生会收到回复")
