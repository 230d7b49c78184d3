"""Multiple-testing control: Benjamini–Hochberg within declared families, and the two-level
(hierarchical) procedure of Benjamini & Bogomolov (2014) for a map of families.

Every q the bundle stores comes from here, with the name of its family next to it, so that
a reader knows which tests a q was corrected against.

- :func:`bh`: BH q-values over all non-NaN entries of an array (a NaN p is not a test and
  does not change the others' q).
- :func:`family_q`: BH separately within each family label.
- :func:`hierarchical`: the gene x feature map. Each feature is a family of genes; features
  are selected by BH over their Simes p-values, and genes within the R selected features of
  m are rejected by BH at level ``alpha * R / m``. This controls the FDR over the selected
  features (Benjamini & Bogomolov 2014, J R Stat Soc B 76:297, Theorem 1, for independent
  or PRDS p-values across families) and, through the Simes selection, the chance of any
  discovery when nothing is linked at all: the false-discovery behaviour of the whole map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from .validate import InputError


def bh(p: ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg q-values over all non-NaN entries of an array of any shape.

    Parameters
    ----------
    p
        p-values; NaN entries stay NaN and do not count towards the number of tests.

    Returns
    -------
    q-values with the shape of ``p`` (float64).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        q[tested] = stats.false_discovery_control(p[tested], method="bh")
    return q


def bh_columns(p: ArrayLike) -> np.ndarray:
    """:func:`bh` of each column of a 2-D array separately (one family per column, e.g. the
    genes of each feature), all columns at once: the same values as calling :func:`bh` on each,
    without its per-call cost (a gene map has thousands of features)."""
    p = np.asarray(p, dtype=np.float64)
    tested = ~np.isnan(p)
    if p.ndim != 2 or not p.size or not np.all((p[tested] >= 0) & (p[tested] <= 1)):
        return np.column_stack([bh(column) for column in p.T]) if p.size else p.copy()
    m = tested.sum(axis=0)
    order = np.argsort(np.where(tested, p, np.inf), axis=0, kind="stable")
    rank = np.arange(1, p.shape[0] + 1)[:, None]
    kept = rank <= m
    scaled = np.where(kept, np.take_along_axis(p, order, axis=0) * (m / rank), np.inf)
    scaled = np.minimum.accumulate(scaled[::-1], axis=0)[::-1]
    q = np.full(p.shape, np.nan)
    np.put_along_axis(q, order, np.where(kept, np.clip(scaled, 0.0, 1.0), np.nan), axis=0)
    return q


def family_q(p: ArrayLike, families: ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg q-values computed separately within each family.

    Parameters
    ----------
    p
        p-values (1-D); NaN entries stay NaN.
    families
        Family label of each p-value (same length).

    Returns
    -------
    q-values (float64), each corrected only against the p-values of its own family.
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    labels = pd.factorize(pd.Series(np.asarray(families, dtype=object).ravel()), sort=False)[0]
    if len(labels) != len(p):
        raise InputError(f"family_q: {len(p)} p-values but {len(labels)} family labels")
    q = np.full(p.shape, np.nan)
    for family in np.unique(labels):
        members = labels == family
        q[members] = bh(p[members])
    return q


def simes(p: np.ndarray) -> np.ndarray:
    """Simes p-value of each column of a (tests x families) matrix, NaN entries ignored.

    Equals the smallest BH q-value of the column; NaN for a column without any p-value.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    tested = (~np.isnan(p)).sum(axis=0)
    ordered = np.sort(np.where(np.isnan(p), np.inf, p), axis=0)
    ranks = np.arange(1, p.shape[0] + 1)[:, None]
    with np.errstate(invalid="ignore"):
        scaled = ordered * tested[None, :] / ranks
    scaled[ranks > tested[None, :]] = np.inf
    out = np.minimum(scaled.min(axis=0, initial=np.inf), 1.0)
    out[tested == 0] = np.nan
    return out


@dataclass
class Hierarchical:
    """Result of :func:`hierarchical` on a tests x families matrix.

    Attributes
    ----------
    q
        Map-level q (tests x families): within a selected family, its BH q scaled by
        ``m / R``; 1 in families that were not selected; NaN where p is NaN. A test is a
        discovery of the map at ``alpha`` exactly when ``q <= alpha``.
    family_p
        Simes p-value of each family.
    family_q
        BH q-value of each family's Simes p (over families).
    selected
        Families selected at ``alpha``.
    alpha
        The level the selection was made at (the map-level q depends on it through R).
    """

    q: np.ndarray
    family_p: np.ndarray
    family_q: np.ndarray
    selected: np.ndarray
    alpha: float

    @property
    def n_discoveries(self) -> int:
        return int(np.nansum(self.q <= self.alpha))


def hierarchical(p: ArrayLike, *, alpha: float = 0.05) -> Hierarchical:
    """Benjamini–Bogomolov two-level FDR control over a matrix of families.

    Parameters
    ----------
    p
        p-values, tests (genes) x families (features); NaN = not tested.
    alpha
        Target level, at both the family and the within-family step.

    Returns
    -------
    :class:`Hierarchical`.
    """
    if not 0 < alpha < 1:
        raise InputError(f"hierarchical: alpha must be in (0, 1), not {alpha!r}")
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2:
        raise InputError("hierarchical: p must be a tests x families matrix")
    family_p = simes(p) if p.size else np.full(p.shape[1], np.nan)
    family_level_q = bh(family_p)
    selected = family_level_q <= alpha
    m = int((~np.isnan(family_p)).sum())
    n_selected = int(selected.sum())
    q = np.where(np.isnan(p), np.nan, 1.0)
    if n_selected:
        within = np.column_stack([bh(p[:, j]) for j in np.flatnonzero(selected)])
        q[:, selected] = np.minimum(within * m / n_selected, 1.0)
    return Hierarchical(q, family_p, family_level_q, selected, float(alpha))


def across_families(p: ArrayLike, families: ArrayLike, *, alpha: float = 0.05) -> np.ndarray:
    """Analysis-level q over declared families (Benjamini–Bogomolov with families as groups).

    Each family's Simes p is tested by BH across families; within the R selected families
    of m, the family's BH q is scaled by ``m / R`` (1 in families not selected). A test is a
    discovery of the whole analysis at ``alpha`` when this q is at most ``alpha``: under a
    full null the chance of any discovery stays near ``alpha`` however many families the
    analysis declares, while each family keeps its own BH q for reading one family at a time.

    Parameters
    ----------
    p
        p-values (1-D); NaN = not tested.
    families
        Family label of each p-value.
    alpha
        Level of the family selection.
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    labels = pd.factorize(pd.Series(np.asarray(families, dtype=object).ravel()), sort=True)[0]
    if len(labels) != len(p):
        raise InputError(f"across_families: {len(p)} p-values but {len(labels)} family labels")
    n_families = int(labels.max()) + 1 if len(labels) else 0
    matrix = np.full((int(np.bincount(labels).max(initial=0)), n_families), np.nan)
    rows = np.zeros(len(p), dtype=np.intp)
    for family in range(n_families):
        members = np.flatnonzero(labels == family)
        rows[members] = np.arange(len(members))
        matrix[: len(members), family] = p[members]
    if matrix.size == 0:
        return np.full(p.shape, np.nan)
    result = hierarchical(matrix, alpha=alpha)
    return result.q[rows, labels]
