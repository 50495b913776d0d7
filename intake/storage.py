"""Raw mails and materials on disk: project-chosen names, owner-only permissions, atomic writes."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from intake.errors import StorageError
from intake.processes import dead_on_this_host, process_token

_FILE_MODE = 0o600
_DIR_MODE = 0o700


def material_suffix(file_type: str | None) -> str:
    """The file extension for a sniffed picture type."""
    return {"jpeg": "jpg", "heif": "heic"}.get(file_type or "", file_type or "bin")


def material_name(kind: str, file_type: str | None) -> str:
    """The canonical name of an item's file, as the office expects it: 核酸.jpg."""
    return f"{kind}.{material_suffix(file_type)}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileStore:
    """Every path here is built from hashes and ids; nothing a student sent becomes a path."""

    def __init__(self, root: Path):
        self.root = root

    def ensure(self) -> None:
        self._mkdir(self.root)

    def put_raw_mail(self, data: bytes) -> str:
        digest = sha256_hex(data)
        return self._put(Path("raw") / digest[:2] / f"{digest}.eml", data)

    def put_material(self, case_id: int, kind: str, data: bytes, file_type: str | None) -> str:
        return self._put(Path(self.material_path(case_id, kind, data, file_type)), data)

    @staticmethod
    def material_path(case_id: int, kind: str, data: bytes, file_type: str | None) -> str:
        digest = sha256_hex(data)
        return f"cases/{case_id}/{kind}-{digest[:16]}.{material_suffix(file_type)}"

    def read(self, relative: str) -> bytes:
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
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError(f"refusing a path outside storage: {relative}")
        return path

    def _put(self, relative: Path, data: bytes) -> str:
        """Write once: an existing file of the same name has the same content (names hash it)."""
        target = self._absolute(relative)
        if target.exists() and target.stat().st_size == len(data):
            return relative.as_posix()
        self._mkdir(target.parent)
        try:
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=_temporary_prefix())
            try:
                os.fchmod(handle, _FILE_MODE)
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._fsync_dir(target.parent)
        except OSError as err:
            raise StorageError(f"cannot write under {self.root}: {err.strerror}") from err
        return relative.as_posix()

    def _mkdir(self, path: Path) -> None:
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for folder in reversed(missing):
            folder.mkdir(mode=_DIR_MODE, exist_ok=True)
            os.chmod(folder, _DIR_MODE)

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
        for leftover in self.root.rglob(".tmp-*"):
            _, writer_host, pid, _ = (leftover.name.split("~") + ["", "", "", ""])[:4]
            dead_here = dead_on_this_host(f"{writer_host}~{pid}")
            try:
                if dead_here or leftover.stat().st_mtime < older_than_epoch:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _temporary_prefix() -> str:
    return f".tmp-~{process_token()}~"
