"""`intake cases` and `intake case ...`: the cases, one case, and what staff do to it."""
from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import click
from sqlalchemy import or_, select

from checks.content_rules import department_flags, flags_for
from intake.app import App
from intake.cli.root import Context, by_option, cli, emit, staff_action
from intake.db.engine import read_session
from intake.models import Case
from intake.pictures.readings import case_state, describe_facts, load_case_facts
from intake.record import cases as case_store
from intake.staff import labels, view
from intake.staff.actions import show_case


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (UTF-8 with BOM, opens in Excel).")
@click.option("--status", type=click.Choice(["incomplete", "complete", "held", "rejected"]))
@click.option("--department", help="Only this department (exact).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Opened on or after this date.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Opened on or before this date.")
@click.option("--search", help="Part of the name or the sender's address.")
@click.pass_obj
def cases(obj: Context, as_json: bool, as_csv: bool, status: str | None, department: str | None,
          since, until, search: str | None) -> None:
    """List the cases and what each still lacks."""
    rules = obj.settings.submission_rules()
    zone = obj.settings.zone
    query = select(Case).order_by(Case.id)
    if status:
        query = query.where(Case.status == status)
    if department:  # as students write it too: 物院 finds 物理学院's cases
        query = query.where(Case.department == rules.canonical_department(department))
    if since:
        query = query.where(Case.created_at >= since.replace(tzinfo=zone))
    if until:
        query = query.where(Case.created_at < (until + timedelta(days=1)).replace(tzinfo=zone))
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(Case.name.like(f"%{search}%"), Case.sender.like(pattern)))
    with obj.database() as database, read_session(database.sessions) as session:
        rows = []
        found = list(session.scalars(query))
        read = load_case_facts(session, [case.id for case in found])
        for case in found:
            facts = read.get(case.id, {})
            rows.append({
                "id": case.id, "name": case.name, "department": case.department,
                "sender": case.sender, "status": case.status,
                "state": case_state(case.status, case.hold_reason),
                "missing": case_store.missing_keys(case, rules.item_keys),
                "created_at": view.iso(case.created_at, zone),
                "updated_at": view.iso(case.updated_at, zone),
                "completed_at": view.iso(case.completed_at, zone),
                "digest_id": case.digest_id,
                "approved": case.approved_at is not None,
                "facts": facts,
                "flags": flags_for(facts, case.name, obj.settings.digest.nucleic_acid_hours)
                + department_flags(case.department, rules),
            })
        now = database.clock()
    if as_csv:
        click.echo(view.cases_csv(rows), nl=False)
    elif as_json or not rows:
        emit(rows, as_json, "没有符合条件的登记", None, None)
    else:
        click.echo("\n".join(view.cases_table(rows, zone, now)))


@cli.group()
def case() -> None:
    """Look at and act on one case (staff)."""


@case.command("show")
@click.argument("case_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def case_show(obj: Context, case_id: int, as_json: bool) -> None:
    """The case, its items and where each came from, every mail and reply, its history."""
    rules = obj.settings.submission_rules()
    with obj.database() as database:
        shown = show_case(database.sessions, case_id, obj.settings.zone, rules)
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    lines = view.case_lines(shown, obj.settings.zone)
    # What was read from the pictures goes between the items and the mails.
    # The department's flag is on the 院（系） line already.
    said = set(department_flags(shown["department"], rules))
    facts_lines = describe_facts(shown.get("facts") or {},
                                 [flag for flag in shown.get("flags") or [] if flag not in said])
    if facts_lines:
        at = lines.index("邮件：") - 1 if "邮件：" in lines else len(lines)
        lines[at:at] = ["", *facts_lines]
    click.echo("\n".join(lines))


@case.command("hold")
@click.argument("case_id", type=int)
@click.option("--reason", required=True)
@by_option()
def case_hold(case_id: int, reason: str, by: str) -> None:
    """Keep a case out of the digest until it is released."""
    staff_action(lambda app: f"登记 {app.staff.hold(case_id, reason, by).id}：已暂缓报送")


@case.command("release")
@click.argument("case_id", type=int)
@by_option()
def case_release(case_id: int, by: str) -> None:
    """Undo a hold; the case's status follows its items again."""
    staff_action(lambda app: f"登记 {case_id}：已取消暂缓，现为"
                             f"{labels.label(labels.CASE_STATES, app.staff.release(case_id, by).status)}")


@case.command("reject")
@click.argument("case_id", type=int)
@click.option("--reason", required=True, help="Told to the student.")
@click.option("--item", "items", multiple=True, help="An item the student must send again.")
@by_option()
def case_reject(case_id: int, reason: str, items: tuple[str, ...], by: str) -> None:
    """Turn a case down; the student is told why and what to send again."""
    staff_action(lambda app: f"登记 {app.staff.reject(case_id, reason, by, items).id}：审核未通过，"
                             f"已通知学生")


@case.command("approve")
@click.argument("case_id", type=int)
@by_option()
def case_approve(case_id: int, by: str) -> None:
    """Let a complete case into the digest (with digest.require_approval)."""
    staff_action(lambda app: f"登记 {app.staff.approve(case_id, by).id}：审核通过，随下一次汇总报送")


@case.command("note")
@click.argument("case_id", type=int)
@click.argument("text")
@by_option()
def case_note(case_id: int, text: str, by: str) -> None:
    """Add a note to the case's history."""
    def act(app: App) -> str:
        app.staff.note(case_id, text, by)
        return f"登记 {case_id}：已添加备注"
    staff_action(act)


@case.command("export")
@click.argument("case_id", type=int)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@by_option()
def case_export(case_id: int, folder: Path, by: str) -> None:
    """Write the case's materials under canonical names into FOLDER."""
    staff_action(lambda app: "\n".join(str(p) for p in app.staff.export(case_id, folder, by)))


@case.command("reopen")
@click.argument("case_id", type=int)
@click.option("--by", default=lambda: os.environ.get("USER") or "staff",
              show_default="$USER", help="Who is acting, for the history.")
def case_reopen(case_id: int, by: str) -> None:
    """Put a held or rejected case back to following its items."""
    staff_action(lambda app: f"登记 {case_id}：已重新打开，现为"
                             f"{labels.label(labels.CASE_STATES, app.staff.reopen(case_id, by).status)}")
