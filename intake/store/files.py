"""Raw mails and materials on disk: project-chosen names, owner-only permissions, atomic writes."""
from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

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


class FileStore:
    """Every path here is built from hashes and ids; nothing a student sent becomes a path.

    Durability costs one filesystem sync per batch: the raw mails of a chunk, and the materials
    the mails processed together yield, are written inside `batch()`, which syncs them all at once
    before the caller commits the rows that name them.
    """

    def __init__(self, root: Path):
        self.root = root
        self._pending: list[Path] | None = None  # inside batch(): written, not yet synced
        self._writes: list[Future] | None = None  # inside batch(): writes under way
        self._writer: ThreadPoolExecutor | None = None
        self._resolved_root: Path | None = None
        self._folders: set[Path] = set()  # folders known to exist: one stat each, not per file
        self._staged: set[str] = set()  # raw mails this process wrote unsynced (stage_raw_mail)

    @contextmanager
    def batch(self) -> Iterator["FileStore"]:
        """A view of this store whose writes run on threads of their own (writing a file lets
        the caller's Python go on) and are made durable together when the block ends without an
        error (an error means the caller's transaction rolls back anyway). A write that failed
        raises its StorageError when the block ends, before anything names the file."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="store-write")
        view = FileStore(self.root)
        view._pending, view._writes, view._writer = [], [], self._writer
        view._resolved_root, view._folders, view._staged = (self._resolved_root, self._folders,
                                                             self._staged)
        try:
            yield view
        finally:
            failures = view._wait_for_writes()  # no write outlives its batch
        if failures:
            raise failures[0]
        if view._pending:
            self._make_durable(view._pending)

    def _wait_for_writes(self) -> list[BaseException]:
        writes, self._writes = self._writes or [], []
        wait(writes)
        return [write.exception() for write in writes if write.exception() is not None]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def ensure(self) -> None:
        self._mkdir(self.root)
        self._mkdir(self._temporaries)

    @property
    def _temporaries(self) -> Path:
        # Half-written files live in one folder of their own (a rename moves them into place), so
        # finding what a killed writer left costs nothing however many files are stored.
        return self.root / _TEMPORARIES

    def put_raw_mail(self, data: bytes, digest: str | None = None) -> str:
        """`digest`: the data's sha256_hex when the caller has it already."""
        digest = digest or sha256_hex(data)
        return self._put(_raw_mail_path(digest), data, sync="filesystem", digest=digest)

    def stage_raw_mail(self, data: bytes, digest: str) -> Path:
        """Write a raw mail now, not yet durable, so that other processes can read it (the check
        processes) before it is recorded; the batch that puts it later makes it durable before
        its commit. Its absolute path."""
        relative = _raw_mail_path(digest)
        self._write(relative, data, "none", digest)
        self._staged.add(digest)
        return self._absolute(relative)

    def forget_staged(self, digests) -> None:
        """These staged mails are recorded, or will not be by this chunk (recorded before, or
        left for the next poll): a later put of the same bytes checks the file like any other."""
        self._staged.difference_update(digests)

    def put_material(self, case_id: int, kind: str, data: bytes, file_type: str | None,
                     digest: str | None = None) -> str:
        return self._put(Path(self.material_path(case_id, kind, data, file_type, digest)), data)

    @staticmethod
    def material_path(case_id: int, kind: str, data: bytes, file_type: str | None,
                      digest: str | None = None) -> str:
        """`digest`: the data's sha256_hex when the caller has it already."""
        digest = digest or sha256_hex(data)
        return f"cases/{case_id}/{kind}-{digest[:16]}.{material_suffix(file_type)}"

    def read(self, relative: str) -> bytes:
        if self._writes:
            for failure in self._wait_for_writes():
                raise failure
        try:
            return self._absolute(relative).read_bytes()
        except OSError as err:
            raise StorageError(f"stored file {relative} cannot be read: {err.strerror}") from err

    def delete(self, relative: str) -> int:
        try:
            self._absolute(relative).unlink()
            return 1
        except FileNotFoundError:
            return 0

    def _absolute(self, relative: str | Path) -> Path:
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

    def _put(self, relative: Path, data: bytes, sync: str = "file", digest: str | None = None) -> str:
        """The file's name under the root; inside batch() it is still being written."""
        if self._writes is not None:
            self._absolute(relative)  # a bad name fails the caller at once
            self._writes.append(self._writer.submit(self._write, relative, data, sync, digest))
            return relative.as_posix()
        return self._write(relative, data, sync, digest)

    def _write(self, relative: Path, data: bytes, sync: str, digest: str | None) -> str:
        """Write once: an existing file of the same name has the same content (names hash it).

        sync "file": fsync the file before it takes its name, then its folder (the classic way);
        "filesystem": rename first and sync once (a half-synced file is recognised by its hash);
        "none": no sync (stage_raw_mail: a batch syncs it later);
        inside batch(): no sync here, the batch syncs everything at its end.
        `digest`: the content's sha256_hex, which names the file (raw mails).
        """
        target = self._absolute(relative)
        deferred = self._pending is not None
        if digest is not None:
            # A file already there is trusted only if it hashes to its name: a power cut before
            # the sync can leave a renamed file whose data never reached disk. One this process
            # staged is known to hold its data; it may still be on its way to the disk.
            if digest in self._staged or (target.exists()
                                          and sha256_hex(target.read_bytes()) == digest):
                self._staged.discard(digest)
                if deferred:
                    self._pending.append(target)
                elif sync != "none":
                    self._make_durable([target])
                return relative.as_posix()
        elif sync != "filesystem" and target.exists() and target.stat().st_size == len(data):
            return relative.as_posix()
        if deferred or (sync == "filesystem" and _SYNCFS is not None):
            sync = "later"
        self._mkdir(target.parent)
        self._mkdir(self._temporaries)
        try:
            handle, temporary = tempfile.mkstemp(dir=self._temporaries, prefix=_temporary_prefix())
            try:
                os.fchmod(handle, _FILE_MODE)
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
                    stream.flush()
                    if sync not in {"later", "none"}:
                        os.fsync(stream.fileno())
                try:
                    os.replace(temporary, target)
                except FileNotFoundError:  # its folder was removed meanwhile (purge): again
                    self._folders.clear()
                    self._mkdir(target.parent)
                    os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            if deferred:
                self._pending.append(target)
            elif sync == "later":
                self._make_durable([target])
            elif sync != "none":
                self._fsync_dir(target.parent)
        except OSError as err:
            raise StorageError(f"cannot write under {self.root}: {err.strerror}") from err
        return relative.as_posix()

    def _make_durable(self, written: list[Path]) -> None:
        try:
            if _SYNCFS is not None:
                descriptor = os.open(self.root, os.O_RDONLY)
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
                self._fsync_dir(folder)
        except OSError as err:
            raise StorageError(f"cannot make files under {self.root} durable: {err.strerror}") from err

    def _mkdir(self, path: Path) -> None:
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

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def sweep_temporaries(self, older_than_epoch: float) -> int:
        """Remove half-written files that killed processes left behind; none is ever referenced.

        A temporary of a process on this host that is gone goes at once; others (another worker
        host sharing this storage) only when older than `older_than_epoch`.
        """
        removed = 0
        if not self.root.exists():
            return 0
        layout_marker = self._temporaries / _LAYOUT_MARKER
        if layout_marker.exists():
            leftovers = self._temporaries.glob(".tmp-*")
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
            self._mkdir(self._temporaries)
            layout_marker.touch(mode=_FILE_MODE)
        return removed


def _raw_mail_path(digest: str) -> Path:
    return Path("raw") / digest[:2] / f"{digest}.eml"


def _temporary_prefix() -> str:
    return f".tmp-~{process_token()}~"
