"""Students are answered however their mail program writes their name (issue 26).

Seen: `"Zhang San" <zs1@126.com>` (Outlook, Thunderbird, Apple Mail) and QQ Mail's and Foxmail's
`"=?gb18030?B?…?=" <123456@qq.com>` lost their address to a quote stripped from the decoded
header, and a mail without a sender was taken for a bounce: no case, no reply. Every mail here is
delivered over LMTP to the real Dovecot as a server delivers it, and handled by `intake poll`.
"""
from __future__ import annotations

import base64
import json

import pytest

from tests.support import builders as b
from tests.support.harness import Harness


# These worlds run on SQLite only.
pytestmark = pytest.mark.sqlite_only


def _word(text: str, charset: str) -> bytes:
    codec = "gbk" if charset.lower() in {"gb2312", "gbk"} else charset
    return f"=?{charset}?B?{base64.b64encode(text.encode(codec)).decode()}?=".encode()


# (From as the program writes it, the address a reply must go to, the student's name)
STYLES = {
    "bare": (b"zs1@126.com", "zs1@126.com", "张一"),
    "angle only": (b"<zs2@126.com>", "zs2@126.com", "张二"),
    "plain name": (b"Zhang San <zs3@126.com>", "zs3@126.com", "张三"),
    "quoted ASCII (Outlook, Thunderbird, Apple Mail)": (b'"Zhang Si" <zs4@126.com>', "zs4@126.com", "张四"),
    "quoted with a comma": (b'"Zhang, Wu" <zs5@126.com>', "zs5@126.com", "张五"),
    "quoted with angle brackets": (b'"Zhang <Liu>" <zs6@126.com>', "zs6@126.com", "张六"),
    "QQ Mail, quoted GB18030 word": (b'"' + _word("张七喆", "gb18030") + b'" <1234567@qq.com>',
                                     "1234567@qq.com", "张七"),
    "Foxmail, quoted UTF-8 word": (b'"' + _word("张八", "UTF-8") + b'" <zs8@foxmail.com>',
                                   "zs8@foxmail.com", "张八"),
    "unquoted encoded word": (_word("张九", "utf-8") + b" <zs9@163.com>", "zs9@163.com", "张九"),
    "GBK-only character labelled GB2312": (_word("李喆", "gb2312") + b" <lz10@163.com>",
                                           "lz10@163.com", "李喆"),
    "comment style": (b"zs11@126.com (Zhang Shiyi)", "zs11@126.com", "张十一"),
    "raw UTF-8, quoted (RFC 6532)": ('"张十二" <zs12@126.com>'.encode(), "zs12@126.com", "张十二"),
    "mixed-case address": (b"Zhang Shisan <ZhangShiSan.13@126.COM>", "zhangshisan.13@126.com", "张十三"),
    "quoted word then plain text": (b'"' + _word("张十四", "utf-8") + b'" (QQ) Junior <zs14@qq.com>',
                                    "zs14@qq.com", "张十四"),
}


def _submission(name: str, from_value: bytes) -> bytes:
    return b.mail(from_value=from_value, subject=f"{name}+物理系+健康宝弹窗",
                  attachments=[(f"{name}+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))])


def test_every_from_style_opens_one_case_and_gets_one_reply(world):
    for from_value, address, name in STYLES.values():
        world.deliver(_submission(name, from_value), envelope_from=address)
    # No address at all, nothing that says a machine sent it: kept for staff, never dropped.
    world.deliver(_submission("王五", b"Wang Wu"), envelope_from="ww@126.com")
    # A real bounce (null Return-Path) and a vacation notice: counted, never answered.
    world.deliver(b.mail(from_value=b"Mail Delivery System <MAILER-DAEMON>", subject="Undelivered Mail",
                         body="This is the mail system."), envelope_from="")
    world.deliver(b.mail(from_value=b'"Li, Si" <ls@163.com>', subject="自动回复：张伟+物理系+健康宝弹窗",
                         body="我正在休假。", headers={"Auto-Submitted": "auto-replied"}),
                  envelope_from="ls@163.com")

    polled = world.cli("poll")
    assert polled.returncode == 0, polled.stderr

    cases = world.cases_json()
    assert sorted((c["sender"], c["name"], c["status"]) for c in cases) == sorted(
        (address, name, "complete") for _, address, name in STYLES.values())
    for style, (_, address, name) in STYLES.items():
        replies = world.replies_to(address)
        assert len(replies) == 1, f"{style}: {len(replies)} replies to {address}"
        assert "已收齐" in replies[0].message["Subject"], style
    assert len(world.smtp.messages) == len(STYLES)  # nobody else: not the robots, not Wang Wu

    quarantine = json.loads(world.cli("quarantine", "--json").stdout)
    assert [row["error"].split(":")[0] for row in quarantine] == ["NoSender"]
    status = world.cli("status")
    assert status.returncode == 1
    assert "需要处理：隔离邮件：1 封" in status.stdout
    # The harness's set-up notice from postmaster@ is the other bounce.
    assert "今日未回复的自动邮件  退信 2 封、自动回复 1 封" in " ".join(status.stdout.split("\n"))
    assert json.loads(world.cli("status", "--json").stdout)["dropped_today"] == {
        "bounce": 2, "auto-reply": 1}
    # Once a person has dealt with it, the mail leaves the quarantine, unanswered.
    [held] = quarantine
    assert held["raw_path"] and (world.storage / held["raw_path"]).is_file()
    assert world.cli("quarantine", "--dismiss", str(held["id"])).returncode == 0
    assert world.cli("status").returncode == 0
    assert len(world.smtp.messages) == len(STYLES)


@pytest.fixture
def world_on_both(dovecot, smtp, mailbox_user, db_url, tmp_path, env_password):
    return Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path)


def _the_rule_before_issue_26(monkeypatch) -> None:
    """The daemon as it was: the From header decoded whole, its quotes stripped, the address then
    read by parseaddr; and a mail without a sender taken for a bounce. Used to record mails the
    way a running deployment recorded them, through the real pipeline."""
    import dataclasses
    import email.utils

    import intake.process.prepare as prepare
    from checks.classify import MailKind

    read_now, classify_now = prepare.read_mail, prepare.classify

    def read_mail(raw):
        read = read_now(raw)
        decoded = read.headers.get("from", [""])[0].strip().strip('"').strip()
        address = email.utils.parseaddr(decoded)[1]
        return dataclasses.replace(read, sender=address.lower() if "@" in address else "")

    def classify(facts, rules, own_addresses):
        return MailKind.BOUNCE if not facts.sender else classify_now(facts, rules, own_addresses)

    monkeypatch.setattr(prepare, "read_mail", read_mail)
    monkeypatch.setattr(prepare, "classify", classify)


def test_mails_dropped_as_bounces_are_handled_once_by_reprocess(world_on_both, monkeypatch):
    world = world_on_both
    dropped = {key: STYLES[key] for key in ("quoted ASCII (Outlook, Thunderbird, Apple Mail)",
                                            "QQ Mail, quoted GB18030 word",
                                            "Foxmail, quoted UTF-8 word")}
    answered = STYLES["bare"]
    for from_value, address, name in [*dropped.values(), answered]:
        world.deliver(_submission(name, from_value), envelope_from=address)
    # NetEase's 系统退信: a real bounce, which stays dropped.
    world.deliver(b.mail(from_value=b"Postmaster@163.com", subject="系统退信",
                         body="您发送的邮件被退回。"), envelope_from="")
    with monkeypatch.context() as before:
        _the_rule_before_issue_26(before)
        report, _ = world.poll()
    assert report.outcomes == {"ignored-auto": 3 + 2, "submission": 1}  # + the harness's notice
    assert [c["sender"] for c in world.cases_json()] == [answered[1]]
    assert json.loads(world.cli("status", "--json").stdout)["dropped_today"] == {"bounce": 5}

    dry = world.cli("reprocess", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("曾记为退信，现在看是提交材料") == 3
    assert "3 封曾记为退信的邮件将重新处理" in dry.stdout
    assert len(world.cases_json()) == 1 and len(world.smtp.messages) == 1

    applied = world.cli("reprocess", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "3 封邮件已重新处理；0 个登记已更新；已发送 3 封" in applied.stdout
    assert sorted((c["sender"], c["name"], c["status"]) for c in world.cases_json()) == sorted(
        (address, name, "complete") for _, address, name in [*dropped.values(), answered])
    for _, address, _ in [*dropped.values(), answered]:
        [reply] = world.replies_to(address)
        assert "已收齐" in reply.message["Subject"]
    assert len(world.smtp.messages) == 4  # the bounce and the notice stay unanswered

    again = world.cli("reprocess", "--yes")
    assert "0 封曾记为退信的邮件将重新处理" in again.stdout
    assert world.cli("poll").returncode == 0
    assert len(world.smtp.messages) == 4
    assert json.loads(world.cli("status", "--json").stdout)["dropped_today"] == {"bounce": 2}
