"""TLS as the real 126.com mailbox uses it: implicit TLS (993/465) and STARTTLS, verified against
a CA the operator names, with SMTP login; and a clear failure when the certificate is not trusted."""
from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support import builders as b
from tests.support.dovecot import Dovecot
from tests.support.harness import Harness
from tests.support.smtp_capture import SmtpCapture

STUDENT = "zhangwei@example.test"


@pytest.fixture(scope="module")
def certificate():
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = Path(tempfile.mkdtemp(prefix="jkb-tls-"))
    folder.chmod(0o755)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    yield cert, key
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_dovecot(certificate):
    root = Path(tempfile.mkdtemp(prefix="jkb-dovecot-tls-"))
    root.chmod(0o755)
    server = Dovecot.start(root, tls=certificate)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_poll_and_reply_over_tls_with_login(tls_dovecot, certificate, mailbox_user, sqlite_url, tmp_path,
                                            env_password, monkeypatch, security):
    smtp = SmtpCapture(tls=security, context=_server_context(certificate),
                       credentials=(f"{mailbox_user}@example.test", "smtp-code")).start()
    try:
        world = Harness(dovecot=tls_dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                        tmp_path=tmp_path)
        imap_port = tls_dovecot.imaps_port if security == "ssl" else tls_dovecot.imap_port
        text = world.config.read_text()
        text = text.replace(f"port = {tls_dovecot.imap_port}", f"port = {imap_port}")
        text = text.replace('security = "none"', f'security = "{security}"\nca_file = "{certificate[0]}"')
        text = text.replace(f'sender = "{mailbox_user}@example.test"',
                            f'sender = "{mailbox_user}@example.test"\nusername = "{mailbox_user}@example.test"\n'
                            f'password_env = "INTAKE_TEST_SMTP_PASSWORD"')
        world.config.write_text(text)
        monkeypatch.setenv("INTAKE_TEST_SMTP_PASSWORD", "smtp-code")

        checked = world.cli("check-config", env={"INTAKE_TEST_SMTP_PASSWORD": "smtp-code"})
        assert checked.returncode == 0, checked.stderr
        world.deliver(b.mail(sender=STUDENT, attachments=[("张伟+物理系+健康宝弹窗.zip",
                                                            b.utf8_zip(b.five_pictures()))]))
        report, drained = world.poll()
        assert report.ok and drained.sent == 1
        assert len(smtp.to(STUDENT)) == 1

        untrusted = world.config.read_text().replace(f'ca_file = "{certificate[0]}"\n', "")
        world.config.write_text(untrusted)
        refused = world.cli("check-config", env={"INTAKE_TEST_SMTP_PASSWORD": "smtp-code"})
        assert refused.returncode == 3
        assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr or "certificate verify failed" in refused.stderr
    finally:
        smtp.stop()


def test_wrong_smtp_code_keeps_replies_waiting(tls_dovecot, certificate, mailbox_user, sqlite_url,
                                               tmp_path, env_password, monkeypatch):
    monkeypatch.setenv("INTAKE_TEST_SMTP_PASSWORD", "wrong-code")
    smtp = SmtpCapture(tls="ssl", context=_server_context(certificate),
                       credentials=(f"{mailbox_user}@example.test", "right-code")).start()
    try:
        world = Harness(dovecot=tls_dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                        tmp_path=tmp_path)
        text = world.config.read_text()
        text = text.replace('[smtp]\nhost = "127.0.0.1"', '[smtp]\nhost = "127.0.0.1"\nca_file = "%s"' % certificate[0])
        text = text.replace(f'port = {smtp.port}\nsecurity = "none"', f'port = {smtp.port}\nsecurity = "ssl"')
        text = text.replace(f'sender = "{mailbox_user}@example.test"',
                            f'sender = "{mailbox_user}@example.test"\nusername = "{mailbox_user}@example.test"\n'
                            f'password_env = "INTAKE_TEST_SMTP_PASSWORD"')
        world.config.write_text(text)
        world.deliver(b.mail(sender=STUDENT, attachments=[("张伟+物理系+健康宝弹窗.zip",
                                                            b.utf8_zip(b.five_pictures()))]))
        result = world.cli("poll", env={"INTAKE_TEST_SMTP_PASSWORD": "wrong-code"})
        assert result.returncode == 0, result.stderr
        assert "待重发 1 封" in result.stdout and "wrong-code" not in result.stderr
        assert smtp.messages == []
        [row] = world.outbox()
        assert row.status == "pending" and "Authentication" in row.last_error
    finally:
        smtp.stop()
