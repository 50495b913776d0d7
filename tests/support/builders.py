"""Fixtures the tests build themselves: pictures, zips as real tools write them, raw mails."""
from __future__ import annotations

import base64
import io
import struct
import urllib.parse
import zipfile
import zlib
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone

from PIL import Image

import pillow_heif  # noqa: F401  (registers HEIF saving in Pillow)

pillow_heif.register_heif_opener()

ITEMS = ("承诺书", "情况说明", "健康宝", "行程码", "核酸")
# Personal data as it appears on the pictures; the tests check it never reaches a log.
FIXTURE_ID_NUMBER = "110105200001011234"
FIXTURE_PHONE = "13912345678"


def picture(fmt: str = "JPEG", color=(200, 30, 30), size=(320, 240)) -> bytes:
    image = Image.new("RGB", size, color)
    buffer = io.BytesIO()
    options = {"comment": f"ID {FIXTURE_ID_NUMBER} tel {FIXTURE_PHONE}".encode()} if fmt == "JPEG" else {}
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def sideways_photo_with_gps(fmt: str = "JPEG", size=(300, 100)) -> bytes:
    """A phone photo: stored `size` wide and high, with EXIF orientation 6 ("rotate 90° clockwise
    to view": a viewer sees it as high as it is stored wide, the red band at the top) and a GPS
    position."""
    width, height = size
    image = Image.new("RGB", size, "white")
    image.paste((255, 0, 0), (0, 0, width * 2 // 15, height))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 0.0)}
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def five_pictures(ext: str = "jpg", prefix: str = "", skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    fmt = {"jpg": "JPEG", "png": "PNG", "heic": "HEIF", "webp": "WEBP"}[ext]
    return {f"{prefix}{item}.{ext}": picture(fmt, color=(i * 40, 100, 200 - i * 30))
            for i, item in enumerate(ITEMS) if item not in skip}


@dataclass
class RawEntry:
    name: bytes
    data: bytes
    utf8_flag: bool = False
    unicode_path: str | None = None  # the Info-ZIP 0x7075 field, as WinRAR adds it
    password: bytes | None = None


def raw_zip(entries: list[RawEntry], compress: bool = True) -> bytes:
    """A zip whose member names are exactly the given bytes, flagged as asked.

    zipfile always writes non-ASCII names as flagged UTF-8, so names are written as
    placeholders of the same length and patched, the way Windows tools lay them out.
    """
    buffer = io.BytesIO()
    placeholders = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for index, entry in enumerate(entries):
            placeholder = (f"@{index}@".encode() + b"Q" * len(entry.name))[:len(entry.name)]
            assert len(entry.name) >= 3, "names of at least 3 bytes"
            info = zipfile.ZipInfo(placeholder.decode())
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            if entry.unicode_path is not None:
                field_body = b"\x01" + struct.pack("<L", zlib.crc32(entry.name)) + entry.unicode_path.encode()
                info.extra = struct.pack("<HH", 0x7075, len(field_body)) + field_body
            archive.writestr(info, entry.data)
            placeholders.append(placeholder)
    data = bytearray(buffer.getvalue())
    for entry, placeholder in zip(entries, placeholders, strict=True):
        for _ in range(2):  # local header and central directory
            at = data.find(placeholder)
            assert at >= 0
            data[at:at + len(placeholder)] = entry.name
            flags_at = at - 30 + 6 if data[at - 30:at - 26] == b"PK\x03\x04" else at - 46 + 8
            flags, = struct.unpack_from("<H", data, flags_at)
            flags = (flags | 0x800) if entry.utf8_flag else (flags & ~0x800)
            struct.pack_into("<H", data, flags_at, flags)
    return bytes(data)


def windows_gbk_zip(files: dict[str, bytes], folder: str | None = None) -> bytes:
    """What Windows' built-in compressed folder writes on a Chinese system: GBK, no flag."""
    return raw_zip([RawEntry(((folder + "\\") if folder else "").encode("gbk") + name.encode("gbk"), data)
                    for name, data in files.items()])


def macos_zip(files: dict[str, bytes], folder: str = "张伟材料") -> bytes:
    """What macOS Archive Utility writes: UTF-8 without the flag, a top folder, __MACOSX junk."""
    entries = [RawEntry(f"{folder}/".encode(), b"")]
    for name, data in files.items():
        entries.append(RawEntry(f"{folder}/{name}".encode(), data))
        entries.append(RawEntry(f"__MACOSX/{folder}/._{name}".encode(), b"\x00\x05\x16\x07junk"))
    entries.append(RawEntry(f"{folder}/.DS_Store".encode(), b"\x00\x00\x00\x01Bud1"))
    return raw_zip(entries)


def utf8_zip(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def aes_zip(files: dict[str, bytes]) -> bytes:
    """AES-256 as WinRAR and 7-Zip write it; the stdlib cannot even read these."""
    import pyzipper
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(b"1234")
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zipcrypto_zip(files: dict[str, bytes]) -> bytes:
    """A ZipCrypto archive made by Info-ZIP's `zip -P`, as students make them."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path
    if shutil.which("zip"):
        with tempfile.TemporaryDirectory() as folder:
            for name, data in files.items():
                (Path(folder) / name).write_bytes(data)
            subprocess.run(["zip", "-q", "-P", "1234", "out.zip", *files], cwd=folder, check=True)
            return (Path(folder) / "out.zip").read_bytes()
    # Without Info-ZIP: the same flags on plain payloads, which is what detection reads.
    data = bytearray(utf8_zip(files))
    for signature, flags_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at >= 0:
            flags, = struct.unpack_from("<H", data, at + flags_offset)
            struct.pack_into("<H", data, at + flags_offset, flags | 1)
            at = data.find(signature, at + 4)
    return bytes(data)


def bomb_zip(member_name: str = "核酸.jpg", size: int = 300 * 1024 * 1024) -> bytes:
    """A highly compressible member; streamed in so the test itself stays small in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(member_name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as stream:
            chunk = b"\xff\xd8\xff" + b"\x00" * (1024 * 1024 - 3)
            for _ in range(size // len(chunk)):
                stream.write(chunk)
    return buffer.getvalue()


def overlapping_zip() -> bytes:
    """Two central entries pointing at one local file: the overlapping-member bomb shape."""
    base = bytearray(utf8_zip({"承诺书.jpg": picture(), "情况说明.jpg": picture()}))
    first = base.find(b"PK\x01\x02")
    second = base.find(b"PK\x01\x02", first + 4)
    offset_first, = struct.unpack_from("<L", base, first + 42)
    struct.pack_into("<L", base, second + 42, offset_first)
    return bytes(base)


# ---- mails -----------------------------------------------------------------------------------

def _b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))


def _encoded_word(text: str, charset: str = "utf-8") -> bytes:
    codec = "gbk" if charset.lower() in {"gb2312", "gbk"} else charset
    return f"=?{charset}?B?{base64.b64encode(text.encode(codec)).decode()}?=".encode()


def _name_params(name: str, style: str) -> tuple[bytes, bytes]:
    """(Content-Type params, Content-Disposition) for an attachment name in a client's style."""
    if style == "rfc2231":
        value = b"utf-8''" + urllib.parse.quote(name).encode()
        return b"", b"attachment; filename*=" + value
    if style == "rfc2047-gb2312":
        word = _encoded_word(name, "gb2312")
        return b'; name="' + word + b'"', b'attachment; filename="' + word + b'"'
    if style == "rfc2047-utf8":
        word = _encoded_word(name)
        return b'; name="' + word + b'"', b'attachment; filename="' + word + b'"'
    if style == "raw-gbk":
        return b'; name="' + name.encode("gbk") + b'"', b'attachment; filename="' + name.encode("gbk") + b'"'
    if style == "raw-utf8":
        return b'; name="' + name.encode() + b'"', b'attachment; filename="' + name.encode() + b'"'
    if style == "name-only":
        return b'; name="' + _encoded_word(name) + b'"', b""
    raise ValueError(style)


def mail(sender: str = "zhangwei@example.test", to: str = "dept@example.test",
         subject: str = "张伟+物理系+健康宝弹窗", attachments: list[tuple[str, bytes]] = (),
         body: str = "老师好，附件是我的健康宝弹窗材料。", style: str = "rfc2231",
         headers: dict[str, str] | None = None, message_id: str | None = None,
         html: str | None = None, date: datetime | None = None,
         from_value: bytes | None = None) -> bytes:
    """`from_value`: the From header's value byte for byte (default: an encoded name, `sender`)."""
    boundary = b"==boundary-jkb=="
    lines = [
        b"From: " + (from_value if from_value is not None else
                     b"=?utf-8?B?" + base64.b64encode("学生".encode()) + b"?= <" + sender.encode() + b">"),
        b"To: " + to.encode(),
        b"Subject: " + _encoded_word(subject),
        b"Date: " + format_datetime(date or datetime.now(timezone.utc)).encode(),
        b"Message-ID: " + (message_id or make_msgid(domain="example.test")).encode(),
        b"MIME-Version: 1.0",
    ]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}".encode())
    lines.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"')
    lines.append(b"")
    lines += [b"--" + boundary, b"Content-Type: text/plain; charset=utf-8",
              b"Content-Transfer-Encoding: base64", b"", _b64_lines(body.encode())]
    if html is not None:
        lines += [b"--" + boundary, b"Content-Type: text/html; charset=utf-8",
                  b"Content-Transfer-Encoding: base64", b"", _b64_lines(html.encode())]
    for name, data in attachments:
        type_params, disposition = _name_params(name, style)
        lines += [b"--" + boundary, b"Content-Type: application/octet-stream" + type_params]
        if disposition:
            lines.append(b"Content-Disposition: " + disposition)
        lines += [b"Content-Transfer-Encoding: base64", b"", _b64_lines(data)]
    lines += [b"--" + boundary + b"--", b""]
    return b"\r\n".join(lines)


def forwarded(inner: bytes, sender: str = "zhangwei@example.test",
              subject: str = "转发：张伟+物理系+健康宝弹窗") -> bytes:
    boundary = b"==fwd=="
    return b"\r\n".join([
        b"From: " + sender.encode(), b"To: dept@example.test",
        b"Subject: " + _encoded_word(subject),
        b"Message-ID: " + make_msgid(domain="example.test").encode(),
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"', b"",
        b"--" + boundary, b"Content-Type: text/plain; charset=utf-8", b"", b"fwd",
        b"--" + boundary, b"Content-Type: message/rfc822", b"", inner,
        b"--" + boundary + b"--", b""])
