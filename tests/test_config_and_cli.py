"""The operator's side: config validation messages, exit codes, check-config against real servers."""
from __future__ import annotations

import subprocess
import sys

import pytest

from intake.errors import ConfigError
from intake.settings import load_settings
from tests.support.dovecot import PASSWORD
from tests.support.harness import REPO, Harness

EXAMPLE = REPO / "config" / "intake.example.toml"


def _run(*args, env=None, unset=(), cwd=REPO):
    import os
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run([sys.executable, "-m", "intake", *args], capture_output=True, text=True,
                          cwd=cwd, env={**environment, **(env or {})}, timeout=120)


def test_example_config_is_valid():
    settings = load_settings(EXAMPLE)
    assert settings.mailbox.host == "imap.126.com"
    assert settings.schedule.timezone == "Asia/Shanghai"
    assert [item.key for item in settings.rules.to_rules().items] == ["承诺书", "情况说明", "健康宝", "行程码", "核酸"]


@pytest.mark.parametrize("change,expected", [
    (("port = 993", 'port = "nine"'), "mailbox.port"),
    (('security = "ssl"                 # "ssl" | "starttls" | "none" (none', 'security = "tls" #'), "mailbox.security"),
    (('time = "17:00"', 'time = "5pm"'), "digest.time: '5pm' is not a time of day; use 24-hour HH:MM"),
    (('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"'), "schedule.timezone"),
    (('sender = "jkb-dept@126.com"', 'sender = "other@126.com"'), "smtp.sender must equal smtp.username"),
    (('poll_seconds = 300', 'poll_secs = 300'), "schedule.poll_secs: is not a known key"),
    (('host = "imap.126.com"', '#'), "mailbox.host: is required"),
])
def test_config_errors_name_the_key_and_exit_2(tmp_path, change, expected):
    text = EXAMPLE.read_text(encoding="utf-8")
    assert change[0] in text
    config = tmp_path / "bad.toml"
    config.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert expected in str(caught.value)
    result = _run("--config", str(config), "cases")
    assert result.returncode == 2
    assert expected in result.stderr


def test_missing_config_and_missing_secret_exit_2(tmp_path):
    result = _run("--config", str(tmp_path / "nope.toml"), "poll")
    assert result.returncode == 2 and "not found" in result.stderr
    config = tmp_path / "intake.toml"
    config.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    result = _run("--config", str(config), "poll", unset=("INTAKE_IMAP_PASSWORD",))
    assert result.returncode == 2
    assert "mailbox.password_env: environment variable INTAKE_IMAP_PASSWORD is not set" in result.stderr


def test_config_from_environment_variable(tmp_path):
    result = _run("cases", env={"INTAKE_CONFIG": str(tmp_path / "elsewhere.toml")})
    assert result.returncode == 2 and "elsewhere.toml" in result.stderr


def test_check_config_logs_in_and_never_prints_the_secret(dovecot, smtp, mailbox_user, sqlite_url,
                                                          tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path)
    result = world.cli("check-config")
    assert result.returncode == 0, result.stderr
    assert "文件夹「INBOX」正常" in result.stdout and "SMTP 127.0.0.1：登录成功" in result.stdout
    wrong = world.cli("check-config", env={"INTAKE_TEST_IMAP_PASSWORD": "wrong-code"})
    assert wrong.returncode == 3
    assert "IMAP login refused" in wrong.stderr
    assert "wrong-code" not in wrong.stderr + wrong.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_poll_exits_nonzero_with_a_reason_when_imap_is_down(dovecot, smtp, mailbox_user, sqlite_url,
                                                            tmp_path, env_password):
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path)
    text = world.config.read_text().replace(f"port = {dovecot.imap_port}", "port = 1")
    world.config.write_text(text)
    result = world.cli("poll")
    assert result.returncode == 1
    assert "unreachable" in result.stderr and len(result.stderr.strip().splitlines()[-1]) < 400


def test_cases_table_and_json(dovecot, smtp, mailbox_user, sqlite_url, tmp_path, env_password):
    from tests.support import builders as b
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path)
    world.deliver(b.mail(sender="ZhangWei@Example.TEST",
                         attachments=[("张伟+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures(skip=("核酸",))))]))
    result = world.cli("poll")
    assert result.returncode == 0, result.stderr
    assert "提交材料 1 封" in result.stdout
    [case] = world.cases_json()
    assert set(case) >= {"id", "name", "department", "sender", "status", "missing"}
    assert case["sender"] == "zhangwei@example.test" and case["missing"] == ["核酸"]
    table = world.cli("cases")
    assert "张伟" in table.stdout and "材料未齐" in table.stdout and "核酸" in table.stdout


def test_check_config_renders_every_template_and_names_a_broken_one(dovecot, smtp, mailbox_user,
                                                                    sqlite_url, tmp_path, env_password):
    templates = tmp_path / "templates"
    templates.mkdir()
    world = Harness(dovecot=dovecot, smtp=smtp, user=mailbox_user, db_url=sqlite_url, tmp_path=tmp_path)
    world.config.write_text(world.config.read_text() + f'\n[replies]\ntemplates = "{templates}"\n')
    result = world.cli("check-config")
    assert result.returncode == 0, result.stderr
    assert "所有模板都能生成" in result.stdout
    assert "主题：材料未齐：张伟+物理系+健康宝弹窗，请补充" in result.stdout
    assert "还缺少或不可用的材料" in result.stdout

    (templates / "reply_complete.txt.j2").write_text("{{ nmae }}同学", encoding="utf-8")
    broken = world.cli("check-config")
    assert broken.returncode == 2 and "unknown variable" in broken.stderr and "nmae" in broken.stderr
    (templates / "reply_complete.txt.j2").write_text("{% if %}", encoding="utf-8")
    broken = world.cli("check-config")
    assert broken.returncode == 2 and "reply_complete.txt.j2 line 1" in broken.stderr
    # The operator's folder overrides file by file: one changed template, the packaged rest.
    (templates / "reply_complete.txt.j2").write_text("{{ name }}同学，材料齐了（本系定制）", encoding="utf-8")
    customised = world.cli("check-config")
    assert customised.returncode == 0, customised.stderr
    (templates.parent / "gone").mkdir()
    world.config.write_text(world.config.read_text().replace(str(templates), str(templates.parent / "missing")))
    broken = world.cli("check-config")
    assert broken.returncode == 2 and "replies.templates" in broken.stderr


def test_reply_attachments_are_checked_at_load_and_name_the_key(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    line = '# attachments = { "承诺书" = "forms/附件1 承诺书.docx", "情况说明" = "forms/附件2 健康宝异常人员信息登记表.xlsx" }'
    assert line in text
    config = tmp_path / "intake.toml"
    config.write_text(text.replace(line, line[2:]), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "replies.attachments.承诺书: file" in str(caught.value) and "not found" in str(caught.value)

    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "附件1 承诺书.docx").write_bytes(b"PK")
    (tmp_path / "forms" / "附件2 健康宝异常人员信息登记表.xlsx").write_bytes(b"PK")
    settings = load_settings(config)
    assert settings.replies.attachments["承诺书"] == tmp_path / "forms" / "附件1 承诺书.docx"
    assert settings.department.name == "物理系" and "王老师" in settings.department.contact

    config.write_text(text.replace(line, 'attachments = { "身份证" = "forms/附件1 承诺书.docx" }'),
                      encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "replies.attachments.身份证: '身份证' is not an item" in str(caught.value)
