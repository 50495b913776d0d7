"""Each problem code as a sentence a student can act on."""
from __future__ import annotations

from checks.findings import Problem

_KIND_NAMES = {"jpeg": "JPEG 图片", "png": "PNG 图片", "webp": "WebP 图片", "heif": "HEIC 照片",
               "gif": "GIF 动图", "bmp": "BMP 图片", "tiff": "TIFF 图片", "pdf": "PDF 文件",
               "zip": "zip 压缩包", "rar": "RAR 压缩包", "7z": "7z 压缩包"}

# What a student is told for each problem code ("code/detail" for a variant of one).
SENTENCES = {
    "encrypted": "压缩包「{subject}」设置了密码，系统打不开它。",
    "encrypted/wrong_password": "压缩包「{subject}」设置了密码，邮件正文里写的密码打不开它。",
    "rar": "「{subject}」是 RAR 格式，系统只能打开 zip。",
    "7z": "「{subject}」是 7z 格式，系统只能打开 zip。",
    "not_zip": "「{subject}」不是有效的 zip 压缩包（只是改了扩展名），需要用压缩软件压缩成 zip。",
    "corrupt_archive": "压缩包「{subject}」已损坏，无法打开。",
    "overlapping": "压缩包「{subject}」结构异常，无法安全打开，请用常见压缩软件重新压缩后发送。",
    "too_many_members": "压缩包「{subject}」里的文件过多（{detail} 个），请只放{count}张材料图片。",
    "archive_too_large": "压缩包「{subject}」解压后过大，请压缩图片尺寸后重新发送。",
    "too_deep": "「{subject}」是压缩包里再套的压缩包，层数过多，请直接把{count}张图片压缩成一个 zip。",
    "member_too_large": "文件「{subject}」过大，请压缩图片或截图后重新发送。",
    "member_ratio": "文件「{subject}」解压后异常巨大，无法处理，请重新压缩后发送。",
    "member_encrypted": "压缩包里的文件「{subject}」设置了密码，我们无法打开。请去掉密码后重新压缩发送。",
    "unsupported_method": "文件「{subject}」用了不常见的压缩方式（{detail}），无法解开。请用系统自带的“压缩”或常用压缩软件以普通 zip 格式重新压缩后发送。",
    "doubtful_name": "压缩包里文件「{subject}」的名字无法可靠识别（压缩软件用了其他语言的文字编码，例如日文系统），请在中文系统上重新压缩，或把图片按材料名称命名（如「核酸.jpg」）后发送。",
    "member_corrupt": "文件「{subject}」在压缩包中已损坏，请重新压缩后发送。",
    "empty": "文件「{subject}」是空文件，请重新发送该材料。",
    "not_picture": "文件「{subject}」不是图片，请提供截图或照片（JPG、PNG、HEIC、WebP）。",
    "undecodable": "图片「{subject}」已损坏或不完整，无法打开，请重新截图或拍照后发送。",
    "type_not_allowed": "文件「{subject}」是{kind}，不被接受，请改为 JPG、PNG、HEIC 或 WebP 图片。",
    "refiled": "图片「{subject}」的内容是{detail}，已按内容归为「{detail}」。",
    "shows_other": "图片「{subject}」的内容是{detail}，与另一张{detail}重复，不能算作它文件名所指的材料，请补交正确的图片。",
    "nucleic_acid_too_old": "核酸采样时间 {detail}，已超过 {subject} 小时，请重新检测后提交新的核酸结果截图（文件名「核酸.jpg」）。",
    "extra_name_parts": "压缩包名（或主题）里姓名和院系之外的内容（年级、学号、班级、电话等）不需要，已忽略；下次只写「姓名+院系+健康宝弹窗」即可，这次无需重发。",
    "taken_as": "{subject} → {detail}（按图片内容归类）",
    "same_item_newer": "「{subject}」和「{newer}」都是{item}，采用了较新的「{newer}」。",
    "document": "「{subject}」是{detail}，不能直接使用：需要签字后拍照或扫描（照片或 PDF 扫描件都可以）再发送。",
    "too_small": "图片「{subject}」只有 {item} 像素，太小，看不清上面的字，不能使用；请发送原图（宽和高都至少 {newer} 像素，例如手机截图或照片原图，不要发缩略图）。",
    "nucleic_acid_expires_before_digest": "你的核酸结果将于 {subject} 超过时限，早于下一次报送（{detail}），到时不能用。请今天再做一次核酸，出结果后直接回复本邮件，附上新的核酸截图（文件名「核酸.jpg」）。",
    "duplicate": "同一项材料「{detail}」收到了多个文件，我们采用了其中可用的一个（多余的文件：「{subject}」）。",
}


def describe(problem: Problem, item_count: int) -> str:
    """The sentence telling the student what to fix; `item_count`: how many items the rules ask for."""
    template = (SENTENCES.get(f"{problem.code}/{problem.detail}") or
                SENTENCES.get(problem.code, "材料有问题：{code}（{subject}）"))
    kind = _KIND_NAMES.get(problem.detail, problem.detail or "未知格式的文件")
    # Two values in one detail: "核酸|IMG_2.jpg" (same_item_newer), "64×48|240" (too_small).
    item, _, newer = (problem.detail or "").partition("|")
    return template.format(subject=problem.subject, detail=problem.detail, kind=kind,
                           code=problem.code, item=item, newer=newer, count=count_word(item_count))


_DIGITS = "零一二三四五六七八九"


def count_word(number: int) -> str:
    """A count as written in a Chinese sentence (五项, 十二张): the templates say how many items
    the rules ask for from the configured list, never from a numeral of their own."""
    if not 0 <= number < 100:
        return str(number)
    tens, ones = divmod(number, 10)
    if tens == 0:
        return _DIGITS[ones]
    return f"{_DIGITS[tens] if tens > 1 else ''}十{_DIGITS[ones] if ones else ''}"
