"""Readers for a lab's files, and safe reading and writing of the radmap bundle.

Every reader returns a :class:`ReadResult`: the table, a small ``info`` dict describing what
was done, the warnings raised on the way, and the name of the file it came from. Bad input
raises :class:`analysis.validate.InputError` with a one-line message naming the file, column
or ID; parser errors from pandas, openpyxl, pyarrow or the XML parser never leak.

Text tables (``.csv``, ``.tsv``, ``.txt``, optionally ``.gz`` / ``.bz2`` / ``.xz`` / ``.zip``)
are decoded as UTF-8 (a byte-order mark is fine), falling back to Windows-1252 / Latin-1 with a
warning. The delimiter is sniffed among tab, comma, semicolon and ``|``: the one that splits the
header into the most fields while keeping the first lines consistent. A header one field
shorter than the data rows (R's ``write.table`` layout) gets an empty first header cell. Excel
(``.xlsx``; first sheet) and Parquet are read too. Cells such as ``NA``, ``N/A``, ``null``,
``NaN``, ``#N/A``, ``Not Collected``, ``Not Assessed``, ``Unknown`` or empty are missing.
Patient and sample IDs go through :func:`analysis.validate.normalise_id` (stripped, whitespace
collapsed, upper-cased).
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import functools
import gzip
import hashlib
import io
import json
import logging
import lzma
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree.ElementTree import ParseError

import numpy as np
import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from analysis.bundle import (
    FEATURE_SOURCES,
    FORMAT_VERSION,
    IMAGING_ENCODING_KEY,
    IMAGING_KEY,
    IMAGING_VALUES_KEY,
    MUTANT,
    SURVIVAL_EVENT,
    SURVIVAL_TIME,
    UNS_KEY,
    WILDTYPE,
)
from analysis.validate import (
    InputError,
    category_levels,
    check_types,
    infer_feature_type,
    normalise_id,
)

# anndata and h5py (about half a second to import) are imported where h5ad files are read
# or written, so that a bad table is reported without that wait.
if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger("radmap")

PathLike = str | os.PathLike

MISSING_TOKENS = frozenset(
    {
        "",
        "NA",
        "N/A",
        "N.A.",
        "NAN",
        "NULL",
        "#N/A",
        "-",
        "--",
        "?",
        ".",
        "MISSING",
        "UNKNOWN",
        "NOT COLLECTED",
        "NOT ASSESSED",
        "NOT AVAILABLE",
        "NOT RECORDED IN DATABASE",
    }
)
"""Cell texts read as missing (compared upper-cased after stripping). ``none`` is not among
them: it is a real category of several semantic features (e.g. calcification)."""

ID_COLUMN_KEYS = (
    "id",
    "patientid",
    "patient",
    "caseid",
    "case",
    "subjectid",
    "subject",
    "participantid",
    "pid",
    "sampleid",
    "sample",
)
"""Header names (lower case, letters and digits only) recognised as the patient ID column,
in order of preference; without any the first column is used."""

PYRADIOMICS_FEATURE = re.compile(
    r"^(?P<image>[A-Za-z0-9.\-]+)_(?P<cls>shape2D|shape|firstorder|glcm|glrlm|glszm|gldm|ngtdm)"
    r"_(?P<name>\w+)$"
)
"""PyRadiomics feature names ``<imagetype>_<class>_<name>``; the group is
``<imagetype>_<class>``."""

AIM_CHARACTERISTIC_TAGS = frozenset(
    {
        "ImagingObservationCharacteristic",
        "ImagingPhysicalEntity",
        "ImagingPhysicalEntityCharacteristic",
    }
)
_CODE_SYSTEM_NAME = re.compile(r"^(radlex|snomed|dcm|loinc|ncit|lung ?template)", re.IGNORECASE)

KNOWN_DRIVER_GENES = tuple(
    [
        "EGFR",
        "KRAS",
        "ALK",
        "ROS1",
        "BRAF",
        "MET",
        "RET",
        "ERBB2",
        "HER2",
        "TP53",
        "STK11",
        "KEAP1",
        "PIK3CA",
        "NRAS",
        "NTRK1",
        "NTRK2",
        "NTRK3",
        "IDH1",
        "IDH2",
    ]
)
_MUTATION_HEADER = re.compile(
    r"\b(mutation|mutations|mutational|translocation|fusion|rearrangement)\b", re.IGNORECASE
)
_MUTANT_WORDS = frozenset(
    [
        "mutant",
        "mutation",
        "mutated",
        "mut",
        "positive",
        "pos",
        "+",
        "yes",
        "y",
        "1",
        "1.0",
        "true",
        "translocated",
        "translocation",
        "rearranged",
        "fusion",
        "present",
        "detected",
    ]
)
_WILDTYPE_WORDS = frozenset(
    [
        "wildtype",
        "wild",
        "wt",
        "negative",
        "neg",
        "no",
        "n",
        "0",
        "0.0",
        "false",
        "nottranslocated",
        "notrearranged",
        "absent",
        "notdetected",
        "normal",
    ]
)
_EVENT_WORDS = frozenset({"dead", "deceased", "died", "death", "1", "1.0", "yes", "true", "event"})
_CENSORED_WORDS = frozenset({"alive", "living", "censored", "0", "0.0", "no", "false"})

_IDENTIFIER_HEADER = re.compile(
    r"\b(name|names|first ?name|last ?name|surname|mrn|medical record|record number|address|"
    r"street|city|zip|postal|post ?code|phone|telephone|mobile|fax|e-?mail|ssn|"
    r"social security|birth|dob|insurance|account|dates?)\b",
    re.IGNORECASE,
)
_DATE_TEXT = re.compile(r"^\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}( \d{1,2}:\d{2}(:\d{2})?)?$")

TCIA_SURVIVAL_COLUMNS = {
    "status": "Survival Status",
    "time_to_death": "Time to Death (days)",
    "last_alive": "Date of Last Known Alive",
    "ct_date": "CT Date",
    "ct_to_surgery": "Days between CT and surgery",
}
"""Columns of the TCIA NSCLC Radiogenomics clinical table used by ``derive_survival``."""
_TCIA_DATE_OF_DEATH = "Date of Death"

_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+([eE][-+]?\d+)?")
_DECIMAL_COMMA_HINT = (
    "numbers with a decimal comma: save the file with decimal points, e.g. export it from a "
    "spreadsheet set to English number format"
)
_SAMPLE_ID = re.compile(r"^(GSM\d+|TCGA-[\w-]+|.*[-_.]\d+[A-Za-z]?)$")
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d+", re.IGNORECASE)


@dataclass
class ReadResult:
    """What a reader returns.

    Attributes
    ----------
    frame
        The table read (rows = samples / patients).
    info
        What the reader did (documented per reader).
    warnings
        Messages for the user, each naming the file.
    source
        The file or directory name read.
    """

    frame: pd.DataFrame
    info: dict
    warnings: list[str] = field(default_factory=list)
    source: str = ""


class _Notes:
    """Collects warnings for one file, prefixed with its name, and logs them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[str] = []

    def warn(self, message: str) -> None:
        text = f"{self.name}: {message}"
        if text in self.messages:
            return
        self.messages.append(text)
        logger.warning(text)


def _describe(exc: BaseException) -> str:
    """A foreign exception as one short line for an InputError message."""
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text[:200]}" if text else exc.__class__.__name__


def _examples(items: Sequence[object], k: int = 5) -> str:
    items = list(items)
    shown = ", ".join(repr(str(i)) for i in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """Turn parser failures of third-party libraries into an InputError naming the file."""
    try:
        yield
    except InputError:
        raise
    except PermissionError as exc:
        raise InputError(
            f"{name}: cannot be read (permission denied); check the file's permissions"
        ) from exc
    except (ValueError, OSError, UnicodeError, csv.Error, pd.errors.ParserError) as exc:
        raise InputError(
            f"{name}: could not be read ({_describe(exc)}); check the file format"
        ) from exc


# --------------------------------------------------------------------------- tables


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


def _read_raw_table(
    path: Path, notes: _Notes, loaded: tuple[str, str] | None = None
) -> pd.DataFrame:
    """All cells of the first table in the file as text, header included as row 0.

    ``loaded`` is the output of :func:`_load_text` when the caller already has it.
    """
    fmt, compression = _split_suffix(path)
    if fmt in {".xlsx", ".xlsm", ".xls"} and not compression:
        try:
            frame = pd.read_excel(path, sheet_name=0, header=None, dtype=object)
        except Exception as exc:  # openpyxl/xlrd raise many unrelated types for a bad file
            raise InputError(
                f"{path.name}: not a readable Excel workbook ({_describe(exc)})"
            ) from exc
        return _text_frame(frame)
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
    if frame.empty:
        raise InputError(f"{path.name}: file is empty")
    header = [" ".join(h.split()) for h in frame.iloc[0].tolist()]
    body = frame.iloc[1:].reset_index(drop=True)
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


# --------------------------------------------------------------------------- expression


def _sample_like_fraction(labels: Sequence[str]) -> float:
    labels = [str(label) for label in labels[:2000] if str(label)]
    if not labels:
        return 0.0
    hits = sum(bool(_SAMPLE_ID.match(s)) and not _ENSEMBL.match(s) for s in labels)
    return hits / len(labels)


def _resolve_orientation(rows: Sequence[str], columns: Sequence[str], notes: _Notes) -> str:
    row_fraction = _sample_like_fraction(rows)
    column_fraction = _sample_like_fraction(columns)
    if column_fraction >= 0.8 and row_fraction <= 0.2:
        return "genes_by_samples"
    if row_fraction >= 0.8 and column_fraction <= 0.2:
        return "samples_by_genes"
    if len(rows) > len(columns):
        return "genes_by_samples"
    if len(columns) > len(rows):
        return "samples_by_genes"
    notes.warn(
        "cannot tell genes from samples (square table, labels ambiguous); assumed genes in rows "
        "- pass orientation='samples_by_genes' if that is wrong"
    )
    return "genes_by_samples"


def _scale_hint(frame: pd.DataFrame) -> str:
    values = frame.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "log"
    if finite.min() >= 0:
        if np.all(finite == np.round(finite)) and finite.max() > 100:
            return "counts"
        if finite.max() > 50:
            return "fpkm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values, axis=0)
        sds = np.nanstd(values, axis=0, ddof=1)
    ok = np.isfinite(means) & np.isfinite(sds)
    if ok.any() and np.median(np.abs(means[ok])) < 0.1 and np.median(np.abs(sds[ok] - 1)) < 0.1:
        return "zscore"
    return "log"


def _read_h5ad(path: Path, *, remedy: str) -> ad.AnnData:
    """Read an ``.h5ad`` file; a foreign or damaged file is an InputError saying which."""
    import anndata as ad
    import h5py

    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise InputError(
            f"{path.name}: cannot be read ({exc.strerror or exc}); check its permissions"
        ) from exc
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError:
        is_hdf5 = False
    if not is_hdf5:
        kind = _binary_kind(head)
        what = f"it is {kind[0]}" if kind is not None else "not HDF5, or truncated"
        raise InputError(f"{path.name}: not an h5ad file ({what}); {remedy}")
    try:
        return ad.read_h5ad(path)
    except Exception as exc:  # h5py/anndata raise many unrelated types for a broken file
        raise InputError(
            f"{path.name}: not an h5ad file, or a damaged or truncated one ({_describe(exc)}); "
            f"{remedy}"
        ) from exc


def _expression_from_h5ad(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    adata = _read_h5ad(
        path, remedy="write it again with AnnData.write_h5ad, or give the expression as a table"
    )
    matrix = adata.X
    if matrix is None:
        raise InputError(f"{path.name}: the AnnData object has no X matrix")
    matrix = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    return list(map(str, adata.obs_names)), list(map(str, adata.var_names)), matrix.astype(float)


def _expression_from_table(
    path: Path, orientation: str, notes: _Notes
) -> tuple[list[str], list[str], np.ndarray, str]:
    """Samples, genes and a samples x genes matrix, plus the orientation used."""
    loaded = _load_text(path, notes) if _is_text_table(path) else None
    fast = _fast_numeric_table(*loaded) if loaded is not None else None
    if fast is not None:
        column_labels, row_labels, numbers = fast
    else:
        column_labels, row_labels, numbers = _numeric_cells(path, notes, loaded)
    if orientation == "auto":
        orientation = _resolve_orientation(row_labels, column_labels, notes)
    if orientation == "genes_by_samples":
        return column_labels, row_labels, numbers.T, orientation
    return row_labels, column_labels, numbers, orientation


def _numeric_cells(
    path: Path, notes: _Notes, loaded: tuple[str, str] | None
) -> tuple[list[str], list[str], np.ndarray]:
    """Column labels, row labels and values, checking every cell."""
    header, body = _read_table(path, notes, loaded)
    row_labels = body.iloc[:, 0].tolist()
    column_labels = header[1:]
    cells = body.iloc[:, 1:]
    missing, numbers = _parse_cells(cells)
    bad = np.isnan(numbers) & ~missing
    if bad.any():
        i, j = np.argwhere(bad)[0]
        if _DECIMAL_COMMA.fullmatch(str(cells.iat[i, j]).strip()):
            hint = f" ({_DECIMAL_COMMA_HINT})"
        elif bad[:, j].sum() == (~missing[:, j]).sum():
            hint = (
                " (the whole column is text: remove annotation columns so that only the label "
                "column precedes the values)"
            )
        else:
            hint = ""
        raise InputError(
            f"{path.name}: non-numeric value {cells.iat[i, j]!r} in column "
            f"{column_labels[j]!r} (row {row_labels[i]!r}); expression values must be numbers, "
            f"NA or empty ({int(bad.sum())} such cells){hint}"
        )
    return column_labels, row_labels, numbers


def read_expression(
    path: PathLike,
    *,
    orientation: str = "auto",
    max_missing: float = 0.2,
) -> ReadResult:
    """Read a gene expression matrix.

    Parameters
    ----------
    path
        CSV / TSV / TXT (delimiter sniffed; ``.gz`` etc. fine), XLSX, Parquet or ``.h5ad``
        (``X`` with ``obs`` = samples; ``orientation`` is ignored). In tables the first column
        holds the row labels: gene symbols (``genes_by_samples``, the GEO layout) or sample IDs
        (``samples_by_genes``); the header holds the other axis.
    orientation
        ``"auto"``, ``"genes_by_samples"`` or ``"samples_by_genes"``. Auto rule: the axis whose
        labels look like sample IDs (``GSM123``, ``TCGA-...``, or ending in digits after a
        separator: ``R01-023``, ``Sample_12``; Ensembl IDs excluded) in at least 80% of cases, while the other axis does in at most 20%, is the sample axis; otherwise the
        longer axis is the gene axis; a square table is taken as genes in rows (warning).
    max_missing
        Genes with a larger fraction of missing values are dropped.

    Returns
    -------
    :class:`ReadResult` with ``frame`` = samples x genes (float64; index = normalised sample
    IDs, columns = gene symbols) and ``info`` keys ``orientation``, ``n_genes``,
    ``n_samples``, ``duplicates_collapsed`` (rows removed because their gene symbol occurred
    before; for each duplicated symbol the row with the highest mean is kept),
    ``dropped_missing`` (genes dropped for missing values) and ``scale_hint``: ``"counts"``
    (non-negative integers, max > 100), ``"fpkm"`` (non-negative, max > 50), ``"zscore"``
    (median gene mean within 0.1 of 0 and median SD within 0.1 of 1) or ``"log"``.

    Raises
    ------
    InputError
        Unreadable, empty or header-only file, a single column (wrong delimiter), a
        non-numeric cell (the message names column, row and value), duplicated sample IDs,
        nothing left after filtering.
    """
    path = Path(path)
    notes = _Notes(path.name)
    if orientation not in ("auto", "genes_by_samples", "samples_by_genes"):
        raise InputError(
            f"orientation must be 'auto', 'genes_by_samples' or 'samples_by_genes', "
            f"not {orientation!r}"
        )
    if not 0 <= max_missing <= 1:
        raise InputError(f"max_missing must be a fraction between 0 and 1, not {max_missing!r}")

    with _reading(path.name):
        _check_file(path)
        _check_format(path, h5ad=True)
        if _split_suffix(path)[0] == ".h5ad":
            samples, genes, matrix = _expression_from_h5ad(path)
            orientation = "samples_by_genes"
        else:
            samples, genes, matrix, orientation = _expression_from_table(path, orientation, notes)

        sample_ids = [normalise_id(s) for s in samples]
        for position, sample in enumerate(sample_ids):
            if not sample:
                raise InputError(
                    f"{path.name}: sample number {position + 1} has no ID; label every sample"
                )
        duplicated = pd.Index(sample_ids)[pd.Index(sample_ids).duplicated()]
        if len(duplicated):
            raise InputError(
                f"{path.name}: duplicated sample ID {duplicated[0]!r}; each sample must appear once"
            )
        frame = pd.DataFrame(matrix, index=sample_ids, columns=[str(g).strip() for g in genes])

        unnamed = frame.columns == ""
        if unnamed.any():
            notes.warn(f"dropped {int(unnamed.sum())} rows without a gene symbol")
            frame = frame.loc[:, ~unnamed]

        infinite = np.isinf(frame.to_numpy())
        if infinite.any():
            notes.warn(f"{int(infinite.sum())} infinite values set to missing")
            frame = frame.mask(infinite)

        duplicates_collapsed = 0
        if frame.columns.duplicated().any():
            order = pd.DataFrame(
                {
                    "gene": frame.columns,
                    "mean": frame.mean(axis=0).to_numpy(),
                    "pos": range(0, frame.shape[1]),
                }
            )
            kept = (
                order.sort_values("mean", ascending=False, kind="stable", na_position="last")
                .drop_duplicates("gene")
                .sort_values("pos")["pos"]
                .to_numpy()
            )
            duplicates_collapsed = frame.shape[1] - len(kept)
            symbols = frame.columns[frame.columns.duplicated()].unique()
            notes.warn(
                f"{len(symbols)} gene symbols occur more than once ({duplicates_collapsed} extra "
                f"rows); kept the row with the highest mean for each: {_examples(symbols)}"
            )
            frame = frame.iloc[:, kept]

        missing_fraction = frame.isna().mean(axis=0)
        too_sparse = missing_fraction > max_missing
        if too_sparse.any():
            notes.warn(
                f"dropped {int(too_sparse.sum())} genes with more than {max_missing:.0%} missing "
                f"values: {_examples(frame.columns[too_sparse])}"
            )
            frame = frame.loc[:, ~too_sparse]
        if frame.shape[1] == 0:
            raise InputError(f"{path.name}: no gene left with enough non-missing values")

        empty_samples = frame.isna().all(axis=1)
        if empty_samples.any():
            notes.warn(
                f"dropped {int(empty_samples.sum())} samples with no values: "
                f"{_examples(frame.index[empty_samples])}"
            )
            frame = frame.loc[~empty_samples]
        if frame.shape[0] == 0:
            raise InputError(f"{path.name}: no sample has any expression value")

    frame = frame.astype(np.float64)
    frame.index.name = None
    frame.columns.name = None
    info = {
        "orientation": orientation,
        "n_genes": int(frame.shape[1]),
        "n_samples": int(frame.shape[0]),
        "duplicates_collapsed": int(duplicates_collapsed),
        "dropped_missing": int(too_sparse.sum()),
        "scale_hint": _scale_hint(frame),
    }
    return ReadResult(frame=frame, info=info, warnings=notes.messages, source=path.name)


# --------------------------------------------------------------------------- features

_FEATURE_TABLE_COLUMNS = ["label", "type", "source", "group", "levels"]


def feature_id(label: str) -> str:
    """The feature ID for a column label: whitespace collapsed, ``/`` replaced by ``_``."""
    return " ".join(str(label).split()).replace("/", "_")


class _Dropped(Exception):
    """A column that cannot be a feature; the message says why."""


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _column_values(
    raw: pd.Series,
    *,
    name: str,
    declared: str | None,
    notes: _Notes,
    cells: tuple[np.ndarray, np.ndarray] | None = None,
    drop_constant: bool = True,
    drop_free_text: bool = True,
) -> tuple[pd.Series, str]:
    """One text column as a typed feature: float64 for continuous, else a Categorical.

    ``cells`` are the column's missing mask and numbers from :func:`_parse_cells` when
    already computed. Raises _Dropped for an empty, constant or free-text column.
    """
    missing, numbers = cells if cells is not None else _parse_cells(raw.to_frame())
    missing, numbers = missing.ravel(), numbers.ravel()
    n_present = int((~missing).sum())
    if n_present == 0:
        raise _Dropped("no values")
    is_number = ~np.isnan(numbers)
    n_numeric = int(is_number.sum())

    if n_numeric == n_present:
        infinite = np.isinf(numbers)
        if infinite.any():
            notes.warn(f"column {name!r}: {int(infinite.sum())} infinite values set to missing")
            numbers = np.where(infinite, np.nan, numbers)
        distinct = np.unique(numbers[np.isfinite(numbers)])
        if distinct.size == 0:
            raise _Dropped("no finite values")
        if drop_constant and distinct.size == 1:
            raise _Dropped("constant")
        kind = declared or "continuous"
        if kind == "continuous":
            return pd.Series(numbers, index=raw.index, dtype=np.float64), kind
        levels = [_format_number(v) for v in distinct]
        _check_declared(kind, levels, name, notes)
        labels = [_format_number(v) if np.isfinite(v) else None for v in numbers]
        values = pd.Categorical(labels, categories=levels, ordered=kind == "ordinal")
        return pd.Series(values, index=raw.index), kind

    text = raw.astype(str).str.split().str.join(" ").mask(missing)
    present = text.dropna()
    decimal_comma = present.str.fullmatch(_DECIMAL_COMMA)
    if (
        declared in (None, "continuous")
        and decimal_comma.any()
        and n_numeric + decimal_comma.sum() >= 0.9 * n_present
    ):
        example = present[decimal_comma]
        raise InputError(
            f"{notes.name}: column {name!r} holds {example.iloc[0]!r} (patient "
            f"{example.index[0]!r}, {len(example)} such cells): {_DECIMAL_COMMA_HINT}"
        )
    if declared == "continuous" or (
        declared is None and n_numeric >= 10 and n_numeric >= 0.9 * n_present
    ):
        bad = text[~missing & ~is_number]
        problem = "is declared continuous but holds" if declared else "is numeric except"
        raise InputError(
            f"{notes.name}: column {name!r} {problem} {bad.iloc[0]!r} (patient "
            f"{bad.index[0]!r}, {len(bad)} such cells); fix or blank those cells, or declare the "
            f"column's type"
        )
    n_distinct = present.nunique()
    if drop_constant and n_distinct == 1:
        raise _Dropped(f"single category {present.iloc[0]!r}")
    if drop_free_text and declared is None and _is_free_text(n_distinct, n_present):
        raise _Dropped(f"free text or identifiers ({n_distinct} distinct values)")
    kind = declared or infer_feature_type(present.rename(name))
    levels = category_levels(present, kind)
    _check_declared(kind, levels, name, notes)
    values = pd.Categorical(text, categories=levels, ordered=kind == "ordinal")
    return pd.Series(values, index=raw.index), kind


def _is_free_text(n_distinct: int, n_present: int) -> bool:
    """Text with too many distinct values to be categories: more than max(20, n/2), or a
    different value for each of at least 10 patients."""
    return n_distinct > max(20, n_present / 2) or (n_present >= 10 and n_distinct == n_present)


def _check_declared(kind: str, levels: list[str], name: str, notes: _Notes) -> None:
    if kind == "binary" and len(levels) > 2:
        raise InputError(
            f"{notes.name}: column {name!r} is declared binary but has {len(levels)} values "
            f"({_examples(levels)}); declare it categorical or ordinal"
        )


def _features_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["id", *_FEATURE_TABLE_COLUMNS]).set_index("id")
    table.index.name = None
    return table.astype(str)


def _levels_text(values: pd.Series) -> str:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "|".join(map(str, values.cat.categories))
    return ""


def _build_features(
    columns: Mapping[str, pd.Series],
    *,
    index: pd.Index,
    types: Mapping[str, str] | None,
    source_of: Callable[[str, bool], str],
    group_of: Callable[[str, bool], str],
    notes: _Notes,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Typed feature frame, features table and dropped columns (name -> reason)."""
    ids = {name: feature_id(name) for name in columns}
    clashes = pd.Series(list(ids.values()))
    if clashes.duplicated().any():
        clash = clashes[clashes.duplicated()].iloc[0]
        names = [n for n, i in ids.items() if i == clash]
        raise InputError(
            f"{notes.name}: columns {_examples(names)} all become feature ID {clash!r}; rename one"
        )
    known = {*ids, *ids.values()}
    types = {name: kind for name, kind in (types or {}).items() if name in known}
    check_types(types, known)
    declared_by_id = {ids.get(name, name): kind for name, kind in types.items()}

    values: dict[str, pd.Series] = {}
    rows: list[dict] = []
    dropped: dict[str, str] = {}
    missing, numbers = _parse_cells(pd.DataFrame(dict(enumerate(columns.values())), index=index))
    for position, (name, raw) in enumerate(columns.items()):
        fid = ids[name]
        try:
            series, kind = _column_values(
                raw,
                name=name,
                declared=declared_by_id.get(fid),
                notes=notes,
                cells=(missing[:, position], numbers[:, position]),
            )
        except _Dropped as reason:
            dropped[name] = str(reason)
            continue
        numeric = kind == "continuous" or not isinstance(series.dtype, pd.CategoricalDtype)
        values[fid] = series
        rows.append(
            {
                "id": fid,
                "label": name,
                "type": kind,
                "source": source_of(name, numeric),
                "group": group_of(name, numeric),
                "levels": _levels_text(series),
            }
        )
    by_reason: dict[str, list[str]] = {}
    for name, reason in dropped.items():
        key = reason.split(" ")[0] if reason.startswith(("single", "free")) else reason
        by_reason.setdefault(key, []).append(name)
    labels = {
        "constant": "constant",
        "no values": "all missing",
        "no finite values": "all missing or infinite",
        "single": "a single category",
        "free": "free text or identifiers (too many distinct values)",
    }
    for key, names in by_reason.items():
        notes.warn(f"dropped {len(names)} features that are {labels[key]}: {_examples(names, 10)}")
    frame = pd.DataFrame(values, index=index)
    return frame, _features_table(rows), dropped


def _find_id_column(header: list[str], id_column: str | None, name: str) -> int:
    if id_column is not None:
        wanted = " ".join(str(id_column).split())
        for position, column in enumerate(header):
            if column == wanted:
                return position
        for position, column in enumerate(header):
            if column.lower() == wanted.lower():
                return position
        raise InputError(f"{name}: no ID column {id_column!r}; columns are {_examples(header, 8)}")
    keys = [re.sub(r"[^a-z0-9]", "", column.lower()) for column in header]
    for wanted in ID_COLUMN_KEYS:
        if wanted in keys:
            return keys.index(wanted)
    return 0


def _patient_index(raw_ids: pd.Series, column: str, notes: _Notes) -> tuple[pd.Index, np.ndarray]:
    """Normalised patient IDs and the mask of rows that have one; duplicates raise."""
    ids = raw_ids.map(normalise_id)
    has_id = (ids != "").to_numpy()
    if not has_id.all():
        notes.warn(f"dropped {int((~has_id).sum())} rows without a patient ID in {column!r}")
    ids = ids[has_id]
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise InputError(
            f"{notes.name}: duplicated patient ID {duplicated.iloc[0]!r} in column {column!r}; "
            f"each patient must have one row"
        )
    return pd.Index(ids.tolist()), has_id


def _check_source(source: str | None) -> None:
    if source is not None and source not in FEATURE_SOURCES:
        raise InputError(f"source must be one of {', '.join(FEATURE_SOURCES)}, not {source!r}")


def _check_unique_header(header: list[str], name: str) -> None:
    seen = pd.Index(header)
    if seen.duplicated().any():
        raise InputError(
            f"{name}: column name {seen[seen.duplicated()][0]!r} occurs more than once; "
            f"rename the columns"
        )


# --------------------------------------------------------------------------- imaging


def read_imaging(
    path: PathLike,
    *,
    types: Mapping[str, str] | None = None,
    source: str | None = None,
    id_column: str | None = None,
) -> ReadResult:
    """Read a table of imaging features, one row per patient.

    PyRadiomics output is recognised by its feature names ``<imagetype>_<class>_<name>``
    (e.g. ``original_shape_Elongation``, ``wavelet-LLH_glcm_Idm``): ``diagnostics_*``
    columns are dropped and features are grouped as ``<imagetype>_<class>``. Otherwise
    numeric columns are continuous features (group and source ``radiomic``) and text columns
    semantic categorical features (group and source ``semantic``), typed by
    :func:`analysis.validate.infer_feature_type`. Features that are all missing, constant,
    single-category, or text with more than ``max(20, n/2)`` distinct values or a
    different value for each of at least 10 patients (free text, file paths) are dropped with a warning naming them.

    Parameters
    ----------
    path
        CSV / TSV / XLSX / Parquet.
    types
        Feature name (column label or feature ID) -> type, overriding inference. A numeric
        column declared ordinal / binary / categorical becomes a Categorical with its numbers,
        in numeric order, as categories. Names that are not columns of this table are ignored,
        so one mapping can serve several readers; check it against the combined table with
        :func:`analysis.validate.check_types`. Unknown type names raise.
    source
        Feature source for every column (``semantic``, ``radiomic`` or ``clinical``) instead of
        the rule above.
    id_column
        The patient ID column; default: a column named like ``ID``, ``Patient ID``, ``Case
        ID``, ``PatientID``, ``Subject``..., else the first column.

    Returns
    -------
    :class:`ReadResult`: ``frame`` patients x features (index = normalised patient IDs;
    Categorical columns for semantic features, ordered for ordinal ones; float64 for numeric);
    column names are feature IDs (:func:`feature_id`). ``info``: ``features`` (DataFrame
    indexed by feature ID: ``label``, ``type``, ``source``, ``group``, ``levels``),
    ``id_column``, ``pyradiomics`` (bool), ``diagnostics_dropped`` (int), ``dropped``
    (column -> reason), ``n_patients``, ``n_features``.

    Raises
    ------
    InputError
        Unreadable / empty file, duplicated column names or patient IDs, a numeric column with
        stray text, bad ``types``, no feature left.
    """
    path = Path(path)
    notes = _Notes(path.name)
    _check_source(source)
    with _reading(path.name):
        header, body = _read_table(path, notes)
        _check_unique_header(header, path.name)
        id_position = _find_id_column(header, id_column, path.name)
        index, has_id = _patient_index(body.iloc[:, id_position], header[id_position], notes)
        body = body.loc[has_id]

        is_pyradiomics = any(PYRADIOMICS_FEATURE.match(column) for column in header)
        diagnostics = [c for c in header if c.lower().startswith("diagnostics_")]
        if diagnostics:
            notes.warn(f"dropped {len(diagnostics)} PyRadiomics diagnostics_* columns")
        columns = {
            column: pd.Series(body.iloc[:, position].to_numpy(), index=index)
            for position, column in enumerate(header)
            if position != id_position and column not in diagnostics
        }
        for position, column in enumerate(list(columns)):
            if not column:
                columns[f"column_{position + 1}"] = columns.pop(column)

        def source_of(column: str, numeric: bool) -> str:
            return source or ("radiomic" if numeric else "semantic")

        def group_of(column: str, numeric: bool) -> str:
            match = PYRADIOMICS_FEATURE.match(column)
            if match:
                return f"{match['image']}_{match['cls']}"
            return source_of(column, numeric)

        frame, features, dropped = _build_features(
            columns, index=index, types=types, source_of=source_of, group_of=group_of, notes=notes
        )
    if frame.shape[1] == 0:
        raise InputError(
            f"{path.name}: no usable imaging feature (all dropped: {_examples(list(dropped))})"
        )
    info = {
        "features": features,
        "id_column": header[id_position],
        "pyradiomics": is_pyradiomics,
        "diagnostics_dropped": len(diagnostics),
        "dropped": dropped,
        "n_patients": int(frame.shape[0]),
        "n_features": int(frame.shape[1]),
    }
    return ReadResult(frame=frame, info=info, warnings=notes.messages, source=path.name)


# --------------------------------------------------------------------------- AIM XML


@functools.lru_cache(maxsize=1)
def radlex_aim_codes() -> pd.DataFrame:
    """The shipped code table ``analysis/data/radlex_aim_codes.csv``: ``code``, ``name``,
    ``label`` (one row per code and label it was seen with in the NSCLC Radiogenomics AIM
    files)."""
    table_file = resources.files("analysis") / "data" / "radlex_aim_codes.csv"
    with table_file.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element, name: str):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _aim_value(type_code, codes: pd.DataFrame) -> tuple[str | None, bool]:
    """The value of one typeCode and whether it came from the code table."""
    for child in type_code.iter():
        if _local(child.tag) == "displayName" and (child.get("value") or "").strip():
            return child.get("value"), False
    code_system = (type_code.get("codeSystem") or "").strip()
    system_name = (type_code.get("codeSystemName") or "").strip()
    if code_system and code_system != system_name and not _CODE_SYSTEM_NAME.match(code_system):
        return code_system, False
    code = (type_code.get("code") or "").strip()
    names = codes.loc[codes["code"] == code, "name"].unique()
    if len(names):
        return names[0], True
    return None, False


def _parse_aim_file(path: Path, codes: pd.DataFrame, notes: _Notes) -> tuple[str, list, int]:
    """Person ID, [(label, value)] in document order and number of code-table look-ups.

    Raises InputError for unsafe XML and _Dropped for malformed or non-AIM files.
    """
    try:
        root = SafeElementTree.parse(
            str(path), forbid_dtd=False, forbid_entities=True, forbid_external=True
        ).getroot()
    except DefusedXmlException as exc:
        raise InputError(
            f"{path.name}: refused unsafe XML ({exc.__class__.__name__}: entity declarations "
            f"or external references are not allowed in AIM files); remove the file"
        ) from exc
    except (ParseError, UnicodeError, LookupError, ValueError) as exc:
        raise _Dropped(f"malformed XML ({_describe(exc)})") from exc
    except OSError as exc:
        raise _Dropped(f"cannot be read ({exc.strerror or exc})") from exc

    person = next((e for e in root.iter() if _local(e.tag) == "person"), None)
    person_id = ""
    if person is not None and _child(person, "id") is not None:
        person_id = normalise_id(_child(person, "id").get("value") or "")
    if not person_id:
        person_id = normalise_id(re.sub(r"v\d+$", "", path.stem, flags=re.IGNORECASE))
        notes.warn(f"{path.name}: no person id in the XML; used the file name {person_id!r}")

    items: list[tuple[str, str]] = []
    looked_up = 0
    for element in root.iter():
        if _local(element.tag) not in AIM_CHARACTERISTIC_TAGS:
            continue
        type_codes = [c for c in element if _local(c.tag) == "typeCode"]
        value = code = None
        for type_code in type_codes:
            value, from_table = _aim_value(type_code, codes)
            if value is not None:
                code = (type_code.get("code") or "").strip()
                looked_up += from_table
                break
        label_element = _child(element, "label")
        label = ""
        if label_element is not None:
            label = " ".join((label_element.get("value") or "").split())
        if value is None:
            codes_seen = [c.get("code") for c in type_codes]
            notes.warn(
                f"{path.name}: {_local(element.tag)} {label!r} with code(s) "
                f"{_examples(codes_seen)} has no value name and the code is not in the code "
                f"table; skipped"
            )
            continue
        if not label:
            labels = codes.loc[codes["code"] == code, "label"].unique()
            if len(labels) != 1:
                notes.warn(
                    f"{path.name}: value {value.strip()!r} (code {code!r}) has no label and the "
                    f"code is used by {len(labels)} labels; skipped"
                )
                continue
            label = labels[0]
            looked_up += 1
        items.append((label, " ".join(value.split()).lower()))
    return person_id, items, looked_up


def read_aim(directory: PathLike, *, types: Mapping[str, str] | None = None) -> ReadResult:
    """Read radiologists' semantic annotations from AIM v4 XML files.

    Every ``*.xml`` file in ``directory`` (or the single file given) is parsed with defusedxml.
    One row per patient, keyed by the normalised ``person/id`` of the XML (the file name, minus
    a ``v1``-style suffix, when absent); several files of one patient are combined.
    One column per characteristic label: ``ImagingObservationCharacteristic``,
    ``ImagingPhysicalEntity`` (e.g. Anatomic Location) and
    ``ImagingPhysicalEntityCharacteristic`` ``label``. The value is taken from the first
    ``typeCode`` that yields one: its ``iso:displayName``, else its ``codeSystem`` attribute
    (where AMC files keep the name), else the name of its RadLex code in
    :func:`radlex_aim_codes`. A missing label is taken from the code table when the code
    belongs to exactly one label (else the value is skipped with a warning). Values are
    stripped, whitespace-collapsed and lower-cased. Several values for one label are joined
    by ``|`` in document order (first occurrence kept), which is how the template orders them
    and how the reference table ``semantic_features_reference.csv`` is built.

    Security: a file declaring entities or referring to external resources (entity-expansion
    bombs, XXE) is refused with an InputError naming it - such a file is no radiology
    annotation and should be removed. A malformed or non-AIM file is skipped with a warning.

    Parameters
    ----------
    directory
        Folder of AIM XML files, or one XML file.
    types
        Characteristic label (or feature ID) -> type, overriding inference; names that are not
        characteristics here are ignored (see :func:`read_imaging`).

    Returns
    -------
    :class:`ReadResult` like :func:`read_imaging`, features of source and group ``semantic``.
    ``info``: ``features``, ``dropped``, ``n_files``, ``files_skipped`` (file names),
    ``codes_looked_up`` (values or labels taken from the code table), ``n_patients``,
    ``n_features``.

    Raises
    ------
    InputError
        Missing directory, no XML file, an unsafe XML file, no readable annotation.
    """
    directory = Path(directory)
    notes = _Notes(directory.name)
    if not directory.exists():
        raise InputError(f"{directory}: not found; check the path to the AIM XML folder")
    files = (
        [directory]
        if directory.is_file()
        else sorted(p for p in directory.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    )
    if not files:
        raise InputError(f"{directory}: no .xml files found")
    codes = radlex_aim_codes()
    patients: dict[str, dict[str, list[str]]] = {}
    files_of: dict[str, list[str]] = {}
    skipped: list[str] = []
    looked_up = 0
    for file in files:
        try:
            person_id, items, n_lookups = _parse_aim_file(file, codes, notes)
        except _Dropped as reason:
            notes.warn(f"{file.name}: skipped, {reason}")
            skipped.append(file.name)
            continue
        looked_up += n_lookups
        files_of.setdefault(person_id, []).append(file.name)
        by_label = patients.setdefault(person_id, {})
        for label, value in items:
            seen = by_label.setdefault(label, [])
            if value not in seen:
                seen.append(value)
    for person_id, names in files_of.items():
        if len(names) > 1:
            notes.warn(f"patient {person_id!r}: combined {len(names)} files ({_examples(names)})")
    if not any(patients.values()):
        raise InputError(
            f"{directory.name}: no imaging characteristics found in {len(files)} XML files "
            f"({len(skipped)} unreadable); are these AIM files?"
        )
    index = pd.Index(sorted(patients))
    labels = sorted({label for by_label in patients.values() for label in by_label})
    columns = {
        label: pd.Series(
            ["|".join(patients[p].get(label, [])) for p in index], index=index, dtype=object
        )
        for label in labels
    }
    frame, features, dropped = _build_features(
        columns,
        index=index,
        types=types,
        source_of=lambda _label, _numeric: "semantic",
        group_of=lambda _label, _numeric: "semantic",
        notes=notes,
    )
    info = {
        "features": features,
        "dropped": dropped,
        "n_files": len(files),
        "files_skipped": skipped,
        "codes_looked_up": looked_up,
        "n_patients": int(frame.shape[0]),
        "n_features": int(frame.shape[1]),
    }
    return ReadResult(frame=frame, info=info, warnings=notes.messages, source=directory.name)


def combine_imaging(results: Sequence[ReadResult]) -> ReadResult:
    """Outer-join imaging feature tables on patient ID.

    A feature ID present in more than one result is renamed ``<source>:<id>`` in every
    result that has it, ``<source>`` being the result's file name without extension.

    Parameters
    ----------
    results
        Results of :func:`read_imaging` / :func:`read_aim`.

    Returns
    -------
    :class:`ReadResult` with the joined frame (index sorted), the joined ``info["features"]``,
    ``info["sources"]``, and the warnings of the joining only (the inputs keep theirs).
    """
    results = list(results)
    if not results:
        raise InputError("no imaging tables to combine")
    counts = pd.Series([fid for r in results for fid in r.frame.columns]).value_counts()
    shared = set(counts[counts > 1].index)
    frames, tables, messages = [], [], []
    stems = [Path(r.source).name.split(".")[0] or f"source{i + 1}" for i, r in enumerate(results)]
    for result, stem in zip(results, stems):
        renames = {fid: f"{stem}:{fid}" for fid in result.frame.columns if fid in shared}
        frames.append(result.frame.rename(columns=renames))
        table = result.info.get("features", pd.DataFrame(columns=_FEATURE_TABLE_COLUMNS))
        tables.append(table.rename(index=renames))
    if shared:
        message = (
            f"{len(shared)} feature IDs occur in more than one imaging source and were prefixed "
            f"with the source name: {_examples(sorted(shared))}"
        )
        messages.append(message)
        logger.warning(message)
    renamed = pd.Series([fid for f in frames for fid in f.columns])
    if renamed.duplicated().any():
        raise InputError(
            f"feature ID {renamed[renamed.duplicated()].iloc[0]!r} is still duplicated after "
            f"prefixing; give the imaging files different names"
        )
    frame = pd.concat(frames, axis=1, join="outer", sort=True)
    features = pd.concat(tables)[_FEATURE_TABLE_COLUMNS]
    info = {
        "features": features,
        "sources": [r.source for r in results],
        "n_patients": int(frame.shape[0]),
        "n_features": int(frame.shape[1]),
    }
    return ReadResult(
        frame=frame, info=info, warnings=messages, source="+".join(r.source for r in results)
    )


# --------------------------------------------------------------------------- clinical


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]", "", str(text).lower())


def _mutation_name(column: str) -> str:
    tokens = re.split(r"[^A-Za-z0-9]+", column)
    for token in tokens:
        if token.upper() in KNOWN_DRIVER_GENES:
            return token.upper()
    for token in tokens:
        if re.fullmatch(r"[A-Z][A-Z0-9]{1,9}", token):
            return token
    words = re.sub(r"\b(mutation|mutational|translocation|status|fusion)\b", "", column, flags=re.I)
    return " ".join(words.split()) or column


def _detect_mutation_columns(header: Sequence[str]) -> dict[str, str]:
    found = {}
    for column in header:
        tokens = {t.upper() for t in re.split(r"[^A-Za-z0-9]+", column)}
        if _MUTATION_HEADER.search(column) or tokens & set(KNOWN_DRIVER_GENES):
            found[column] = _mutation_name(column)
    return found


def _normalise_mutation(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    missing_keys = {_key(t) for t in MISSING_TOKENS} | {"notdone", "notperformed", "pending"}
    keys = raw.map(_key)
    values = pd.Series(np.nan, index=raw.index, dtype=object)
    values[keys.isin(_MUTANT_WORDS)] = MUTANT
    values[keys.isin(_WILDTYPE_WORDS)] = WILDTYPE
    unknown = ~keys.isin(_MUTANT_WORDS | _WILDTYPE_WORDS | missing_keys)
    if unknown.any():
        notes.warn(
            f"column {column!r}: unrecognised mutation status {_examples(raw[unknown].unique())} "
            f"treated as missing (expected Mutant / Wildtype)"
        )
    return pd.Series(
        pd.Categorical(values, categories=[WILDTYPE, MUTANT]), index=raw.index, name=column
    )


def _find_column(header: Sequence[str], wanted: str, name: str, what: str) -> str:
    for column in header:
        if column == wanted:
            return column
    for column in header:
        if _key(column) == _key(wanted):
            return column
    raise InputError(f"{name}: no {what} column {wanted!r}; columns are {_examples(header, 8)}")


def _to_float(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    missing = raw.str.upper().isin(MISSING_TOKENS)
    numbers = pd.to_numeric(raw.where(~missing), errors="coerce").astype(float)
    bad = numbers.isna() & ~missing
    if bad.any():
        hint = (
            f" ({_DECIMAL_COMMA_HINT})"
            if raw[bad].str.strip().str.fullmatch(_DECIMAL_COMMA).all()
            else ""
        )
        notes.warn(
            f"column {column!r}: non-numeric values {_examples(raw[bad].unique())} treated as "
            f"missing{hint}"
        )
    infinite = np.isinf(numbers)
    if infinite.any():
        notes.warn(f"column {column!r}: {int(infinite.sum())} infinite values set to missing")
        numbers[infinite] = np.nan
    return numbers


def _to_dates(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    missing = raw.str.upper().isin(MISSING_TOKENS)
    text = raw.where(~missing)
    dates = pd.to_datetime(text, format="%m/%d/%Y", errors="coerce")
    retry = dates.isna() & ~missing
    if retry.any():
        dates[retry] = pd.to_datetime(text[retry], format="ISO8601", errors="coerce")
    bad = dates.isna() & ~missing
    if bad.any():
        notes.warn(
            f"column {column!r}: unreadable dates {_examples(raw[bad].unique())} (expected "
            f"month/day/year) treated as missing"
        )
    return dates


def _event(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    keys = raw.map(_key)
    event = pd.Series(np.nan, index=raw.index, dtype=float)
    event[keys.isin(_EVENT_WORDS)] = 1.0
    event[keys.isin(_CENSORED_WORDS)] = 0.0
    missing = raw.str.upper().isin(MISSING_TOKENS)
    unknown = event.isna() & ~missing
    if unknown.any():
        notes.warn(
            f"column {column!r}: unrecognised survival status {_examples(raw[unknown].unique())} "
            f"treated as missing (expected e.g. Dead / Alive or 1 / 0)"
        )
    return event


def _derive_tcia_survival(
    columns: Mapping[str, pd.Series], header: Sequence[str], notes: _Notes
) -> tuple[pd.Series, pd.Series, list[str]]:
    found = {}
    missing = []
    for key, wanted in TCIA_SURVIVAL_COLUMNS.items():
        try:
            found[key] = _find_column(header, wanted, notes.name, "survival")
        except InputError:
            missing.append(wanted)
    if missing:
        raise InputError(
            f"{notes.name}: derive_survival needs the TCIA columns {_examples(missing)}, not "
            f"found; pass survival_time and survival_event instead"
        )
    event = _event(columns[found["status"]], found["status"], notes)
    ct_date = _to_dates(columns[found["ct_date"]], found["ct_date"], notes)
    ct_to_surgery = _to_float(columns[found["ct_to_surgery"]], found["ct_to_surgery"], notes)
    last_alive = _to_dates(columns[found["last_alive"]], found["last_alive"], notes)
    time_to_death = _to_float(columns[found["time_to_death"]], found["time_to_death"], notes)
    used = list(found.values())
    if _TCIA_DATE_OF_DEATH in columns:
        date_of_death = _to_dates(columns[_TCIA_DATE_OF_DEATH], _TCIA_DATE_OF_DEATH, notes)
        from_dates = (date_of_death - ct_date).dt.days - ct_to_surgery
        time_to_death = time_to_death.fillna(from_dates)
        used.append(_TCIA_DATE_OF_DEATH)
    censored_time = (last_alive - ct_date).dt.days.astype(float) - ct_to_surgery
    time = pd.Series(np.nan, index=event.index, dtype=float)
    time[event == 1] = time_to_death[event == 1]
    time[event == 0] = censored_time[event == 0]
    return time, event, used


def _clinical_column(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    try:
        values, _kind = _column_values(
            raw, name=column, declared=None, notes=notes, drop_constant=False, drop_free_text=False
        )
    except InputError:
        return _to_float(raw, column, notes)
    except _Dropped:
        return pd.Series(np.nan, index=raw.index, dtype=np.float64)
    return values


def _looks_identifying(column: str, raw: pd.Series) -> str | None:
    if _IDENTIFIER_HEADER.search(column):
        return "identifier-like name"
    present = raw[~raw.str.upper().isin(MISSING_TOKENS)]
    if present.empty:
        return None
    if present.str.match(_DATE_TEXT).mean() >= 0.8:
        return "dates"
    numbers = pd.to_numeric(present, errors="coerce")
    n_distinct = present.nunique()
    if numbers.isna().any() and _is_free_text(n_distinct, len(present)):
        return "free text"
    return None


def read_clinical(
    path: PathLike,
    *,
    id_column: str | None = None,
    mutation_columns: Sequence[str] | Mapping[str, str] | None = None,
    survival_time: str | None = None,
    survival_event: str | None = None,
    derive_survival: bool = False,
    covariates: Sequence[str] | None = None,
    keep_identifiers: bool = False,
) -> ReadResult:
    """Read a clinical table, one row per patient.

    Mutation columns (given, or detected by a header mentioning mutation / translocation /
    fusion or a driver gene such as EGFR, KRAS, ALK) are named by their gene (``"EGFR
    mutation status"`` -> ``"EGFR"``) and normalised to a Categorical [``Wildtype``,
    ``Mutant``]: Mutant / Mutation / Positive / Yes / 1 / Translocated -> Mutant; Wildtype /
    Wild type / WT / Negative / No / 0 -> Wildtype; Not collected / Unknown / N/A / Not
    Assessed / empty -> missing; anything else -> missing with a warning.

    Survival: ``survival_time`` (days, float) and ``survival_event`` (Dead / 1 -> 1.0,
    Alive / 0 -> 0.0) from the given columns; or, with ``derive_survival``, from the TCIA
    NSCLC Radiogenomics layout: event = Survival Status is Dead; time = Time to Death (days)
    for the dead (falling back to Date of Death − CT Date − Days between CT and surgery), else
    Date of Last Known Alive − CT Date − Days between CT and surgery (dates month/day/year).
    Negative times become missing with a warning.

    Columns that may identify a patient (names, record numbers, addresses, phone, e-mail,
    social security number, birth date, any ``Date`` column or column of dates, free text with
    many distinct values) are left out with a warning unless ``keep_identifiers``; explicitly
    requested columns are always kept. Every other column is kept: numeric columns as
    float64, the rest as Categorical (ordered when :func:`analysis.validate.infer_feature_type`
    finds an ordinal vocabulary, e.g. T stage). Column names are whitespace-collapsed with
    ``/`` replaced by ``_``.

    Parameters
    ----------
    path
        CSV / TSV / XLSX / Parquet.
    id_column
        Patient ID column (default: detected as in :func:`read_imaging`).
    mutation_columns
        Columns to treat as mutation status (a mapping gives their short names); ``[]`` for
        none; None to detect them.
    survival_time, survival_event
        Columns with survival time in days and the event indicator.
    derive_survival
        Derive survival from the TCIA layout (exclusive with the two above).
    covariates
        Columns to keep as adjustment covariates (numeric where possible).
    keep_identifiers
        Keep identifier-like columns.

    Returns
    -------
    :class:`ReadResult`: ``frame`` indexed by normalised patient ID; ``info``: ``mutations``
    (short names), ``covariates``, ``identifiers_dropped``, ``survival`` (bool),
    ``id_column``.

    Raises
    ------
    InputError
        Unreadable / empty file, duplicated patient IDs or column names, a named column that
        does not exist, incompatible survival options.
    """
    path = Path(path)
    notes = _Notes(path.name)
    if derive_survival and (survival_time or survival_event):
        raise InputError(
            "give either survival_time and survival_event or derive_survival=True, not both"
        )
    if bool(survival_time) != bool(survival_event):
        raise InputError("survival_time and survival_event must be given together")
    with _reading(path.name):
        header, body = _read_table(path, notes)
        _check_unique_header(header, path.name)
        id_position = _find_id_column(header, id_column, path.name)
        index, has_id = _patient_index(body.iloc[:, id_position], header[id_position], notes)
        body = body.loc[has_id]
        columns = {
            column: pd.Series(body.iloc[:, position].to_numpy(), index=index)
            for position, column in enumerate(header)
            if position != id_position
        }
        names = [c for c in header if c != header[id_position]]

        if mutation_columns is None:
            mutations = _detect_mutation_columns(names)
        elif isinstance(mutation_columns, Mapping):
            mutations = {
                _find_column(names, c, path.name, "mutation"): short
                for c, short in mutation_columns.items()
            }
        else:
            mutations = {
                _find_column(names, c, path.name, "mutation"): _mutation_name(c)
                for c in mutation_columns
            }
        shorts = pd.Series(list(mutations.values()))
        if shorts.duplicated().any():
            clash = shorts[shorts.duplicated()].iloc[0]
            raise InputError(
                f"{path.name}: several mutation columns map to {clash!r} "
                f"({_examples([c for c, s in mutations.items() if s == clash])}); pass "
                f"mutation_columns as a mapping column -> name"
            )

        out: dict[str, pd.Series] = {}
        for column, short in mutations.items():
            out[short] = _normalise_mutation(columns[column], column, notes)

        survival_sources: list[str] = []
        has_survival = False
        if survival_time:
            time_column = _find_column(names, survival_time, path.name, "survival time")
            event_column = _find_column(names, survival_event, path.name, "survival event")
            time = _to_float(columns[time_column], time_column, notes)
            event = _event(columns[event_column], event_column, notes)
            survival_sources = [time_column, event_column]
            has_survival = True
        elif derive_survival:
            time, event, survival_sources = _derive_tcia_survival(columns, names, notes)
            has_survival = True
        if has_survival:
            negative = time < 0
            if negative.any():
                notes.warn(
                    f"negative survival time for {int(negative.sum())} patients set to missing: "
                    f"{_examples(time.index[negative])}"
                )
                time[negative] = np.nan
            if time.isna().all():
                notes.warn("no patient has a usable survival time")
            out[SURVIVAL_TIME] = time.astype(float)
            out[SURVIVAL_EVENT] = event.astype(float)

        covariate_columns = [
            _find_column(names, c, path.name, "covariate") for c in (covariates or [])
        ]
        # Columns the user named are never second-guessed as identifiers (derived survival
        # reads date columns, which stay identifying).
        named_survival = survival_sources if survival_time else []
        requested = set(mutations) | set(covariate_columns) | set(named_survival)
        identifiers: list[str] = []
        for column in names:
            if column in requested:
                continue
            reason = _looks_identifying(column, columns[column])
            if reason and not keep_identifiers:
                identifiers.append(column)
        if identifiers:
            notes.warn(
                f"left out {len(identifiers)} columns that may identify patients (names, "
                f"dates, free text): {_examples(identifiers, 10)}; pass keep_identifiers=True "
                f"to keep them"
            )
        for column in covariate_columns:
            if _looks_identifying(column, columns[column]) and not keep_identifiers:
                notes.warn(f"covariate {column!r} may identify patients; kept as requested")

        covariate_names = [feature_id(column) for column in covariate_columns]
        empty: list[str] = []
        for column in [*covariate_columns, *names]:
            target = feature_id(column)
            if column in mutations or column in identifiers or target in out:
                if target in out and column not in mutations and column not in covariate_columns:
                    notes.warn(f"column {column!r} clashes with a derived column; left out")
                continue
            series = _clinical_column(columns[column], column, notes)
            if series.isna().all() and column not in covariate_columns:
                empty.append(column)
                continue
            out[target] = series
        if empty:
            notes.warn(f"left out {len(empty)} columns with no values: {_examples(empty)}")
    frame = pd.DataFrame(out, index=index)
    info = {
        "mutations": list(mutations.values()),
        "covariates": covariate_names,
        "identifiers_dropped": identifiers,
        "survival": has_survival,
        "survival_columns": survival_sources,
        "id_column": header[id_position],
    }
    return ReadResult(frame=frame, info=info, warnings=notes.messages, source=path.name)


# --------------------------------------------------------------------------- files & bundle


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


def save_bundle(adata: ad.AnnData, path: PathLike) -> Path:
    """Write the bundle atomically as ``.h5ad``.

    Parameters
    ----------
    adata
        The bundle.
    path
        Target file; its folder must exist.

    Returns
    -------
    The path written.
    """
    compact = _with_compact_imaging(adata)
    return _atomic_write(path, lambda temporary: compact.write_h5ad(temporary))


def _with_compact_imaging(adata: ad.AnnData) -> ad.AnnData:
    """A shallow copy whose imaging table is one float matrix plus a JSON encoding.

    h5ad stores every DataFrame column as its own HDF5 node; with 1,500 PyRadiomics features
    that alone takes seconds to write and to read. Categorical columns become their codes
    (NaN = missing); :func:`load_bundle` restores the DataFrame.
    """
    import anndata as ad

    imaging = adata.obsm.get(IMAGING_KEY)
    if not isinstance(imaging, pd.DataFrame):
        return adata
    values = np.empty(imaging.shape, dtype=np.float64)
    levels: list[list[str] | None] = []
    ordered: list[bool] = []
    for j, (_, column) in enumerate(imaging.items()):
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy()
            values[:, j] = np.where(codes < 0, np.nan, codes)
            levels.append([str(level) for level in column.cat.categories])
            ordered.append(bool(column.cat.ordered))
        else:
            values[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            levels.append(None)
            ordered.append(False)
    obsm = {key: value for key, value in adata.obsm.items() if key != IMAGING_KEY}
    obsm[IMAGING_VALUES_KEY] = values
    uns = dict(adata.uns)
    uns[UNS_KEY] = dict(uns.get(UNS_KEY, {}))
    uns[UNS_KEY][IMAGING_ENCODING_KEY] = json.dumps(
        {"columns": [str(c) for c in imaging.columns], "levels": levels, "ordered": ordered}
    )
    return ad.AnnData(
        X=adata.X,
        obs=adata.obs,
        var=adata.var,
        uns=uns,
        obsm=obsm,
        varm=dict(adata.varm),
        layers=dict(adata.layers),
    )


def _restore_imaging(adata: ad.AnnData) -> None:
    meta = adata.uns[UNS_KEY]
    encoding = meta.pop(IMAGING_ENCODING_KEY, None)
    if encoding is None or IMAGING_VALUES_KEY not in adata.obsm:
        return
    spec = json.loads(encoding)
    values = np.asarray(adata.obsm.pop(IMAGING_VALUES_KEY), dtype=np.float64)
    columns = {}
    for j, (name, levels, ordered) in enumerate(
        zip(spec["columns"], spec["levels"], spec["ordered"], strict=True)
    ):
        if levels is None:
            columns[name] = values[:, j]
        else:
            codes = np.where(np.isnan(values[:, j]), -1, values[:, j]).astype(int)
            columns[name] = pd.Categorical.from_codes(codes, categories=levels, ordered=ordered)
    adata.obsm[IMAGING_KEY] = pd.DataFrame(columns, index=adata.obs_names)


def _lists(value: object) -> object:
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()
    return value


def load_bundle(path: PathLike) -> ad.AnnData:
    """Read a bundle written by :func:`save_bundle` and check it is one this radmap reads.

    One-dimensional arrays inside ``uns["radmap"]`` (h5ad stores lists as arrays) come back
    as lists; tidy tables come back as DataFrames.

    Raises
    ------
    InputError
        Missing file, a file that is not h5ad (truncated, foreign format), an h5ad without
        ``uns["radmap"]``, or another bundle format version.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"bundle not found: {path}; run `radmap analyze` to make one")
    adata = _read_h5ad(path, remedy="run `radmap analyze` to make the bundle again")
    meta = adata.uns.get(UNS_KEY)
    if not isinstance(meta, Mapping):
        raise InputError(
            f"{path.name}: not a radmap bundle: no uns['{UNS_KEY}']; give a bundle.h5ad made by "
            "`radmap analyze`"
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(
            f"{path.name}: made by radmap format {version}, this radmap reads {FORMAT_VERSION}: "
            f"re-run `radmap analyze`"
        )
    adata.uns[UNS_KEY] = _lists(dict(meta))
    _restore_imaging(adata)
    return adata
