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
    return {"clock": clock}
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
