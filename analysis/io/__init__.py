"""Readers for a lab's files, and safe reading and writing of the radmap bundle.

One module per kind of input: :mod:`.tables` (any table file), :mod:`.expression`,
:mod:`.imaging`, :mod:`.aim`, :mod:`.clinical`; :mod:`.bundle_io` saves and loads the bundle and
:mod:`.files` holds the one atomic write.

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
``NaN``, ``#N/A``, ``Not Collected``, ``Not Assessed``, ``Unknown``, TCGA's ``[Not Available]``
family, GDC's ``'--`` or empty are missing. Extra header rows under the column names (TCGA
Biotab: alternative names, ``CDE_ID:`` codes) and cBioPortal's ``#`` metadata lines are left
out. Patient and sample IDs go through :func:`analysis.validate.normalise_id` (stripped,
whitespace collapsed, upper-cased, TCGA barcodes reduced to the patient) and
:func:`analysis.validate.select_tcga_samples` (TCGA normal-tissue samples left out).
"""

from __future__ import annotations

from .aim import radlex_aim_codes, read_aim
from .bundle_io import all_patients, load_bundle, save_bundle, validate_bundle
from .clinical import marker_name, read_clinical
from .common import MISSING_TOKENS, ReadResult, option_pairs
from .expression import read_expression
from .features import feature_id
from .files import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_text,
    csv_text,
    file_sha256,
    spreadsheet_safe,
)
from .imaging import combine_imaging, read_imaging

__all__ = [
    "MISSING_TOKENS",
    "ReadResult",
    "atomic_write_bytes",
    "atomic_write_csv",
    "atomic_write_text",
    "combine_imaging",
    "csv_text",
    "feature_id",
    "file_sha256",
    "all_patients",
    "load_bundle",
    "marker_name",
    "option_pairs",
    "radlex_aim_codes",
    "read_aim",
    "read_clinical",
    "read_expression",
    "read_imaging",
    "save_bundle",
    "validate_bundle",
    "spreadsheet_safe",
]
