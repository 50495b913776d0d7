"""The operator's TOML configuration, validated; only the composition root loads it."""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from checks.rules import ArchiveLimits, ItemRule, Rules
from intake.errors import ConfigError

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


def _clock_time(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError("use 24-hour HH:MM, e.g. \"17:00\"")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an e-mail address (expected name@example.com)")
    return value.lower()


class MailboxSettings(_Section):
    host: str
    port: int = Field(993, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str
    password_env: str
    folders: list[str] = ["INBOX"]
    max_age_days: int = Field(7, ge=0)
    max_message_bytes: int = Field(70_000_000, gt=0)
    keyword: str | None = "$JkbIntake"
    fetch_batch: int = Field(50, ge=1, le=1000)
    timeout_seconds: float = Field(60, gt=0)
    address: str | None = None  # the mailbox's own address when the login name is not one
    ca_file: Path | None = None  # trust this CA bundle instead of the system's

    @field_validator("folders")
    @classmethod
    def _some_folder(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one folder, e.g. folders = [\"INBOX\"]")
        return value


class SmtpSettings(_Section):
    host: str
    port: int = Field(465, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str | None = None
    password_env: str | None = None
    sender: str
    sender_name: str = "健康宝弹窗材料收取"
    timeout_seconds: float = Field(60, gt=0)
    max_attempts: int = Field(12, ge=1)
    ca_file: Path | None = None

    _check_sender = field_validator("sender")(lambda cls, v: _address(v))


class DatabaseSettings(_Section):
    url: str = "sqlite:///var/intake.db"
    busy_timeout_seconds: float = Field(30, gt=0)  # SQLite: how long to wait for another writer


class StorageSettings(_Section):
    path: Path = Path("var/storage")


class DigestSettings(_Section):
    to: list[str] = []
    cc: list[str] = []
    time: str = "17:00"
    max_message_bytes: int = Field(40_000_000, gt=0)
    send_empty: bool = True
    nucleic_acid_hours: int = Field(48, gt=0)
    office_name: str = "昌平学工办"
    require_approval: bool = False

    _check_time = field_validator("time")(lambda cls, v: _clock_time(v))

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]


class ScheduleSettings(_Section):
    poll_seconds: int = Field(300, ge=2)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError("use an IANA zone name such as \"Asia/Shanghai\"") from err
        return value


class ItemSettings(_Section):
    key: str
    spellings: list[str] = []
    hint: str = ""


class RulesSettings(_Section):
    items: list[ItemSettings] | None = None
    name_suffix: str = "健康宝弹窗"
    picture_types: list[Literal["jpeg", "png", "heif", "webp", "gif", "bmp", "tiff"]] = [
        "jpeg", "png", "heif", "webp"]
    allow_pdf: bool = False
    max_members: int = Field(200, ge=1)
    max_member_bytes: int = Field(40 * 1024 * 1024, gt=0)
    max_total_bytes: int = Field(200 * 1024 * 1024, gt=0)
    max_ratio: int = Field(200, ge=1)
    question_keywords: list[str] = ["健康宝", "弹窗"]

    @field_validator("items")
    @classmethod
    def _five_distinct(cls, value):
        if value is not None:
            keys = [item.key for item in value]
            if len(set(keys)) != len(keys) or not keys:
                raise ValueError("each [[rules.items]] needs its own distinct key")
        return value

    def to_rules(self) -> Rules:
        defaults = Rules()
        items = defaults.items if self.items is None else tuple(
            ItemRule(i.key, tuple(i.spellings), i.hint) for i in self.items)
        return Rules(
            items=items, name_suffix=self.name_suffix,
            picture_kinds=frozenset(self.picture_types), allow_pdf=self.allow_pdf,
            limits=ArchiveLimits(self.max_members, self.max_member_bytes, self.max_total_bytes,
                                 self.max_ratio),
            question_keywords=tuple(self.question_keywords),
        )


class RepliesSettings(_Section):
    templates: Path | None = None  # a folder whose files override the packaged defaults
    per_sender_per_day: int = Field(8, ge=1)


class RetentionSettings(_Section):
    days: int = Field(180, ge=1)
    time: str = "03:30"

    _check_time = field_validator("time")(lambda cls, v: _clock_time(v))


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class WebSettings(_Section):
    """The staff desk (`intake web`)."""
    reject_reasons: list[str] = ["照片模糊，看不清", "不是本人的材料", "核酸结果不是48小时内的",
                                 "承诺书没有签名", "行程卡不是最新的"]
    secret_key_env: str | None = None  # signs the CSRF cookie; default a key file in storage
    proxy_hops: int = Field(1, ge=0, le=5)  # trusted reverse proxies (nginx) in front


class Settings(_Section):
    mailbox: MailboxSettings
    smtp: SmtpSettings
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    digest: DigestSettings = DigestSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    rules: RulesSettings = RulesSettings()
    replies: RepliesSettings = RepliesSettings()
    retention: RetentionSettings = RetentionSettings()
    logging: LoggingSettings = LoggingSettings()
    web: WebSettings = WebSettings()

    @model_validator(mode="after")
    def _sender_is_login(self):
        # NetEase answers "553 Mail from must equal authorized user" otherwise.
        if self.smtp.username and "@" in self.smtp.username and \
                self.smtp.username.lower() != self.smtp.sender:
            raise ValueError("smtp.sender must equal smtp.username (the provider rejects other "
                             "From addresses with 553)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.schedule.timezone)

    @property
    def own_addresses(self) -> frozenset[str]:
        found = {self.smtp.sender}
        for candidate in (self.mailbox.username, self.mailbox.address, self.smtp.username):
            if candidate and "@" in candidate:
                found.add(candidate.lower())
        return frozenset(found)


def secret(env_name: str | None, key: str) -> str | None:
    """The value of the environment variable a `*_env` key names; never printed."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError(f"{key}: environment variable {env_name} is not set; export it with the "
                          f"password or authorization code (授权码), or change {key}")
    return value


def load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} not found; pass --config FILE or set "
                          f"INTAKE_CONFIG (see config/intake.example.toml)") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_explain(err)) from err
    return _resolve_paths(settings, path.parent)


def _explain(err: ValidationError) -> str:
    lines = []
    for problem in err.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "missing":
            message = "is required; add it to the config file"
        elif problem["type"] == "extra_forbidden":
            message = "is not a known key; check its spelling against config/intake.example.toml"
        lines.append(f"{key}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative paths in the config are relative to the config file, not the working directory."""
    def resolve(value: Path) -> Path:
        return value if value.is_absolute() else (base / value).resolve()

    url = settings.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        url = "sqlite:///" + str(resolve(Path(url[len("sqlite:///"):])))
    def ca(section):
        return section.model_copy(update={"ca_file": resolve(section.ca_file)}) if section.ca_file else section

    return settings.model_copy(update={
        "mailbox": ca(settings.mailbox), "smtp": ca(settings.smtp),
        "storage": settings.storage.model_copy(update={"path": resolve(settings.storage.path)}),
        "replies": settings.replies.model_copy(update={"templates": resolve(settings.replies.templates)
                                                   if settings.replies.templates else None}),
        "database": settings.database.model_copy(update={"url": url}),
    })
