"""Pictures as real phones and offices make them (issue 25), end to end through `intake poll`
and the digest with the real OCR engine: a printed report with result and reference columns
photographed at an angle, year-less dates, record lists in either order, wrapped city lists, a
green code, WeChat's 720 px re-compression, and pages whose 核酸 facts cannot be read for sure.

Each picture is first shown to the engine alone, and the words that decide the case are asserted
in its raw text: a failure here is then ours, not the engine's."""
from __future__ import annotations

from datetime import timedelta

import pytest

from checks.reading import compact
from tests.support import drawn
from tests.support.reading_world import (SAMPLED, STAFF, only_reply, run_digest, send,
                                         world_options)  # noqa: F401 (world_options: a fixture)

OLDER = SAMPLED - timedelta(days=2, hours=5)


# These worlds run on SQLite only.
pytestmark = pytest.mark.sqlite_only


def engine_sees(reader, data: bytes, *words: str) -> None:
    """The engine's raw text holds every decisive word (the reader, not the engine, is tested)."""
    raw = compact("".join(line.text for line in reader.read(data)))
    missing = [word for word in words if compact(word) not in raw]
    assert not missing, f"the OCR engine itself does not see {missing} in {raw!r}"


def five_with(**pictures: bytes) -> dict[str, bytes]:
    """The five materials, some replaced (keyword: item name, value: the picture as a JPEG)."""
    files = drawn.five(SAMPLED)
    for key, data in pictures.items():
        for name in [name for name in files if name.startswith(key)]:
            del files[name]
        files[f"{key}.jpg"] = data
    return files


@pytest.mark.parametrize("result,tilt", [("阳性", 4.0), ("阳性", -4.0), ("阴性", 4.0)])
def test_printed_report_tilted_and_shadowed_reads_the_result_column(world, picture_reader, result, tilt):
    data = drawn.jpeg(drawn.paper_report(SAMPLED, result, tilt=tilt), quality=80)
    engine_sees(picture_reader, data, "采样时间", "结果", "参考值", result, "阴性(-)")
    send(world, five_with(核酸=data))
    subject, text = only_reply(world)
    [case] = world.cases_json()
    assert case["facts"]["核酸"]["result"] == result
    assert case["facts"]["核酸"]["sampled_at"] == "2026-11-21T14:05:00+08:00"
    digest, table = run_digest(world)
    if result == "阳性":
        assert "请立即电话联系学院老师" in text and "五项已全部收到" not in text
        alerts = [r for r in world.replies_to(STAFF) if "核酸阳性" in r.message["Subject"]]
        assert len(alerts) == 1
        assert case["status"] == "held" and digest.forwarded == 0
        assert world.cases_json()[0]["digest_id"] is None
    else:
        assert "五项已全部收到" in text and case["status"] == "complete"
        assert digest.forwarded == 1 and "2026-11-21 14:05" in table


def test_year_less_sampling_time_still_counts_the_48_hours(world, picture_reader, clock):
    data = drawn.jpeg(drawn.record_list([(SAMPLED, "阴性")], how="dashes_no_year"))
    engine_sees(picture_reader, data, "采样时间", "11-21 14:05", "阴性")
    clock.advance(hours=38)  # arrives 58 hours after the sampling
    send(world, five_with(核酸=data))
    subject, text = only_reply(world)
    assert "核酸采样时间 11月21日 14:05，已超过 48 小时" in text and "五项已全部收到" not in text
    [case] = world.cases_json()
    assert case["status"] == "incomplete" and case["missing"] == ["核酸"]
    assert case["facts"]["核酸"]["sampled_at"] == "2026-11-21T14:05:00+08:00"
    digest, _ = run_digest(world)
    assert digest.forwarded == 0


def test_year_less_sampling_time_is_forwarded_with_its_year(world, picture_reader):
    data = drawn.jpeg(drawn.record_list([(SAMPLED, "阴性")], how="chinese_no_year",
                                        queried=SAMPLED + timedelta(hours=12)))
    engine_sees(picture_reader, data, "查询时间", "11月21日", "14:05", "阴性")
    send(world, five_with(核酸=data))
    [case] = world.cases_json()
    assert case["status"] == "complete"
    assert case["facts"]["核酸"]["sampled_at"] == "2026-11-21T14:05:00+08:00"
    digest, table = run_digest(world)
    assert digest.forwarded == 1 and "2026-11-21 14:05" in table


@pytest.mark.parametrize("newest_first", [True, False], ids=["newest-first", "oldest-first"])
def test_record_lists_in_either_order_take_the_newest_record(world, picture_reader, newest_first):
    records = [(SAMPLED, "阳性"), (OLDER, "阴性")]
    data = drawn.jpeg(drawn.record_list(records if newest_first else records[::-1],
                                        how="chinese_no_year", queried=SAMPLED + timedelta(hours=9)))
    engine_sees(picture_reader, data, "11月21日", "11月19日", "阳性", "阴性")
    send(world, five_with(核酸=data))
    subject, text = only_reply(world)
    assert "请立即电话联系学院老师" in text
    [case] = world.cases_json()
    assert case["status"] == "held" and case["facts"]["核酸"]["result"] == "阳性"
    assert case["facts"]["核酸"]["sampled_at"] == "2026-11-21T14:05:00+08:00"
    assert run_digest(world)[0].forwarded == 0


def test_wechat_compressed_720px_screenshots(world, picture_reader):
    listing = drawn.wechat(drawn.record_list([(OLDER, "阳性"), (SAMPLED, "阴性")], how="dashes_no_year",
                                             size=(1080, 1920)))
    health = drawn.wechat(drawn.health_kit(3, SAMPLED), quality=50)
    card = drawn.wechat(drawn.itinerary(SAMPLED, "北京市"), quality=50)
    engine_sees(picture_reader, listing, "采样时间", "11-19", "11-21 14:05", "阳性", "阴性")
    engine_sees(picture_reader, health, "温馨提示③")
    send(world, five_with(核酸=listing, 健康宝=health, 行程码=card))
    subject, text = only_reply(world)
    assert "五项已全部收到" in text
    [case] = world.cases_json()
    assert case["status"] == "complete" and case["flags"] == []
    assert case["facts"]["核酸"]["result"] == "阴性"
    assert case["facts"]["核酸"]["sampled_at"] == "2026-11-21T14:05:00+08:00"
    digest, table = run_digest(world)
    assert digest.forwarded == 1 and "2026-11-21 14:05" in table


def test_wrapped_city_list_keeps_its_starred_city(world, picture_reader):
    data = drawn.jpeg(drawn.wrapped_itinerary(SAMPLED, ["北京市，天津市，河北省廊坊", "市*，上海市"],
                                              days=14))
    engine_sees(picture_reader, data, "前14天", "河北省廊坊", "市*")
    send(world, five_with(行程码=data))
    [case] = world.cases_json()
    assert case["status"] == "complete"
    assert case["facts"]["行程码"]["places"] == ["北京市", "天津市", "河北省廊坊市", "上海市"]
    assert case["flags"] == ["行程码含河北省廊坊市*"]
    digest, table = run_digest(world)
    assert digest.forwarded == 1 and "行程码含河北省廊坊市*" in table


def test_green_code_without_a_popup_asks_whether_the_popup_is_gone(world, picture_reader):
    data = drawn.jpeg(drawn.green_code(SAMPLED))
    engine_sees(picture_reader, data, "北京健康宝", "未见异常")
    send(world, five_with(健康宝=data))
    subject, text = only_reply(world)
    assert "弹窗是否已经消失" in text and "只适用于健康宝出现弹窗" in text
    assert "五项已全部收到" not in text
    [case] = world.cases_json()
    assert case["status"] == "held" and "健康宝未见弹窗" in case["flags"]
    assert run_digest(world)[0].forwarded == 0


UNCLEAR_PAGES = {
    "time unreadable": ([("采样时间", "加载中…"), ("检测结果", "阴性")], "核酸采样时间：未能识别"),
    "result unreadable": ([("采样时间", "2026-11-21 14:05"), ("检测结果", "请稍后查询")],
                          "核酸检测结果：未能识别"),
    "both results": ([("采样时间", "2026-11-21 14:05"), ("检测结果", "阴性"), "阳性"],
                     "核酸检测结果：阴性、阳性均有"),
}


@pytest.mark.parametrize("layout", list(UNCLEAR_PAGES))
def test_a_nucleic_acid_fact_that_cannot_be_read_waits_for_a_person(world, picture_reader, layout):
    rows, flag = UNCLEAR_PAGES[layout]
    data = drawn.jpeg(drawn.screenshot(["核酸检测结果", ("姓名", "张*"), *rows]))
    engine_sees(picture_reader, data, "采样时间", "检测结果")
    send(world, five_with(核酸=data))
    subject, text = only_reply(world)
    assert "五项已全部收到" not in text and "人工核对" in text and flag in text
    assert "采样时间" in text and "检测结果" in text  # what to send instead
    [case] = world.cases_json()
    assert case["status"] == "held" and flag in case["flags"]
    assert case["facts"]["核酸"]["result"] != "阴性" or layout != "both results"
    assert run_digest(world)[0].forwarded == 0
    shown = world.cli("case", "show", str(case["id"]))
    assert flag in shown.stdout
