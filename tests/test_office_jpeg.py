"""Pictures converted for the office and the desk: upright JPEG without GPS or other metadata."""
from __future__ import annotations

import io

import pillow_heif
from PIL import Image

from notifier.pictures import office_jpeg
from tests.support import builders as b

pillow_heif.register_heif_opener()


def test_heic_and_jpeg_become_upright_jpeg_without_gps():
    for fmt in ("HEIF", "JPEG"):
        converted = Image.open(io.BytesIO(office_jpeg(b.sideways_photo_with_gps(fmt))))
        assert converted.format == "JPEG"
        assert converted.size == (100, 300)
        red, green, _ = converted.convert("RGB").getpixel((50, 10))
        assert red > 200 and green < 80, "the red band must be at the top once upright"
        exif = converted.getexif()
        assert 0x8825 not in exif and 0x0112 not in exif
        assert "exif" not in converted.info


def test_webp_with_alpha_and_shrinking():
    image = Image.new("RGBA", (4000, 1000), (0, 0, 255, 0))
    out = io.BytesIO()
    image.save(out, "WEBP")
    converted = Image.open(io.BytesIO(office_jpeg(out.getvalue(), max_side=2000)))
    assert converted.format == "JPEG" and converted.size == (2000, 500)
    assert converted.getpixel((10, 10)) == (255, 255, 255) or sum(converted.getpixel((10, 10))) > 740
