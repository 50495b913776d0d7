"""The register spreadsheet in the office's own form (附件2 健康宝异常人员信息登记表).

The first sheet is what the office files: its eight fields, in its order and words, and it prints
on A4 landscape at a size people read (no shrink-to-fit of a wide sheet, explicit row heights
because LibreOffice does not grow rows for wrapped text in a file it did not write). Everything
else the department knows about a case goes on the second sheet.
"""
from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from datetime import date, datetime, tzinfo

from wcwidth import wcswidth

from checks.facts import ITINERARY, PLEDGE, STATEMENT

from notifier.cells import text_cell

TITLE = "健康宝异常人员信息登记表"
OFFICE_FIELDS = ("姓名", "现住址", "手机号码（健康宝绑定）", "身体健康状况", "身份证号",
                 "是否去过中高风险地区或参照中风险管理地区", "近7天行程轨迹", "院系（处级部门）意见")
REGISTER_COLUMNS = ("序号", *OFFICE_FIELDS)
# Widths in Excel's character units (LibreOffice prints one as about 7 pt): together they fill
# A4 landscape between 0.3" margins at 100 % (at most about 112 units).
_UNIT_POINTS = 7.0
_WIDTHS = (4, 9, 18, 12, 7, 17, 9, 24, 12)
DETAIL_TITLE = "报送详情"
DETAIL_COLUMNS = ("序号", "姓名", "院（系）", "登记编号", "学生邮箱", "核酸采样时间", "弹窗编号",
                  "审核人", "审核时间", "提醒")
_DETAIL_WIDTHS = (4, 9, 12, 6, 20, 14, 6, 8, 14, 18)
NOTE = ("说明：现住址、手机号码、身体健康状况、身份证号、是否去过中高风险地区、近7天行程轨迹由系统从学生提交的"
        "图片中读取，并经本系审核人与学生本人核实；核酸采样时间、弹窗编号为机器读取。")
BODY_POINTS = 10
_LINE_POINTS = BODY_POINTS * 1.45


def register_xlsx(cases: Sequence, zone: tzinfo, *, department: str = "",
                  date_label: str = "") -> bytes:
    """One row per case (DigestCase-like: name, department, sender, facts, sampled_at, ...)."""
    # openpyxl takes a third of a second to import: only the digest, not every poll, pays for it.
    from openpyxl import Workbook

    book = Workbook()
    form = book.active
    form.title = TITLE
    form.append([TITLE])
    form.append(list(REGISTER_COLUMNS))
    for index, case in enumerate(cases, start=1):
        fields = office_fields(getattr(case, "facts", None) or {}, zone)
        form.append([index, *(None for _ in OFFICE_FIELDS)])
        row = form.max_row
        values = [case.name, *fields, getattr(case, "opinion", "") or None]
        for column, value in enumerate(values, start=2):
            text_cell(form.cell(row, column), value)
    _lay_out(form, _WIDTHS, f"{department}  {TITLE}".strip(), date_label)

    detail = book.create_sheet(DETAIL_TITLE)
    detail.append([NOTE])
    detail.append(list(DETAIL_COLUMNS))
    for index, case in enumerate(cases, start=1):
        health = (getattr(case, "facts", None) or {}).get("健康宝") or {}
        detail.append([index, None, None, case.case_id, None,
                       _local_naive(getattr(case, "sampled_at", None), zone), health.get("popup"),
                       None, _local_naive(getattr(case, "approved_at", None), zone), None])
        row = detail.max_row
        for column, value in ((2, case.name), (3, case.department), (5, case.sender),
                              (8, getattr(case, "approved_by", None)),
                              (10, "；".join(getattr(case, "flags", ()) or ()) or None)):
            text_cell(detail.cell(row, column), value)
        detail.cell(row, 6).number_format = detail.cell(row, 9).number_format = "yyyy-mm-dd hh:mm"
    _lay_out(detail, _DETAIL_WIDTHS, f"{department}  {DETAIL_TITLE}".strip(), date_label)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def office_fields(facts: dict, zone: tzinfo) -> tuple[str | None, ...]:
    """现住址 … 近7天行程轨迹 as the office's form asks, from the 情况说明, else the 承诺书 and the
    行程码 (dates in the form's own style: 2022年5月1日-5月7日 北京市)."""
    statement = facts.get(STATEMENT) or {}
    pledge = facts.get(PLEDGE) or {}
    return (statement.get("现住址") or pledge.get("居住地址"),
            statement.get("手机号码") or pledge.get("手机号码") or pledge.get("联系电话"),
            statement.get("身体健康状况"),
            statement.get("身份证号") or pledge.get("有效证件号码"),
            statement.get("是否去过中高风险地区"),
            statement.get("近7天行程轨迹") or itinerary_line(facts.get(ITINERARY) or {}, zone))


def itinerary_line(itinerary: dict, zone: tzinfo) -> str | None:
    """The 行程码's places with the days it covers: `2022年5月1日-5月7日 北京市、天津市`."""
    places = itinerary.get("places") or []
    updated = itinerary.get("updated_at")
    if not places:
        return None
    if not updated:
        return "、".join(places)
    end = datetime.fromisoformat(updated).astimezone(zone).date()
    start = date.fromordinal(end.toordinal() - (itinerary.get("days") or 7) + 1)
    until = f"{end.month}月{end.day}日" if end.year == start.year else f"{end.year}年{end.month}月{end.day}日"
    return f"{start.year}年{start.month}月{start.day}日-{until} {'、'.join(places)}"


def _lay_out(sheet, widths: Sequence[int], header: str, date_label: str) -> None:
    """Borders, wrapping, row heights, and the printed page: A4 landscape, header row on every
    page, the department and date at the top, page N of M at the bottom."""
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    thin = Side(style="thin")
    first_row = 2  # row 1: the title (form) or the note (details)
    last = get_column_letter(len(widths))
    sheet.merge_cells(f"A1:{last}1")
    sheet["A1"].font = Font(bold=True, size=16 if sheet.title == TITLE else BODY_POINTS)
    sheet["A1"].alignment = Alignment(horizontal="center" if sheet.title == TITLE else "left",
                                      vertical="center", wrap_text=True)
    sheet.row_dimensions[1].height = 28 if sheet.title == TITLE else _height(
        [(str(sheet["A1"].value or ""), sum(widths))])
    for number, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(number)].width = width
    for row in sheet.iter_rows(min_row=first_row, max_row=sheet.max_row):
        for cell in row:
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
            cell.font = Font(size=BODY_POINTS, bold=cell.row == first_row)
            cell.alignment = Alignment(wrap_text=True, vertical="center",
                                       horizontal="center" if cell.row == first_row else "left")
        sheet.row_dimensions[row[0].row].height = _height(
            [(_shown(cell.value), widths[cell.column - 1]) for cell in row])
    sheet.freeze_panes = f"A{first_row + 1}"
    sheet.print_title_rows = f"{first_row}:{first_row}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    # The widths fit the page, so this keeps 100 %; it only stops a column from going to its own page.
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_margins.left = sheet.page_margins.right = 0.3
    sheet.page_margins.top = sheet.page_margins.bottom = 0.6
    sheet.page_margins.header = sheet.page_margins.footer = 0.25
    sheet.print_options.horizontalCentered = True
    sheet.oddHeader.left.text = header.replace("&", "&&")
    sheet.oddHeader.right.text = date_label.replace("&", "&&")
    sheet.oddFooter.center.text = "第 &P 页，共 &N 页"
    for part in (sheet.oddHeader.left, sheet.oddHeader.right, sheet.oddFooter.center):
        part.size = 9


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def _height(cells: list[tuple[str, int]]) -> float:
    """Points for a row whose cells wrap within their column width."""
    lines = max((_lines(text, width * _UNIT_POINTS - 6) for text, width in cells), default=1)
    return round(max(1, lines) * _LINE_POINTS + 6, 1)


def _lines(text: str, room: float) -> int:
    """Lines `text` takes wrapped in `room` points: a Chinese character may break anywhere, a
    Latin word or number only as a whole (as LibreOffice and Excel wrap them)."""
    total = 0
    for paragraph in text.split("\n"):
        lines, used = 1, 0.0
        for token in re.findall(r"[A-Za-z0-9@._\-+/:*]+|\s|.", paragraph):
            wide = BODY_POINTS * 0.55 * max(0, wcswidth(token))
            if used + wide > room and used > 0:
                lines, used = lines + math.ceil(max(0.0, wide - room) / room) + 1, wide % room
            else:
                used += wide
        total += lines
    return total


def _local_naive(moment: datetime | None, zone: tzinfo) -> datetime | None:
    """Excel has no time zones: the office's local time, as a real date cell."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None
