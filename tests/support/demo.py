"""The main job end to end on this machine: a throwaway Dovecot seeded with sample submissions,
an SMTP capture, and the real `intake` command polling them. Run through scripts/demo."""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image

from tests.support import builders as b
from tests.support import drawn
from tests.support.dovecot import PASSWORD
from tests.support.servers import throwaway_servers

REPO = Path(__file__).resolve().parents[2]
USER = "jkb-dept"


def _drawn(name: str, *, ext: str = "", skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The five materials drawn the way the tests draw them (readable screenshots and photos of
    the filled forms), sampled this morning; `ext` "heic" turns them into iPhone photos."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    sampled = (now - timedelta(hours=6)).replace(second=0, microsecond=0)
    files = drawn.five(sampled, name=name, shown_name=name[0] + "*", updated=now - timedelta(hours=1))
    if ext == "heic":
        files = {f"{key.split('.')[0]}.heic": drawn.heic(Image.open(io.BytesIO(data)))
                 for key, data in files.items()}
    return {key: data for key, data in files.items() if key.split(".")[0] not in skip}


def _samples() -> list[tuple[str, bytes, str | None]]:
    """(what it is, raw mail, folder) as students and robots really send them."""
    return [
        ("张伟: complete, Windows zip with GBK names, GB2312-labelled attachment name",
         b.mail(sender="zhangwei@example.test", style="rfc2047-gb2312",
                attachments=[("张伟+物理系+健康宝弹窗.zip", b.windows_gbk_zip(_drawn("张伟"), folder="张伟"))]),
         None),
        ("孙八: five loose HEIC photos from an iPhone, name in the subject",
         b.mail(sender="sunba@example.test", subject="孙八+电子系+健康宝弹窗",
                attachments=list(_drawn("孙八", ext="heic").items())), None),
        ("李喆: macOS zip without 核酸, in the junk folder",
         b.mail(sender="lizhe@example.test", subject="李喆+化学系+健康宝弹窗",
                attachments=[("李喆+化学系+健康宝弹窗.zip", b.macos_zip(_drawn("李喆", skip=("核酸",)), folder="李喆"))]),
         "Junk"),
        ("王芳: iPhone HEIC photos, but the zip is encrypted",
         b.mail(sender="wangfang@example.test", subject="王芳+数学系+健康宝弹窗",
                attachments=[("王芳+数学系+健康宝弹窗.zip", b.aes_zip(_drawn("王芳")))]),
         None),
        ("赵六: sent a RAR", b.mail(sender="zhaoliu@example.test", subject="赵六+生命学院+健康宝弹窗",
                                   attachments=[("赵六+生命学院+健康宝弹窗.rar", b"Rar!\x1a\x07\x01\x00" + b"\x00" * 64)]),
         None),
        ("a question without attachments", b.mail(sender="asker@example.test", subject="健康宝弹窗了怎么办？"), None),
        ("a QQ cloud-attachment link", b.mail(sender="cloud@example.test", subject="钱七+历史系+健康宝弹窗",
                                             body="超大附件 https://mail.qq.com/cgi-bin/ftnExs_download?k=1"), None),
        ("a vacation auto-reply", b.mail(sender="teacher@example.test", subject="自动回复：健康宝弹窗",
                                        headers={"Auto-Submitted": "auto-replied"}), None),
        ("a NetEase bounce", b.mail(sender="Postmaster@126.com", subject="系统退信"), None),
        ("unrelated mail", b.mail(sender="colleague@example.test", subject="组会改期", body="周三下午"), None),
    ]


def _blank_forms(folder: Path) -> None:
    """Stand-ins for the office's 附件1 承诺书 and 附件2 登记表, which an operator would copy here."""
    import zipfile

    from openpyxl import Workbook
    folder.mkdir(parents=True, exist_ok=True)
    word = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    paragraphs = "".join(f"<w:p><w:r><w:t>{line}</w:t></w:r></w:p>" for line in
                         ("承诺书", "本人承诺以上所填信息真实无误。", "签名：　　　　日期："))
    with zipfile.ZipFile(folder / "附件1 承诺书.docx", "w") as docx:  # the smallest valid Word file
        docx.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            '</Types>'))
        docx.writestr("_rels/.rels", (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>'))
        docx.writestr("word/document.xml", f'<?xml version="1.0" encoding="UTF-8"?>'
                      f'<w:document xmlns:w="{word}"><w:body>{paragraphs}</w:body></w:document>')
    register = Workbook()
    register.active.append(["姓名", "院（系）", "学号", "联系电话", "弹窗类型", "情况说明"])
    register.save(folder / "附件2 健康宝异常人员信息登记表.xlsx")


def _print_register(data: bytes) -> None:
    """The register's first sheet, the office's form, as the office will see it filled."""
    from openpyxl import load_workbook
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    for row in sheet.iter_rows(min_row=2, values_only=True):
        print("    | " + " | ".join("" if cell is None else str(cell).replace("\n", " / ") for cell in row))


DESK_USER, DESK_PASSWORD, DESK_PORT = "demo", "demo-desk-2026", 8080


def _serve_desk(env: dict, work: Path) -> int:
    """The staff desk on the demo's database, with a demo admin account, until Ctrl-C."""
    added = subprocess.run([sys.executable, "-m", "intake", "staff", "add", DESK_USER, "--role",
                            "admin"], input=DESK_PASSWORD + "\n", env=env, cwd=work, text=True,
                           capture_output=True)
    if added.returncode != 0:
        print(added.stderr, file=sys.stderr)
        return added.returncode
    port = int(os.environ.get("INTAKE_DEMO_DESK_PORT", DESK_PORT))
    print(f"\nstaff desk: open http://127.0.0.1:{port}/ and sign in as {DESK_USER!r} with password "
          f"{DESK_PASSWORD!r} (Ctrl-C stops it and removes the demo data)", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "intake", "web", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, cwd=work)

    def _stop(_signum, _frame):
        raise KeyboardInterrupt
    # SIGTERM too, so that the throwaway Dovecot and SMTP capture are removed either way.
    signal.signal(signal.SIGTERM, _stop)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (config, database, every mail sent as .eml) "
                             "and print where it is")
    parser.add_argument("--desk", action="store_true",
                        help="then serve the staff desk on the demo data with a demo account")
    options = parser.parse_args(argv)
    desk = options.desk
    with throwaway_servers("jkb-demo-") as (root, dovecot, smtp):
        for what, raw, folder in _samples():
            dovecot.deliver(USER, raw, folder=folder)
            print(f"seeded: {what}")
        # A kept work folder lives outside the servers' folder, which goes at the end.
        work = Path(tempfile.mkdtemp(prefix="jkb-demo-work-")) / "work" if options.keep \
            else root / "work"
        shutil.copytree(REPO / "config", work)
        text = (work / "intake.example.toml").read_text(encoding="utf-8")
        for old, new in [('host = "imap.126.com"', 'host = "127.0.0.1"'),
                         ("port = 993 ", f"port = {dovecot.imap_port} "),
                         ('security = "ssl"                 # "ssl" | "starttls" | "none" (none',
                          'security = "none"                 # ('),
                         ('folders = ["INBOX", "垃圾邮件"]', 'folders = ["INBOX", "Junk"]'),
                         ('host = "smtp.126.com"', 'host = "127.0.0.1"'),
                         ("port = 465 ", f"port = {smtp.port} "),
                         ('security = "ssl"                 # "ssl" | "starttls" | "none"\n',
                          'security = "none"\n'),
                         ('username = "jkb-dept@126.com"    # the login', f'username = "{USER}"    # the login'),
                         ('username = "jkb-dept@126.com"    # optional', '# username'),
                         ('password_env = "INTAKE_SMTP_PASSWORD"', '# password_env'),
                         ('sender = "jkb-dept@126.com"', f'sender = "{USER}@example.test"'),
                         ('# attachments = {', 'attachments = {')]:
            assert old in text, old
            text = text.replace(old, new, 1)
        _blank_forms(work / "forms")
        config = work / "intake.toml"
        config.write_text(text, encoding="utf-8")
        env = {**os.environ, "INTAKE_IMAP_PASSWORD": PASSWORD, "INTAKE_CONFIG": str(config)}

        def intake(*command: str, show: bool = True) -> subprocess.CompletedProcess:
            if show:
                print(f"\n$ intake {' '.join(command)}")
            result = subprocess.run([sys.executable, "-m", "intake", *command], env=env, cwd=work,
                                    text=True, capture_output=True)
            if show:
                print(result.stdout, end="")
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
            return result
        for command in (["check-config"], ["poll"], ["poll"], ["cases"], ["case", "show", "1"],
                        ["digest", "--remind"]):
            if intake(*command).returncode != 0:
                return 1
        # Staff check 张伟's case with the student and approve it (the desk's 批准 button does the
        # same); 孙八's stays waiting, so that `--desk` shows a case to approve.
        cases = json.loads(intake("cases", "--json", show=False).stdout)
        approve = next(case["id"] for case in cases if case["name"] == "张伟")
        for command in (["case", "approve", str(approve), "--by", "王老师"], ["digest"], ["digests"]):
            if intake(*command).returncode != 0:
                return 1
        print(f"\n{len(smtp.messages)} mail(s) sent:")
        sent = work / "sent"
        sent.mkdir(mode=0o700)
        for number, captured in enumerate(smtp.messages, start=1):
            eml = sent / f"{number:02d}-{captured.recipients[0].split('@')[0]}.eml"
            eml.write_bytes(captured.raw)
            eml.chmod(0o600)
            message = captured.message
            print(f"\n--- to {', '.join(captured.recipients)}: {make_header(decode_header(message['Subject']))}")
            print(message.get_body(preferencelist=("plain",)).get_content().strip())
            for attachment in message.iter_attachments():
                print(f"  [attachment] {attachment.get_filename()} ({len(attachment.get_content())} bytes)")
                if attachment.get_filename().startswith("健康宝异常人员信息登记表-"):
                    _print_register(attachment.get_content())
        if options.keep:
            print(f"\nkept the work folder: {work}\n  config {config}\n  database "
                  f"{work / 'var' / 'intake.db'}\n  every mail sent, as .eml: {sent}/ "
                  f"(open them in a mail program to see what students and the office receive)")
        if desk:
            return _serve_desk(env, work)
        print("\nthe staff desk on this demo data: `bash scripts/demo --desk`, then open "
              f"http://127.0.0.1:{DESK_PORT}/ (user {DESK_USER!r}, password {DESK_PASSWORD!r})")
        return 0


if __name__ == "__main__":
    sys.exit(main())
