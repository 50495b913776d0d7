"""Is this file a real, decodable picture of an accepted type?"""
from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass

from checks.sniff import PICTURE_KINDS, sniff_kind


@functools.cache
def pillow_with_heif():
    """Pillow's Image module, able to open HEIF (iPhone photos). Loaded at the first picture: the
    daemon's own process seldom looks at one (its check processes do), and starts sooner."""
    import pillow_heif
    from PIL import Image
    pillow_heif.register_heif_opener()
    return Image

# JPEG draft mode scales by 1/2, 1/4 or 1/8 while keeping both sides at least this size: a small
# size lets libjpeg skip most of the pixel work (1/8) while still reading every byte.
_PREVIEW = (64, 64)

# How a whole file of these kinds ends. A phone's upload cut short misses its end; one that has it
# and whose header parses needs no decode to be believed (decoding is most of a check's time).
_ENDINGS = {"jpeg": b"\xff\xd9", "png": b"IEND\xaeB`\x82"}


@dataclass(frozen=True)
class PictureCheck:
    kind: str | None
    problem: str | None  # None when the picture is usable
    detail: str | None = None  # too_small: "64×48|240" (its size | the least side)


def inspect_picture(data: bytes, accepted_kinds: frozenset[str], min_side: int = 0) -> PictureCheck:
    if not data:
        return PictureCheck(None, "empty")
    kind = sniff_kind(data)
    if kind is None or kind not in PICTURE_KINDS | {"pdf"}:
        return PictureCheck(kind, "not_picture")
    if kind not in accepted_kinds:
        return PictureCheck(kind, "type_not_allowed")
    if kind == "pdf":
        return PictureCheck(kind, None if b"%%EOF" in data[-2048:] else "undecodable")
    try:
        pillow = pillow_with_heif()
        with warnings.catch_warnings():
            warnings.simplefilter("error", pillow.DecompressionBombWarning)
            with pillow.open(io.BytesIO(data)) as image:
                width, height = image.size
                if min(width, height) < min_side:  # a thumbnail: nothing on it can be read
                    return PictureCheck(kind, "too_small", f"{width}×{height}|{min_side}")
                if kind in _ENDINGS and data.endswith(_ENDINGS[kind]):
                    return PictureCheck(kind, None)
                # Anything else (data after the end marker, other kinds) is decoded. A reduced-size
                # decode of a JPEG still reads every byte, so truncation shows.
                image.draft("RGB", _PREVIEW)
                image.load()
    except Exception:  # Pillow's decoders raise many types for broken or hostile input
        return PictureCheck(kind, "undecodable")
    return PictureCheck(kind, None)
