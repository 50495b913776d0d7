"""Pictures as every office PC and browser opens them: JPEG, upright, without metadata.

Students send HEIC from iPhones, WebP screenshots and phone photos that are only upright through
their EXIF orientation; the office, 360 browser and Chromium show none of that reliably. GPS and
the camera's other metadata are personal data the office does not need, so they are dropped.
"""
from __future__ import annotations

import io

from checks.pictures import pillow_with_heif


def office_jpeg(data: bytes, *, max_side: int | None = None, quality: int = 88,
                max_bytes: int | None = None) -> bytes:
    """The picture in `data` as a baseline JPEG: EXIF orientation applied, no EXIF/GPS/ICC/XMP,
    optionally shrunk so that its longer side is at most `max_side` pixels, and compressed
    harder (down to quality 50) while it is larger than `max_bytes`."""
    from PIL import ImageOps
    Image = pillow_with_heif()
    with Image.open(io.BytesIO(data)) as opened:
        upright = ImageOps.exif_transpose(opened)
        if upright.mode not in ("RGB", "L"):
            background = Image.new("RGB", upright.size, "white")
            rgba = upright.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            upright = background
        if max_side and max(upright.size) > max_side:
            upright = upright.copy()
            upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        # A fresh image carries no `info`, so nothing of the original's metadata is written.
        clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())
        while True:
            out = io.BytesIO()
            clean.save(out, "JPEG", quality=quality, optimize=True)
            if max_bytes is None or out.tell() <= max_bytes or quality <= 50:
                return out.getvalue()
            quality -= 10
