"""scripts/bench keeps working: a tiny run prints every line the full one does (not a timed test)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.harness import REPO

pytestmark = pytest.mark.servers


def test_bench_prints_floor_getmail6_ours_and_the_idle_check():
    result = subprocess.run([sys.executable, "-m", "tests.support.bench", "2", "--idle", "5"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "floor (FETCH + one MIME parse + 10 zip members read)" in out
    assert "getmail6 into a Maildir (2 mails copied)" in out
    assert "intake poll on sqlite (2 replies sent)" in out and "peak RSS" in out
    assert "ratios: ours/floor" in out
    assert "idle poll, nothing new: 100 handled mails" in out and "5 handled mails" in out


def test_check_processes_start_without_the_database_layer():
    # Each check process imports what it runs; the ORM and the web stack would add most of a
    # second to every poll that starts them.
    probe = ("import sys, intake.process.check_pool; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'sqlalchemy', 'flask', 'jinja2', 'imapclient', 'apscheduler', 'pydantic'}))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
