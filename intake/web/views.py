"""The desk's pages: sign-in, the queue, one case with its pictures and actions, digests, status,
accounts."""
from __future__ import annotations

import functools
import io
import zipfile

from flask import (Blueprint, Response, abort, current_app, g, make_response, redirect,
                   render_template, request, url_for)
from flask import session as flask_session
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.staff import accounts
from intake.record import cases as case_store
from intake.models.desk import ROLES
from intake.db.engine import read_session
from intake.errors import IntakeError
from intake.models import Case, Digest, Item
from intake.staff.actions import CaseChanged
from intake.ops.status import gather
from intake.store.files import material_name
from intake.web import desk as auth
from intake.web import reading
from intake.web.actions import ACTION_LABELS, ACTIONS, DESK_ACTIONS, DeskAction
from intake.web.desk import AuditView, DeskContext, LoginRefused
from intake.web.queue import (STATUS_LABELS, STATUSES, BadFilter, QueueFilter, load_queue,
                              ranked)
from notifier.pictures import office_jpeg
from notifier.render import local_time

blueprint = Blueprint("desk", __name__)
COOKIE = "desk_session"
PREVIEW_SIDE = 1200
OPEN = {"desk.login", "static"}


def ctx() -> DeskContext:
    return current_app.extensions["desk"]


def _address() -> str:
    return (request.remote_addr or "unknown")[:64]


def _audit(action: str, case_id: int | None = None, actor: str | None = None, **detail) -> None:
    with ctx().sessions.begin() as session:
        auth.audit(session, at=ctx().clock(), actor=actor or g.user.username, action=action,
                   case_id=case_id, address=_address(), **detail)


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


LARGEST_ID = 2**63 - 1  # a database integer; a longer number names nothing


@blueprint.before_app_request
def _require_session():
    g.user = None
    for key, value in (request.view_args or {}).items():
        if key.endswith("_id") and isinstance(value, int) and value > LARGEST_ID:
            abort(400, description=f"编号 {str(value)[:24]}… 无效：没有这样的登记或摘要。")
    if request.endpoint in OPEN:
        return None
    desk = ctx()
    cookie, now = request.cookies.get(COOKIE), desk.clock()
    # Looked up without the write lock; written only when the session's last use is due a touch.
    try:
        with read_session(desk.sessions) as session:
            g.user = auth.current(session, cookie, now, desk.idle, desk.longest, writable=False)
    except auth.TouchDue:
        with desk.sessions.begin() as session:
            g.user = auth.current(session, cookie, now, desk.idle, desk.longest)
    if g.user is None:
        target = url_for("desk.login")
        if _is_htmx():
            response = make_response("", 401)
            response.headers["HX-Redirect"] = target
            return response
        return redirect(target)
    return None


def admin_only(view):
    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not g.user.is_admin:
            abort(403)
        return view(*args, **kwargs)
    return checked


@blueprint.app_context_processor
def _template_globals():
    return {"user": g.get("user"), "status_labels": STATUS_LABELS,
            "local": lambda moment: local_time(moment, ctx().zone) if moment else "-"}


# --- signing in and out ---

@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html", message=None)
    username = request.form.get("username", "")
    desk = ctx()
    now = desk.clock()
    refused = None
    with desk.sessions.begin() as session:
        # The failed attempt is committed too: it is what the throttling counts.
        try:
            session_id, who = auth.log_in(session, username, request.form.get("password", ""),
                                          _address(), now, replacing=request.cookies.get(COOKIE))
        except LoginRefused as err:
            refused = err
            auth.audit(session, at=now, actor=username.strip()[:64] or "-",
                       action=auth.LOGIN_FAILED, address=_address(), reason=err.reason)
        else:
            auth.audit(session, at=now, actor=who.username, action="login", address=_address())
    if refused is not None:
        return render_template("login.html", message=refused.message), 401
    # A new sign-in gets a new CSRF token: one read before it (by whoever) is no use after.
    flask_session.clear()
    response = redirect(url_for("desk.queue"))
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="Lax", secure=request.is_secure,
                        max_age=int(desk.longest.total_seconds()), path="/")
    return response


@blueprint.route("/logout", methods=["POST"])
def logout():
    with ctx().sessions.begin() as session:
        auth.log_out(session, request.cookies.get(COOKIE))
        auth.audit(session, at=ctx().clock(), actor=g.user.username, action="logout",
                   address=_address())
    response = redirect(url_for("desk.login"))
    response.delete_cookie(COOKIE, path="/")
    return response


# --- the queue ---

@blueprint.route("/")
def home():
    return redirect(url_for("desk.queue"))


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
    case_url = url_for("desk.case_page", case_id=0).removesuffix("0")
    return render_template("cases.html", queue=found, rows=found.rows, counts=found.counts,
                           case_url=case_url,
                           departments=found.departments, wanted=wanted,
                           statuses=(*STATUSES, "forwarded"))


def _scoped_case(session, case_id: int) -> Case:
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
        case = _scoped_case(session, case_id)
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
        action_labels=ACTION_LABELS, can_approve=case.status == case_store.COMPLETE
        and case.approved_at is None and case.digest_id is None)
    return page, status


@blueprint.route("/cases/<int:case_id>")
def case_page(case_id: int):
    page = _case_page(case_id)
    _audit("case_view", case_id)
    return page


@blueprint.route("/cases/<int:case_id>/next")
def next_case(case_id: int):
    """The case after this one in the queue's order, worked out when asked for (the case page
    does not rank the whole queue to show its link)."""
    following = _next_case(case_id)
    if following is None:
        return redirect(url_for("desk.queue"))
    return redirect(url_for("desk.case_page", case_id=following))


@blueprint.route("/cases/<int:case_id>/pictures/<item_key>")
def picture(case_id: int, item_key: str):
    desk = ctx()
    if item_key not in desk.item_keys:
        abort(404)
    with read_session(desk.sessions) as session:
        _scoped_case(session, case_id)
        item = session.scalar(select(Item).where(Item.case_id == case_id, Item.kind == item_key))
        path = item.path if item is not None else None
    if path is None:
        abort(404)
    full = request.args.get("full") == "1"
    try:
        jpeg = office_jpeg(desk.store.read(path), max_side=None if full else PREVIEW_SIDE)
    except Exception:  # noqa: BLE001 - a PDF or a broken file: there is no picture to show
        abort(404)
    _audit("picture_view", case_id, item=item_key, full=full)
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
        _scoped_case(session, case_id)
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
    address = _address()

    def audited(session: Session) -> None:  # in the action's own transaction
        auth.audit(session, at=desk.clock(), actor=by, action=f"case_{action}", case_id=case_id,
                   address=address, items=list(form.getlist("items")))
    try:
        DESK_ACTIONS[action](desk, DeskAction(case_id, form, reason, by, expected, audited))
    except CaseChanged as changed:
        _audit("case_action_refused", case_id, attempted=action, reason="case changed",
               expected=expected, current=changed.current)
        return _case_page(case_id, changed=changed, status=200 if _is_htmx() else 409,
                          typed=_typed(action, form))
    except IntakeError as err:
        return _case_page(case_id, message=str(err), status=200 if _is_htmx() else 400,
                          typed=_typed(action, form))
    done = f"已{ACTION_LABELS[action]}"
    if _is_htmx():
        return _case_page(case_id, message=done)
    return redirect(url_for("desk.case_page", case_id=case_id))


@blueprint.route("/cases/<int:case_id>/export")
def export(case_id: int):
    """The case's usable materials under canonical names, as one zip."""
    desk = ctx()
    with read_session(desk.sessions) as session:
        case = _scoped_case(session, case_id)
        files = [(material_name(item.kind, item.file_type), item.path)
                 for item in case.items if item.usable and item.path]
    if not files:
        abort(404)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            archive.writestr(name, desk.store.read(path))
    _audit("export", case_id, files=len(files))
    response = Response(buffer.getvalue(), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="case-{case_id}.zip"'
    return response


# --- digests, status, accounts ---

def _digest_history() -> list[dict]:
    """The last 100 digests; for a department reviewer, counting their department's cases only
    (how many of another department's were held back is not theirs to know)."""
    scope = g.user.scope
    with read_session(ctx().sessions) as session:
        digests = session.scalars(select(Digest).order_by(Digest.id.desc()).limit(100)).all()
        mine = dict(session.execute(
            select(Case.digest_id, func.count()).where(
                Case.department == scope, Case.digest_id.in_([d.id for d in digests]))
            .group_by(Case.digest_id)).all()) if scope and digests else {}
    return [{"id": d.id, "date": d.date, "created_at": d.created_at, "parts": d.parts,
             "case_count": mine.get(d.id, 0) if scope else d.case_count,
             "held_back": "-" if scope else d.held_back} for d in digests]


@blueprint.route("/digests")
def digests():
    return render_template("digests.html", history=_digest_history(), preview=None, message=None)


@blueprint.route("/digests/preview")
def digest_preview():
    """Who the next digest would forward now: read only, nothing built, marked or sent; a
    department reviewer sees their department's part only."""
    desk = ctx()
    preview = desk.digests.preview(g.user.scope)
    _audit("digest_preview", cases=preview.forward_count, scope=g.user.scope)
    return render_template("digests.html", history=_digest_history(), preview=preview, message=None)


@blueprint.route("/digests/<int:digest_id>/resend", methods=["POST"])
@admin_only
def digest_resend(digest_id: int):
    desk = ctx()
    try:
        count = desk.digests.resend(digest_id)
    except IntakeError as err:
        message = str(err)
    else:
        _audit("digest_resend", digest=digest_id, parts=count)
        message = f"摘要 #{digest_id} 已重新排队（{count} 封），由守护进程发出"
    return render_template("digests.html", history=_digest_history(), preview=None, message=message)


@blueprint.route("/status")
def status():
    desk = ctx()
    found = gather(desk.sessions, desk.settings, desk.clock(), scope=g.user.scope)
    return render_template("status.html", found=found)


@blueprint.route("/admin/accounts", methods=["GET", "POST"])
@admin_only
def accounts_page():
    desk = ctx()
    message = None
    if request.method == "POST":
        form = request.form
        target = form.get("username", "").strip()
        try:
            with desk.sessions.begin() as session:
                operation = form.get("operation")
                if operation == "add":
                    accounts.add_account(session, target, form.get("password", ""),
                                         form.get("role", ""), form.get("department", "").strip()
                                         or None, desk.clock())
                elif operation == "disable":
                    accounts.set_disabled(session, target, True)
                elif operation == "enable":
                    accounts.set_disabled(session, target, False)
                elif operation == "password":
                    accounts.set_password(session, target, form.get("password", ""), desk.clock())
                else:
                    abort(400)
                auth.audit(session, at=desk.clock(), actor=g.user.username,
                           action=f"account_{operation}", address=_address(), account=target)
            message = f"{target}: 已完成"
        except IntakeError as err:
            message = str(err)
    with read_session(desk.sessions) as session:
        rows = accounts.list_accounts(session)
        audit_view = AuditView.from_args(request.args)
        recent = audit_view.entries(session)
    return render_template("accounts.html", rows=rows, roles=ROLES, message=message, recent=recent,
                           audit=audit_view)


@blueprint.app_errorhandler(403)
def _forbidden(_err):
    return render_template("error.html", title="没有权限", text="此页面仅限管理员。"), 403


@blueprint.app_errorhandler(404)
def _missing(_err):
    return render_template("error.html", title="未找到", text="没有这个页面或登记。"), 404


@blueprint.app_errorhandler(400)
def _bad(err):
    text = getattr(err, "description", "") or "请求无效"
    if "CSRF" in str(text):
        text = "页面已过期（安全令牌缺失或无效），请刷新后重试。"
    return render_template("error.html", title="请求被拒绝", text=text), 400
