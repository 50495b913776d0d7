"""What every desk blueprint shares: the sign-in required on every page but the login form, the
desk's context, the audit row written in its own transaction, the administrator-only guard, the
error pages and the names every template sees.

`install(app)` puts the guard, the template names and the error pages on the application itself
(not on one blueprint), so a page added in a new blueprint is behind the sign-in without asking.
"""
from __future__ import annotations

import functools

from flask import Flask, abort, current_app, g, make_response, redirect, render_template, request, url_for

from intake.db.engine import read_session
from intake.staff import labels
from intake.web.desk import DeskContext, TouchDue, current
from intake.web.desk import audit as audit_in
from notifier.render import local_time

COOKIE = "desk_session"
LOGIN = "auth.login"
# The only endpoints served without a desk session.
OPEN = frozenset({LOGIN, "static"})
LARGEST_ID = 2**63 - 1  # a database integer; a longer number names nothing


def ctx() -> DeskContext:
    return current_app.extensions["desk"]


def address() -> str:
    return (request.remote_addr or "unknown")[:64]


def audit(action: str, case_id: int | None = None, actor: str | None = None, **detail) -> None:
    """An audit row in a transaction of its own (for what only reads; an action that changes
    something writes its row in that change's transaction with `intake.web.desk.audit`)."""
    with ctx().sessions.begin() as session:
        audit_in(session, at=ctx().clock(), actor=actor or g.user.username, action=action,
                 case_id=case_id, address=address(), **detail)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def admin_only(view):
    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not g.user.is_admin:
            abort(403)
        return view(*args, **kwargs)
    return checked


def _require_session():
    g.user = None
    for key, value in (request.view_args or {}).items():
        if key.endswith("_id") and isinstance(value, int) and value > LARGEST_ID:
            abort(400, description=f"编号 {str(value)[:24]}… 无效：没有这样的登记或汇总。")
    if request.endpoint in OPEN:
        return None
    desk = ctx()
    cookie, now = request.cookies.get(COOKIE), desk.clock()
    # Looked up without the write lock; written only when the session's last use is due a touch.
    try:
        with read_session(desk.sessions) as session:
            g.user = current(session, cookie, now, desk.idle, desk.longest, writable=False)
    except TouchDue:
        with desk.sessions.begin() as session:
            g.user = current(session, cookie, now, desk.idle, desk.longest)
    if g.user is None:
        target = url_for(LOGIN)
        if is_htmx():
            response = make_response("", 401)
            response.headers["HX-Redirect"] = target
            return response
        return redirect(target)
    return None


def _template_globals():
    return {"user": g.get("user"), "status_labels": labels.CASE_STATES,
            "local": lambda moment: local_time(moment, ctx().zone) if moment else "-"}


def _forbidden(_err):
    return render_template("error.html", title="没有权限", text="此页面仅限管理员。"), 403


def _missing(_err):
    return render_template("error.html", title="未找到", text="没有这个页面或登记。"), 404


def _bad(err):
    text = getattr(err, "description", "") or "请求无效"
    if "CSRF" in str(text):
        text = "页面已过期（安全令牌缺失或无效），请刷新后重试。"
    return render_template("error.html", title="请求被拒绝", text=text), 400


def install(app: Flask) -> None:
    """After CSRFProtect(app): a post without its token is refused before anything else runs."""
    app.before_request(_require_session)
    app.context_processor(_template_globals)
    app.register_error_handler(403, _forbidden)
    app.register_error_handler(404, _missing)
    app.register_error_handler(400, _bad)
