"""Each problem code as a sentence a student can act on."""
from __future__ import annotations

from checks.findings import Problem

_KIND_NAMES = {"jpeg": "JPEG 图片", "png": "PNG 图片", "webp": "WebP 图片", "heif": "HEIC 照片",
               "gif": "GIF 动图", "bmp": "BMP 图片", "tiff": "TIFF 图片", "pdf": "PDF 文件",
               "zip": "zip 压缩包", "rar": "RAR 压缩包", "7z": "7z 压缩包"}

_SENTENCES = {
    "encrypted": "压缩包「{subject}」设置了密码，系统打不开它。",
    "encrypted/wrong_password": "压缩包「{subject}」设置了密码，邮件正文里写的密码打不开它。",
    "rar": "「{subject}」是 RAR 格式，系统只能打开 zip。",
    "7z": "「{subject}」是 7z 格式，系统只能打开 zip。",
    "not_zip": "「{subject}」不是有效的 zip 压缩包（只是改了扩展名），需要用压缩软件压缩成 zip。",
    "corrupt_archive": "压缩包「{subject}」已损坏，无法打开。",
    "overlapping": "压缩包「{subject}」结构异常，无法安全打开，请用常见压缩软件重新压缩后发送。",
    "too_many_members": "压缩包「{subject}」里的文件过多（{detail} 个），请只放五张材料图片。",
    "archive_too_large": "压缩包「{subject}」解压后过大，请压缩图片尺寸后重新发送。",
    "too_deep": "「{subject}」是压缩包里再套的压缩包，层数过多，请直接把五张图片压缩成一个 zip。",
    "member_too_large": "文件「{subject}」过大，请压缩图片或截图后重新发送。",
    "member_ratio": "文件「{subject}」解压后异常巨大，无法处理，请重新压缩后发送。",
    "member_corrupt": "文件「{subject}」在压缩包中已损坏，请重新压缩后发送。",
    "empty": "文件「{subject}」是空文件，请重新发送该材料。",
    "not_picture": "文件「{subject}」不是图片，请提供截图或照片（JPG、PNG、HEIC、WebP）。",
    "undecodable": "图片「{subject}」已损坏或不完整，无法打开，请重新截图或拍照后发送。",
    "type_not_allowed": "文件「{subject}」是{kind}，不被接受，请改为 JPG、PNG、HEIC 或 WebP 图片。",
    "duplicate": "同一项材料「{detail}」收到了多个文件，我们采用了其中可用的一个（多余的文件：「{subject}」）。",
}


def describe(problem: Problem) -> str:
    template = (_SENTENCES.get(f"{problem.code}/{problem.detail}") or
                _SENTENCES.get(problem.code, "材料有问题：{code}（{subject}）"))
    kind = _KIND_NAMES.get(problem.detail, problem.detail or "未知格式的文件")
    return template.format(subject=problem.subject, detail=problem.detail, kind=kind,
                           code=problem.code)
