"""One test's world: a fresh mailbox on the shared Dovecot, an SMTP capture, a database, and
the daemon built from a real config file through the composition root."""
from __future__ import annotations

import email.parser
import email.policy
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import select

from intake.app import App, build_daemon
from intake.models import Case, Mail, Outbox, Reading
from intake.settings import load_settings
from tests.support.dovecot import PASSWORD, Dovecot
from tests.support.servers import write_config
from tests.support.smtp_capture import SmtpCapture

REPO = Path(__file__).resolve().parents[2]


class Harness:
    def __init__(self, *, dovecot: Dovecot, smtp: SmtpCapture, user: str, db_url: str,
                 tmp_path: Path, extra_config: str = "", clock=None, reader=None,
                 forward_unapproved: bool = True, department_config: str = ""):
        self.dovecot, self.smtp, self.user, self.db_url = dovecot, smtp, user, db_url
        self.address = f"{user}@example.test"
        self.storage = tmp_path / "storage"
        self.config = write_config(tmp_path / "intake.toml", dovecot=dovecot, smtp=smtp,
                                   user=user, db_url=db_url, storage=self.storage,
                                   extra=extra_config, read_pictures=reader is not None,
                                   forward_unapproved=forward_unapproved,
                                   department=department_config)
        self.clock = clock
        self.reader = reader  # the test session's one OCR engine, when pictures are read
        self.deliver(b"From: postmaster@example.test\r\nSubject: mailbox created\r\n"
                     b"Auto-Submitted: auto-generated\r\n\r\nhello\r\n")

    # --- the mailbox ---
    def deliver(self, raw: bytes, envelope_from: str = "student@example.test",
                folder: str | None = None) -> None:
        self.dovecot.deliver(self.user, raw, envelope_from=envelope_from, folder=folder)

    def imap(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.dovecot.imap_port, ssl=False)
        client.login(self.user, PASSWORD)
        return client

    def append(self, raw: bytes, when: datetime, folder: str = "INBOX") -> None:
        client = self.imap()
        try:
            client.append(folder, raw, msg_time=when)
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, tuple]:
        client = self.imap()
        try:
            client.select_folder(folder, readonly=True)
            return client.get_flags(client.search())
        finally:
            client.logout()

    # --- the daemon ---
    def app(self) -> App:
        settings = load_settings(self.config)
        return build_daemon(settings, **({"clock": self.clock} if self.clock else {}),
                         **({"reader": self.reader} if self.reader else {}))

    def poll(self):
        app = self.app()
        try:
            return app.poll_once()
        finally:
            app.close()

    def cli(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        environment = {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": PASSWORD, **(env or {})}
        return subprocess.run([sys.executable, "-m", "intake", "--config", str(self.config), *args],
                              capture_output=True, text=True, env=environment, cwd=REPO, timeout=300)

    def start_daemons(self, count: int) -> list[subprocess.Popen]:
        """`count` `intake run` on this world's config, their stderr (the log) captured."""
        environment = {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": PASSWORD}
        return [subprocess.Popen([sys.executable, "-m", "intake", "--config", str(self.config), "run"],
                                 cwd=REPO, env=environment, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True) for _ in range(count)]

    @staticmethod
    def stop_daemons(daemons: list[subprocess.Popen]) -> list[str]:
        """SIGTERM to each, as systemd stops them; their logs once they have exited."""
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        return [daemon.communicate(timeout=120)[1] for daemon in daemons]

    def cases_json(self) -> list[dict]:
        result = self.cli("cases", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    # --- what happened ---
    def replies_to(self, address: str):
        return self.smtp.to(address)

    def mails(self) -> list[Mail]:
        return self._all(Mail)

    def cases(self) -> list[Case]:
        return self._all(Case, lambda case: case.items)

    def outbox(self) -> list[Outbox]:
        return self._all(Outbox)

    def readings(self) -> list[Reading]:
        return self._all(Reading)

    def _all(self, model, load=lambda row: None) -> list:
        """Every row of the table in the order written; `load`: what of each to load with it."""
        app = self.app()
        try:
            with app.sessions() as session:
                found = list(session.scalars(select(model).order_by(model.id)))
                for row in found:
                    load(row)
                return found
        finally:
            app.close()

def has_no_sender_header(raw: bytes) -> bool:
    """The standard library's parser finds neither From nor Sender: there is no address to
    answer, and such a mail goes to the quarantine for staff (issue 26), never answered."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return headers.get("From") is None and headers.get("Sender") is None


def body_text(message) -> str:
    """The plain-text part of a captured reply."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content()


def html_text(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: datetime | None = None):
        self.now = now or datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)
