"""Tidy tables from a bundle, for notebooks, spreadsheets and R (``radmap.get.*``).

Every function takes the bundle's AnnData (:func:`radmap.read_bundle` or the result of the
tools) and returns a new pandas DataFrame; nothing in the AnnData changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import bundle
from .validate import InputError

if TYPE_CHECKING:  # anndata (with dask and zarr) costs a second: `radmap analyze` loads
    import anndata as ad  # it in the background while the inputs are read

__all__ = [
    "associations",
    "enrichment",
    "features",
    "gene_associations",
    "gene_hits",
    "modules",
    "mutations",
    "survival",
]


def _uns(adata: ad.AnnData) -> dict:
    uns = adata.uns.get(bundle.UNS_KEY)
    if not isinstance(uns, dict):
        raise InputError('not a radmap AnnData: no uns["radmap"]; run the radmap tools first')
    return uns


def _table(adata: ad.AnnData, key: str, step: str) -> pd.DataFrame:
    table = _uns(adata).get(key)
    if not isinstance(table, pd.DataFrame):
        raise InputError(f'uns["radmap"]["{key}"] is missing; run {step} first')
    return table.copy()


def _below(table: pd.DataFrame, q: float | None) -> pd.DataFrame:
    if q is None:
        return table.reset_index(drop=True)
    return table[pd.to_numeric(table["q"], errors="coerce") < q].reset_index(drop=True)


def associations(adata: ad.AnnData, *, q: float | None = None) -> pd.DataFrame:
    """Module x imaging feature associations (one row per pair), sorted by p.

    Parameters
    ----------
    q
        Keep only rows with q below this value.
    """
    table = _table(adata, "associations", "radmap.tl.associate")
    return _below(table.sort_values("p", kind="stable"), q)


def features(adata: ad.AnnData) -> pd.DataFrame:
    """The imaging features: label, type, source, group, levels, test, n."""
    return _table(adata, "features", "radmap.read")


def modules(adata: ad.AnnData) -> pd.DataFrame:
    """The modules: size, hub genes, variance explained, top pathway."""
    return _table(adata, "modules", "radmap.tl.modules")


def enrichment(adata: ad.AnnData, *, module: str | None = None, q: float | None = None):
    """Pathway over-representation per module (optionally one module, q below a value)."""
    table = _table(adata, "enrichment", "radmap.tl.enrich")
    if module is not None:
        table = table[table["module"].astype(str) == str(module)]
    return _below(table.sort_values("p", kind="stable"), q)


def mutations(adata: ad.AnnData, *, against: str = "imaging", q: float | None = None):
    """Mutation status against imaging features (``against="imaging"``) or modules."""
    if against not in ("imaging", "modules"):
        raise InputError(f"against must be 'imaging' or 'modules', not {against!r}")
    table = _table(adata, f"mutation_{against}", "radmap.tl.mutations")
    return _below(table.sort_values("p", kind="stable"), q)


def survival(adata: ad.AnnData, *, q: float | None = None) -> pd.DataFrame:
    """Survival tests of modules, imaging features and mutations."""
    table = _table(adata, "survival", "radmap.tl.survival")
    return _below(table.sort_values("p", kind="stable"), q)


def _gene_arrays(adata: ad.AnnData) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    uns = _uns(adata)
    if bundle.GENE_P not in adata.varm or "gene_features" not in uns:
        raise InputError("gene-level associations are missing; run radmap.tl.associate first")
    features = np.asarray(uns["gene_features"], dtype=object)
    arrays = {
        "statistic": np.asarray(adata.varm[bundle.GENE_STATISTIC], dtype=np.float64),
        "effect": np.asarray(adata.varm[bundle.GENE_EFFECT], dtype=np.float64),
        "p": np.asarray(adata.varm[bundle.GENE_P], dtype=np.float64),
        "q": np.asarray(adata.varm[bundle.GENE_Q], dtype=np.float64),
    }
    return features, arrays


def gene_hits(
    adata: ad.AnnData, *, feature: str | None = None, per_feature: int = 50
) -> pd.DataFrame:
    """The strongest genes (smallest p) of every imaging feature (or one), as a tidy table."""
    features, arrays = _gene_arrays(adata)
    uns = _uns(adata)
    p = arrays["p"]
    columns_kept = np.arange(p.shape[1])
    if feature is not None:
        if feature not in set(features):
            raise InputError(f"feature {feature!r} has no gene-level tests in this bundle")
        columns_kept = np.flatnonzero(features == feature)
    keep = min(per_feature, p.shape[0])
    order = _smallest_per_column(p[:, columns_kept], keep)
    cols = columns_kept[np.broadcast_to(np.arange(len(columns_kept)), order.shape)]
    rows, cols = order.ravel(order="F"), cols.ravel(order="F")
    table = pd.DataFrame(
        {
            "feature": features[cols],
            "gene": adata.var_names.to_numpy()[rows],
            "module": adata.var["module"].astype(str).to_numpy()[rows]
            if "module" in adata.var
            else bundle.UNASSIGNED,
            **{name: values[rows, cols] for name, values in arrays.items()},
            "n": np.asarray(uns["gene_n"], dtype=int)[cols],
        }
    )
    return table[table["p"].notna()].reset_index(drop=True)


def _smallest_per_column(p: np.ndarray, keep: int) -> np.ndarray:
    """Rows of the ``keep`` smallest values of each column (NaN last, ties in row order), as
    a ``keep x columns`` array: a stable argsort's first rows, found by partitioning first."""
    key = np.where(np.isnan(p), np.inf, p).T
    if keep == 0 or key.shape[1] == 0:
        return np.empty((keep, key.shape[0]), dtype=np.intp)
    threshold = np.partition(key, keep - 1, axis=1)[:, keep - 1 : keep]
    order = np.empty((key.shape[0], keep), dtype=np.intp)
    for column, (values, limit) in enumerate(zip(key, threshold)):
        candidates = np.flatnonzero(values <= limit)
        order[column] = candidates[np.argsort(values[candidates], kind="stable")[:keep]]
    return order.T


def gene_associations(adata: ad.AnnData, gene: str) -> pd.DataFrame:
    """One gene against every imaging feature, sorted by p."""
    features, arrays = _gene_arrays(adata)
    if gene not in adata.var_names:
        raise InputError(f"gene {gene!r} is not among the bundle's {adata.n_vars} genes")
    row = adata.var_names.get_loc(gene)
    table = pd.DataFrame(
        {"feature": features, **{name: values[row] for name, values in arrays.items()}}
    )
    table["n"] = np.asarray(_uns(adata)["gene_n"], dtype=int)
    return table.dropna(subset=["p"]).sort_values("p", kind="stable").reset_index(drop=True)
