"""Operating commands: `intake status`, `purge`, `reprocess`, `migrate`, `check-config`."""
from __future__ import annotations

import json
import sys

import click

from intake.app import App, mailbox_endpoint, renderer, smtp_endpoint
from intake.cli.root import Context, cli
from intake.errors import IntakeError
from intake.fetch.mailbox import Mailbox
from intake.staff import labels, view
from notifier.smtp import SmtpUnavailable, smtp_connection


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--stale-polls", default=3, show_default=True,
              help="Poll intervals without a successful poll before it needs attention.")
@click.pass_obj
def status(obj: Context, as_json: bool, stale_polls: int) -> None:
    """Health at a glance; exits 1 when something needs attention (for cron or monitoring)."""
    from dataclasses import asdict

    from intake.ops.status import gather
    with obj.database() as database:
        now = database.clock()
        found = gather(database.sessions, obj.settings, now, stale_polls)
    if as_json:
        click.echo(json.dumps(asdict(found), ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(view.status_lines(found, obj.settings.zone, now)))
    if found.attention:
        sys.exit(1)


@cli.command()
@click.option("--older-than", "days", type=click.IntRange(min=1),
              help="Days since a case or mail was last touched; default retention.days.")
@click.pass_obj
def purge(obj: Context, days: int | None) -> None:
    """Delete materials and raw mail past retention, keeping cases and history anonymised."""
    from intake.ops.purge import purge as run_purge
    with obj.daemon() as app:
        report = run_purge(app.sessions, app.store, app.clock(), days or obj.settings.retention.days)
    click.echo(f"已清理：{report.cases} 个登记、{report.mails} 封来信、{report.outbox} 封已发邮件、"
               f"{report.files} 个文件")


@cli.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only cases with mail since this date.")
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--send-corrections", is_flag=True, help="Send changed cases a corrected reply.")
@click.pass_obj
def reprocess(obj: Context, since, dry_run: bool, yes: bool, send_corrections: bool) -> None:
    """Run the checks again on stored mail after the rules changed; handle the mails an earlier
    rule dropped as bounces that these rules would answer (each answered once)."""
    with obj.daemon() as app:
        _reprocess(obj, app, since, dry_run, yes, send_corrections)


def _reprocess(obj: Context, app: App, since, dry_run: bool, yes: bool, send_corrections: bool) -> None:
    from intake.ops.reprocess import dropped_as_bounces, reprocess as run_reprocess
    rules = obj.settings.submission_rules()
    since_at = since.replace(tzinfo=obj.settings.zone) if since else None

    def run(apply: bool):
        def bar(ids):
            with click.progressbar(ids, label="重新检查登记", file=sys.stderr) as shown:
                yield from shown
        return run_reprocess(app.sessions, app.store, rules, app.replies, app.clock(),
                             since_at, apply, send_corrections, progress=bar,
                             pictures=app.pictures)
    dropped = dropped_as_bounces(app.sessions, app.store, rules, obj.settings.own_addresses,
                                 since_at)
    for mail in dropped:
        click.echo(f"邮件 {mail.mail_id}：曾记为退信，现在看是{labels.label(labels.MAIL_KINDS, mail.kind)}")
    click.echo(f"{len(dropped)} 封曾记为退信的邮件将重新处理")
    changes = run(apply=False)
    for change in changes:
        click.echo(f"登记 {change.case_id}：{labels.label(labels.CASE_STATES, change.old_status)} → "
                   f"{labels.label(labels.CASE_STATES, change.new_status)}；缺少材料 "
                   f"{'、'.join(change.old_missing) or '-'} → {'、'.join(change.new_missing) or '-'}"
                   + (f"；重新读图：{'、'.join(change.facts_changed)}" if change.facts_changed else ""))
    click.echo(f"{len(changes)} 个登记将有变化")
    if dry_run or not (changes or dropped):
        return
    if not yes and not click.confirm("确认执行以上变化？", default=False):
        click.echo("未做任何更改")
        return
    for mail in dropped:
        outcome = app.poller.handle_dropped(mail.mail_id)
        click.echo(f"邮件 {mail.mail_id}：{labels.label(labels.MAIL_OUTCOMES, outcome)}")
    applied = run(apply=True) if changes else []
    drained = app.drain()
    click.echo(f"{len(dropped)} 封邮件已重新处理；{len(applied)} 个登记已更新；"
               f"{view.sent_words(drained)}")


@cli.command()
@click.pass_obj
def migrate(obj: Context) -> None:
    """Bring the database schema to this version (back it up first)."""
    from intake.db.engine import make_engine, migrate as upgrade
    engine = make_engine(obj.settings.database.url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    click.echo(f"database schema: {before or 'empty'} -> {after}" if before != after
               else f"database schema already at {after}")


@cli.command("check-config")
@click.pass_obj
def check_config(obj: Context) -> None:
    """Validate the configuration and try the IMAP and SMTP logins."""
    from intake.ops.template_check import check_configured_templates
    settings = obj.settings
    sample = check_configured_templates(settings, renderer(settings))
    click.echo(f"配置 {obj.config_path}：有效；所有模板都能生成")
    click.echo(f"回复示例（材料未齐）：\n  主题：{sample.subject}\n"
               + "\n".join(f"  {line}" for line in sample.text.strip().splitlines()))
    mailbox = Mailbox(mailbox_endpoint(settings))
    mailbox.connect()
    try:
        for folder in settings.mailbox.folders:
            status = mailbox.select(folder)
            click.echo(f"IMAP {settings.mailbox.host}：文件夹「{folder}」正常"
                       f"（UIDVALIDITY {status.uidvalidity}）")
    finally:
        mailbox.close()
    try:
        with smtp_connection(smtp_endpoint(settings)):
            pass
    except SmtpUnavailable as err:
        raise IntakeError(f"SMTP {settings.smtp.host}:{settings.smtp.port}: {err}") from err
    click.echo(f"SMTP {settings.smtp.host}：登录成功")
