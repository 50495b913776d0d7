"""What one picture says: which of the five items it shows, and the fields staff look at.

Input is the recognised text lines with their boxes; output is a plain dict (JSON-ready, times as
ISO strings with their offset). A field that cannot be read is None, never a guess.
"""
from __future__ import annotations

import re
from datetime import datetime, tzinfo

from checks.reading import (TextLine, block_after, gb11643_valid, in_reading_order, moments_in,
                            values_after)

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
    if "采样时间" in text and ("阴性" in text or "阳性" in text or "检测结果" in text):
        return NUCLEIC_ACID
    if "北京健康宝" in text:
        return HEALTH_KIT
    return None


def read_facts(lines: list[TextLine], zone: tzinfo) -> dict:
    """Everything one picture says, keyed as `intake cases --json` shows it."""
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
    return facts


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _labelled_moments(lines: list[TextLine], label: str, zone: tzinfo) -> list[tuple[datetime, float]]:
    found = []
    for value, line in values_after(lines, label):
        found += [(moment, line.middle) for moment in moments_in(value, zone)]
    return found


def _first_value(lines: list[TextLine], *labels: str) -> str | None:
    for label in labels:
        for value, _ in values_after(lines, label):
            if value:
                return value
    return None


def _nucleic_acid(lines: list[TextLine], zone: tzinfo) -> dict:
    sampled = _labelled_moments(lines, "采样时间", zone)
    newest = max(sampled, key=lambda pair: pair[0]) if sampled else None
    results = [(word, line.middle) for line in lines for word in ("阴性", "阳性") if word in line.plain]
    result = None
    if results:
        anchor = newest[1] if newest else min(middle for _, middle in results)
        # Older records are listed below the newest: take the verdict nearest the newest sampling.
        result = min(results, key=lambda pair: (abs(pair[1] - anchor), pair[1]))[0]
    tested = _labelled_moments(lines, "检测时间", zone) + _labelled_moments(lines, "报告时间", zone)
    if newest and tested:
        after = [pair for pair in tested if pair[0] >= newest[0]]
        tested_at = min(after or tested, key=lambda pair: abs(pair[1] - newest[1]))[0]
    else:
        tested_at = tested[0][0] if tested else None
    return {"result": result, "sampled_at": _iso(newest[0] if newest else None),
            "tested_at": _iso(tested_at), "name": _first_value(lines, "姓名")}


def _health_kit(lines: list[TextLine], text: str, zone: tzinfo) -> dict:
    match = _POPUP.search(text)
    popup = None
    if match:
        mark = match.group(1)
        popup = _CIRCLED.get(mark) or int(mark)
    moments = [moment for line in in_reading_order(lines) for moment in moments_in(line.text, zone)]
    return {"popup": popup, "shown_at": _iso(moments[0] if moments else None),
            "name": _first_value(lines, "姓名")}


_CITY = re.compile(r"^[\u4e00-\u9fff]{2,12}$")


def _itinerary(lines: list[TextLine], zone: tzinfo) -> dict:
    ordered = in_reading_order(lines)
    places_text, collecting = [], False
    for line in ordered:
        plain = line.plain
        if not collecting:
            at = plain.find("到达或途经")
            if at >= 0:
                collecting = True
                places_text.append(plain[at + len("到达或途经"):].lstrip(":"))
            continue
        if plain.startswith(("注", "*注", "*表示")) or "表示" in plain or "更新于" in plain \
                or "结果包含" in plain or not re.search(r"[市省区州盟]\*?$|[市省区州盟]\*?[,，、]", plain):
            break
        places_text.append(plain)
    places, starred = [], []
    for piece in re.split(r"[,，、;；\s]+", "，".join(places_text)):
        name = piece.replace("*", "")
        if _CITY.match(name) and name not in places:
            places.append(name)
            if "*" in piece:
                starred.append(name)
    updated = _labelled_moments(lines, "更新于", zone)
    days = re.search(r"前(\d{1,2})天", "".join(line.plain for line in ordered))
    return {"places": places, "starred": starred,
            "updated_at": _iso(updated[0][0] if updated else None),
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
    found = {"姓名": fields["姓名"], "现住址": fields["现住址"], "手机号码": fields["手机号码"],
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
