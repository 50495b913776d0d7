"""The one table of Chinese words staff read: a case's states, the desk's actions, the history's
events, mails, replies and what was read on the pictures. The CLI, the desk and the history all
take their words from here, so that one state is never called two things
(tests/test_staff_words.py checks that every code the program records has its word).

A case is a 登记 (never 案件); sending the day's cases to the office is 报送."""
from __future__ import annotations

# Statuses (intake.record.cases) and the states a reading holds a case in
# (intake.pictures.readings.case_state); "forwarded" is the desk's filter for cases already sent.
CASE_STATES = {"incomplete": "材料未齐", "complete": "材料齐全", "held": "暂缓报送",
               "rejected": "审核未通过", "positive": "阳性", "popup_four": "温馨提示④",
               "not_beijing": "不在北京", "forwarded": "已报送"}
# 阳性 first: staff must call that student at once; then what else waits on staff.
STATE_ORDER = {"positive": 0, "popup_four": 1, "not_beijing": 2}

# The desk's buttons (intake.web.actions.ACTIONS); "已" + the word says it was done.
ACTIONS = {"approve": "批准", "hold": "暂缓报送", "reject": "退回", "note": "备注",
           "reopen": "重新打开"}

# The history: every kind of event the program records (intake.record.cases.record_event).
EVENTS = {"opened": "登记", "item_received": "收到材料", "item_rejected": "材料不可用",
          "status": "状态变化", "reply_queued": "回复已排队", "reply_suppressed": "回复已抑制",
          "reply_superseded": "回复被取代，未发送", "question": "学生提问",
          "question_answered": "已答复提问", "name_from_forms": "姓名按表格（来信写法另记）",
          "reply_skipped": "重复邮件，未再回复", "forwarded": "已报送",
          "held_back": "核酸超时，暂缓报送", "held": "暂缓报送", "released": "取消暂缓",
          "rejected": "审核未通过", "approved": "审核通过", "note": "备注", "exported": "导出材料",
          "purged": "已清除", "reprocessed": "重新检查", "ignored": "已忽略", "quarantined": "已隔离",
          "handled_again": "重新处理", "dismissed": "移出隔离", "item_expired": "材料过期",
          "alert_queued": "已提醒老师", "reopened": "重新打开"}

MAIL_OUTCOMES = {"pending": "待处理", "submission": "提交材料", "follow-up": "补交材料",
                 "question": "咨询（无附件）", "cloud-link": "网盘链接", "ignored-auto": "自动邮件，已忽略",
                 "ignored-other": "无关邮件", "duplicate": "重复邮件", "too-old": "过旧邮件，未回复",
                 "too-large": "邮件过大", "failed": "处理失败", "quarantined": "已隔离"}
# What a mail is (checks.classify.MailKind): `intake reprocess` says what a dropped one is now.
MAIL_KINDS = {"own": "本邮箱发出", "bounce": "退信", "report": "机器报告", "auto-reply": "自动回复",
              "submission": "提交材料", "cloud-link": "网盘链接", "question": "咨询（无附件）",
              "other": "无关邮件", "no-sender": "读不出发件人的邮件"}
# Every kind of outgoing mail (notifier.replies.REPLY_KINDS and what intake queues itself).
REPLY_KINDS = {"reply_complete": "已收齐回复", "reply_incomplete": "补交提醒",
               "reply_instructions": "提交说明", "reply_cloud_link": "网盘链接说明",
               "reply_renew_nucleic_acid": "补交核酸提醒", "reply_rejected": "审核未通过通知",
               "reply_unchanged": "重复发送回复", "reply_question": "问题已收到回复",
               "reply_answer": "老师答复", "reply_no_popup": "未见弹窗说明",
               "reply_nucleic_acid_unclear": "核酸待人工核对说明",
               "digest": "汇总邮件", "digest-resend": "汇总邮件（重发）",
               "reply_positive": "阳性结果通知", "reply_popup_four": "温馨提示④说明",
               "reply_not_beijing": "不在北京说明", "alert_positive": "阳性提醒（给老师）",
               "approval_reminder": "待审核提醒（给老师）"}
OUTBOX_STATES = {"pending": "待发送", "sent": "已发送", "failed": "发送失败",
                 "superseded": "未发送（被后一封回复取代）"}
# What became of a digest's mails (intake.digest.listing).
DIGEST_STATES = {"sent": "已发送", "failed": "发送失败", "waiting": "待发送",
                 "nothing to send": "无需发送（只有暂缓的登记）"}
ROLES = {"reviewer": "审核人", "admin": "管理员"}
# Why a mail was not answered (the reason of its "ignored" event).
DROP_REASONS = {"bounce": "退信", "auto-reply": "自动回复", "report": "机器报告",
                "own": "本邮箱发出"}
# Why the system did something, as recorded (codes and English) and as staff read it.
REASONS = {"sampled too long ago": "核酸采样已超过时限",
           "nucleic acid result too old": "核酸结果已超过时限",
           "per-sender cap": "已达每人每天回复上限",
           "same as the mail before": "与前一封邮件相同",
           "new pictures clear the reading's hold": "新图片解除了读图暂缓",
           "positive": "核酸阳性", "popup_four": "温馨提示④", "not_beijing": "不在北京",
           "expired": "已过期", "auto-reply": "自动回复", "bounce": "退信", "report": "系统报告"}
DETAIL_KEYS = {"item": "材料", "reason": "原因", "cap": "上限", "digest": "汇总编号",
               "received_at": "收到时间", "alert": "提醒", "problem": "问题", "reply": "回复",
               "old": "原状态", "new": "新状态", "text": "内容", "items": "材料", "folder": "文件夹",
               "files": "文件数", "older_than_days": "保留天数", "error": "错误",
               "written": "来信写法", "question": "提问编号", "answer": "答复", "missing": "缺少材料",
               "outbox": "回复编号", "usable": "可用", "was": "原处理结果"}
# Why an item cannot be used (checks' problem codes, notifier.wording says them to the student;
# staff also set rejected, and the digest expired).
PROBLEMS = {"empty": "空文件", "not_picture": "不是图片", "undecodable": "图片已损坏",
            "type_not_allowed": "文件格式不接受", "shows_other": "内容是另一项材料",
            "refiled": "已按内容归类", "taken_as": "已按内容归类", "too_small": "图片太小",
            "document": "未签字的空白表格", "member_corrupt": "文件已损坏", "member_too_large": "文件过大",
            "member_ratio": "解压后异常巨大", "member_encrypted": "文件设有密码",
            "unsupported_method": "压缩方式不支持", "doubtful_name": "文件名无法识别",
            "duplicate": "同一材料多个文件", "same_item_newer": "有较新的文件",
            "nucleic_acid_too_old": "核酸超过时限", "nucleic_acid_expires_before_digest": "核酸将在报送前过期",
            "encrypted": "压缩包设有密码", "rar": "RAR 压缩包", "7z": "7z 压缩包", "not_zip": "不是 zip",
            "corrupt_archive": "压缩包已损坏", "overlapping": "压缩包结构异常",
            "too_many_members": "压缩包文件过多", "archive_too_large": "压缩包解压后过大",
            "too_deep": "压缩包层数过多", "extra_name_parts": "名称有多余内容",
            "rejected": "审核退回，需重交", "expired": "核酸已过期"}
# What was read on a picture (checks.facts), field by field.
FACTS = {"looks_like": "内容", "result": "检测结果", "sampled_at": "核酸采样时间",
         "tested_at": "检测时间", "name": "姓名", "popup": "弹窗编号", "shown_at": "截图时间",
         "places": "到达或途经", "starred": "带*城市", "updated_at": "更新于", "days": "天数",
         "doubts": "存疑"}
# A case from a department that is not this mailbox's (checks.content_rules.department_flags).
FOREIGN_DEPARTMENT = "不是本院系"


def label(table: dict[str, str], code: str | None) -> str:
    """The Chinese word for a code; an unknown code is shown as it is rather than hidden."""
    return table.get(code or "", code or "-")
