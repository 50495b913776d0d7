"""Recognised text lines, as the OCR adapter hands them over, and the helpers that read them.

Pure: no engine here. The adapter in intake/pictures/ocr.py turns a picture into `TextLine`s; everything
that understands them works on plain text and boxes, so it is tested on text fixtures.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

# Variant and traditional forms the recognition model sometimes outputs for the characters these
# pages use (弾 is the Japanese form of 弹). Only characters that occur on the five pictures.
_VARIANTS = str.maketrans({
    "弾": "弹", "検": "检", "檢": "检", "測": "测", "結": "结", "採": "采", "様": "样", "樣": "样",
    "時": "时", "間": "间", "陰": "阴", "陽": "阳", "溫": "温", "碼": "码", "達": "达", "經": "经",
    "於": "于", "說": "说", "説": "说", "書": "书", "諾": "诺", "號": "号", "証": "证", "證": "证",
    "話": "话", "聯": "联", "繫": "系", "係": "系", "電": "电", "狀": "状", "況": "况", "區": "区",
    "険": "险", "險": "险", "跡": "迹", "軌": "轨", "現": "现", "體": "体", "体": "体", "寶": "宝",
    "査": "查", "詢": "询", "異": "异", "員": "员", "數": "数", "據": "据", "内": "内", "內": "内",
    "報": "报", "驗": "验", "験": "验", "項": "项", "東": "东", "海": "海", "廣": "广", "門": "门",
    "遼": "辽", "寧": "宁", "蘇": "苏", "黑": "黑", "龍": "龙", "陝": "陕", "貴": "贵", "雲": "云",
    "澳": "澳", "灣": "湾", "濟": "济", "鄭": "郑", "漢": "汉", "長": "长", "沈": "沈", "瀋": "沈",
    "無": "无", "為": "为", "過": "过", "風": "风", "縣": "县", "鎮": "镇", "學": "学",
    "簽": "签", "字": "字", "＊": "*", "﹡": "*", "✱": "*", "：": ":", "﹕": ":",
})


def normalise(text: str) -> str:
    """The text with variant characters replaced and full-width ASCII made half-width.

    Circled digits (①...⑤) are kept: they carry the 健康宝 popup number.
    """
    half = "".join(chr(ord(ch) - 0xFEE0) if 0xFF01 <= ord(ch) <= 0xFF5E else
                   (" " if ch == "\u3000" else ch) for ch in text)
    return half.translate(_VARIANTS)


def compact(text: str) -> str:
    """Normalised text without spaces, for matching labels that OCR splits or joins."""
    return re.sub(r"\s+", "", normalise(text))


@dataclass(frozen=True)
class TextLine:
    """One recognised line: its text, its box (left, top, right, bottom) and the model's score."""

    text: str
    box: tuple[float, float, float, float]
    score: float = 1.0
    slope: float = 0.0  # of the box's top edge (dy/dx): a photo taken at an angle tilts every row

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    @property
    def middle(self) -> float:
        return (self.box[1] + self.box[3]) / 2

    @property
    def height(self) -> float:
        return max(1.0, self.box[3] - self.box[1])

    @property
    def plain(self) -> str:
        return compact(self.text)


def in_reading_order(lines: list[TextLine]) -> list[TextLine]:
    """Top to bottom, then left to right within a row."""
    ordered = sorted(lines, key=lambda line: (line.box[1], line.box[0]))
    rows: list[list[TextLine]] = []
    for line in ordered:
        if rows and abs(rows[-1][0].middle - line.middle) < rows[-1][0].height / 2:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda item: item.box[0])]


def values_after(lines: list[TextLine], label: str) -> list[tuple[str, TextLine]]:
    """Every value written after `label`: in the same box, else in the next box on its row.

    Result pages and printed forms put label and value in separate boxes; OCR sometimes joins
    them. Returns (value, the line carrying the label), top to bottom.
    """
    found = []
    for line in in_reading_order(lines):
        text = line.plain
        at = text.find(label)
        if at < 0:
            continue
        # A printed label may carry a note in brackets: 居住地址（详细到宿舍号）.
        rest = re.sub(r"^[(（][^)）]{0,20}[)）]", "", text[at + len(label):]).lstrip(":：")
        if rest:
            found.append((rest, line))
            continue
        right = [other for other in lines if other is not line and other.box[0] >= line.box[2] - 2
                 and abs(other.middle - line.middle) < line.height * 0.6]
        if right:
            nearest = min(right, key=lambda other: other.box[0])
            found.append((nearest.plain.lstrip(":："), line))
    return found


def block_after(lines: list[TextLine], label: str) -> str | None:
    """The value right of `label` with every line written under it in the value's column, up to
    the next line that starts in the label's column (a form cell the student wrote several
    lines into). Lines joined with a newline; None when nothing is written there."""
    ordered = in_reading_order(lines)
    for index, line in enumerate(ordered):
        text = line.plain
        at = text.find(label)
        if at < 0:
            continue
        rest = re.sub(r"^[(（][^)）]{0,20}[)）]", "", text[at + len(label):]).lstrip(":：")
        column = line.box[2] - 2 if not rest else line.box[0] + 2 * line.height
        found = [rest] if rest else []
        last = line
        for other in ordered[index + 1:]:
            if other.box[0] < column - line.height:
                if other.box[1] > line.box[1] + line.height / 2:
                    break  # the next row's label
                continue  # a box left of the value on the label's own row
            if not rest and not found and abs(other.middle - line.middle) >= line.height * 0.6:
                break  # nothing right of the label: the cell is empty
            if other.box[1] - last.box[3] > line.height / 2:
                break  # a gap: what follows is no longer this cell (e.g. the signature)
            found.append(other.plain.lstrip(":："))
            last = other
        return "\n".join(part for part in found if part) or None
    return None



_FULL = re.compile(r"(20\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*(\d{1,2})\s*[:时]\s*(\d{2})"
                   r"(?:\s*[:分]\s*(\d{2}))?")
# Month and day without a year (`12-04 01:33`, `12月4日 01:33`): not the tail of a longer number.
_YEARLESS = re.compile(r"(?<![\d/.年-])(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*(\d{1,2})\s*[:时]\s*(\d{2})"
                       r"(?:\s*[:分]\s*(\d{2}))?")


@dataclass(frozen=True)
class Stamp:
    """A date-time as a page writes it; `year` is None when the page left it out."""

    year: int | None
    month: int
    day: int
    hour: int
    minute: int
    second: int = 0

    def at(self, zone: tzinfo, year: int | None = None) -> datetime | None:
        year = year or self.year
        if year is None:
            return None
        try:
            return datetime(year, self.month, self.day, self.hour, self.minute,
                            self.second, tzinfo=zone)
        except (ValueError, TypeError):
            return None

    def settled(self, zone: tzinfo, reference: datetime | None) -> datetime | None:
        """The moment, a missing year taken as the latest one that puts it not after `reference`
        (a later date on the same page, or the mail's date); None when neither is known."""
        if self.year is not None:
            return self.at(zone)
        if reference is None:
            return None
        local = reference.astimezone(zone)
        for year in (local.year, local.year - 1):
            moment = self.at(zone, year)
            if moment is not None and moment <= reference:
                return moment
        return None

    def iso(self) -> str:
        """ISO 8601 text; a year-less date as `--MM-DDThh:mm:ss` (the standard's own form)."""
        year = f"{self.year:04d}" if self.year else "-"
        return f"{year}-{self.month:02d}-{self.day:02d}T{self.hour:02d}:{self.minute:02d}:{self.second:02d}"


def stamps_in(text: str) -> list[Stamp]:
    """The date-times written in `text`, glued or not, with or without a year and seconds."""
    text = normalise(text)
    found: list[tuple[int, Stamp]] = []
    for match in _FULL.finditer(text):
        stamp = _unglued(match, 3, Stamp(*(int(part) if part else 0 for part in match.groups())))
        if stamp is not None:
            found.append((match.start(), stamp))
    rest = _FULL.sub(lambda match: "#" * len(match.group(0)), text)
    for match in _YEARLESS.finditer(rest):
        stamp = _unglued(match, 2, Stamp(None, *(int(part) if part else 0 for part in match.groups())))
        if stamp is not None:
            found.append((match.start(), stamp))
    return [stamp for _, stamp in sorted(found, key=lambda pair: pair[0]) if _valid(stamp)]


def _valid(stamp: Stamp) -> bool:
    if not (1 <= stamp.month <= 12 and stamp.hour < 24 and stamp.minute < 60 and stamp.second < 60):
        return False
    return stamp.day <= (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[stamp.month - 1] and stamp.day >= 1


def _unglued(match: re.Match, day_group: int, stamp: Stamp) -> Stamp | None:
    """OCR glues a date to its time (`2026/1/313:31`): with three digits between the date's last
    separator and the colon, both `3 13:31` and `31 3:31` may be valid. Then the time is
    unreadable (None), never a guess; one valid reading is kept."""
    if match.end(day_group) != match.start(day_group + 1):
        return stamp
    digits = match.group(day_group) + match.group(day_group + 1)
    if len(digits) != 3:
        return stamp
    readings = [replace(stamp, day=int(digits[:cut]), hour=int(digits[cut:])) for cut in (1, 2)]
    valid = [reading for reading in readings if _valid(reading)]
    return valid[0] if len(valid) == 1 else None


def deskewed(lines: list[TextLine]) -> list[tuple[TextLine, float, float]]:
    """Each line with its centre turned level: (line, x, y). The page's tilt is the median slope
    of the wider boxes (a photo tilts every row alike), so rows come out as rows again."""
    slopes = sorted(line.slope for line in lines if line.box[2] - line.box[0] > 2 * line.height / 2)
    tilt = slopes[len(slopes) // 2] if slopes else 0.0
    out = []
    for line in lines:
        x, y = line.centre
        out.append((line, x + tilt * y, y - tilt * x))
    return out


def level_height(line: TextLine) -> float:
    """The box's height without what its tilt adds (a tilted box's bounds are taller)."""
    return max(1.0, line.height - abs(line.slope) * (line.box[2] - line.box[0]))


def rows_of(lines: list[TextLine]) -> list[list[tuple[TextLine, float, float]]]:
    """The lines as rows of a table, top to bottom, each left to right, after levelling."""
    placed = sorted(deskewed(lines), key=lambda item: item[2])
    rows: list[list[tuple[TextLine, float, float]]] = []
    for item in placed:
        if rows:
            last = rows[-1]
            y = sum(member[2] for member in last) / len(last)
            tolerance = min(level_height(member[0]) for member in (*last, item)) * 0.55
            if abs(item[2] - y) < tolerance:
                last.append(item)
                continue
        rows.append([item])
    return [sorted(row, key=lambda item: item[1]) for row in rows]


def gb11643_valid(number: str) -> bool:
    """Whether an 18-character resident ID number carries the right check character."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], weights))
    return "10X98765432"[total % 11] == number[17]
