"""Malformed and hostile mail through the whole pipeline, delivered by the real IMAP server, and
property-based tests over generated zips and MIME trees."""
from __future__ import annotations

import base64
import os
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.rules import ArchiveLimits, Rules
from checks.submission import Attachment, assess
from intake.process.reader import read_mail
from tests.support import builders as b
from tests.support.harness import Harness, has_no_sender_header

FINAL = {"submission", "follow-up", "question", "cloud-link", "ignored-auto", "ignored-other",
         "duplicate", "too-old", "too-large"}


def _zip_b64() -> bytes:
    return base64.encodebytes(b.utf8_zip(b.five_pictures()))


MALFORMED = {
    "broken boundary": b"From: a@example.test\r\nSubject: x+y+\xe5\x81\xa5\xe5\xba\xb7\xe5\xae\x9d\xe5\xbc\xb9\xe7\xaa\x97\r\n"
                       b"Content-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n--other\r\nContent-Type: application/zip; name=\"a.zip\"\r\n"
                       b"Content-Transfer-Encoding: base64\r\n\r\n" + _zip_b64(),
    "no closing boundary": b"From: b@example.test\r\nSubject: \xe5\x81\xa5\xe5\xba\xb7\xe5\xae\x9d\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
                           b"--B\r\nContent-Type: application/zip; name=\"a.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + _zip_b64()[:300],
    "no headers at all": b"\r\njust a body\r\n",
    "no from": b"Subject: \xe5\x81\xa5\xe5\xba\xb7\xe5\xae\x9d\r\n\r\nbody\r\n",
    "duplicate headers": b"From: c@example.test\r\nFrom: d@example.test\r\nSubject: one\r\nSubject: two\r\n"
                         b"Message-ID: <dup@x>\r\nMessage-ID: <dup2@x>\r\n\r\nbody\r\n",
    "bad base64": b"From: e@example.test\r\nSubject: \xe5\x81\xa5\xe5\xba\xb7\xe5\xae\x9d\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
                  b"--B\r\nContent-Type: application/zip; name=\"a.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64@@@\r\n--B--\r\n",
    "undeclared 8-bit GBK": b"From: f@example.test\r\nSubject: " + "张伟+物理系+健康宝弹窗".encode("gbk") +
                            b"\r\n\r\n" + "正文是GBK".encode("gbk") + b"\r\n",
    "nested rfc822 three deep": b.forwarded(b.forwarded(b.forwarded(b.mail(
        sender="g@example.test", attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]), sender="g@example.test"),
        sender="g@example.test"), sender="g@example.test"),
    "multipart/report bounce": b"From: Mail Delivery System <MAILER-DAEMON@example.test>\r\nSubject: Undelivered Mail\r\n"
                               b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\r\n"
                               b"--R\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--R\r\nContent-Type: message/delivery-status\r\n\r\n"
                               b"Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; s@x\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                               b"--R\r\nContent-Type: message/rfc822\r\n\r\n" + b.mail(sender="h@example.test",
                               attachments=[("a.zip", b.utf8_zip(b.five_pictures()))]) + b"\r\n--R--\r\n",
    "TNEF winmail.dat": b.mail(sender="i@example.test", attachments=[("winmail.dat", b"\x78\x9f\x3e\x22" + os.urandom(500))]),
    "empty body": b"From: j@example.test\r\nSubject: \r\n\r\n",
    "huge headers": b"From: k@example.test\r\nSubject: " + b"\xe5\x81\xa5" * 30000 + b"\r\n" +
                    b"".join(b"Received: from host%d by relay\r\n" % i for i in range(2000)) + b"\r\nbody\r\n",
    "header without colon": b"From: l@example.test\r\nThis is not a header\r\nSubject: x\r\n\r\nbody\r\n",
    "NUL bytes": b"From: m@example.test\r\nSubject: \xe5\x81\xa5\xe5\xba\xb7\xe5\xae\x9d\x00\r\n\r\nbo\x00dy\r\n",
    "attachment name with path": b.mail(sender="n@example.test", style="raw-utf8",
                                        attachments=[("../../../../etc/张伟+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]),
    "unknown charset": b"From: o@example.test\r\nSubject: =?x-unknown?B?5byg5Lyf?=\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe\r\n",
    "zip with empty name member": b.mail(sender="p@example.test", attachments=[
        ("a.zip", b.raw_zip([b.RawEntry(b"///", b"x"), b.RawEntry("核酸.jpg".encode(), b.picture())]))]),
}


def test_malformed_mail_each_ends_in_a_recorded_outcome(world, tmp_path):
    for raw in MALFORMED.values():
        world.deliver(raw)
    report, _ = world.poll()
    assert report.ok
    mails = world.mails()
    assert len(mails) == len(MALFORMED) + 1  # and the harness's set-up notice
    _assert_recorded(mails, list(MALFORMED.values()))
    # The bounce's embedded submission is never answered; a path in a name never becomes one.
    assert world.replies_to("h@example.test") == []
    assert not (tmp_path / "etc").exists()
    assert {p.name for p in world.storage.iterdir()} <= {"raw", "cases"}


def test_the_standard_librarys_email_test_messages(dovecot, smtp, mailbox_user, sqlite_url, tmp_path,
                                                   env_password):
    try:
        import test.test_email
    except ImportError:
        pytest.skip("this Python ships without its test suite")
    data = Path(test.test_email.__file__).parent / "data"
    messages = sorted(data.glob("msg_*.txt"))
    assert messages
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path)
    for path in messages:
        world.deliver(path.read_bytes())
    report, _ = world.poll()
    assert report.ok
    mails = world.mails()
    assert len(mails) == len(messages) + 1
    _assert_recorded(mails, [path.read_bytes() for path in messages])


def _assert_recorded(mails, raws: list[bytes]) -> None:
    """Each mail ends in a final outcome; one without From or Sender is kept in the quarantine
    for staff (issue 26), never taken for a bounce. `raws` in delivery order, after the
    harness's set-up notice (UID 1)."""
    outcomes = {m.uid - 2: (m.outcome, m.error) for m in mails if m.uid > 1}
    senderless = {index for index, raw in enumerate(raws) if has_no_sender_header(raw)}
    assert {index for index, (outcome, _) in outcomes.items() if outcome == "quarantined"} == senderless
    assert all(outcomes[index][1].startswith("NoSender:") for index in senderless)
    assert {outcome for index, (outcome, _) in outcomes.items() if index not in senderless} <= FINAL, outcomes


# ---- properties ----------------------------------------------------------------------------

RULES = Rules(limits=ArchiveLimits(max_members=40, max_member_bytes=256 * 1024,
                                   max_total_bytes=1024 * 1024))
_texts = st.text(alphabet=st.sampled_from("承诺书情况说明健康宝行程码核酸张伟/\\._-+ aZ0é喆"), min_size=1, max_size=20)
_name_bytes = st.one_of(
    _texts.map(lambda t: t.encode("utf-8")),
    _texts.map(lambda t: t.encode("gb18030")),
    st.binary(min_size=1, max_size=30),
)
_member = st.tuples(_name_bytes, st.one_of(st.binary(max_size=300), st.just(b.picture()),
                                           st.just(b"\x00" * 300_000)), st.booleans())


@st.composite
def archives(draw):
    members = draw(st.lists(_member, max_size=12))
    entries = [b.RawEntry(name if len(name) >= 3 else name + b"xyz", data, utf8_flag=flag)
               for name, data, flag in members]
    data = b.raw_zip(entries) if entries else b.utf8_zip({})
    damage = draw(st.sampled_from(["none", "truncate", "flip", "sizes"]))
    if damage == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    elif damage == "sizes":
        data = data.replace(b"PK\x01\x02", b"PK\x01\x02", 1)
        data = bytearray(data)
        central = data.find(b"PK\x01\x02")
        if central >= 0:
            data[central + 24: central + 28] = (1).to_bytes(4, "little")  # declared size lies
        data = bytes(data)
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=archives(), subject=st.text(max_size=40))
def test_any_archive_is_assessed_without_error(data, subject):
    tracemalloc.start()
    try:
        found = assess([Attachment("x.zip", data)], subject, RULES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024
    for item in found.items.values():
        assert item.usable == (item.problem is None)
        assert item.data is None or len(item.data) <= RULES.limits.max_member_bytes
    assert all(isinstance(name, str) for name in found.unmatched)


@st.composite
def mime_trees(draw, depth=0):
    from email.mime.application import MIMEApplication
    from email.mime.message import MIMEMessage
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    kind = draw(st.sampled_from(["text", "app", "multi", "rfc822"] if depth < 3 else ["text", "app"]))
    if kind == "text":
        return MIMEText(draw(st.text(max_size=50)), draw(st.sampled_from(["plain", "html"])),
                        draw(st.sampled_from(["utf-8", "gb18030"])))
    if kind == "app":
        part = MIMEApplication(draw(st.one_of(st.binary(max_size=200), archives())))
        name = draw(_texts)
        style = draw(st.sampled_from(["2231", "plain"]))
        part.add_header("Content-Disposition", "attachment",
                        filename=("utf-8", "", name) if style == "2231" else name)
        return part
    if kind == "rfc822":
        inner = draw(mime_trees(depth + 1))
        inner["Subject"] = draw(st.text(max_size=30)).replace("\n", " ").replace("\r", " ")
        return MIMEMessage(inner)
    multi = MIMEMultipart(draw(st.sampled_from(["mixed", "alternative", "related"])))
    for child in draw(st.lists(mime_trees(depth + 1), max_size=3)):
        multi.attach(child)
    return multi


def _safe(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=mime_trees(), subject=st.text(max_size=40), auto=st.sampled_from(["", "auto-replied", "no"]))
def test_any_mime_tree_goes_through_the_pipeline(tree, subject, auto, tmp_path_factory):
    from intake.db.engine import create_schema, make_engine, session_factory
    from intake.models import Mail
    from intake.process.pipeline import Pipeline
    from intake.store.files import FileStore
    from notifier.render import TemplateRenderer
    from notifier.replies import ReplyWriter
    from tests.support.servers import TEMPLATES

    tree["From"] = "student@example.test"
    tree["Subject"] = _safe(subject)
    if auto:
        tree["Auto-Submitted"] = auto
    raw = tree.as_bytes()
    root = tmp_path_factory.mktemp("prop")
    storage = root / "storage"
    engine = make_engine(f"sqlite:///{root}/p.db")
    create_schema(engine)
    sessions = session_factory(engine)
    pipeline = Pipeline(RULES, FileStore(storage),
                        ReplyWriter(TemplateRenderer(TEMPLATES), RULES, "dept@example.test", "n", "o"),
                        frozenset({"dept@example.test"}))
    now = datetime.now(timezone.utc)
    read_mail(raw)
    with sessions.begin() as session:
        mail = Mail(folder="INBOX", uidvalidity=1, uid=1, fetched_at=now, outcome="pending", attempts=0)
        session.add(mail)
        session.flush()
        outcome = pipeline.handle(session, mail, raw, now)
    engine.dispose()
    assert outcome in FINAL
    written = {p for p in root.rglob("*") if p.is_file()}
    assert all(storage in p.parents or p.name.startswith("p.db") for p in written)
