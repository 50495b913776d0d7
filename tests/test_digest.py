"""The daily digest to the Changping office, end to end on the real servers."""
from __future__ import annotations

import email
import email.policy
import io
import subprocess
import sys
import zipfile
from datetime import datetime

import pytest
from openpyxl import load_workbook

from intake.failpoints import ENV as FAILPOINTS, InjectedFault
from tests.support import builders as b
from tests.support.harness import Harness, body_text, html_text

OFFICE = "changping@example.test"
STAFF = "staff@example.test"


def _world(dovecot, smtp, user, db_url, tmp_path, clock, extra=""):
    return Harness(dovecot=dovecot, smtp=smtp, user=user, db_url=db_url, tmp_path=tmp_path,
                   clock=clock, extra_config=extra)


@pytest.fixture
def world_options(clock):
    return {"clock": clock}


def _submit(world, name, department, sender, skip=()):
    world.deliver(b.mail(sender=sender, subject=f"{name}+{department}+健康宝弹窗",
                         attachments=[(f"{name}+{department}+健康宝弹窗.zip",
                                       b.windows_gbk_zip(b.five_pictures(skip=skip)))]))


def _digest(world, **kwargs):
    app = world.app()
    try:
        result = app.digests.run(**kwargs)
        app.drain()
        return result
    finally:
        app.close()


def _attachments(message):
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


def test_digest_carries_complete_cases_with_register_and_zips(world):
    _submit(world, "张伟", "物理系", "zw@example.test")
    _submit(world, "李喆", "化学系", "lz@example.test")
    _submit(world, "王芳", "数学系", "wf@example.test", skip=("核酸",))
    world.poll()
    world.smtp.clear()

    result = _digest(world, date="2026-11-21")
    assert (result.forwarded, result.parts) == (2, 1)
    [sent] = world.smtp.messages
    assert sorted(sent.recipients) == sorted([OFFICE, STAFF])
    message = sent.message
    assert message["To"] == OFFICE and message["Cc"] == STAFF
    assert "2026-11-21" in message["Subject"] and "2 人" in message["Subject"]
    text = body_text(message)
    assert text.index("张伟") < text.index("李喆") and "王芳" not in text
    assert "zw@example.test" in text and "收到核酸时间" in text

    # The names must survive the standard library's decoder (and so QQ/126 webmail).
    files = _attachments(message)
    assert set(files) == {"健康宝异常人员信息登记表-2026-11-21.xlsx", "张伟+物理系+健康宝弹窗.zip",
                          "李喆+化学系+健康宝弹窗.zip"}
    raw_headers = sent.raw.decode("ascii")
    assert 'name="=?utf-8?b?' in raw_headers and "filename*" not in raw_headers

    with zipfile.ZipFile(io.BytesIO(files["张伟+物理系+健康宝弹窗.zip"])) as archive:
        assert sorted(archive.namelist()) == sorted(f"{item}.jpg" for item in b.ITEMS)
        assert archive.read("核酸.jpg")[:3] == b"\xff\xd8\xff"

    book = load_workbook(io.BytesIO(files["健康宝异常人员信息登记表-2026-11-21.xlsx"]))
    form, details = ([row for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets)
    assert form[1][:3] == ("序号", "姓名", "现住址") and form[1][-1] == "院系（处级部门）意见"
    assert [(r[0], r[1]) for r in form[2:]] == [(1, "张伟"), (2, "李喆")]
    assert details[1][:3] == ("序号", "姓名", "院（系）") and details[1][4] == "学生邮箱"
    assert [(r[0], r[1], r[2], r[4]) for r in details[2:]] == [
        (1, "张伟", "物理系", "zw@example.test"),
        (2, "李喆", "化学系", "lz@example.test")]


def test_second_digest_sends_only_newly_complete_cases(world):
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    _digest(world)
    _submit(world, "李喆", "化学系", "lz@example.test")
    world.poll()
    world.smtp.clear()
    result = _digest(world)
    assert result.forwarded == 1
    [sent] = world.smtp.to(OFFICE)
    assert "李喆" in body_text(sent.message) and "张伟" not in body_text(sent.message)
    cases = {c["name"]: c for c in world.cases_json()}
    assert cases["张伟"]["digest_id"] != cases["李喆"]["digest_id"]


def test_dry_run_writes_a_preview_and_changes_nothing(world, tmp_path):
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    world.smtp.clear()
    out = tmp_path / "preview"
    result = world.cli("digest", "--dry-run", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "报送 1 个登记" in result.stdout
    eml = email.message_from_bytes((out / "digest-part1.eml").read_bytes(), policy=email.policy.default)
    assert "张伟+物理系+健康宝弹窗.zip" in _attachments(eml)
    assert "张伟" in (out / "digest-part1.html").read_text(encoding="utf-8")
    assert world.smtp.messages == []
    assert world.cases_json()[0]["digest_id"] is None
    real = world.cli("digest")
    assert real.returncode == 0 and "报送 1 个登记" in real.stdout
    assert len(world.smtp.to(OFFICE)) == 1


def _noisy_jpeg(side: int) -> bytes:
    import os
    from PIL import Image
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "JPEG", quality=95)
    return out.getvalue()


def test_big_digests_are_split_into_self_contained_parts(dovecot, smtp, mailbox_user, sqlite_url,
                                                         tmp_path, env_password, clock):
    world = _world(dovecot, smtp, mailbox_user, sqlite_url, tmp_path, clock,
                   extra="max_message_bytes = 250000\n")
    for index, name in enumerate(["张一", "张二", "张三"]):
        files = {f"{item}.jpg": b.picture(size=(200, 200), color=(index * 50, 20, 20)) for item in b.ITEMS}
        files["核酸.jpg"] = b"\xff\xd8\xff\xe0" + b"\x00" * 10 + __import__("os").urandom(40_000)
        world.deliver(b.mail(sender=f"s{index}@example.test", subject=f"{name}+物理系+健康宝弹窗",
                             attachments=[("a.zip", b.utf8_zip(files))]))
    world.poll()
    # The random 核酸 is not a decodable picture; make the cases complete with a real one.
    # Noise stays big as JPEG: the office gets re-encoded pictures, so padding would not count.
    for index in range(3):
        world.deliver(b.mail(sender=f"s{index}@example.test", subject="补交",
                             attachments=[("核酸.jpg", _noisy_jpeg(200))]))
    world.poll()
    world.smtp.clear()
    result = _digest(world, date="2026-11-21")
    assert result.forwarded == 3 and result.parts == 3
    parts = world.smtp.to(OFFICE)
    assert len(parts) == 3
    for number, sent in enumerate(parts, start=1):
        assert f"第 {number}/3 封" in sent.message["Subject"]
        files = _attachments(sent.message)
        assert sum(name.endswith(".xlsx") for name in files) == 1
        assert sum(name.endswith("+健康宝弹窗.zip") for name in files) == 1
        assert len(sent.raw) < 250000 * 1.5


def test_empty_day_sends_a_note_or_nothing(dovecot, smtp, mailbox_user, sqlite_url, tmp_path,
                                           env_password, clock):
    world = _world(dovecot, smtp, mailbox_user, sqlite_url, tmp_path, clock)
    _digest(world, date="2026-11-21")
    [note] = world.smtp.to(OFFICE)
    assert "无新增" in note.message["Subject"] and list(note.message.iter_attachments()) == []

    (tmp_path / "q").mkdir()
    quiet = _world(dovecot, smtp, mailbox_user + "q", sqlite_url.replace("intake.db", "quiet.db"),
                   tmp_path / "q", clock, extra="send_empty = false\n")
    smtp.clear()
    result = _digest(quiet, date="2026-11-21")
    assert result.skipped and smtp.messages == []


def test_old_nucleic_acid_is_held_back_and_renewed_once(world, clock):
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    world.smtp.clear()
    clock.advance(hours=49)
    result = _digest(world, date="2026-11-23")
    assert (result.forwarded, result.held_back) == (0, 1)
    [note] = world.smtp.to(OFFICE)
    assert "张伟" in body_text(note.message) and "超过 48 小时" in body_text(note.message)
    assert "收到核酸时间" in body_text(note.message)
    [ask] = world.smtp.to("zw@example.test")
    assert "新的核酸" in ask.message["Subject"]
    [case] = world.cases_json()
    assert case["status"] == "incomplete" and case["missing"] == ["核酸"]

    clock.advance(hours=1)
    _digest(world)
    assert len(world.smtp.to("zw@example.test")) == 1  # asked once

    world.deliver(b.mail(sender="zw@example.test", subject="Re: 请补交新的核酸结果：张伟+物理系+健康宝弹窗",
                         attachments=[("核酸.jpg", b.picture(color=(1, 2, 3)))]))
    world.poll()
    world.smtp.clear()
    result = _digest(world)
    assert result.forwarded == 1
    assert "张伟+物理系+健康宝弹窗.zip" in _attachments(world.smtp.to(OFFICE)[0].message)


def test_resend_is_verbatim(world):
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    world.smtp.clear()
    result = _digest(world)
    resent = world.cli("digest", "--resend", str(result.digest_id))
    assert resent.returncode == 0, resent.stderr
    first, second = world.smtp.to(OFFICE)
    assert first.raw == second.raw
    missing = world.cli("digest", "--resend", "999")
    assert missing.returncode == 1 and "没有汇总 999" in missing.stderr


def test_scheduled_digest_is_made_once_per_date(world):
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    world.smtp.clear()
    first = _digest(world, date="2026-11-21", scheduled=True)
    second = _digest(world, date="2026-11-21", scheduled=True)
    assert first.forwarded == 1 and second.skipped
    assert len(world.smtp.to(OFFICE)) == 1


@pytest.mark.parametrize("step", ["queue", "forward-mark", "commit"])
def test_a_crash_inside_the_digest_transaction_leaves_no_digest(world, monkeypatch, step):
    import intake.digest.service as digest_module
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    world.smtp.clear()

    class Crash(Exception):
        pass

    def boom(*args, **kwargs):
        raise Crash(step)

    if step == "commit":  # as if the process died at the commit: nothing of it is written
        monkeypatch.setenv(FAILPOINTS, "digest.before-commit=raise")
    app = world.app()
    try:
        with monkeypatch.context() as patch:
            if step == "queue":
                patch.setattr(digest_module, "queue", boom)
            elif step == "forward-mark":
                patch.setattr(digest_module.case_store, "record_event", boom)
            with pytest.raises(InjectedFault if step == "commit" else Crash):
                app.digests.run()
    finally:
        app.close()
    monkeypatch.delenv(FAILPOINTS, raising=False)
    assert world.cases_json()[0]["digest_id"] is None
    assert world.outbox()[-1].kind != "digest"
    result = _digest(world)
    assert result.forwarded == 1 and len(world.smtp.to(OFFICE)) == 1


def test_crash_after_commit_sends_the_digest_once_on_restart(world):
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    world.smtp.clear()
    app = world.app()
    try:
        app.digests.run()  # committed; the process "dies" before draining the outbox
    finally:
        app.close()
    assert world.smtp.to(OFFICE) == []
    world.poll()  # the next run drains the outbox
    world.poll()
    assert len(world.smtp.to(OFFICE)) == 1


def test_two_workers_on_postgres_send_one_digest(dovecot, smtp, mailbox_user, tmp_path, env_password, clock,
                                                db_url_pg):
    world = _world(dovecot, smtp, mailbox_user, db_url_pg, tmp_path, clock)
    for index in range(5):
        _submit(world, f"张{index}", "物理系", f"s{index}@example.test")
    world.poll()
    smtp.clear()
    command = [sys.executable, "-m", "intake", "--config", str(world.config), "digest", "--scheduled",
               "--date", "2026-11-21"]
    import os
    env = {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": "x"}
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    assert sum("报送 5 个登记" in out for out, _ in outputs) == 1
    assert sum("未生成汇总" in out for out, _ in outputs) == 1
    assert len(smtp.to(OFFICE)) == 1


def test_student_text_is_escaped_in_the_digest(world):
    world.deliver(b.mail(sender="x@example.test", subject='张伟+<script>alert(1)</script>物理系+健康宝弹窗',
                         attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]))
    world.poll()
    world.smtp.clear()
    _digest(world)
    [sent] = world.smtp.to(OFFICE)
    html = html_text(sent.message)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert sent.recipients == [OFFICE, STAFF]


def test_mail_after_forwarding_is_acknowledged_as_already_forwarded(world):
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    _digest(world)
    world.smtp.clear()
    world.deliver(b.mail(sender="zw@example.test", subject="Re: 张伟+物理系+健康宝弹窗",
                         attachments=[("核酸.jpg", b.picture(color=(5, 5, 5)))]))
    world.poll()
    [reply] = world.replies_to("zw@example.test")
    assert "此前已报送" in body_text(reply.message)
    assert "每日汇总时把你的材料报送" not in body_text(reply.message)


def _forwarded(world, files: dict[str, bytes]):
    """The digest mail that forwards one student's submission of these files."""
    world.deliver(b.mail(sender="zw@example.test", subject="张伟+物理系+健康宝弹窗",
                         attachments=[("a.zip", b.utf8_zip(files))]))
    world.poll()
    world.smtp.clear()
    _digest(world, date="2026-11-21")
    [sent] = world.smtp.to(OFFICE)
    return sent


def test_the_office_gets_upright_jpegs_without_gps_and_a_signed_digest(world, clock):
    import pillow_heif
    from PIL import Image
    from zoneinfo import ZoneInfo
    pillow_heif.register_heif_opener()
    files = b.five_pictures(skip=("核酸", "健康宝"))
    files["核酸.heic"] = b.sideways_photo_with_gps("HEIF", size=(600, 200))
    files["健康宝.webp"] = b.picture("WEBP")
    sent = _forwarded(world, files)
    message = sent.message
    assert message["Subject"].startswith("【物理系】健康宝弹窗材料汇总 2026-11-21")
    text = body_text(message)
    assert text.rstrip().splitlines()[-2:] == ["物理系", "联系人：王老师 010-62750000"]
    assert "收到核酸时间" in text and "学生邮箱" in text and "来信" not in text and "#" not in text
    assert "收到核酸时间" in html_text(message) and "#" not in html_text(message)

    archive = zipfile.ZipFile(io.BytesIO(_attachments(message)["张伟+物理系+健康宝弹窗.zip"]))
    assert sorted(archive.namelist()) == sorted(f"{item}.jpg" for item in b.ITEMS)
    photo = Image.open(io.BytesIO(archive.read("核酸.jpg")))
    assert photo.format == "JPEG" and photo.size == (200, 600)
    red, green, _ = photo.convert("RGB").getpixel((50, 10))
    assert red > 200 and green < 80, "upright: the red band is at the top"
    assert 0x8825 not in photo.getexif() and 0x0112 not in photo.getexif()
    assert Image.open(io.BytesIO(archive.read("健康宝.jpg"))).format == "JPEG"
    shanghai = clock().astimezone(ZoneInfo("Asia/Shanghai"))
    for member in archive.infolist():
        stamp = datetime(*member.date_time, tzinfo=ZoneInfo("Asia/Shanghai"))
        assert abs((stamp - shanghai).total_seconds()) <= 2, "zip times are Beijing time"


def test_the_renewal_request_is_kind_and_concrete(world, clock):
    _submit(world, "张伟", "物理系", "zw@example.test")
    world.poll()
    world.smtp.clear()
    clock.advance(hours=49)
    _digest(world, date="2026-11-23")
    [ask] = world.smtp.to("zw@example.test")
    text = body_text(ask.message)
    assert "只受理 48 小时内的核酸结果" in text and "已超过 48 小时" in text
    assert "只附上「核酸.jpg」" in text and "不必重发" in text and "登记编号" in text
    assert "前（下一次汇总报送）" in text and "不予受理" not in text


def _phone_photo(seed: int) -> bytes:
    """A 12 MP phone photo of a paper form: fine detail everywhere, as a camera's noise makes it."""
    import random

    from PIL import Image, ImageDraw
    image = Image.effect_noise((4000, 3000), 25).convert("RGB")
    draw = ImageDraw.Draw(image)
    rng = random.Random(seed)
    for _ in range(400):
        x, y = rng.randrange(4000), rng.randrange(3000)
        draw.rectangle((x, y, x + rng.randrange(20, 200), y + 8), fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def test_the_office_gets_small_legible_pictures(world):
    from PIL import Image
    files = {f"{item}.jpg": _phone_photo(number) for number, item in enumerate(b.ITEMS)}
    assert sum(len(data) for data in files.values()) > 10_000_000
    sent = _forwarded(world, files)
    attached = _attachments(sent.message)
    assert "张伟+物理系+健康宝弹窗.zip" in attached, (list(attached), body_text(sent.message))
    student = attached["张伟+物理系+健康宝弹窗.zip"]
    assert len(student) <= 1_600_000, "about 1.5 MB per student at most"
    archive = zipfile.ZipFile(io.BytesIO(student))
    for name in archive.namelist():
        picture = Image.open(io.BytesIO(archive.read(name)))
        assert picture.format == "JPEG" and max(picture.size) == 2000
