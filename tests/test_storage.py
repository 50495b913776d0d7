"""Stored files: written whole or not at all, private, named by the project."""
from __future__ import annotations

import os
import shutil
import stat
import time

import pytest

from intake.errors import StorageError
from intake.store.files import FileStore, sha256_hex


def test_an_interrupted_write_leaves_nothing_a_later_run_would_trust(tmp_path, monkeypatch):
    store = FileStore(tmp_path / "storage")
    store.ensure()

    def power_cut(*_):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", power_cut)
        with pytest.raises(StorageError):
            store.put_material(1, "核酸", b"\xff\xd8\xff" + b"x" * 1000, "jpeg")
    assert [p for p in (tmp_path / "storage").rglob("*") if p.is_file()] == []
    path = store.put_material(1, "核酸", b"\xff\xd8\xff" + b"x" * 1000, "jpeg")
    assert store.read(path).endswith(b"x" * 1000)
    assert stat.S_IMODE((tmp_path / "storage" / path).stat().st_mode) == 0o600


def test_temporaries_of_dead_writers_are_swept(tmp_path):
    store = FileStore(tmp_path / "storage")
    store.ensure()
    folder = tmp_path / "storage" / "raw" / ".tmp"
    folder.mkdir(parents=True, exist_ok=True)
    dead = folder / f".tmp-~{os.uname().nodename}~999999~x"
    alive = folder / f".tmp-~{os.uname().nodename}~{os.getpid()}~y"
    elsewhere = folder / ".tmp-~otherhost~1~z"
    for leftover in (dead, alive, elsewhere):
        leftover.write_bytes(b"half")
    assert store.sweep_temporaries(older_than_epoch=time.time() - 3600) == 1
    assert not dead.exists() and alive.exists() and elsewhere.exists()
    assert store.sweep_temporaries(older_than_epoch=time.time() + 10) == 2


def test_paths_never_leave_storage(tmp_path):
    store = FileStore(tmp_path / "storage")
    with pytest.raises(StorageError):
        store.read("../../etc/passwd")
    for escape in ("/etc/passwd", "cases/../../outside", "./raw/x", ""):
        with pytest.raises(StorageError):
            store.read(escape)
    with pytest.raises(StorageError):
        store.delete("raw/../../x")
    assert not (tmp_path / "x").exists()


def test_a_folder_removed_under_the_store_is_made_again(tmp_path):
    # purge removes a case's folder; the same store writing there again later must not fail.
    store = FileStore(tmp_path / "storage")
    store.ensure()
    first = store.put_material(7, "核酸", b"one", "jpeg")
    shutil.rmtree(tmp_path / "storage" / "cases" / "7")
    second = store.put_material(7, "核酸", b"two", "jpeg")
    assert store.read(second) == b"two" and first != second
    assert oct((tmp_path / "storage" / "cases" / "7").stat().st_mode & 0o777) == "0o700"


def test_a_staged_raw_mail_is_readable_at_once_and_synced_by_the_batch_that_records_it(tmp_path):
    synced: list[list] = []
    store = FileStore(tmp_path / "storage", durable=lambda root, paths: synced.append(list(paths)))
    store.ensure()
    raw = b"From: a@example.test\r\n\r\nhello\r\n"
    digest = sha256_hex(raw)
    path = store.stage_raw_mail(raw, digest)
    assert path.read_bytes() == raw and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert synced == []  # not yet: the check processes only need to read it
    modified = path.stat().st_mtime_ns
    with store.batch() as batch:
        relative = batch.put_raw_mail(raw, digest, staged=True)
    assert (store.root / relative) == path and path.stat().st_mtime_ns == modified
    assert synced == [[path]]  # made durable before the caller commits the row naming it
    # A file there that this process did not stage is trusted only if it hashes to its name.
    path.write_bytes(b"garbage after a power cut")
    with store.batch() as batch:
        batch.put_raw_mail(raw, digest)
    assert path.read_bytes() == raw


def test_a_raw_mail_not_staged_by_this_chunk_is_checked_again_like_any_file(tmp_path):
    # A mail staged by an earlier chunk (met before, or left for the next poll) is put again
    # without `staged`: the file there is checked by its hash.
    store = FileStore(tmp_path / "storage")
    store.ensure()
    raw = b"From: a@example.test\r\n\r\nhello again\r\n"
    digest = sha256_hex(raw)
    path = store.stage_raw_mail(raw, digest)
    path.write_bytes(b"torn")
    with store.batch() as batch:
        batch.put_raw_mail(raw, digest)
    assert path.read_bytes() == raw
    path.write_bytes(b"torn again")
    assert store.read(store.put_raw_mail(raw, digest)) == raw
