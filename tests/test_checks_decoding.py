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


# ---- addresses (issue 26): the standard library's parser on the raw header -------------------

def _raw_header(line: bytes, name: str = "From") -> str:
    """The header's value as the compat32 parser keeps it (8-bit bytes as surrogate escapes)."""
    message = email.message_from_bytes(name.encode() + b": " + line + b"\r\n\r\nbody")
    return next(value for key, value in message.raw_items() if key == name)


@pytest.mark.parametrize("line,name,address", [
    (b"zs@126.com", "", "zs@126.com"),
    (b"<zs@126.com>", "", "zs@126.com"),
    (b"Zhang San <zs@126.com>", "Zhang San", "zs@126.com"),
    (b'"Zhang San" <zs@126.com>', "Zhang San", "zs@126.com"),
    (b'"Zhang, San" <zs@126.com>', "Zhang, San", "zs@126.com"),
    (b'"Zhang <San>" <zs@126.com>', "Zhang <San>", "zs@126.com"),
    (b'"Zhang \\"San\\"" <zs@126.com>', 'Zhang "San"', "zs@126.com"),
    (b'"' + _word("张三喆", "gb18030") + b'" <123456@qq.com>', "张三喆", "123456@qq.com"),
    (b'"' + _word("张三", "utf-8") + b'" <zs@foxmail.com>', "张三", "zs@foxmail.com"),
    (_word("张三", "UTF-8") + b" <zs@126.com>", "张三", "zs@126.com"),
    (_word("李喆", "gb2312") + b" <zs@126.com>", "李喆", "zs@126.com"),  # GBK-only 喆, GB2312 label
    (b'"' + _word("李喆", "GBK") + b'" <zs@126.com>', "李喆", "zs@126.com"),
    (b'"' + _word("张,三", "utf-8") + b'" <zs@126.com>', "张,三", "zs@126.com"),
    (b"zs@126.com (Zhang San)", "", "zs@126.com"),
    ('"张三" <zs@126.com>'.encode(), "张三", "zs@126.com"),  # RFC 6532 raw UTF-8
    ('"张三喆" <zs@126.com>'.encode("gbk"), "张三喆", "zs@126.com"),  # raw GBK, undeclared
    (b"Zhang San <ZhangSan@126.COM>", "Zhang San", "zhangsan@126.com"),
    (b'"' + _word("张三", "utf-8") + b'" Junior <zs@126.com>', "张三 Junior", "zs@126.com"),
    (b'"Zhang San"\r\n <zs@126.com>', "Zhang San", "zs@126.com"),  # folded
])
def test_sender_addresses_in_every_client_style(line, name, address):
    from checks.addresses import NamedAddress, parse_addresses
    assert parse_addresses("from", _raw_header(line)) == (NamedAddress(name, address),)


@pytest.mark.parametrize("line", [b"", b"<>", b"Zhang San", b"Mail Delivery System <MAILER-DAEMON>",
                                  b'"Zhang San" zs@126.com', b"zs at 126.com", b"undisclosed-recipients:;",
                                  b'"Zhang San <zs@126.com>'])
def test_no_address_to_answer(line):
    from checks.addresses import parse_addresses
    assert parse_addresses("from", _raw_header(line)) == ()


def test_address_lists_and_the_null_return_path():
    from checks.addresses import is_null_path, parse_addresses
    found = parse_addresses("to", _raw_header(b'"Li, Si" <ls@163.com>, zs@126.com', "To"))
    assert [each.address for each in found] == ["ls@163.com", "zs@126.com"]
    assert is_null_path(_raw_header(b"<>", "Return-Path"))
    assert is_null_path(_raw_header(b"<MAILER-DAEMON>", "Return-Path"))  # Exchange's way
    assert not is_null_path(_raw_header(b"<zs@126.com>", "Return-Path"))
    assert [each.address for each in parse_addresses(
        "return-path", _raw_header(b"<ZS@126.com>", "Return-Path"))] == ["zs@126.com"]


def test_quotes_in_a_decoded_value_are_kept():
    assert decode_header_value('"Zhang San" <zs@126.com>') == '"Zhang San" <zs@126.com>'
