"""Recognised text into facts, and the rules on facts: text fixtures, no OCR engine."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from checks.content_rules import (NO_POPUP, NOT_BEIJING, POPUP_FOUR, POSITIVE, UNCLEAR, judge,
                                  name_matches, refile)
from checks.facts import read_facts, settle_years
from checks.reading import TextLine, gb11643_valid, normalise, stamps_in

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
                     "tested_at": "2026-11-21T22:10:00+08:00", "name": "张*伟",
                     "scores": {"result": 0.99, "sampled_at": 0.99}}


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


# --- issue 25: pages as real phones and offices make them -------------------------------------

def box(text, left, top, width=None, height=36.0, score=0.99, slope=0.0) -> TextLine:
    """A box as the detector gives it: its bounds grow with its tilt (`slope`, dy/dx)."""
    width = width if width is not None else 30.0 * len(text)
    rise = slope * width
    return TextLine(text, (left, top + min(0.0, rise), left + width, top + height + max(0.0, rise)),
                    score, slope)


def tilted(rows: list[list[tuple[str, float]]], slope: float, score=0.99) -> list[TextLine]:
    """Rows of (text, left) cells on a page turned by `slope`: each cell lower the further right."""
    lines = []
    for number, cells in enumerate(rows):
        for text, left in cells:
            lines.append(box(text, left, 60.0 + 60 * number + slope * left, slope=slope, score=score))
    return lines


def paper_report(result: str, slope: float) -> list[TextLine]:
    return tilted([[("新型冠状病毒核酸检测报告单", 200)], [("姓名:", 60), ("张*", 300)],
                   [("采样时间:", 60), ("2026-12-04 01:33:00", 300)],
                   [("报告时间:", 60), ("2026-12-04 20:10", 300)],
                   [("检测项目", 60), ("结果", 560), ("参考值", 830)],
                   [("新冠病毒核酸", 60), (f"{result}(+)" if result == "阳性" else "阴性(-)", 560),
                    ("阴性(-)", 830)],
                   [("注:阴性(-)表示未检出新型冠状病毒核酸", 60)]], slope)


def test_printed_report_takes_the_result_column_never_the_reference_whatever_the_tilt():
    for slope in (-0.07, -0.03, 0.0, 0.03, 0.07):
        for result in ("阳性", "阴性"):
            facts = read_facts(paper_report(result, slope), ZONE)
            assert facts["result"] == result, (slope, result)
            assert facts["sampled_at"] == "2026-12-04T01:33:00+08:00"


def test_a_reference_value_beside_its_label_is_no_result():
    facts = read_facts(page("核酸检测结果", ("采样时间", "2026-12-04 01:33"), ("参考值", "阴性"),
                            ("检测结果", "阳性(+)")), ZONE)
    assert facts["result"] == "阳性"
    legend = read_facts(page("核酸检测结果", ("采样时间", "2026-12-04 01:33"), "阴性:未检出",
                             "若为阳性请联系老师"), ZONE)
    assert legend["result"] is None


def test_dates_as_people_write_them():
    written = ["2026-12-04 01:33", "2026/12/4 1:33", "2026年12月4日 01:33:00", "2026-12-0401:33:00",
               "12-04 01:33", "12月4日 01:33", "12/4 1:33:00"]
    for text in written:
        [stamp] = stamps_in(text)
        assert (stamp.month, stamp.day, stamp.hour, stamp.minute) == (12, 4, 1, 33), text
    assert [stamp.year for stamp in stamps_in("2026-12-04 01:33 12-03 02:00")] == [2026, None]
    # Glued by OCR: `2026/1/313:31` is 1月3日 13:31 or 1月31日 3:31: unreadable, not a guess.
    assert stamps_in("2026/1/313:31") == [] and stamps_in("1/313:31") == []
    [only] = stamps_in("2026/2/313:31")  # 2月31日 does not exist
    assert (only.day, only.hour) == (3, 13)
    [glued] = stamps_in("2026-11-2114:05:00")
    assert (glued.day, glued.hour, glued.minute) == (21, 14, 5)


def test_a_year_less_sampling_time_takes_its_year_from_the_page_or_the_mail():
    on_page = read_facts(page("核酸检测结果", ("查询时间", "2027-01-02 09:00"),
                              ("采样时间", "12-31 23:10"), ("检测结果", "阴性")), ZONE)
    assert on_page["sampled_at"] == "2026-12-31T23:10:00+08:00"
    bare = read_facts(page("核酸检测结果", ("采样时间", "12月4日 01:33"), ("检测结果", "阴性")), ZONE)
    assert bare["sampled_at"] == "--12-04T01:33:00"  # not a time until the mail's date settles it
    assert judge({"核酸": bare}, "张伟", None, 48).blocked == UNCLEAR
    mailed = datetime(2026, 12, 6, 11, 0, tzinfo=ZONE)
    assert settle_years(bare, mailed, ZONE)["sampled_at"] == "2026-12-04T01:33:00+08:00"
    assert settle_years(bare, datetime(2027, 1, 3, tzinfo=ZONE), ZONE)["sampled_at"] == \
        "2026-12-04T01:33:00+08:00"
    settled = judge({"核酸": settle_years(bare, mailed, ZONE)}, "张伟", mailed, 48)
    assert settled.too_old and settled.blocked is None  # 58 hours: asked for a new one


def test_record_lists_in_either_order_take_the_newest_record():
    newest, older = (("采样时间", "12-04 01:33"), ("检测结果", "阳性")), (("采样时间", "12-02 09:00"),
                                                                          ("检测结果", "阴性"))
    for rows in ((*newest, *older), (*older, *newest)):
        facts = read_facts(page("核酸检测结果", ("查询时间", "2026-12-05 10:00"), *rows), ZONE)
        assert facts["result"] == "阳性" and facts["sampled_at"] == "2026-12-04T01:33:00+08:00"
    # Cards that put the badge above their time, oldest first.
    badges = read_facts(page("核酸检测记录", "阴性", ("采样时间", "2026-12-02 09:00"), "阳性",
                             ("采样时间", "2026-12-04 01:33")), ZONE)
    assert badges["result"] == "阳性"


def test_what_is_unclear_holds_the_case_with_a_flag_saying_what():
    both = read_facts(page("核酸检测结果", ("采样时间", "2026-12-04 01:33"), ("检测结果", "阴性"), "阳性"),
                      ZONE)
    assert both["result"] is None and both["doubts"] == ["核酸检测结果：阴性、阳性均有"]
    no_time = read_facts(page("核酸检测结果", ("采样时间", "2026-12-"), ("检测结果", "阴性")), ZONE)
    no_result = read_facts(page("核酸检测结果", ("采样时间", "2026-12-04 01:33"), ("检测结果", "")), ZONE)
    no_label = read_facts(page("核酸检测结果", "采样时间", ("检测结果", "阴性")), ZONE)
    blurred = read_facts(page("核酸检测结果", ("采样时间", "2026-12-04 01:33"), ("检测结果", "阴性")), ZONE)
    blurred["scores"]["result"] = 0.42
    cases = [(both, "核酸检测结果：阴性、阳性均有"), (no_time, "核酸采样时间：未能识别"),
             (no_result, "核酸检测结果：未能识别"), (no_label, "核酸采样时间：未能识别"),
             (blurred, "核酸检测结果：未能识别")]
    for facts, flag in cases:
        judgement = judge({"核酸": facts}, "张伟", SAMPLED, 48)
        assert judgement.blocked == UNCLEAR and flag in judgement.flags, (facts, judgement)
        assert judgement.sampled_at is None or facts is both or facts is no_result or facts is blurred
    unreadable = judge({"核酸": {"looks_like": None}}, "张伟", SAMPLED, 48)
    assert unreadable.blocked == UNCLEAR and "核酸：未能识别" in unreadable.flags


def test_wrapped_city_list_is_one_place_and_older_14_day_wording():
    facts = read_facts(page("通信大数据行程卡", "更新于：2026.12.04 14:30:05",
                            "您于前14天内到达或途经：北京市，天津市，河北省廊坊", "市*，上海市",
                            "注：*表示当前该城市存在中风险或高风险地区"), ZONE)
    assert facts["places"] == ["北京市", "天津市", "河北省廊坊市", "上海市"]
    assert facts["starred"] == ["河北省廊坊市"] and facts["days"] == 14
    assert "行程码含河北省廊坊市*" in judge({"行程码": facts}, "张伟", None, 48).flags


def test_green_code_without_popup_is_flagged_and_held():
    facts = read_facts(page("北京健康宝", "本人健康码自查询", "2026-12-04 09:00:00", "未见异常"), ZONE)
    judgement = judge({"健康宝": facts}, "张伟", None, 48)
    assert judgement.blocked == NO_POPUP and "健康宝未见弹窗" in judgement.flags


def test_the_itinerary_must_cover_the_test_not_share_its_date():
    def flagged(updated: str, hours: int = 48) -> bool:
        return "行程码与核酸日期不一致" in judge(_facts(updated=updated), "张伟", SAMPLED, hours).flags
    assert not flagged("2026-11-22T09:00:00+08:00"), "taken the day after the test, as students do"
    assert not flagged("2026-11-21T08:00:00+08:00"), "the morning of the sampling day"
    assert not flagged("2026-11-23T14:00:00+08:00"), "still within the 48 hours"
    assert flagged("2026-11-20T23:59:00+08:00"), "before the sampling day"
    assert flagged("2026-11-23T14:10:00+08:00"), "after the result stopped being valid"
    assert flagged("2026-11-23T09:00:00+08:00", hours=24)
