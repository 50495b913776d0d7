"""OCR benchmark: cold start, warm per picture and per submission, peak RSS (see scripts/bench-ocr)."""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from PIL import Image

from checks.facts import read_facts
from intake.pictures.ocr import PictureReader
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


def cpu_seconds() -> float:
    """CPU time of this process: on a busy shared machine, wall time says more about the others."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
        cpu = cpu_seconds()
        times = [timed(reader, data)[0] for _ in range(rounds)]
        cpu = (cpu_seconds() - cpu) / rounds
        print(f"warm per picture, {label}: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}); CPU {cpu:.2f} s per picture")

    submission = list(drawn.five(SAMPLED).values())
    submission[3] = photo  # the 情况说明 as a full-size phone photo
    submission[4] = twelve_megapixels(drawn.pledge())
    totals = []
    cpu = cpu_seconds()
    for _ in range(rounds):
        began = time.perf_counter()
        kinds = [timed(reader, data)[1]["looks_like"] for data in submission]
        totals.append(time.perf_counter() - began)
    cpu = (cpu_seconds() - cpu) / rounds
    print(f"per five-picture submission (3 screenshots + 2 photos of 12 MP): median "
          f"{statistics.median(totals):.2f} s, CPU {cpu:.2f} s; read as {kinds}")
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
