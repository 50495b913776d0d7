"""Mail and archives written by other people (../shared/realworld), through the real daemon.

The corpus lives next to the repository and is never copied into it: see its README.md and
manifest.json, which says for every file what a correct daemon does. Every mail is delivered over
LMTP to the suite's Dovecot as a server would deliver it; every archive is wrapped in the mail a
student would send. Runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import email.parser
import email.policy
import email.utils
import hashlib
import json
from pathlib import Path

import pytest

from tests.support import builders as b
from tests.support.harness import Harness, body_text, has_no_sender_header

REALWORLD = Path(__file__).resolve().parents[1].parent / "shared" / "realworld"

pytestmark = pytest.mark.skipif(
    not (REALWORLD / "manifest.json").is_file(),
    reason=f"the real-world corpus is not at {REALWORLD} (it lives beside the repository, in "
           "../shared/realworld, and is never copied into it)")

FINAL = {"submission", "follow-up", "question", "cloud-link", "ignored-auto", "ignored-other",
         "duplicate", "too-large"}
BOUNCE_KINDS = {"bounce", "bounce_netease"}
# Paths the traversal and symlink archives aim at, relative to / and to the work folders.
ESCAPE_TARGETS = [Path("/tmp/evil.txt"), Path("/tmp/slipped_zip.txt"), Path("/Temp/evil.txt")]


def _manifest() -> dict[str, dict]:
    if not (REALWORLD / "manifest.json").is_file():
        return {}
    return json.loads((REALWORLD / "manifest.json").read_text(encoding="utf-8"))


MANIFEST = _manifest()
MAILS = sorted(key for key in MANIFEST if key.startswith("mails/"))
ARCHIVES = sorted(key for key in MANIFEST if key.startswith("zips/"))


def _read(key: str) -> bytes:
    data = (REALWORLD / key).read_bytes()
    entry = MANIFEST[key]
    assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"], (
        f"{key} is not the file manifest.json describes")
    return data


def never_replied(entry: dict) -> bool:
    """The manifest's words for "no mail of any kind to any address and no case"."""
    expect = entry["expect"]
    return "never replied to" in expect or "no reply" in expect


def envelope_sender(raw: bytes, kind: str) -> str:
    """The envelope a server delivered the mail with: empty for bounces (as the corpus README
    says), else the mail's own Return-Path, else its From."""
    if kind in BOUNCE_KINDS:
        return ""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return_path = headers.get("Return-Path")
    if return_path is not None:
        return email.utils.parseaddr(str(return_path))[1]
    address = email.utils.parseaddr(str(headers.get("From", "")))[1]
    return address if "@" in address and address.isascii() else "someone@example.test"


def _poll_until_settled(world: Harness, expected: int, rounds: int = 5, final=FINAL):
    for _ in range(rounds):
        report, _ = world.poll()
        assert report.ok
        mails = world.mails()
        if len(mails) >= expected and all(m.outcome in final for m in mails):
            return mails
    return world.mails()


def _files_outside_storage(tmp_path: Path, storage: Path) -> set[Path]:
    return {path for path in tmp_path.rglob("*")
            if path.is_file() and storage not in path.parents
            and not path.name.startswith(("intake.db", "intake.toml"))}


def _escape_snapshot() -> dict[Path, float | None]:
    return {path: (path.stat().st_mtime if path.exists() else None) for path in ESCAPE_TARGETS}


def _assert_nothing_written_outside_storage(world: Harness, tmp_path: Path, escapes_before) -> None:
    assert _files_outside_storage(tmp_path, world.storage) == set()
    assert _escape_snapshot() == escapes_before
    for path in world.storage.rglob("*"):
        assert not path.is_symlink(), path
        assert ".." not in path.name, path
        assert path.resolve().is_relative_to(world.storage.resolve()), path


def test_the_corpus_is_complete():
    assert len(MAILS) == 55 and len(ARCHIVES) == 29
    assert set(ARCHIVES) == set(ARCHIVE_EXPECTATIONS), "give every archive an expectation below"


@pytest.mark.parametrize("key", [key for key in MAILS if never_replied(MANIFEST[key])])
def test_robots_are_known_by_their_headers_alone(key):
    """As stored, without the Return-Path a server adds: the mail's own headers mark it."""
    from checks.classify import MailKind, classify
    from checks.rules import Rules
    from checks.submission import carries_materials
    from intake.process.reader import read_mail

    read = read_mail(_read(key))
    rules = Rules()
    materials = carries_materials(read.attachments, read.subject, read.body_text, rules)
    kind = classify(read.facts(materials), rules, frozenset({"dept@example.test"}))
    assert kind not in {MailKind.SUBMISSION, MailKind.QUESTION, MailKind.CLOUD_LINK}, kind


def test_real_mails_are_never_answered_where_the_manifest_says_so(world, tmp_path):
    escapes_before = _escape_snapshot()
    delivered: dict[int, str] = {}  # IMAP UID -> corpus file; UID 1 is the harness's set-up notice
    for uid, key in enumerate(MAILS, start=2):
        raw = _read(key)
        world.deliver(raw, envelope_from=envelope_sender(raw, MANIFEST[key]["kind"]))
        delivered[uid] = key

    mails = _poll_until_settled(world, expected=len(MAILS) + 1, final=FINAL | {"quarantined"})

    by_file = {delivered[m.uid]: m for m in mails if m.folder == "INBOX" and m.uid in delivered}
    assert sorted(by_file) == MAILS, "every mail is recorded: none lost"
    # A mail without From or Sender is kept for staff, never taken for a bounce (issue 26).
    senderless = {key for key in MAILS if has_no_sender_header(_read(key))}
    assert {key for key, m in by_file.items() if m.outcome == "quarantined"} == senderless
    assert all(by_file[key].error.startswith("NoSender:") for key in senderless)
    stuck = {key: (m.outcome, m.error) for key, m in by_file.items()
             if m.outcome not in FINAL and key not in senderless}
    assert stuck == {}, "every mail ends in a recorded outcome, none crashes the daemon"
    assert "too-old" not in {m.outcome for m in mails}  # so every mail was really classified

    outbox = world.outbox()
    for key, mail in by_file.items():
        if never_replied(MANIFEST[key]):
            assert [row.kind for row in outbox if row.mail_id == mail.id] == [], key
            assert mail.case_id is None, key
            assert mail.outcome in ({"quarantined"} if key in senderless
                                    else {"ignored-auto", "ignored-other"}), (key, mail.outcome)
    # None of these mails is about the process: nothing is queued or sent for any of them, to
    # any address, and no case exists.
    assert outbox == []
    assert world.smtp.messages == []
    assert world.cases() == []
    _assert_nothing_written_outside_storage(world, tmp_path, escapes_before)


# What the one reply to each wrapped archive must say, restating manifest.json's "expect":
# (phrases that must appear, phrases that must not). Every reply is "材料未齐" and lists all five
# items as missing, since none of these archives holds a picture of one.
LOCKED = "设置了密码"
ARCHIVE_EXPECTATIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "zips/admzip_chs_name_gbk_with_7075.zip": (("中文路径.txt",), ("╓╨",)),
    "zips/admzip_infozip_zipcrypto_pw_secret.zip": ((LOCKED,), ()),
    "zips/admzip_ultra_dotdot_member.zip": (("somefile.txt",), ("utes_test", "..")),
    "zips/commons_compress_deflate64.zip": (("lorem-ipsum.txt", "Deflate64"), ("已损坏",)),
    "zips/commons_compress_utf8_7zip_mixed.zip": (("ascii.txt", "€_for_Dollar.txt"), ()),
    "zips/commons_compress_utf8_winzip_7075.zip": (("€_for_Dollar.txt", "Ölfässer.txt", "ascii.txt"), ()),
    "zips/harimypala_recursive_bomb.zip": (("层数过多",), ("Copy (2)",)),
    "zips/libarchive_7075_crc_mismatch.zip": (("File 1.txt", "File 2 - ", "File 4 - "), ("已损坏",)),
    "zips/libarchive_cp932_names.zip": (("名字无法可靠识别",), ()),
    "zips/libarchive_lzma_method14_symlinks.zip": (("abc_measurement_analysis_sample.py",), ("已损坏",)),
    "zips/libarchive_mac_metadata.zip": (("file3",), ("__MACOSX", "._file3")),
    "zips/libarchive_malformed1.zip": (("已损坏",), ()),
    "zips/libarchive_nested.zip": (("another_file.txt", "file.txt"), ("small.zip",)),
    "zips/libarchive_pkware_strong_encryption_partial.zip": (("foo.txt", LOCKED, "bar.txt"), ()),
    "zips/libarchive_rar4_unicode.rar": (("RAR 格式",), ()),
    "zips/libarchive_size_off_by_4gib.zip": (("hello.txt",), ("过大", "已损坏")),
    "zips/libarchive_symlink.zip": (("- file\n", "- symlink\n"), ()),
    "zips/libarchive_utf8_flag_japanese.zip": (("一覧表.txt", "漢字.txt"), ()),
    "zips/libarchive_winzip_aes256_pw_password.zip": ((LOCKED,), ()),
    "zips/libarchive_zipcrypto_pw_12345678.zip": ((LOCKED,), ()),
    "zips/recext_TestData.7z": (("7z 格式",), ()),
    "zips/recext_TestData.rar": (("RAR 格式",), ()),
    "zips/recext_aes_pw_TestData.zip": ((LOCKED,), ()),
    "zips/recext_zbsm_overlap_bomb.zip": (("结构异常",), ()),
    "zips/recext_zip_slip.zip": (("good.txt", "evil.txt"), ("..",)),
    "zips/recext_zip_slip_win.zip": (("good.txt", "evil.txt"), ("..",)),
    "zips/recext_zipcrypto_pw_TestData.zip": ((LOCKED,), ()),
    "zips/ziplib_macos_chinese_filename.zip": (("中文测试.md",), ("__MACOSX", "涓")),
    "zips/ziplib_symlink_chain_escape.zip": (("slipped_zip.txt",), ("..",)),
}
# The manifest gives these archives' passwords; a student who writes it in the mail ("解压密码：…")
# gets the archive opened and read, the members named instead of "设置了密码".
PASSWORDS = {
    "zips/admzip_infozip_zipcrypto_pw_secret.zip": ("secret", ("dummy.txt",)),
    "zips/libarchive_winzip_aes256_pw_password.zip": ("password", ("README",)),
    "zips/libarchive_zipcrypto_pw_12345678.zip": ("12345678", ("bar.txt", "foo.txt")),
    "zips/recext_aes_pw_TestData.zip": ("TestData", ("Lorem.txt",)),
    "zips/recext_zipcrypto_pw_TestData.zip": ("TestData", ("Lorem.txt",)),
}


def _attachment_name(key: str) -> str:
    # A RAR4 keeps its own suffix; everything else is sent as .zip, so that RAR5 and 7z are
    # recognised by content, "even if renamed to .zip".
    return "张伟+物理系+健康宝弹窗" + (".rar" if key.endswith("rar4_unicode.rar") else ".zip")


def _wrapped_submissions() -> list[tuple[str, str, bytes, tuple[str, ...], tuple[str, ...]]]:
    """(sender, corpus file, mail, must say, must not say), one per student mail."""
    built = []
    for index, key in enumerate(ARCHIVES):
        data = _read(key)
        must, must_not = ARCHIVE_EXPECTATIONS[key]
        sender = f"student{index}@example.test"
        built.append((sender, key, b.mail(sender=sender, attachments=[(_attachment_name(key), data)]),
                      must, must_not))
        if key in PASSWORDS:
            password, members = PASSWORDS[key]
            sender = f"student{index}-pw@example.test"
            raw = b.mail(sender=sender, body=f"老师好，附件是我的健康宝弹窗材料，解压密码：{password}",
                         attachments=[(_attachment_name(key), data)])
            built.append((sender, key, raw, members, (LOCKED,)))
    return built


def test_real_archives_in_a_students_mail_get_one_reply_naming_the_problem(world, tmp_path):
    escapes_before = _escape_snapshot()
    submissions = _wrapped_submissions()
    for sender, _key, raw, _must, _must_not in submissions:
        world.deliver(raw, envelope_from=sender)

    mails = _poll_until_settled(world, expected=len(submissions) + 1)
    stuck = [(m.uid, m.outcome, m.error) for m in mails if m.outcome not in FINAL]
    assert stuck == []

    for sender, key, _raw, must, must_not in submissions:
        replies = world.replies_to(sender)
        assert len(replies) == 1, (key, sender, len(replies))
        reply = replies[0].message
        assert "材料未齐" in reply["Subject"], key
        text = body_text(reply)
        # Nothing usable arrived: one instruction, the full five-item one, after what went wrong.
        said, instructions = text.split("请这样发送")
        assert all(f"{item}.jpg" in instructions for item in b.ITEMS), key
        assert "不必重发" not in text, key
        for phrase in must:
            assert phrase in said, (key, sender, phrase, text)
        for phrase in must_not:
            assert phrase not in said, (key, sender, phrase, text)
    assert len(world.smtp.messages) == len(submissions)
    cases = world.cases_json()
    assert sorted(c["sender"] for c in cases) == sorted(s[0] for s in submissions)
    assert all(c["status"] == "incomplete" for c in cases)
    _assert_nothing_written_outside_storage(world, tmp_path, escapes_before)
