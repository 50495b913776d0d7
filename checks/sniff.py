"""What a file is, by its first bytes; extensions and MIME labels lie."""
from __future__ import annotations

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}
ARCHIVE_KINDS = frozenset({"zip", "rar", "7z", "gzip", "bzip2", "xz", "tar"})
PICTURE_KINDS = frozenset({"jpeg", "png", "webp", "heif", "gif", "bmp", "tiff"})


def sniff_kind(data: bytes) -> str | None:
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heif"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if data[257:262] == b"ustar":
        return "tar"
    return None


_ARCHIVE_EXTENSIONS = {".zip", ".rar", ".7z", ".gz", ".tgz", ".tar", ".bz2", ".xz"}
_PICTURE_EXTENSIONS = {".jpg", ".jpeg", ".jfif", ".png", ".webp", ".heic", ".heif", ".gif",
                       ".bmp", ".tif", ".tiff", ".pdf"}


def extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""


# Office files are zips inside; a student's 情况说明.docx is a document, not an archive to open.
_DOCUMENT_EXTENSIONS = {".docx", ".xlsx", ".pptx", ".odt", ".ods", ".wps", ".ofd", ".epub", ".apk",
                        ".doc", ".xls", ".ppt", ".et", ".dps", ".rtf", ".pages", ".numbers"}
# What a student is told a document is (by its extension), instead of its internal parts.
DOCUMENT_KINDS = {".docx": "Word 文档", ".doc": "Word 文档", ".rtf": "Word 文档", ".odt": "文档",
                  ".pages": "Pages 文档", ".wps": "WPS 文档", ".et": "WPS 表格", ".dps": "WPS 演示",
                  ".xlsx": "Excel 表格", ".xls": "Excel 表格", ".ods": "表格", ".numbers": "表格",
                  ".pptx": "PowerPoint 演示文稿", ".ppt": "PowerPoint 演示文稿", ".ofd": "OFD 文档"}


def document_kind(name: str) -> str | None:
    """"Word 文档" for 情况说明.docx: an office file, to be signed, photographed or scanned."""
    return DOCUMENT_KINDS.get(extension(name))


def looks_like_archive(name: str, data: bytes) -> bool:
    suffix = extension(name)
    if suffix in _DOCUMENT_EXTENSIONS:
        return False
    return sniff_kind(data) in ARCHIVE_KINDS or suffix in _ARCHIVE_EXTENSIONS


def looks_like_picture(name: str, data: bytes) -> bool:
    return sniff_kind(data) in PICTURE_KINDS | {"pdf"} or extension(name) in _PICTURE_EXTENSIONS
