"""The real OCR engine on drawn pictures as students send them: screenshots, and phone photos of
the printed forms (turned, blurred), JPEG-compressed, HEIC and EXIF-rotated."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from checks.facts import read_facts
from tests.support import drawn

ZONE = ZoneInfo("Asia/Shanghai")
SAMPLED = datetime(2026, 11, 21, 14, 5, tzinfo=ZONE)
OLDER = datetime(2026, 11, 19, 8, 30, tzinfo=ZONE)


def test_nucleic_acid_page_with_an_older_record_as_a_compressed_jpeg(picture_reader):
    data = drawn.jpeg(drawn.nucleic_acid(SAMPLED, older=OLDER), quality=35)
    facts = read_facts(picture_reader.read(data), ZONE)
    assert facts["looks_like"] == "核酸" and facts["result"] == "阴性"
    assert facts["sampled_at"] == "2026-11-21T14:05:00+08:00"


def test_statement_photo_stored_sideways_with_exif_orientation_6(picture_reader):
    facts = read_facts(picture_reader.read(drawn.exif_rotated_jpeg(drawn.statement())), ZONE)
    assert facts["looks_like"] == "情况说明"
    assert facts["身份证号"] == drawn.ID_NUMBER and facts["手机号码"] == drawn.PHONE
    assert facts["姓名"] == "张伟" and facts["现住址"] == "北京市昌平区府学路18号"


def test_pledge_photo_as_heic(picture_reader):
    facts = read_facts(picture_reader.read(drawn.heic(drawn.pledge())), ZONE)
    assert facts == {"looks_like": "承诺书", "姓名": "张伟", "联系电话": drawn.PHONE}


@pytest.mark.parametrize("popup", [3, 4])
def test_health_kit_popup_number(picture_reader, popup):
    facts = read_facts(picture_reader.read(drawn.png(drawn.health_kit(popup, SAMPLED))), ZONE)
    assert facts["looks_like"] == "健康宝" and facts["popup"] == popup


def test_a_picture_that_is_not_a_picture_is_unreadable_not_an_error(picture_reader):
    from intake.pictures.ocr import PictureUnreadable
    with pytest.raises(PictureUnreadable):
        picture_reader.read(b"not a picture at all")
