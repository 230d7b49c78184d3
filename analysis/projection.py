"""Permutation null on residualised ranks: covariate-adjusted maps and the gene map.

The kernel of :mod:`radmap.analysis.null` generalised to covariates (``--adjust-for``). Every
tested feature is turned into orthonormal columns ``W_f`` over the patients it uses (its
*pattern*): the centred ranks of a continuous / ordinal feature, or the centred indicators of
the groups of a binary / categorical feature, each residualised on the pattern's
``[1, covariates]`` basis ``Q_s``. The variables (eigengenes or genes) enter as their ranks
over the patients, residualised on ``[1, covariates]`` (``e``). Then, for a variable and a
feature, with ``u = e' W_f`` and ``ss = |e|²_s - |Q_s' e|²`` (the variable's residual sum of
squares within the pattern), the explained fraction ``u'u / ss`` gives

- without covariates: Spearman's rho (``u / sqrt(ss)``) and the tie-corrected
  Kruskal–Wallis H (``(n - 1) u'u / ss``), exactly as in :mod:`radmap.analysis.null`;
- with covariates: the partial Spearman correlation of
  :func:`radmap.analysis.associate.associate` (t-test on ``n - 2 - k`` degrees of freedom) and
  the F test of the group block in ``rank(value) ~ covariates + groups`` (rank ANCOVA).

A permutation reorders the patients' rows of the feature side (``W``, ``Q`` and the pattern
indicators together) against the residualised variables: this is the Freedman–Lane scheme
(residuals of the reduced model ``rank(value) ~ covariates`` permuted, the full model refitted),
so the permuted maps test the same adjusted statistic as the observed one. All the numbers
of a block of permutations come from two matrix products (``e' [W Q]`` and ``(e²)' I``).

Permutation ``b`` is drawn from ``SeedSequence(seed, spawn_key=(b,))``; blocks have a size
fixed by the data's shape, so the result does not depend on workers or scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from .associate import _covariate_matrix, _orthonormal_basis
from .null import (
    CORRELATION_TYPES,
    NullResult,
    _rounded,
    bh_discoveries_by_family,
    feature_columns,
)
from .parallel import blocks, n_cores, run_tasks, task_rng
from .validate import InputError

logger = logging.getLogger("radmap")

DEFAULT_GENE_PERMUTATIONS = 100
BLOCK_ELEMENTS = 12_000_000
"""Variables x permutations x design columns held at once (sets the block size)."""
_TIE = 1e-6


@dataclass
class ProjectionDesign:
    """The feature side of a map, as orthonormal columns (see the module docstring).

    Attributes
    ----------
    columns
        Patients x (feature columns | pattern bases | pattern indicators).
    n_feature_cols, n_basis_cols
        Widths of the first two blocks (the indicators fill the rest).
    feature_starts
        First column of each tested feature (its columns are contiguous).
    pattern
        Pattern (set of patients) of each tested feature.
    basis_starts
        First basis column of each pattern.
    basis_rank
        Rank of ``[1, covariates]`` within each pattern.
    n_used
        Patients used per tested feature.
    width
        Columns of each tested feature (1 for correlations, groups - 1 for group tests).
    is_correlation
        Per tested feature.
    adjusted
        Whether covariates were given (F tests for groups, partial correlations).
    ratio_critical
        Per tested feature: the explained fraction at which ``p = alpha`` (set by
        :func:`critical_ratios`).
    """

    columns: np.ndarray
    n_feature_cols: int
    n_basis_cols: int
    feature_starts: np.ndarray
    pattern: np.ndarray
    basis_starts: np.ndarray
    basis_rank: np.ndarray
    n_used: np.ndarray
    width: np.ndarray
    is_correlation: np.ndarray
    adjusted: bool
    ratio_critical: np.ndarray | None = None

    @property
    def residual_dof(self) -> np.ndarray:
        """Denominator degrees of freedom per tested feature."""
        return self.n_used - self.basis_rank[self.pattern] - self.width


def projection_design(
    features: pd.DataFrame,
    types: Mapping[str, str],
    covariates: np.ndarray | None,
    *,
    min_n: int = 10,
    min_group: int = 3,
) -> tuple[ProjectionDesign, list, list[str]]:
    """Build the feature side of a map over the rows of ``features``.

    Parameters
    ----------
    features
        Patients x imaging features (numeric or pandas Categorical).
    types
        Feature -> continuous / ordinal / binary / categorical.
    covariates
        Patients x covariate columns (numeric; complete), or None.
    min_n, min_group
        As in :func:`radmap.analysis.associate.associate`.

    Returns
    -------
    The design, the tested feature names, and notes on the features left out.
    """
    n = len(features)
    z = np.ones((n, 1)) if covariates is None else np.column_stack([np.ones(n), covariates])
    own_columns: list[np.ndarray] = []
    used_sets: list[np.ndarray] = []
    tested: list = []
    notes: list[str] = []
    kinds: list[bool] = []
    for name in features.columns:
        kind = types.get(name)
        outcome = feature_columns(name, features[name], kind, min_n=min_n, min_group=min_group)
        if isinstance(outcome, str):
            notes.append(outcome)
            continue
        used, raw = outcome
        basis = _orthonormal_basis(z[used])
        residual = raw[used] - basis @ (basis.T @ raw[used])
        scale = float(np.abs(raw[used]).max()) * np.sqrt(used.sum())
        own = _orthonormal_basis(residual, scale=scale)
        if own.shape[1] == 0 or used.sum() - basis.shape[1] - own.shape[1] < 1:
            notes.append(f"feature {name!r}: explained by the covariates, not tested")
            continue
        full = np.zeros((n, own.shape[1]))
        full[used] = own
        own_columns.append(full)
        used_sets.append(used)
        tested.append(name)
        kinds.append(kind in CORRELATION_TYPES)
    if not tested:
        raise InputError("null: no feature can be tested")
    patterns, pattern = np.unique(np.vstack(used_sets), axis=0, return_inverse=True)
    bases, ranks = [], []
    for used in patterns:
        inside = _orthonormal_basis(z[used])
        basis = np.zeros((n, inside.shape[1]))
        basis[used] = inside
        bases.append(basis)
        ranks.append(inside.shape[1])
    widths = np.array([c.shape[1] for c in own_columns])
    basis_widths = np.array(ranks)
    design = ProjectionDesign(
        columns=np.ascontiguousarray(
            np.column_stack([*own_columns, *bases, patterns.T.astype(np.float64)])
        ),
        n_feature_cols=int(widths.sum()),
        n_basis_cols=int(basis_widths.sum()),
        feature_starts=np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.intp),
        pattern=pattern.ravel().astype(np.intp),
        basis_starts=np.concatenate([[0], np.cumsum(basis_widths)[:-1]]).astype(np.intp),
        basis_rank=basis_widths,
        n_used=np.vstack(used_sets).sum(axis=1),
        width=widths,
        is_correlation=np.asarray(kinds, dtype=bool),
        adjusted=covariates is not None,
    )
    return design, tested, notes


def residual_ranks(
    values: np.ndarray, covariates: np.ndarray | None, *, dtype=np.float64
) -> np.ndarray:
    """Ranks of each column of ``values`` (patients x variables) over the patients,
    residualised on ``[1, covariates]`` (centred without covariates)."""
    ranks = column_ranks(values)
    if covariates is None:
        ranks -= ranks.mean(axis=0)
    else:
        basis = _orthonormal_basis(np.column_stack([np.ones(len(ranks)), covariates]))
        ranks -= basis @ (basis.T @ ranks)
    return np.ascontiguousarray(ranks, dtype=dtype)


def column_ranks(values: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(values, axis=0)`` (average ranks, float64, C order) from one
    sort per column, in column blocks on every core; columns with missing values go through
    scipy."""
    values = np.asarray(values)
    n, m = values.shape
    ranks = np.empty((m, n))
    missing = np.zeros(m, dtype=bool)

    def rank_block(columns: slice) -> None:
        rows = np.ascontiguousarray(values[:, columns].T)
        order = np.argsort(rows, axis=1)
        ordered = np.take_along_axis(rows, order, axis=1)
        missing[columns] = np.isnan(ordered[:, -1])
        position = np.arange(n)
        starts = np.ones(ordered.shape, dtype=bool)
        np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts[:, 1:])
        ends = np.ones(ordered.shape, dtype=bool)
        ends[:, :-1] = starts[:, 1:]
        first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
        last = np.minimum.accumulate(np.where(ends, position, n - 1)[:, ::-1], axis=1)[:, ::-1]
        average = (first + last) / 2.0 + 1.0
        np.put_along_axis(ranks[columns], order, average, axis=1)

    step = max(1, (1 << 20) // max(1, n))
    pieces = [slice(start, min(start + step, m)) for start in range(0, m, step)]
    with ThreadPoolExecutor(max_workers=min(len(pieces), n_cores()) or 1) as pool:
        list(pool.map(rank_block, pieces))
    ranks = np.ascontiguousarray(ranks.T)
    if missing.any():
        ranks[:, missing] = stats.rankdata(values[:, missing], axis=0)
    return ranks


def critical_ratios(design: ProjectionDesign, alpha: float | np.ndarray) -> np.ndarray:
    """Explained fraction ``u'u / ss`` at which each tested feature's p-value is ``alpha``
    (a number, or one per tested feature)."""
    dof = design.residual_dof.astype(np.float64)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), dof.shape)
    out = np.empty(len(dof))
    correlation = design.is_correlation
    t = special.stdtrit(dof[correlation], 1 - alpha[correlation] / 2)
    out[correlation] = t**2 / (dof[correlation] + t**2)
    group = ~correlation
    width = design.width[group].astype(np.float64)
    if design.adjusted:
        f = special.fdtri(width, dof[group], 1 - alpha[group])
        out[group] = width * f / (dof[group] + width * f)
    else:
        out[group] = special.chdtri(width, alpha[group]) / (design.n_used[group] - 1.0)
    return out


def p_values(ratio: np.ndarray, design: ProjectionDesign, features: np.ndarray) -> np.ndarray:
    """Asymptotic p-values of explained fractions ``ratio`` of the given tested features."""
    ratio = np.clip(np.asarray(ratio, dtype=np.float64), 0.0, 1.0)
    features = np.broadcast_to(features, ratio.shape)
    correlation = design.is_correlation[features]
    p = np.full(ratio.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        if correlation.any():
            r, f = ratio[correlation], features[correlation]
            dof = design.residual_dof[f].astype(np.float64)
            t = np.sqrt(dof * r / (1.0 - r))
            p[correlation] = 2 * special.stdtr(dof, -t)
        group = ~correlation
        if group.any():
            r, f = ratio[group], features[group]
            dof = design.residual_dof[f].astype(np.float64)
            width = design.width[f].astype(np.float64)
            if design.adjusted:
                p[group] = special.fdtrc(width, dof, (r / width) / ((1.0 - r) / dof))
            else:
                p[group] = special.chdtrc(width, (design.n_used[f] - 1.0) * r)
    return np.where(np.isnan(ratio), np.nan, p)


def map_ratios(
    residuals: np.ndarray,
    columns: np.ndarray,
    design: ProjectionDesign,
    *,
    with_statistic: bool = True,
    squares: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Explained fractions and signed statistics for permuted designs.

    Parameters
    ----------
    residuals
        Patients x variables (:func:`residual_ranks`).
    columns
        ``(permutations, patients, design columns)``: the design's columns with rows reordered.
    design
        From :func:`projection_design`.
    with_statistic
        False: ``statistic`` is None (a null that counts discoveries needs only ``ratio``).
    squares
        ``residuals ** 2`` when already computed (it is the same for every permutation).

    Returns
    -------
    ``ratio`` (``u'u / ss``) and ``statistic`` (rho / partial rho for correlations, H / F for
    groups), each ``(variables, permutations, tested features)``.
    """
    n_perm, n_patients, width = columns.shape
    n_cols = design.n_feature_cols + design.n_basis_cols
    n_variables = residuals.shape[1]
    stacked = np.ascontiguousarray(columns[:, :, :n_cols].transpose(1, 0, 2))
    product = (residuals.T @ stacked.reshape(n_patients, -1)).reshape(n_variables, n_perm, n_cols)
    indicators = np.ascontiguousarray(columns[:, :, n_cols:].transpose(1, 0, 2))
    if squares is None:
        squares = np.square(residuals)
    sumsq = (squares.T @ indicators.reshape(n_patients, -1)).reshape(
        n_variables, n_perm, width - n_cols
    )
    projected = product[..., design.n_feature_cols :] ** 2
    ss = sumsq - np.add.reduceat(projected, design.basis_starts, axis=-1)
    u = product[..., : design.n_feature_cols]
    # Elementwise work on the patterns' columns before spreading them to their features, and
    # in place: on a genes x permutations x features block, every fresh array costs more in
    # page faults than its arithmetic.
    squares = u**2 if with_statistic else np.square(u, out=u)
    explained = np.add.reduceat(squares, design.feature_starts, axis=-1)
    del squares
    with np.errstate(divide="ignore", invalid="ignore"):
        ss = np.where(ss > _TIE * sumsq, ss, np.nan)[..., design.pattern]
        ratio = np.divide(explained, ss, out=explained)
        np.clip(ratio, 0.0, 1.0, out=ratio)
        if not with_statistic:
            return ratio, None
        statistic = np.empty_like(ratio)
        correlation = design.is_correlation
        statistic[..., correlation] = u[..., design.feature_starts[correlation]] / np.sqrt(
            ss[..., correlation]
        )
        group = ~correlation
        dof = design.residual_dof[group]
        if design.adjusted:
            statistic[..., group] = (ratio[..., group] / design.width[group]) / (
                (1.0 - ratio[..., group]) / dof
            )
        else:
            statistic[..., group] = (design.n_used[group] - 1.0) * ratio[..., group]
    return ratio, statistic


def _p_below(ratio: np.ndarray, design: ProjectionDesign) -> np.ndarray:
    """p-values where the explained fraction reaches the feature's critical value, 1 elsewhere
    (NaN where the test is undefined)."""
    p = np.where(np.isnan(ratio), np.nan, 1.0)
    where, values = _candidates(ratio, design)
    p[where] = values
    return p


def _candidates(ratio: np.ndarray, design: ProjectionDesign) -> tuple[tuple, np.ndarray]:
    """Where the explained fraction (variables x tested features) reaches the feature's
    critical value, and the p-values there (row-major order)."""
    critical = design.ratio_critical * (1 - 1e-6)
    where = np.nonzero(ratio >= critical)
    return where, p_values(ratio[where], design, where[-1])


def _orders(seed: int, start: int, stop: int, n_patients: int) -> np.ndarray:
    return np.stack([task_rng(seed, b).permutation(n_patients) for b in range(start, stop)])


def block_size_for(n_variables: int, n_columns: int) -> int:
    """Permutations per block so that a block holds about :data:`BLOCK_ELEMENTS` numbers."""
    return int(np.clip(BLOCK_ELEMENTS // max(1, n_variables * n_columns), 1, 50))


# --------------------------------------------------------------------------------------------
# Counting discoveries without sorting the whole map
# --------------------------------------------------------------------------------------------


def _sorted_candidates(
    values: np.ndarray, features: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The p-values at most ``alpha`` (``values`` of tests in ``features``), sorted within
    feature: values, feature of each, rank within its feature (1-based)."""
    keep = values <= alpha
    values, features = values[keep], features[keep]
    order = np.lexsort((values, features))
    values, features = values[order], features[order]
    starts = np.searchsorted(features, features, side="left")
    return values, features, np.arange(len(values)) - starts + 1


def feature_discoveries(
    p: np.ndarray, n_tests: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per feature (column of ``p``): the Benjamini–Hochberg discoveries within the feature at
    ``alpha`` and its Simes p-value where it is at most ``alpha`` (1 elsewhere, NaN for a
    feature without tests).

    Only p-values at most ``alpha`` matter, so only those are sorted.
    """
    tests, features = np.nonzero(p <= alpha)
    return sparse_feature_discoveries(p[tests, features], features, n_tests, alpha)


def sparse_feature_discoveries(
    values: np.ndarray, features: np.ndarray, n_tests: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`feature_discoveries` from the p-values that may be at most ``alpha`` alone
    (``values``, with the column of each in ``features``; any order)."""
    values, features, rank = _sorted_candidates(values, features, alpha)
    n_features = len(n_tests)
    n = n_tests[features].astype(np.float64)
    count = np.zeros(n_features, dtype=np.int64)
    passes = values <= alpha * rank / n
    np.maximum.at(count, features[passes], rank[passes])
    simes = np.ones(n_features)
    np.minimum.at(simes, features, values * n / rank)
    simes = np.where(simes <= alpha, simes, 1.0)
    simes[n_tests == 0] = np.nan
    return count, simes


def hierarchical_discoveries(p: np.ndarray, n_tests: np.ndarray, alpha: float) -> int:
    """Tests with the map-level q of :func:`radmap.analysis.multitest.hierarchical` at most
    ``alpha`` (Benjamini–Bogomolov: features selected by BH over their Simes p, then BH within
    each selected feature at ``alpha R / m``)."""
    tests, features = np.nonzero(p <= alpha)
    values = p[tests, features]
    _, simes = sparse_feature_discoveries(values, features, n_tests, alpha)
    return sparse_hierarchical_discoveries(values, features, n_tests, alpha, simes)


def sparse_hierarchical_discoveries(
    values: np.ndarray, features: np.ndarray, n_tests: np.ndarray, alpha: float, simes
) -> int:
    """:func:`hierarchical_discoveries` from the p-values that may be at most ``alpha`` and
    the features' Simes p-values (from :func:`sparse_feature_discoveries`)."""
    tested = ~np.isnan(simes)
    m = int(tested.sum())
    if m == 0:
        return 0
    ordered = np.sort(simes[tested])
    passing = np.flatnonzero(ordered <= alpha * np.arange(1, m + 1) / m)
    if len(passing) == 0:
        return 0
    n_selected = int(passing[-1]) + 1
    selected = np.flatnonzero(tested)[np.argsort(simes[tested], kind="stable")[:n_selected]]
    level = alpha * n_selected / m
    chosen = np.zeros(len(n_tests), dtype=bool)
    chosen[selected] = True
    inside = chosen[features]
    counts, _ = sparse_feature_discoveries(values[inside], features[inside], n_tests, level)
    return int(counts.sum())


# --------------------------------------------------------------------------------------------
# The gene map
# --------------------------------------------------------------------------------------------


@dataclass
class GeneNullResult:
    """Permutation null of the genes x features map.

    Attributes
    ----------
    observed_links
        Gene x feature pairs with map-level q (hierarchical, as ``varm["radmap_q_map"]``) at
        most ``alpha`` on the rank statistics.
    discoveries_null
        The same count in each permutation.
    per_feature
        Per tested feature: ``observed`` (genes with q within the feature at most ``alpha``,
        as the volcano shows) and ``expected`` (mean over permutations), ``n_genes``.
    alpha, n_permutations, seed, adjusted, notes
        Parameters and features not tested.
    """

    observed_links: int
    discoveries_null: np.ndarray
    per_feature: pd.DataFrame
    alpha: float
    n_permutations: int
    seed: int
    adjusted: bool
    notes: list[str] = field(default_factory=list)

    @property
    def expected_false_links(self) -> float:
        """Mean number of links passing the threshold when no link is real."""
        return float(np.mean(self.discoveries_null))

    @property
    def empirical_fdr(self) -> float:
        """Expected false links / observed links (capped at 1; NaN without observed links)."""
        if self.observed_links == 0:
            return float("nan")
        return float(min(1.0, self.expected_false_links / self.observed_links))

    def summary(self) -> dict:
        """JSON-friendly figures, as stored in ``uns["radmap"]["gene_null"]``."""
        null = np.asarray(self.discoveries_null, dtype=float)
        exceed = int(np.sum(null >= self.observed_links))
        return {
            "alpha": float(self.alpha),
            "n_permutations": int(self.n_permutations),
            "seed": int(self.seed),
            "adjusted": bool(self.adjusted),
            "observed_links": int(self.observed_links),
            "expected_false_links": _rounded(self.expected_false_links),
            "null_links_p95": _rounded(float(np.quantile(null, 0.95))),
            "empirical_fdr": _rounded(self.empirical_fdr),
            "map_p": _rounded((1 + exceed) / (self.n_permutations + 1)),
            "badge": self.badge(),
        }

    def badge(self) -> str:
        """One line, e.g. ``844 gene links at map q < 0.05; 1.9 expected by chance (...)``."""
        links = "gene link" if self.observed_links == 1 else "gene links"
        text = (
            f"{self.observed_links} {links} at map q < {self.alpha:g}; "
            f"{self.expected_false_links:.1f} expected by chance "
            f"({self.n_permutations} permutations"
        )
        if self.observed_links:
            text += f", empirical FDR {self.empirical_fdr:.2f}"
        return text + ")"


def _gene_block(
    block: tuple[int, int],
    *,
    residuals: np.ndarray,
    squares: np.ndarray,
    design: ProjectionDesign,
    n_tests: np.ndarray,
    alpha: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Map-level and per-feature discoveries of each permutation of one block."""
    start, stop = block
    orders = _orders(seed, start, stop, residuals.shape[0])
    columns = design.columns.astype(residuals.dtype)[orders]
    ratio, _ = map_ratios(residuals, columns, design, with_statistic=False, squares=squares)
    total = np.zeros(len(orders), dtype=np.int64)
    per_feature = np.zeros((len(orders), len(n_tests)), dtype=np.int64)
    for i in range(len(orders)):
        total[i], per_feature[i] = _gene_discoveries(ratio[:, i, :], design, n_tests, alpha)
    return total, per_feature


_MARGIN = 1e-6
"""Relative margin on explained fractions compared with critical values, far wider than the
rounding of a p-value and of its inverse."""
_SURE = 1e-4
"""Explained fractions this far (relative) above a feature's critical value have p below
alpha without computing it."""


def _gene_discoveries(
    ratio: np.ndarray, design: ProjectionDesign, n_tests: np.ndarray, alpha: float
) -> tuple[int, np.ndarray]:
    """Map-level discoveries and discoveries within each feature of one genes x features map
    of explained fractions.

    The same counts as :func:`sparse_feature_discoveries` and
    :func:`sparse_hierarchical_discoveries` on every p-value at most ``alpha``, from far
    fewer p-values: a feature with ``K`` of them can only pass Benjamini–Hochberg (at
    ``alpha`` or the smaller second-level threshold) with p-values at most ``alpha K / n``,
    those come first in its ordering, and its Simes p-value, where at most ``alpha``, is
    reached at one of them. So only ``K`` is counted for every candidate (its p-value is
    computed near the critical value alone), and p-values are computed and sorted for the
    explained fractions that can reach ``alpha K / n``.
    """
    critical = design.ratio_critical
    where = np.nonzero(ratio >= critical * (1 - _MARGIN))
    explained, features = ratio[where].astype(np.float64), where[1]
    n_features = len(n_tests)
    near = explained < critical[features] * (1 + _SURE)
    p_near = p_values(explained[near], design, features[near])
    below = np.bincount(features[~near], minlength=n_features) + np.bincount(
        features[near][p_near <= alpha], minlength=n_features
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = critical_ratios(design, alpha * below / n_tests)
    head = explained >= reach[features] * (1 - _MARGIN)
    p = np.full(len(explained), np.nan)
    p[near] = p_near
    todo = head & ~near
    p[todo] = p_values(explained[todo], design, features[todo])
    keep = head & (p <= alpha)
    values, kept = p[keep], features[keep]
    per_feature, simes = sparse_feature_discoveries(values, kept, n_tests, alpha)
    total = sparse_hierarchical_discoveries(values, kept, n_tests, alpha, simes)
    return total, per_feature


def gene_permutation_null(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    *,
    covariates: pd.DataFrame | None = None,
    n_permutations: int = DEFAULT_GENE_PERMUTATIONS,
    alpha: float = 0.05,
    seed: int = 0,
    min_n: int = 10,
    min_group: int = 3,
    block_size: int | None = None,
    scheduler: str | None = None,
    n_workers: int = 2,
) -> GeneNullResult:
    """Permutation null of the genes x features map: links expected by chance.

    Parameters
    ----------
    values
        Patients x genes; no missing values.
    features
        Patients x imaging features.
    types
        Feature -> continuous / ordinal / binary / categorical.
    covariates
        Patients x covariates the map was adjusted for (``--adjust-for``), or None; with
        covariates the analysis keeps the patients who have them all and every permutation
        tests the adjusted statistic (see the module docstring).
    n_permutations, alpha, seed
        Permutations, threshold of a link (map-level q and q within feature), seed.
    min_n, min_group
        As in :func:`radmap.analysis.associate.associate`.
    block_size
        Permutations per task (default: from the map's size, never from the workers).
    scheduler, n_workers
        See :func:`radmap.analysis.parallel.run_tasks`; in this process the blocks run on
        ``n_workers`` threads (the result does not change).

    Returns
    -------
    :class:`GeneNullResult`.
    """
    if n_permutations < 1:
        raise InputError(f"gene null: n_permutations must be at least 1, got {n_permutations}")
    if not 0 < alpha < 1:
        raise InputError(f"gene null: alpha must be between 0 and 1, got {alpha}")
    started = time.perf_counter()
    residuals, design, tested, notes, _ = prepare(
        values, features, types, covariates, min_n=min_n, min_group=min_group, dtype=np.float32
    )
    design.ratio_critical = critical_ratios(design, alpha)
    columns = design.columns.astype(np.float32)[None]
    squares = np.square(residuals)
    ratio, _ = map_ratios(residuals, columns, design, with_statistic=False, squares=squares)
    n_tests = np.isfinite(ratio[:, 0, :]).sum(axis=0)
    observed, observed_per_feature = _gene_discoveries(ratio[:, 0, :], design, n_tests, alpha)
    size = block_size or block_size_for(residuals.shape[1], design.columns.shape[1])
    results = run_tasks(
        _gene_block,
        blocks(n_permutations, size),
        shared={
            "residuals": residuals,
            "squares": squares,
            "design": design,
            "n_tests": n_tests,
            "alpha": alpha,
            "seed": seed,
        },
        scheduler=scheduler,
        n_workers=n_workers,
        threads=n_workers,
    )
    null = np.concatenate([r[0] for r in results])
    per_feature_null = np.concatenate([r[1] for r in results])
    per_feature = pd.DataFrame(
        {
            "feature": [str(name) for name in tested],
            "observed": observed_per_feature,
            "expected": np.round(per_feature_null.mean(axis=0), 4),
            "n_genes": n_tests,
        }
    )
    result = GeneNullResult(
        observed_links=int(observed),
        discoveries_null=null,
        per_feature=per_feature,
        alpha=alpha,
        n_permutations=n_permutations,
        seed=seed,
        adjusted=design.adjusted,
        notes=notes,
    )
    logger.info(
        "gene null: %d permutations of %d genes x %d features: %s (%.1f s)",
        n_permutations,
        residuals.shape[1],
        len(tested),
        result.badge(),
        time.perf_counter() - started,
    )
    return result


def prepare(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    covariates: pd.DataFrame | None,
    *,
    min_n: int,
    min_group: int,
    dtype=np.float64,
) -> tuple[np.ndarray, ProjectionDesign, list, list[str], pd.Index]:
    """Residualised ranks, design, tested features, notes and the patients used."""
    if not isinstance(values, pd.DataFrame) or not isinstance(features, pd.DataFrame):
        raise InputError("null: values and features must be pandas DataFrames")
    patients = values.index.intersection(features.index, sort=False)
    z = None
    if covariates is not None and covariates.shape[1]:
        z, complete = _covariate_matrix(covariates, patients)
        patients = patients[complete]
        z = z[complete]
    if len(patients) < min_n:
        raise InputError(
            f"null: {len(patients)} patients with expression, imaging and covariates; need {min_n}"
        )
    data = values.loc[patients].to_numpy(dtype=np.float64)
    if np.isnan(data).any():
        raise InputError("null: the variables have missing values; impute them")
    residuals = residual_ranks(data, z, dtype=dtype)
    design, tested, notes = projection_design(
        features.loc[patients], types, z, min_n=min_n, min_group=min_group
    )
    return residuals, design, tested, notes, patients


# --------------------------------------------------------------------------------------------
# The module map with covariates
# --------------------------------------------------------------------------------------------


def _module_block(
    block: tuple[int, int],
    *,
    residuals: np.ndarray,
    design: ProjectionDesign,
    observed: np.ndarray,
    tested_cells: np.ndarray,
    cell_family: np.ndarray,
    alpha: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exceedance counts per cell and BH discoveries (within families) per permutation."""

    start, stop = block
    orders = _orders(seed, start, stop, residuals.shape[0])
    ratio, _ = map_ratios(residuals, design.columns[orders], design)
    exceed = (ratio >= observed[:, None, :] * (1 - 1e-9)).sum(axis=1)
    p = np.stack([_p_below(ratio[:, i, :], design) for i in range(len(orders))])
    discoveries = bh_discoveries_by_family(
        p.reshape(len(orders), -1)[:, tested_cells], cell_family, alpha
    )
    return exceed, discoveries


def adjusted_module_null(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    covariates: pd.DataFrame,
    *,
    n_permutations: int,
    alpha: float,
    seed: int,
    min_n: int,
    min_group: int,
    families: Mapping[str, str] | None,
    scheduler: str | None,
    n_workers: int,
    block_size: int,
):
    """The module-map null of :func:`radmap.analysis.null.permutation_null` on the
    covariate-adjusted statistics (partial Spearman, rank ANCOVA F)."""

    residuals, design, tested, notes, patients = prepare(
        values, features, types, covariates, min_n=min_n, min_group=min_group
    )
    design.ratio_critical = critical_ratios(design, alpha)
    ratio, statistic = map_ratios(residuals, design.columns[None], design)
    ratio, statistic = ratio[:, 0, :], statistic[:, 0, :]
    p = p_values(ratio, design, np.broadcast_to(np.arange(ratio.shape[1]), ratio.shape))
    tested_cells = np.isfinite(p).ravel()
    family_of = [str((families or {}).get(name, "map")) for name in tested]
    cell_family = np.tile(np.asarray(family_of, dtype=object), p.shape[0])[tested_cells]
    observed_links = int(
        bh_discoveries_by_family(p.ravel()[tested_cells][None], cell_family, alpha)[0]
    )
    results = run_tasks(
        _module_block,
        blocks(n_permutations, block_size),
        shared={
            "residuals": residuals,
            "design": design,
            "observed": ratio,
            "tested_cells": tested_cells,
            "cell_family": cell_family,
            "alpha": alpha,
            "seed": seed,
        },
        scheduler=scheduler,
        n_workers=n_workers,
        threads=n_workers,
    )
    exceed = np.sum([r[0] for r in results], axis=0)
    discoveries = np.concatenate([r[1] for r in results])
    p_perm = np.where(np.isfinite(ratio), (1 + exceed) / (n_permutations + 1), np.nan)
    full = pd.Index(features.columns)

    def frame(array: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(array, index=values.columns, columns=tested).reindex(columns=full)

    kinds = dict(zip(tested, np.where(design.is_correlation, "partial_spearman", "rank_ancova")))
    return NullResult(
        statistic=frame(statistic),
        p=frame(p),
        p_perm=frame(p_perm),
        test=pd.Series([kinds.get(f, "") for f in full], index=full, dtype=object),
        n=pd.Series(design.n_used.astype(np.int64), index=tested).reindex(full, fill_value=0),
        discoveries_null=discoveries,
        observed_links=observed_links,
        alpha=alpha,
        n_permutations=n_permutations,
        seed=seed,
        notes=notes,
    )
