import base64
import email

import pytest

from checks.archive import decode_member_name
from checks.decoding import decode_bytes, decode_header_value, header_param


def _part(header_bytes: bytes) -> email.message.Message:
    return email.message_from_bytes(header_bytes + b"\r\n\r\nbody")


def _word(text: str, charset: str) -> bytes:
    codec = "gbk" if charset.lower() in {"gb2312", "gbk"} else charset
    return f"=?{charset}?B?{base64.b64encode(text.encode(codec)).decode()}?=".encode()


NAME = "李喆+化学系+健康宝弹窗.zip"


@pytest.mark.parametrize("header", [
    b"Content-Disposition: attachment; filename*=utf-8''" + __import__("urllib.parse").parse.quote(NAME).encode(),
    b"Content-Disposition: attachment;\r\n filename*0*=utf-8''%E6%9D%8E%E5%96%86;\r\n filename*1*=" +
    __import__("urllib.parse").parse.quote(NAME[2:]).encode(),
    b'Content-Disposition: attachment; filename="' + _word(NAME, "gb2312") + b'"',
    b'Content-Disposition: attachment; filename="' + _word(NAME, "GBK") + b'"',
    b'Content-Disposition: attachment; filename="' + _word(NAME, "utf-8") + b'"',
    b'Content-Disposition: attachment; filename="' + NAME.encode("gbk") + b'"',
    b'Content-Disposition: attachment; filename="' + NAME.encode("utf-8") + b'"',
    b"Content-Disposition: attachment; filename*=gb2312''" + __import__("urllib.parse").parse.quote(NAME.encode("gbk")).encode(),
])
def test_attachment_names_in_every_client_style(header):
    assert header_param(_part(header), "content-disposition", "filename") == NAME


def test_name_on_content_type_only():
    part = _part(b'Content-Type: image/jpeg; name="' + _word("核酸.jpg", "utf-8") + b'"')
    assert header_param(part, "content-disposition", "filename") is None
    assert header_param(part, "content-type", "name") == "核酸.jpg"


def test_gb2312_label_with_gbk_only_character_is_read_as_gb18030():
    assert decode_header_value(_word("喆", "gb2312").decode()) == "喆"


def test_undeclared_bytes_prefer_utf8_then_gb18030():
    assert decode_bytes("情况说明".encode("utf-8")) == "情况说明"
    assert decode_bytes("情况说明".encode("gbk")) == "情况说明"


def test_unknown_charset_label_does_not_crash():
    assert decode_bytes("核酸".encode("gbk"), "x-unknown-charset") == "核酸"


@pytest.mark.parametrize("raw,flag,expected", [
    ("承诺书.jpg".encode("gbk"), False, "承诺书.jpg"),
    ("情况说明.jpg".encode("utf-8"), False, "情况说明.jpg"),
    ("情况说明.jpg".encode("utf-8"), True, "情况说明.jpg"),
    ("核酸.jpg".encode("gbk"), True, "核酸.jpg"),  # flagged UTF-8 but GBK bytes
    ("张伟\\行程码.jpg".encode("gbk"), False, "张伟/行程码.jpg"),
    ("健康宝.jpg".encode("utf-8"), False, "健康宝.jpg"),
])
def test_zip_member_names(raw, flag, expected):
    assert decode_member_name(raw, flag) == expected


def test_decomposed_names_are_nfc():
    decomposed = "cafe\u0301.jpg".encode()
    assert decode_member_name(decomposed, False) == "caf\u00e9.jpg"
