"""A scanned form sent as PDF (扫描全能王 and the like: one page, a JPEG inside) as the photo
it stands for: its first page rendered with PDFium, so that it is read, checked and forwarded
like any other picture."""
from __future__ import annotations

import io

# About 150 dpi: an A4 page becomes roughly 1240 x 1750 pixels, as a phone photo of it would be.
_SCALE = 150 / 72


def first_page_jpeg(data: bytes) -> bytes | None:
    """The first page as a JPEG; None when PDFium cannot open or render it."""
    import pypdfium2  # here: only a mail with a PDF form pays for loading it

    try:
        document = pypdfium2.PdfDocument(data)
        try:
            if len(document) == 0:
                return None
            page = document[0]
            image = page.render(scale=_SCALE).to_pil().convert("RGB")
        finally:
            document.close()
    except pypdfium2.PdfiumError:
        return None
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()
