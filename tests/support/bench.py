"""Benchmark: how long one `intake poll` takes over N realistic submissions (about 650 KB each:
five phone-photo-sized JPEGs in a zip), on a throwaway Dovecot and SMTP capture on loopback.

    python -m tests.support.bench [N] [sqlite|postgresql]
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from tests.support import builders as b
from tests.support.dovecot import PASSWORD, Dovecot
from tests.support.smtp_capture import SmtpCapture

REPO = Path(__file__).resolve().parents[2]


def _photo(seed: int) -> bytes:
    # Smooth-ish noise: a phone screenshot of about 100 KB, like the field notes' 650 KB mails.
    noise = Image.frombytes("RGB", (160, 120), os.urandom(160 * 120 * 3)).resize((1080, 810))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def main(count: int, database: str) -> int:
    root = Path(tempfile.mkdtemp(prefix="jkb-bench-"))
    root.chmod(0o755)
    dovecot = Dovecot.start(root / "dovecot")
    smtp = SmtpCapture().start()
    try:
        photos = [_photo(i) for i in range(5)]
        files = {f"{item}.jpg": photos[i] for i, item in enumerate(b.ITEMS)}
        archive = b.windows_gbk_zip(files)
        started = time.monotonic()
        for index in range(count):
            dovecot.deliver("bench", b.mail(sender=f"s{index}@example.test",
                                            subject=f"学生{index}+物理系+健康宝弹窗",
                                            attachments=[("材料.zip", archive)]))
        seeded = time.monotonic() - started
        if database == "postgresql":
            url = os.environ.get("INTAKE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
            schema = f"bench_{os.getpid()}"
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "test", "-qc",
                            f"CREATE SCHEMA {schema}"], check=True)
            url += f"?options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:///{root}/intake.db"
        config = root / "intake.toml"
        config.write_text(f"""
[mailbox]
host = "127.0.0.1"
port = {dovecot.imap_port}
security = "none"
username = "bench"
password_env = "BENCH_PASSWORD"
[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
sender = "bench@example.test"
[database]
url = "{url}"
[storage]
path = "{root}/storage"
[replies]
templates = "{REPO / 'config' / 'templates'}"
[logging]
level = "WARNING"
""")
        env = {**os.environ, "BENCH_PASSWORD": PASSWORD}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "intake", "--config", str(config), "poll"],
                                env=env, cwd=REPO, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return result.returncode
        size = len(archive) * 4 / 3 / 1024
        print(f"{count} submissions of about {size:.0f} KB seeded in {seeded:.1f} s")
        print(f"intake poll on {database}: {elapsed:.1f} s, {count / elapsed:.1f} mails/s, "
              f"{len(smtp.messages)} replies sent")
        print(result.stdout.strip())
        if database == "postgresql":
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "test", "-qc",
                            f"DROP SCHEMA {schema} CASCADE"], check=True)
        return 0
    finally:
        smtp.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300,
                  sys.argv[2] if len(sys.argv) > 2 else "sqlite"))
