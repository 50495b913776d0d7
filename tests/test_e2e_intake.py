"""The intake pipeline end to end: real Dovecot, real SMTP, SQLite and PostgreSQL."""
from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from tests.support import builders as b
from tests.support.harness import Harness, body_text, html_text

STUDENT = "zhangwei@example.test"


def _submission(files, name="张伟+物理系+健康宝弹窗.zip", zipper=b.windows_gbk_zip, **kwargs):
    return b.mail(sender=kwargs.pop("sender", STUDENT), attachments=[(name, zipper(files))], **kwargs)


def test_complete_windows_zip_gets_one_ack_and_a_complete_case(world):
    world.deliver(_submission(b.five_pictures(), style="rfc2047-gb2312"))
    world.poll()

    replies = world.replies_to(STUDENT)
    assert len(replies) == 1
    reply = replies[0].message
    assert "已收齐" in reply["Subject"] and "张伟" in reply["Subject"]
    text = body_text(reply)
    assert "五项已全部收到" in text and "昌平学工办" in text
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["From"].addresses[0].addr_spec == world.address
    assert replies[0].sender == world.address

    cases = world.cases_json()
    assert [(c["name"], c["department"], c["sender"], c["status"], c["missing"]) for c in cases] == [
        ("张伟", "物理系", STUDENT, "complete", [])]


def test_one_log_line_per_handled_mail_with_case_and_timing(world):
    world.deliver(_submission(b.five_pictures()))
    result = world.cli("poll")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "outcome=" in line and "uid=" in line]
    assert len(lines) == 2  # the set-up notice and the submission
    assert "outcome=submission case=1 " in lines[1] and " ms=" in lines[1]


def test_incomplete_then_follow_up_completes_the_case(world):
    original = _submission(b.five_pictures(skip=("核酸",)), zipper=b.macos_zip,
                           message_id="<first@example.test>")
    world.deliver(original)
    world.poll()
    [first] = world.replies_to(STUDENT)
    assert "材料未齐" in first.message["Subject"]
    text = body_text(first.message)
    assert "核酸" in text.split("还缺少或不可用的材料")[1]
    assert first.message["In-Reply-To"] == "<first@example.test>"
    assert "<first@example.test>" in first.message["References"]
    assert world.cases_json()[0]["missing"] == ["核酸"]

    follow_up = b.mail(sender=STUDENT, subject="Re: 材料未齐：张伟+物理系+健康宝弹窗，请补充",
                       attachments=[("核酸.jpg", b.picture())], style="rfc2047-utf8")
    world.deliver(follow_up)
    world.poll()
    replies = world.replies_to(STUDENT)
    assert len(replies) == 2
    assert "已收齐" in replies[1].message["Subject"]
    [case] = world.cases_json()
    assert case["status"] == "complete" and case["missing"] == []


def test_follow_up_without_the_rule_joins_the_senders_only_case(world):
    world.deliver(_submission(b.five_pictures(skip=("行程码",))))
    world.poll()
    world.deliver(b.mail(sender=STUDENT, subject="补交行程码", attachments=[("行程码.png", b.picture("PNG"))]))
    world.poll()
    [case] = world.cases_json()
    assert case["status"] == "complete"
    assert len(world.replies_to(STUDENT)) == 2


def test_same_name_from_another_address_is_another_case(world):
    world.deliver(_submission(b.five_pictures()))
    world.deliver(_submission({"核酸.jpg": b.picture()}, sender="imposter@example.test"))
    world.poll()
    cases = sorted(world.cases_json(), key=lambda c: c["sender"])
    assert [(c["sender"], c["status"]) for c in cases] == [
        ("imposter@example.test", "incomplete"), (STUDENT, "complete")]


def test_same_mail_in_inbox_and_junk_is_answered_once(world):
    raw = _submission(b.five_pictures(), message_id="<twice@example.test>")
    world.deliver(raw)
    world.deliver(raw, folder="Junk")
    world.poll()
    world.poll()
    assert len(world.replies_to(STUDENT)) == 1
    outcomes = sorted(m.outcome for m in world.mails() if m.message_id == "<twice@example.test>")
    assert outcomes == ["duplicate", "submission"]


def test_a_mail_delivered_twice_in_a_row_is_answered_once(world):
    # Both copies arrive in one chunk of the same poll: recorded together, one is the duplicate.
    raw = _submission(b.five_pictures(), message_id="<copy@example.test>")
    world.deliver(b.mail(sender="other@example.test", subject="会议通知", body="下周一开会。"))
    world.deliver(raw)
    world.deliver(raw)
    world.poll()
    assert len(world.replies_to(STUDENT)) == 1
    outcomes = sorted(m.outcome for m in world.mails() if m.message_id == "<copy@example.test>")
    assert outcomes == ["duplicate", "submission"]
    [case] = world.cases_json()
    assert case["status"] == "complete"


def test_junk_folder_submissions_are_handled(world):
    world.deliver(_submission(b.five_pictures()), folder="Junk")
    world.poll()
    assert len(world.replies_to(STUDENT)) == 1


@pytest.mark.parametrize("headers,sender,subject", [
    ({"Auto-Submitted": "auto-replied"}, STUDENT, "张伟+物理系+健康宝弹窗"),
    ({"X-Autoreply": "yes"}, STUDENT, "张伟+物理系+健康宝弹窗"),
    ({"Precedence": "bulk"}, STUDENT, "健康宝"),
    ({}, STUDENT, "自动回复：我正在休假"),
    ({}, "Postmaster@126.com", "系统退信"),
    ({}, "mailer-daemon@example.test", "Undelivered Mail Returned to Sender"),
])
def test_auto_replies_and_bounces_are_never_answered(world, headers, sender, subject):
    world.deliver(b.mail(sender=sender, subject=subject, headers=headers,
                         attachments=[("张伟+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    assert world.smtp.messages == []
    assert world.cases_json() == []


def test_null_return_path_and_own_address_are_never_answered(world):
    world.deliver(b.mail(sender=STUDENT, subject="健康宝弹窗"), envelope_from="")
    world.deliver(b.mail(sender=world.address, subject="健康宝弹窗 问题"))
    world.poll()
    assert world.smtp.messages == []


def test_question_cloud_link_and_other_mail(world):
    world.deliver(b.mail(sender="asker@example.test", subject="请问健康宝弹窗怎么处理？"))
    world.deliver(b.mail(sender="cloud@example.test", subject="张伟+物理系+健康宝弹窗",
                         body="从QQ邮箱发来的超大附件 https://mail.qq.com/cgi-bin/ftnExs_download?k=abc"))
    world.deliver(b.mail(sender="other@example.test", subject="下周组会时间",
                         body="大家好，组会改到周三。"))
    world.poll()
    # A question reaches a person (issue 21); one who has no case also learns how to submit.
    [instructions] = world.replies_to("asker@example.test")
    assert "已收到你的问题" in instructions.message["Subject"]
    assert "老师会尽快回复你" in body_text(instructions.message)
    assert "承诺书" in body_text(instructions.message)
    [cloud] = world.replies_to("cloud@example.test")
    assert "附件" in cloud.message["Subject"] and "直接" in body_text(cloud.message)
    assert world.replies_to("other@example.test") == []
    assert world.cases_json() == []


@pytest.mark.parametrize("archive,expected", [
    (lambda: b.zipcrypto_zip(b.five_pictures()), "设置了密码"),
    (lambda: b.aes_zip(b.five_pictures()), "设置了密码"),
    (lambda: b"Rar!\x1a\x07\x01\x00" + os.urandom(200), "RAR 格式"),
    (lambda: b"7z\xbc\xaf\x27\x1c" + os.urandom(200), "7z 格式"),
    (lambda: b"%PDF-1.4 not a zip", "不是有效的 zip"),
])
def test_unreadable_archives_are_explained(world, archive, expected):
    world.deliver(b.mail(sender=STUDENT, attachments=[("张伟+物理系+健康宝弹窗.zip", archive())]))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    assert expected in body_text(reply.message)
    assert world.cases_json()[0]["missing"] == list(b.ITEMS)


def test_heic_and_webp_are_accepted_and_broken_pictures_are_not(world):
    files = b.five_pictures(ext="heic")
    files["健康宝.heic"] = b.picture("WEBP")
    broken = b.picture()
    files["核酸.heic"] = broken[: len(broken) // 2]
    world.deliver(_submission(files, zipper=b.utf8_zip))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    text = body_text(reply.message)
    assert "核酸.heic" in text and "已损坏" in text
    assert world.cases_json()[0]["missing"] == ["核酸"]


@pytest.mark.parametrize("style", ["rfc2231", "rfc2047-gb2312", "raw-gbk", "raw-utf8", "name-only"])
def test_attachment_names_decode_whatever_the_client(world, style):
    name = "李喆+化学系+健康宝弹窗.zip"  # 喆 is GBK-only: GB2312 labels lie about it
    world.deliver(b.mail(sender=STUDENT, subject="材料", style=style,
                         attachments=[(name, b.windows_gbk_zip(b.five_pictures()))]))
    world.poll()
    [case] = world.cases_json()
    assert (case["name"], case["department"], case["status"]) == ("李喆", "化学系", "complete")


def test_loose_pictures_and_forwarded_zip_count(world):
    loose = [(n, d) for n, d in b.five_pictures().items()]
    world.deliver(b.mail(sender="loose@example.test", subject="王芳+数学系+健康宝弹窗", attachments=loose))
    inner = _submission(b.five_pictures(), name="赵六+化学系+健康宝弹窗.zip", sender="fwd@example.test")
    world.deliver(b.forwarded(inner, sender="fwd@example.test"))
    world.poll()
    by_sender = {c["sender"]: c for c in world.cases_json()}
    assert by_sender["loose@example.test"]["status"] == "complete"
    assert by_sender["fwd@example.test"]["name"] == "赵六"
    assert by_sender["fwd@example.test"]["status"] == "complete"


def test_name_rule_violation_is_told_with_the_rule(world):
    world.deliver(b.mail(sender=STUDENT, subject="材料", attachments=[("材料.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    text = body_text(reply.message)
    assert "姓名+院（系）+健康宝弹窗" in text and "无法从压缩包名或邮件主题中识别" in text
    assert world.cases_json() == []


def test_unmatched_files_are_named(world):
    files = b.five_pictures(skip=("情况说明",))
    files["IMG_2045.jpg"] = b.picture()
    world.deliver(_submission(files, zipper=b.utf8_zip))
    world.poll()
    text = body_text(world.replies_to(STUDENT)[0].message)
    assert "IMG_2045.jpg" in text.split("无法对应")[1]
    assert "情况说明" in text.split("还缺少或不可用的材料")[1]


def test_old_mail_is_recorded_but_never_answered(world):
    world.append(_submission(b.five_pictures()), when=datetime.now(timezone.utc) - timedelta(days=30))
    world.poll()
    assert world.smtp.messages == []
    assert "too-old" in [m.outcome for m in world.mails()]


def test_second_poll_handles_nothing_twice_and_leaves_seen_alone(world):
    world.deliver(_submission(b.five_pictures()))
    world.poll()
    report, _ = world.poll()
    assert sum(report.outcomes.values()) == 0
    assert len(world.replies_to(STUDENT)) == 1
    flags = world.flags()
    assert all(b"\\Seen" not in f for f in flags.values())
    assert all(b"$JkbIntake" in f for f in flags.values())


def test_uidvalidity_change_does_not_answer_again(world):
    raw = _submission(b.five_pictures(), message_id="<renumbered@example.test>")
    world.deliver(raw, folder="Junk")
    world.poll()
    client = world.imap()
    try:
        client.delete_folder("Junk")
        client.create_folder("Junk")
        client.append("Junk", raw)
    finally:
        client.logout()
    world.poll()
    assert len(world.replies_to(STUDENT)) == 1
    assert [m.outcome for m in world.mails() if m.message_id == "<renumbered@example.test>"] == [
        "submission", "duplicate"]


def test_materials_are_private_and_named_by_the_project(world):
    files = b.five_pictures()
    hostile = {"..\\..\\..\\evil.jpg": b.picture(), "../../承诺书.jpg": files.pop("承诺书.jpg")}
    world.deliver(_submission({**files, **hostile}))
    world.poll()
    root = world.storage
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
        assert "evil" not in path.name and ".." not in path.name
    assert not (root.parent / "evil.jpg").exists()
    case_files = sorted(p.name.split("-")[0] for p in (root / "cases").rglob("*.jpg"))
    assert case_files == sorted(b.ITEMS)


def test_oversized_member_only_costs_its_own_item(dovecot, smtp, mailbox_user, db_url, tmp_path,
                                                  env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=db_url, tmp_path=tmp_path,
                    extra_config="[rules]\nmax_member_bytes = 1048576\n")
    files = b.five_pictures()
    files["核酸.jpg"] = b"\xff\xd8\xff" + os.urandom(2 * 1024 * 1024)
    world.deliver(_submission(files, zipper=b.utf8_zip))
    world.poll()
    [case] = world.cases_json()
    assert case["missing"] == ["核酸"]
    text = body_text(world.replies_to(STUDENT)[0].message)
    assert "文件「核酸.jpg」过大" in text
    assert "承诺书、情况说明、健康宝、行程码" in text


def test_zip_bomb_inside_a_zip_is_stopped_and_the_rest_counts(world):
    files = b.five_pictures(skip=("核酸",))
    nested = b.utf8_zip({**files, "核酸.zip": b.bomb_zip("核酸.jpg", size=256 * 1024 * 1024)})
    world.deliver(_submission({}, zipper=lambda _: nested))
    world.poll()
    [case] = world.cases_json()
    assert case["missing"] == ["核酸"]
    assert "文件「核酸.jpg」过大" in body_text(world.replies_to(STUDENT)[0].message)


def test_student_text_cannot_inject_headers_or_html(world):
    department = '<img src=x onerror="alert">物理系'
    stray = "<b onclick=x>扫描件.jpg"
    world.deliver(b.mail(sender=STUDENT, subject=f"张伟+{department}+健康宝弹窗\r\nBcc: victim@example.test",
                         attachments=[("a.zip", b.utf8_zip({stray: b.picture(), **b.five_pictures()}))]))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    assert reply.recipients == [STUDENT]
    assert reply.message["Bcc"] is None
    html = html_text(reply.message)
    assert "<img" not in html and "<b onclick" not in html
    assert "&lt;img src=x onerror=&#34;alert&#34;&gt;物理系" in html
    assert "&lt;b onclick=x&gt;扫描件.jpg" in html


def test_reply_cap_stops_a_loop(world):
    # One poll per mail: within one poll a later reply supersedes the one waiting (issue 21).
    for index in range(12):
        world.deliver(b.mail(sender="robot@example.test", subject=f"健康宝 问题 {index}"))
        world.poll()
    assert len(world.replies_to("robot@example.test")) == 8


@pytest.mark.parametrize("configured", ["垃圾邮件", "&V4NXPpCuTvY-"])
def test_chinese_junk_folder_by_either_name(dovecot, smtp, mailbox_user, sqlite_url, tmp_path,
                                            env_password, configured):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path)
    client = world.imap()
    try:
        client.create_folder("垃圾邮件")
        client.append("垃圾邮件", _submission(b.five_pictures()))
    finally:
        client.logout()
    world.config.write_text(world.config.read_text().replace(
        'folders = ["INBOX", "Junk"]', f'folders = ["INBOX", "{configured}"]'))
    report, _ = world.poll()
    assert report.ok and report.outcomes["submission"] == 1
    assert len(world.replies_to(STUDENT)) == 1


def test_encrypted_zip_with_its_password_in_the_body_is_read(world):
    world.deliver(b.mail(sender=STUDENT, body="老师好，附件是我的材料，解压密码：1234",
                         attachments=[("张伟+物理系+健康宝弹窗.zip", b.aes_zip(b.five_pictures()))]))
    world.poll()
    [case] = world.cases_json()
    assert case["status"] == "complete"
    assert "已收齐" in world.replies_to(STUDENT)[0].message["Subject"]


def test_two_workers_racing_on_one_message_id_in_two_folders(world, monkeypatch):
    """Worker B checks for the Message-ID before worker A commits it, then loses the insert."""
    from intake.record.recorder import Recorder
    raw = _submission(b.five_pictures(), message_id="<race@example.test>")
    world.deliver(raw)
    world.deliver(raw, folder="Junk")
    app = world.app()
    try:
        original_lookup = Recorder.original_of
        monkeypatch.setattr(Recorder, "original_of", staticmethod(lambda session, key: None))
        first = app.poller.recorder.record_mail("INBOX", 1, _summary(app, "INBOX")).mail_id
        monkeypatch.setattr(Recorder, "original_of", staticmethod(original_lookup))
        # The second copy's pre-checks ran "before" the first committed: force the race.
        monkeypatch.setattr(Recorder, "insert", lambda self, session, mail: (
            setattr(mail, "dedupe_key", mail.message_id), session.add(mail), session.flush()))
        second = app.poller.recorder.record_mail("Junk", 1, _summary(app, "Junk"))
    finally:
        app.close()
    outcomes = {m.folder: (m.outcome, m.duplicate_of_id) for m in world.mails() if m.message_id == "<race@example.test>"}
    assert outcomes == {"INBOX": ("pending", None), "Junk": ("duplicate", first)}
    assert second is not None


def _summary(app, folder):
    app.mailbox.connect() if not app.mailbox.alive() else None
    app.mailbox.select(folder)
    uid = app.mailbox.uids_after(0)[-1]
    return next(app.mailbox.summaries([uid]))


def _two_cases_from_one_address(world):
    """A student who also sent a roommate's materials: two open cases, one address."""
    world.deliver(_submission(b.five_pictures(skip=("核酸",))))
    world.deliver(_submission(b.five_pictures(skip=("核酸",)), name="李喆+化学系+健康宝弹窗.zip"))
    world.poll()
    return {c["name"]: c for c in world.cases_json()}


def test_an_answer_to_our_subject_without_in_reply_to_joins_its_case(world):
    _two_cases_from_one_address(world)
    asked = [r for r in world.replies_to(STUDENT) if "李喆" in r.message["Subject"]][0]
    # Some webmail drops In-Reply-To; the subject is ours with "Re: " in front.
    world.deliver(b.mail(sender=STUDENT, subject=f"Re: {asked.message['Subject']}",
                         attachments=[("核酸.jpg", b.picture(color=(4, 4, 4)))]))
    world.poll()
    cases = {c["name"]: c for c in world.cases_json()}
    assert cases["李喆"]["status"] == "complete" and cases["张伟"]["status"] == "incomplete"
    answer = world.replies_to(STUDENT)[-1].message
    assert "已收齐" in answer["Subject"] and body_text(answer).startswith("李喆同学：")


def test_an_answer_with_in_reply_to_joins_the_case_whatever_its_subject(world):
    _two_cases_from_one_address(world)
    asked = [r for r in world.replies_to(STUDENT) if "李喆" in r.message["Subject"]][0]
    world.deliver(b.mail(sender=STUDENT, subject="补交", headers={"In-Reply-To": asked.message["Message-ID"]},
                         attachments=[("核酸.jpg", b.picture(color=(4, 4, 4)))]))
    world.poll()
    cases = {c["name"]: c for c in world.cases_json()}
    assert cases["李喆"]["status"] == "complete" and cases["张伟"]["status"] == "incomplete"


def test_replies_give_one_instruction_and_sign_with_the_department(world):
    world.deliver(_submission(b.five_pictures(skip=("核酸",)), name="李喆+化学系+健康宝弹窗.zip"))
    world.deliver(b.mail(sender="rar@example.test", subject="王芳+数学系+健康宝弹窗",
                         attachments=[("王芳+数学系+健康宝弹窗.rar", b"Rar!\x1a\x07\x01\x00" + os.urandom(64))]))
    world.poll()
    [partial] = world.replies_to(STUDENT)
    text = body_text(partial.message)
    assert "只附上「核酸.jpg」" in text and "李喆+化学系+健康宝弹窗.zip" in text and "不必重发" in text
    assert "请这样发送" not in text
    [nothing] = world.replies_to("rar@example.test")
    text = body_text(nothing.message)
    assert "请这样发送" in text and "王芳+数学系+健康宝弹窗.zip" in text
    assert "不必重发" not in text and "请补交：" not in text
    for reply in (partial, nothing):
        assert body_text(reply.message).rstrip().splitlines()[-2:] == ["物理系", "联系人：王老师 010-62750000"]
