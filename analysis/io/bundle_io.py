"""Saving and loading the bundle (``.h5ad``) with its compact imaging encoding."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..bundle import (
    EIGENGENES_KEY,
    FORMAT_VERSION,
    GENE_STAT_KEYS,
    IMAGING_ENCODING_KEY,
    IMAGING_KEY,
    IMAGING_VALUES_KEY,
    NO_EXPRESSION_CLINICAL,
    NO_EXPRESSION_IDS,
    NO_EXPRESSION_IMAGING,
    NO_EXPRESSION_IMAGING_VALUES,
    UNS_KEY,
)
from ..validate import InputError

# anndata and h5py (about half a second to import) are imported where h5ad files are read
# or written, so that a bad table is reported without that wait.
if TYPE_CHECKING:
    import anndata as ad


from .common import PathLike
from .expression import _read_h5ad
from .files import _atomic_write


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


def _encode_imaging(imaging: pd.DataFrame) -> tuple[np.ndarray, str]:
    """An imaging table as one float matrix (category codes, NaN = missing) + JSON encoding."""
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
    spec = {"columns": [str(c) for c in imaging.columns], "levels": levels, "ordered": ordered}
    return values, json.dumps(spec)


def _decode_imaging(values: np.ndarray, encoding: str, index: pd.Index) -> pd.DataFrame:
    spec = json.loads(encoding)
    values = np.asarray(values, dtype=np.float64).reshape(len(index), len(spec["columns"]))
    columns = {}
    for j, (name, levels, ordered) in enumerate(
        zip(spec["columns"], spec["levels"], spec["ordered"], strict=True)
    ):
        if levels is None:
            columns[name] = values[:, j]
        else:
            codes = np.where(np.isnan(values[:, j]), -1, values[:, j]).astype(int)
            columns[name] = pd.Categorical.from_codes(codes, categories=levels, ordered=ordered)
    return pd.DataFrame(columns, index=index)


def _with_compact_imaging(adata: ad.AnnData) -> ad.AnnData:
    """A shallow copy whose imaging tables are float matrices plus a JSON encoding.

    h5ad stores every DataFrame column as its own HDF5 node; with 1,500 PyRadiomics features
    that alone takes seconds to write and to read. Categorical columns become their codes
    (NaN = missing); :func:`load_bundle` restores the DataFrames. The same is done for the
    imaging of patients without expression (``uns["radmap"]["no_expression_imaging"]``).
    """
    import anndata as ad

    imaging = adata.obsm.get(IMAGING_KEY)
    if not isinstance(imaging, pd.DataFrame):
        return adata
    values, encoding = _encode_imaging(imaging)
    obsm = {key: value for key, value in adata.obsm.items() if key != IMAGING_KEY}
    obsm[IMAGING_VALUES_KEY] = values
    uns = dict(adata.uns)
    uns[UNS_KEY] = dict(uns.get(UNS_KEY, {}))
    uns[UNS_KEY][IMAGING_ENCODING_KEY] = encoding
    others = uns[UNS_KEY].pop(NO_EXPRESSION_IMAGING, None)
    if isinstance(others, pd.DataFrame):
        other_values, other_encoding = _encode_imaging(others)
        uns[UNS_KEY][NO_EXPRESSION_IMAGING_VALUES] = other_values
        uns[UNS_KEY][NO_EXPRESSION_IMAGING + "_encoding"] = other_encoding
        uns[UNS_KEY][NO_EXPRESSION_IDS] = [str(i) for i in others.index]
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
    other_encoding = meta.pop(NO_EXPRESSION_IMAGING + "_encoding", None)
    if other_encoding is not None and NO_EXPRESSION_IMAGING_VALUES in meta:
        ids = pd.Index([str(i) for i in meta.pop(NO_EXPRESSION_IDS, [])])
        values = meta.pop(NO_EXPRESSION_IMAGING_VALUES)
        meta[NO_EXPRESSION_IMAGING] = _decode_imaging(values, other_encoding, ids)
    if encoding is None or IMAGING_VALUES_KEY not in adata.obsm:
        return
    values = adata.obsm.pop(IMAGING_VALUES_KEY)
    adata.obsm[IMAGING_KEY] = _decode_imaging(values, encoding, adata.obs_names)


def all_patients(adata: ad.AnnData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Imaging and clinical tables of every patient of the study: the bundle's patients (with
    expression) followed by those without expression (``uns["radmap"]`` slots
    ``no_expression_imaging`` / ``no_expression_clinical``), as the analyses that need no
    expression (mutation x imaging, imaging x survival, mutation x survival) use them."""
    meta = adata.uns.get(UNS_KEY, {})
    imaging = adata.obsm[IMAGING_KEY]
    clinical = adata.obs
    other_imaging = meta.get(NO_EXPRESSION_IMAGING)
    other_clinical = meta.get(NO_EXPRESSION_CLINICAL)
    if isinstance(other_imaging, pd.DataFrame) and len(other_imaging):
        imaging = _concat_keep_categories(imaging, other_imaging.reindex(columns=imaging.columns))
    if isinstance(other_clinical, pd.DataFrame) and len(other_clinical):
        clinical = _concat_keep_categories(
            clinical, other_clinical.reindex(columns=clinical.columns)
        )
    index = imaging.index.union(clinical.index, sort=False)
    return imaging.reindex(index), clinical.reindex(index)


def _concat_keep_categories(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    out = pd.concat([first, second.loc[second.index.difference(first.index, sort=False)]])
    for name, column in first.items():
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = pd.Categorical(out[name].astype(object), dtype=column.dtype)
    return out


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
            f"{path.name}: made by radmap format {version}, this radmap reads {FORMAT_VERSION} "
            f"(format 2 keeps the patients without expression, the correction family of every "
            f"q and the effect measures): re-run `radmap analyze` on the inputs"
        )
    adata.uns[UNS_KEY] = _lists(dict(meta))
    _restore_imaging(adata)
    validate_bundle(adata, name=path.name)
    return adata


def bundle_format(path: PathLike) -> str | None:
    """The format version a bundle file records, without loading it (``None`` when the file
    is missing, unreadable or not a radmap bundle)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            value = handle[f"uns/{UNS_KEY}/format_version"][()]
    except (OSError, KeyError, ValueError):
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


REQUIRED_TABLES = {
    "features": ("label", "type", "source"),
    "modules": ("size", "hub_genes"),
    "associations": ("module", "feature", "effect", "p", "q", "n"),
}


def validate_bundle(adata: ad.AnnData, *, name: str = "bundle") -> None:
    """Check the slots the explorer reads; the error names the first missing or malformed one.

    Raises
    ------
    InputError
        ``uns["radmap"]`` without a required table or column, an imaging table that does not
        match the feature table, missing module labels or eigengenes, or gene-level arrays
        whose shape does not match the genes and ``gene_features``.
    """
    meta = adata.uns.get(UNS_KEY)
    if not isinstance(meta, Mapping):
        raise InputError(f'{name}: not a radmap bundle: no uns["{UNS_KEY}"]')

    def bad(slot: str, problem: str) -> InputError:
        return InputError(f"{name}: {slot} {problem}; re-run `radmap analyze` to rebuild it")

    for key, columns in REQUIRED_TABLES.items():
        table = meta.get(key)
        if not isinstance(table, pd.DataFrame):
            raise bad(f'uns["{UNS_KEY}"]["{key}"]', "is missing or not a table")
        absent = [c for c in columns if c not in table.columns]
        if absent:
            raise bad(f'uns["{UNS_KEY}"]["{key}"]', f"lacks the column {absent[0]!r}")
    imaging = adata.obsm.get(IMAGING_KEY)
    if not isinstance(imaging, pd.DataFrame):
        raise bad(f'obsm["{IMAGING_KEY}"]', "is missing or not a table")
    unknown = [c for c in imaging.columns if c not in meta["features"].index]
    if unknown:
        raise bad(f'obsm["{IMAGING_KEY}"]', f"has feature {unknown[0]!r} not in the feature table")
    if "module" not in adata.var:
        raise bad('var["module"]', "is missing")
    if EIGENGENES_KEY not in adata.obsm:
        raise bad(f'obsm["{EIGENGENES_KEY}"]', "is missing")
    gene_features = meta.get("gene_features")
    if gene_features is not None:
        shape = (adata.n_vars, len(gene_features))
        for key in GENE_STAT_KEYS:
            if key not in adata.varm:
                raise bad(f'varm["{key}"]', "is missing")
            if tuple(np.shape(adata.varm[key])) != shape:
                raise bad(f'varm["{key}"]', f"has shape {np.shape(adata.varm[key])}, not {shape}")
        if len(meta.get("gene_n", ())) != len(gene_features):
            raise bad(f'uns["{UNS_KEY}"]["gene_n"]', "does not match gene_features")
