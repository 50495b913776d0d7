"""The naming rule `姓名+院（系）+健康宝弹窗`, read from a zip name or a mail subject."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from checks.facts import PLEDGE, STATEMENT

# Reply/forward prefixes as Chinese and Western clients write them, with either colon.
_PREFIX = re.compile(
    r"^\s*(?:re|fw|fwd|aw|wg|回复|答复|转发|回覆|轉發)\s*[:：]\s*", re.IGNORECASE
)
_BRACKET_TAG = re.compile(r"^\s*[\[【（(][^\]】）)]{0,20}[\]】）)]\s*")
# Our own reply subjects put a label before the name: 材料未齐：张伟+物理系+健康宝弹窗，请补充.
_LABEL = re.compile(r"^[^+＋﹢➕:：]{1,20}[:：]\s*")
_ARCHIVE_SUFFIX = re.compile(r"\.(?:zip|rar|7z)\s*$", re.IGNORECASE)
_PLUS = re.compile(r"\s*[+＋﹢➕]\s*")
_NAME = re.compile(r"^[\w·•・. ]{1,30}$")


@dataclass(frozen=True)
class SubmissionName:
    name: str
    department: str
    # What else the student wrote between the name and the suffix (年级, 学号, 班级, a phone
    # number): ignored; the reply says that name and department are enough.
    extras: tuple[str, ...] = ()
    # The name as the student wrote it when the forms gave the case another (pinyin -> 汉字).
    written: str | None = None


# Parts students add to the rule that are neither a name nor a department.
_EXTRA_PART = re.compile(
    r"^(?:\d{2,4}级.*|.*(?:本科|硕士|博士|研究生|研一|研二|研三|大一|大二|大三|大四)生?|"
    r"\d{5,}|1\d{10}|.*\d+班|学号.*|电话.*|手机.*)$")
_DEPARTMENT_WORD = re.compile(r"[院系部所中心]")


def normalize_text(text: str) -> str:
    """NFC, without surrounding blanks; full-width spaces count as blanks."""
    return unicodedata.normalize("NFC", text).replace("\u3000", " ").strip()


def strip_reply_prefixes(subject: str) -> str:
    text = normalize_text(subject)
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped


def parse_submission_name(text: str | None, suffix: str = "健康宝弹窗") -> SubmissionName | None:
    """Name and department when `text` follows the rule, else None."""
    if not text:
        return None
    cleaned = _ARCHIVE_SUFFIX.sub("", strip_reply_prefixes(text)).strip()
    # A tag such as 【补交】 before the name is common; try once without it.
    for candidate in (cleaned, _BRACKET_TAG.sub("", cleaned, count=1),
                      _LABEL.sub("", cleaned, count=1)):
        found = _split_rule(candidate, suffix)
        if found:
            return found
    return None


def _split_rule(text: str, suffix: str) -> SubmissionName | None:
    parts = [part.strip() for part in _PLUS.split(text)]
    if len(parts) < 3 or not parts[-1].replace(" ", "").startswith(suffix):
        return None
    extras = tuple(part for part in parts[:-1] if _EXTRA_PART.match(part.replace(" ", "")))
    kept = [part for part in parts[:-1] if part and part not in extras]
    if len(kept) > 2:  # more than a name and a department: the department is the one saying so
        named = [part for part in kept[1:] if _DEPARTMENT_WORD.search(part)]
        if not named:
            return None
        extras += tuple(part for part in kept[1:] if part != named[0])
        kept = [kept[0], named[0]]
    if len(kept) != 2:
        return None
    name, department = kept
    if not _NAME.match(name):
        return None
    department = department.replace("(", "（").replace(")", "）")
    return SubmissionName(name=name, department=department, extras=extras)


# How students name themselves in a mail's text: 我是周航，物理学院 / 姓名：周航 / 周航 物理学院.
_SELF_NAMED = re.compile(
    r"(?:我是|我叫|本人|学生|姓名\s*[:：]?)\s*(?P<name>[\u4e00-\u9fa5·]{2,4}?)"
    r"(?:[，,、\s]*(?:来自|是|，|,)?\s*(?P<department>[\u4e00-\u9fa5]{1,12}?(?:学院|系|院|所|中心)))?"
    r"(?=$|[，,。.、\s的]|同学|学生)")


def name_in_text(text: str, suffix: str, default_department: str) -> SubmissionName | None:
    """A name (and a department, else `default_department`) that a subject or body states."""
    for line in (text or "").splitlines():
        found = parse_submission_name(line, suffix)
        if found is not None:
            return found
    match = _SELF_NAMED.search(text or "")
    # 我是物理学院的学生: no name, a department split in two.
    if match is None or (match.group("department") and match.start("department") == match.end("name")):
        return None
    department = match.group("department") or default_department
    return SubmissionName(match.group("name"), department) if department else None


_PARENT = re.compile(r"家长|爸爸|妈妈|父亲|母亲|孩子他|孩子她")


def writes_for_a_student(display_name: str, own_words: str) -> bool:
    """A parent writing for the student (家长, 爸爸, 妈妈 in the sender's name or the text)."""
    return bool(_PARENT.search(display_name or "") or _PARENT.search(own_words or ""))


_PINYIN = re.compile(r"^[A-Za-z][A-Za-z .·'-]*$")
_CHINESE_NAME = re.compile(r"^[\u4e00-\u9fa5·]{2,6}$")


def name_on_forms(facts_by_item: dict[str, dict | None]) -> str | None:
    """The Chinese name the signed forms read (情况说明 first, then 承诺书), if a clear one."""
    for key in (STATEMENT, PLEDGE):
        name = ((facts_by_item.get(key) or {}).get("姓名") or "").strip()
        if _CHINESE_NAME.match(name):
            return name
    return None


def with_name_from_forms(who: SubmissionName | None, form_name: str | None,
                         default_department: str) -> SubmissionName | None:
    """The forms' Chinese name for a pinyin one (the written one kept), or for none at all."""
    if form_name is None:
        return who
    if who is None:
        return SubmissionName(form_name, default_department) if default_department else None
    if _PINYIN.match(who.name):
        return SubmissionName(form_name, who.department, who.extras, written=who.name)
    return who
