"""Issues 22 and 24: staff read Chinese, from one table of words (intake/staff/labels.py), in
the commands, on the desk and in the history; issue 21: a case from another department says so
wherever staff look at it (`intake case show`, the desk's case page, the register's details)."""
from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from checks.classify import MailKind
from checks.content_rules import NOT_BEIJING, POPUP_FOUR, POSITIVE
from intake.models import MailOutcome
from intake.pictures.readings import BLOCKED_STATES
from intake.record import cases as case_store
from intake.staff import labels, view
from intake.web.actions import ACTIONS
from intake.web.queue import STATUSES
from notifier.register import DETAIL_COLUMNS, DETAIL_TITLE
from notifier.replies import REPLY_KINDS
from notifier.wording import SENTENCES  # every code a student is told about
from tests.support import builders as b
from tests.support.harness import body_text
from tests.support.with_cases import ok

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.sqlite_only  # the words do not depend on the database
OFFICE = "changping@example.test"


# --- one table, and a word for every code the program records ---

def _calls(name: str) -> list[tuple[Path, ast.Call]]:
    """Every call of a function called `name` in intake/, with its file."""
    found = []
    for path in sorted((ROOT / "intake").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and name in (getattr(node.func, "attr", None),
                                                       getattr(node.func, "id", None)):
                found.append((path, node))
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def test_every_event_the_program_records_has_a_word_and_so_has_every_detail():
    calls = _calls("record_event")
    assert len(calls) > 20, "the scan found the calls"
    kinds, details, reasons = set(), set(), {}
    for path, call in calls:
        kind = _keyword(call, "kind")
        if kind is None and any(keyword.arg is None for keyword in call.keywords):
            continue  # passes on what its own caller wrote (Pipeline.record_event): checked there
        # A kind made at run time would escape this check: each is written where it is recorded.
        assert isinstance(kind, ast.Constant), f"{path}:{call.lineno}: kind is not a literal"
        kinds.add(kind.value)
        reason = _keyword(call, "reason")
        if isinstance(reason, ast.Constant):
            reasons[reason.value] = kind.value
        details |= {keyword.arg for keyword in call.keywords
                    if keyword.arg not in (None, "at", "kind", "case", "mail", "actor", "events")}
    assert kinds - set(labels.EVENTS) == set()
    assert details - set(labels.DETAIL_KEYS) == set()
    assert all(re.search(r"[\u4e00-\u9fff]", word) for word in labels.EVENTS.values())
    # A reason is shown in the history as staff read it, whether written where the event is
    # recorded or the kind of mail an ignored or quarantined one was.
    reasons |= {kind.value: "ignored" for kind in MailKind}
    assert len(reasons) > 5, "the scan found the reasons"
    shown = {reason: view.event_detail(kind, {"reason": reason}) for reason, kind in reasons.items()}
    assert {reason: line for reason, line in shown.items() if re.search(r"[A-Za-z]", line)} == {}


def test_every_state_mail_reply_and_action_has_a_word():
    statuses = {case_store.INCOMPLETE, case_store.COMPLETE, case_store.HELD, case_store.REJECTED}
    assert statuses | set(BLOCKED_STATES) | {"forwarded"} <= set(labels.CASE_STATES)
    assert set(STATUSES) <= set(labels.CASE_STATES)
    outcomes = {value for key, value in vars(MailOutcome).items() if key.isupper()}
    assert outcomes <= set(labels.MAIL_OUTCOMES)
    assert {kind.value for kind in MailKind} <= set(labels.MAIL_KINDS)
    queued = {_keyword(call, "kind").value for _, call in _calls("queue")
              if isinstance(_keyword(call, "kind"), ast.Constant)}
    assert len(queued) >= 4, "the scan found the outbox's own kinds"
    assert set(REPLY_KINDS) | queued | {"digest-resend"} <= set(labels.REPLY_KINDS)
    assert set(ACTIONS) == set(labels.ACTIONS)
    problems = {"rejected", "expired"} | {code for code in SENTENCES if "/" not in code}
    for path in sorted((ROOT / "checks").rglob("*.py")):
        problems |= {node.args[0].value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Problem"
                     and node.args and isinstance(node.args[0], ast.Constant)}
    assert problems - set(labels.PROBLEMS) == set()
    # 登记, never 案件, in any of the words.
    tables = [value for name, value in vars(labels).items() if name.isupper() and isinstance(value, dict)]
    assert not any("案件" in str(word) for table in tables for word in table.values())


def _word_tables_outside_labels() -> list[str]:
    """Dict literals outside intake/staff/labels.py that give three or more codes of one of its
    tables (states, actions, events, facts) Chinese words of their own."""
    tables = [labels.CASE_STATES, labels.ACTIONS, labels.EVENTS, labels.FACTS]
    found = []
    for package in ("intake", "notifier"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "intake" / "staff" / "labels.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Dict):
                    continue
                worded = {key.value for key, value in zip(node.keys, node.values)
                          if isinstance(key, ast.Constant) and isinstance(value, ast.Constant)
                          and isinstance(value.value, str) and re.search(r"[\u4e00-\u9fff]", value.value)}
                if any(len(worded & set(table)) >= 3 for table in tables):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_cli_the_desk_and_the_history_read_one_table():
    assert _word_tables_outside_labels() == []
    # 阳性, ④ and 不在北京 are states of their own, not "held", and 阳性 comes first.
    words = [labels.CASE_STATES[state] for state in (POSITIVE, POPUP_FOUR, NOT_BEIJING)]
    assert words == ["阳性", "温馨提示④", "不在北京"]
    assert labels.CASE_STATES[case_store.HELD] not in words
    assert sorted(labels.STATE_ORDER, key=labels.STATE_ORDER.get)[0] == POSITIVE


# --- what staff read from the commands and the desk ---

@pytest.fixture
def world(world):
    for name, department, sender, skip in [("张伟", "物理系", "zw@example.test", ()),
                                           ("李娜", "化学学院", "ln@example.test", ()),
                                           ("王芳", "物理系", "wf@example.test", ("核酸",))]:
        world.deliver(b.mail(sender=sender, subject=f"{name}+{department}+健康宝弹窗",
                             attachments=[("材料.zip", b.utf8_zip(b.five_pictures(skip=skip)))]))
    return world


# ASCII a staff member may meet in Chinese output: the command's name before an error, protocol
# names, the IMAP folder, file types.
_ALLOWED = {"intake", "IMAP", "SMTP", "UID", "UIDVALIDITY", "INBOX", "zip", "jpg", "png", "pdf", "xlsx",
            "eml", "html", "Ctrl"}


def english(text: str, *also: str) -> list[str]:
    """The English words in `text`, leaving out addresses, commands in backticks, names in 「」
    (folders, files), paths and the ASCII staff expect."""
    for known in also:
        text = text.replace(known, "")
    text = re.sub(r"`[^`]*`|「[^」]*」|\S+@\S+|/\S+", " ", text)
    return [word for word in re.findall(r"[A-Za-z][A-Za-z_()]+", text) if word not in _ALLOWED]


def test_commands_speak_chinese_to_staff(world, tmp_path):
    polled = ok(world.cli("poll"))
    assert "已处理：" in polled and "提交材料 3 封" in polled and "已发送 3 封" in polled
    ids = {c["name"]: c["id"] for c in world.cases_json()}
    outputs = {"poll": polled, "poll again": ok(world.cli("poll")),
               "cases": ok(world.cli("cases")),
               "status": world.cli("status").stdout,
               "quarantine": ok(world.cli("quarantine")),
               "reprocess": ok(world.cli("reprocess", "--dry-run"))}
    for name, case_id in ids.items():
        outputs[f"case show {name}"] = ok(world.cli("case", "show", str(case_id)))
    preview = tmp_path / "preview"
    outputs["digest --dry-run"] = ok(world.cli("digest", "--dry-run", "--out", str(preview)))
    outputs["digest"] = ok(world.cli("digest"))
    outputs["digest again"] = ok(world.cli("digest"))
    outputs["digests"] = ok(world.cli("digests"))
    outputs["purge"] = ok(world.cli("purge", "--older-than", "3650"))
    outputs["hold"] = ok(world.cli("case", "hold", str(ids["王芳"]), "--reason", "核对身份",
                                         "--by", "老师甲"))
    outputs["release"] = ok(world.cli("case", "release", str(ids["王芳"]), "--by", "老师甲"))
    refused = world.cli("case", "approve", str(ids["王芳"]), "--by", "老师甲")
    assert refused.returncode == 1
    outputs["approve refused"] = refused.stderr
    outputs["history"] = ok(world.cli("case", "show", str(ids["王芳"])))

    for name, text in outputs.items():
        assert english(text, str(preview)) == [], (name, text)
        assert "案件" not in text, name
    assert "汇总 1：报送 2 个登记" in outputs["digest"] and "试运行：报送 2 个登记" in outputs["digest --dry-run"]
    assert "未生成汇总" in outputs["digest again"] and "已清理：0 个登记" in outputs["purge"]
    assert "王芳" in outputs["cases"] and "材料未齐" in outputs["cases"]
    history = outputs["history"]
    assert "暂缓报送" in history and "取消暂缓" in history and "核对身份" in history
    assert "只有材料齐全的登记可以审核通过" in outputs["approve refused"]


def test_a_foreign_department_shows_in_case_show_on_the_desk_and_in_the_register(world):
    from intake.app import build_desk
    from intake.settings import load_settings
    from tests.support.desk import Browser, add_account

    ok(world.cli("poll"))
    ids = {c["name"]: c["id"] for c in world.cases_json()}
    foreign = ok(world.cli("case", "show", str(ids["李娜"])))
    assert re.search(r"院（系）\s+化学学院（不是本院系）", foreign), foreign
    ours = ok(world.cli("case", "show", str(ids["张伟"])))
    assert "不是本院系" not in ours and re.search(r"院（系）\s+物理系\n", ours), ours

    add_account(world, "admin", "admin")
    desk = build_desk(load_settings(world.config), testing=True)
    try:
        browser = Browser(desk)
        assert browser.login("admin").status_code == 302
        page = browser.get(f"/cases/{ids['李娜']}").get_data(as_text=True)
        assert re.search(r'id="foreign-department">不是本院系<', page)
        assert re.search(r'id="case-status">材料齐全<', page)
        assert 'id="foreign-department"' not in browser.get(f"/cases/{ids['张伟']}").get_data(as_text=True)
    finally:
        desk.extensions["desk"].engine.dispose()

    ok(world.cli("digest"))
    [digest] = world.smtp.to(OFFICE)
    assert "院系不是本院系：化学学院" in body_text(digest.message)  # the digest's table of cases
    [register] = [part.get_content() for part in digest.message.iter_attachments()
                  if part.get_filename().endswith(".xlsx")]
    details = load_workbook(io.BytesIO(register))[DETAIL_TITLE]
    header = [cell.value for cell in details[2]]
    assert tuple(header) == DETAIL_COLUMNS
    rows = {row[1]: dict(zip(header, row)) for row in details.iter_rows(min_row=3, values_only=True)}
    assert rows["李娜"]["院（系）"] == "化学学院"
    assert "院系不是本院系：化学学院" in (rows["李娜"]["提醒"] or "")
    assert "不是本院系" not in (rows["张伟"]["提醒"] or "")
