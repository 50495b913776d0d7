"""OCR benchmark: cold start, warm per picture and per submission, peak RSS (see scripts/bench-ocr)."""
from __future__ import annotations

import resource
import statistics
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from PIL import Image

from checks.facts import read_facts
from intake.ocr import PictureReader
from tests.support import drawn

ZONE = ZoneInfo("Asia/Shanghai")
SAMPLED = datetime(2026, 11, 21, 14, 5, tzinfo=ZONE)


def twelve_megapixels(image: Image.Image) -> bytes:
    """A phone photo of a printed form at 12 MP (3024 x 4032), as JPEG."""
    return drawn.jpeg(image.resize((3024, 4032), Image.Resampling.BICUBIC), quality=85)


def timed(reader: PictureReader, data: bytes) -> tuple[float, dict]:
    started = time.perf_counter()
    facts = read_facts(reader.read(data), ZONE)
    return time.perf_counter() - started, facts


def main(rounds: int = 3) -> None:
    started = time.perf_counter()
    reader = PictureReader()
    reader.warm()
    screenshot = drawn.png(drawn.nucleic_acid(SAMPLED))
    first, _ = timed(reader, screenshot)
    cold = time.perf_counter() - started
    print(f"cold start (load + first screenshot): {cold:.2f} s (first read {first:.2f} s)")

    photo = twelve_megapixels(drawn.statement())
    cases = {"screenshot 750x1334 PNG": screenshot, "photo 12 MP JPEG": photo}
    for label, data in cases.items():
        times = [timed(reader, data)[0] for _ in range(rounds)]
        print(f"warm per picture, {label}: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f})")

    submission = list(drawn.five(SAMPLED).values())
    submission[3] = photo  # the 情况说明 as a full-size phone photo
    submission[4] = twelve_megapixels(drawn.pledge())
    totals = []
    for _ in range(rounds):
        began = time.perf_counter()
        kinds = [timed(reader, data)[1]["looks_like"] for data in submission]
        totals.append(time.perf_counter() - began)
    print(f"per five-picture submission (3 screenshots + 2 photos of 12 MP): median "
          f"{statistics.median(totals):.2f} s; read as {kinds}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
