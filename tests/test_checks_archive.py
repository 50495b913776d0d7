import tracemalloc
import zipfile
import io

import pytest

from checks.archive import clear_false_utf8_flags, is_junk, unpack
from checks.rules import ArchiveLimits
from tests.support import builders as b

LIMITS = ArchiveLimits()


def _names(data: bytes, limits: ArchiveLimits = LIMITS):
    return [m.name for m in unpack(data, "a.zip", limits).members]


def test_windows_gbk_zip_with_folder():
    assert _names(b.windows_gbk_zip({"核酸.jpg": b.picture()}, folder="张伟")) == ["张伟/核酸.jpg"]


def test_macos_junk_is_skipped():
    assert _names(b.macos_zip({"核酸.jpg": b.picture()})) == ["张伟材料/核酸.jpg"]


def test_utf8_flag_on_gbk_bytes_still_opens():
    data = b.raw_zip([b.RawEntry("核酸.jpg".encode("gbk"), b.picture(), utf8_flag=True),
                      b.RawEntry("承诺书.jpg".encode("utf-8"), b.picture(), utf8_flag=True)])
    with pytest.raises(UnicodeDecodeError):
        zipfile.ZipFile(io.BytesIO(data))
    assert _names(data) == ["核酸.jpg", "承诺书.jpg"]
    assert clear_false_utf8_flags(clear_false_utf8_flags(data)) == clear_false_utf8_flags(data)


def test_unicode_path_field_is_trusted_only_with_matching_crc():
    good = b.RawEntry("hesuan.jpg".encode(), b.picture(), unicode_path="核酸.jpg")
    assert _names(b.raw_zip([good])) == ["核酸.jpg"]
    forged = b.raw_zip([good])
    forged = forged.replace(b"hesuan.jpg", b"hesuan.JPG")  # header name changes, CRC does not
    assert _names(forged) == ["hesuan.JPG"]


def test_encrypted_zips_are_reported_not_opened():
    for data in (b.zipcrypto_zip({"核酸.jpg": b.picture()}), b.aes_zip({"核酸.jpg": b.picture()})):
        contents = unpack(data, "a.zip", LIMITS)
        assert contents.members == []
        assert [p.code for p in contents.problems] == ["encrypted"]


@pytest.mark.parametrize("data,code", [
    (b"Rar!\x1a\x07\x00" + b"x" * 50, "rar"),
    (b"7z\xbc\xaf\x27\x1c" + b"x" * 50, "7z"),
    (b"\xff\xd8\xff\xe0 a jpeg renamed to zip", "not_zip"),
    (b"PK\x03\x04" + b"\x00" * 40, "corrupt_archive"),
    (b"", "not_zip"),
])
def test_what_is_not_a_readable_zip(data, code):
    assert [p.code for p in unpack(data, "a.zip", LIMITS).problems] == [code]


def test_overlapping_members_reject_the_whole_archive():
    contents = unpack(b.overlapping_zip(), "a.zip", LIMITS)
    assert contents.members == [] and [p.code for p in contents.problems] == ["overlapping"]


def test_truncated_archive():
    data = b.utf8_zip(b.five_pictures())
    contents = unpack(data[: len(data) // 2], "a.zip", LIMITS)
    assert contents.members == [] and contents.problems


def test_too_many_members():
    data = b.utf8_zip({f"{i}.jpg": b"x" for i in range(30)})
    contents = unpack(data, "a.zip", ArchiveLimits(max_members=20))
    assert [p.code for p in contents.problems] == ["too_many_members"]


def test_a_huge_bomb_is_stopped_without_allocating_it(bomb_1_5_gb):
    tracemalloc.start()
    try:
        contents = unpack(bomb_1_5_gb, "a.zip", LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [member] = contents.members
    assert member.data is None and member.problem.code in {"member_too_large", "member_ratio"}
    assert peak < 120 * 1024 * 1024


def test_declared_size_lies_do_not_bypass_limits():
    data = bytearray(b.bomb_zip("核酸.jpg", size=8 * 1024 * 1024))
    contents = unpack(bytes(data), "a.zip", ArchiveLimits(max_member_bytes=1024 * 1024, max_ratio=10_000))
    assert contents.members[0].problem.code == "member_too_large"


def test_nested_zip_one_level_only():
    inner = b.utf8_zip({"核酸.jpg": b.picture()})
    assert _names(b.utf8_zip({"inner.zip": inner})) == ["核酸.jpg"]
    deeper = b.utf8_zip({"outer.zip": b.utf8_zip({"inner.zip": inner})})
    contents = unpack(deeper, "a.zip", LIMITS)
    assert contents.members == [] and [p.code for p in contents.problems] == ["too_deep"]


def test_traversal_names_are_only_names():
    data = b.raw_zip([b.RawEntry(b"..\\..\\evil.jpg", b.picture()), b.RawEntry(b"/etc/passwd", b"x")])
    assert _names(data) == ["../../evil.jpg", "/etc/passwd"]
    assert [m.basename for m in unpack(data, "a.zip", LIMITS).members] == ["evil.jpg", "passwd"]


@pytest.mark.parametrize("name,junk", [
    ("__MACOSX/x/._a.jpg", True), ("a/.DS_Store", True), ("Thumbs.db", True), ("._核酸.jpg", True),
    ("a/核酸.jpg", False), ("", True),
])
def test_junk(name, junk):
    assert is_junk(name) is junk


@pytest.mark.parametrize("maker", [b.zipcrypto_zip, b.aes_zip])
def test_encrypted_zips_open_with_the_password_from_the_mail(maker):
    if maker is b.zipcrypto_zip and not __import__("shutil").which("zip"):
        pytest.skip("Info-ZIP is needed to make a real ZipCrypto archive")
    data = maker({"核酸.jpg": b.picture(), "承诺书.jpg": b.picture()})
    opened = unpack(data, "a.zip", LIMITS, passwords=(b"nope", b"1234"))
    assert sorted(m.name for m in opened.members) == ["承诺书.jpg", "核酸.jpg"]
    assert all(m.data and m.data[:3] == b"\xff\xd8\xff" for m in opened.members)
    wrong = unpack(data, "a.zip", LIMITS, passwords=(b"nope",))
    assert [(p.code, p.detail) for p in wrong.problems] == [("encrypted", "wrong_password")]


def _patched(data: bytes, member: str, *, flags: int | None = None, method: int | None = None) -> bytes:
    """Set a member's flag bits or compression method in its local header and central entry."""
    patched = bytearray(data)
    name = member.encode()
    for signature, flags_at, length_at, name_at in ((b"PK\x03\x04", 6, 26, 30), (b"PK\x01\x02", 8, 28, 46)):
        start = 0
        while (at := patched.find(signature, start)) >= 0:
            start = at + 4
            length = int.from_bytes(patched[at + length_at: at + length_at + 2], "little")
            if bytes(patched[at + name_at: at + name_at + len(name)]) != name or length != len(name):
                continue
            if flags is not None:
                patched[at + flags_at: at + flags_at + 2] = flags.to_bytes(2, "little")
            if method is not None:
                patched[at + flags_at + 2: at + flags_at + 4] = method.to_bytes(2, "little")
    return bytes(patched)


def _stored_zip(files: dict[str, bytes]) -> bytes:
    return b.utf8_zip(files, method=zipfile.ZIP_STORED)


def test_a_member_in_a_method_zipfile_cannot_read_is_named_with_the_method():
    data = _patched(_stored_zip({"核酸.jpg": b.picture(), "lorem.txt": b"lorem"}), "lorem.txt", method=9)
    contents = unpack(data, "a.zip", LIMITS)
    problems = [(m.name, m.problem.code, m.problem.detail) for m in contents.members if m.problem]
    assert problems == [("lorem.txt", "unsupported_method", "Deflate64")]
    assert [m.name for m in contents.members if m.data] == ["核酸.jpg"]


def test_a_partly_encrypted_zip_still_yields_its_plain_members():
    # PKWARE strong encryption (flag bits 0 and 6) on one member: nothing opens it.
    data = _patched(_stored_zip({"核酸.jpg": b.picture(), "foo.txt": b"secret"}), "foo.txt", flags=0x41)
    contents = unpack(data, "a.zip", LIMITS, passwords=(b"1234",))
    assert [m.name for m in contents.members if m.data] == ["核酸.jpg"]
    assert [(m.name, m.problem.code) for m in contents.members if m.problem] == [
        ("foo.txt", "member_encrypted")]
    everything = _patched(_stored_zip({"foo.txt": b"secret"}), "foo.txt", flags=0x41)
    assert [p.code for p in unpack(everything, "a.zip", LIMITS).problems] == ["encrypted"]


def test_a_recursive_bomb_is_reported_once_naming_the_students_archive():
    level = b.utf8_zip({"x.txt": b"x"})
    for depth in range(3):
        level = b.utf8_zip({f"{depth} - Copy ({n}).zip": level for n in range(4)})
    contents = unpack(level, "张伟+物理系+健康宝弹窗.zip", LIMITS)
    assert [(p.code, p.subject) for p in contents.problems] == [("too_deep", "张伟+物理系+健康宝弹窗.zip")]


def test_member_names_are_read_without_unpacking():
    from checks.archive import member_names
    assert member_names(b.windows_gbk_zip({"核酸.jpg": b"x"}, folder="张伟")) == ["张伟/核酸.jpg"]
    assert member_names(b"PK\x03\x04 broken") == []
    assert member_names(b"Rar!\x1a\x07\x01\x00") == []


def test_a_member_whose_local_header_spells_its_name_otherwise_is_still_read():
    data = _stored_zip({"核酸.jpg": b.picture(), "File 2 - xx.txt": b"text"})
    central = data.rfind(b"File 2 - xx.txt")  # the directory's copy comes after the local one
    data = data[:central] + b"File 2 - x\x94.txt" + data[central + 15:]
    contents = unpack(data, "a.zip", LIMITS)
    assert [(m.name, m.data, m.problem) for m in contents.members if m.name.startswith("File")] == [
        ("File 2 - xö.txt", b"text", None)]


@pytest.mark.parametrize("raw,doubtful", [
    ("表だよ/一覧表.txt".encode("cp932"), True),     # Japanese Windows: GB18030 "reads" nonsense
    ("Ölfässer.txt".encode("cp437"), True),
    ("张伟/核酸检测报告.jpg".encode("gbk"), False),   # what Chinese Windows writes
    ("李喆的照片.jpg".encode("gbk"), False),          # one GBK-only character among GB2312 ones
    ("中文测试.md".encode("utf-8"), False),
    (b"IMG_0001.jpg", False),
])
def test_names_read_only_by_a_guess_are_doubtful(raw, doubtful):
    from checks.archive import name_is_doubtful
    assert name_is_doubtful(raw, utf8_flag=False) is doubtful


def test_a_doubtfully_named_stray_file_is_pointed_out():
    from checks.rules import Rules
    from checks.submission import Attachment, assess
    zipped = b.raw_zip([b.RawEntry("一覧表.txt".encode("cp932"), b"x"),
                        b.RawEntry("核酸.jpg".encode("gbk"), b.picture())])
    found = assess([Attachment("张伟+物理系+健康宝弹窗.zip", zipped)], "", Rules())
    assert [p.code for p in found.problems] == ["doubtful_name"]
    assert found.items["核酸"].usable
