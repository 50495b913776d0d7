"""Mail commands: `intake poll`, `intake run` (the daemon), `intake quarantine`, `intake replay`."""
from __future__ import annotations

import os
import sys

import click
from sqlalchemy import select

from intake.app import build_daemon, renderer
from intake.cli.root import Context, cli, emit
from intake.db.engine import read_session
from intake.errors import IntakeError
from intake.models import Mail, MailOutcome
from intake.record import cases as case_store
from intake.staff import labels, view


@cli.command()
@click.pass_obj
def poll(obj: Context) -> None:
    """One pass over every configured folder, then send queued mail."""
    with obj.daemon() as app:
        report, drained = app.poll_once()
    click.echo(view.poll_summary(report.outcomes, drained))
    if not report.ok:
        failure = IntakeError("收信未完成：" + "；".join(report.errors))
        failure.exit_code = report.exit_code or IntakeError.exit_code
        raise failure


@cli.command()
@click.pass_obj
def run(obj: Context) -> None:
    """The daemon: poll, send and make the daily digest on schedule until SIGTERM/SIGINT."""
    from intake.daemon import Daemon
    from intake.ops.template_check import check_configured_templates
    app = build_daemon(obj.settings)  # the Daemon closes it when it stops
    try:
        # A broken template stops the start, not the first student's reply.
        check_configured_templates(obj.settings, renderer(obj.settings))
    except IntakeError:
        app.close()
        raise
    sys.exit(Daemon(app).run())


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--dismiss", "dismiss_id", type=int, metavar="MAIL_ID",
              help="Take a mail out of the quarantine once a person has dealt with it (kept as "
                   "other mail, never answered).")
@click.option("--by", default=lambda: os.environ.get("USER") or "staff", show_default="$USER",
              help="Who dismisses it, for the history.")
@click.pass_obj
def quarantine(obj: Context, as_json: bool, dismiss_id: int | None, by: str) -> None:
    """Mails that failed processing three times, or whose sender could not be read, kept with
    their error and raw mail (raw_path, under storage.path)."""
    with obj.database() as database:
        if dismiss_id is not None:
            with database.sessions.begin() as session:
                mail = session.get(Mail, dismiss_id, with_for_update=True)
                if mail is None or mail.outcome != MailOutcome.QUARANTINED:
                    raise IntakeError(f"邮件 {dismiss_id} 不在隔离区；`intake quarantine` "
                                      f"列出隔离的邮件")
                case_store.record_event(session, at=database.clock(), kind="dismissed", mail=mail,
                                        actor=by, error=(mail.error or "")[:200])
                mail.outcome = MailOutcome.IGNORED_OTHER
            click.echo(f"邮件 {dismiss_id}：已移出隔离，记为无关邮件")
            return
        with read_session(database.sessions) as session:
            rows = [{"id": m.id, "folder": m.folder, "uid": m.uid, "attempts": m.attempts,
                     "error": m.error, "fetched_at": view.iso(m.fetched_at, obj.settings.zone),
                     "raw_path": m.raw_path}
                    for m in session.scalars(select(Mail).where(
                        Mail.outcome == MailOutcome.QUARANTINED).order_by(Mail.id))]
    emit(rows, as_json, "隔离区没有邮件", None,
          lambda row: f"邮件 {row['id']}  文件夹「{row['folder']}」UID {row['uid']}  "
                      f"已尝试 {row['attempts']} 次  {row['error']}")


@cli.command()
@click.argument("mail_id", type=int)
@click.pass_obj
def replay(obj: Context, mail_id: int) -> None:
    """Process a quarantined mail again (after a fix), and send its reply."""
    with obj.daemon() as app:
        outcome = app.poller.replay(mail_id)
        drained = app.drain()
    click.echo(f"邮件 {mail_id}：{labels.label(labels.MAIL_OUTCOMES, outcome)}；已发送 {drained.sent} 封")
    if outcome in {MailOutcome.FAILED, MailOutcome.QUARANTINED}:
        raise IntakeError(f"邮件 {mail_id} 再次处理失败；见 `intake quarantine`")
