"""`intake`: the operator's and staff's command line."""
from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click
import jinja2
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from checks.content_rules import flags_for
from intake.app import App, build_app, mailbox_endpoint, renderer, smtp_endpoint
from intake import cases as case_store
from intake import staff_view as view
from intake.db import read_session
from intake.errors import ConfigError, IntakeError
from intake.mailbox import Mailbox
from intake.models import Case, Mail, MailOutcome
from intake.readings import case_state, describe_facts, load_case_facts
from intake.settings import Settings, load_settings
from notifier.smtp import SmtpUnavailable, smtp_connection

log = logging.getLogger("intake")


class _Context:
    def __init__(self, config_path: Path):
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def app(self, read_only: bool = False) -> App:
        return build_app(self.settings, read_only=read_only)


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=lambda: os.environ.get("INTAKE_CONFIG", "intake.toml"), show_default="INTAKE_CONFIG or intake.toml",
              help="The TOML configuration file.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """健康宝弹窗 intake: poll the department mailbox, check submissions, reply, forward."""
    ctx.obj = _Context(config_path)


@cli.command()
@click.pass_obj
def poll(obj: _Context) -> None:
    """One pass over every configured folder, then send queued mail."""
    app = obj.app()
    try:
        report, drained = app.poll_once()
    finally:
        app.close()
    handled = ", ".join(f"{outcome}={count}" for outcome, count in sorted(report.outcomes.items()))
    click.echo(f"handled: {handled or 'nothing new'}; sent {drained.sent}, "
               f"waiting {drained.retrying}, failed {drained.failed}")
    if not report.ok:
        failure = IntakeError("poll incomplete: " + "; ".join(report.errors))
        failure.exit_code = report.exit_code or IntakeError.exit_code
        raise failure


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (UTF-8 with BOM, opens in Excel).")
@click.option("--status", type=click.Choice(["incomplete", "complete", "held", "rejected"]))
@click.option("--department", help="Only this department (exact).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Opened on or after this date.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Opened on or before this date.")
@click.option("--search", help="Part of the name or the sender's address.")
@click.pass_obj
def cases(obj: _Context, as_json: bool, as_csv: bool, status: str | None, department: str | None,
          since, until, search: str | None) -> None:
    """List the cases and what each still lacks."""
    app = obj.app(read_only=True)
    rules = obj.settings.rules.to_rules()
    zone = obj.settings.zone
    query = select(Case).order_by(Case.id)
    if status:
        query = query.where(Case.status == status)
    if department:
        query = query.where(Case.department == department)
    if since:
        query = query.where(Case.created_at >= since.replace(tzinfo=zone))
    if until:
        query = query.where(Case.created_at < (until + timedelta(days=1)).replace(tzinfo=zone))
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(Case.name.like(f"%{search}%"), Case.sender.like(pattern)))
    try:
        with read_session(app.sessions) as session:
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
                    "flags": flags_for(facts, case.name, obj.settings.digest.nucleic_acid_hours),
                })
            now = app.clock()
    finally:
        app.close()
    if as_csv:
        click.echo(view.cases_csv(rows), nl=False)
    elif as_json or not rows:
        _emit(rows, as_json, "没有符合条件的登记", None, None)
    else:
        click.echo("\n".join(view.cases_table(rows, zone, now)))


def _emit(rows: list[dict], as_json: bool, empty: str, header: str | None, line) -> None:
    """Rows as a JSON array, or as a table for people."""
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        click.echo(empty)
    else:
        if header:
            click.echo(header)
        for row in rows:
            click.echo(line(row))


@cli.group()
def case() -> None:
    """Look at and act on one case (staff)."""


def _by() -> Callable:
    return click.option("--by", default=lambda: os.environ.get("USER") or "staff",
                        show_default="$USER", help="Who is acting, for the history.")


@case.command("show")
@click.argument("case_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def case_show(obj: _Context, case_id: int, as_json: bool) -> None:
    """The case, its items and where each came from, every mail and reply, its history."""
    app = obj.app(read_only=True)
    try:
        shown = app.staff.show(case_id, obj.settings.zone)
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    lines = view.case_lines(shown, obj.settings.zone)
    # What was read from the pictures goes between the items and the mails.
    facts_lines = describe_facts(shown.get("facts") or {}, shown.get("flags") or [])
    if facts_lines:
        at = lines.index("邮件：") - 1 if "邮件：" in lines else len(lines)
        lines[at:at] = ["", *facts_lines]
    click.echo("\n".join(lines))


def _staff_action(action: Callable[[App], str]) -> None:
    app = None
    try:
        app = _current().app()
        click.echo(action(app))
        app.drain()
    finally:
        if app is not None:
            app.close()


def _current() -> _Context:
    return click.get_current_context().find_object(_Context)


@case.command("hold")
@click.argument("case_id", type=int)
@click.option("--reason", required=True)
@_by()
def case_hold(case_id: int, reason: str, by: str) -> None:
    """Keep a case out of the digest until it is released."""
    _staff_action(lambda app: f"登记 {app.staff.hold(case_id, reason, by).id}：已暂缓报送")


@case.command("release")
@click.argument("case_id", type=int)
@_by()
def case_release(case_id: int, by: str) -> None:
    """Undo a hold; the case's status follows its items again."""
    _staff_action(lambda app: f"登记 {case_id}：已取消暂缓，现为"
                              f"{view.label(view.CASE_STATUS, app.staff.release(case_id, by).status)}")


@case.command("reject")
@click.argument("case_id", type=int)
@click.option("--reason", required=True, help="Told to the student.")
@click.option("--item", "items", multiple=True, help="An item the student must send again.")
@_by()
def case_reject(case_id: int, reason: str, items: tuple[str, ...], by: str) -> None:
    """Turn a case down; the student is told why and what to send again."""
    _staff_action(lambda app: f"登记 {app.staff.reject(case_id, reason, by, items).id}：审核未通过，"
                              f"已通知学生")


@case.command("approve")
@click.argument("case_id", type=int)
@_by()
def case_approve(case_id: int, by: str) -> None:
    """Let a complete case into the digest (with digest.require_approval)."""
    _staff_action(lambda app: f"登记 {app.staff.approve(case_id, by).id}：审核通过，随下一次汇总报送")


@case.command("note")
@click.argument("case_id", type=int)
@click.argument("text")
@_by()
def case_note(case_id: int, text: str, by: str) -> None:
    """Add a note to the case's history."""
    def act(app: App) -> str:
        app.staff.note(case_id, text, by)
        return f"登记 {case_id}：已添加备注"
    _staff_action(act)


@case.command("export")
@click.argument("case_id", type=int)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@_by()
def case_export(case_id: int, folder: Path, by: str) -> None:
    """Write the case's materials under canonical names into FOLDER."""
    _staff_action(lambda app: "\n".join(str(p) for p in app.staff.export(case_id, folder, by)))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--stale-polls", default=3, show_default=True,
              help="Poll intervals without a successful poll before it needs attention.")
@click.pass_obj
def status(obj: _Context, as_json: bool, stale_polls: int) -> None:
    """Health at a glance; exits 1 when something needs attention (for cron or monitoring)."""
    from dataclasses import asdict

    from intake.status import gather
    app = obj.app(read_only=True)
    now = app.clock()
    try:
        found = gather(app.sessions, obj.settings, now, stale_polls)
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(asdict(found), ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(view.status_lines(found, obj.settings.zone, now)))
    if found.attention:
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--dismiss", "dismiss_id", type=int, metavar="MAIL_ID",
              help="Take a mail out of the quarantine once a person has dealt with it (kept as "
                   "other mail, never answered).")
@click.option("--by", default=lambda: os.environ.get("USER") or "staff", show_default="$USER",
              help="Who dismisses it, for the history.")
@click.pass_obj
def quarantine(obj: _Context, as_json: bool, dismiss_id: int | None, by: str) -> None:
    """Mails that failed processing three times, or whose sender could not be read, kept with
    their error and raw mail (raw_path, under storage.path)."""
    app = obj.app(read_only=True)  # dismissing writes the database only
    try:
        if dismiss_id is not None:
            with app.sessions.begin() as session:
                mail = session.get(Mail, dismiss_id, with_for_update=True)
                if mail is None or mail.outcome != MailOutcome.QUARANTINED:
                    raise IntakeError(f"mail {dismiss_id} is not in the quarantine; "
                                      f"`intake quarantine` lists it")
                case_store.record_event(session, at=app.clock(), kind="dismissed", mail=mail,
                                        actor=by, error=(mail.error or "")[:200])
                mail.outcome = MailOutcome.IGNORED_OTHER
            click.echo(f"mail {dismiss_id}: dismissed, recorded as other mail")
            return
        with read_session(app.sessions) as session:
            rows = [{"id": m.id, "folder": m.folder, "uid": m.uid, "attempts": m.attempts,
                     "error": m.error, "fetched_at": view.iso(m.fetched_at, obj.settings.zone),
                     "raw_path": m.raw_path}
                    for m in session.scalars(select(Mail).where(
                        Mail.outcome == MailOutcome.QUARANTINED).order_by(Mail.id))]
    finally:
        app.close()
    _emit(rows, as_json, "quarantine is empty", None,
          lambda row: f"mail {row['id']}  {row['folder']} UID {row['uid']}  "
                      f"attempts {row['attempts']}  {row['error']}")


@cli.command()
@click.argument("mail_id", type=int)
@click.pass_obj
def replay(obj: _Context, mail_id: int) -> None:
    """Process a quarantined mail again (after a fix), and send its reply."""
    app = obj.app()
    try:
        outcome = app.poller.replay(mail_id)
        drained = app.drain()
    finally:
        app.close()
    click.echo(f"mail {mail_id}: {outcome}; sent {drained.sent}")
    if outcome in {MailOutcome.FAILED, MailOutcome.QUARANTINED}:
        raise IntakeError(f"mail {mail_id} failed again; see `intake quarantine`")


@cli.command()
@click.option("--older-than", "days", type=click.IntRange(min=1),
              help="Days since a case or mail was last touched; default retention.days.")
@click.pass_obj
def purge(obj: _Context, days: int | None) -> None:
    """Delete materials and raw mail past retention, keeping cases and history anonymised."""
    from intake.purge import purge as run_purge
    app = obj.app()
    try:
        report = run_purge(app.sessions, app.store, app.clock(), days or obj.settings.retention.days)
    finally:
        app.close()
    click.echo(f"purged {report.cases} case(s), {report.mails} mail(s), {report.outbox} sent "
               f"message(s), {report.files} file(s)")


@cli.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only cases with mail since this date.")
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--send-corrections", is_flag=True, help="Send changed cases a corrected reply.")
@click.pass_obj
def reprocess(obj: _Context, since, dry_run: bool, yes: bool, send_corrections: bool) -> None:
    """Run the checks again on stored mail after the rules changed; handle the mails an earlier
    rule dropped as bounces that these rules would answer (each answered once)."""
    from intake.reprocess import dropped_as_bounces, reprocess as run_reprocess
    app = obj.app()
    rules = obj.settings.rules.to_rules()
    since_at = since.replace(tzinfo=obj.settings.zone) if since else None

    def run(apply: bool):
        def bar(ids):
            with click.progressbar(ids, label="re-checking cases", file=sys.stderr) as shown:
                yield from shown
        return run_reprocess(app.sessions, app.store, rules, app.replies, app.clock(),
                             since_at, apply, send_corrections, progress=bar,
                             pictures=app.pictures)
    try:
        dropped = dropped_as_bounces(app.sessions, app.store, rules, obj.settings.own_addresses,
                                     since_at)
        for mail in dropped:
            click.echo(f"mail {mail.mail_id}: recorded as a bounce, now {mail.kind}")
        click.echo(f"{len(dropped)} mail(s) recorded as bounces would be handled again")
        changes = run(apply=False)
        for change in changes:
            click.echo(f"case {change.case_id}: {change.old_status} -> {change.new_status}; missing "
                       f"{'、'.join(change.old_missing) or '-'} -> {'、'.join(change.new_missing) or '-'}"
                       + (f"; read again: {'、'.join(change.facts_changed)}" if change.facts_changed else ""))
        click.echo(f"{len(changes)} case(s) would change")
        if dry_run or not (changes or dropped):
            return
        if not yes and not click.confirm("Apply these changes?", default=False):
            click.echo("nothing changed")
            return
        for mail in dropped:
            click.echo(f"mail {mail.mail_id}: {app.poller.handle_dropped(mail.mail_id)}")
        applied = run(apply=True) if changes else []
        drained = app.drain()
        click.echo(f"{len(dropped)} mail(s) handled again; {len(applied)} case(s) updated; "
                   f"sent {drained.sent} message(s)")
    finally:
        app.close()


@cli.command()
@click.pass_obj
def migrate(obj: _Context) -> None:
    """Bring the database schema to this version (back it up first)."""
    from intake.db import make_engine, migrate as upgrade
    engine = make_engine(obj.settings.database.url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    click.echo(f"database schema: {before or 'empty'} -> {after}" if before != after
               else f"database schema already at {after}")


@cli.command()
@click.pass_obj
def run(obj: _Context) -> None:
    """The daemon: poll, send and make the daily digest on schedule until SIGTERM/SIGINT."""
    from intake.daemon import Daemon
    from intake.template_check import check_configured_templates
    app = obj.app()
    try:
        # A broken template stops the start, not the first student's reply.
        check_configured_templates(obj.settings, renderer(obj.settings))
    except IntakeError:
        app.close()
        raise
    sys.exit(Daemon(app).run())


@cli.command()
@click.option("--dry-run", is_flag=True, help="Write the digest to --out instead of sending it.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("digest-preview"), show_default=True,
              help="Where --dry-run writes the .eml and HTML preview.")
@click.option("--date", "date", help="The date the digest is labelled with (YYYY-MM-DD); "
              "default today in schedule.timezone.")
@click.option("--scheduled", is_flag=True,
              help="Act as the daily scheduled run: at most one per date, whichever worker is first.")
@click.option("--resend", "resend_id", type=int, help="Send an earlier digest again, verbatim.")
@click.option("--remind", is_flag=True,
              help="Instead of the digest, send staff (digest.cc) today's one reminder of the cases "
                   "waiting for approval; the daemon does it digest.remind_before minutes before "
                   "digest.time.")
@click.pass_obj
def digest(obj: _Context, dry_run: bool, out_dir: Path, date: str | None, scheduled: bool,
           resend_id: int | None, remind: bool) -> None:
    """Send the digest of newly complete (and, by default, approved) cases to the office now."""
    if date is not None and not _valid_date(date):
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date")
    app = obj.app()
    try:
        if remind:
            listed = app.digests.remind(date)
            drained = app.drain()
            click.echo(f"审核提醒：列出 {listed} 个等待审核的登记；已发送 {drained.sent}" if listed else
                       "审核提醒：没有等待审核的登记，或今天的提醒已经发过")
            return
        if resend_id is not None:
            count = app.digests.resend(resend_id)
            drained = app.drain()
            click.echo(f"digest {resend_id}: {count} part(s) queued again; sent {drained.sent}")
            return
        result = app.digests.run(date=date, scheduled=scheduled,
                                 dry_run_to=out_dir if dry_run else None)
        if result.skipped:
            click.echo(f"no digest: {result.skipped}")
            if not dry_run:
                # An earlier digest's parts may still wait in the outbox (e.g. after a crash).
                drained = app.drain()
                if drained.sent or drained.retrying:
                    click.echo(f"outbox: sent {drained.sent}, waiting {drained.retrying}")
            return
        if dry_run:
            click.echo(f"dry run: {result.forwarded} case(s), {result.held_back} held back, "
                       f"{result.parts} part(s); written to {out_dir} (nothing sent, nothing marked)")
            return
        drained = app.drain()
        click.echo(f"digest {result.digest_id}: {result.forwarded} case(s), {result.held_back} held "
                   f"back, {result.parts} part(s); sent {drained.sent}, waiting {drained.retrying}"
                   + (f"; {result.waiting} 个登记等待审核" if result.waiting else ""))
    finally:
        app.close()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of lines.")
@click.pass_obj
def digests(obj: _Context, as_json: bool) -> None:
    """The digests made so far: date, parts, recipients, cases and whether they went out."""
    from intake.digest_list import list_digests
    app = obj.app(read_only=True)
    try:
        rows = list_digests(app.sessions, obj.settings.zone)
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no digests yet")
    for row in rows:
        click.echo(f"digest {row['id']} {row['date']} made {row['made_at']}"
                   f"{' (scheduled)' if row['scheduled'] else ''}: {row['cases']} case(s), "
                   f"{row['held_back']} held back, {row['parts']} part(s) to "
                   f"{', '.join(row['recipients'])}; {row['status']}")


def _valid_date(text: str) -> bool:
    import datetime as dt
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


@cli.command("check-config")
@click.pass_obj
def check_config(obj: _Context) -> None:
    """Validate the configuration and try the IMAP and SMTP logins."""
    from intake.template_check import check_configured_templates
    settings = obj.settings
    sample = check_configured_templates(settings, renderer(settings))
    click.echo(f"config {obj.config_path}: valid; every template renders")
    click.echo(f"sample reply (incomplete submission):\n  Subject: {sample.subject}\n"
               + "\n".join(f"  {line}" for line in sample.text.strip().splitlines()))
    mailbox = Mailbox(mailbox_endpoint(settings))
    mailbox.connect()
    try:
        for folder in settings.mailbox.folders:
            status = mailbox.select(folder)
            click.echo(f"IMAP {settings.mailbox.host}: folder {folder!r} ok "
                       f"(UIDVALIDITY {status.uidvalidity})")
    finally:
        mailbox.close()
    try:
        with smtp_connection(smtp_endpoint(settings)):
            pass
    except SmtpUnavailable as err:
        raise IntakeError(f"SMTP {settings.smtp.host}:{settings.smtp.port}: {err}") from err
    click.echo(f"SMTP {settings.smtp.host}: login ok")


def main(argv: list[str] | None = None) -> None:
    # What the imports made lives as long as the process: the collector need not walk it again
    # in every full collection (a poll of 100 submissions spent half its 0.1 s of GC on that).
    gc.freeze()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Their debug output quotes protocol traffic and message contents: personal data.
    for noisy in ("imapclient", "mailparser", "PIL", "apscheduler.executors", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        cli.main(args=argv, prog_name="intake", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except IntakeError as err:
        click.echo(f"intake: {err}", err=True)
        sys.exit(err.exit_code)
    except jinja2.TemplateError as err:
        # An operator's template broke while a command rendered it: say where, no traceback.
        from intake.template_check import describe_template_error
        click.echo(f"intake: {describe_template_error(err)}", err=True)
        sys.exit(ConfigError.exit_code)
    except SQLAlchemyError as err:
        click.echo(f"intake: database error: {type(err).__name__}", err=True)
        sys.exit(1)


from intake.staff_cli import case_reopen as _case_reopen  # noqa: E402
from intake.staff_cli import staff as _staff_group, web as _web_command  # noqa: E402

cli.add_command(_staff_group)
cli.add_command(_web_command)
case.add_command(_case_reopen)
