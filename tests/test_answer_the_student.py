"""Issue 21: answer the student, not the form. Mail in over LMTP, `intake poll`, the mail the
student receives and `intake cases --json`, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.support import builders as b
from tests.support.harness import body_text

STUDENT = "zhouhang@example.test"


@pytest.fixture
def world_options(clock):
    return {"clock": clock, "department_config": 'aliases = ["物院", "物理学院"]'}
ZIP_NAME = "周航+物理系+健康宝弹窗.zip"


def _zip_mail(files, message_id=None, **kwargs):
    return b.mail(sender=STUDENT, subject="周航+物理系+健康宝弹窗",
                  attachments=[(ZIP_NAME, b.utf8_zip(files))], message_id=message_id, **kwargs)


# --- one reply per poll, and it is the right one ---

def test_a_later_mail_in_the_same_poll_supersedes_the_stale_reply(world):
    world.deliver(_zip_mail(b.five_pictures(skip=("核酸",))))
    world.deliver(_zip_mail(b.five_pictures()))
    world.poll()

    [reply] = world.replies_to(STUDENT)
    assert "已收齐" in reply.message["Subject"]
    text = body_text(reply.message)
    assert "材料未齐" not in text and "通过格式检查" not in text
    assert "17:00的汇总中" in text  # when the case goes to the office
    statuses = sorted(row.status for row in world.outbox())
    assert statuses == ["sent", "superseded"]
    [case] = world.cases_json()
    assert case["status"] == "complete" and case["missing"] == []
    shown = world.cli("case", "show", str(case["id"]))
    assert "被后一封回复取代" in shown.stdout, shown.stdout


def test_the_same_zip_twice_gets_one_reply_and_a_resend_later_one_line(world):
    files = b.five_pictures()
    world.deliver(_zip_mail(files))
    world.deliver(_zip_mail(files))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    assert "已收齐" in reply.message["Subject"]

    world.deliver(_zip_mail(files))
    world.poll()
    replies = world.replies_to(STUDENT)
    assert len(replies) == 2
    again = body_text(replies[1].message)
    assert "已收到，与上次相同" in again and "已收齐" in again
    assert "请这样发送" not in again
    [case] = world.cases_json()
    assert case["status"] == "complete"


def test_a_reply_about_another_case_is_not_superseded(world):
    world.deliver(_zip_mail(b.five_pictures()))
    world.deliver(b.mail(sender=STUDENT, subject="李娜+物理系+健康宝弹窗",
                         attachments=[("李娜+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    subjects = sorted(reply.message["Subject"] for reply in world.replies_to(STUDENT))
    assert len(subjects) == 2 and "李娜" in subjects[0] + subjects[1] and "周航" in subjects[0] + subjects[1]


# --- questions reach a person ---

def test_a_question_in_our_thread_is_recorded_acknowledged_and_answered(world, clock):
    clock.now -= timedelta(hours=30)  # asked 30 hours before `intake status` looks
    world.deliver(_zip_mail(b.five_pictures()))
    world.poll()
    [first] = world.replies_to(STUDENT)
    world.deliver(b.mail(sender=STUDENT, subject="Re: " + str(first.message["Subject"]),
                         body="老师好，大概什么时候能解除弹窗？",
                         headers={"In-Reply-To": first.message["Message-ID"]}))
    world.poll()

    replies = world.replies_to(STUDENT)
    assert len(replies) == 2
    ack = body_text(replies[1].message)
    assert "老师会尽快回复你" in ack and "你的材料已收齐，将在" in ack and "报送" in ack
    assert "请这样发送" not in ack and "请补交" not in ack
    listed = json.loads(world.cli("questions", "--json").stdout)
    [case] = world.cases_json()
    assert [(q["case_id"], q["text"], q["status"]) for q in listed] == [
        (case["id"], "老师好，大概什么时候能解除弹窗？", "open")]
    status = world.cli("status")
    assert status.returncode == 1 and "学生提问：1 个待回复" in status.stdout + status.stderr

    answered = world.cli("questions", "answer", str(listed[0]["id"]), "今天 17:00 报送，之后一两天内解除。",
                         "--by", "王老师")
    assert answered.returncode == 0, answered.stderr
    replies = world.replies_to(STUDENT)
    assert len(replies) == 3
    answer = replies[2].message
    assert "今天 17:00 报送" in body_text(answer)
    assert answer["In-Reply-To"] is not None
    assert world.cli("questions", "--json").stdout.strip() == "[]"
    shown = world.cli("case", "show", str(case["id"])).stdout
    assert "已答复提问" in shown and "今天 17:00 报送" in shown


def test_a_question_without_a_case_is_recorded_for_staff(world):
    world.deliver(b.mail(sender="waidi@example.test", subject="健康宝弹窗",
                         body="老师好，我现在在上海，健康宝弹窗了，需要提交材料吗？"))
    world.poll()
    [reply] = world.replies_to("waidi@example.test")
    text = body_text(reply.message)
    assert "老师会尽快回复你" in text
    [question] = json.loads(world.cli("questions", "--json").stdout)
    assert question["case_id"] is None and "在上海" in question["text"]
    assert world.cases_json() == []


# --- names and departments as students write them ---

def test_extra_parts_and_an_alias_still_open_the_case_under_the_canonical_department(world):
    world.deliver(b.mail(sender=STUDENT, subject="健康宝弹窗材料",
                         attachments=[("周航+物理学院+2021级本科+健康宝弹窗.zip",
                                       b.utf8_zip(b.five_pictures()))]))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    text = body_text(reply.message)
    assert text.startswith("周航同学") and "已收齐" in reply.message["Subject"]
    assert "下次只写" in text and "请这样发送" not in text and "2021级" not in text
    [case] = world.cases_json()
    assert (case["name"], case["department"], case["status"]) == ("周航", "物理系", "complete")
    assert case["flags"] == []
    found = json.loads(world.cli("cases", "--json", "--search", "周航").stdout)
    assert [c["id"] for c in found] == [case["id"]]
    by_alias = json.loads(world.cli("cases", "--json", "--department", "物院").stdout)
    assert [c["id"] for c in by_alias] == [case["id"]]


def test_a_name_in_the_body_opens_the_case_and_a_foreign_department_is_flagged(world):
    world.deliver(b.mail(sender=STUDENT, subject="健康宝弹窗材料", body="老师好，我是周航，物理学院的。",
                         attachments=[("材料.zip", b.utf8_zip(b.five_pictures()))]))
    world.deliver(b.mail(sender="lina@example.test", subject="李娜+化学学院+健康宝弹窗",
                         attachments=[("李娜+化学学院+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    cases = {c["name"]: c for c in world.cases_json()}
    assert cases["周航"]["department"] == "物理系" and cases["周航"]["status"] == "complete"
    assert cases["李娜"]["flags"] == ["院系不是本院系：化学学院"]


def test_without_any_name_the_instructions_use_no_strangers_name(world):
    world.deliver(b.mail(sender=STUDENT, subject="材料", body="老师好",
                         attachments=[("材料.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    text = body_text(reply.message)
    assert "张伟" not in text and "你的姓名+物理系+健康宝弹窗.zip" in text
    assert not text.startswith("张伟")


# --- pictures by what they show: with reading off, the names to use ---

def test_with_reading_off_phone_named_pictures_are_told_exactly_which_names_to_use(world):
    world.deliver(b.mail(sender=STUDENT, subject="周航+物理系+健康宝弹窗",
                         attachments=[("IMG_20261206_101122.jpg", b.picture()),
                                      ("mmexport1733451122.jpg", b.picture(color=(1, 2, 3)))]))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    text = body_text(reply.message)
    assert "IMG_20261206_101122.jpg" in text and "mmexport1733451122.jpg" in text
    assert "「承诺书.jpg」「情况说明.jpg」「健康宝.jpg」「行程码.jpg」「核酸.jpg」" in text
    assert "直接作为附件发送" in text


# --- scans and documents ---

def _pdf_scan(name: str) -> bytes:
    """A one-page scan as phone apps make it: a picture inside a PDF (drawn, saved by Pillow)."""
    import io

    from tests.support import drawn
    buffer = io.BytesIO()
    drawn.pledge(name).convert("RGB").save(buffer, "PDF", resolution=150)
    return buffer.getvalue()


def _docx() -> bytes:
    import io
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as document:
        document.writestr("[Content_Types].xml", "<Types/>")
        document.writestr("_rels/.rels", "<Relationships/>")
        document.writestr("word/document.xml", "<document/>")
    return buffer.getvalue()


def test_pdf_scans_of_the_forms_are_accepted_and_forwarded_as_jpeg(world):
    files = b.five_pictures(skip=("承诺书", "情况说明"))
    files["承诺书.pdf"] = _pdf_scan("周航")
    files["情况说明.pdf"] = _pdf_scan("周航")
    world.deliver(_zip_mail(files))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    text = body_text(reply.message)
    assert "已收齐" in reply.message["Subject"], text
    assert "PDF" not in text
    [case] = world.cases_json()
    assert case["status"] == "complete"
    export = world.cli("case", "export", str(case["id"]), str(world.storage.parent / "out"))
    assert export.returncode == 0, export.stderr
    exported = (world.storage.parent / "out" / "承诺书.jpg").read_bytes()
    assert exported[:3] == b"\xff\xd8\xff"


def test_a_word_file_is_named_as_what_it_is_and_a_tiny_picture_is_not_usable(world):
    files = b.five_pictures(skip=("情况说明", "核酸"))
    files["情况说明.docx"] = _docx()
    files["核酸.jpg"] = b.picture(size=(64, 48))
    world.deliver(_zip_mail(files))
    world.poll()
    [reply] = world.replies_to(STUDENT)
    text = body_text(reply.message)
    assert "「情况说明.docx」是Word 文档" in text and "需要签字后拍照或扫描" in text
    assert "Content_Types" not in text and "document.xml" not in text and ".rels" not in text
    assert "只有 64×48 像素" in text and "至少 200 像素" in text
    [case] = world.cases_json()
    assert case["missing"] == ["情况说明", "核酸"]


# --- tell people what will happen, and when ---

def test_a_parent_is_greeted_as_such_and_the_case_keeps_the_students_name(world):
    world.deliver(b.mail(sender="mama@example.test", subject="健康宝弹窗材料",
                         body="老师好，我是周航的妈妈，附件是孩子的材料。",
                         attachments=[("材料.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    [reply] = world.replies_to("mama@example.test")
    text = body_text(reply.message)
    assert text.startswith("家长您好：") and "抄送学生本人" in text
    assert "周航同学" not in text
    [case] = world.cases_json()
    assert case["name"] == "周航" and case["status"] == "complete"

