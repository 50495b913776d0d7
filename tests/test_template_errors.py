"""A mistake in an operator's override template is reported with its file and line: by
`check-config`, when the daemon starts, and by a staff command that renders it; never a traceback."""
from __future__ import annotations

import pytest

from tests.support import builders as b

CONFIG_ERROR = 2
UNDEFINED = "{{ name }}同学：\n您的材料被退回，原因：{{ reasn }}\n"
SYNTAX = "{{ name }}同学：\n\n{% if reason %}原因：{{ reason }}\n"


# These worlds run on SQLite only.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def world(world, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    world.config.write_text(world.config.read_text() + f'\n[replies]\ntemplates = "{templates}"\n')
    world.templates = templates
    return world


def _reported(result, path, line: int) -> str:
    assert result.returncode == CONFIG_ERROR, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"{path} line {line}" in last
    return last


@pytest.mark.parametrize("text,line,words", [(UNDEFINED, 2, "unknown variable"), (SYNTAX, 3, "")])
def test_check_config_and_the_daemon_start_name_the_file_and_line(world, text, line, words):
    broken = world.templates / "reply_rejected.txt.j2"
    broken.write_text(text, encoding="utf-8")
    assert words in _reported(world.cli("check-config"), broken, line)
    if words:
        assert "reasn" in world.cli("check-config").stderr
    started = world.cli("run")
    assert words in _reported(started, broken, line)


def test_a_staff_command_reports_the_broken_template_and_changes_nothing(world):
    world.deliver(b.mail(sender="zw@example.test", attachments=[
        ("张伟+物理系+健康宝弹窗.zip", b.utf8_zip(b.five_pictures()))]))
    assert world.cli("poll").returncode == 0
    [case] = world.cases_json()
    broken = world.templates / "reply_rejected.txt.j2"
    broken.write_text(UNDEFINED, encoding="utf-8")

    result = world.cli("case", "reject", str(case["id"]), "--reason", "承诺书没有签名")
    assert "reasn" in _reported(result, broken, 2)
    assert world.cases_json()[0]["status"] == case["status"]
