"""Which of the required items (rules.items) a mail brings, and what is wrong with it."""
from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from dataclasses import dataclass, field

from checks.archive import member_names, unpack
from checks.findings import Problem
from checks.names import SubmissionName, name_in_text, parse_submission_name
from checks.pictures import inspect_picture
from checks.rules import Rules
from checks.pdf import first_page_jpeg
from checks.sniff import document_kind, looks_like_archive, looks_like_picture


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes


@dataclass(frozen=True)
class ItemFile:
    """The file this mail brings for one item. `problem` is None when it is usable."""

    key: str
    source_name: str
    data: bytes | None
    kind: str | None
    problem: Problem | None
    # The data's SHA-256 (hex; None without data), worked out with the checks: it names the
    # stored file, keys the picture's reading and tells a picture sent again.
    sha256: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None


@dataclass
class Assessment:
    submission_name: SubmissionName | None
    items: dict[str, ItemFile] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    archive_names: list[str] = field(default_factory=list)
    # Usable pictures whose names match no item (IMG_20261206_101122.jpg, mmexport….jpg), by
    # their file name: with reading on they are filed by what they show, else listed as unmatched.
    unnamed: dict[str, ItemFile] = field(default_factory=dict)

    @property
    def brought_anything(self) -> bool:
        return bool(self.items or self.unmatched or self.problems)


_LEADING_NUMBERING = re.compile(r"^[\s\d._\-、()（）]+")


def _stem(name: str) -> str:
    base = posixpath.basename(name)
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = unicodedata.normalize("NFKC", stem).lower().replace(" ", "")
    return _LEADING_NUMBERING.sub("", stem) or stem


def match_item(file_name: str, rules: Rules) -> str | None:
    """The item a file stands for by its stem: an exact spelling, else the only item it names."""
    stem = _stem(file_name)
    if not stem:
        return None
    spellings = {rule.key: [unicodedata.normalize("NFKC", s).lower() for s in rule.all_spellings()]
                 for rule in rules.items}
    for key, words in spellings.items():
        if stem in words:
            return key
    named = {key for key, words in spellings.items() if any(word in stem for word in words)}
    return named.pop() if len(named) == 1 else None


_PASSWORD = re.compile(
    r"(?:解压|压缩包|压缩)?(?:密码|口令|password|pwd)\s*(?:是|为|:|：|=|is)?\s*[「\"“']?"
    r"([^\s「」\"“”'，。,;；、]{1,64})", re.IGNORECASE)


def passwords_in(text: str) -> tuple[bytes, ...]:
    """Zip passwords a student wrote in the mail ("解压密码：1234"), as the bytes tools use.

    WinRAR and 7-Zip write AES passwords as UTF-8; Chinese ZipCrypto tools use GBK.
    """
    found: list[bytes] = []
    for match in _PASSWORD.finditer(text or ""):
        word = match.group(1)
        for codec in ("utf-8", "gbk"):
            try:
                candidate = word.encode(codec)
            except UnicodeEncodeError:
                continue
            if candidate not in found:
                found.append(candidate)
    return tuple(found[:10])


def assess(attachments: list[Attachment], subject: str, rules: Rules, body: str = "") -> Assessment:
    """Everything the checks can say about one mail's attachments."""
    passwords = passwords_in(body)
    candidates: list[tuple[str, bytes | None, Problem | None, bool]] = []
    problems: list[Problem] = []
    archive_names: list[str] = []
    for attachment in attachments:
        if looks_like_archive(attachment.name, attachment.data):
            archive_names.append(attachment.name)
            contents = unpack(attachment.data, attachment.name, rules.limits, passwords=passwords)
            problems.extend(contents.problems)
            candidates += [(m.name, m.data, m.problem, m.doubtful_name) for m in contents.members]
        else:
            candidates.append((attachment.name, attachment.data, None, False))

    submission_name = None
    for archive_name in archive_names:
        submission_name = parse_submission_name(archive_name, rules.name_suffix)
        if submission_name:
            break
    if submission_name is None:
        submission_name = parse_submission_name(subject, rules.name_suffix)
    if submission_name is None:  # then the text: 我是周航，物理学院 (the department ours if unsaid)
        submission_name = name_in_text(f"{subject}\n{body}", rules.name_suffix, rules.department)
    if submission_name is not None:
        if submission_name.extras:
            problems.append(Problem("extra_name_parts", "", str(len(submission_name.extras))))
        submission_name = SubmissionName(submission_name.name,
                                         rules.canonical_department(submission_name.department))

    assessment = Assessment(submission_name, problems=problems, archive_names=archive_names)
    for name, data, member_problem, doubtful_name in candidates:
        key = match_item(name, rules)
        if key is None:
            if member_problem is not None:
                assessment.problems.append(member_problem)
            else:
                assessment.unmatched.append(posixpath.basename(name))
                if data is not None:
                    found = _item_file("", name, data, None, rules)
                    if found.usable:
                        assessment.unnamed.setdefault(posixpath.basename(name), found)
            if doubtful_name:
                assessment.problems.append(Problem("doubtful_name", posixpath.basename(name)))
            continue
        found = _item_file(key, name, data, member_problem, rules)
        earlier = assessment.items.get(key)
        if earlier is None or (not earlier.usable and found.usable):
            assessment.items[key] = found
            if earlier is not None:
                assessment.problems.append(Problem("duplicate", posixpath.basename(earlier.source_name), key))
        else:
            assessment.problems.append(Problem("duplicate", posixpath.basename(name), key))
    return assessment


def _item_file(key: str, name: str, data: bytes | None, member_problem: Problem | None,
               rules: Rules) -> ItemFile:
    if member_problem is not None or data is None:
        return ItemFile(key, name, None, None, member_problem or Problem("member_corrupt", name))
    base = posixpath.basename(name)
    document = document_kind(name)
    if document is not None:  # never its internal parts: what it is, and what to do instead
        return ItemFile(key, name, None, None, Problem("document", base, document))
    check = inspect_picture(data, rules.accepted_kinds_for(key), rules.min_picture_side)
    kind = check.kind
    # A scanned form is rendered; a PDF that [rules] allow_pdf lets through elsewhere stays one.
    if check.problem is None and kind == "pdf" and key in rules.pdf_items:
        rendered = first_page_jpeg(data)
        if rendered is None:
            return ItemFile(key, name, None, "pdf", Problem("undecodable", base, "pdf"))
        data, kind = rendered, "jpeg"
    problem = Problem(check.problem, base, check.detail or check.kind or "") if check.problem else None
    return ItemFile(key, name, data, kind, problem, hashlib.sha256(data).hexdigest())


def missing_items(present_usable: set[str], rules: Rules) -> list[str]:
    """Canonical names of the items still missing or unusable, in the rules' order."""
    return [key for key in rules.item_keys if key not in present_usable]


def _names_the_process(text: str, rules: Rules) -> bool:
    """A zip name or subject that follows the name rule or names 健康宝, 弹窗 or an item."""
    if not text:
        return False
    if parse_submission_name(text, rules.name_suffix) is not None:
        return True
    folded = unicodedata.normalize("NFKC", text).lower()
    words = {*rules.question_keywords, rules.name_suffix,
             *(spelling for rule in rules.items for spelling in rule.all_spellings())}
    return any(unicodedata.normalize("NFKC", word).lower() in folded for word in words if word)


def _body_mentions_the_process(body: str, rules: Rules) -> bool:
    # Only the process words and the items' canonical names: short spellings such as 说明 are
    # everyday words in a letter.
    words = {*rules.question_keywords, rules.name_suffix, *rules.item_keys}
    return any(word in (body or "") for word in words if word)


def archive_is_a_submission(attachment: Attachment, subject: str, body: str, rules: Rules) -> bool:
    """Whether something says this archive holds materials, rather than just any zip.

    Robots send zips too (DMARC reports, exports); answering them makes backscatter. The zip
    name or subject names the process, the body mentions it, or a member is named like an item.
    """
    if (_names_the_process(attachment.name, rules) or _names_the_process(subject, rules)
            or _body_mentions_the_process(body, rules)):
        return True
    return any(match_item(name, rules) for name in member_names(attachment.data))


def carries_materials(attachments: list[Attachment], subject: str, body: str, rules: Rules) -> bool:
    """Whether a mail is a submission rather than other mail that happens to carry files.

    A file named like an item counts; an archive counts when something says it holds materials;
    loose pictures (signature logos, pasted screenshots) count only when the mail is about the
    process.
    """
    if any(match_item(a.name, rules) for a in attachments):
        return True
    if any(looks_like_archive(a.name, a.data) and archive_is_a_submission(a, subject, body, rules)
           for a in attachments):
        return True
    text = f"{subject}\n{body}"
    about_process = (parse_submission_name(subject, rules.name_suffix) is not None
                     or any(word in text for word in rules.question_keywords))
    return about_process and any(looks_like_picture(a.name, a.data) for a in attachments)
