"""The office's files (the digest's register XLSX and `intake cases --csv`) hold what students
wrote as text, never as a formula: opened with openpyxl and with LibreOffice (issue 23)."""
from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest
from openpyxl import load_workbook

from notifier.register import DETAIL_TITLE, TITLE
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


def _libreoffice(path, to: str, folder, written: str | None = None):
    """The file converted by LibreOffice as the office would open it; the converted bytes."""
    profile = folder / "lo-profile"
    result = subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless",
                             "--convert-to", to, "--outdir", str(folder), str(path)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return (folder / (written or path.stem + "." + to.split(":")[0])).read_bytes()


def _register(world) -> bytes:
    assert world.cli("digest").returncode == 0
    [sent] = world.smtp.to(OFFICE)
    [register] = [part.get_content() for part in sent.message.iter_attachments()
                  if part.get_filename().endswith(".xlsx")]
    return register


@needs_libreoffice
def test_the_register_keeps_hostile_text_as_text(hostile, tmp_path):
    data = _register(hostile)
    book = load_workbook(io.BytesIO(data))
    names = [book[TITLE].cell(row, 2) for row in range(3, book[TITLE].max_row + 1)]
    assert [cell.value for cell in names] == ["张伟"] * len(HOSTILE)
    detail = book[DETAIL_TITLE]  # the department goes on the office's second sheet
    departments = {detail.cell(row, 3).value: detail.cell(row, 3) for row in range(3, detail.max_row + 1)}
    assert set(departments) == set(HOSTILE)
    assert all(cell.data_type == "s" for cell in [*departments.values(), *names])
    path = tmp_path / "register.xlsx"
    path.write_bytes(data)
    # The 12th token of LibreOffice's CSV filter, -1, writes every sheet (register-SHEET.csv).
    _libreoffice(path, "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
                 tmp_path, written=f"register-{TITLE}.csv")
    shown = (tmp_path / f"register-{DETAIL_TITLE}.csv").read_text(encoding="utf-8")
    assert shown.count("张伟") == (tmp_path / f"register-{TITLE}.csv").read_text().count("张伟") == len(HOSTILE)
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
