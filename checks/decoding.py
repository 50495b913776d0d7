"""Decoding the text that Chinese mail clients put in headers and zip member names.

Labels are not trusted: GB2312 and GBK are read as their superset GB18030 (names such as 喆 are
GBK-only), undeclared 8-bit bytes are tried as strict UTF-8 first (UTF-8 often "decodes" as GBK
into nonsense), then GB18030.
"""
from __future__ import annotations

import email.header
import re
import unicodedata
import email.message

_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030", "x-gbk": "gb18030",
             "euc-cn": "gb18030", "hz-gb-2312": "gb18030", "ascii": "utf-8", "us-ascii": "utf-8"}
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# The charset label of an RFC 2047 word, with its RFC 2231 language suffix (`gb2312*zh`).
_WORD_LABEL = re.compile(r"=\?([^?*\s]+)((?:\*[^?\s]*)?\?[bBqQ]\?)")


def effective_charset(label: str | None) -> str:
    """The codec to decode text labelled `label` with."""
    name = (label or "utf-8").strip().strip('"').lower()
    name = _SUPERSET.get(name, name)
    try:
        "".encode(name)
    except LookupError:
        return "gb18030"
    return name


def decode_bytes(raw: bytes, label: str | None = None) -> str:
    """Text from bytes: the (widened) label first, then UTF-8, then GB18030, never an error."""
    candidates = [effective_charset(label)] if label else []
    candidates += ["utf-8", "gb18030"]
    for codec in candidates:
        try:
            return raw.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("gb18030", errors="replace")


def undo_surrogates(text: str) -> str:
    """Header text that the compat32 parser kept as surrogate escapes, as real characters."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"))


def widen_charset_labels(text: str) -> str:
    """`text` with each RFC 2047 word's GB2312/GBK label replaced by GB18030, for a parser that
    decodes the words itself (the standard library garbles GBK-only characters such as 喆
    labelled GB2312)."""
    if "=?" not in text:
        return text
    return _WORD_LABEL.sub(lambda found: "=?" + _SUPERSET.get(found[1].lower(), found[1])
                           + found[2], text)


def decode_encoded_words(text: str) -> str:
    """RFC 2047 words anywhere in `text` (also inside quoted parameters), charset widened."""
    if "=?" not in text:
        return text
    # Adjacent encoded words are joined without the white space between them (RFC 2047 6.2).
    text = re.sub(r"(\?=)\s+(=\?)", r"\1\2", text)
    try:
        pieces = email.header.decode_header(text)
    except (email.errors.HeaderParseError, ValueError):
        return text
    out = []
    for chunk, charset in pieces:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_bytes(chunk, charset))
    return "".join(out)


def decode_header_value(value: object) -> str:
    """Any header or parameter value the compat32 parser returns, as clean NFC text.

    Handles the RFC 2231 tuple form, email.header.Header objects, raw 8-bit bytes kept as
    surrogates, and RFC 2047 words (also the non-standard ones inside quotes).
    """
    if value is None:
        return ""
    if isinstance(value, tuple):
        charset, _language, encoded = value
        # compat32 has already percent-decoded the value into one character per byte.
        try:
            raw = encoded.encode("latin-1")
        except UnicodeEncodeError:
            raw = encoded.encode("utf-8", "surrogateescape")
        text = decode_bytes(raw, charset)
    elif isinstance(value, email.header.Header):
        text = "".join(
            chunk if isinstance(chunk, str) else decode_bytes(chunk, charset)
            for chunk, charset in email.header.decode_header(value)
        )
    else:
        text = undo_surrogates(str(value))
        text = decode_encoded_words(text)
    text = text.replace("\r", "").replace("\n", "")
    return unicodedata.normalize("NFC", text).strip()


def header_param(part: email.message.Message, header: str, param: str) -> str | None:
    """A header parameter such as a filename, decoded whatever the client did.

    Read from the raw header so that undeclared 8-bit bytes survive: compat32's own get_param
    turns them into U+FFFD.
    """
    raw = next((value for key, value in part.raw_items() if key.lower() == header), None)
    if raw is None:
        return None
    probe = email.message.Message()
    probe[header] = undo_surrogates(str(raw))
    value = probe.get_param(param, header=header)
    if value is None:
        return None
    return decode_header_value(value) or None
