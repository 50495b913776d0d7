"""Worlds with cases in them before a test begins, and the CLI runs staff tests check."""
from __future__ import annotations

import subprocess
from collections.abc import Callable

from tests.support import builders as b
from tests.support.harness import Harness

# (name, department, sender, items left out): two complete cases of 物理系, one of 化学系 lacking 核酸.
THREE_STUDENTS = [("张伟", "物理系", "zw@example.test", ()),
                  ("李喆", "化学系", "lz@example.test", ("核酸",)),
                  ("王芳", "物理系", "wf@example.test", ())]


def with_cases(world: Harness, students=THREE_STUDENTS,
               zipped: Callable[[dict[str, bytes]], bytes] = b.windows_gbk_zip) -> Harness:
    """Each student's submission delivered and polled, the replies cleared; `world.ids`: the
    case ids by name."""
    for name, department, sender, skip in students:
        world.deliver(b.mail(sender=sender, subject=f"{name}+{department}+健康宝弹窗",
                             attachments=[("a.zip", zipped(b.five_pictures(skip=skip)))]))
    world.poll()
    world.smtp.clear()
    world.ids = {c["name"]: c["id"] for c in world.cases_json()}
    return world


def ok(result: subprocess.CompletedProcess) -> str:
    """The output of a command that must have succeeded."""
    assert result.returncode == 0, result.stderr
    return result.stdout
