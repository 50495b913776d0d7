"""Pictures the tests draw themselves, the way the five materials look: app screenshots and
phone photos of the two printed forms (turned, blurred, JPEG-compressed, HEIC, EXIF-rotated)."""
from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
ID_NUMBER = "11010519491231002X"  # a valid GB 11643 check character
PHONE = "13800138000"


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, size)


def screenshot(rows: list, size=(750, 1334), title_color=(30, 130, 230)) -> Image.Image:
    """A phone screenshot: a coloured title bar, then rows (a string, or (label, value) pairs)."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size[0], 130), fill=title_color)
    y = 40
    for number, row in enumerate(rows):
        if number == 1:
            y = 170
        if isinstance(row, tuple):
            draw.text((40, y), row[0], fill=(90, 90, 90), font=_font(32))
            draw.text((300, y), row[1], fill="black", font=_font(32))
        else:
            draw.text((40, y), row, fill="white" if number == 0 else "black", font=_font(40 if number == 0 else 32))
        y += 80
    return image


def nucleic_acid(sampled: datetime, result="阴性", name="张*", older: datetime | None = None) -> Image.Image:
    rows = ["核酸检测结果", ("姓名", name), ("采样时间", f"{sampled:%Y-%m-%d %H:%M:%S}"),
            ("检测机构", "北京市某医院"), ("检测结果", result)]
    if older is not None:
        rows += ["历史记录", ("采样时间", f"{older:%Y-%m-%d %H:%M:%S}"), ("检测结果", "阴性")]
    return screenshot(rows)


def health_kit(popup: int | None, shown: datetime, name="张*") -> Image.Image:
    rows = ["北京健康宝", "本人健康码自查询", ("姓名", name), f"{shown:%Y-%m-%d %H:%M:%S}"]
    if popup:
        rows += ["温馨提示" + "①②③④⑤"[popup - 1], "您的健康码已变为弹窗状态", "请按要求进行核酸检测"]
    return screenshot(rows, title_color=(40, 170, 90))


def itinerary(updated: datetime, places: str = "北京市") -> Image.Image:
    return screenshot(["通信大数据行程卡", f"{PHONE[:3]}****{PHONE[-4:]}的动态行程卡",
                       f"更新于：{updated:%Y.%m.%d %H:%M:%S}", "您于前7天内到达或途经：", places,
                       "注：*表示当前该城市存在中风险或高风险地区"], title_color=(60, 60, 200))


def _paper(rows: list[tuple[str, str]], title: str, heading: str | None = None,
           footer: list[tuple[str, str]] = ()) -> Image.Image:
    """A printed A4 form as a phone photographs it: grey desk, slightly turned, a little blurred.
    A value with line breaks is written over several lines of its cell, as students fill them."""
    page = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(page)
    y = 120
    if heading:
        draw.text((100, y), heading, fill="black", font=_font(36))
        y += 80
    draw.text((260, y), title, fill="black", font=_font(52))
    y += 150
    for label, value in rows:
        lines = value.split("\n")
        bottom = y + 70 + 50 * (len(lines) - 1)
        draw.rectangle((100, y - 20, 1140, bottom), outline="black", width=3)
        draw.line((470, y - 20, 470, bottom), fill="black", width=3)
        draw.text((120, y), label, fill="black", font=_font(36 if len(label) < 10 else 30))
        for number, line in enumerate(lines):
            draw.text((500, y + 50 * number), line, fill="black", font=_font(36 if len(line) < 18 else 30))
        y = bottom + 20
    y += 60
    for label, value in footer:  # the signature lines under the pledge, outside the table
        draw.text((640, y), label, fill="black", font=_font(36))
        draw.text((640 + 40 * len(label), y - 10), value, fill=(30, 30, 120), font=_font(52))
        y += 90
    photo = Image.new("RGB", (1500, 2000), (120, 115, 110))
    turned = page.rotate(3, expand=True, fillcolor=(120, 115, 110))
    photo.paste(turned, ((1500 - turned.width) // 2, (2000 - turned.height) // 2))
    return photo.filter(ImageFilter.GaussianBlur(1.2))


ADDRESS = "北京市昌平区府学路18号"
TRIP = "2026年11月15日-11月18日 北京市海淀区\n2026年11月19日-11月21日 北京市昌平区"


def statement(name="张伟", trip: str = TRIP, id_number: str = ID_NUMBER) -> Image.Image:
    return _paper([("姓名", name), ("院（系）", "物理系"), ("现住址", ADDRESS),
                   ("手机号码", PHONE), ("身体健康状况", "良好"), ("身份证号", id_number),
                   ("是否去过中高风险地区", "否"), ("近7天行程轨迹", trip)],
                  "健康宝异常人员信息登记表", heading="附件2")


def pledge(name="张伟") -> Image.Image:
    """附件1 as students fill it: the blanks, then the pledge signed by hand (a scrawl)."""
    return _paper([("姓名", name), ("联系电话", PHONE), ("有效证件号码", ID_NUMBER),
                   ("居住地址（详细到宿舍号）", "北京市昌平区府学路18号\n7号楼302室")],
                  "弹窗解除个人承诺书", footer=[("承诺人（手签）:", "VW"), ("日期:", "2026年11月21日")])


def jpeg(image: Image.Image, quality: int = 70) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def heic(image: Image.Image) -> bytes:
    import pillow_heif
    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", quality=80)
    return buffer.getvalue()


def exif_rotated_jpeg(image: Image.Image) -> bytes:
    """Stored sideways with EXIF orientation 6, as phones write portrait photos."""
    stored = image.rotate(90, expand=True)  # viewers turn it back 90° clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=85, exif=exif.tobytes())
    return buffer.getvalue()


def five(sampled: datetime, *, result="阴性", popup=3, places="北京市", name="张伟",
         updated: datetime | None = None, shown_name: str = "张*",
         id_number: str = ID_NUMBER) -> dict[str, bytes]:
    """The five materials of one submission, named as the rule asks (the apps show the name
    masked: `shown_name`)."""
    return {"核酸.png": png(nucleic_acid(sampled, result, name=shown_name)),
            "健康宝.png": png(health_kit(popup, sampled, name=shown_name)),
            "行程码.jpg": jpeg(itinerary(updated or sampled, places)),
            "情况说明.jpg": jpeg(statement(name, id_number=id_number)),
            "承诺书.jpg": jpeg(pledge(name))}


# Pictures as real phones and offices make them (issue 25): time formats people write, record
# lists in either order, a printed report with result and reference columns photographed at an
# angle with a shadow, wrapped city lists, a green code, WeChat's re-compression.

TIME_FORMATS = {
    "iso": "{:%Y-%m-%d %H:%M}",
    "iso_seconds": "{:%Y-%m-%d %H:%M:%S}",
    "slashes": "{0.year}/{0.month}/{0.day} {0.hour}:{0:%M}",
    "chinese": "{0.year}年{0.month}月{0.day}日 {0:%H:%M:%S}",
    "dashes_no_year": "{:%m-%d %H:%M}",
    "chinese_no_year": "{0.month}月{0.day}日 {0:%H:%M}",
}


def written(moment: datetime, how: str) -> str:
    """A time as one of TIME_FORMATS writes it."""
    return TIME_FORMATS[how].format(moment)


def record_list(records: list[tuple[datetime, str]], *, how="iso_seconds", queried: datetime | None = None,
                size=(750, 1334), name="张*") -> Image.Image:
    """A 核酸 app page listing records in the order given (newest first or oldest first), each
    a card with its 采样时间 and 检测结果; `queried` adds a 查询时间 line with the year."""
    rows: list = ["核酸检测结果", ("姓名", name)]
    if queried is not None:
        rows.append(("查询时间", f"{queried:%Y-%m-%d %H:%M}"))
    for sampled, result in records:
        rows += [("采样时间", written(sampled, how)), ("检测结果", result)]
    return screenshot(rows, size=size)


def wechat(image: Image.Image, width: int = 720, quality: int = 60) -> bytes:
    """As WeChat re-sends a screenshot: shrunk to `width` px and JPEG-compressed again."""
    height = round(image.height * width / image.width)
    return jpeg(image.resize((width, height), Image.Resampling.LANCZOS), quality=quality)


def paper_report(sampled: datetime, result: str, *, how="iso_seconds", reported: datetime | None = None,
                 tilt: float = 4.0, shadow: bool = True) -> Image.Image:
    """A printed 检验报告单 photographed on a desk: 采样时间 at the top, then a table whose
    结果 column holds the result and whose 参考值 column says 阴性(-) whatever the result,
    turned by `tilt` degrees, a shadow across one side, a little blurred."""
    page = Image.new("RGB", (1240, 1300), "white")
    draw = ImageDraw.Draw(page)
    draw.text((230, 80), "新型冠状病毒核酸检测报告单", fill="black", font=_font(52))
    fields = [("姓名", "张*"), ("采样时间", written(sampled, how)),
              ("报告时间", f"{(reported or sampled):%Y-%m-%d %H:%M}")]
    y = 230
    for label, value in fields:
        draw.text((100, y), f"{label}：", fill="black", font=_font(36))
        draw.text((330, y), value, fill="black", font=_font(36))
        y += 80
    y += 40
    columns = (100, 560, 830, 1140)
    for cells, top in ((("检测项目", "结果", "参考值"), y), (("新冠病毒核酸", f"{result}{'(+)' if result == '阳性' else '(-)'}", "阴性(-)"), y + 90)):
        draw.rectangle((columns[0], top - 20, columns[-1], top + 70), outline="black", width=3)
        for left, cell in zip(columns, cells):
            draw.line((left, top - 20, left, top + 70), fill="black", width=3)
            draw.text((left + 25, top), cell, fill="black", font=_font(40))
    draw.text((100, y + 230), "注：阴性(-)表示未检出新型冠状病毒核酸", fill="black", font=_font(30))
    if shadow:
        shade = Image.linear_gradient("L").rotate(90).resize(page.size)
        page = Image.composite(page, Image.new("RGB", page.size, (90, 90, 90)),
                               shade.point(lambda value: 110 + value * 145 // 255))
    photo = Image.new("RGB", (1500, 1600), (120, 115, 110))
    turned = page.rotate(tilt, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=(120, 115, 110))
    photo.paste(turned, ((1500 - turned.width) // 2, (1600 - turned.height) // 2))
    return photo.filter(ImageFilter.GaussianBlur(1.0))


def wrapped_itinerary(updated: datetime, lines: list[str], days: int = 7) -> Image.Image:
    """A 行程卡 whose city list the card wrapped over `lines` (e.g. `…河北省廊坊` / `市*`)."""
    return screenshot(["通信大数据行程卡", f"{PHONE[:3]}****{PHONE[-4:]}的动态行程卡",
                       f"更新于：{updated:%Y.%m.%d %H:%M:%S}", f"您于前{days}天内到达或途经：", *lines,
                       "注：*表示当前该城市存在中风险或高风险地区"], title_color=(60, 60, 200))


def green_code(shown: datetime, name="张*") -> Image.Image:
    """A 健康宝 with no popup: a green code, 未见异常."""
    return screenshot(["北京健康宝", "本人健康码自查询", ("姓名", name), f"{shown:%Y-%m-%d %H:%M:%S}",
                       "绿码", "未见异常"], title_color=(40, 170, 90))


@dataclass(frozen=True)
class DrawnPage:
    """A random 核酸 page and what it truly says (for the fuzz test)."""
    image: Image.Image
    result: str
    sampled: datetime
    queried: datetime   # when the screenshot was taken; a mail's date follows it
    how: str
    newest_first: bool


def random_nucleic_page(rng: random.Random, zone) -> DrawnPage:
    """A small 核酸 app page: a random result, time format, number and order of records, and
    layout noise (sizes, offsets, an institution or 参考值 row, a watermark, a slight turn)."""
    newest = datetime(2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                      rng.randint(0, 59), tzinfo=zone)
    result = rng.choice(("阴性", "阴性", "阳性"))
    records = [(newest, result)] + [
        (newest - timedelta(days=days, hours=rng.randint(0, 12)), rng.choice(("阴性", "阳性")))
        for days in sorted(rng.sample(range(1, 12), rng.randint(0, 2)))]
    newest_first = rng.random() < 0.5
    if not newest_first:
        records.reverse()
    how = rng.choice(list(TIME_FORMATS))
    queried = newest + timedelta(hours=rng.randint(1, 40), minutes=rng.randint(0, 59))
    width = rng.choice((480, 540, 600))
    size = rng.randint(22, 28)
    label_x, value_x = rng.randint(16, 40), rng.randint(150, 200) + 2 * (size - 22)
    step = round(size * rng.uniform(1.9, 2.5))
    rows: list = [("姓名", "张*")]
    if rng.random() < 0.5 or how.endswith("no_year") and rng.random() < 0.5:
        rows.append(("查询时间", f"{queried:%Y-%m-%d %H:%M}"))
    for sampled, verdict in records:
        card = [("采样时间", written(sampled, how)), ("检测结果", verdict)]
        if rng.random() < 0.3:
            card.insert(1, ("检测机构", "北京市某医院"))
        if rng.random() < 0.25:
            card.append(("参考值", "阴性"))
        rows += card
    height = 130 + step * (len(rows) + 2)
    image = Image.new("RGB", (width, max(height, 700)), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 90), fill=(30, 130, 230))
    draw.text((label_x, 28), "核酸检测结果", fill="white", font=_font(size + 6))
    if rng.random() < 0.3:
        draw.text((width // 3, 400), "仅供查看", fill=(225, 225, 225), font=_font(size + 20))
    y = 120
    for label, value in rows:
        draw.text((label_x, y), label, fill=(90, 90, 90), font=_font(size))
        draw.text((value_x, y), value, fill="black", font=_font(size))
        y += step
    turn = rng.uniform(-1.5, 1.5)
    if abs(turn) > 0.3:
        image = image.rotate(turn, expand=False, resample=Image.Resampling.BICUBIC, fillcolor="white")
    return DrawnPage(image, result, newest, queried, how, newest_first)
