"""Raw mails and materials on disk: project-chosen names, owner-only permissions, atomic writes."""
from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Protocol

from intake.errors import StorageError
from intake.processes import dead_on_this_host, process_token

_FILE_MODE = 0o600
_TEMPORARIES = "raw/.tmp"  # inside an existing top folder: storage holds raw/ and cases/ only
_LAYOUT_MARKER = "temporaries-here-only"
_DIR_MODE = 0o700


def material_suffix(file_type: str | None) -> str:
    """The file extension for a sniffed picture type."""
    return {"jpeg": "jpg", "heif": "heic"}.get(file_type or "", file_type or "bin")


def material_name(kind: str, file_type: str | None) -> str:
    """The canonical name of an item's file, as the office expects it: 核酸.jpg."""
    return f"{kind}.{material_suffix(file_type)}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def material_path(case_id: int, kind: str, data: bytes, file_type: str | None,
                  digest: str | None = None) -> str:
    """Where an item's file is stored. `digest`: the data's sha256_hex when the caller has it."""
    digest = digest or sha256_hex(data)
    return f"cases/{case_id}/{kind}-{digest[:16]}.{material_suffix(file_type)}"


def _load_syncfs():
    """Linux's syncfs(2): one call makes every file written so far on that filesystem durable,
    several files and their directory entries for the price of about one fsync."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    return function


_SYNCFS = _load_syncfs()

# Makes files written under a root durable: make_durable, or a stand-in that a test watches.
Durable = Callable[[Path, list[Path]], None]


def make_durable(root: Path, written: list[Path]) -> None:
    """After this, the files written (and their names) survive a power cut."""
    try:
        if _SYNCFS is not None:
            descriptor = os.open(root, os.O_RDONLY)
            try:
                if _SYNCFS(descriptor) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, os.strerror(error))
            finally:
                os.close(descriptor)
            return
        for path in written:
            with open(path, "rb+") as stream:
                os.fsync(stream.fileno())
        for folder in {path.parent for path in written}:
            _fsync_dir(folder)
    except OSError as err:
        raise StorageError(f"cannot make files under {root} durable: {err.strerror}") from err


class MaterialStore(Protocol):
    """Where processing puts an item's file: the store itself, or a batch of it."""
    def put_material(self, case_id: int, kind: str, data: bytes, file_type: str | None,
                     digest: str | None = None) -> str: ...


class _Tree:
    """The files under one root: names checked, folders made once, each write whole or absent.
    Shared by the store and its batches (whose writes run on threads)."""

    def __init__(self, root: Path, durable: Durable):
        self.root = root
        self._durable = durable
        self._resolved_root: Path | None = None
        self._folders: set[Path] = set()  # folders known to exist: one stat each, not per file

    @property
    def temporaries(self) -> Path:
        # Half-written files live in one folder of their own (a rename moves them into place), so
        # finding what a killed writer left costs nothing however many files are stored.
        return self.root / _TEMPORARIES

    def absolute(self, relative: str | Path) -> Path:
        # Every name below the root is made here from hashes and ids, and nothing else writes
        # there (0700): refusing "..", "." and absolute paths keeps a path inside without an
        # lstat per component.
        path = PurePosixPath(relative)
        if path.is_absolute() or not path.parts or any(part in {"..", "."} for part in path.parts):
            raise StorageError(f"refusing a path outside storage: {relative}")
        return self._root().joinpath(*path.parts)

    def _root(self) -> Path:
        # Resolving costs an lstat per component; the root, once it exists, resolves the same.
        if self._resolved_root is not None:
            return self._resolved_root
        resolved = self.root.resolve()
        if self.root.is_dir():
            self._resolved_root = resolved
        return resolved

    @staticmethod
    def holds(target: Path, digest: str) -> bool:
        """A file already there is trusted only if it hashes to its name: a power cut before
        the sync can leave a renamed file whose data never reached disk."""
        return target.exists() and sha256_hex(target.read_bytes()) == digest

    @staticmethod
    def holds_material(target: Path, data: bytes) -> bool:
        # Material names carry a hash of the content: the same name and size is the same file.
        return target.exists() and target.stat().st_size == len(data)

    def write(self, target: Path, data: bytes, fsync: bool) -> None:
        """Write to a temporary and rename it into place; `fsync`: the data is synced before it
        takes its name (the folder is the caller's to sync)."""
        try:
            self.mkdir(target.parent)
            self.mkdir(self.temporaries)
            handle, temporary = tempfile.mkstemp(dir=self.temporaries, prefix=_temporary_prefix())
            try:
                os.fchmod(handle, _FILE_MODE)
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
                    stream.flush()
                    if fsync:
                        os.fsync(stream.fileno())
                try:
                    os.replace(temporary, target)
                except FileNotFoundError:  # its folder was removed meanwhile (purge): again
                    self._folders.clear()
                    self.mkdir(target.parent)
                    os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as err:
            raise StorageError(f"cannot write under {self.root}: {err.strerror}") from err

    def sync_folder(self, folder: Path) -> None:
        try:
            _fsync_dir(folder)
        except OSError as err:
            raise StorageError(f"cannot write under {self.root}: {err.strerror}") from err

    def make_durable(self, written: list[Path]) -> None:
        self._durable(self.root, written)

    def mkdir(self, path: Path) -> None:
        if path in self._folders:
            return
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for folder in reversed(missing):
            folder.mkdir(mode=_DIR_MODE, exist_ok=True)
            os.chmod(folder, _DIR_MODE)
        self._folders.update(missing)
        self._folders.add(path)


class Batch:
    """The files of one transaction: each written on a thread of the store's (writing a file lets
    the caller's Python go on), all made durable together by `sync()` before the caller commits
    the rows that name them."""

    def __init__(self, tree: _Tree, writer: ThreadPoolExecutor):
        self._tree = tree
        self._writer = writer
        self._writes: list[Future] = []
        self._unsynced: list[Path] = []  # written (or found there) and not yet synced

    def put_raw_mail(self, data: bytes, digest: str | None = None, staged: bool = False) -> str:
        """The raw mail's name; it is still being written. `staged`: this process wrote these
        bytes there already (FileStore.stage_raw_mail), not yet durably."""
        digest = digest or sha256_hex(data)
        relative = _raw_mail_path(digest)
        target = self._tree.absolute(relative)
        if staged:
            self._unsynced.append(target)
        else:
            self._writes.append(self._writer.submit(self._write_raw_mail, target, data, digest))
        return relative.as_posix()

    def _write_raw_mail(self, target: Path, data: bytes, digest: str) -> None:
        if not self._tree.holds(target, digest):
            self._tree.write(target, data, fsync=False)
        self._unsynced.append(target)

    def put_material(self, case_id: int, kind: str, data: bytes, file_type: str | None,
                     digest: str | None = None) -> str:
        relative = material_path(case_id, kind, data, file_type, digest)
        target = self._tree.absolute(relative)  # a bad name fails the caller at once
        self._writes.append(self._writer.submit(self._write_material, target, data))
        return relative

    def _write_material(self, target: Path, data: bytes) -> None:
        if not self._tree.holds_material(target, data):
            self._tree.write(target, data, fsync=False)
            self._unsynced.append(target)

    def wait(self) -> list[BaseException]:
        """Wait for the writes under way; the failures among them."""
        writes, self._writes = self._writes, []
        wait(writes)
        return [failure for failure in (write.exception() for write in writes)
                if failure is not None]

    def sync(self) -> None:
        """Make every file of the batch durable (after `wait`)."""
        unsynced, self._unsynced = self._unsynced, []
        if unsynced:
            self._tree.make_durable(unsynced)


class FileStore:
    """Every path here is built from hashes and ids; nothing a student sent becomes a path.

    Durability costs one filesystem sync per batch: the raw mails of a chunk, and the materials
    the mails processed together yield, are written inside `batch()`, which syncs them all at once
    before the caller commits the rows that name them.

    `durable`: what makes written files durable (make_durable; a test can watch it).
    """

    def __init__(self, root: Path, durable: Durable = make_durable):
        self.root = root
        self._tree = _Tree(root, durable)
        self._writer: ThreadPoolExecutor | None = None

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """A Batch made durable when the block ends without an error (an error means the
        caller's transaction rolls back anyway). A write that failed raises its StorageError
        when the block ends, before anything names the file."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="store-write")
        batch = Batch(self._tree, self._writer)
        try:
            yield batch
        finally:
            failures = batch.wait()  # no write outlives its batch
        if failures:
            raise failures[0]
        batch.sync()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def ensure(self) -> None:
        self._tree.mkdir(self.root)
        self._tree.mkdir(self._tree.temporaries)

    def put_raw_mail(self, data: bytes, digest: str | None = None, staged: bool = False) -> str:
        """Store a raw mail durably; its name. `digest`: the data's sha256_hex when the caller
        has it already; `staged`: this process wrote these bytes there already
        (stage_raw_mail), not yet durably."""
        digest = digest or sha256_hex(data)
        relative = _raw_mail_path(digest)
        target = self._tree.absolute(relative)
        if staged or self._tree.holds(target, digest):
            self._tree.make_durable([target])
        elif _SYNCFS is not None:
            # Rename first and sync once: a half-synced file is recognised by its hash.
            self._tree.write(target, data, fsync=False)
            self._tree.make_durable([target])
        else:
            self._tree.write(target, data, fsync=True)
            self._tree.sync_folder(target.parent)
        return relative.as_posix()

    def stage_raw_mail(self, data: bytes, digest: str) -> Path:
        """Write a raw mail now, not yet durable, so that other processes can read it (the check
        processes) before it is recorded; putting it later with `staged=True` makes it durable
        before its commit. Its absolute path."""
        target = self._tree.absolute(_raw_mail_path(digest))
        if not self._tree.holds(target, digest):
            self._tree.write(target, data, fsync=False)
        return target

    def put_material(self, case_id: int, kind: str, data: bytes, file_type: str | None,
                     digest: str | None = None) -> str:
        relative = material_path(case_id, kind, data, file_type, digest)
        target = self._tree.absolute(relative)
        if not self._tree.holds_material(target, data):
            self._tree.write(target, data, fsync=True)
            self._tree.sync_folder(target.parent)
        return relative

    def read(self, relative: str) -> bytes:
        try:
            return self._tree.absolute(relative).read_bytes()
        except OSError as err:
            raise StorageError(f"stored file {relative} cannot be read: {err.strerror}") from err

    def delete(self, relative: str) -> int:
        try:
            self._tree.absolute(relative).unlink()
            return 1
        except FileNotFoundError:
            return 0

    def sweep_temporaries(self, older_than_epoch: float) -> int:
        """Remove half-written files that killed processes left behind; none is ever referenced.

        A temporary of a process on this host that is gone goes at once; others (another worker
        host sharing this storage) only when older than `older_than_epoch`.
        """
        removed = 0
        if not self.root.exists():
            return 0
        temporaries = self._tree.temporaries
        layout_marker = temporaries / _LAYOUT_MARKER
        if layout_marker.exists():
            leftovers = temporaries.glob(".tmp-*")
        else:
            # Versions before the temporaries' own folder wrote them next to their targets: one
            # walk over everything after the upgrade, then never again.
            leftovers = self.root.rglob(".tmp-*")
        for leftover in list(leftovers):
            _, writer_host, pid, _ = (leftover.name.split("~") + ["", "", "", ""])[:4]
            dead_here = dead_on_this_host(f"{writer_host}~{pid}")
            try:
                if dead_here or leftover.stat().st_mtime < older_than_epoch:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if not layout_marker.exists():
            self._tree.mkdir(temporaries)
            layout_marker.touch(mode=_FILE_MODE)
        return removed


def _raw_mail_path(digest: str) -> Path:
    return Path("raw") / digest[:2] / f"{digest}.eml"


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _temporary_prefix() -> str:
    return f".tmp-~{process_token()}~"
