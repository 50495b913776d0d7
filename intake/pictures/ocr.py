"""The OCR adapter: picture bytes in, recognised text lines out (RapidOCR on onnxruntime).

One engine per process, loaded lazily and warmed at daemon start: loading takes seconds and
hundreds of MB, reading a picture about a second. Only the models inside the rapidocr wheel are
used (the defaults): asking for any other makes rapidocr try to download it.
"""
from __future__ import annotations

import io
import logging
import os
import threading
import time
from typing import Any
from dataclasses import dataclass

from checks.reading import TextLine
from intake.errors import IntakeError

log = logging.getLogger(__name__)

LONG_SIDE = 2000  # photos are shrunk to this before reading; screenshots are smaller already


class PictureUnreadable(IntakeError):
    """The picture could not be decoded or read; the case goes on without its facts."""


@dataclass(frozen=True)
class ReaderOptions:
    threads: int = 0  # onnxruntime intra-op threads; 0 means the machine's cores


class PictureReader:
    def __init__(self, options: ReaderOptions = ReaderOptions()):
        self._options = options
        self._engine: Any = None  # RapidOCR, loaded on first use (it costs seconds and ~300 MB)
        self._lock = threading.Lock()  # one reading at a time: the engine uses every core already

    def warm(self) -> float:
        """Load the engine now (seconds taken), so the first mail does not wait for it."""
        started = time.monotonic()
        self._load()
        return time.monotonic() - started

    def _load(self):
        if self._engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as err:
                raise IntakeError("pictures.read is on but rapidocr is not installed; run "
                                  "scripts/setup, or set [pictures] read = false") from err
            threads = self._options.threads or os.cpu_count() or 1
            self._engine = RapidOCR(params={
                "Global.log_level": "error",
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                # Detect on at most 960 px (the field notes measured ~1.2 s a screenshot there), never upscale.
                "Det.limit_type": "max",
                "Det.limit_side_len": 960,
            })
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return self._engine

    def read(self, data: bytes) -> list[TextLine]:
        """The text lines of one picture (JPEG, PNG, HEIC, WebP), upright as the phone showed it."""
        import numpy

        picture = decode_upright(data)
        with self._lock:
            engine = self._load()
            try:
                output = engine(numpy.asarray(picture)[:, :, ::-1])  # RGB -> BGR
            except Exception as err:  # the engine's own errors carry no stable type
                raise PictureUnreadable(f"OCR failed: {type(err).__name__}") from err
        if output.txts is None or output.boxes is None:
            return []
        lines = []
        for text, box, score in zip(output.txts, output.boxes, output.scores):
            xs, ys = [float(point[0]) for point in box], [float(point[1]) for point in box]
            # The detector's quadrilateral runs top-left, top-right, bottom-right, bottom-left:
            # its top edge carries the tilt of a photo taken at an angle.
            run = xs[1] - xs[0]
            slope = (ys[1] - ys[0]) / run if run > 1 else 0.0
            lines.append(TextLine(str(text), (min(xs), min(ys), max(xs), max(ys)), float(score),
                                  slope))
        return lines


def decode_upright(data: bytes):
    """An RGB Pillow image, EXIF orientation applied, long side at most LONG_SIDE."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        import pillow_heif
        pillow_heif.register_heif_opener()
    except ImportError:  # HEIC then fails to decode, as any other unreadable picture
        pass
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (LONG_SIDE, LONG_SIDE))  # JPEG: decode at a reduced scale, fast
            picture = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise PictureUnreadable(f"cannot decode the picture: {type(err).__name__}") from err
    if max(picture.size) > LONG_SIDE:
        picture.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
    return picture
