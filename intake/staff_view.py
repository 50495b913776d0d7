"""How staff commands speak to people: Chinese labels, ages, tables aligned by display width,
local times; and how they speak to machines: ISO 8601 with the zone offset, to the second."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from wcwidth import wcswidth

CASE_STATUS = {"incomplete": "材料未齐", "complete": "材料齐全", "held": "暂缓报送",
               "rejected": "审核未通过"}
MAIL_OUTCOME = {"pending": "待处理", "submission": "提交材料", "follow-up": "补交材料",
                "question": "咨询（无附件）", "cloud-link": "网盘链接", "ignored-auto": "自动邮件，已忽略",
                "ignored-other": "无关邮件", "duplicate": "重复邮件", "too-old": "过旧邮件，未回复",
                "too-large": "邮件过大", "failed": "处理失败", "quarantined": "已隔离"}
REPLY_KIND = {"reply_complete": "已收齐回复", "reply_incomplete": "补交提醒",
              "reply_instructions": "提交说明", "reply_cloud_link": "网盘链接说明",
              "reply_renew_nucleic_acid": "补交核酸提醒", "reply_rejected": "审核未通过通知",
              "digest": "汇总邮件", "digest-resend": "汇总邮件（重发）"}
OUTBOX_STATUS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败"}
EVENT_KIND = {"opened": "登记", "item_received": "收到材料", "item_rejected": "材料不可用",
              "status": "状态变化", "reply_queued": "回复已排队", "reply_suppressed": "回复已抑制",
              "forwarded": "已报送", "held_back": "核酸超时，暂缓报送", "held": "暂缓",
              "released": "取消暂缓", "rejected": "审核未通过", "approved": "审核通过",
              "note": "备注", "exported": "导出材料", "purged": "已清除", "reprocessed": "重新检查",
              "ignored": "已忽略"}


def label(table: dict[str, str], code: str | None) -> str:
    """The Chinese word for a code; an unknown code is shown as it is rather than hidden."""
    return table.get(code or "", code or "-")


def iso(moment: datetime | None, zone: tzinfo) -> str | None:
    """Machine time: 2026-11-22T14:05:00+08:00."""
    return moment.astimezone(zone).replace(microsecond=0).isoformat() if moment else None


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago, as people say it: 刚刚, 6 分钟前, 3 小时前, 2 天前."""
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return "刚刚"
    if seconds < 3600:
        return f"{seconds // 60} 分钟前"
    if seconds < 86400:
        return f"{seconds // 3600} 小时前"
    return f"{seconds // 86400} 天前"


def width(text: str) -> int:
    """Terminal columns: a Chinese character takes two."""
    found = wcswidth(text)
    return found if found >= 0 else len(text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Lines of a table whose columns line up in a terminal, whatever the script."""
    cells = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(width(row[index]) for row in cells) for index in range(len(header))]
    return ["  ".join(pad(cell, widths[index]) if index < len(row) - 1 else cell
                      for index, cell in enumerate(row)).rstrip() for row in cells]


def event_detail(kind: str, detail: dict | None) -> str:
    """An event's details as a sentence fragment staff can read."""
    detail = dict(detail or {})
    if kind == "status":
        return f"{label(CASE_STATUS, detail.get('old'))} → {label(CASE_STATUS, detail.get('new'))}"
    if kind == "reply_queued":
        missing = "、".join(detail.get("missing") or [])
        return label(REPLY_KIND, detail.get("reply")) + (f"，缺少：{missing}" if missing else "")
    if kind in {"item_received", "item_rejected"}:
        usable = detail.get("usable", kind == "item_received")
        problem = detail.get("problem")
        return f"{detail.get('item', '')}：" + ("可用" if usable and not problem else f"不可用（{problem}）")
    if kind == "note":
        return str(detail.get("text", ""))
    if kind in {"held", "rejected"}:
        items = "、".join(detail.get("items") or [])
        return str(detail.get("reason", "")) + (f"；需重交：{items}" if items else "")
    if kind == "forwarded":
        return f"汇总编号 {detail.get('digest')}"
    return "；".join(f"{key}={value}" for key, value in detail.items())
