"""The queue and one case: its page, pictures, actions and export. A department reviewer is
answered 404 for another department's case, whichever of these pages asks."""
from __future__ import annotations

import io
import zipfile

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.db.engine import read_session
from intake.errors import IntakeError
from intake.models import Case, Item
from intake.record import cases as case_store
from intake.staff.actions import CaseChanged
from intake.store.files import material_name
from intake.web import reading
from intake.staff import labels
from intake.web.actions import ACTIONS, DESK_ACTIONS, DeskAction
from intake.web.common import LARGEST_ID, address, audit, ctx, is_htmx
from intake.web.desk import audit as audit_in
from intake.web.queue import STATUSES, BadFilter, QueueFilter, load_queue, ranked
from notifier.pictures import office_jpeg
from notifier.render import local_time

blueprint = Blueprint("cases", __name__)
PREVIEW_SIDE = 1200


@blueprint.route("/")
def home():
    return redirect(url_for("cases.queue"))


@blueprint.route("/cases")
def queue():
    desk = ctx()
    try:
        wanted = QueueFilter.from_args(request.args)
    except BadFilter as err:
        abort(400, description=str(err))
    page = request.args.get("page", "1")
    if not page.isdigit() or not 0 < int(page) <= 10**6:
        abort(400, description=f"页码「{page[:20]}」无效：请填写 1 以上的整数。")
    with read_session(desk.sessions) as session:
        found = load_queue(session, wanted, g.user.scope, desk.item_keys, desk.zone, int(page))
    # One url_for for the page, not one per row.
    case_url = url_for("cases.case_page", case_id=0).removesuffix("0")
    return render_template("cases.html", queue=found, rows=found.rows, counts=found.counts,
                           case_url=case_url,
                           departments=found.departments, wanted=wanted,
                           statuses=(*STATUSES, "forwarded"))


def scoped_case(session, case_id: int) -> Case:
    """The case if this person may see it; a department reviewer gets 404 for another
    department's (not even its existence is told)."""
    case = session.get(Case, case_id)
    if case is None or (g.user.scope and case.department != g.user.scope):
        abort(404)
    return case


def _next_case(case_id: int) -> int | None:
    desk = ctx()
    with read_session(desk.sessions) as session:
        ids = ranked(session, QueueFilter(), g.user.scope, desk.zone).ids
    if case_id in ids:
        later = ids[ids.index(case_id) + 1:]
        return later[0] if later else None
    return ids[0] if ids else None


def _case_page(case_id: int, *, message: str | None = None, changed: CaseChanged | None = None,
               status: int = 200, typed: dict | None = None):
    """`typed`: what the reviewer entered for an action that was refused, shown again in its
    form so that nothing has to be typed twice."""
    desk = ctx()
    with read_session(desk.sessions) as session:
        case = scoped_case(session, case_id)
    shown = desk.staff.show(case_id, desk.zone)
    facts = reading.facts_shown(shown["facts"], shown["flags"])
    items = {item["kind"]: item for item in shown["items"]}
    timeline = sorted([("mail", m["fetched_at"], m) for m in shown["mails"]]
                      + [("reply", r["queued_at"], r) for r in shown["replies"]],
                      key=lambda entry: (entry[1] or "", entry[0]))
    changes = [{**c, "at": local_time(c["at"], desk.zone)} for c in changed.changes] \
        if changed else []
    page = render_template(
        "case.html", case=shown, items=items, item_keys=desk.item_keys, facts=facts,
        timeline=timeline, reasons=desk.settings.web.reject_reasons, message=message,
        changes=changes, changed=changed, typed=typed or {},
        action_labels=labels.ACTIONS, can_approve=case.status == case_store.COMPLETE
        and case.approved_at is None and case.digest_id is None)
    return page, status


@blueprint.route("/cases/<int:case_id>")
def case_page(case_id: int):
    page = _case_page(case_id)
    audit("case_view", case_id)
    return page


@blueprint.route("/cases/<int:case_id>/next")
def next_case(case_id: int):
    """The case after this one in the queue's order, worked out when asked for (the case page
    does not rank the whole queue to show its link)."""
    following = _next_case(case_id)
    if following is None:
        return redirect(url_for("cases.queue"))
    return redirect(url_for("cases.case_page", case_id=following))


@blueprint.route("/cases/<int:case_id>/pictures/<item_key>")
def picture(case_id: int, item_key: str):
    desk = ctx()
    if item_key not in desk.item_keys:
        abort(404)
    with read_session(desk.sessions) as session:
        scoped_case(session, case_id)
        item = session.scalar(select(Item).where(Item.case_id == case_id, Item.kind == item_key))
        path = item.path if item is not None else None
    if path is None:
        abort(404)
    full = request.args.get("full") == "1"
    try:
        jpeg = office_jpeg(desk.store.read(path), max_side=None if full else PREVIEW_SIDE)
    except Exception:  # noqa: BLE001 - a PDF or a broken file: there is no picture to show
        abort(404)
    audit("picture_view", case_id, item=item_key, full=full)
    return Response(jpeg, mimetype="image/jpeg")


def _typed(action: str, form) -> dict:
    return {"action": action, "template": form.get("template", ""), "reason": form.get("reason", ""),
            "text": form.get("text", ""), "checked": form.getlist("items")}


@blueprint.route("/cases/<int:case_id>/actions/<action>", methods=["POST"])
def act(case_id: int, action: str):
    desk = ctx()
    if action not in ACTIONS:
        abort(404)
    with read_session(desk.sessions) as session:
        scoped_case(session, case_id)
    form = request.form
    try:
        expected = int(form.get("expected_version", ""))
    except ValueError:
        abort(400)
    if not 0 <= expected <= LARGEST_ID:
        abort(400)
    reason = " ".join(part for part in (form.get("template", "").strip(),
                                        form.get("reason", "").strip()) if part)
    by = g.user.username
    where = address()

    def audited(session: Session) -> None:  # in the action's own transaction
        audit_in(session, at=desk.clock(), actor=by, action=f"case_{action}", case_id=case_id,
                 address=where, items=list(form.getlist("items")))
    try:
        DESK_ACTIONS[action](desk, DeskAction(case_id, form, reason, by, expected, audited))
    except CaseChanged as changed:
        audit("case_action_refused", case_id, attempted=action, reason="case changed",
              expected=expected, current=changed.current)
        return _case_page(case_id, changed=changed, status=200 if is_htmx() else 409,
                          typed=_typed(action, form))
    except IntakeError as err:
        return _case_page(case_id, message=str(err), status=200 if is_htmx() else 400,
                          typed=_typed(action, form))
    done = f"已{labels.ACTIONS[action]}"
    if is_htmx():
        return _case_page(case_id, message=done)
    return redirect(url_for("cases.case_page", case_id=case_id))


@blueprint.route("/cases/<int:case_id>/export")
def export(case_id: int):
    """The case's usable materials under canonical names, as one zip."""
    desk = ctx()
    with read_session(desk.sessions) as session:
        case = scoped_case(session, case_id)
        files = [(material_name(item.kind, item.file_type), item.path)
                 for item in case.items if item.usable and item.path]
    if not files:
        abort(404)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            archive.writestr(name, desk.store.read(path))
    audit("export", case_id, files=len(files))
    response = Response(buffer.getvalue(), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="case-{case_id}.zip"'
    return response
