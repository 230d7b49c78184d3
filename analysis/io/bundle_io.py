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
    validate_bundle(adata, name=path.name)
    return adata


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
