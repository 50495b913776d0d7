"""The register spreadsheet in the office's own form (附件2 健康宝异常人员信息登记表).

The personal fields come from what was read on the pictures: a visible note says they are
machine-read and must be checked before use.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, tzinfo

from notifier.cells import as_text_cell

TITLE = "健康宝异常人员信息登记表"
REGISTER_COLUMNS = ("序号", "姓名", "院（系）", "现住址", "手机号码", "身体健康状况", "身份证号",
                    "是否去过中高风险地区", "近7天行程轨迹", "院系意见", "核酸采样时间", "弹窗编号", "邮箱")
# Character widths that fit Chinese text (a CJK character is about two units wide).
_WIDTHS = (6, 10, 16, 30, 14, 12, 22, 12, 26, 16, 18, 8, 28)
NOTE = ("说明：现住址、手机号码、身体健康状况、身份证号、是否去过中高风险地区、近7天行程轨迹、核酸采样时间、"
        "弹窗编号由系统从学生提交的图片中机器读取，可能有误，请核对原图后使用。")
HEADER_ROW = 3


def register_xlsx(cases: Sequence, zone: tzinfo) -> bytes:
    """One row per case (DigestCase-like: name, department, sender, facts, sampled_at)."""
    # openpyxl takes a third of a second to import: only the digest, not every poll, pays for it.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = TITLE
    last = get_column_letter(len(REGISTER_COLUMNS))
    sheet.append([f"附件2  {TITLE}"])
    sheet.merge_cells(f"A1:{last}1")
    sheet["A1"].font = Font(bold=True, size=16)
    sheet["A1"].alignment = Alignment(horizontal="center")
    sheet.append([NOTE])
    sheet.merge_cells(f"A2:{last}2")
    sheet["A2"].font = Font(bold=True, color="C00000")
    sheet["A2"].alignment = Alignment(wrap_text=True, vertical="center")
    sheet.row_dimensions[2].height = 36
    sheet.append(REGISTER_COLUMNS)
    thin = Side(style="thin")
    for cell in sheet[HEADER_ROW]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for index, case in enumerate(cases, start=1):
        statement = (getattr(case, "facts", None) or {}).get("情况说明") or {}
        health = (getattr(case, "facts", None) or {}).get("健康宝") or {}
        sampled = getattr(case, "sampled_at", None)
        sheet.append([
            index, case.name, case.department, statement.get("现住址"), statement.get("手机号码"),
            statement.get("身体健康状况"), statement.get("身份证号"),
            statement.get("是否去过中高风险地区"), statement.get("近7天行程轨迹"), None,
            _local_naive(sampled, zone), health.get("popup"), case.sender,
        ])
        row = sheet.max_row
        for cell in sheet[row]:
            as_text_cell(cell)  # everything here came from a mail or a picture
        sheet.cell(row, 11).number_format = "yyyy-mm-dd hh:mm"
        sheet.cell(row, 7).number_format = "@"  # an ID number is text, not a number in E notation
        sheet.cell(row, 5).number_format = "@"
    for row in sheet.iter_rows(min_row=HEADER_ROW, max_row=sheet.max_row):
        for cell in row:
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for number, width in enumerate(_WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(number)].width = width
    sheet.freeze_panes = f"A{HEADER_ROW + 1}"
    sheet.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _local_naive(moment: datetime | None, zone: tzinfo) -> datetime | None:
    """Excel has no time zones: the office's local time, as a real date cell."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None
