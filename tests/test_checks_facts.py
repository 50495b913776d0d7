"""Recognised text into facts, and the rules on facts: text fixtures, no OCR engine."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from checks.content_rules import (NOT_BEIJING, POPUP_FOUR, POSITIVE, judge, name_matches, refile)
from checks.facts import read_facts
from checks.reading import TextLine, gb11643_valid, normalise

ZONE = ZoneInfo("Asia/Shanghai")


def page(*rows) -> list[TextLine]:
    """Rows of boxes: a string is one box; a tuple is boxes side by side on one row."""
    lines, y = [], 40.0
    for row in rows:
        cells = row if isinstance(row, tuple) else (row,)
        x = 20.0
        for cell in cells:
            width = 30.0 * len(cell)
            lines.append(TextLine(cell, (x, y, x + width, y + 36), 0.99))
            x += width + 40
        y += 80
    return lines


NUCLEIC_PAGE = page("核酸检测结果", ("姓名", "张*伟"), ("采样时间", "2026-11-2114:05:00"),
                    "检测时间2026-11-21 22:10:00", ("检测结果", "阴性"),
                    ("采样时间", "2026-11-19 08:30:00"), ("检测结果", "阳性"))


def test_nucleic_acid_takes_the_newest_record_and_its_result():
    facts = read_facts(NUCLEIC_PAGE, ZONE)
    assert facts == {"looks_like": "核酸", "result": "阴性",
                     "sampled_at": "2026-11-21T14:05:00+08:00",
                     "tested_at": "2026-11-21T22:10:00+08:00", "name": "张*伟"}


def test_health_kit_popup_number_and_variant_characters():
    facts = read_facts(page("北京健康宝", "本人健康码自查询", "温馨提示③", "2026-11-21 15:00:01",
                            ("姓名", "张*伟"), "您的健康宝弾窗"), ZONE)
    assert facts["looks_like"] == "健康宝" and facts["popup"] == 3
    assert facts["shown_at"] == "2026-11-21T15:00:01+08:00" and facts["name"] == "张*伟"
    assert read_facts(page("北京健康宝", "温馨提示（4）"), ZONE)["popup"] == 4
    assert read_facts(page("北京健康宝", "未见异常"), ZONE)["popup"] is None
    assert normalise("弾窗 検測結果：陰性") == "弹窗 检测结果:阴性"


def test_itinerary_places_stars_update_and_days():
    facts = read_facts(page("通信大数据行程卡", "13800138000的动态行程卡", "更新于：2026.11.21 14:30:05",
                            "您于前7天内到达或途经：北京市，上海市*",
                            "河北省石家庄市",
                            "注：*表示当前该城市存在中风险或高风险地区"), ZONE)
    assert facts == {"looks_like": "行程码", "places": ["北京市", "上海市", "河北省石家庄市"],
                     "starred": ["上海市"], "updated_at": "2026-11-21T14:30:05+08:00", "days": 7}


def test_statement_form_fields_and_id_check_digit():
    good, bad = "11010519491231002X", "110105194912310021"
    assert gb11643_valid(good) and not gb11643_valid(bad)
    rows = ("附件2", "健康宝异常人员信息登记表", ("姓名", "张伟"), ("现住址", "北京市昌平区府学路18号"),
            ("手机号码", "13800138000"), ("身体健康状况", "良好"), ("身份证号", good),
            ("是否去过中高风险地区", "否"), ("近7天行程轨迹", "北京市昌平区"))
    facts = read_facts(page(*rows), ZONE)
    assert facts == {"looks_like": "情况说明", "姓名": "张伟", "现住址": "北京市昌平区府学路18号",
                     "手机号码": "13800138000", "身体健康状况": "良好", "身份证号": good,
                     "是否去过中高风险地区": "否", "近7天行程轨迹": "北京市昌平区"}
    misread = read_facts(page(*rows[:6], ("身份证号", bad)), ZONE)
    assert misread["身份证号"] is None
    assert "情况说明身份证号校验位不符" in judge({"情况说明": misread}, "张伟", None, 48).flags


def test_pledge_name_comes_from_its_name_blank_never_the_signature():
    facts = read_facts(page("弹窗解除个人承诺书", ("姓名", "张伟"), ("联系电话", "13800138000"),
                            ("有效证件号码", "11010519491231002X"),
                            ("居住地址（详细到宿舍号）", "北京市昌平区府学路18号7号楼302"),
                            "本人承诺以上信息真实。", ("承诺人（手签）", "VW")), ZONE)
    assert facts == {"looks_like": "承诺书", "姓名": "张伟", "联系电话": "13800138000",
                     "手机号码": None, "有效证件号码": "11010519491231002X",
                     "居住地址": "北京市昌平区府学路18号7号楼302"}
    # As a real pledge was read: the signature line printed as 姓名：(手签), under the pledge.
    signed = read_facts(page("弹窗解除个人承诺书", ("姓名", "冯雪"), "本人承诺以上信息真实。",
                             "姓名：(手签):VW"), ZONE)
    assert signed["姓名"] == "冯雪"
    unsigned = read_facts(page("弹窗解除个人承诺书", "本人承诺以上信息真实。", "姓名：(手签):VW"), ZONE)
    assert unsigned["姓名"] is None


def test_statement_reads_every_line_a_student_wrote_in_a_cell():
    def box(text, x, y):
        return TextLine(text, (x, y, x + 30.0 * len(text), y + 36), 0.99)
    lines = [box("健康宝异常人员信息登记表", 200, 0), box("姓名", 20, 80), box("张伟", 400, 80),
             box("现住址", 20, 160), box("北京市昌平区府学路18号", 400, 160), box("7号楼302室", 400, 205),
             box("近7天行程轨迹", 20, 260), box("2026年11月15日-11月18日 北京市海淀区", 400, 260),
             box("2026年11月19日-11月21日 北京市昌平区", 400, 305),
             box("身体健康状况", 20, 360), box("良好", 400, 360),
             box("是否去过中高风险地区", 20, 440), box("否", 400, 440)]
    facts = read_facts(lines, ZONE)
    assert facts["现住址"] == "北京市昌平区府学路18号\n7号楼302室"
    assert facts["近7天行程轨迹"] == ("2026年11月15日-11月18日北京市海淀区\n"
                                  "2026年11月19日-11月21日北京市昌平区")
    assert facts["身体健康状况"] == "良好" and facts["是否去过中高风险地区"] == "否"


def test_unknown_picture_looks_like_nothing():
    assert read_facts(page("今天天气很好"), ZONE) == {"looks_like": None}
    assert read_facts([], ZONE) == {"looks_like": None}


def test_refile_swaps_and_drops():
    assert refile({"核酸": "健康宝", "健康宝": "核酸", "承诺书": None}) == {
        "核酸": "健康宝", "健康宝": "核酸", "承诺书": "承诺书"}
    assert refile({"核酸": "健康宝", "健康宝": "健康宝"}) == {"健康宝": "健康宝", "核酸": None}
    assert refile({"核酸": "行程码"}) == {"核酸": "行程码"}


def test_name_matching_masks():
    assert name_matches("张*伟", "张大伟") and name_matches("张*伟", "张伟") is False
    assert name_matches("张*", "张伟") and name_matches("*伟", "张伟") and name_matches("张*", "张伟")
    assert name_matches("张*", "张伟") and name_matches("张伟", "张伟") and not name_matches("李*", "张伟")
    assert name_matches(None, "张伟")


def test_masked_names_as_apps_show_long_and_foreign_names():
    assert name_matches("阿*孜", "阿卜杜拉·艾则孜") and name_matches("阿**孜", "阿卜杜拉·艾则孜")
    assert name_matches("*孜", "阿卜杜拉 · 艾则孜") and name_matches("阿卜杜拉·艾则*", "阿卜杜拉艾则孜")
    assert name_matches("冯", "冯雪") and name_matches("雪", "冯雪") and not name_matches("李", "冯雪")
    assert name_matches("W*n", "Wang Haoran") and name_matches("wang*", "Wang Haoran")
    assert not name_matches("阿*孜", "阿卜杜拉·艾则") and not name_matches("王*", "冯雪")


SAMPLED = datetime(2026, 11, 21, 14, 5, tzinfo=ZONE)


def _facts(result="阴性", popup=3, places=("北京市",), starred=(), updated="2026-11-21T14:30:00+08:00",
           name="张*"):
    return {"核酸": {"looks_like": "核酸", "result": result, "sampled_at": SAMPLED.isoformat(),
                     "name": name},
            "健康宝": {"looks_like": "健康宝", "popup": popup, "name": None},
            "行程码": {"looks_like": "行程码", "places": list(places), "starred": list(starred),
                       "updated_at": updated},
            "承诺书": {"looks_like": "承诺书"}, "情况说明": None}


def test_rules_block_only_when_sure():
    assert judge(_facts(result="阳性"), "张伟", SAMPLED, 48).blocked == POSITIVE
    assert judge(_facts(popup=4), "张伟", SAMPLED, 48).blocked == POPUP_FOUR
    assert judge(_facts(places=("上海市",)), "张伟", SAMPLED, 48).blocked == NOT_BEIJING
    assert judge(_facts(places=()), "张伟", SAMPLED, 48).blocked is None
    fine = judge(_facts(), "张伟", SAMPLED + timedelta(hours=47), 48)
    assert fine.blocked is None and not fine.too_old and fine.flags == ["情况说明：未能识别"]


def test_48_hours_from_sampling():
    assert judge(_facts(), "张伟", SAMPLED + timedelta(hours=49), 48).too_old
    assert not judge(_facts(), "张伟", SAMPLED + timedelta(hours=49), 72).too_old


def test_flags_for_staff():
    flags = judge(_facts(places=("北京市", "上海市"), starred=("上海市",),
                         updated="2026-11-20T09:00:00+08:00", name="李*"), "张伟", SAMPLED, 48).flags
    assert flags == ["情况说明：未能识别", "行程码含上海市*", "行程码与核酸日期不一致", "核酸姓名与提交不符（李*）"]


def test_the_itinerary_must_cover_the_test_not_share_its_date():
    def flagged(updated: str, hours: int = 48) -> bool:
        return "行程码与核酸日期不一致" in judge(_facts(updated=updated), "张伟", SAMPLED, hours).flags
    assert not flagged("2026-11-22T09:00:00+08:00"), "taken the day after the test, as students do"
    assert not flagged("2026-11-21T08:00:00+08:00"), "the morning of the sampling day"
    assert not flagged("2026-11-23T14:00:00+08:00"), "still within the 48 hours"
    assert flagged("2026-11-20T23:59:00+08:00"), "before the sampling day"
    assert flagged("2026-11-23T14:10:00+08:00"), "after the result stopped being valid"
    assert flagged("2026-11-23T09:00:00+08:00", hours=24)
