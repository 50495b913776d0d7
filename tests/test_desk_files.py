"""The office's files (the digest's register XLSX and `intake cases --csv`) hold what students
wrote as text, never as a formula: opened with openpyxl and with LibreOffice (issue 23)."""
from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest
from openpyxl import load_workbook

from tests.support import builders as b
from tests.support.harness import Harness

OFFICE = "changping@example.test"
HOSTILE = ["=cmd|' /C calc'!A0", "-2-3", "@A1", "=1-1"]  # no '+' or brackets: the subject's own
needs_libreoffice = pytest.mark.skipif(shutil.which("soffice") is None,
                                       reason="LibreOffice (libreoffice-calc-nogui) not installed")


@pytest.fixture
def hostile(dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path)
    for number, department in enumerate(HOSTILE):
        world.deliver(b.mail(sender=f"s{number}@example.test", subject=f"张伟+{department}+健康宝弹窗",
                             attachments=[("a.zip", b.windows_gbk_zip(b.five_pictures()))]))
    world.poll()
    world.smtp.clear()
    return world


def _libreoffice(path, to: str, folder):
    """The file converted by LibreOffice as the office would open it; the converted bytes."""
    profile = folder / "lo-profile"
    result = subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless",
                             "--convert-to", to, "--outdir", str(folder), str(path)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return (folder / (path.stem + "." + to.split(":")[0])).read_bytes()


def _register(world) -> bytes:
    assert world.cli("digest").returncode == 0
    [sent] = world.smtp.to(OFFICE)
    [register] = [part.get_content() for part in sent.message.iter_attachments()
                  if part.get_filename().endswith(".xlsx")]
    return register


@needs_libreoffice
def test_the_register_keeps_hostile_text_as_text(hostile, tmp_path):
    data = _register(hostile)
    sheet = load_workbook(io.BytesIO(data)).active
    departments = {sheet.cell(row, 3).value: sheet.cell(row, 3) for row in range(4, sheet.max_row + 1)}
    assert set(departments) == set(HOSTILE)
    assert all(cell.data_type == "s" for cell in departments.values())
    path = tmp_path / "register.xlsx"
    path.write_bytes(data)
    shown = _libreoffice(path, "csv:Text - txt - csv (StarCalc):44,34,76", tmp_path).decode()
    for text in HOSTILE:
        assert text in shown  # the text itself, not a result (3, 1, 2) or Err:/#NAME?
    assert "#NAME" not in shown and "Err:" not in shown


@needs_libreoffice
def test_cases_csv_quotes_what_looks_like_a_formula(hostile, tmp_path):
    raw = hostile.cli("cases", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(raw.lstrip("\ufeff"))))
    assert sorted(row["院（系）"] for row in rows) == sorted("'" + text for text in HOSTILE)
    assert {row["姓名"] for row in rows} == {"张伟"}
    path = tmp_path / "cases.csv"
    path.write_text(raw, encoding="utf-8")
    pdf = _libreoffice(path, "pdf", tmp_path)
    assert pdf.startswith(b"%PDF")
    shown = _libreoffice(path, "csv:Text - txt - csv (StarCalc):44,34,76", tmp_path / "again")
    for text in HOSTILE:
        assert text in shown.decode()
    assert "#NAME" not in shown.decode() and "Err:" not in shown.decode()
