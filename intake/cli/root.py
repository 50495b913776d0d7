"""The root of `intake`: the command group, the context every command gets, what they share.

The commands live in one module per area (cases, mail, digests, ops, staff) and import this one;
`intake.cli` imports them all. Commands that only read open the database alone
(`Context.database()`); the others build the daemon (`Context.daemon()`).
"""
from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import click
import jinja2
from sqlalchemy.exc import SQLAlchemyError

from intake.app import App, Database, opened_database, running_daemon
from intake.errors import ConfigError, IntakeError
from intake.settings import Settings, load_settings

log = logging.getLogger("intake")


class Context:
    def __init__(self, config_path: Path):
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def daemon(self) -> AbstractContextManager[App]:
        """The whole daemon (store, mailbox, pools), closed when the block ends."""
        return running_daemon(self.settings)

    def database(self) -> AbstractContextManager[Database]:
        """The database only: for commands that read."""
        return opened_database(self.settings)


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=lambda: os.environ.get("INTAKE_CONFIG", "intake.toml"), show_default="INTAKE_CONFIG or intake.toml",
              help="The TOML configuration file.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """健康宝弹窗 intake: poll the department mailbox, check submissions, reply, forward."""
    ctx.obj = Context(config_path)


def current() -> Context:
    context = click.get_current_context().find_object(Context)
    if context is None:
        raise click.UsageError("run as a subcommand of `intake`")
    return context


def emit(rows: list[dict], as_json: bool, empty: str, header: str | None, line) -> None:
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


def by_option() -> Callable:
    return click.option("--by", default=lambda: os.environ.get("USER") or "staff",
                        show_default="$USER", help="Who is acting, for the history.")


def staff_action(action: Callable[[App], str]) -> None:
    """Run one staff action on the daemon, say what it did, and send what it queued."""
    with current().daemon() as app:
        click.echo(action(app))
        app.drain()


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
        click.echo("已中止", err=True)
        sys.exit(130)
    except IntakeError as err:
        click.echo(f"intake: {err}", err=True)
        sys.exit(err.exit_code)
    except jinja2.TemplateError as err:
        # An operator's template broke while a command rendered it: say where, no traceback.
        from intake.ops.template_check import describe_template_error
        click.echo(f"intake: {describe_template_error(err)}", err=True)
        sys.exit(ConfigError.exit_code)
    except SQLAlchemyError as err:
        click.echo(f"intake: database error: {type(err).__name__}", err=True)
        sys.exit(1)
