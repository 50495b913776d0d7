"""Benchmark with picture reading on: a burst of N realistic submissions (three screenshots and two
12 MP phone photos of the printed forms each, all different) handled, read, recorded and replied to
by `intake poll`, with the reader processes the config asks for; then the latency of a submission
that arrives while `intake run` idles.

    python -m tests.support.bench_reading [N] [--processes P ...] [--poll-seconds S]

Each run prints seconds per submission and how many cores were busy on average (CPU seconds of
the poll and its reader processes over the wall time). Not a timed test: compare within one run.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.support import builders as b
from tests.support import drawn
from tests.support.bench import REPO, _deliver_many
from tests.support.bench_ocr import twelve_megapixels
from tests.support.dovecot import PASSWORD
from tests.support.servers import throwaway_servers, write_config

BEIJING = ZoneInfo("Asia/Shanghai")
SURNAMES = "张王李刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧"
GIVEN = "伟芳娜洋静磊敏勇杰霞涛明超秀英华平刚桂兰"


def _name(index: int) -> str:
    return SURNAMES[index % len(SURNAMES)] + GIVEN[(index // len(SURNAMES)) % len(GIVEN)]


def _submission(index: int, sampled: datetime) -> bytes:
    name = _name(index)
    files = drawn.five(sampled - timedelta(minutes=index), name=name, shown_name=name[0] + "*")
    # The two printed forms photographed with a phone, full size.
    files = {key: value for key, value in files.items() if not key.startswith(("情况说明", "承诺书"))}
    files["情况说明.jpg"] = twelve_megapixels(drawn.statement(name))
    files["承诺书.jpg"] = twelve_megapixels(drawn.pledge(name))
    return b.mail(sender=f"s{index}@example.test",
                  attachments=[(f"{name}+物理系+健康宝弹窗.zip", b.utf8_zip(files))])


def _config(root: Path, name: str, dovecot, smtp, processes: int, poll_seconds: int = 60) -> Path:
    return write_config(root / f"{name}.toml", dovecot=dovecot, smtp=smtp, user=name,
                        db_url=f"sqlite:///{root}/{name}.db", storage=root / f"storage-{name}",
                        folders=("INBOX",),
                        extra=f'[logging]\nlevel = "INFO"\n[schedule]\npoll_seconds = {poll_seconds}\n'
                              f"[pictures]\nread = true\nprocesses = {processes}\n")


def _environment() -> dict[str, str]:
    return {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": PASSWORD}


def burst(root: Path, dovecot, smtp, count: int, processes: int, mails: list[bytes]) -> None:
    user = f"burst{processes}"
    _deliver_many(dovecot, user, mails)
    config = _config(root, user, dovecot, smtp, processes)
    before = len(smtp.messages)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "intake", "--config", str(config), "poll"],
                               cwd=REPO, env=_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    log = process.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"intake poll failed:\n{log[-3000:]}")
    replies = len(smtp.messages) - before
    reads = len(re.findall(r"picture job=\d+ read as", log))
    complete = sum(1 for m in smtp.messages[before:] if "五项已全部收到" in _text(m.message))
    cpu = usage.ru_utime + usage.ru_stime  # the poll's and its reader processes' (waited for)
    readers = processes or os.cpu_count()
    print(f"{count} submissions, {readers} reader{'s' if readers > 1 else ''}: {wall:6.1f} s, "
          f"{wall / count:.2f} s per submission, {cpu / wall:.2f} cores busy on average, "
          f"{reads} pictures read, {replies} replies ({complete} say all five arrived), "
          f"peak RSS of the poll {usage.ru_maxrss / 1024:.0f} MB")


def _text(message) -> str:
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else ""


def latency(root: Path, dovecot, smtp, poll_seconds: int, mail: bytes) -> None:
    """`intake run` idles; one submission arrives; how long until its reply is sent."""
    user = "latency"
    _deliver_many(dovecot, user, [b.mail(sender="hello@example.test", subject="你好", body="在吗")])
    config = _config(root, user, dovecot, smtp, 0, poll_seconds)
    daemon = subprocess.Popen([sys.executable, "-m", "intake", "--config", str(config), "run"],
                              cwd=REPO, env=_environment(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(poll_seconds * 2 + 10)  # engines loaded, a first poll done: the daemon idles
        before = len(smtp.messages)
        delivered = time.monotonic()
        _deliver_many(dovecot, user, [mail])
        deadline = delivered + poll_seconds + 120
        while len(smtp.messages) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        answered = time.monotonic() - delivered
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=120)
    handled = [int(ms) for ms in re.findall(r"outcome=submission .* ms=(\d+)", log)]
    own = handled[-1] / 1000 if handled else float("nan")
    print(f"latency while idle: answered {answered:.1f} s after delivery; poll interval "
          f"{poll_seconds} s + its own processing {own:.1f} s = {poll_seconds + own:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=30)
    parser.add_argument("--processes", type=int, nargs="*", default=[0, 1],
                        help="reader processes per run (0: one per core)")
    parser.add_argument("--poll-seconds", type=int, default=10)
    args = parser.parse_args(argv)
    sampled = datetime.now(BEIJING).replace(second=0, microsecond=0) - timedelta(hours=2)
    mails = [_submission(index, sampled) for index in range(args.count)]
    size = sum(len(m) for m in mails) / len(mails) / 1024
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; submissions of "
          f"about {size:.0f} KB")
    with throwaway_servers("jkb-bench-reading-") as (root, dovecot, smtp):
        for processes in args.processes:
            burst(root, dovecot, smtp, args.count, processes, mails)
        if args.poll_seconds:
            latency(root, dovecot, smtp, args.poll_seconds, _submission(args.count, sampled))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
