"""A throwaway Dovecot on loopback: IMAP for the daemon, LMTP to deliver mail as a server does."""
from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "secret-授权码".encode().hex()  # any user logs in with this (static passdb)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Dovecot did not open port {port}")


_CONFIG = """\
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
imap_id_log = *
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
lda_mailbox_autocreate = yes
default_internal_user = {user}
default_login_user = {user}
{capability}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = {imaps}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
namespace inbox {{
  inbox = yes
  mailbox Junk {{
    special_use = \\Junk
    auto = create
  }}
}}
"""


@dataclass
class Dovecot:
    root: Path
    imap_port: int
    lmtp_port: int
    config: Path
    imaps_port: int = 0

    @classmethod
    def start(cls, root: Path, capability: str | None = None,
              tls: tuple[Path, Path] | None = None, greeting: str | None = None) -> "Dovecot":
        """With `tls` (certificate, key): STARTTLS on the IMAP port and implicit TLS on imaps."""
        if not shutil.which("dovecot"):
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd)")
        account = pwd.getpwnam("mail")
        for sub in ("run", "state", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chown(root / "home", account.pw_uid, account.pw_gid)
        os.chmod(root, 0o755)
        imap_port, lmtp_port, imaps_port = free_port(), free_port(), free_port()
        ssl_setting = f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}" if tls else "ssl = no"
        config = root / "dovecot.conf"
        config.write_text(_CONFIG.format(
            root=root, uid=account.pw_uid, gid=account.pw_gid, user="dovenull",
            password=PASSWORD, imap_port=imap_port, lmtp_port=lmtp_port, imaps_port=imaps_port,
            imaps="yes" if tls else "no", ssl=ssl_setting,
            capability="\n".join(filter(None, [
                f"imap_capability = {capability}" if capability else "",
                f"login_greeting = {greeting}" if greeting else ""]))))
        subprocess.run(["dovecot", "-c", str(config)], check=True)
        server = cls(root, imap_port, lmtp_port, config, imaps_port)
        _wait_for_port(imap_port)
        _wait_for_port(lmtp_port)
        return server

    def stop(self) -> None:
        subprocess.run(["doveadm", "-c", str(self.config), "stop"], check=False,
                       capture_output=True)

    def deliver(self, user: str, raw: bytes, envelope_from: str = "student@example.test",
                folder: str | None = None) -> None:
        """Deliver like a mail server (LMTP adds Return-Path and Delivered-To)."""
        rcpt = f"{user}+{folder}" if folder else user
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            lmtp.sendmail(envelope_from, [rcpt], raw)

    def kick(self, user: str) -> None:
        """Drop the user's IMAP sessions, as a provider does when it restarts a node."""
        subprocess.run(["doveadm", "-c", str(self.config), "kick", user], check=False,
                       capture_output=True)

    def restart(self) -> None:
        self.stop()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.imap_port), timeout=0.5):
                    time.sleep(0.1)
            except OSError:
                break
        subprocess.run(["dovecot", "-c", str(self.config)], check=True)
        _wait_for_port(self.imap_port)
        _wait_for_port(self.lmtp_port)

    def log_text(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""
