"""Benchmark: `intake poll` over N realistic submissions (about 650 KB each: five phone-photo-sized
JPEGs in a zip) on a throwaway Dovecot and SMTP capture on loopback, side by side with

- the floor: one IMAP FETCH pass over every mail, one standard-library MIME parse each and reading
  every zip member, nothing else;
- getmail6 retrieving the same mails over IMAP into a Maildir (a program that only copies mail);

then the idle cost: a poll of a folder whose mails were all handled and nothing is new, with
`--idle` handled mails (10,000 by default) against one with 100.

    python -m tests.support.bench [N] [sqlite|postgresql] [--idle COUNT] [--rounds R]

The floor and `intake poll` alternate R times (3 by default), each poll on a fresh database, and
the medians are printed: on shared cores the machine's speed drifts by 20% and more within
minutes, and a ratio is only meaningful between runs made side by side.

Not a timed test: the numbers depend on the machine and on what else runs on it, so compare the
ratios printed by one run. To see where `intake poll` spends its time, set INTAKE_BENCH_PROFILE to
a file (cProfile of the poll), or INTAKE_BENCH_WRAP to a command that runs it, e.g.
`py-spy record --idle -f raw -o /tmp/poll.txt --`.
"""
from __future__ import annotations

import argparse
import compileall
import email
import io
import os
import pwd
import smtplib
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient
from PIL import Image

from intake.fetch.mailbox import quiet_imaplib
from tests.support import builders as b
from tests.support.dovecot import PASSWORD, Dovecot
from tests.support.servers import drop_postgres_schema, postgres_schema, throwaway_servers, write_config
from tests.support.smtp_capture import SmtpCapture

REPO = Path(__file__).resolve().parents[2]
_FETCH_BATCH = 25


def _photo() -> bytes:
    # Smooth-ish noise: a phone screenshot of about 100 KB, like the field notes' 650 KB mails.
    noise = Image.frombytes("RGB", (80, 60), os.urandom(80 * 60 * 3)).resize((1080, 810))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=55)
    return buffer.getvalue()


def _deliver_many(dovecot: Dovecot, user: str, mails) -> None:
    """Deliver over one LMTP session, as a busy mail server does."""
    with smtplib.LMTP("127.0.0.1", dovecot.lmtp_port) as lmtp:
        for raw in mails:
            lmtp.sendmail("student@example.test", [user], raw)


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float = 0.0
    output: str = ""
    cpu_seconds: float = 0.0  # user and system, with the children it waited for


def _child_with_rss(command: list[str], env: dict[str, str] | None = None) -> Run:
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    # The child's stderr is small (warnings only); reading it after wait4 cannot deadlock below
    # the pipe buffer, and wait4 is the only way to get this one child's peak memory.
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    err = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} failed ({process.returncode}):\n{err[-3000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, err, usage.ru_utime + usage.ru_stime)


def floor(dovecot: Dovecot, user: str) -> tuple[float, int]:
    """FETCH every mail (in batches), parse each once, read every zip member: the least any
    program that checks these mails must do."""
    started = time.monotonic()
    members = 0
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
        quiet_imaplib(client)  # the floor fetches as cheaply as intake does
        client.login(user, PASSWORD)
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        for start in range(0, len(uids), _FETCH_BATCH):
            response = client.fetch(uids[start:start + _FETCH_BATCH], ["BODY.PEEK[]"])
            for data in response.values():
                message = email.message_from_bytes(data[b"BODY[]"])
                for part in message.walk():
                    if part.get_filename() and part.get_filename().endswith(".zip"):
                        with zipfile.ZipFile(io.BytesIO(part.get_payload(decode=True))) as archive:
                            for info in archive.infolist():
                                archive.read(info)
                                members += 1
    return time.monotonic() - started, members


def getmail6(dovecot: Dovecot, user: str, folder: Path) -> Run:
    """getmail6 copies every mail of INBOX into a Maildir, over IMAP, leaving the server as it is."""
    maildir = folder / "Maildir"
    # getmail refuses to deliver as root; as the tests run as root, it delivers as `mail`.
    account = pwd.getpwnam("mail") if os.geteuid() == 0 else None
    for sub in ("", "cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
        if account:
            os.chown(maildir / sub, account.pw_uid, account.pw_gid)
    rc = folder / "getmailrc"
    rc.write_text(f"""[retriever]
type = SimpleIMAPRetriever
server = 127.0.0.1
port = {dovecot.imap_port}
username = {user}
password = {PASSWORD}
mailboxes = ("INBOX",)

[destination]
type = Maildir
path = {maildir}/
{"user = mail" if account else ""}

[options]
read_all = true
delete = false
verbose = 0
message_log_verbose = false
""", encoding="utf-8")
    run = _child_with_rss([str(Path(sys.executable).parent / "getmail"), "--rcfile", str(rc),
                           "--getmaildir", str(folder)])
    copied = len(list((maildir / "new").iterdir()))
    run.output = f"{copied} mails copied"
    return run


def intake_poll(config: Path) -> Run:
    env = {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": PASSWORD}
    profile = os.environ.get("INTAKE_BENCH_PROFILE")
    prefix = [sys.executable, "-m", "cProfile", "-o", profile] if profile else [sys.executable]
    if os.environ.get("INTAKE_BENCH_WRAP"):
        prefix = [*os.environ["INTAKE_BENCH_WRAP"].split(), sys.executable]
    return _child_with_rss([*prefix, "-m", "intake", "--config", str(config), "poll"], env)


def _database(root: Path, name: str, database: str, schemas: list[str]) -> str:
    if database == "postgresql":
        url, schema = postgres_schema()
        schemas.append(schema)
        return url
    return f"sqlite:///{root}/{name}.db"


def _config(root: Path, name: str, dovecot: Dovecot, smtp: SmtpCapture, user: str, url: str) -> Path:
    return write_config(root / f"{name}.toml", dovecot=dovecot, smtp=smtp, user=user, db_url=url,
                        storage=root / f"storage-{name}", folders=("INBOX",),
                        extra='[logging]\nlevel = "WARNING"\n[pictures]\nread = false\n')


def _small_mail(index: int) -> bytes:
    # Everyday department mail, not about the submissions: recorded and left alone, no reply.
    return b.mail(sender=f"t{index}@example.test", subject=f"会议通知 {index}", body="下周一开会。")


def idle_check(root: Path, dovecot: Dovecot, smtp: SmtpCapture, database: str, handled: int,
               schemas: list[str], repeats: int = 5) -> list[tuple[int, float, float]]:
    """Folders of 100 and `handled` mails, all handled by a first poll; then polls with nothing
    new, alternating between the two so that the machine's changing load hits both alike.

    Returns (mails, seconds the first poll took to handle them, median seconds of an idle poll).
    """
    configs, firsts = {}, {}
    for count in (100, handled):
        user = f"idle{count}"
        _deliver_many(dovecot, user, (_small_mail(i) for i in range(count)))
        configs[count] = _config(root, user, dovecot, smtp, user,
                                 _database(root, user, database, schemas))
        firsts[count] = intake_poll(configs[count]).seconds
    idle: dict[int, list[float]] = {count: [] for count in configs}
    for _ in range(repeats):
        for count, config in configs.items():
            idle[count].append(intake_poll(config).seconds)
    return [(count, firsts[count], statistics.median(idle[count])) for count in configs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=300)
    parser.add_argument("database", nargs="?", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--idle", type=int, default=10_000,
                        help="handled mails in the idle folder (0: skip the idle check)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="floor and intake poll alternate this many times (each poll on a "
                             "fresh database); the medians are printed")
    args = parser.parse_args(argv)
    # As installed: pip compiles a package's modules as it installs them, and an editable install
    # at their first import, unless PYTHONDONTWRITEBYTECODE is set (each poll then compiled ours
    # anew, about 0.1 s).
    for package in ("intake", "checks", "notifier"):
        compileall.compile_dir(REPO / package, quiet=1)
    schemas: list[str] = []
    with throwaway_servers("jkb-bench-") as (root, dovecot, smtp):
        try:
            return _bench(root, dovecot, smtp, args, schemas)
        finally:
            for schema in schemas:
                drop_postgres_schema(schema)


def _bench(root: Path, dovecot: Dovecot, smtp: SmtpCapture, args, schemas: list[str]) -> int:
    photos = [_photo() for _ in range(5)]
    archive = b.windows_gbk_zip({f"{item}.jpg": photos[i] for i, item in enumerate(b.ITEMS)})
    started = time.monotonic()
    _deliver_many(dovecot, "bench", (
        b.mail(sender=f"s{index}@example.test", subject=f"学生{index}+物理系+健康宝弹窗",
               attachments=[("材料.zip", archive)]) for index in range(args.count)))
    print(f"{args.count} submissions of about {len(archive) * 4 / 3 / 1024:.0f} KB delivered in "
          f"{time.monotonic() - started:.1f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    floor(dovecot, "bench")  # warms Dovecot's index and the page cache for every contender
    copied = getmail6(dovecot, "bench", root / "getmail")
    # What getmail6 wrote is still on its way to the disk; a poll's first filesystem sync would
    # otherwise wait for it (and each poll's database and files, once written, for the next).
    os.sync()
    # The machine's speed drifts (shared cores): floor and poll alternate, and each ratio is of a
    # floor and the poll right after it.
    floors, polls = [], []
    for round_ in range(max(1, args.rounds)):
        floor_seconds, members = floor(dovecot, "bench")
        name = f"bench{round_}"
        config = _config(root, name, dovecot, smtp, "bench",
                         _database(root, name, args.database, schemas))
        sent_before = len(smtp.messages)
        floors.append(floor_seconds)
        polls.append(intake_poll(config))
        os.sync()
        replies = len(smtp.messages) - sent_before
        if replies != args.count:
            break
    ours = sorted(polls, key=lambda run: run.seconds)[len(polls) // 2]
    floor_seconds = statistics.median(floors)
    ratio = statistics.median(run.seconds / seconds for run, seconds in zip(polls, floors))
    rounds = f" (median of {len(polls)})" if len(polls) > 1 else ""
    print(f"floor (FETCH + one MIME parse + {members} zip members read){rounds}: "
          f"{floor_seconds:6.1f} s")
    print(f"getmail6 into a Maildir ({copied.output}):{'':>12}{copied.seconds:6.1f} s"
          f"   peak RSS {copied.peak_rss_mb:.0f} MB   {copied.cpu_seconds:.1f} s CPU")
    print(f"intake poll on {args.database} ({replies} replies sent){rounds}:{'':>6}"
          f"{ours.seconds:6.1f} s   peak RSS {max(run.peak_rss_mb for run in polls):.0f} MB"
          f"   {args.count / ours.seconds:.1f} mails/s   {ours.cpu_seconds:.1f} s CPU")
    print(f"ratios: ours/floor {ratio:.2f}x (each poll against the floor just before it: "
          f"{', '.join(f'{run.seconds / seconds:.2f}' for run, seconds in zip(polls, floors))}), "
          f"ours/getmail6 {ours.seconds / copied.seconds:.2f}x, "
          f"getmail6/floor {copied.seconds / floor_seconds:.2f}x")
    if replies != args.count:
        print(f"WARNING: {replies} replies for {args.count} submissions", file=sys.stderr)
        return 1
    if args.idle:
        (small, small_first, small_idle), (large, large_first, large_idle) = idle_check(
            root, dovecot, smtp, args.database, args.idle, schemas)
        print(f"idle poll, nothing new: {small} handled mails {small_idle:.2f} s, {large} handled "
              f"mails {large_idle:.2f} s, ratio {large_idle / small_idle:.2f}x "
              f"(first polls handled them in {small_first:.1f} s and {large_first:.1f} s)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
