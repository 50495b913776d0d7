"""The configuration is read strictly and its errors are told in plain words with the key."""
from __future__ import annotations

import subprocess
import sys

import pytest

from intake.errors import ConfigError
from intake.settings import load_settings
from tests.support.harness import REPO

EXAMPLE = REPO / "config" / "intake.example.toml"
OFFICE_LINE = 'to = ["changping-xgb@example.edu.cn"]'


def _config(tmp_path, old: str, new: str):
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "intake.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("old,new,expected", [
    ("port = 993", 'port = "993"',
     'mailbox.port: is "993" (text in quotes), but it must be a whole number, written without quotes'),
    ("send_empty = true", 'send_empty = "yes"',
     'digest.send_empty: is "yes" (text in quotes), but it must be true or false'),
    ("poll_seconds = 300", "poll_seconds = 1", "schedule.poll_seconds: is 1, but it must be at least 2"),
    (OFFICE_LINE, "#", 'digest.to: is required: add to = ["office@example.com"] under [digest]'),
    (OFFICE_LINE, "to = []", "digest.to: is empty; list the office that receives the daily digest"),
    ("[digest]", "[digests]", "digest: the [digest] section is required"),
])
def test_wrong_values_are_refused_naming_the_key_and_the_fix(tmp_path, old, new, expected):
    config = _config(tmp_path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert expected in message
    for internal in ("Input should be", "Value error", "type=", "pydantic"):
        assert internal not in message
    result = subprocess.run([sys.executable, "-m", "intake", "--config", str(config), "cases"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2 and expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("written,meant", [('"9:00"', "09:00"), ('"17:05"', "17:05"),
                                           ("08:30:00", "08:30")])
def test_a_time_of_day_may_drop_the_leading_zero(tmp_path, written, meant):
    config = _config(tmp_path, 'time = "17:00"', f"time = {written}")
    assert load_settings(config).digest.time == meant


def test_paths_and_numbers_written_normally_still_load(tmp_path):
    settings = load_settings(_config(tmp_path, "timeout_seconds = 60", "timeout_seconds = 60"))
    assert settings.mailbox.timeout_seconds == 60 and settings.storage.path.is_absolute()


def test_reading_the_pictures_needs_a_duty_contact(tmp_path):
    # Issue 21: a 阳性 result is told to call a phone answered outside office hours.
    config = _config(tmp_path, 'duty_contact = "学院值班电话', '# duty_contact = "学院值班电话')
    with pytest.raises(ConfigError, match="department.duty_contact is required"):
        load_settings(config)
