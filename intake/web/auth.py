"""Signing in and out of the desk: sessions kept in the database, failed attempts throttled."""
from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask import session as flask_session

from intake.web.common import COOKIE, address, ctx
from intake.web.desk import LOGIN_FAILED, LoginRefused, log_in, log_out
from intake.web.desk import audit as audit_in

blueprint = Blueprint("auth", __name__)


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
            session_id, who = log_in(session, username, request.form.get("password", ""),
                                     address(), now, replacing=request.cookies.get(COOKIE))
        except LoginRefused as err:
            refused = err
            audit_in(session, at=now, actor=username.strip()[:64] or "-",
                     action=LOGIN_FAILED, address=address(), reason=err.reason)
        else:
            audit_in(session, at=now, actor=who.username, action="login", address=address())
    if refused is not None:
        return render_template("login.html", message=refused.message), 401
    # A new sign-in gets a new CSRF token: one read before it (by whoever) is no use after.
    flask_session.clear()
    response = redirect(url_for("cases.queue"))
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="Lax", secure=request.is_secure,
                        max_age=int(desk.longest.total_seconds()), path="/")
    return response


@blueprint.route("/logout", methods=["POST"])
def logout():
    with ctx().sessions.begin() as session:
        log_out(session, request.cookies.get(COOKIE))
        audit_in(session, at=ctx().clock(), actor=g.user.username, action="logout",
                 address=address())
    response = redirect(url_for("auth.login"))
    response.delete_cookie(COOKIE, path="/")
    return response
