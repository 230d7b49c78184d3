"""File-system helpers: the one atomic write, spreadsheet-safe CSV, file hashes for provenance."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..validate import InputError
from .common import PathLike
from .tables import _check_file


def fsync_directory(directory: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk; best effort."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


_stop = threading.Event()


def request_stop() -> None:
    """Ask every later write of this process to stop before it commits (e.g. on SIGTERM).

    A signal handler's exception can be swallowed when it fires inside a finaliser; the
    request stays set, so the next commit point still refuses to publish a result the user
    asked to stop.
    """
    _stop.set()


def raise_if_stop_requested() -> None:
    """Raise :class:`KeyboardInterrupt` once :func:`request_stop` was called."""
    if _stop.is_set():
        raise KeyboardInterrupt


CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet run a cell as a formula."""


def _atomic_write(
    path: PathLike,
    write: Callable[[Path], None],
    *,
    before_replace: Callable[[], None] | None = None,
    mode: int | None = None,
) -> Path:
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: folder {parent} does not exist; create it first")
    if mode is None:
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
        if before_replace is not None:
            before_replace()
        raise_if_stop_requested()
        os.replace(temporary, path)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    fsync_directory(parent)
    return path


def atomic_write_bytes(
    path: PathLike,
    data: bytes,
    *,
    before_replace: Callable[[], None] | None = None,
    mode: int | None = None,
) -> Path:
    """Write bytes so that ``path`` holds either the old or the complete new content.

    The data go to a temporary file in the same directory, which is flushed to disk and then
    renamed over ``path``; the temporary file is removed on failure.

    Parameters
    ----------
    path
        The file to write.
    data
        Its new content.
    before_replace
        Called once the new content is safely on disk, just before it replaces ``path``
        (e.g. to keep the current file as a backup); if it raises, ``path`` is unchanged.
    mode
        Permission bits of the new file; default: those of the file replaced, else 0o644.

    Returns
    -------
    The path written.
    """
    return _atomic_write(
        path,
        lambda temporary: temporary.write_bytes(data),
        before_replace=before_replace,
        mode=mode,
    )


def atomic_write_text(
    path: PathLike,
    text: str,
    *,
    before_replace: Callable[[], None] | None = None,
    mode: int | None = None,
) -> Path:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), before_replace=before_replace, mode=mode)


def neutralise_formula(value: object) -> object:
    """Text a spreadsheet would run as a formula (``= + - @``...) gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame, *, index: bool = True) -> pd.DataFrame:
    """A copy whose text cells, column names and (with ``index``) index are formula-safe.

    Numbers are untouched (a negative number is not a formula); only text is escaped.
    """
    out = frame.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            out.isetitem(position, column.map(neutralise_formula))
    out.columns = out.columns.map(neutralise_formula)
    if index and (out.index.dtype == object or pd.api.types.is_string_dtype(out.index)):
        out.index = out.index.map(neutralise_formula)
    return out


def csv_text(frame: pd.DataFrame, *, index: bool = True) -> str:
    """``frame`` as CSV text that a spreadsheet opens without running any cell."""
    return spreadsheet_safe(frame, index=index).to_csv(index=index)


def atomic_write_csv(path: PathLike, frame: pd.DataFrame, *, index: bool = True) -> Path:
    """Write ``frame`` as spreadsheet-safe CSV (:func:`csv_text`), atomically."""
    return atomic_write_text(path, csv_text(frame, index=index))


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes (for provenance)."""
    path = Path(path)
    _check_file(path)
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
