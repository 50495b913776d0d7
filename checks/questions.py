"""Whether a student's mail asks something a person should answer.

Pure: the mail's own words in (the quoted reply below them cut off), a yes or no out.
"""
from __future__ import annotations

import re

# Where a client starts quoting the mail answered: what follows is ours, not the student's.
_QUOTE_START = re.compile(
    r"^\s*(?:-{2,}\s*(?:原始邮件|Original Message|回复的原邮件)\s*-{2,}|"
    r"(?:发件人|From)\s*[:：]|在\s.*写道\s*[:：]?\s*$|On .* wrote:\s*$|>)",
    re.IGNORECASE | re.MULTILINE)
_QUESTION = re.compile(
    r"[?？]|吗|什么|怎么|怎样|如何|为什么|为啥|多久|何时|几点|几天|哪里|哪儿|能否|可否|是否|请问|"
    r"需不需要|要不要|能不能|可不可以|是不是|有没有")
# Courtesies a student writes above an attachment: text, but nothing to answer.
_COURTESY = re.compile(r"^[\s，,。.!！~～]*(?:老师)?(?:您好|你好|好)?[\s，,。.!！]*"
                       r"(?:附件是|附件为|见附件|附件|请查收|谢谢|麻烦了|辛苦了|我的|健康宝弹窗|健康宝|"
                       r"弹窗|材料|补交|[\s，,。.!！]|老师)*$")


def own_words(body: str) -> str:
    """The student's text: the body above the first quoted line, without blank lines."""
    match = _QUOTE_START.search(body or "")
    text = body[:match.start()] if match else (body or "")
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def asks_something(subject: str, body: str) -> bool:
    """Question words or a question mark in the student's own words (subject or body)."""
    return bool(_QUESTION.search(f"{subject}\n{own_words(body)}"))


def says_something(body: str) -> bool:
    """The student wrote more than a greeting or a thank-you above any quote."""
    text = own_words(body)
    return bool(text) and not _COURTESY.fullmatch(text)
