"""The daily digest to the Changping office: table, register spreadsheet, one zip per case,
split into self-contained parts when the materials exceed the message size."""
from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from notifier.compose import FileAttachment, OutgoingMail, build_message, new_message_id
from notifier.register import REGISTER_COLUMNS, register_xlsx  # noqa: F401 (re-exported)
from notifier.render import TemplateRenderer, local_time

_BASE64_GROWTH = 1.37  # base64 with line breaks
_PART_OVERHEAD = 200_000  # headers, text, HTML and the spreadsheet


@dataclass(frozen=True)
class DigestCase:
    case_id: int
    name: str
    department: str
    sender: str
    submitted_at: datetime
    completed_at: datetime
    nucleic_acid_at: datetime | None
    mail_ids: tuple[int, ...]
    files: tuple[FileAttachment, ...]  # canonical names, e.g. 核酸.jpg
    sampled_at: datetime | None = None  # 核酸 sampling time as read from the picture
    facts: dict = field(default_factory=dict, hash=False, compare=False)  # read, keyed by item
    flags: tuple[str, ...] = ()
    approved_by: str | None = None  # who in the department checked it with the student
    approved_at: datetime | None = None
    opinion: str = ""  # 院系（处级部门）意见, given once the case is approved

    @property
    def archive_name(self) -> str:
        return f"{self.name}+{self.department}+健康宝弹窗.zip"

    def archive(self, stamp: datetime) -> FileAttachment:
        """The case's files in one zip; members dated `stamp` as the office's clock shows it
        (zip times carry no zone: give a local time)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for file in self.files:
                member = zipfile.ZipInfo(file.name, date_time=stamp.timetuple()[:6])
                member.flag_bits |= 0x800  # UTF-8 names, so 核酸.jpg is not mojibake on Windows
                archive.writestr(member, file.data)
        return FileAttachment(self.archive_name, buffer.getvalue())


def split_into_parts(cases: Sequence[DigestCase], max_bytes: int) -> list[list[DigestCase]]:
    """Greedy, in the given (stable) order; a case bigger than a part still gets a part alone."""
    parts: list[list[DigestCase]] = []
    current: list[DigestCase] = []
    size = _PART_OVERHEAD
    for case in cases:
        weight = int(sum(len(f.data) for f in case.files) * _BASE64_GROWTH) + 2_000
        if current and size + weight > max_bytes:
            parts.append(current)
            current, size = [], _PART_OVERHEAD
        current.append(case)
        size += weight
    if current or not parts:
        parts.append(current)
    return parts


@dataclass(frozen=True)
class DigestAddressing:
    sender: str
    sender_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    office_name: str
    department_name: str = ""  # who sends it, in the subject and the signature
    contact: str = ""          # whom the office calls about it


def build_digest(cases: Sequence[DigestCase], *, date_label: str, digest_id: int,
                 held_back: Sequence[DigestCase], renderer: TemplateRenderer,
                 addressing: DigestAddressing, max_bytes: int, now: datetime,
                 zone: tzinfo, extra: dict | None = None) -> list[OutgoingMail]:
    """One mail per part (one mail in all when everything fits)."""
    parts = split_into_parts(cases, max_bytes)
    mails = []
    for number, part in enumerate(parts, start=1):
        context = {
            "date": date_label, "digest_id": digest_id, "office": addressing.office_name,
            "department_name": addressing.department_name, "contact": addressing.contact,
            "sender_name": addressing.sender_name,
            "part": number, "parts": len(parts), "total": len(cases), "count": len(part),
            "cases": [_row(case, zone) for case in part],
            "held_back": [_row(case, zone) for case in held_back] if number == 1 else [],
            "waiting": 0,
            **(extra or {}),
        }
        kind = "digest" if cases else "digest_empty"
        attachments = []
        if part:
            attachments.append(FileAttachment(f"健康宝异常人员信息登记表-{date_label}"
                                               f"{'-' + str(number) if len(parts) > 1 else ''}.xlsx",
                                               register_xlsx(part, zone,
                                                             department=addressing.department_name,
                                                             date_label=date_label)))
            attachments += [case.archive(now.astimezone(zone)) for case in part]
        mails.append(build_message(
            sender=addressing.sender, sender_name=addressing.sender_name, to=addressing.to,
            cc=addressing.cc, rendered=renderer.render(kind, context),
            message_id=new_message_id(addressing.sender), date=now, attachments=attachments))
    return mails


def _row(case: DigestCase, zone: tzinfo) -> dict:
    return {
        "case_id": case.case_id, "name": case.name, "department": case.department,
        "sender": case.sender, "completed_at": local_time(case.completed_at, zone) or "",
        "nucleic_acid_at": local_time(case.nucleic_acid_at, zone) or "",
        "archive": case.archive_name,
        "sampled_at": local_time(case.sampled_at, zone) or "",
        "popup": ((case.facts or {}).get("健康宝") or {}).get("popup") or "",
        "flags": "；".join(case.flags),
        "approved_by": case.approved_by or "",
    }
