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
    assert facts["近7天行程轨迹"] == drawn.TRIP.replace(" ", ""), "both lines of the cell"


def test_pledge_photo_as_heic(picture_reader):
    facts = read_facts(picture_reader.read(drawn.heic(drawn.pledge())), ZONE)
    assert facts == {"looks_like": "承诺书", "姓名": "张伟", "联系电话": drawn.PHONE, "手机号码": None,
                     "有效证件号码": drawn.ID_NUMBER, "居住地址": "北京市昌平区府学路18号7号楼302室"}


@pytest.mark.parametrize("popup", [3, 4])
def test_health_kit_popup_number(picture_reader, popup):
    facts = read_facts(picture_reader.read(drawn.png(drawn.health_kit(popup, SAMPLED))), ZONE)
    assert facts["looks_like"] == "健康宝" and facts["popup"] == popup


def test_a_picture_that_is_not_a_picture_is_unreadable_not_an_error(picture_reader):
    from intake.pictures.ocr import PictureUnreadable
    with pytest.raises(PictureUnreadable):
        picture_reader.read(b"not a picture at all")


def _flags(picture_reader, files: dict[str, bytes], name: str) -> list[str]:
    from checks.content_rules import flags_for
    facts = {filename.split(".")[0]: read_facts(picture_reader.read(data), ZONE)
             for filename, data in files.items()}
    return flags_for(facts, name, 48)


# (submitted name, as the apps show it masked, hours from sampling to the 行程码 screenshot)
CORRECT = [("张伟", "张*", 20), ("阿卜杜拉·艾则孜", "阿*孜", 18), ("冯雪", "冯*", 22), ("冯雪", "*雪", 2),
           ("Wang Haoran", "Wang*", 19), ("欧阳娜娜", "欧*娜", 26), ("李明", "李*", 1), ("王芳", "*芳", 30),
           ("买买提·吐尔逊", "买*逊", 21), ("赵六", "赵*", 20), ("孙八", "孙*", 44), ("周杰", "*杰", 17),
           ("吴敏", "吴*", 23), ("郑爽", "郑*", 20), ("钱七", "钱*", 16), ("刘洋", "刘*", 25),
           ("陈晨", "陈*", 20), ("杨光", "杨*", 12), ("黄河", "*河", 24), ("林森", "林*", 20)]


@pytest.mark.slow
def test_correct_submissions_carry_no_flags_and_wrong_ones_theirs(picture_reader):
    """The measure of issue 22: flags mean something. 20 correct drawn submissions (the 行程码
    taken hours to a day after the test, masked and foreign names) carry at most one flag in
    all; each wrong-on-purpose submission carries the flag for what is wrong."""
    from datetime import timedelta
    flagged = {}
    for number, (name, shown, hours) in enumerate(CORRECT):
        sampled = SAMPLED - timedelta(minutes=7 * number)
        files = drawn.five(sampled, name=name, shown_name=shown, updated=sampled + timedelta(hours=hours))
        found = _flags(picture_reader, files, name)
        if found:
            flagged[name] = found
    assert len(flagged) <= 1, flagged

    wrong = {
        "核酸姓名与提交不符（李*明）": dict(shown_name="李*明"),
        "行程码含上海市*": dict(places="北京市，上海市*", updated=SAMPLED + timedelta(hours=20)),
        "行程码与核酸日期不一致": dict(updated=SAMPLED - timedelta(days=1)),
        "情况说明身份证号校验位不符": dict(id_number="110105194912310021"),
    }
    for flag, how in wrong.items():
        files = drawn.five(SAMPLED, **{"updated": SAMPLED + timedelta(hours=20), **how})
        assert flag in _flags(picture_reader, files, "张伟"), flag
    late = drawn.five(SAMPLED, updated=SAMPLED + timedelta(hours=50))
    assert "行程码与核酸日期不一致" in _flags(picture_reader, late, "张伟")
    unreadable = drawn.five(SAMPLED, updated=SAMPLED + timedelta(hours=20))
    unreadable["健康宝.png"] = drawn.png(drawn.screenshot(["今天天气很好"]))
    assert "健康宝：未能识别" in _flags(picture_reader, unreadable, "张伟")
