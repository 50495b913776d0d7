"""What the operator sees when the mailbox refuses the login or lacks a configured folder,
against the real Dovecot: the documented exit code and the server's reply as text."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support import builders as b
from tests.support.dovecot import Dovecot
from tests.support.harness import Harness

LOGIN_REFUSED, CONFIG_ERROR = 3, 2


# These worlds run on SQLite only.
pytestmark = pytest.mark.sqlite_only


@pytest.mark.parametrize("command", ["poll", "check-config"])
def test_a_refused_login_exits_3_with_the_server_reply_as_text(world, command):
    result = world.cli(command, env={"INTAKE_TEST_IMAP_PASSWORD": "the-web-password"})
    assert result.returncode == LOGIN_REFUSED, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "IMAP login refused" in last and "Authentication failed" in last
    assert "b'" not in result.stderr and 'b"' not in result.stderr
    assert "the-web-password" not in result.stderr + result.stdout
    assert "授权码" not in last  # not a NetEase server: no NetEase advice
    assert "Traceback" not in result.stderr


def test_a_refused_login_at_a_coremail_server_says_imap_needs_the_authorization_code(
        smtp, mailbox_user, sqlite_url, tmp_path, env_password):
    root = Path(tempfile.mkdtemp(prefix="jkb-coremail-"))
    coremail = Dovecot.start(root, greeting="Coremail System IMap Server Ready")
    try:
        world = Harness(dovecot=coremail, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                        tmp_path=tmp_path)
        result = world.cli("poll", env={"INTAKE_TEST_IMAP_PASSWORD": "the-web-password"})
    finally:
        coremail.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert result.returncode == LOGIN_REFUSED, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "授权码" in last and "not the web-mail password" in last and "mailbox.password_env" in last


@pytest.mark.parametrize("command", ["poll", "check-config"])
def test_a_folder_the_server_lacks_exits_2_listing_the_folders_it_has(world, command):
    world.deliver(b.mail(sender="someone@example.test", subject="hello"), folder="Junk")
    world.config.write_text(world.config.read_text().replace(
        'folders = ["INBOX", "Junk"]', 'folders = ["INBOX", "垃圾箱"]'))
    result = world.cli(command)
    assert result.returncode == CONFIG_ERROR, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "mailbox.folders" in last and "'垃圾箱'" in last
    assert "'INBOX'" in last and "'Junk'" in last
    assert "Traceback" not in result.stderr
