"""The operator-tunable submission rules, as plain values the checks read."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ItemRule:
    """One of the required pictures ([rules] items): its canonical name and accepted file stems."""

    key: str
    spellings: tuple[str, ...]
    hint: str = ""

    def all_spellings(self) -> tuple[str, ...]:
        return (self.key, *self.spellings)


DEFAULT_ITEMS: tuple[ItemRule, ...] = (
    ItemRule("承诺书", ("承诺", "承诺书签字"), "手写签名的承诺书，拍照或扫描"),
    ItemRule("情况说明", ("说明", "情况说明表"), "填写完整的情况说明"),
    ItemRule("健康宝", ("健康宝截图", "健康宝弹窗", "弹窗"), "北京健康宝弹窗页面截图"),
    ItemRule("行程码", ("行程卡", "通信行程卡", "通信大数据行程卡"), "通信大数据行程卡截图"),
    ItemRule("核酸", ("核酸检测", "核酸报告", "核酸结果", "核酸证明"), "{hours} 小时内的核酸检测结果截图"),
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds enforced while unpacking, so a hostile archive cannot exhaust memory."""

    max_members: int = 200
    max_member_bytes: int = 40 * 1024 * 1024
    max_total_bytes: int = 200 * 1024 * 1024
    max_ratio: int = 200
    max_nesting: int = 1


@dataclass(frozen=True)
class Rules:
    items: tuple[ItemRule, ...] = DEFAULT_ITEMS
    name_suffix: str = "健康宝弹窗"
    picture_kinds: frozenset[str] = frozenset({"jpeg", "png", "heif", "webp"})
    allow_pdf: bool = False
    # Forms students scan (扫描全能王): PDF accepted for these whatever allow_pdf says, its first
    # page taken as the picture.
    pdf_items: tuple[str, ...] = ("承诺书", "情况说明")
    # Smaller than this (pixels, each side) shows nothing legible: a thumbnail, not the picture.
    min_picture_side: int = 200
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    question_keywords: tuple[str, ...] = ("健康宝", "弹窗")
    # [department] name and aliases: what students write (物院, 物理系) becomes the one name the
    # register, the digest and the filters use. Empty: department names are kept as written.
    department: str = ""
    department_aliases: tuple[str, ...] = ()
    cloud_link_patterns: tuple[str, ...] = (
        r"mail\.163\.com/large-attachment-download",
        r"mail\.126\.com/large-attachment-download",
        r"large-attachment-download",
        r"mail\.qq\.com/cgi-bin/ftnExs_download",
        r"(?:i?wx\.)?mail\.qq\.com/ftn/download",
        r"icloud\.com/attachment",
        r"超大附件",
        r"网盘附件",
    )

    def canonical_department(self, written: str) -> str:
        """The configured department for one of its aliases; anything else as written."""
        folded = written.replace(" ", "").replace("(", "（").replace(")", "）")
        return self.department if self.department and folded in self.department_aliases else written

    def is_foreign_department(self, department: str) -> bool:
        """A department that is neither ours nor one of its aliases (only when ours is set)."""
        return bool(self.department) and department != self.department \
            and department not in self.department_aliases

    def item(self, key: str) -> ItemRule:
        for rule in self.items:
            if rule.key == key:
                return rule
        raise KeyError(key)

    @property
    def item_keys(self) -> tuple[str, ...]:
        return tuple(rule.key for rule in self.items)

    def accepted_kinds_for(self, key: str) -> frozenset[str]:
        return self.accepted_kinds | ({"pdf"} if key in self.pdf_items else frozenset())

    @property
    def accepted_kinds(self) -> frozenset[str]:
        return self.picture_kinds | ({"pdf"} if self.allow_pdf else frozenset())
