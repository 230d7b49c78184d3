"""Reading an expression matrix (genes x samples or samples x genes) in the formats labs have."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..validate import InputError, normalise_id, select_tcga_samples

# anndata and h5py (about half a second to import) are imported where h5ad files are read
# or written, so that a bad table is reported without that wait.
if TYPE_CHECKING:
    import anndata as ad


from .common import (
    _DECIMAL_COMMA,
    _DECIMAL_COMMA_HINT,
    _ENSEMBL,
    _SAMPLE_ID,
    PathLike,
    ReadResult,
    _describe,
    _examples,
    _Notes,
    _reading,
)
from .tables import (
    _arrow_numeric_table,
    _binary_kind,
    _check_file,
    _check_format,
    _fast_numeric_table,
    _is_text_table,
    _load_text,
    _parse_cells,
    _plain_text_bytes,
    _read_table,
    _split_suffix,
)


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
        "- pass --orientation samples_by_genes if that is wrong"
    )
    return "genes_by_samples"


def _scale_hint(frame: pd.DataFrame) -> str:
    values = frame.to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanmin(values), np.nanmax(values)  # no infinities are left here
    if not np.isfinite(low):
        return "log"
    if low >= 0:
        if high > 100 and _all_integers(values):
            return "counts"
        if high > 50:
            return "fpkm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        has_nan = bool(np.isnan(values).any())
        means = np.nanmean(values, axis=0) if has_nan else values.mean(axis=0)
        n_values = (~np.isnan(values)).sum(axis=0) if has_nan else len(values)
        ok = np.isfinite(means) & (n_values >= 2)  # where an SD exists
        if not ok.any() or np.median(np.abs(means[ok])) >= 0.1:
            return "log"  # not z-scores whatever the SDs (saves a pass over the matrix)
        sds = np.nanstd(values, axis=0, ddof=1) if has_nan else values.std(axis=0, ddof=1)
    ok &= np.isfinite(sds)
    if ok.any() and np.median(np.abs(means[ok])) < 0.1 and np.median(np.abs(sds[ok] - 1)) < 0.1:
        return "zscore"
    return "log"


def _all_integers(values: np.ndarray, *, sample_size: int = 65_536) -> bool:
    """Whether every finite value is a whole number.

    A strided sample answers "no" for nearly every non-count matrix at once; only when the
    sample is all whole numbers is the whole matrix checked, block by block.
    """
    flat = values.reshape(-1)
    for part in (flat[:: max(flat.size // sample_size, 1)], *np.array_split(flat, 16)):
        finite = part[np.isfinite(part)]
        if not np.all(finite == np.round(finite)):
            return False
    return True


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


_GENE_ID_LABELS = frozenset({"entrezgeneid", "entrezid", "entrez", "geneid", "locuslinkid"})
"""Second label columns of expression tables (letters only, lower case), not samples."""


def _expression_from_table(
    path: Path, orientation: str, notes: _Notes
) -> tuple[list[str], list[str], np.ndarray, str]:
    """Samples, genes and a samples x genes matrix, plus the orientation used."""
    fast = None
    if _is_text_table(path):
        plain = _plain_text_bytes(path)
        fast = _arrow_numeric_table(*plain) if plain is not None else None
    loaded = None
    if fast is None and _is_text_table(path):
        loaded = _load_text(path, notes)
        fast = _fast_numeric_table(*loaded)
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
    cells = body.iloc[:, 1:]
    missing, numbers = _parse_cells(cells)
    text_row = len(body) > 1 and np.isnan(numbers[0]).all() and not missing[0].all()
    if text_row and (~np.isnan(numbers[1:]) | missing[1:]).mean() > 0.9:
        # Firehose / TCGA level-3 files: "Composite Element REF  Signal  Signal ..."
        notes.warn(
            f"left out a second header row ({_examples(body.iloc[0].unique().tolist(), 3)}) "
            "under the sample names (TCGA Firehose layout)"
        )
        body, cells = body.iloc[1:], cells.iloc[1:]
        missing, numbers = missing[1:], numbers[1:]
    row_labels = body.iloc[:, 0].tolist()
    column_labels = header[1:]
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


ENSEMBL_GENE = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$", re.IGNORECASE)
"""Ensembl gene IDs, with or without a version (``ENSG00000141510``, ``ENSG00000141510.16``)."""
EXCEL_DATE = re.compile(
    r"^(\d{1,2}-(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    r"|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)-\d{1,2}"
    r"|\d{4}-\d{2}-\d{2}( 00:00:00)?|\d{1,2}/\d{1,2}/\d{2,4})$",
    re.IGNORECASE,
)
"""Gene symbols that a spreadsheet turned into dates (SEPTIN2 -> ``2-Sep``, MARCHF1 -> ``1-Mar``)."""


def check_gene_labels(labels: Sequence[object], notes: _Notes) -> None:
    """Warn about gene labels that enrichment cannot use: Ensembl IDs, Excel-made dates."""
    labels = [str(label) for label in labels]
    if not labels:
        return
    ensembl = [label for label in labels if ENSEMBL_GENE.match(label)]
    if len(ensembl) >= max(1, len(labels) // 2):
        notes.warn(
            f"{len(ensembl)} of {len(labels)} genes are Ensembl IDs ({_examples(ensembl, 3)}), "
            "not HGNC symbols: pathway enrichment matches symbols and will find nothing; map "
            "the IDs to symbols first (e.g. with Ensembl BioMart) for pathways"
        )
    dates = [label for label in labels if EXCEL_DATE.match(label)]
    if dates:
        notes.warn(
            f"{len(dates)} gene symbols look like dates made by a spreadsheet "
            f"({_examples(dates)}; '2-Sep' was SEPTIN2, '1-Mar' MARCHF1): fix them in the "
            "source file or export it without opening it in Excel"
        )


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
        raise InputError(f"--max-missing must be a fraction between 0 and 1, not {max_missing!r}")

    with _reading(path.name):
        _check_file(path)
        _check_format(path, h5ad=True)
        if _split_suffix(path)[0] == ".h5ad":
            samples, genes, matrix = _expression_from_h5ad(path)
            orientation = "samples_by_genes"
        else:
            samples, genes, matrix, orientation = _expression_from_table(path, orientation, notes)

        all_samples = [str(s) for s in samples]
        selection = select_tcga_samples(list(samples))
        for message in selection.messages:
            notes.warn(message)
        if not selection.keep.all():
            samples = [s for s, kept in zip(samples, selection.keep) if kept]
            matrix = matrix[selection.keep]
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
        annotation = [
            s
            for s in frame.index
            if orientation == "genes_by_samples"
            and re.sub(r"[^a-z]", "", s.lower()) in _GENE_ID_LABELS
        ]
        if annotation:
            notes.warn(
                f"left out the gene annotation column {_examples(annotation)} (cBioPortal "
                "layout: Hugo_Symbol, Entrez_Gene_Id, samples)"
            )
            frame = frame.drop(index=annotation)
        ids_met = {
            raw: patient
            for raw in all_samples
            if (patient := normalise_id(raw)) and patient not in annotation
        }

        unnamed = frame.columns == ""
        if unnamed.any():
            notes.warn(f"dropped {int(unnamed.sum())} rows without a gene symbol")
            frame = frame.loc[:, ~unnamed]
        check_gene_labels(frame.columns, notes)

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
        dropped_genes = {
            str(gene): f"more than {max_missing:.0%} of its values missing ({fraction:.0%})"
            for gene, fraction in missing_fraction[too_sparse].items()
        }
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

    frame = frame.astype(np.float64, copy=False)
    frame.index.name = None
    frame.columns.name = None
    info = {
        "orientation": orientation,
        "n_genes": int(frame.shape[1]),
        "n_samples": int(frame.shape[0]),
        "duplicates_collapsed": int(duplicates_collapsed),
        "dropped_missing": int(too_sparse.sum()),
        "dropped_genes": dropped_genes,
        "scale_hint": _scale_hint(frame),
    }
    return ReadResult(
        frame=frame, info=info, warnings=notes.messages, source=path.name, ids=ids_met
    )
