"""Reading pictures as shared work: two daemons on one PostgreSQL database split the reading, each
picture read once; a pool of reader processes in one daemon reads on every core."""
from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from intake.models import PictureJob, Reading
from tests.support import builders as b
from tests.support import drawn
from tests.support.harness import Harness, body_text

BEIJING = ZoneInfo("Asia/Shanghai")
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴霞"]
READ_LINE = re.compile(r"picture job=(\d+) read as")


def _submissions(world: Harness, names: list[str]) -> int:
    """One submission per name, each of five pictures drawn for that student; the picture count."""
    sampled = datetime.now(BEIJING).replace(second=0, microsecond=0) - timedelta(hours=3)
    for index, name in enumerate(names):
        files = drawn.five(sampled - timedelta(minutes=index), name=name, shown_name=name[0] + "*")
        world.deliver(b.mail(sender=f"s{index}@example.test",
                             attachments=[(f"{name}+物理系+健康宝弹窗.zip", b.utf8_zip(files))]))
    return 5 * len(names)


def _reading_config(processes: int, threads: int) -> str:
    return f"[pictures]\nread = true\nprocesses = {processes}\nthreads = {threads}\n"


def _replies(world: Harness, count: int) -> Counter:
    return Counter(m.recipients[0] for m in world.smtp.messages
                   if m.recipients[0].startswith("s") and m.recipients[0].endswith("@example.test")
                   and len(m.recipients) == 1)


@pytest.mark.slow
def test_two_daemons_read_each_picture_once_and_both_read(dovecot, smtp, mailbox_user, db_url_pg,
                                                          tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url_pg,
                    tmp_path=tmp_path,
                    extra_config="[schedule]\npoll_seconds = 2\n" + _reading_config(1, 1))
    pictures = _submissions(world, NAMES)
    daemons = world.start_daemons(2)
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and len(_replies(world, len(NAMES))) < len(NAMES):
            time.sleep(1)
        time.sleep(3)  # would a second reply follow?
    finally:
        logs = world.stop_daemons(daemons)
    assert [daemon.returncode for daemon in daemons] == [0, 0], logs

    # Every student is answered once, and told all five arrived (the pictures were read as theirs).
    assert _replies(world, len(NAMES)) == Counter({f"s{i}@example.test": 1 for i in range(len(NAMES))})
    for message in world.smtp.messages:
        if message.recipients[0].startswith("s"):
            assert "五项已全部收到" in body_text(message.message), body_text(message.message)
    # Each picture was read once in all, and each daemon read some of them.
    reads = [READ_LINE.findall(log) for log in logs]
    assert sum(len(read) for read in reads) == pictures, [len(read) for read in reads]
    assert all(read for read in reads), [len(read) for read in reads]
    app = world.app()
    try:
        with app.sessions() as session:
            assert session.scalar(select(func.count(Reading.id))) == pictures
            assert session.scalar(select(func.count(PictureJob.id))) == 0  # used up with their mails
    finally:
        app.close()
    cases = {case["name"]: case for case in world.cases_json()}
    assert set(cases) == set(NAMES)
    assert all(case["facts"]["承诺书"]["looks_like"] == "承诺书" for case in cases.values())


@pytest.mark.slow
def test_a_pool_of_reader_processes_reads_the_pictures(dovecot, smtp, mailbox_user, sqlite_url,
                                                       tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                    tmp_path=tmp_path, extra_config=_reading_config(2, 1))
    names = NAMES[:3]
    pictures = _submissions(world, names)
    polled = world.cli("poll")
    assert polled.returncode == 0, polled.stderr
    assert len(READ_LINE.findall(polled.stderr)) == pictures
    cases = {case["name"]: case for case in world.cases_json()}
    assert set(cases) == set(names)
    for case in cases.values():
        assert case["status"] == "complete"
        assert case["facts"]["核酸"]["result"] == "阴性"
        assert case["facts"]["情况说明"]["身份证号"] == drawn.ID_NUMBER
    assert _replies(world, len(names)) == Counter({f"s{i}@example.test": 1 for i in range(len(names))})
    # Nothing is left behind: no reader process outlives the poll.
    leftover = subprocess.run(["pgrep", "-f", "multiprocessing.spawn"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


@pytest.mark.slow
def test_a_poll_killed_while_reading_leaves_nothing_waiting(dovecot, smtp, mailbox_user, sqlite_url,
                                                            tmp_path, env_password):
    """A daemon killed with pictures claimed: the next poll on this host takes them back at once
    (the claims' lease would keep them for minutes) and answers each student once."""
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url,
                    tmp_path=tmp_path, extra_config=_reading_config(1, 1))
    names = NAMES[:2]
    _submissions(world, names)
    killed = world.cli("poll", env={"INTAKE_FAILPOINTS": "picture-claimed=kill@4"})
    assert killed.returncode == -signal.SIGKILL
    assert _replies(world, len(names)) != Counter({f"s{i}@example.test": 1 for i in range(len(names))})
    again = world.cli("poll")
    assert again.returncode == 0, again.stderr
    assert "picture job(s) of a stopped worker on this host released" in again.stderr
    assert _replies(world, len(names)) == Counter({f"s{i}@example.test": 1 for i in range(len(names))})
    cases = {case["name"]: case for case in world.cases_json()}
    assert set(cases) == set(names) and all(c["status"] == "complete" for c in cases.values())
