"""The operator's TOML configuration, validated; only the composition root loads it."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from checks.addresses import normal_address
from checks.rules import ArchiveLimits, ItemRule, Rules
from intake.config_messages import explain
from intake.errors import ConfigError

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


def _clock_time(value) -> str:
    """"17:00", "9:00" (as 09:00) or a TOML time 09:00:00, as HH:MM."""
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if not isinstance(value, str) or not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f"{value!r} is not a time of day; use 24-hour HH:MM in quotes, e.g. \"17:00\"")
    return value.zfill(5)


class _Section(BaseModel):
    # Strict: "993" for a port or "yes" for a switch is a mistake to point out, not to guess at.
    model_config = ConfigDict(extra="forbid", strict=True)


# Paths are written as TOML text.
_Path = Annotated[Path, Field(strict=False)]


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an e-mail address (expected name@example.com)")
    return normal_address(value)


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
    # Processes parsing and checking new mail while the daemon stores and records it, started
    # when a poll finds many new mails; 0: one per core, 1: all in the daemon's own process.
    check_processes: int = Field(0, ge=0, le=64)
    timeout_seconds: float = Field(60, gt=0)
    address: str | None = None  # the mailbox's own address when the login name is not one
    ca_file: _Path | None = None  # trust this CA bundle instead of the system's

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
    ca_file: _Path | None = None

    _check_sender = field_validator("sender")(lambda cls, v: _address(v))


class DatabaseSettings(_Section):
    url: str = "sqlite:///var/intake.db"
    busy_timeout_seconds: float = Field(30, gt=0)  # SQLite: how long to wait for another writer


class StorageSettings(_Section):
    path: _Path = Path("var/storage")


class DigestSettings(_Section):
    to: list[str]  # required: without it cases would be marked forwarded and nobody gets them
    cc: list[str] = []
    time: str = "17:00"
    max_message_bytes: int = Field(40_000_000, gt=0)
    send_empty: bool = True
    nucleic_acid_hours: int = Field(48, gt=0)
    office_name: str = "昌平学工办"
    # The office's rule: the department checks every case with the student before it goes on.
    require_approval: bool = True
    # Minutes before `time` when staff (cc) get one mail listing the cases waiting for approval; 0: none.
    remind_before: int = Field(60, ge=0, le=24 * 60)

    _check_time = field_validator("time", mode="before")(lambda cls, v: _clock_time(v))

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]

    @field_validator("to")
    @classmethod
    def _someone(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("is empty; list the office that receives the daily digest, e.g. "
                             "to = [\"office@example.com\"]")
        return value


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
    def _item_keys_distinct(cls, value):
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
    templates: _Path | None = None  # a folder whose files override the packaged defaults
    per_sender_per_day: int = Field(8, ge=1)
    # Blank forms sent with replies that ask for an item: item key -> file, e.g.
    # 承诺书 = "forms/附件1 承诺书.docx"; the attachment keeps the file's own name.
    attachments: dict[str, _Path] = {}
    # A student's question unanswered this many hours makes `intake status` ask for attention.
    question_hours: int = Field(24, ge=1)


class DepartmentSettings(_Section):
    """Who the students and the office are dealing with: printed at the end of every mail."""
    name: str = ""     # e.g. 物理系
    contact: str = ""  # a person to ask: teacher, phone and e-mail, or an office and its hours
    # What students write for `name` (物院, 物理系): cases, the register, the digest and
    # `--department` use `name` instead. Any other department is a flag for staff.
    aliases: list[str] = []
    # A phone answered outside office hours: a student whose 核酸 reads 阳性 is told to call it.
    # Required when [pictures] read = true.
    duty_contact: str = ""
    opinion: str = "情况属实、同意解除健康宝异常"  # 院系（处级部门）意见 in the register, for approved cases


class RetentionSettings(_Section):
    days: int = Field(180, ge=1)
    time: str = "03:30"

    _check_time = field_validator("time", mode="before")(lambda cls, v: _clock_time(v))


class PicturesSettings(_Section):
    read: bool = True  # false: no OCR; every rule falls back to names and the mail's arrival
    # Readers working at once, each a process with its own engine; 0: one per core. 1 reads in
    # the daemon's own process.
    processes: int = Field(0, ge=0, le=64)
    threads: int = Field(0, ge=0)  # onnxruntime threads per reader; 0: the cores shared among them


class AlertsSettings(_Section):
    to: list[str] | None = None  # staff alerted at once (a 阳性 result); default: digest.cc

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_address(v) for v in value]


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class WebSettings(_Section):
    """The staff desk (`intake web`)."""
    reject_reasons: list[str] = ["照片模糊，看不清", "不是本人的材料", "核酸结果不是48小时内的",
                                 "承诺书没有签名", "行程卡不是最新的"]
    secret_key_env: str | None = None  # signs the CSRF cookie; default a key file in storage
    # Reverse proxies in front whose X-Forwarded-For/-Proto are believed. 0 (the default): none,
    # so a browser reaching the desk directly cannot choose the address the login throttle counts.
    proxy_hops: int = Field(0, ge=0, le=5)
    public_url: str | None = None  # the desk's address as staff open it, linked from the reminder


class Settings(_Section):
    mailbox: MailboxSettings
    smtp: SmtpSettings
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    digest: DigestSettings
    schedule: ScheduleSettings = ScheduleSettings()
    rules: RulesSettings = RulesSettings()
    replies: RepliesSettings = RepliesSettings()
    department: DepartmentSettings = DepartmentSettings()
    retention: RetentionSettings = RetentionSettings()
    logging: LoggingSettings = LoggingSettings()
    pictures: PicturesSettings = PicturesSettings()
    alerts: AlertsSettings = AlertsSettings()
    web: WebSettings = WebSettings()

    @model_validator(mode="after")
    def _sender_is_login(self):
        # NetEase answers "553 Mail from must equal authorized user" otherwise.
        if self.smtp.username and "@" in self.smtp.username and \
                normal_address(self.smtp.username) != self.smtp.sender:
            raise ValueError("smtp.sender must equal smtp.username (the provider rejects other "
                             "From addresses with 553)")
        return self

    @model_validator(mode="after")
    def _duty_contact_when_reading(self):
        if self.pictures.read and not self.department.duty_contact.strip():
            raise ValueError("department.duty_contact is required when [pictures] read = true: a "
                             "student whose 核酸 reads 阳性 is told to call it; add duty_contact = "
                             "\"值班电话 010-…\" under [department]")
        return self

    @property
    def alert_recipients(self) -> tuple[str, ...]:
        return tuple(self.alerts.to if self.alerts.to is not None else self.digest.cc)

    def submission_rules(self) -> Rules:
        """The checks' rules, with the department and its aliases."""
        aliases = tuple(alias.replace(" ", "").replace("(", "（").replace(")", "）")
                        for alias in self.department.aliases)
        return dataclasses.replace(self.rules.to_rules(), department=self.department.name,
                                   department_aliases=aliases)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.schedule.timezone)

    @property
    def own_addresses(self) -> frozenset[str]:
        found = {self.smtp.sender}
        for candidate in (self.mailbox.username, self.mailbox.address, self.smtp.username):
            if candidate and "@" in candidate:
                found.add(normal_address(candidate))
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
        raise ConfigError(explain(err)) from err
    settings = _resolve_paths(settings, path.parent)
    _check_reply_attachments(settings)
    return settings


def _check_reply_attachments(settings: Settings) -> None:
    """Each blank form names a known item and is a readable file, so no reply goes out without it."""
    item_keys = settings.submission_rules().item_keys
    for key, file in settings.replies.attachments.items():
        where = f"replies.attachments.{key}"
        if key not in item_keys:
            raise ConfigError(f"{where}: {key!r} is not an item; use one of {', '.join(item_keys)}")
        if not file.is_file():
            raise ConfigError(f"{where}: file {file} not found; put the blank form there or fix the "
                              f"path (relative paths are relative to the config file)")
        try:
            with file.open("rb"):
                pass
        except OSError as err:
            raise ConfigError(f"{where}: cannot read {file}: {err.strerror}; make it readable "
                              f"for the daemon's user") from err


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
                                                   if settings.replies.templates else None,
                                                   "attachments": {key: resolve(file) for key, file
                                                                   in settings.replies.attachments.items()}}),
        "database": settings.database.model_copy(update={"url": url}),
    })
