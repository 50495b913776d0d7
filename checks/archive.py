"""Reading a student's zip from bytes: member names decoded, junk skipped, limits enforced.

Nothing is extracted to disk: members come back as (name, bytes) for the caller to store under
names of its own.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import posixpath
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field

from checks.findings import Problem
from checks.rules import ArchiveLimits
from checks.sniff import document_kind, sniff_kind

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_STRONG_ENCRYPTION_FLAG = 0x40
# Methods Python's zip reader cannot undo; 7-Zip and Windows Explorer write some of them.
_METHOD_NAMES = {9: "Deflate64", 10: "PKWARE Implode", 6: "Implode", 97: "WavPack", 98: "PPMd",
                 93: "Zstandard", 95: "XZ", 96: "JPEG"}
_UNICODE_PATH_EXTRA = 0x7075
_CENTRAL_SIG = b"PK\x01\x02"
_END_SIG = b"PK\x05\x06"
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Member:
    """A file from an archive. `data` is None when `problem` made it unreadable."""

    name: str
    data: bytes | None
    archive: str
    problem: Problem | None = None
    doubtful_name: bool = False  # decoded by a guess that looks wrong (e.g. a Japanese code page)

    @property
    def basename(self) -> str:
        return posixpath.basename(self.name.rstrip("/"))


@dataclass
class ArchiveContents:
    members: list[Member] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def decode_member_name(raw: bytes, utf8_flag: bool, extra: bytes = b"") -> str:
    """A zip member name as the student saw it when they made the archive."""
    text = _unicode_path_extra(raw, extra)
    if text is None:
        for codec in (("utf-8",) if utf8_flag else ()) + ("utf-8", "gb18030"):
            try:
                text = raw.decode(codec)
                break
            except UnicodeDecodeError:
                continue
        if text is None:
            text = raw.decode("cp437")
    return unicodedata.normalize("NFC", text.replace("\\", "/"))


def name_is_doubtful(raw: bytes, utf8_flag: bool, extra: bytes = b"") -> bool:
    """Whether decode_member_name could only guess: no UTF-8, no Unicode Path field, and the
    GB18030 reading is mostly characters outside GB2312, as Shift_JIS or CP437 bytes read as
    Chinese are ("昞偩傛" for 表だよ). Names Chinese students type are nearly all in GB2312."""
    if _unicode_path_extra(raw, extra) is not None:
        return False
    try:
        raw.decode("utf-8")
        return False
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        return False  # read as CP437, which is not a guess between Chinese readings
    wide = [char for char in text if ord(char) > 0x7F]
    outside = [char for char in wide if not _in_gb2312(char)]
    return bool(wide) and 2 * len(outside) >= len(wide)


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


def _unicode_path_extra(header_name: bytes, extra: bytes) -> str | None:
    """The Info-ZIP Unicode Path field, trusted only when its CRC matches the header name."""
    offset = 0
    while offset + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4: offset + 4 + size]
        offset += 4 + size
        if tag != _UNICODE_PATH_EXTRA or len(body) < 5 or body[0] != 1:
            continue
        (crc,) = struct.unpack_from("<L", body, 1)
        if crc != zlib.crc32(header_name):
            return None
        try:
            return body[5:].decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def clear_false_utf8_flags(data: bytes) -> bytes:
    """Archives that flag GBK names as UTF-8 would not open at all; unflag those entries.

    The names are decoded by decode_member_name afterwards, so nothing is lost.
    """
    end = data.rfind(_END_SIG)
    if end < 0 or end + 22 > len(data):
        return data
    count, size, start = struct.unpack_from("<HLL", data, end + 10)
    patched = bytearray(data)
    offset, changed = start, False
    for _ in range(count):
        if offset + 46 > len(data) or data[offset:offset + 4] != _CENTRAL_SIG:
            break
        flags, = struct.unpack_from("<H", data, offset + 8)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, offset + 28)
        name = data[offset + 46: offset + 46 + name_len]
        if flags & _UTF8_FLAG:
            try:
                name.decode("utf-8")
            except UnicodeDecodeError:
                struct.pack_into("<H", patched, offset + 8, flags & ~_UTF8_FLAG)
                changed = True
        offset += 46 + name_len + extra_len + comment_len
    return bytes(patched) if changed else data


def is_junk(name: str) -> bool:
    parts = [part for part in name.split("/") if part]
    if not parts:
        return True
    base = parts[-1]
    return ("__MACOSX" in parts or base.startswith("._") or base.lower() in _JUNK_NAMES)


def member_names(data: bytes, limit: int = 1000) -> list[str]:
    """The decoded names in a zip's directory, without reading any member; [] when unreadable."""
    if sniff_kind(data) != "zip":
        return []
    try:
        with _open_zip(clear_false_utf8_flags(data)) as archive:
            infos = archive.infolist()[:limit]
            return [_decoded_name(info) for info in infos]
    except Exception:  # a hostile archive can raise almost anything from the zip reader
        return []


def _open_zip(data: bytes):
    # Loaded at the first zip, with its cryptography: the daemon's own process leaves most zips
    # to its check processes and starts sooner without it.
    import pyzipper
    return pyzipper.AESZipFile(io.BytesIO(data))


def _decoded_name(info) -> str:
    utf8 = bool(info.flag_bits & _UTF8_FLAG)
    return decode_member_name(_raw_name(info), utf8, info.extra)


def _raw_name(info) -> bytes:
    return info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_FLAG else "cp437")


def unpack(data: bytes, archive_name: str, limits: ArchiveLimits, depth: int = 0,
           passwords: tuple[bytes, ...] = ()) -> ArchiveContents:
    """The members of a zip, or the reasons it cannot be read.

    An encrypted zip is opened with the first of `passwords` (those the student wrote in the
    mail) that fits.
    """
    contents = ArchiveContents()
    kind = sniff_kind(data)
    if kind != "zip":
        contents.problems.append(Problem(kind if kind in {"rar", "7z"} else "not_zip", archive_name,
                                         kind or ""))
        return contents
    try:
        patched = clear_false_utf8_flags(data)
        archive = _open_zip(patched)
    except Exception:  # a hostile archive can raise almost anything from the zip reader
        contents.problems.append(Problem("corrupt_archive", archive_name))
        return contents
    with archive:
        infos = [info for info in archive.infolist()]
        # The overlap check is cheap and names the real trouble of a bomb such as zbsm.zip.
        if _overlapping(data, infos, archive.start_dir):
            contents.problems.append(Problem("overlapping", archive_name))
            return contents
        if len(infos) > limits.max_members:
            contents.problems.append(Problem("too_many_members", archive_name, str(len(infos))))
            return contents
        locked = _locked_members(archive, infos, passwords)
        content_infos = [info for info in infos
                         if not info.filename.endswith("/") and not is_junk(_decoded_name(info))]
        if locked and all(info in locked for info in content_infos):
            contents.problems.append(Problem("encrypted", archive_name,
                                             "wrong_password" if passwords else ""))
            return contents
        budget = limits.max_total_bytes
        for info in infos:
            name = _decoded_name(info)
            if name.endswith("/") or is_junk(name):
                continue
            if info in locked:
                # Some members locked, the rest plain: read what can be read, name the rest.
                contents.members.append(Member(name, None, archive_name,
                                               Problem("member_encrypted", posixpath.basename(name))))
                continue
            member = _read_member(archive, _as_in_local_header(patched, info), name, archive_name,
                                  limits, budget)
            if member.data is not None:
                budget -= len(member.data)
            nested_kind = sniff_kind(member.data) if member.data else None
            if member.data and nested_kind == "zip" and document_kind(member.basename) is None:
                if depth >= limits.max_nesting:
                    contents.problems.append(Problem("too_deep", member.basename))
                    continue
                inner = unpack(member.data, member.basename, limits, depth + 1, passwords)
                contents.members.extend(inner.members)
                contents.problems.extend(inner.problems)
                budget -= sum(len(m.data) for m in inner.members if m.data)
                continue
            if nested_kind in {"rar", "7z"}:
                contents.problems.append(Problem(nested_kind, member.basename, nested_kind))
                continue
            if name_is_doubtful(_raw_name(info), bool(info.flag_bits & _UTF8_FLAG), info.extra):
                member = dataclasses.replace(member, doubtful_name=True)
            contents.members.append(member)
            if budget <= 0:
                contents.problems.append(Problem("archive_too_large", archive_name))
                break
    if depth == 0:
        contents.problems = _one_too_deep(contents.problems, archive_name)
    return contents


def _one_too_deep(problems: list[Problem], archive_name: str) -> list[Problem]:
    """A recursive bomb nests thousands of zips: say so once, naming the student's archive."""
    deep = [problem for problem in problems if problem.code == "too_deep"]
    if len(deep) <= 1:
        return problems
    kept = [problem for problem in problems if problem.code != "too_deep"]
    return [*kept, Problem("too_deep", archive_name)]


def _locked_members(archive, infos, passwords: tuple[bytes, ...]) -> list:
    """The encrypted members no password opens; sets the password that opens the others.

    PKWARE's strong encryption (flag bit 6) cannot be opened by any tool we have.
    """
    encrypted = [info for info in infos if info.flag_bits & _ENCRYPTED_FLAG]
    openable = [info for info in encrypted if not info.flag_bits & _STRONG_ENCRYPTION_FLAG]
    password = _fitting_password(archive, openable[0], passwords) if openable else None
    if password is None:
        return encrypted
    archive.setpassword(password)
    return [info for info in encrypted if info not in openable]


def _fitting_password(archive, info, passwords: tuple[bytes, ...]) -> bytes | None:
    """The first password that opens `info` (ZipCrypto's check byte or AES's verifier)."""
    for password in passwords:
        try:
            with archive.open(info, pwd=password) as stream:
                stream.read(1)
            return password
        except Exception:  # wrong password, or data too broken to tell: try the next one
            continue
    return None


def _as_in_local_header(data: bytes, info):
    """`info` under the name its local header spells, when that differs from the directory's.

    Some tools write one spelling in the local header and another (or a Unicode Path field) in
    the central directory; the bytes are fine, and the member keeps the directory's name for us.
    The zip reader refuses such a member unless it is asked for under the local spelling.
    """
    offset = info.header_offset
    if offset < 0 or offset + _LOCAL_HEADER.size > len(data):
        return info
    name_length = _LOCAL_HEADER.unpack_from(data, offset)[9]
    raw = data[offset + _LOCAL_HEADER.size: offset + _LOCAL_HEADER.size + name_length]
    try:
        local = raw.decode("utf-8" if info.flag_bits & _UTF8_FLAG else "cp437")
    except UnicodeDecodeError:
        return info
    if local == info.orig_filename:
        return info
    renamed = copy.copy(info)
    renamed.orig_filename = local
    return renamed


def _read_member(archive, info, name: str, archive_name: str, limits: ArchiveLimits,
                 budget: int) -> Member:
    """Read at most the limits' worth of one member, whatever size its header declares."""
    ceiling = min(limits.max_member_bytes, max(budget, 0))
    chunks, total = [], 0
    try:
        with archive.open(info) as stream:
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > ceiling:
                    return Member(name, None, archive_name, Problem("member_too_large", name))
                if total > 1024 * 1024 and total > limits.max_ratio * max(info.compress_size, 1):
                    return Member(name, None, archive_name, Problem("member_ratio", name))
                chunks.append(chunk)
    except NotImplementedError:  # a compression method (Deflate64, PPMd...) zipfile cannot read
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        return Member(name, None, archive_name, Problem("unsupported_method", name, method))
    except Exception:  # corrupt data, bad CRC: only this member is lost
        return Member(name, None, archive_name, Problem("member_corrupt", name))
    return Member(name, b"".join(chunks), archive_name)


def _overlapping(data: bytes, infos, central_start: int) -> bool:
    """True when two members' data share bytes: the classic overlapping-file zip bomb."""
    spans = []
    for info in infos:
        offset = info.header_offset
        if offset < 0 or offset + _LOCAL_HEADER.size > len(data):
            return True
        fields = _LOCAL_HEADER.unpack_from(data, offset)
        name_len, extra_len = fields[9], fields[10]
        end = offset + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        spans.append((offset, end))
    spans.sort()
    for (_start_a, end_a), (start_b, _end_b) in zip(spans, spans[1:]):
        if start_b < end_a:
            return True
    return bool(spans) and spans[-1][1] > central_start
