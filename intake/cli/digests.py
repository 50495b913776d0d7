"""`intake digest` (make or resend the digest) and `intake digests` (the digests made)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from intake.cli.root import Context, cli
from intake.staff import labels, view


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
def digest(obj: Context, dry_run: bool, out_dir: Path, date: str | None, scheduled: bool,
           resend_id: int | None, remind: bool) -> None:
    """Send the digest of newly complete (and, by default, approved) cases to the office now."""
    if date is not None and not _valid_date(date):
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date")
    with obj.daemon() as app:
        if remind:
            listed = app.digests.remind(date)
            drained = app.drain()
            click.echo(f"审核提醒：列出 {listed} 个等待审核的登记；已发送 {drained.sent}" if listed else
                       "审核提醒：没有等待审核的登记，或今天的提醒已经发过")
            return
        if resend_id is not None:
            count = app.digests.resend(resend_id)
            drained = app.drain()
            click.echo(f"汇总 {resend_id}：{count} 封已重新排队；{view.sent_words(drained)}")
            return
        result = app.digests.run(date=date, scheduled=scheduled,
                                 dry_run_to=out_dir if dry_run else None)
        if result.skipped:
            click.echo(f"未生成汇总：{result.skipped}")
            if not dry_run:
                # An earlier digest's parts may still wait in the outbox (e.g. after a crash).
                drained = app.drain()
                if drained.sent or drained.retrying:
                    click.echo(f"待发邮件：{view.sent_words(drained)}")
            return
        if dry_run:
            click.echo(f"试运行：{_counts(result.forwarded, result.held_back, result.parts)}；"
                       f"已写入 {out_dir}（没有发送，也没有标记为已报送）")
            return
        drained = app.drain()
        click.echo(f"汇总 {result.digest_id}：{_counts(result.forwarded, result.held_back, result.parts)}；"
                   f"{view.sent_words(drained)}"
                   + (f"；{result.waiting} 个登记等待审核" if result.waiting else ""))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of lines.")
@click.pass_obj
def digests(obj: Context, as_json: bool) -> None:
    """The digests made so far: date, parts, recipients, cases and whether they went out."""
    from intake.digest.listing import list_digests
    with obj.database() as database:
        rows = list_digests(database.sessions, obj.settings.zone)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("还没有汇总")
    for row in rows:
        click.echo(f"汇总 {row['id']}（{row['date']}），{'定时' if row['scheduled'] else '手动'}生成于 "
                   f"{view.shown(row['made_at'], obj.settings.zone)}："
                   f"{_counts(row['cases'], row['held_back'], row['parts'])}，"
                   f"收件人 {'、'.join(row['recipients']) or '-'}；"
                   f"{labels.label(labels.DIGEST_STATES, row['status'])}")


def _counts(forwarded: int, held_back: int, parts: int) -> str:
    """A digest's numbers as staff read them."""
    return f"报送 {forwarded} 个登记，因核酸超时暂缓 {held_back} 个，共 {parts} 封邮件"


def _valid_date(text: str) -> bool:
    import datetime as dt
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10
