"""The digests made (with a preview of the next and, for an administrator, a resend) and the
service's status. A department reviewer sees their department's part of each only."""
from __future__ import annotations

from flask import Blueprint, g, render_template
from sqlalchemy import func, select

from intake.db.engine import read_session
from intake.errors import IntakeError
from intake.models import Case, Digest
from intake.ops.status import gather
from intake.web.common import admin_only, audit, ctx

blueprint = Blueprint("digests", __name__)


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
def history():
    return render_template("digests.html", history=_digest_history(), preview=None, message=None)


@blueprint.route("/digests/preview")
def preview():
    """Who the next digest would forward now: read only, nothing built, marked or sent; a
    department reviewer sees their department's part only."""
    desk = ctx()
    coming = desk.digests.preview(g.user.scope)
    audit("digest_preview", cases=coming.forward_count, scope=g.user.scope)
    return render_template("digests.html", history=_digest_history(), preview=coming, message=None)


@blueprint.route("/digests/<int:digest_id>/resend", methods=["POST"])
@admin_only
def resend(digest_id: int):
    desk = ctx()
    try:
        count = desk.digests.resend(digest_id)
    except IntakeError as err:
        message = str(err)
    else:
        audit("digest_resend", digest=digest_id, parts=count)
        message = f"汇总 #{digest_id} 已重新排队（{count} 封），由守护进程发出"
    return render_template("digests.html", history=_digest_history(), preview=None, message=message)


@blueprint.route("/status")
def status():
    desk = ctx()
    found = gather(desk.sessions, desk.settings, desk.clock(), scope=g.user.scope)
    return render_template("status.html", found=found)
