"""The naming rule `姓名+院（系）+健康宝弹窗`, read from a zip name or a mail subject."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

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
    parts = _PLUS.split(text)
    if len(parts) != 3:
        return None
    name, department, tail = (part.strip() for part in parts)
    if not tail.replace(" ", "").startswith(suffix):
        return None
    if not name or not department or not _NAME.match(name):
        return None
    department = department.replace("(", "（").replace(")", "）")
    return SubmissionName(name=name, department=department)
