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
