"""Addresses in mail headers, read by the standard library's parser on the raw header.

From, Sender, Reply-To, To, Cc and Return-Path are parsed by `email.headerregistry` (the parser of
`email.policy.default`), never by cutting a decoded string: a display name may hold commas, quotes
and angle brackets, and QQ Mail and Foxmail put RFC 2047 words inside quotes, which that parser
decodes too (noting a defect). As everywhere here, charset labels are widened first (GB2312 and
GBK as GB18030), and raw 8-bit headers (RFC 6532) are read as UTF-8, else GB18030.
"""
from __future__ import annotations

import email.errors
import re
import unicodedata
from dataclasses import dataclass
from email.headerregistry import AddressHeader, HeaderRegistry

from checks.decoding import undo_surrogates, widen_charset_labels

ADDRESS_HEADERS = ("from", "sender", "reply-to", "to", "cc", "return-path")

# Return-Path is not among the registry's address headers; it holds one angle-addr, `<>` or not.
_REGISTRY = HeaderRegistry()
_REGISTRY.map_to_type("return-path", AddressHeader)  # type: ignore[arg-type]  # typeshed: a mixin, not BaseHeader
# An address a reply can go to: something@somewhere, with nothing a parser left half-done in it
# (white space, quotes, brackets). Non-ASCII is allowed (RFC 6532).
_ANSWERABLE = re.compile(r"[^\s@\"<>()\[\],;:\\]+@[^\s@\"<>()\[\],;:\\]+")
# A line break, with or without the folding white space after it (RFC 5322 unfolding).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class NamedAddress:
    display_name: str
    address: str  # in the normal form (normal_address)


def normal_address(address: str) -> str:
    """The one form addresses are stored and compared in: NFC, lower case, no blanks around."""
    return unicodedata.normalize("NFC", address).strip().lower()


def parse_addresses(header: str, raw_value: str) -> tuple[NamedAddress, ...]:
    """The addresses a reply could go to in one header, as the compat32 parser keeps its raw
    value (8-bit bytes as surrogate escapes); () when there is none the parser could read."""
    parsed = _parse(header, raw_value)
    if parsed is None:
        return ()
    found = []
    for each in parsed.addresses:
        if not each.username or not each.domain:
            continue
        address = normal_address(f"{each.username}@{each.domain}")
        if _ANSWERABLE.fullmatch(address):
            found.append(NamedAddress(unicodedata.normalize("NFC", each.display_name), address))
    return tuple(found)


def is_null_path(raw_value: str) -> bool:
    """A Return-Path of `<>` (or empty): the null sender that delivery reports come from.
    Exchange writes it `<MAILER-DAEMON>`."""
    text = _LINE_BREAK.sub("", undo_surrogates(str(raw_value))).strip()
    return re.fullmatch(r"<?\s*(?:mailer-daemon\s*)?>?", text, re.IGNORECASE) is not None


def _parse(header: str, raw_value: str):
    text = widen_charset_labels(_LINE_BREAK.sub("", undo_surrogates(str(raw_value))))
    try:
        return _REGISTRY(header.lower(), text)
    except (email.errors.HeaderParseError, IndexError, ValueError, TypeError, AttributeError):
        return None  # the parser gave up on a malformed header: no address to answer
