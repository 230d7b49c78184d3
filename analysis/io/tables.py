"""Reading text, Excel and Parquet tables safely: format checks, decoding, delimiter sniffing, decompression."""

from __future__ import annotations

import bz2
import codecs
import contextvars
import csv
import gzip
import io
import lzma
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..validate import InputError
from .common import MISSING_TOKENS, _describe, _Notes


def _split_suffix(path: Path) -> tuple[str, str]:
    suffixes = [s.lower() for s in path.suffixes]
    compression = (
        suffixes[-1] if suffixes and suffixes[-1] in {".gz", ".bz2", ".xz", ".zip"} else ""
    )
    rest = suffixes[:-1] if compression else suffixes
    return (rest[-1] if rest else ""), compression


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if not path.is_file():
        raise InputError(f"{path}: is a directory, expected a file")


TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".tab", ".dat", ""})
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})


def _check_format(path: Path, *, h5ad: bool = False) -> None:
    """Refuse a file type the readers do not know, before guessing at its content."""
    fmt, compression = _split_suffix(path)
    known = set(TEXT_SUFFIXES)
    if not compression:
        known |= EXCEL_SUFFIXES | PARQUET_SUFFIXES | ({".h5ad"} if h5ad else set())
    if fmt not in known:
        formats = [
            "a CSV, TSV or TXT table (optionally .gz, .bz2, .xz or .zip)",
            ".xlsx",
            ".parquet",
        ]
        formats += [".h5ad"] if h5ad else []
        raise InputError(
            f"{path.name}: unknown file type {fmt + compression!r}; give "
            f"{', '.join(formats[:-1])} or {formats[-1]} (rename the file if it is one of these)"
        )


_FILE_SIGNATURES = (
    (re.compile(rb"\x1f\x8b"), "gzip-compressed", "add .gz to its name"),
    (re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)"), "bzip2-compressed", "add .bz2 to its name"),
    (re.compile(rb"\xfd7zXZ\x00"), "xz-compressed", "add .xz to its name"),
    (re.compile(rb"PK\x03\x04"), "a zip archive (an Excel workbook?)", "name it .xlsx or add .zip"),
    (re.compile(rb"\x89HDF\r\n\x1a\n"), "an HDF5 / h5ad file", "name it .h5ad"),
    (re.compile(rb"PAR1.*PAR1\Z", re.DOTALL), "a Parquet file", "name it .parquet"),
    (re.compile(rb"\x89PNG\r\n"), "a PNG image", "give the table instead"),
    (re.compile(rb"\xff\xd8\xff"), "a JPEG image", "give the table instead"),
    (re.compile(rb"%PDF-"), "a PDF document", "give the table instead"),
)


def _binary_kind(raw: bytes) -> tuple[str, str] | None:
    """What a file of these bytes is and what to do, when it is a known binary format."""
    for signature, kind, remedy in _FILE_SIGNATURES:
        if signature.match(raw):
            return kind, remedy
    return None


def _decompress(raw: bytes, compression: str, name: str) -> bytes:
    try:
        if compression == ".gz":
            return gzip.decompress(raw)
        if compression == ".bz2":
            return bz2.decompress(raw)
        if compression == ".xz":
            return lzma.decompress(raw)
        if compression == ".zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = [
                    m for m in archive.namelist() if not m.endswith("/") and "__MACOSX" not in m
                ]
                if len(members) != 1:
                    raise InputError(
                        f"{name}: zip archive holds {len(members)} files, expected exactly one"
                    )
                return archive.read(members[0])
    except InputError:
        raise
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, ValueError) as exc:
        raise InputError(f"{name}: not a valid {compression} file ({_describe(exc)})") from exc
    return raw


def _decode(raw: bytes, notes: _Notes) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"{notes.name}: broken UTF-16 text ({_describe(exc)})") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
        encoding = "Windows-1252"
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        encoding = "Latin-1"
    notes.warn(f"not UTF-8; read as {encoding} (save as UTF-8 to avoid garbled accents)")
    return text


def _field_counts(lines: list[str], delimiter: str) -> list[int]:
    try:
        return [len(row) for row in csv.reader(lines, delimiter=delimiter)]
    except csv.Error:
        return [1] * len(lines)


def _sniff_delimiter(text: str, fmt: str) -> tuple[str, bool]:
    """Pick the delimiter; also say whether the header lacks its first (row-name) cell."""
    lines = [line for line in text.splitlines()[:200] if line.strip()][:30]
    best: tuple[float, int, str] | None = None
    counts_by_delimiter = {}
    for delimiter in ("\t", ",", ";", "|"):
        counts = _field_counts(lines, delimiter)
        counts_by_delimiter[delimiter] = counts
        if not counts or counts[0] < 2:
            continue
        body = counts[1:] or counts[:1]
        consistent = float(np.mean([c in (counts[0], counts[0] + 1) for c in body]))
        preferred = fmt == ".tsv" and delimiter == "\t"
        score = (consistent + (1.0 if preferred else 0.0), counts[0], delimiter)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        return ",", False
    counts = counts_by_delimiter[best[2]]
    body = counts[1:]
    short_header = bool(body) and all(c == counts[0] + 1 for c in body)
    return best[2], short_header


def _cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.map(_cell_text) if len(frame.columns) else frame


def _is_text_table(path: Path) -> bool:
    fmt, compression = _split_suffix(path)
    return bool(compression) or fmt not in {".xlsx", ".xlsm", ".xls", ".parquet", ".pq", ".h5ad"}


def _load_text(path: Path, notes: _Notes) -> tuple[str, str]:
    """Decoded text of a text table (a GEO series-matrix block extracted) and its delimiter."""
    fmt, compression = _split_suffix(path)
    raw = _decompress(path.read_bytes(), compression, path.name)
    kind = _binary_kind(raw)
    if kind is not None:
        raise InputError(f"{path.name}: is {kind[0]}, not a text table; {kind[1]}")
    if b"\x00" in raw[:65536] and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{path.name}: looks like a binary file, not a text table")
    text = _decode(raw, notes)
    if "\x00" in text:
        raise InputError(f"{path.name}: looks like a binary file, not a text table")
    if "!series_matrix_table_begin" in text:
        text = text.split("!series_matrix_table_begin", 1)[1]
        text = text.split("!series_matrix_table_end", 1)[0]
    content = text.strip()
    if not content:
        raise InputError(f"{path.name}: file is empty")
    if "\n" not in content and "\r" not in content:
        # Checked here, before pandas, which would spend minutes and gigabytes turning one
        # long line into millions of empty columns.
        raise InputError(
            f"{path.name}: has a header but no data rows (the whole file is one line of "
            f"{len(content):,} characters); a table needs one line per row"
        )
    delimiter, short_header = _sniff_delimiter(text, fmt)
    text = text.lstrip("\r\n")
    if short_header:
        text = delimiter + text
    return text, delimiter


EXCEL_SHEET: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "radmap_excel_sheet", default=None
)
"""The worksheet read from Excel inputs (``--sheet``); ``None`` is the first one."""


def _read_sheet(path: Path) -> pd.DataFrame:
    """The chosen worksheet (:data:`EXCEL_SHEET`) of a workbook, as raw cells.

    A first sheet without a table (fewer than two rows or columns) while other sheets exist,
    or a ``--sheet`` the workbook lacks, is an error that names the workbook's sheets.
    """
    chosen = EXCEL_SHEET.get()
    try:
        with pd.ExcelFile(path) as workbook:
            names = [str(name) for name in workbook.sheet_names]
            if chosen is not None and chosen not in names:
                raise InputError(
                    f"{path.name}: no sheet {chosen!r}; its sheets are {_sheet_list(names)}"
                )
            frame = (
                workbook.parse(chosen if chosen is not None else 0, header=None, dtype=object)
                .dropna(how="all")
                .dropna(axis=1, how="all")
            )
    except InputError:
        raise
    except Exception as exc:  # openpyxl/xlrd raise many unrelated types for a bad file
        raise InputError(f"{path.name}: not a readable Excel workbook ({_describe(exc)})") from exc
    if chosen is None and len(names) > 1 and min(frame.shape) < 2:
        raise InputError(
            f"{path.name}: the first sheet {names[0]!r} holds no table; the workbook's sheets "
            f"are {_sheet_list(names)}: choose one with --sheet NAME"
        )
    return frame


def _sheet_list(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _read_raw_table(
    path: Path, notes: _Notes, loaded: tuple[str, str] | None = None
) -> pd.DataFrame:
    """All cells of the first table in the file as text, header included as row 0.

    ``loaded`` is the output of :func:`_load_text` when the caller already has it.
    """
    fmt, compression = _split_suffix(path)
    if fmt in {".xlsx", ".xlsm", ".xls"} and not compression:
        return _text_frame(_read_sheet(path))
    if fmt in {".parquet", ".pq"} and not compression:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises its own error types for a bad file
            raise InputError(
                f"{path.name}: not a readable Parquet file ({_describe(exc)})"
            ) from exc
        if not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()
        header = pd.DataFrame([[str(c) for c in frame.columns]])
        body = _text_frame(frame.astype(object))
        body.columns = header.columns
        return pd.concat([header, body], ignore_index=True)

    text, delimiter = loaded if loaded is not None else _load_text(path, notes)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path.name}: file is empty") from exc
    except pd.errors.ParserError as exc:
        detail = " ".join(str(exc).split("error:")[-1].split())
        raise InputError(
            f"{path.name}: rows have different numbers of fields ({detail}); check the "
            f"delimiter {delimiter!r} and quoting"
        ) from exc
    return frame.fillna("")


_NA_VALUES = sorted(
    {variant for token in MISSING_TOKENS for variant in (token, token.lower(), token.title())}
)


def _fast_numeric_table(
    text: str, delimiter: str
) -> tuple[list[str], list[str], np.ndarray] | None:
    """Header, row labels and values of a clean numeric table parsed by pandas' C parser.

    None whenever anything is unusual (text cells, odd header, blank labels), in which case
    the cell-by-cell path runs and reports the problem precisely.
    """
    first_line = text.split("\n", 1)[0].rstrip("\r")
    try:
        header = [" ".join(h.split()) for h in next(csv.reader([first_line], delimiter=delimiter))]
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            skiprows=1,
            dtype={0: str},
            na_values=_NA_VALUES,
            keep_default_na=False,
            engine="c",
        )
    except (csv.Error, StopIteration, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    columns = header[1:]
    if (
        frame.empty
        or frame.shape[1] != len(header)
        or len(columns) < 1
        or "" in columns
        or len(set(columns)) != len(columns)
        or not all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes.iloc[1:])
    ):
        return None
    labels = frame.iloc[:, 0].fillna("").str.strip()
    if (labels == "").any():
        return None
    return columns, labels.tolist(), frame.iloc[:, 1:].to_numpy(dtype=float)


def _drop_comment_rows(frame: pd.DataFrame, notes: _Notes) -> pd.DataFrame:
    """Leave out the ``#`` metadata lines cBioPortal puts above the header (two or more)."""
    first = frame.iloc[:, 0].astype(str)
    leading = 0
    while leading < len(first) - 1 and first.iloc[leading].startswith("#"):
        leading += 1
    if leading < 2:
        return frame
    notes.warn(f"left out {leading} '#' metadata lines above the header (cBioPortal layout)")
    return frame.iloc[leading:]


_MAX_EXTRA_HEADER_ROWS = 3


def _drop_extra_header_rows(header: list[str], body: pd.DataFrame, notes: _Notes) -> pd.DataFrame:
    """Leave out rows under the header that repeat it or hold ``CDE_ID:`` codes.

    TCGA clinical tables (Biotab) have three header lines: the column names, alternative
    names, and the caDSR data-element IDs (``CDE_ID:2003301``).
    """
    extra = 0
    for position in range(min(_MAX_EXTRA_HEADER_ROWS, len(body) - 1)):
        cells = [str(c).strip() for c in body.iloc[position].tolist()]
        filled = [(c, h) for c, h in zip(cells, header) if c]
        codes = any(c.upper().startswith("CDE_ID") for c in cells)
        repeats = bool(filled) and sum(c == h for c, h in filled) >= 0.5 * len(filled)
        if not (codes or repeats):
            break
        extra += 1
    if not extra:
        return body
    notes.warn(
        f"left out {extra} extra header rows under the column names (TCGA clinical layout: "
        "alternative names, CDE_ID codes)"
    )
    return body.iloc[extra:].reset_index(drop=True)


def _read_table(
    path: Path, notes: _Notes, loaded: tuple[str, str] | None = None
) -> tuple[list[str], pd.DataFrame]:
    """Header (stripped) and body (text cells) of a table; empty-file checks included."""
    _check_file(path)
    _check_format(path)
    frame = _read_raw_table(path, notes, loaded)
    if frame.empty:
        raise InputError(f"{path.name}: file is empty")
    if frame.size:
        flat = pd.Series(frame.to_numpy(dtype=object).ravel(), dtype=object).str.strip()
        frame = pd.DataFrame(flat.to_numpy().reshape(frame.shape))
    frame = frame.loc[(frame != "").any(axis=1)]
    frame = _drop_comment_rows(frame, notes)
    if frame.empty:
        raise InputError(f"{path.name}: file is empty")
    header = [" ".join(h.split()) for h in frame.iloc[0].tolist()]
    body = _drop_extra_header_rows(header, frame.iloc[1:].reset_index(drop=True), notes)
    keep = [i for i, h in enumerate(header) if h or (body.iloc[:, i] != "").any()]
    header = [header[i] for i in keep]
    body = body.iloc[:, keep]
    body.columns = range(len(header))
    if body.empty:
        raise InputError(f"{path.name}: has a header but no data rows")
    if len(header) < 2:
        raise InputError(
            f"{path.name}: only one column found (header {header[0][:60]!r}); wrong delimiter? "
            f"tab, comma, semicolon and '|' were tried"
        )
    return header, body


def _parse_cells(body: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Missing-cell mask and numeric values (NaN where missing or not a number) of a text
    table, computed over all cells at once."""
    flat = pd.Series(body.to_numpy(dtype=object).ravel(), dtype=object)
    missing = flat.str.upper().isin(MISSING_TOKENS).to_numpy()
    numbers = pd.to_numeric(flat.mask(missing), errors="coerce").to_numpy(dtype=float)
    return missing.reshape(body.shape), numbers.reshape(body.shape)


_SNIFF_LINES = 200


def _plain_text_bytes(path: Path) -> tuple[memoryview, str] | None:
    """The bytes of a plain UTF-8 text table, ready for pyarrow, and its delimiter.

    None for anything :func:`_load_text` would treat specially (compression errors, binary
    content, other encodings, a GEO series matrix, a header without its row-name cell, blank
    leading lines, one line): the caller then takes the checked text path, which reports it.
    Only a sample is decoded (the lines the delimiter is sniffed from); pyarrow checks the
    encoding of the text cells it reads and fails on malformed numbers.
    """
    fmt, compression = _split_suffix(path)
    try:
        raw = _decompress(path.read_bytes(), compression, path.name)
    except (InputError, OSError):
        return None
    view = memoryview(raw)
    if raw.startswith(codecs.BOM_UTF8):
        view = view[len(codecs.BOM_UTF8) :]
    if (
        _binary_kind(raw) is not None
        or raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        or not view
        or view[:1] in (b"\r", b"\n")
        or raw.find(b"\x00") >= 0
        or raw.find(b"!series_matrix_table_begin") >= 0
    ):
        return None
    end = 0
    for _ in range(_SNIFF_LINES):
        end = raw.find(b"\n", end) + 1
        if end == 0:
            end = len(raw)
            break
    try:
        sample = bytes(view[: max(end - (len(raw) - len(view)), 0)]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if sample.count("\n") < 1 or not sample.strip() or "\n" not in sample.strip():
        return None
    delimiter, short_header = _sniff_delimiter(sample, fmt)
    if short_header:
        return None
    return view, delimiter


def _arrow_numeric_table(
    data: memoryview, delimiter: str
) -> tuple[list[str], list[str], np.ndarray] | None:
    """Header, row labels and values of a clean numeric table parsed by pyarrow's CSV reader.

    The same contract as :func:`_fast_numeric_table` (None whenever anything is unusual),
    about six times faster: multithreaded parsing straight from the bytes. The values come
    back columns x rows (C order), so ``values.T`` is rows x columns.
    """
    import pyarrow as pa
    from pyarrow import csv as arrow_csv

    newline = bytes(data[:65536]).find(b"\n")
    first_line = bytes(data[: newline if newline >= 0 else len(data)]).rstrip(b"\r")
    try:
        header_text = first_line.decode("utf-8")
        header = [" ".join(h.split()) for h in next(csv.reader([header_text], delimiter=delimiter))]
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    columns = header[1:]
    if len(columns) < 1 or "" in columns or len(set(columns)) != len(columns):
        return None
    try:
        table = arrow_csv.read_csv(
            pa.py_buffer(data),
            read_options=arrow_csv.ReadOptions(skip_rows=1, autogenerate_column_names=True),
            parse_options=arrow_csv.ParseOptions(delimiter=delimiter),
            convert_options=arrow_csv.ConvertOptions(
                column_types={"f0": pa.string()},
                null_values=_NA_VALUES,
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, ValueError):
        return None
    if table.num_rows == 0 or table.num_columns != len(header):
        return None
    numeric = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)
        for t in table.schema.types[1:]
    ]
    if not all(numeric):
        return None
    labels = table.column(0).to_pandas()
    if labels.isin(_NA_VALUES).any():
        return None
    labels = labels.str.strip()
    if (labels == "").any():
        return None
    values = np.empty((len(columns), table.num_rows))
    for position in range(len(columns)):
        column = table.column(position + 1)
        if pa.types.is_null(column.type):
            values[position] = np.nan
        else:
            values[position] = column.to_numpy().astype(float, copy=False)
    return columns, labels.tolist(), values.T
