"""How staff commands speak to people: Chinese labels, ages, tables aligned by display width,
local times; and how they speak to machines: ISO 8601 with the zone offset, to the second."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime, tzinfo

from intake.staff import labels
from intake.staff.labels import label
from notifier.cells import csv_text


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
    from wcwidth import wcswidth  # here: only tables need it, and it costs 9 ms of start-up

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
        reason = detail.get("reason")
        return (f"{label(labels.CASE_STATES, detail.get('old'))} → {label(labels.CASE_STATES, detail.get('new'))}"
                + (f"（{label(labels.REASONS, reason)}）" if reason else ""))
    if kind == "reply_queued":
        missing = "、".join(detail.get("missing") or [])
        return label(labels.REPLY_KINDS, detail.get("reply")) + (f"，缺少：{missing}" if missing else "")
    if kind in {"item_received", "item_rejected"}:
        usable = detail.get("usable", kind == "item_received")
        problem = detail.get("problem")
        return f"{detail.get('item', '')}：" + ("可用" if usable and not problem
                                               else f"不可用（{label(labels.PROBLEMS, problem)}）")
    if kind == "note":
        return str(detail.get("text", ""))
    if kind in {"held", "rejected"}:
        items = "、".join(detail.get("items") or [])
        return str(detail.get("reason", "")) + (f"；需重交：{items}" if items else "")
    if kind == "forwarded":
        return f"汇总编号 {detail.get('digest')}"
    return "；".join(f"{label(labels.DETAIL_KEYS, key)}：{_detail_value(value)}" for key, value in detail.items())


def _detail_value(value) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(part) for part in value)
    text = str(value)
    return (labels.REASONS.get(text) or labels.REPLY_KINDS.get(text) or labels.MAIL_OUTCOMES.get(text)
            or labels.MAIL_KINDS.get(text) or labels.PROBLEMS.get(text) or text)


def shown(moment: str | None, zone: tzinfo) -> str:
    """An ISO time as staff read it, in the configured zone, to the minute."""
    return datetime.fromisoformat(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _case_state(row: dict) -> str:
    state = label(labels.CASE_STATES, row.get("state") or row["status"])
    return f"{state}（已报送）" if row.get("digest_id") else state


def cases_table(rows: Sequence[dict], zone: tzinfo, now: datetime) -> list[str]:
    """`intake cases` for people: 阳性 first."""
    rows = sorted(rows, key=lambda row: labels.STATE_ORDER.get(row.get("state") or "", 9))
    return table(
        ["登记编号", "状态", "姓名", "院（系）", "邮箱", "登记时间", "最近更新", "缺少材料"],
        [[row["id"], _case_state(row), row["name"], row["department"], row["sender"],
          shown(row["created_at"], zone), age(datetime.fromisoformat(row["updated_at"]), now),
          "、".join(row["missing"]) or "-"] for row in rows])


_CSV_COLUMNS = {"id": "登记编号", "name": "姓名", "department": "院（系）", "sender": "邮箱",
                "status": "状态", "missing": "缺少材料", "created_at": "登记时间",
                "completed_at": "材料齐全时间", "digest_id": "汇总编号", "approved": "已审核"}


def cases_csv(rows: Sequence[dict]) -> str:
    """For Excel: Chinese headers and words, UTF-8 with a BOM so that Excel does not guess GBK."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS.values())
    for row in rows:
        writer.writerow([csv_text(
            "、".join(row[key]) if key == "missing"
            else label(labels.CASE_STATES, row.get("state") or row[key]) if key == "status"
            else ("是" if row[key] else "否") if key == "approved"
            else "" if row[key] is None else row[key])
            for key in _CSV_COLUMNS])
    return "\ufeff" + buffer.getvalue()


def department_shown(case: dict) -> str:
    """The department as written, marked when it is not this mailbox's (issue 21)."""
    foreign = f"（{labels.FOREIGN_DEPARTMENT}）" if case.get("foreign_department") else ""
    return f"{case['department']}{foreign}"


def case_lines(case: dict, zone: tzinfo) -> list[str]:
    """`intake case show` for people: the case, its items, mails, replies and history."""
    def when(moment):
        return shown(moment, zone)
    hold = f"（{case['hold_reason']}）" if case["hold_reason"] else ""
    lines = table(["", ""], [
        ["登记编号", case["id"]], ["姓名", case["name"]], ["院（系）", department_shown(case)],
        ["邮箱", case["sender"]],
        ["状态", label(labels.CASE_STATES, case.get("state") or case["status"]) + hold],
        ["登记时间", when(case["created_at"])], ["材料齐全时间", when(case["completed_at"])],
        ["已报送（汇总编号）", case["digest_id"] or "-"], ["审核人", case["approved_by"] or "-"],
        ["缺少材料", "、".join(case["missing"]) or "-"]])[1:]
    lines += ["", "材料："] + table(["  材料", "状态", "收到时间", "来自邮件", "原文件名"], [
        [f"  {item['kind']}", "可用" if item["usable"] else f"不可用（{label(labels.PROBLEMS, item['problem'])}）",
         when(item["received_at"]), item["mail_id"], item["file"]] for item in case["items"]])
    lines += ["", "邮件："] + table(["  邮件编号", "文件夹", "UID", "处理结果", "收取时间"], [
        [f"  {mail['id']}", mail["folder"], mail["uid"], label(labels.MAIL_OUTCOMES, mail["outcome"]),
         when(mail["fetched_at"])] for mail in case["mails"]])
    lines += ["", "回复："] + table(["  编号", "类型", "状态", "排队时间", "发出时间"], [
        [f"  {reply['id']}", label(labels.REPLY_KINDS, reply["kind"]), label(labels.OUTBOX_STATES, reply["status"]),
         when(reply["queued_at"]), when(reply["sent_at"])] for reply in case["replies"]])
    lines += ["", "经过："] + table(["  时间", "操作人", "事件", "详情"], [
        [f"  {when(event['at'])}", "系统" if event["actor"] == "system" else event["actor"],
         label(labels.EVENTS, event["kind"]), event_detail(event["kind"], event["detail"])]
        for event in case["history"]])
    return lines


def status_lines(found, zone: tzinfo, now: datetime) -> list[str]:
    """`intake status` for people; `found` is intake.ops.status.Status (its times are ISO)."""
    rows = [[f"文件夹「{folder['folder']}」", "上次成功收信 " + shown(folder["last_poll"], zone)
             + (f"（{age(datetime.fromisoformat(folder['last_poll']), now)}）"
                if folder["last_poll"] else "（从未）")] for folder in found.folders]
    rows.append(["今日处理", "、".join(f"{label(labels.MAIL_OUTCOMES, k)} {v} 封"
                                     for k, v in sorted(found.handled_today.items())) or "无"])
    dropped = sorted(found.dropped_today.items(), key=lambda pair: (
        list(labels.DROP_REASONS).index(pair[0]) if pair[0] in labels.DROP_REASONS else len(labels.DROP_REASONS), pair[0]))
    rows.append(["今日未回复的自动邮件", "、".join(f"{label(labels.DROP_REASONS, k)} {v} 封"
                                          for k, v in dropped) or "无"])
    rows.append(["未报送的登记", "、".join(f"{label(labels.CASE_STATES, k)} {v} 人"
                                       for k, v in sorted(found.cases.items())) or "无"])
    rows.append(["待发邮件", f"{found.outbox_pending} 封（最早排队于 {shown(found.oldest_pending, zone)}），"
                             f"近 7 天发送失败 {found.outbox_failed_recently} 封"])
    rows.append(["隔离邮件", f"{found.quarantined} 封"])
    if found.pictures_waiting:
        rows.append(["读图队列", f"{found.pictures_waiting} 张图片待读"])
    if found.questions_open:
        rows.append(["学生提问", f"{found.questions_open} 个待回复（`intake questions`）"])
    last = found.last_digest
    rows.append(["上次汇总", f"#{last['id']}（{last['date']}），生成于 {shown(last['made_at'], zone)}，"
                             f"报送 {last['cases']} 人" if last else "无"])
    names = {"poll": "收信", "digest": "汇总", "purge": "清理"}
    rows.append(["下次运行", "，".join(f"{names.get(k, k)} {shown(v, zone)}"
                                      for k, v in found.next_runs.items())])
    lines = table(["", ""], rows)[1:]
    lines += [f"需要处理：{line}" for line in found.attention]
    return lines + ([] if found.attention else ["一切正常"])


def sent_words(drained) -> str:
    """What the outbox did (intake.outbox.drain's report), as staff read it."""
    return f"已发送 {drained.sent} 封，待重发 {drained.retrying} 封，发送失败 {drained.failed} 封"


def poll_summary(outcomes: dict[str, int], drained) -> str:
    """`intake poll`'s one line: the mails handled by what they were, then what was sent."""
    handled = "、".join(f"{label(labels.MAIL_OUTCOMES, outcome)} {count} 封"
                       for outcome, count in sorted(outcomes.items()))
    return f"已处理：{handled or '没有新邮件'}；{sent_words(drained)}"
