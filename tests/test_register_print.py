"""The register is the office's form, filled, and prints: checked by printing it with LibreOffice
(as the office does) and reading the PDF's words and font sizes."""
from __future__ import annotations

import io
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pdfplumber
from openpyxl import load_workbook

from notifier.digest import DigestCase
from notifier.register import OFFICE_FIELDS, itinerary_line, register_xlsx

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)
ADDRESS = "北京市昌平区府学路18号北京大学昌平校区学生公寓3号楼A座512室"
TRIP = "2026年11月15日-11月18日 北京市海淀区\n2026年11月19日-11月21日 北京市昌平区府学路18号"
NAMES = ("阿卜杜拉·艾则孜", "Wang Haoran", "冯雪")


def _case(number: int, name: str, facts: dict | None = None, approved: bool = True) -> DigestCase:
    facts = facts if facts is not None else {"情况说明": {
        "looks_like": "情况说明", "现住址": ADDRESS, "手机号码": "13800138000", "身体健康状况": "良好",
        "身份证号": "11010519491231002X", "是否去过中高风险地区": "否", "近7天行程轨迹": TRIP}}
    return DigestCase(number, name, "物理系", f"s{number}@example.test", NOW, NOW, NOW, (number,), (),
                      sampled_at=NOW, facts=facts, flags=("行程码含上海市*",),
                      approved_by="老师乙" if approved else None, approved_at=NOW if approved else None,
                      opinion="情况属实、同意解除健康宝异常" if approved else "")


def _rows(data: bytes, sheet: int = 0) -> list[tuple]:
    return list(load_workbook(io.BytesIO(data)).worksheets[sheet].iter_rows(values_only=True))


def test_the_first_sheet_is_the_offices_eight_fields_and_the_rest_goes_second():
    data = register_xlsx([_case(1, "张伟")], ZONE, department="物理系", date_label="2026-11-21")
    form, details = _rows(data, 0), _rows(data, 1)
    assert form[1] == ("序号", "姓名", "现住址", "手机号码（健康宝绑定）", "身体健康状况", "身份证号",
                       "是否去过中高风险地区或参照中风险管理地区", "近7天行程轨迹", "院系（处级部门）意见")
    assert form[2] == (1, "张伟", ADDRESS, "13800138000", "良好", "11010519491231002X", "否", TRIP,
                       "情况属实、同意解除健康宝异常")
    header = details[1]
    detail = dict(zip(header, details[2]))
    assert detail["院（系）"] == "物理系" and detail["学生邮箱"] == "s1@example.test"
    assert detail["审核人"] == "老师乙" and detail["提醒"] == "行程码含上海市*"
    assert detail["核酸采样时间"] == datetime(2026, 11, 21, 17, 0)


def test_without_a_statement_the_pledge_and_the_itinerary_fill_the_form():
    facts = {"承诺书": {"looks_like": "承诺书", "姓名": "张伟", "居住地址": "北京市昌平区府学路18号7号楼302",
                        "手机号码": "13800138000", "有效证件号码": "11010519491231002X"},
             "行程码": {"looks_like": "行程码", "places": ["北京市", "天津市"], "starred": [],
                        "updated_at": "2022-05-07T10:00:00+08:00", "days": 7}}
    row = _rows(register_xlsx([_case(1, "张伟", facts, approved=False)], ZONE))[2]
    assert row == (1, "张伟", "北京市昌平区府学路18号7号楼302", "13800138000", None,
                   "11010519491231002X", None, "2022年5月1日-5月7日 北京市、天津市", None)
    assert itinerary_line({"places": ["北京市"], "updated_at": "2023-01-02T10:00:00+08:00", "days": 7},
                          ZONE) == "2022年12月27日-2023年1月2日 北京市"


def test_student_text_stays_text_never_a_formula():
    book = load_workbook(io.BytesIO(register_xlsx([_case(1, "=HYPERLINK(\"x\")")], ZONE)))
    cell = book.worksheets[0].cell(3, 2)
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(\"x\")"


def _print(tmp_path: Path, data: bytes) -> Path:
    """The register printed to PDF by LibreOffice, with a profile of its own (no clash with
    another LibreOffice running on the machine)."""
    soffice = shutil.which("soffice")
    assert soffice, "LibreOffice is missing: run scripts/setup (Debian libreoffice-calc-nogui)"
    source = tmp_path / "register.xlsx"
    source.write_bytes(data)
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/lo-profile", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=180)
    return tmp_path / "register.pdf"


def test_the_register_prints_on_a4_landscape_readable_and_uncut(tmp_path):
    cases = [_case(number, NAMES[number % 3]) for number in range(1, 17)]
    pdf = pdfplumber.open(_print(tmp_path, register_xlsx(cases, ZONE, department="物理系",
                                                         date_label="2026-11-21")))
    form_pages = [page for page in pdf.pages if "身份证号" in page.extract_text()
                  and "报送详情" not in page.extract_text()]
    assert len(form_pages) >= 2, "sixteen students take more than one page at a readable size"
    seen = []
    for page in form_pages:
        assert page.width > page.height and round(page.width) == 842  # A4 landscape
        text = page.extract_text()
        assert "物理系" in text and "2026-11-21" in text, "page header: department and date"
        assert f"共 {len(pdf.pages)} 页" in text and "第 " in text, "footer: page N of M"
        table = page.find_tables()[0].extract()
        header = [cell.replace("\n", "") for cell in table[0]]
        assert header[1:] == list(OFFICE_FIELDS), "the header row repeats on every page"
        body = [char for char in page.chars if char["top"] > page.find_tables()[0].bbox[1]]
        assert min(char["size"] for char in body) >= 9
        for row in table[1:]:
            cells = [(cell or "").replace("\n", "") for cell in row]
            seen.append(cells[1])
            # Nothing cut: the whole address, itinerary and opinion are printed in their cell.
            assert cells[2] == ADDRESS and cells[7] == TRIP.replace("\n", "")
            assert cells[5] == "11010519491231002X" and cells[8] == "情况属实、同意解除健康宝异常"
    assert sorted(seen) == sorted(case.name.replace(" ", "") for case in cases)
