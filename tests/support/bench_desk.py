"""Benchmark of the staff desk: N submissions delivered to a throwaway Dovecot, recorded by the
product's own `intake poll`, then every desk page timed in-process (server time: the Flask app
answering, without a network or a browser).

    python -m tests.support.bench_desk [N] [sqlite|postgresql] [--read] [--repeat R]
                                       [--keep DIR | --reuse DIR]

N defaults to 10,000 (filling takes a while: each submission is a real mail with five
pictures; give a smaller N for a quick look). `--read` turns picture reading on (OCR: very slow
to fill, but the queue then ranks by what was read). INTAKE_BENCH_PROFILE=FILE keeps a cProfile
of one /cases. Each page is asked once to warm up, then R
times (5 by default); the median and the slowest are printed, in milliseconds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from intake.settings import load_settings
from tests.support import builders as b
from tests.support.bench import _deliver_many
from tests.support.dovecot import PASSWORD
from tests.support.servers import drop_postgres_schema, postgres_schema, throwaway_servers, write_config

REPO = Path(__file__).resolve().parents[2]
DEPARTMENTS = ("物理学院", "化学学院", "数学科学学院", "生命科学学院", "信息科学技术学院", "法学院",
               "经济学院", "历史学系", "哲学系", "外国语学院")
PASSWORD_STAFF = "bench password long enough"


def _submission(index: int) -> bytes:
    # Every tenth student forgets the 核酸 picture: the queue holds both kinds.
    skip = ("核酸",) if index % 10 == 3 else ()
    pictures = {f"{item}.jpg": b.picture(color=(index % 251, (index // 251) % 251, i * 40))
                for i, item in enumerate(b.ITEMS) if item not in skip}
    return b.mail(sender=f"s{index}@example.test",
                  subject=f"学生{index}+{DEPARTMENTS[index % len(DEPARTMENTS)]}+健康宝弹窗",
                  attachments=[("材料.zip", b.windows_gbk_zip(pictures))])


def _cli(config: Path, *args: str, stdin: str | None = None) -> None:
    env = {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": PASSWORD}
    subprocess.run([sys.executable, "-m", "intake", "--config", str(config), *args], cwd=REPO,
                   env=env, input=stdin, text=True, check=True, capture_output=True)


def _timed(client, url: str, repeat: int) -> tuple[float, float, int]:
    client.get(url)
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(seconds) * 1000, max(seconds) * 1000, len(response.data)


def _signed_in(app, username: str):
    import re
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    answer = client.post("/login", data={"username": username, "password": PASSWORD_STAFF,
                                         "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=10_000)
    parser.add_argument("database", nargs="?", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--read", action="store_true", help="read the pictures (OCR) while polling")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the filled database, files and config in "
                                                   "this folder (SQLite), to time again with --reuse")
    parser.add_argument("--reuse", type=Path, help="time the pages of a folder kept by --keep")
    args = parser.parse_args(argv)
    if args.reuse:
        _time_pages(args.reuse / "desk.toml", args)
        return 0
    schema = None
    with throwaway_servers("jkb-bench-desk-") as (root, dovecot, smtp):
        try:
            if args.database == "postgresql":
                url, schema = postgres_schema()
            else:
                kept = args.keep or root
                kept.mkdir(parents=True, exist_ok=True)
                url = f"sqlite:///{kept}/desk.db"
            kept = args.keep or root
            config = write_config(kept / "desk.toml", dovecot=dovecot, smtp=smtp, user="desk",
                                  db_url=url, storage=kept / "storage", folders=("INBOX",),
                                  extra='[logging]\nlevel = "WARNING"\n',
                                  read_pictures=args.read)
            started = time.monotonic()
            for first in range(0, args.count, 500):
                _deliver_many(dovecot, "desk", (_submission(index) for index in
                                                range(first, min(first + 500, args.count))))
            delivered = time.monotonic() - started
            started = time.monotonic()
            _cli(config, "poll")
            polled = time.monotonic() - started
            print(f"{args.count} submissions delivered in {delivered:.0f} s, recorded by "
                  f"`intake poll` in {polled:.0f} s ({args.database}, pictures "
                  f"{'read' if args.read else 'not read'})")
            _cli(config, "staff", "add", "admin", "--role", "admin", stdin=PASSWORD_STAFF + "\n")
            _cli(config, "staff", "add", "chem", "--role", "reviewer", "--department", "化学学院",
                 stdin=PASSWORD_STAFF + "\n")
            _time_pages(config, args)
        finally:
            if schema:
                drop_postgres_schema(schema)
    return 0


def _time_pages(config: Path, args) -> None:
    from intake.app import build_desk

    app = build_desk(load_settings(config))
    try:
        _report(app, args)
    finally:
        app.extensions["desk"].engine.dispose()


def _report(app, args) -> None:
    admin, chem = _signed_in(app, "admin"), _signed_in(app, "chem")
    with app.extensions["desk"].sessions() as session:
        from sqlalchemy import func, select

        from intake.models import Case
        count = session.scalar(select(func.count()).select_from(Case))
    last_page = max(1, -(-count // 50))
    middle = count // 2
    pages = [("admin", admin, "/cases"), ("admin", admin, f"/cases?page={last_page}"),
             ("admin", admin, "/cases?status=complete&q=学生1"), ("admin", admin, f"/cases/{middle}"),
             ("admin", admin, f"/cases/{middle}/pictures/核酸"), ("admin", admin, "/status"),
             ("admin", admin, "/digests"), ("admin", admin, "/digests/preview"),
             ("admin", admin, "/admin/accounts"), ("chem", chem, "/cases"),
             ("chem", chem, "/digests/preview")]
    if os.environ.get("INTAKE_BENCH_PROFILE"):  # where /cases spends its time: a cProfile file
        import cProfile
        admin.get("/cases")
        cProfile.runctx("admin.get('/cases')", globals(), {"admin": admin},
                        os.environ["INTAKE_BENCH_PROFILE"])
    print(f"{'page':<42}{'who':<7}{'median ms':>10}{'max ms':>9}{'KB':>7}")
    for who, client, url in pages:
        median, slowest, size = _timed(client, url, args.repeat)
        print(f"{url:<42}{who:<7}{median:>10.0f}{slowest:>9.0f}{size / 1024:>7.0f}")


if __name__ == "__main__":
    raise SystemExit(main())
