"""File-system helpers: the one atomic write, and file hashes for provenance."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..validate import InputError
from .common import PathLike
from .tables import _check_file


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _atomic_write(path: PathLike, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: folder {parent} does not exist; create it first")
    mode = (path.stat().st_mode & 0o777) if path.exists() else 0o644
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=parent
        )
    except OSError as exc:
        raise InputError(f"cannot write to {parent}: {exc.strerror}") from exc
    os.close(descriptor)
    temporary = Path(temporary)
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    _fsync_directory(parent)
    return path


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write bytes so that ``path`` holds either the old or the complete new content.

    The data go to a temporary file in the same directory, which is flushed to disk and then
    renamed over ``path``; the temporary file is removed on failure.

    Returns
    -------
    The path written.
    """
    return _atomic_write(path, lambda temporary: temporary.write_bytes(data))


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    return _atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes (for provenance)."""
    path = Path(path)
    _check_file(path)
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
