"""Archives from robots are never answered (issue 9, part 2), delivered over LMTP like a server.

Seen: a DMARC aggregate report (a zip attached, from a report sender) got "健康宝弹窗材料无法登记".
An archive is a submission only when something says so; reports and robots never get an answer.
"""
from __future__ import annotations

import gzip

import pytest

from tests.support import builders as b
from tests.support.harness import body_text

XML = (b'<?xml version="1.0" encoding="UTF-8"?><feedback><report_metadata><org_name>google.com'
       b'</org_name></report_metadata><policy_published><domain>example.test</domain>'
       b'</policy_published></feedback>')


def _report_zip(name: str) -> bytes:
    return b.utf8_zip({name: XML})


REPORTS = {
    # Google's rua report as it arrived: noreply-dmarc-support@, "Report domain: … Submitter: …".
    "google": dict(
        sender="noreply-dmarc-support@google.com",
        subject="Report domain: example.test Submitter: google.com Report-ID: 5717107811868587391",
        body="This is an aggregate report from google.com.",
        attachments=[("google.com!example.test!1700006400!1700092799.zip",
                      _report_zip("google.com!example.test!1700006400!1700092799.xml"))]),
    # Microsoft's: dmarcreport@, a gzipped XML.
    "microsoft": dict(
        sender="dmarcreport@microsoft.com",
        subject="[Preview] Report Domain: example.test Submitter: enterprise.protection.outlook.com "
                "Report-ID: <e3d8d6b7ab2b4a9f>",
        body="This is a DMARC aggregate report from Microsoft Corporation.",
        attachments=[("enterprise.protection.outlook.com!example.test!1700006400!1700092799.xml.gz",
                      gzip.compress(XML))]),
    # A reporter whose address says nothing: the subject alone marks it.
    "subject only": dict(
        sender="reports@mail-reports.example",
        subject="Report Domain: example.test Submitter: qq.com Report-ID: <20261130.qq>",
        body="", attachments=[("report.zip", _report_zip("report.xml"))]),
    # Nothing but the report file's name (receiver!domain!begin!end.zip).
    "file name only": dict(
        sender="postbox@provider.example", subject="Aggregate", body="",
        attachments=[("provider.example!example.test!1700006400!1700092799.zip",
                      _report_zip("provider.example!example.test!1700006400!1700092799.xml"))]),
    # The sender is ordinary but Reply-To is a robot's.
    "robot reply-to": dict(
        sender="alerts@example.org", subject="Weekly export", body="Your export is attached.",
        headers={"Reply-To": "Example <no-reply@example.org>"},
        attachments=[("export.zip", _report_zip("export.csv"))]),
}


def test_reports_and_robots_with_archives_are_never_answered(world):
    for fields in REPORTS.values():
        world.deliver(b.mail(**fields), envelope_from="3bounce@scoutcamp.bounces.example")
    world.poll()
    assert world.smtp.messages == []
    assert world.outbox() == []
    assert world.cases_json() == []
    outcomes = [m.outcome for m in world.mails()][1:]  # after the harness's set-up notice
    # Reports are recorded as other mail; the robot Reply-To as an automatic mail.
    assert outcomes == ["ignored-other"] * (len(REPORTS) - 1) + ["ignored-auto"]


def test_a_persons_archive_that_says_nothing_of_the_process_is_other_mail(world):
    photos = b.utf8_zip({"IMG_0001.jpg": b.picture(), "IMG_0002.jpg": b.picture("PNG")})
    world.deliver(b.mail(sender="friend@example.test", subject="周末聚会照片",
                         body="照片都在附件里，大家自取。", attachments=[("photos.zip", photos)]),
                  envelope_from="friend@example.test")
    world.poll()
    assert world.smtp.messages == []
    assert world.cases_json() == []
    assert [m.outcome for m in world.mails()][1:] == ["ignored-other"]


@pytest.mark.parametrize("subject,body,name,files", [
    ("材料", "老师好", "张伟+物理系+健康宝弹窗.zip", b.five_pictures(skip=("核酸",))),  # zip name
    ("提交材料", "老师好", "材料.zip", {"1.承诺书.jpg": b.picture(), "IMG_2.jpg": b.picture()}),  # member
    ("提交", "老师好，这是我的健康宝弹窗材料", "新建文件夹.zip", {"IMG_1.jpg": b.picture()}),  # body
])
def test_an_archive_that_says_it_holds_materials_is_answered_once(world, subject, body, name, files):
    student = "zhangwei@example.test"
    world.deliver(b.mail(sender=student, subject=subject, body=body,
                         attachments=[(name, b.utf8_zip(files))]), envelope_from=student)
    world.poll()
    [reply] = world.replies_to(student)
    assert "材料" in reply.message["Subject"]
    text = body_text(reply.message)
    # Either the missing list or, when the name could not be read, the full instructions.
    assert "核酸" in (text.split("还缺少或不可用的材料")[1] if "还缺少或不可用的材料" in text
                    else text.split("请这样发送")[1])
