"""Benchmark: how long one `intake poll` takes over N realistic submissions (about 650 KB each:
five phone-photo-sized JPEGs in a zip), on a throwaway Dovecot and SMTP capture on loopback.

    python -m tests.support.bench [N] [sqlite|postgresql]
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from tests.support import builders as b
from tests.support.dovecot import PASSWORD
from tests.support.servers import drop_postgres_schema, postgres_schema, throwaway_servers, write_config

REPO = Path(__file__).resolve().parents[2]


def _photo(seed: int) -> bytes:
    # Smooth-ish noise: a phone screenshot of about 100 KB, like the field notes' 650 KB mails.
    noise = Image.frombytes("RGB", (160, 120), os.urandom(160 * 120 * 3)).resize((1080, 810))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def main(count: int, database: str) -> int:
    with throwaway_servers("jkb-bench-") as (root, dovecot, smtp):
        photos = [_photo(i) for i in range(5)]
        archive = b.windows_gbk_zip({f"{item}.jpg": photos[i] for i, item in enumerate(b.ITEMS)})
        started = time.monotonic()
        for index in range(count):
            dovecot.deliver("bench", b.mail(sender=f"s{index}@example.test",
                                            subject=f"学生{index}+物理系+健康宝弹窗",
                                            attachments=[("材料.zip", archive)]))
        seeded = time.monotonic() - started
        url, schema = postgres_schema() if database == "postgresql" else (
            f"sqlite:///{root}/intake.db", None)
        config = write_config(root / "intake.toml", dovecot=dovecot, smtp=smtp, user="bench",
                              db_url=url, storage=root / "storage", folders=("INBOX",),
                              extra='[logging]\nlevel = "WARNING"\n')
        try:
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-m", "intake", "--config", str(config), "poll"], cwd=REPO,
                env={**os.environ, "INTAKE_TEST_IMAP_PASSWORD": PASSWORD}, capture_output=True,
                text=True)
            elapsed = time.monotonic() - started
        finally:
            if schema:
                drop_postgres_schema(schema)
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return result.returncode
        print(f"{count} submissions of about {len(archive) * 4 / 3 / 1024:.0f} KB seeded in {seeded:.1f} s")
        print(f"intake poll on {database}: {elapsed:.1f} s, {count / elapsed:.1f} mails/s, "
              f"{len(smtp.messages)} replies sent")
        print(result.stdout.strip())
        return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300,
                  sys.argv[2] if len(sys.argv) > 2 else "sqlite"))
