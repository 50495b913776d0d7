import pytest

from checks.classify import MailFacts, MailKind, classify, loop_reason
from checks.pictures import inspect_picture
from checks.rules import Rules
from checks.submission import Attachment, assess, carries_materials, match_item, missing_items
from tests.support import builders as b

RULES = Rules()
OWN = frozenset({"dept@example.test"})


@pytest.mark.parametrize("name,key", [
    ("承诺书.jpg", "承诺书"), ("承诺书.JPG", "承诺书"), ("张伟承诺书.jpeg", "承诺书"),
    ("1.情况说明.png", "情况说明"), ("健康宝截图.heic", "健康宝"), ("通信行程卡.jpg", "行程码"),
    ("核酸检测报告.webp", "核酸"), ("folder/核酸.jfif", "核酸"), ("ＨＥ核酸.jpg", "核酸"),
    ("IMG_0001.jpg", None), ("健康宝核酸.jpg", None), (".jpg", None),
])
def test_items_by_file_stem(name, key):
    assert match_item(name, RULES) == key


def test_accepted_spellings_come_from_the_rules():
    from checks.rules import ItemRule
    rules = Rules(items=(ItemRule("核酸", ("nat", "pcr")),))
    assert match_item("PCR.jpg", rules) == "核酸"
    assert match_item("核酸检测.jpg", rules) == "核酸"


def test_pictures_are_sniffed_and_decoded():
    kinds = RULES.accepted_kinds
    assert inspect_picture(b.picture("JPEG"), kinds).problem is None
    assert inspect_picture(b.picture("PNG"), kinds).problem is None
    assert inspect_picture(b.picture("HEIF"), kinds).kind == "heif"
    assert inspect_picture(b.picture("WEBP"), kinds).problem is None
    assert inspect_picture(b.picture("GIF"), kinds).problem == "type_not_allowed"
    assert inspect_picture(b"", kinds).problem == "empty"
    assert inspect_picture(b"hello", kinds).problem == "not_picture"
    assert inspect_picture(b.picture()[:300], kinds).problem == "undecodable"
    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
    assert inspect_picture(pdf, kinds).problem == "type_not_allowed"
    assert inspect_picture(pdf, Rules(allow_pdf=True).accepted_kinds).problem is None


def test_a_picture_cut_short_or_with_a_broken_header_is_undecodable_and_a_trailer_is_fine():
    kinds = RULES.accepted_kinds
    for kind in ("JPEG", "PNG"):
        whole = b.picture(kind)
        assert inspect_picture(whole[:len(whole) // 2], kinds).problem == "undecodable", kind
    jpeg = b.picture("JPEG")
    assert inspect_picture(jpeg[:-1], kinds).problem == "undecodable"
    # The end marker alone does not make a picture: the header must parse.
    broken_header = jpeg[:2] + b"\xff\xc0\x00\x05junk" + jpeg[-2:]
    assert inspect_picture(broken_header, kinds).problem == "undecodable"
    # Phones append data after the end marker (motion photos): still a picture.
    assert inspect_picture(jpeg + b"MotionPhoto_Data" + bytes(4096), kinds).problem is None
    assert inspect_picture(jpeg[:len(jpeg) // 2] + b"MotionPhoto_Data", kinds).problem == \
        "undecodable"


def test_assessment_of_a_complete_zip():
    zipped = b.windows_gbk_zip(b.five_pictures())
    found = assess([Attachment("张伟+物理系+健康宝弹窗.zip", zipped)], "无关主题", RULES)
    assert found.submission_name.name == "张伟"
    assert missing_items({k for k, f in found.items.items() if f.usable}, RULES) == []


def test_zip_name_wins_over_subject_and_subject_is_the_fallback():
    pictures = list(b.five_pictures().items())
    found = assess([Attachment(n, d) for n, d in pictures], "王芳+数学系+健康宝弹窗", RULES)
    assert found.submission_name.name == "王芳"
    zipped = assess([Attachment("张伟+物理系+健康宝弹窗.zip", b.utf8_zip(dict(pictures)))],
                    "王芳+数学系+健康宝弹窗", RULES)
    assert zipped.submission_name.name == "张伟"


def test_a_word_file_for_an_item_is_unusable_and_stray_files_are_named():
    files = b.five_pictures(skip=("情况说明",))
    files["情况说明.docx"] = b"PK\x03\x04 a word file"
    files["IMG_1.jpg"] = b.picture()
    found = assess([Attachment(n, d) for n, d in files.items()], "张伟+物理系+健康宝弹窗", RULES)
    # Named as what it is (issue 21), never "not a picture" nor its internal parts.
    assert found.items["情况说明"].problem.code == "document"
    assert found.items["情况说明"].problem.detail == "Word 文档"
    assert "IMG_1.jpg" in found.unmatched


def test_a_usable_duplicate_beats_an_unusable_one():
    found = assess([Attachment("核酸.jpg", b"broken"), Attachment("核酸.png", b.picture("PNG"))], "", RULES)
    assert found.items["核酸"].usable
    assert [p.code for p in found.problems] == ["duplicate"]


def test_materials_versus_a_signature_logo():
    logo = [Attachment("image001.png", b.picture("PNG"))]
    assert not carries_materials(logo, "下周组会", "请大家准时参加", RULES)
    assert carries_materials(logo, "健康宝弹窗材料", "", RULES)
    # An archive alone says nothing: robots send zips too (issue 9).
    assert not carries_materials([Attachment("a.zip", b"PK\x03\x04")], "", "", RULES)


_PHOTOS = b.utf8_zip({"IMG_0001.jpg": b"x", "IMG_0002.jpg": b"y"})


@pytest.mark.parametrize("name,subject,body,data", [
    ("张伟+物理系+健康宝弹窗.zip", "", "", _PHOTOS),       # the zip name follows the rule
    ("材料.zip", "张伟+物理系+健康宝弹窗", "", _PHOTOS),     # the subject follows the rule
    ("健康宝.zip", "", "", _PHOTOS),                        # the zip name names the process
    ("a.zip", "弹窗材料", "", _PHOTOS),                      # the subject names the process
    ("a.zip", "通信行程卡", "", _PHOTOS),                    # a configured spelling of an item
    ("a.zip", "材料", "老师好，附件是我的承诺书和核酸报告", _PHOTOS),  # the body mentions the process
    ("a.zip", "", "", b.utf8_zip({"张伟/1.核酸.jpg": b"x"})),  # a member is named like an item
    ("a.zip", "", "", b.windows_gbk_zip({"行程卡.png": b"x"})),
])
def test_an_archive_is_a_submission_when_something_says_so(name, subject, body, data):
    assert carries_materials([Attachment(name, data)], subject, body, RULES)


@pytest.mark.parametrize("name,subject,body,data", [
    ("photos.zip", "周末聚会照片", "照片都在附件里", _PHOTOS),
    ("google.com!example.test!1423872000!1423958399.zip", "Report domain: example.test "
     "Submitter: google.com Report-ID: <1>", "", b.utf8_zip({"report.xml": b"<feedback/>"})),
    ("a.zip", "", "", b"PK\x03\x04 broken"),
    ("a.rar", "", "", b"Rar!\x1a\x07\x01\x00" + b"x" * 50),
])
def test_an_archive_alone_is_not_a_submission(name, subject, body, data):
    assert not carries_materials([Attachment(name, data)], subject, body, RULES)


def _facts(**kwargs):
    base = dict(sender="student@example.test", subject="张伟+物理系+健康宝弹窗", has_materials=True)
    base.update(kwargs)
    return MailFacts(**base)


@pytest.mark.parametrize("facts,kind", [
    (_facts(headers={"auto-submitted": ["auto-replied"]}), MailKind.AUTO_REPLY),
    (_facts(headers={"auto-submitted": ["no"]}), MailKind.SUBMISSION),
    (_facts(headers={"x-autoreply": ["yes"]}), MailKind.AUTO_REPLY),
    (_facts(headers={"x-autorespond": ["1"]}), MailKind.AUTO_REPLY),
    (_facts(headers={"precedence": ["junk"]}), MailKind.AUTO_REPLY),
    (_facts(headers={"precedence": ["auto_reply"]}), MailKind.AUTO_REPLY),
    (_facts(headers={"list-id": ["<x.example>"]}), MailKind.AUTO_REPLY),
    (_facts(subject="自动回复：张伟+物理系+健康宝弹窗"), MailKind.AUTO_REPLY),
    (_facts(subject="Automatic reply: 健康宝"), MailKind.AUTO_REPLY),
    (_facts(return_path=""), MailKind.BOUNCE),
    (_facts(sender="Postmaster@126.com", subject="系统退信"), MailKind.BOUNCE),
    (_facts(sender="someone@126.com", subject="系统退信"), MailKind.BOUNCE),
    (_facts(sender="MAILER-DAEMON@example.test"), MailKind.BOUNCE),
    (_facts(content_type="multipart/report"), MailKind.BOUNCE),
    (_facts(sender="dept@example.test"), MailKind.OWN),
    # Robots in suffixed forms, robot Reply-To, Apple's vacation header.
    (_facts(sender="noreply-dmarc-support@google.com"), MailKind.REPORT),
    (_facts(sender="no-reply.notifications@example.test"), MailKind.BOUNCE),
    (_facts(sender="MAILER-DAEMON+x@example.test"), MailKind.BOUNCE),
    (_facts(sender="bounces-123@example.test"), MailKind.BOUNCE),
    (_facts(sender="dmarcreport@microsoft.com"), MailKind.REPORT),
    (_facts(sender="xxx@yyy.cz", reply_to=["noreply-dmarc-support@google.com"]), MailKind.REPORT),
    (_facts(reply_to=["do-not-reply@example.test"]), MailKind.AUTO_REPLY),
    (_facts(reply_to=["zhangwei@example.test"]), MailKind.SUBMISSION),
    (_facts(headers={"x-apple-action": ["VACATION"]}), MailKind.AUTO_REPLY),
    (_facts(headers={"precedence": ["list"]}), MailKind.AUTO_REPLY),
    (_facts(headers={"auto-submitted": ["auto-generated (failure)"]}), MailKind.AUTO_REPLY),
    # DMARC aggregate reports (rua) by subject or by the report file's name, archive or not.
    (_facts(sender="dmarc@report.example", subject="Report domain: example.test Submitter: "
            "google.com Report-ID: <123>"), MailKind.REPORT),
    (_facts(sender="reports@yahoo.example", subject="Report Domain: example.test Submitter: "
            "yahoo.com Report-ID: <abc>"), MailKind.REPORT),
    (_facts(sender="someone@example.test", subject="",
            attachment_names=("yahoo.com!example.test!1700000000!1700086399.xml.gz",)), MailKind.REPORT),
    (_facts(sender="someone@example.test", subject="",
            attachment_names=("google.com!example.test!1423872000!1423958399.zip",)), MailKind.REPORT),
    (_facts(sender="someone@example.test", subject="", attachment_names=("aggregate.xml.gz",)),
     MailKind.REPORT),
    # No address could be read: a bounce only on positive evidence, else staff read it.
    (_facts(sender=""), MailKind.NO_SENDER),
    (_facts(sender="", has_materials=False, subject="组会"), MailKind.NO_SENDER),
    (_facts(sender="", return_path=""), MailKind.BOUNCE),
    (_facts(sender="", content_type="multipart/report"), MailKind.BOUNCE),
    (_facts(sender="", headers={"from": ["Mail Delivery System <MAILER-DAEMON>"]}), MailKind.BOUNCE),
    (_facts(sender="", subject="系统退信"), MailKind.BOUNCE),
    (_facts(sender="", headers={"auto-submitted": ["auto-replied"]}), MailKind.AUTO_REPLY),
    (_facts(sender="Student@Example.TEST"), MailKind.SUBMISSION),
    (_facts(sender="Dept@Example.Test"), MailKind.OWN),
    (_facts(), MailKind.SUBMISSION),
])
def test_classification(facts, kind):
    assert classify(facts, RULES, OWN) == kind


def test_cloud_links_and_questions():
    link = _facts(has_materials=False, body_text="https://mail.163.com/large-attachment-download/?f=1")
    assert classify(link, RULES, OWN) == MailKind.CLOUD_LINK
    qq = _facts(has_materials=False, subject="材料", body_text="https://iwx.mail.qq.com/ftn/download?x")
    assert classify(qq, RULES, OWN) == MailKind.CLOUD_LINK
    question = _facts(has_materials=False, subject="健康宝弹窗了怎么办")
    assert classify(question, RULES, OWN) == MailKind.QUESTION
    other = _facts(has_materials=False, subject="组会")
    assert classify(other, RULES, OWN) == MailKind.OTHER
    assert loop_reason(other, OWN) is None


@pytest.mark.parametrize("text,expected", [
    ("解压密码：1234", [b"1234"]),
    ("老师好，压缩包密码是 abc123。谢谢", [b"abc123"]),
    ("Password: Pa55word", [b"Pa55word"]),
    ("密码为「张伟」", ["张伟".encode(), "张伟".encode("gbk")]),
    ("附件是材料", []),
])
def test_passwords_written_in_the_mail(text, expected):
    from checks.submission import passwords_in
    assert list(passwords_in(text)) == expected
