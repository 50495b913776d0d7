"""Replies wait in the outbox while SMTP misbehaves, and go out exactly once when it recovers."""
from __future__ import annotations


import pytest

from tests.support import builders as b

STUDENT = "zhangwei@example.test"


@pytest.fixture
def world_options(clock):
    return {"clock": clock}


def _submit(world):
    world.deliver(b.mail(sender=STUDENT, attachments=[("张伟+物理系+健康宝弹窗.zip",
                                                        b.utf8_zip(b.five_pictures()))]))


@pytest.mark.parametrize("refusal", ["451 MI:DMC rate limited", "450 RP:DRC try later",
                                     "421 HL:IFC too many connections"])
def test_temporary_refusals_are_retried_with_backoff_and_sent_once(world, clock, refusal):
    world.smtp.refuse_next(refusal)
    _submit(world)
    _report, drained = world.poll()
    assert drained.retrying == 1 and world.smtp.messages == []
    [row] = world.outbox()
    assert row.status == "pending" and row.attempts == 1 and refusal.split()[0] in row.last_error

    world.poll()  # not yet due
    assert world.smtp.messages == []
    clock.advance(minutes=2)
    world.poll()
    world.poll()
    assert len(world.replies_to(STUDENT)) == 1
    [row] = world.outbox()
    assert row.status == "sent" and row.attempts == 2


@pytest.mark.parametrize("refusal", ["554 DT:SPM spam rejected", "553 Mail from must equal authorized user"])
def test_permanent_refusals_are_recorded_not_retried(world, clock, refusal):
    world.smtp.refuse_next(refusal)
    _submit(world)
    world.poll()
    clock.advance(hours=5)
    world.poll()
    [row] = world.outbox()
    assert row.status == "failed" and row.attempts == 1 and refusal[:3] in row.last_error
    assert world.smtp.messages == []


def test_smtp_down_keeps_replies_until_it_is_back(world, clock, smtp):
    text = world.config.read_text().replace(f"port = {smtp.port}", "port = 1")
    world.config.write_text(text)
    _submit(world)
    world.poll()
    [row] = world.outbox()
    assert row.status == "pending" and row.attempts == 1 and "Connection refused" in row.last_error
    assert world.smtp.messages == []
    world.config.write_text(text.replace("port = 1", f"port = {smtp.port}"))
    clock.advance(minutes=5)
    world.poll()
    assert len(world.replies_to(STUDENT)) == 1
    assert [m.outcome for m in world.mails() if m.sender == STUDENT] == ["submission"]


def test_refusal_logs_carry_no_student_address(world, caplog):
    world.smtp.refuse_next("550 5.1.1 <zhangwei@example.test>: Recipient address rejected")
    _submit(world)
    with caplog.at_level("INFO"):
        world.poll()
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("intake"))
    assert "failed permanently" in ours and "<address>" in ours
    assert STUDENT not in ours
