"""Reading the pictures end to end: drawn pictures delivered over LMTP, read by the real OCR engine
(loaded once per session), and what students and staff then see."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from tests.support import builders as b
from tests.support import drawn
from tests.support.harness import REPO, body_text
from tests.support.reading_world import (OFFICE, SAMPLED, STAFF, STUDENT, only_reply, run_digest, send,
                                         world_options)  # noqa: F401 (world_options: a fixture)

# These worlds run on SQLite only.
pytestmark = pytest.mark.sqlite_only


def test_facts_and_flags_in_the_case_list(world):
    send(world, drawn.five(SAMPLED, places="北京市，上海市*"))
    subject, text = only_reply(world)
    assert "五项已全部收到" in text
    [case] = world.cases_json()
    assert case["status"] == "complete"
    facts = case["facts"]
    scores = facts["核酸"].pop("scores")
    assert facts["核酸"] == {"looks_like": "核酸", "result": "阴性",
                             "sampled_at": "2026-11-21T14:05:00+08:00", "tested_at": None, "name": "张*"}
    assert set(scores) == {"result", "sampled_at"} and min(scores.values()) >= 0.8
    assert facts["健康宝"]["popup"] == 3
    assert facts["行程码"]["places"] == ["北京市", "上海市"] and facts["行程码"]["starred"] == ["上海市"]
    assert facts["情况说明"]["身份证号"] == drawn.ID_NUMBER
    assert facts["情况说明"]["手机号码"] == drawn.PHONE
    assert facts["承诺书"]["looks_like"] == "承诺书"
    assert case["flags"] == ["行程码含上海市*"]
    shown = world.cli("case", "show", str(case["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "核酸采样时间" in shown.stdout and "弹窗编号：3" in shown.stdout and "行程码含上海市*" in shown.stdout
    assert "检测结果：阴性（清晰）" in shown.stdout


def test_pictures_named_after_each_other_are_filed_by_content(world):
    files = drawn.five(SAMPLED)
    files["核酸.png"], files["健康宝.png"] = files["健康宝.png"], files["核酸.png"]
    send(world, files)
    subject, text = only_reply(world)
    assert "已按内容归为「核酸」" in text and "已按内容归为「健康宝」" in text
    [case] = world.cases_json()
    assert case["status"] == "complete"
    assert case["facts"]["核酸"]["looks_like"] == "核酸" and case["facts"]["健康宝"]["popup"] == 3


def test_nucleic_acid_sampled_more_than_48_hours_before_arrival(world, clock):
    clock.advance(hours=30)  # 50 hours after sampling
    send(world, drawn.five(SAMPLED))
    subject, text = only_reply(world)
    assert "核酸采样时间 11月21日 14:05，已超过 48 小时" in text
    # One reply never lists an item both as usable and as missing.
    usable = next(line for line in text.splitlines() if line.startswith("本次收到并可用的材料"))
    assert "核酸" not in usable and "核酸" in text.split("还缺少或不可用的材料")[1]
    [case] = world.cases_json()
    assert case["status"] == "incomplete" and case["missing"] == ["核酸"]


def test_positive_result_alerts_staff_at_once_and_is_never_forwarded(world):
    send(world, drawn.five(SAMPLED, result="阳性"))
    subject, text = only_reply(world)
    assert "请立即电话联系学院老师" in text and "已收齐" not in subject
    assert "请留在原地" in text and "学院值班电话 010-62751111" in text  # answered out of hours
    [alert] = world.replies_to(STAFF)
    assert "核酸阳性" in alert.message["Subject"] and "张伟" in body_text(alert.message)
    [case] = world.cases_json()
    assert case["status"] == "held" and case["facts"]["核酸"]["result"] == "阳性"
    result = world.cli("digest")
    assert result.returncode == 0, result.stderr
    assert world.cases_json()[0]["digest_id"] is None


def test_popup_four_is_told_it_clears_itself(world):
    send(world, drawn.five(SAMPLED, popup=4))
    subject, text = only_reply(world)
    assert "温馨提示④" in text and "自动消除" in text
    [case] = world.cases_json()
    assert case["status"] == "held" and case["facts"]["健康宝"]["popup"] == 4


def test_itinerary_without_beijing_is_told_the_process_is_for_beijing(world):
    send(world, drawn.five(SAMPLED, places="上海市"))
    subject, text = only_reply(world)
    assert "只适用于在北京的同学" in text and "上海市" in text
    # Issue 21: what the office says, not "contact your community".
    assert "社区" not in text and "返回北京后" in text and "请在北京做一次核酸" in text
    assert world.cases_json()[0]["status"] == "held"


def test_unreadable_picture_is_a_flag_never_a_bounce(world):
    files = drawn.five(SAMPLED)
    files["承诺书.jpg"] = b.picture("JPEG", size=(400, 300))  # a photo with no text at all
    send(world, files)
    subject, text = only_reply(world)
    assert "五项已全部收到" in text
    [case] = world.cases_json()
    assert case["status"] == "complete" and case["flags"] == ["承诺书：未能识别"]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare for a network namespace")
def test_engine_loads_and_reads_with_the_network_unreachable(tmp_path):
    picture = tmp_path / "nucleic.png"
    picture.write_bytes(drawn.png(drawn.nucleic_acid(SAMPLED)))
    script = ("import sys; from intake.pictures.ocr import PictureReader; "
              "lines = PictureReader().read(open(sys.argv[1], 'rb').read()); "
              "print('|'.join(line.text for line in lines))")
    result = subprocess.run(["unshare", "-rn", sys.executable, "-c", script, str(picture)],
                            capture_output=True, text=True, cwd=REPO, timeout=300,
                            env={**os.environ, "HTTP_PROXY": "http://127.0.0.1:9",
                                 "HTTPS_PROXY": "http://127.0.0.1:9"})
    if result.returncode != 0 and "unshare" in result.stderr and "Operation not permitted" in result.stderr:
        pytest.skip("user namespaces are not allowed here")
    assert result.returncode == 0, result.stderr
    assert "采样时间" in result.stdout and "阴性" in result.stdout


def test_reprocess_reads_the_pictures_again(world, clock):
    from sqlalchemy import select

    from intake.models import Item, Reading
    from intake.ops.reprocess import reprocess
    send(world, drawn.five(SAMPLED))
    app = world.app()
    try:
        with app.sessions.begin() as session:  # as if an older version had misread the 核酸
            nucleic = session.scalar(select(Item).where(Item.kind == "核酸"))
            session.scalar(select(Reading).where(Reading.item_id == nucleic.id)).facts = {
                "looks_like": None}
        run = dict(sessions=app.sessions, store=app.store, rules=app.settings.rules.to_rules(),
                   replies=app.replies, now=clock(), since=None, send_corrections=False,
                   pictures=app.pictures)
        [change] = reprocess(apply=False, **run)
        assert change.facts_changed == ("核酸",)
        assert [r.facts["looks_like"] for r in world.readings() if r.facts].count("核酸") == 0
        reprocess(apply=True, **run)
    finally:
        app.close()
    [case] = world.cases_json()
    assert case["facts"]["核酸"]["result"] == "阴性" and case["flags"] == []


def test_purge_deletes_what_was_read_with_the_case(world, clock):
    send(world, drawn.five(SAMPLED))
    assert any((r.facts or {}).get("身份证号") for r in world.readings())
    clock.advance(days=200)
    app = world.app()
    try:
        from intake.ops.purge import purge
        assert purge(app.sessions, app.store, clock(), 180).cases == 1
    finally:
        app.close()
    assert world.readings() == []
    assert "身份证号" not in str(world.cases_json())


def test_digest_counts_48_hours_from_sampling_and_shows_what_was_read(world, clock):
    import io

    from openpyxl import load_workbook
    send(world, drawn.five(SAMPLED, places="北京市，上海市*"))
    result, table = run_digest(world)
    assert result.forwarded == 1
    [digest] = world.replies_to(OFFICE)
    assert "核酸采样时间" in table and "2026-11-21 14:05" in table and "行程码含上海市*" in table
    register = next(part for part in digest.message.iter_attachments()
                    if part.get_filename().endswith(".xlsx"))
    book = load_workbook(io.BytesIO(register.get_content()))
    form, details = ([row for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets)
    assert form[2][5] == drawn.ID_NUMBER
    detail = dict(zip(details[1], details[2]))
    assert detail["弹窗编号"] == 3 and detail["核酸采样时间"] == datetime(2026, 11, 21, 14, 5)


def test_digest_holds_back_a_result_sampled_too_long_ago(world, clock):
    send(world, drawn.five(SAMPLED))
    assert world.cases_json()[0]["status"] == "complete"
    clock.advance(hours=30)  # arrived 20 h after sampling; the digest runs 50 h after it
    result, _ = run_digest(world)
    assert result.forwarded == 0 and result.held_back == 1
    renew = [r for r in world.replies_to(STUDENT) if "新的核酸" in r.message["Subject"]]
    assert len(renew) == 1 and "核酸采样时间 11月21日 14:05" in body_text(renew[0].message)


def test_itinerary_taken_before_the_test_and_a_name_that_does_not_fit_are_flags(world):
    send(world, drawn.five(SAMPLED, updated=SAMPLED - timedelta(days=1), shown_name="李*明"))
    subject, text = only_reply(world)
    assert "五项已全部收到" in text
    [case] = world.cases_json()
    assert case["status"] == "complete"
    assert case["flags"] == ["行程码与核酸日期不一致", "核酸姓名与提交不符（李*明）",
                             "健康宝姓名与提交不符（李*明）"]


def test_a_second_picture_of_the_same_item_does_not_count_for_its_name(world):
    files = drawn.five(SAMPLED)
    files["行程码.jpg"] = files["健康宝.png"]  # the 健康宝 screenshot twice, no 行程码
    send(world, files)
    subject, text = only_reply(world)
    assert "行程码" in text and "不能算作它文件名所指的材料" in text
    [case] = world.cases_json()
    assert case["status"] == "incomplete" and case["missing"] == ["行程码"]


def test_the_database_stays_writable_while_the_pictures_are_read(world):
    """The OCR engine reads before the mail's transaction opens, so on SQLite a staff command or the
    desk can write meanwhile instead of waiting seconds per submission for the write lock."""
    import sqlite3
    import threading
    import time

    for index in range(2):  # pictures of their own, so the session's engine has not seen them
        files = drawn.five(SAMPLED - timedelta(minutes=7 + index))
        world.deliver(b.mail(sender=f"s{index}@example.test", attachments=[
            (f"学生{index}+物理系+健康宝弹窗.zip", b.utf8_zip(files))]))
    world.cases_json()  # the schema exists before the probe connects
    database = world.db_url.split("///", 1)[1]
    outcome = {}

    def poll():
        try:
            outcome["report"] = world.poll()
        except Exception as err:  # noqa: BLE001 (reported below)
            outcome["error"] = err

    poller = threading.Thread(target=poll)
    free = busy = 0
    poller.start()
    while poller.is_alive():
        probe = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            free += 1
        except sqlite3.OperationalError:
            busy += 1
        finally:
            probe.close()
        time.sleep(0.02)
    poller.join()
    assert "error" not in outcome, outcome.get("error")
    assert len(world.cases_json()) == 2
    assert free > 3 * busy, (free, busy)


def test_positive_popup_four_and_not_beijing_are_states_of_their_own(world):
    for name, sender, how in [("王芳", "wf@example.test", {"popup": 4}),
                              ("李明", "lm@example.test", {"places": "上海市"}),
                              ("张伟", STUDENT, {"result": "阳性"})]:
        files = drawn.five(SAMPLED, name=name, shown_name=name[0] + "*",
                           updated=SAMPLED + timedelta(hours=20), **how)
        world.deliver(b.mail(sender=sender, attachments=[(f"{name}+物理系+健康宝弹窗.zip",
                                                          b.utf8_zip(files))]))
    world.poll()
    states = {case["name"]: case["state"] for case in world.cases_json()}
    assert states == {"王芳": "popup_four", "李明": "not_beijing", "张伟": "positive"}
    listed = world.cli("cases")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()[1:]
    assert "阳性" in rows[0] and "张伟" in rows[0], "阳性 comes first"
    assert any("温馨提示④" in row and "王芳" in row for row in rows)
    assert any("不在北京" in row and "李明" in row for row in rows)
    assert "暂缓报送" not in listed.stdout, "none of them is merely waiting to go later"
    case_id = next(case["id"] for case in world.cases_json() if case["name"] == "张伟")
    history = world.cli("case", "show", str(case_id)).stdout.split("经过：")[1]
    assert "核酸阳性" in history and "阳性结果通知" in history
    assert "=" not in history and "reply_" not in history and "positive" not in history


# Issue 21: pictures are what they show, whatever their names.
PHONE_NAMES = {"承诺书.jpg": "IMG_20261206_101122.jpg",
               "健康宝.png": "Screenshot_2026-12-06-10-11-22-123_com.tencent.mm.png",
               "行程码.jpg": "mmexport1733451122.jpg",
               "核酸.png": "微信图片_20261206.png",
               "情况说明.jpg": "IMG_20261206_101200.jpg"}


def test_loose_pictures_named_by_the_phone_are_filed_by_content(world):
    files = {PHONE_NAMES[name]: data for name, data in drawn.five(SAMPLED).items()}
    # A second 核酸, newer by its name: it is kept, and the student told so.
    files["IMG_20261206_111500.png"] = drawn.png(drawn.nucleic_acid(SAMPLED + timedelta(hours=1)))
    world.deliver(b.mail(sender=STUDENT, subject="张伟+物理系+健康宝弹窗",
                         attachments=list(files.items())))
    world.poll()
    subject, text = only_reply(world)
    assert "已收齐" in subject, text
    assert "IMG_20261206_101122.jpg → 承诺书" in text and "mmexport1733451122.jpg → 行程码" in text
    assert "Screenshot_2026-12-06-10-11-22-123_com.tencent.mm.png → 健康宝" in text
    assert "采用了较新的「IMG_20261206_111500.png」" in text
    assert "里面还没有可用的材料" not in text and "请这样发送" not in text
    [case] = world.cases_json()
    assert case["status"] == "complete" and case["missing"] == []
    assert case["facts"]["核酸"]["sampled_at"] == "2026-11-21T15:05:00+08:00"


# Issue 21: tell people what will happen, and when.

def test_complete_reply_says_when_it_goes_and_until_when_the_result_counts(world):
    send(world, drawn.five(SAMPLED))
    subject, text = only_reply(world)
    assert "已收齐" in subject
    assert "今天 17:00的汇总中" in text and "你的核酸结果有效至 11月23日 14:05" in text
    assert "请今天再做一次核酸" not in text


def test_a_result_that_expires_before_the_next_digest_is_told_at_once(world, clock):
    clock.advance(hours=10)  # 20:05: the next digest is tomorrow 17:00, after 14:05 tomorrow
    send(world, drawn.five(SAMPLED))
    subject, text = only_reply(world)
    assert "将于 11月23日 14:05 超过时限" in text and "明天 17:00" in text
    assert "请今天再做一次核酸" in text
    [case] = world.cases_json()
    assert case["status"] == "complete"


def test_a_pinyin_zip_name_takes_the_chinese_name_the_forms_read(world):
    world.deliver(b.mail(sender=STUDENT, subject="健康宝弹窗材料", attachments=[
        ("Wang Haoran+物理系+健康宝弹窗.zip",
         b.utf8_zip(drawn.five(SAMPLED, name="王浩然", shown_name="王*")))]))
    world.poll()
    subject, text = only_reply(world)
    assert text.startswith("王浩然同学") and "已收齐" in subject
    [case] = world.cases_json()
    assert case["name"] == "王浩然" and case["department"] == "物理系"
    shown = world.cli("case", "show", str(case["id"])).stdout
    assert "Wang Haoran" in shown  # staff see the name as the student wrote it too
