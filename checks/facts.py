"""What one picture says: which of the items it shows, and the fields staff look at.

Input is the recognised text lines with their boxes; output is a plain dict (JSON-ready, times as
ISO strings with their offset). A field that cannot be read is None, never a guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

from checks.reading import (Stamp, TextLine, block_after, normalise, gb11643_valid, in_reading_order,
                            level_height, rows_of, stamps_in, values_after)

NUCLEIC_ACID, HEALTH_KIT, ITINERARY, PLEDGE, STATEMENT = "核酸", "健康宝", "行程码", "承诺书", "情况说明"

_CIRCLED = {"①": 1, "②": 2, "③": 3, "④": 4, "⑤": 5}
_POPUP = re.compile(r"温馨提示\s*[(（]?([①②③④⑤1-5])")
_STATEMENT_LABELS = ("现住址", "身份证号", "身体健康状况", "近7天行程轨迹", "是否去过中高风险地区")


def looks_like(text: str) -> str | None:
    """The item a page shows, from its whole text (compacted), or None when unsure."""
    if "通信大数据行程卡" in text or "到达或途经" in text:
        return ITINERARY
    if "登记表" in text and "健康宝" in text or sum(label in text for label in _STATEMENT_LABELS) >= 2:
        return STATEMENT
    if "承诺书" in text:
        return PLEDGE
    if "温馨提示" in text or "本人健康码自查询" in text:
        return HEALTH_KIT
    if ("采样时间" in text or "采集时间" in text) and ("阴性" in text or "阳性" in text or "结果" in text):
        return NUCLEIC_ACID
    if "北京健康宝" in text:
        return HEALTH_KIT
    return None


def read_facts(lines: list[TextLine], zone: tzinfo, mail_date: datetime | None = None) -> dict:
    """Everything one picture says, keyed as `intake cases --json` shows it.

    A date the page writes without a year takes it from the page's other dates, else from
    `mail_date` (`settle_years`); without either it stays `--MM-DDThh:mm:ss` and counts as unread.
    """
    text = "".join(line.plain for line in in_reading_order(lines))
    kind = looks_like(text)
    facts: dict = {"looks_like": kind}
    if kind == NUCLEIC_ACID:
        facts.update(_nucleic_acid(lines, zone))
    elif kind == HEALTH_KIT:
        facts.update(_health_kit(lines, text, zone))
    elif kind == ITINERARY:
        facts.update(_itinerary(lines, zone))
    elif kind == STATEMENT:
        facts.update(_statement(lines, text))
    elif kind == PLEDGE:
        facts.update(_pledge(lines, text))
    if mail_date is None:
        return facts
    return settle_years(facts, mail_date, zone) or facts


def settle_years(facts: dict | None, mail_date: datetime, zone: tzinfo) -> dict | None:
    """The facts with each year-less time (`--MM-DDThh:mm:ss`) given the latest year that puts
    it not after the mail's date (a picture is taken before it is sent)."""
    if not facts:
        return facts
    settled = dict(facts)
    for field, value in facts.items():
        if field.endswith("_at") and isinstance(value, str) and value.startswith("--"):
            stamp = _yearless(value)
            moment = stamp.settled(zone, mail_date) if stamp else None
            settled[field] = _iso(moment) if moment else value
    return settled


def _yearless(text: str) -> Stamp | None:
    match = re.fullmatch(r"--(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})", text)
    return Stamp(None, *(int(part) for part in match.groups())) if match else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _labelled_stamps(lines: list[TextLine], label: str) -> list[Stamp]:
    return [stamp for value, _ in values_after(lines, label) for stamp in stamps_in(value)]


def _stamp_iso(stamp: Stamp | None, zone: tzinfo) -> str | None:
    if stamp is None:
        return None
    moment = stamp.at(zone) if stamp.year else None
    return _iso(moment) if moment else (stamp.iso() if stamp.year is None else None)


def _first_value(lines: list[TextLine], *labels: str) -> str | None:
    for label in labels:
        for value, _ in values_after(lines, label):
            if value:
                return value
    return None


_SAMPLED_LABELS = ("采样时间", "采集时间", "采样日期")
_TESTED_LABELS = ("检测时间", "报告时间")
# Dates a page prints besides its records: a year-less sampling time is not after them.
_PAGE_DATE_LABELS = ("查询时间", "报告时间", "更新于", "打印时间", "出具时间", "审核时间", "报告日期",
                     "检测时间", "截图时间")
_RESULT_LABELS = ("核酸检测结果", "检测结果", "检验结果", "检测结论", "结果", "RESULT")
_REFERENCE_LABELS = ("参考值", "参考范围", "参考区间", "参考结果", "正常值", "正常范围", "参考",
                     "REFERENCE", "REF")
_VERDICT = re.compile(r"(?:为|是)?(阴性|阳性)(?:\(?[+\-−]\)?)?")
RESULT, REFERENCE, BADGE = "result", "reference", "badge"


def _label_kind(text: str) -> str | None:
    """Whether a box (or the text before a value) is a reference or a result label."""
    text = text.upper().rstrip(":")
    if any(text.endswith(label) for label in _REFERENCE_LABELS):
        return REFERENCE
    if any(text.endswith(label) for label in _RESULT_LABELS):
        return RESULT
    return None


@dataclass(frozen=True)
class _Verdict:
    word: str
    line: TextLine
    x: float
    y: float
    role: str


@dataclass(frozen=True)
class _Record:
    stamp: Stamp | None  # None: a 采样时间 label whose value cannot be read
    score: float
    y: float


class _Page:
    """The page's boxes levelled (a tilted photo turned straight) and grouped into rows."""

    def __init__(self, lines: list[TextLine]):
        self.rows = rows_of(lines)
        self.place = {id(line): (x, y, row) for row, members in enumerate(self.rows)
                      for line, x, y in members}

    def right_of(self, line: TextLine) -> list[TextLine]:
        x, _, row = self.place[id(line)]
        return [other for other, other_x, _ in self.rows[row] if other_x > x]

    def left_of(self, line: TextLine) -> TextLine | None:
        x, _, row = self.place[id(line)]
        left = [(other_x, other) for other, other_x, _ in self.rows[row] if other_x < x]
        return max(left, key=lambda pair: pair[0])[1] if left else None

    def header_above(self, line: TextLine) -> str | None:
        """The kind of the column heading above `line` (a table read as columns): in the nearest
        row above with a heading that overlaps it, the heading that overlaps it most."""
        x, _, row = self.place[id(line)]
        half = (line.box[2] - line.box[0]) / 2
        for members in reversed(self.rows[:row]):
            overlaps = []
            for other, other_x, _ in members:
                kind = _label_kind(other.plain)
                if kind is None or len(other.plain) > 8:
                    continue
                other_half = (other.box[2] - other.box[0]) / 2
                shared = min(x + half, other_x + other_half) - max(x - half, other_x - other_half)
                if shared > 0:
                    overlaps.append((shared, kind))
            if overlaps:
                # Under both a result and a reference heading: unknown, so it counts as a
                # candidate (two candidates that differ hold the case; a guess could swap them).
                kinds = {kind for _, kind in overlaps}
                return kinds.pop() if len(kinds) == 1 else None
        return None


def _verdicts(page: _Page) -> list[_Verdict]:
    """Every 阴性/阳性 on the page with what labels it: a result, a reference value, or a bare
    badge. Sentences and legends (`阴性：未检出`, `阳性者请…`) are not verdicts."""
    found = []
    for members in page.rows:
        for line, x, y in members:
            text = line.plain
            match = next((m for m in _VERDICT.finditer(text) if m.end() == len(text)), None)
            if match is None or not re.fullmatch(r"[\u4e00-\u9fffA-Z:() ]*", text[:match.start()].upper()):
                continue
            before = text[:match.start()]
            role = _label_kind(before) if before else None
            if role is None and not before:
                left = page.left_of(line)
                role = _label_kind(left.plain) if left is not None else None
            if role is None:
                # Under a column heading (a table), else a bare badge; text glued before the
                # word that is no label (`若为阳性`) makes it a sentence, not a verdict.
                role = page.header_above(line) or (None if before else BADGE)
            if role is None:
                continue
            found.append(_Verdict(match.group(1), line, x, y, role))
    return found


def _records(page: _Page, labels: tuple[str, ...]) -> list[_Record]:
    found = []
    for members in page.rows:
        for line, _, y in members:
            text = line.plain
            label = next((label for label in labels if label in text), None)
            if label is None:
                continue
            rest = text[text.find(label) + len(label):].lstrip(":")
            carriers = [line] if rest else page.right_of(line)
            # The spaces the engine kept tell `2 21:20` from a glued `221:20`.
            spaced = normalise(line.text)
            value = (spaced[spaced.find(label) + len(label):] if label in spaced else rest) if rest \
                else " ".join(normalise(other.text) for other in carriers)
            stamps = stamps_in(value)
            score = min((other.score for other in carriers), default=0.0)
            found.append(_Record(stamps[0] if stamps else None, score, y))
    return found


def _page_reference(page: _Page, zone: tzinfo) -> datetime | None:
    """The latest date the page prints with a year beside a label such as 查询时间."""
    moments = [record.stamp.at(zone) for record in _records(page, _PAGE_DATE_LABELS)
               if record.stamp is not None and record.stamp.year is not None]
    found = [moment for moment in moments if moment is not None]
    return max(found) if found else None


def _order_key(stamp: Stamp, reference: datetime | None, zone: tzinfo, wraps: bool):
    moment = stamp.settled(zone, reference)
    if moment is not None:
        return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    # No year anywhere: a list that crosses new year has December before January.
    year = -1 if wraps and stamp.month >= 11 else 0
    return (year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)


def _nucleic_acid(lines: list[TextLine], zone: tzinfo) -> dict:
    page = _Page(lines)
    reference = _page_reference(page, zone)
    records = _records(page, _SAMPLED_LABELS)
    verdicts = [verdict for verdict in _verdicts(page) if verdict.role != REFERENCE]
    doubts: list[str] = []
    newest: _Record | None = None
    newest_stamp: Stamp | None = None
    readable = [(record, record.stamp) for record in records if record.stamp is not None]
    if readable and len(readable) == len(records):
        months = {stamp.month for _, stamp in readable}
        wraps = max(months) >= 11 and min(months) <= 2
        newest, newest_stamp = max(readable, key=lambda pair: _order_key(pair[1], reference, zone, wraps))
        mine = [verdict for verdict in verdicts if _record_of(verdict, records, verdicts) is newest]
    else:
        mine = verdicts  # which record is newest is unknown: only a page-wide agreement counts
    words = sorted({verdict.word for verdict in mine})
    result = words[0] if len(words) == 1 else None
    if len(words) > 1:
        doubts.append("核酸检测结果：阴性、阳性均有")
    result_score = min((verdict.line.score for verdict in mine), default=None)
    sampled = None
    if newest_stamp is not None:
        moment = newest_stamp.settled(zone, reference)
        sampled = _iso(moment) if moment else newest_stamp.iso()
    tested = [(record, record.stamp) for record in _records(page, _TESTED_LABELS) if record.stamp is not None]
    tested_at = None
    if tested:
        anchor = newest
        _, chosen = (min(tested, key=lambda pair: abs(pair[0].y - anchor.y)) if anchor is not None
                     else tested[0])
        moment = chosen.settled(zone, reference)
        tested_at = _iso(moment) if moment else chosen.iso()
    scores = {}
    if result is not None and result_score is not None:
        scores["result"] = round(result_score, 3)
    if sampled is not None and newest is not None:
        scores["sampled_at"] = round(newest.score, 3)
    facts: dict[str, object] = {"result": result, "sampled_at": sampled, "tested_at": tested_at,
                                "name": _first_value(lines, "姓名")}
    if scores:
        facts["scores"] = scores
    if doubts:
        facts["doubts"] = doubts
    return facts


def _record_of(verdict: _Verdict, records: list[_Record], verdicts: list[_Verdict]) -> _Record | None:
    """The record a verdict belongs to: the 采样时间 at or above it, or, on a page that puts each
    verdict above its record (a badge over the card), the one at or below it."""
    tolerance = level_height(verdict.line) * 0.6
    if min(other.y for other in verdicts) < min(record.y for record in records) - tolerance:
        below = [record for record in records if record.y >= verdict.y - tolerance]
        return min(below, key=lambda record: record.y) if below else None
    above = [record for record in records if record.y <= verdict.y + tolerance]
    return max(above, key=lambda record: record.y) if above else None


def _health_kit(lines: list[TextLine], text: str, zone: tzinfo) -> dict:
    match = _POPUP.search(text)
    popup = None
    if match:
        mark = match.group(1)
        popup = _CIRCLED.get(mark) or int(mark)
    stamps = [stamp for line in in_reading_order(lines) for stamp in stamps_in(line.text)]
    return {"popup": popup, "shown_at": _stamp_iso(stamps[0] if stamps else None, zone),
            "name": _first_value(lines, "姓名")}


_CITY = re.compile(r"^[\u4e00-\u9fff]{2,12}$")


_PLACE_END = re.compile(r"[市省区州盟县]\*?$")
_PLACE_TEXT = re.compile(r"^[\u4e00-\u9fff*,，、;；]+$")


def _itinerary(lines: list[TextLine], zone: tzinfo) -> dict:
    ordered = in_reading_order(lines)
    places_text, collecting = "", False
    for line in ordered:
        plain = line.plain
        if not collecting:
            at = plain.find("到达或途经")
            if at >= 0:
                collecting = True
                places_text = plain[at + len("到达或途经"):].lstrip(":")
            continue
        if plain.startswith(("注", "*注", "*表示")) or "表示" in plain or "更新于" in plain \
                or "结果包含" in plain or not _PLACE_TEXT.match(plain):
            break
        # The card wraps one comma-separated list: a line ending inside a name (`…廊坊` / `市*`)
        # continues on the next; a line ending with a whole place is a new entry.
        ends_whole = _PLACE_END.search(places_text) and not plain.startswith(("*", "市"))
        joiner = "，" if places_text and ends_whole else ""
        places_text += joiner + plain
    places, starred = [], []
    for piece in re.split(r"[,，、;；\s]+", places_text):
        name = piece.replace("*", "")
        if _CITY.match(name) and name not in places:
            places.append(name)
            if "*" in piece:
                starred.append(name)
    updated = _labelled_stamps(lines, "更新于")
    days = re.search(r"前(\d{1,2})天", "".join(line.plain for line in ordered))
    return {"places": places, "starred": starred,
            "updated_at": _stamp_iso(updated[0] if updated else None, zone),
            "days": int(days.group(1)) if days else None}


def _id_number(text: str) -> str | None:
    for candidate in re.findall(r"(?<!\d)\d{17}[\dXx](?![\dXx])", text):
        if gb11643_valid(candidate.upper()):
            return candidate.upper()
    return None


def _phone(text: str | None) -> str | None:
    match = re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text or "")
    return match.group(0) if match else None


def _statement(lines: list[TextLine], text: str) -> dict:
    fields = {"姓名": _first_value(lines, "姓名")}
    # What a student writes may run over several lines of its cell: read them all.
    fields.update({label: block_after(lines, label) for label in
                   ("现住址", "身体健康状况", "是否去过中高风险地区", "近7天行程轨迹")})
    fields["手机号码"] = _phone(_first_value(lines, "手机号码", "联系电话")) or None
    fields["身份证号"] = _id_number(_first_value(lines, "身份证号") or "") or _id_number(text)
    found: dict[str, str | bool | None] = {"姓名": fields["姓名"], "现住址": fields["现住址"], "手机号码": fields["手机号码"],
             "身体健康状况": fields["身体健康状况"], "身份证号": fields["身份证号"],
             "是否去过中高风险地区": fields["是否去过中高风险地区"],
             "近7天行程轨迹": fields["近7天行程轨迹"]}
    written = re.search(r"(?<!\d)\d{17}[\dXx](?![\dXx])", _first_value(lines, "身份证号") or "")
    if fields["身份证号"] is None and written:
        found["身份证号校验不符"] = True  # 18 characters read, but the check character is wrong
    return found


_SIGNATURE = ("手签", "签名", "签字", "承诺人")


def _pledge(lines: list[TextLine], text: str) -> dict:
    """The pledge's blanks. The name is the 姓名 blank, never the signature line under the
    pledge (承诺人（手签）, sometimes printed 姓名：(手签)), which holds a scrawl."""
    names = [value for value, line in values_after(lines, "姓名")
             if not any(word in line.plain for word in _SIGNATURE)]
    address = block_after(lines, "居住地址")
    return {"姓名": names[0] if names else None,
            "联系电话": _phone(_first_value(lines, "联系电话")),
            "手机号码": _phone(_first_value(lines, "手机号码")),
            "有效证件号码": _id_number(_first_value(lines, "有效证件号码", "证件号码") or ""),
            "居住地址": address.replace("\n", "") if address else None}
