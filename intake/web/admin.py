"""Administrators only: the desk's accounts and the audit log."""
from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request

from intake.db.engine import read_session
from intake.errors import IntakeError
from intake.models.desk import ROLES
from intake.staff import accounts as account_store
from intake.web.common import address, admin_only, ctx
from intake.web.desk import AuditView
from intake.web.desk import audit as audit_in

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@blueprint.route("/accounts", methods=["GET", "POST"])
@admin_only
def accounts():
    desk = ctx()
    message = None
    if request.method == "POST":
        form = request.form
        target = form.get("username", "").strip()
        try:
            with desk.sessions.begin() as session:
                operation = form.get("operation")
                if operation == "add":
                    account_store.add_account(session, target, form.get("password", ""),
                                              form.get("role", ""),
                                              form.get("department", "").strip() or None,
                                              desk.clock())
                elif operation == "disable":
                    account_store.set_disabled(session, target, True)
                elif operation == "enable":
                    account_store.set_disabled(session, target, False)
                elif operation == "password":
                    account_store.set_password(session, target, form.get("password", ""),
                                               desk.clock())
                else:
                    abort(400)
                audit_in(session, at=desk.clock(), actor=g.user.username,
                         action=f"account_{operation}", address=address(), account=target)
            message = f"{target}: 已完成"
        except IntakeError as err:
            message = str(err)
    with read_session(desk.sessions) as session:
        rows = account_store.list_accounts(session)
        audit_view = AuditView.from_args(request.args)
        recent = audit_view.entries(session)
    return render_template("accounts.html", rows=rows, roles=ROLES, message=message, recent=recent,
                           audit=audit_view)
