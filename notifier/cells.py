"""The one rule for putting what a student sent into the office's spreadsheets: it is text.

A name, department or read fact such as `=cmd|' /C calc'!A0` must never become a formula when
the office opens the register (XLSX) or `intake cases --csv` in Excel or LibreOffice.
"""
from __future__ import annotations

# What spreadsheet programs take as the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(cell, value: str | None) -> None:
    """Put `value` into an openpyxl cell as a string cell (data_type "s"), even when it starts
    like a formula (`=1+1`, `@SUM(...)`); None leaves the cell empty."""
    cell.value = value
    if value is not None:
        cell.data_type = "s"


def csv_text(value: object) -> object:
    """A CSV field: a string that starts like a formula gets a leading apostrophe, which Excel
    and LibreOffice take as "text" (and do not show); anything else is left as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
