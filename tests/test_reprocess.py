"""`intake reprocess` after a rule change."""
from __future__ import annotations

import pytest

from tests.support import builders as b

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


@pytest.fixture
def world(world):
    files = b.five_pictures(skip=("核酸",))
    files["核酸.pdf"] = PDF
    world.deliver(b.mail(sender="zw@example.test", subject="张伟+物理系+健康宝弹窗",
                         attachments=[("a.zip", b.utf8_zip(files))]))
    files = b.five_pictures(skip=("行程码",))
    files["PCR.jpg"] = b.picture()  # fine with or without the rule change: 行程码 is missing
    world.deliver(b.mail(sender="lz@example.test", subject="李喆+化学系+健康宝弹窗",
                         attachments=[("a.zip", b.utf8_zip(files))]))
    world.poll()
    world.smtp.clear()
    return world


def test_dry_run_then_apply_with_corrections(world):
    assert {c["name"]: c["missing"] for c in world.cases_json()} == {"张伟": ["核酸"], "李喆": ["行程码"]}
    world.config.write_text(world.config.read_text() + "\n[rules]\nallow_pdf = true\n")

    dry = world.cli("reprocess", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "材料未齐 → 材料齐全；缺少材料 核酸 → -" in dry.stdout and "1 个登记将有变化" in dry.stdout
    assert "重新检查登记" in dry.stderr
    assert {c["name"]: c["status"] for c in world.cases_json()}["张伟"] == "incomplete"

    declined = world.cli("reprocess")  # no terminal to say yes: nothing changes
    assert "未做任何更改" in declined.stdout or declined.returncode != 0
    assert {c["name"]: c["status"] for c in world.cases_json()}["张伟"] == "incomplete"

    applied = world.cli("reprocess", "--yes", "--send-corrections")
    assert applied.returncode == 0, applied.stderr
    assert "1 个登记已更新；已发送 1 封" in applied.stdout
    cases = {c["name"]: c for c in world.cases_json()}
    assert cases["张伟"]["status"] == "complete" and cases["李喆"]["missing"] == ["行程码"]
    [correction] = world.replies_to("zw@example.test")
    assert "已收齐" in correction.message["Subject"]
    assert world.replies_to("lz@example.test") == []
    again = world.cli("reprocess", "--yes")
    assert "0 个登记将有变化" in again.stdout


def test_reprocess_keeps_staff_decisions(world):
    ids = {c["name"]: c["id"] for c in world.cases_json()}
    assert world.cli("case", "hold", str(ids["张伟"]), "--reason", "核对").returncode == 0
    world.config.write_text(world.config.read_text() + "\n[rules]\nallow_pdf = true\n")
    assert world.cli("reprocess", "--yes").returncode == 0
    assert {c["name"]: c["status"] for c in world.cases_json()}["张伟"] == "held"
    shown = world.cli("case", "release", str(ids["张伟"]))
    assert "材料齐全" in shown.stdout  # "complete" in the staff's words (issue 22)
    assert {c["name"]: c["status"] for c in world.cases_json()}["张伟"] == "complete"
