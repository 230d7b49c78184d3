"""Vectorised association tests: variables (modules, genes) x imaging features.

Every variable is tested against every feature with the test the feature's type calls for,
without a Python loop over variable x feature pairs. The statistics come from a handful of
matrix products per feature batch:

- rank tests (Spearman, Mann–Whitney, Kruskal–Wallis, partial Spearman) sort the variables once
  (:class:`_RowRanker`), derive their ranks within each set of patients a feature uses from
  running counts over that sort, and multiply the rank matrix by the features' rank,
  group-indicator or residual columns;
- moment tests (Pearson, Welch, ANOVA, OLS) multiply the row-centred values and their squares by
  zero-padded indicator / residual columns, so features with different missing patients share a
  single product.

Each kernel reproduces its scipy / statsmodels reference (checked in
``tests/analysis/test_associate.py``).

Missing values
--------------
*Features*: complete cases per feature (``n`` reports the patients used). *Covariates*: a
patient missing any covariate is left out of the adjusted tests. *Values*: variables are grouped
by their pattern of missing patients and each group is tested on its observed patients; the
per-pair patient counts are then in :attr:`Associations.n_pairs`. Without missing values (the
usual case: eigengenes, expression) there is a single group. The cost grows with the number of
distinct patterns, so a matrix with scattered missing values in thousands of variables is slow:
impute or filter it first (a note is added above :data:`MANY_PATTERNS` patterns).

Cost
----
Rank tests need the variables ranked within each distinct set of patients a feature uses:
one sort of the values, then per set one cumulative count over the sort (no re-sorting and no
pass over the ranks for their sum of squares, which follows from the tie groups), done in
cache-sized blocks of rows so that all sets reuse the block while it is in cache. Features
sharing missing patients (e.g. the radiomic features of patients without a scan) share the
pass. Moment tests cost one matrix product whatever the missing patterns. Most of the rest
is the exact p-values (``scipy.special.stdtr`` per pair); ``benchmarks/bench_associate.py``
and ``benchmarks/run.py`` print the time as a multiple of argsort + matrix product +
p-values measured in the same run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special, stats

from .multitest import bh, bh_columns
from .parallel import blas_controller
from .validate import InputError

logger = logging.getLogger("radmap")

FEATURE_KINDS = {
    "continuous": "correlation",
    "ordinal": "correlation",
    "binary": "binary",
    "categorical": "categorical",
}
CONTINUOUS_TESTS = ("spearman", "pearson")
BINARY_TESTS = ("welch", "student", "mannwhitney")
CATEGORICAL_TESTS = ("kruskal", "anova")
RANK_TESTS = frozenset({"spearman", "mannwhitney", "kruskal", "partial_spearman"})
EFFECT_MEASURES = {
    ("correlation", "spearman"): "rho",
    ("correlation", "pearson"): "r",
    ("correlation", "partial_spearman"): "partial_rho",
    ("correlation", "partial_pearson"): "partial_r",
    ("binary", "welch"): "hedges_g",
    ("binary", "student"): "hedges_g",
    ("binary", "mannwhitney"): "rank_biserial",
    ("binary", "ols"): "standardised_coefficient",
    ("categorical", "kruskal"): "epsilon_squared",
    ("categorical", "anova"): "eta_squared",
    ("categorical", "ols"): "partial_eta_squared",
}
"""Name of the effect measure of each (feature kind, test)."""
SIGNED_MEASURES = frozenset(
    {
        "rho",
        "r",
        "partial_rho",
        "partial_r",
        "hedges_g",
        "rank_biserial",
        "standardised_coefficient",
        "log_hr",
        "log_odds_ratio",
    }
)
"""Effect measures with a direction (negative values mean something); the others
(epsilon-squared, eta-squared, Cramér's V, chi-square) are never negative and get no sign."""
MANY_PATTERNS = 200
"""Above this many distinct missing-value patterns in ``values`` a slowness note is added."""

_CONSTANT_TOLERANCE = 1e-10
_THREADS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
_ROW_BLOCK = 4096
_THREADED_ROWS = 256
_FINISH_CELLS = 65_536
"""Features finished together as one block hold about this many results (variables x
features): a module map's eigengenes finish every feature at once, a gene map's genes a
few features at a time, in cache and across threads."""
_RANK_BLOCK = 256
"""Rows sorted and ranked together: small enough for the CPU cache."""


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Associations:
    """Variable x feature association results.

    Attributes
    ----------
    statistic
        Test statistic (variables x features): rho / r, Welch t, Mann–Whitney U of the second
        group, Kruskal–Wallis H, ANOVA or OLS F, OLS t.
    effect
        Effect size (variables x features): rho / r, Hedges' g, rank-biserial correlation,
        epsilon-squared, eta-squared, OLS coefficient / residual sd, partial eta-squared.
    p
        Two-sided p-values (variables x features); NaN when the pair could not be tested.
    n
        Patients used per feature.
    test
        Test used per feature.
    contrast
        Per feature, for binary features ``"B vs A"`` (positive effect = higher values in B);
        ``""`` otherwise.
    n_pairs
        Patients used per pair, only when ``values`` had missing values (else ``None``).
    measure
        Name of the effect measure per feature (see :data:`EFFECT_MEASURES`).
    notes
        Features not tested (and why) and groups left out, for the user's warnings list.
    """

    statistic: pd.DataFrame
    effect: pd.DataFrame
    p: pd.DataFrame
    n: pd.Series
    test: pd.Series
    contrast: pd.Series
    n_pairs: pd.DataFrame | None = field(default=None)
    notes: list[str] = field(default_factory=list)
    measure: pd.Series | None = field(default=None)

    def q(self, scope: Literal["all", "per_feature"] = "all") -> pd.DataFrame:
        """Benjamini–Hochberg q-values.

        Parameters
        ----------
        scope
            ``"all"``: over the whole variable x feature table (the module map);
            ``"per_feature"``: over variables, separately for each feature (gene level).
        """
        p = self.p.to_numpy(dtype=np.float64)
        if scope == "all":
            q = bh(p)
        elif scope == "per_feature":
            q = bh_columns(p)
        else:
            raise InputError(f"q: scope must be 'all' or 'per_feature', not {scope!r}")
        return pd.DataFrame(q, index=self.p.index, columns=self.p.columns)


def tidy(
    assoc: Associations,
    *,
    variable_name: str,
    q_scope: Literal["all", "per_feature"] = "all",
) -> pd.DataFrame:
    """One row per variable x feature pair, in the layout of the bundle's association tables.

    Parameters
    ----------
    assoc
        Result of :func:`associate`.
    variable_name
        Name of the variable column (``"module"``, ``"gene"``, ...).
    q_scope
        Scope of the Benjamini–Hochberg correction, see :meth:`Associations.q`.

    Returns
    -------
    Columns ``[variable_name, "feature", "test", "statistic", "effect", "effect_measure",
    "p", "q", "n"]``, variable-major; pairs without a p-value are kept (q NaN).
    """
    variables = assoc.p.index.astype(str)
    features = assoc.p.columns.astype(str)
    n_variables, n_features = assoc.p.shape
    if assoc.n_pairs is not None:
        n = assoc.n_pairs.to_numpy().ravel()
    else:
        n = np.tile(assoc.n.reindex(assoc.p.columns).to_numpy(), n_variables)
    if assoc.measure is not None:
        measures = assoc.measure.reindex(assoc.p.columns).fillna("").to_numpy(dtype=object)
    else:
        measures = np.full(n_features, "", dtype=object)
    return pd.DataFrame(
        {
            variable_name: np.repeat(np.asarray(variables, dtype=object), n_features),
            "feature": np.tile(np.asarray(features, dtype=object), n_variables),
            "test": np.tile(
                assoc.test.reindex(assoc.p.columns).astype(str).to_numpy(dtype=object),
                n_variables,
            ),
            "statistic": assoc.statistic.to_numpy(dtype=np.float64).ravel(),
            "effect": assoc.effect.to_numpy(dtype=np.float64).ravel(),
            "effect_measure": np.tile(measures, n_variables),
            "p": assoc.p.to_numpy(dtype=np.float64).ravel(),
            "q": assoc.q(q_scope).to_numpy().ravel(),
            "n": np.asarray(n, dtype=np.int64),
        }
    )


MONTE_CARLO_DRAWS = 9999
"""Random tables drawn (with the observed margins) for a Monte-Carlo chi-square p-value."""


def sparse_table(counts: np.ndarray) -> bool:
    """Cochran's rule: the chi-square approximation is unreliable when an expected count is
    below 1 or more than 20 % of them are below 5."""
    counts = np.asarray(counts, dtype=np.float64)
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / counts.sum()
    return bool((expected < 1).any() or (expected < 5).mean() > 0.2)


def _chi2_statistics(tables: np.ndarray, expected: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nansum((tables - expected) ** 2 / expected, axis=(-2, -1))


def contingency_test(
    counts: ArrayLike, *, draws: int = MONTE_CARLO_DRAWS, seed: int = 0
) -> tuple[str, float, float, float]:
    """Test of independence for one contingency table, exact when counts are sparse.

    - 2 x 2: Fisher's exact test (statistic = odds ratio, as ``scipy.stats.fisher_exact``);
    - larger, not sparse (:func:`sparse_table`): chi-square test without continuity
      correction (as ``scipy.stats.chi2_contingency``);
    - larger and sparse: the same chi-square statistic with a Monte-Carlo p-value from
      ``draws`` random tables with the observed margins (``scipy.stats.random_table``),
      ``p = (1 + #{X^2* >= X^2}) / (draws + 1)``, as R's ``chisq.test(simulate.p.value=TRUE)``.

    Returns
    -------
    ``(test, statistic, cramers_v, p)`` with test ``fisher`` / ``chi2`` / ``chi2_monte_carlo``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    effect = float(stats.contingency.association(counts, method="cramer"))
    if counts.shape == (2, 2):
        result = stats.fisher_exact(counts)
        return "fisher", float(result.statistic), effect, float(result.pvalue)
    result = stats.chi2_contingency(counts, correction=False)
    if not sparse_table(counts):
        return "chi2", float(result.statistic), effect, float(result.pvalue)
    expected = result.expected_freq
    observed = _chi2_statistics(counts, expected)
    tables = stats.random_table(counts.sum(axis=1), counts.sum(axis=0)).rvs(
        size=draws, random_state=np.random.default_rng(seed)
    )
    simulated = _chi2_statistics(tables, expected)
    p = (1 + np.count_nonzero(simulated >= observed * (1 - 1e-12))) / (draws + 1)
    return "chi2_monte_carlo", float(observed), effect, float(p)


def _count_pairs(left: np.ndarray, n_left: int, right: np.ndarray, n_right: int) -> np.ndarray:
    """Counts of each pair of codes (missing = -1 on either side left out)."""
    both = (left >= 0) & (right >= 0)
    return np.bincount(left[both] * n_right + right[both], minlength=n_left * n_right).reshape(
        n_left, n_right
    )


def _codes(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), pd.Index(column.cat.categories)
    codes, levels = pd.factorize(column, sort=True)
    return codes, pd.Index(levels)


def associate_categorical(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    max_levels: int = 50,
    min_group: int = 1,
    notes: list[str] | None = None,
    seed: int = 0,
    draws: int = MONTE_CARLO_DRAWS,
) -> pd.DataFrame:
    """Contingency tests between every categorical column of ``left`` and of ``right``.

    Each pair uses the patients with both values; levels with fewer than ``min_group`` of
    them are left out (and said so in ``notes``), as are levels never observed. The test is
    :func:`contingency_test`: Fisher's exact test for 2 x 2 tables, chi-square otherwise,
    with a Monte-Carlo p-value when the table is sparse. Effect = Cramér's V (uncorrected
    chi-square, = |phi| for 2 x 2), measure ``cramers_v`` (unsigned).

    Parameters
    ----------
    left, right
        Patients x categorical columns (e.g. mutation status, semantic features); aligned on
        the index.
    max_levels
        Columns with more levels than this are rejected (they are not categorical).
    min_group
        Smallest level size kept in a table.
    notes
        When given, messages about left-out levels and untested pairs are appended to it.
    seed, draws
        Seed and number of random tables of the Monte-Carlo p-values.

    Returns
    -------
    Columns ``left``, ``right``, ``test`` (``fisher`` / ``chi2`` / ``chi2_monte_carlo``),
    ``statistic``, ``effect``, ``effect_measure``, ``p``, ``q`` (Benjamini–Hochberg over the
    table), ``n``. Pairs with fewer than two levels on either side keep NaN statistics.
    """
    patients = left.index.intersection(right.index, sort=False)
    if len(patients) == 0:
        raise InputError(
            "associate_categorical: the two tables share no patient IDs; check the ID columns"
        )
    for frame, label in ((left, "left"), (right, "right")):
        for name, column in frame.items():
            levels = column.nunique(dropna=True)
            if levels > max_levels:
                raise InputError(
                    f"{label}: column {name!r} has {levels} levels; contingency tests need "
                    f"categorical columns (at most {max_levels} levels)"
                )
    rows = []
    left_codes = {name: _codes(column) for name, column in left.loc[patients].items()}
    right_codes = {name: _codes(column) for name, column in right.loc[patients].items()}
    for left_name, (codes_a, levels_a) in left_codes.items():
        for right_name, (codes_b, levels_b) in right_codes.items():
            table = _count_pairs(codes_a, len(levels_a), codes_b, len(levels_b))
            row_sizes, column_sizes = table.sum(axis=1), table.sum(axis=0)
            small_rows = row_sizes < max(min_group, 1)
            small_columns = column_sizes < max(min_group, 1)
            if min_group > 1 and notes is not None:
                left_out = [
                    f"{level} ({int(size)})"
                    for sizes, levels in ((row_sizes, levels_a), (column_sizes, levels_b))
                    for level, size in zip(levels, sizes)
                    if 0 < size < min_group
                ]
                if left_out:
                    notes.append(
                        f"{left_name} x {right_name}: levels with < {min_group} patients left "
                        f"out ({', '.join(left_out)})"
                    )
            table = table[~small_rows][:, ~small_columns]
            row = {"left": left_name, "right": right_name, "n": int(table.sum())}
            if min(table.shape) < 2:
                row.update(test="", statistic=np.nan, effect=np.nan, p=np.nan)
                if notes is not None:
                    notes.append(
                        f"{left_name} x {right_name}: fewer than 2 levels with >= "
                        f"{max(min_group, 1)} patients on one side: not tested"
                    )
            else:
                test, statistic, effect, p = contingency_test(table, seed=seed, draws=draws)
                row.update(test=test, statistic=statistic, effect=effect, p=p)
            rows.append(row)
    table = pd.DataFrame(rows, columns=["left", "right", "test", "statistic", "effect", "p", "n"])
    table.insert(5, "effect_measure", "cramers_v")
    table.insert(7, "q", bh(table["p"].to_numpy(dtype=np.float64)))
    table["n"] = table["n"].astype(np.int64)
    return table


# --------------------------------------------------------------------------------------------
# Kernels: sufficient statistics (arrays over variables) -> statistic, effect, p
# --------------------------------------------------------------------------------------------


def _t_pvalue(t: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """Two-sided p of a t statistic (as scipy's ``_get_pvalue`` with a Student t)."""
    return 2 * special.stdtr(df, -np.abs(t))


def _correlation_kernel(
    cov: np.ndarray, ss_values: np.ndarray, ss_feature: float | np.ndarray, df: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlation from a cross-product and centred sums of squares, t-test with ``df``.

    ``cov`` may be variables x features, with ``ss_values`` as a column and ``ss_feature`` one
    value per feature (features tested on the same patients, finished at once).

    The t transform is the one of ``scipy.stats.spearmanr``; for Pearson it equals scipy's
    beta-distribution p-value (same distribution, agreement ~1e-13).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.clip(cov / np.sqrt(ss_values * ss_feature), -1.0, 1.0)
        t = r * np.sqrt((df / ((r + 1.0) * (1.0 - r))).clip(0))
    r = np.where(ss_values <= 0, np.nan, r)
    return r, r.copy(), _t_pvalue(t, df)


def _welch_kernel(
    sum_a: np.ndarray,
    sumsq_a: np.ndarray,
    n_a: int,
    sum_b: np.ndarray,
    sumsq_b: np.ndarray,
    n_b: int,
    *,
    pooled: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch t (B minus A), Hedges' g and p as ``scipy.stats.ttest_ind(b, a, equal_var=False)``;
    with ``pooled`` Student's t (pooled variance, n - 2 df, ``equal_var=True``).

    Hedges' g = J * (mean_B - mean_A) / pooled sd, J = 1 - 3 / (4 (n_A + n_B) - 9).
    """
    mean_a, mean_b = sum_a / n_a, sum_b / n_b
    var_a = (sumsq_a - sum_a * mean_a) / (n_a - 1)
    var_b = (sumsq_b - sum_b * mean_b) / (n_b - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        vn_a, vn_b = var_a / n_a, var_b / n_b
        df = (vn_a + vn_b) ** 2 / (vn_a**2 / (n_a - 1) + vn_b**2 / (n_b - 1))
        df = np.where(np.isnan(df), 1.0, df)
        t = (mean_b - mean_a) / np.sqrt(vn_a + vn_b)
        pooled_sd = np.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
        g = (1 - 3 / (4 * (n_a + n_b) - 9)) * (mean_b - mean_a) / pooled_sd
        if pooled:
            df = float(n_a + n_b - 2)
            t = (mean_b - mean_a) / (pooled_sd * np.sqrt(1 / n_a + 1 / n_b))
    return t, g, _t_pvalue(t, df)


def _tie_term(sumsq_ranks: np.ndarray, n: int) -> np.ndarray:
    """Sum over tie groups of t^3 - t, from the sum of squared average ranks (exact).

    A tie group of size t lowers the sum of squared ranks by (t^3 - t) / 12.
    """
    return 12.0 * (n * (n + 1) * (2 * n + 1) / 6 - sumsq_ranks)


def _mannwhitney_kernel(
    ranksum_b: np.ndarray, n_a: int, n_b: int, sumsq_ranks: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U of group B, rank-biserial correlation and the asymptotic p of
    ``scipy.stats.mannwhitneyu(b, a, method="asymptotic")`` (tie and continuity corrected)."""
    n = n_a + n_b
    u_b = ranksum_b - n_b * (n_b + 1) / 2
    u = np.maximum(u_b, n_a * n_b - u_b)
    tie_term = _tie_term(sumsq_ranks, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(n_a * n_b / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        z = (u - n_a * n_b / 2 - 0.5) / s
    p = np.clip(2 * special.ndtr(-z), 0.0, 1.0)
    return u_b, 2 * u_b / (n_a * n_b) - 1, p


def _kruskal_kernel(
    ranksums: np.ndarray, group_sizes: np.ndarray, sumsq_ranks: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kruskal–Wallis H with tie correction (as ``scipy.stats.kruskal``) and
    epsilon-squared = H / (n - 1)."""
    n = int(group_sizes.sum())
    ssbn = (ranksums**2 / group_sizes).sum(axis=1)
    h = 12.0 / (n * (n + 1)) * ssbn - 3 * (n + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h /= 1 - _tie_term(sumsq_ranks, n) / (n**3 - n)
    return h, h / (n - 1), special.chdtrc(len(group_sizes) - 1, h)


def _anova_kernel(
    sums: np.ndarray, sumsqs: np.ndarray, group_sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-way ANOVA F (as ``scipy.stats.f_oneway``) and eta-squared from group sums."""
    n, k = int(group_sizes.sum()), len(group_sizes)
    total = sums.sum(axis=1)
    ss_total = sumsqs.sum(axis=1) - total**2 / n
    ss_between = (sums**2 / group_sizes).sum(axis=1) - total**2 / n
    ss_within = ss_total - ss_between
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_between / (k - 1)) / (ss_within / (n - k))
        eta2 = ss_between / ss_total
    return f, eta2, special.fdtrc(k - 1, n - k, f)


def _ols_t_kernel(
    projection: np.ndarray, ss_regressor: float, sse_reduced: np.ndarray, df: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t of one regressor added to a linear model (Frisch–Waugh–Lovell).

    ``projection`` is y . x~ and ``ss_regressor`` is |x~|^2 for the regressor x~ residualised on
    the other columns; ``sse_reduced`` is the residual sum of squares without it.
    Effect = coefficient / residual sd.
    """
    coefficient = projection / ss_regressor
    sse = sse_reduced - projection * coefficient
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(sse / df)
        t = coefficient / (sd / np.sqrt(ss_regressor))
    return t, coefficient / sd, _t_pvalue(t, df)


def _ols_f_kernel(
    ss_block: np.ndarray, q: int, sse_reduced: np.ndarray, df: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F test of a block of ``q`` regressors (explained sum of squares ``ss_block``) added to a
    linear model; effect = partial eta-squared."""
    sse = sse_reduced - ss_block
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_block / q) / (sse / df)
        eta2 = ss_block / sse_reduced
    return f, eta2, special.fdtrc(q, df, f)


# --------------------------------------------------------------------------------------------
# Ranks within any subset of the columns of a matrix
# --------------------------------------------------------------------------------------------


class _RowRanker:
    """Average (tie-aware) ranks of each row of a matrix within any subset of its columns.

    The rows are sorted once, in blocks small enough to stay in the CPU cache while every
    subset is ranked. Ranks within a subset then come from the running count of kept columns
    in sorted order: a kept value whose tie group spans sorted positions [s, e] ranks
    ``kept_through(e)`` when alone and ``(kept_before(s) + 1 + kept_through(e)) / 2`` when
    tied. The sum of the squared ranks follows from the tie groups alone
    (``n (n + 1) (2 n + 1) / 6 - sum(t^3 - t) / 12`` over the groups' kept sizes t), so no
    pass over the ranks is needed for it.
    """

    def __init__(self, data: np.ndarray):
        n_rows, self.n_cols = data.shape
        self.data = data
        self.blocks = [
            slice(i, min(i + _RANK_BLOCK, n_rows)) for i in range(0, n_rows, _RANK_BLOCK)
        ]

    def sort(self, block: int) -> dict[str, np.ndarray]:
        """Sort order and count-table positions of one block of rows.

        The running counts of kept columns live in a (rows, n_cols + 1) table whose rows start
        at 0. ``through`` points at the count up to the last member of a value's tie group and,
        for tied values (flat indices ``tied``), ``tied_before`` at the count before its first.
        ``group_before`` / ``group_through`` / ``group_row`` describe each tie group.
        """
        values = self.data[self.blocks[block]]
        n_block, n_cols = values.shape
        order = np.argsort(values, axis=1)
        sorted_values = np.take_along_axis(values, order, axis=1)
        flat_order = (order + (np.arange(n_block) * n_cols)[:, None]).ravel()
        through = np.arange(1, n_cols + 1) + (np.arange(n_block) * (n_cols + 1))[:, None]
        tied_next = sorted_values[:, 1:] == sorted_values[:, :-1]
        empty = np.empty(0, np.intp)
        tied, tied_before, group_before, group_through = empty, empty, empty, empty
        if tied_next.any():
            tied_previous = np.zeros((n_block, n_cols), dtype=bool)
            tied_previous[:, 1:] = tied_next
            in_tie = tied_previous.copy()
            in_tie[:, :-1] |= tied_next
            positions = np.flatnonzero(in_tie)
            starts_group = ~tied_previous.ravel()[positions]
            group = np.cumsum(starts_group) - 1
            first = positions[starts_group]
            last = positions[np.append(np.flatnonzero(starts_group)[1:] - 1, len(positions) - 1)]
            group_before = first + first // n_cols
            group_through = last + 1 + last // n_cols
            through.ravel()[positions] = group_through[group]
            tied = flat_order[positions]
            tied_before = group_before[group]
        through_original = np.empty_like(through)
        through_original.ravel()[flat_order] = through.ravel()
        return {
            "order": order,
            "through": through_original,
            "tied": tied,
            "tied_before": tied_before,
            "group_before": group_before,
            "group_through": group_through,
        }

    def ranks(self, keep: np.ndarray, sorted_block: dict) -> tuple[np.ndarray, np.ndarray]:
        """Ranks (1..n_kept, ties averaged) within the kept columns of one sorted block, and
        the sum of the squared ranks of each row.

        The ranks have the shape block rows x all columns; the entries of the columns not kept
        are finite but meaningless (products with columns that are zero there ignore them).
        """
        through, tied = sorted_block["through"], sorted_block["tied"]
        group_before, group_through = sorted_block["group_before"], sorted_block["group_through"]
        n_block, n_cols = through.shape
        if keep.all():  # the table of counts is then 0, 1, ..., n_cols on every row
            row_start = (np.arange(n_block) * (n_cols + 1))[:, None]
            ranks = np.subtract(through, row_start, dtype=np.float64)
            before = sorted_block["tied_before"] % (n_cols + 1)
            sizes = (group_through - group_before).astype(np.float64)
        else:
            table = np.zeros((n_block, n_cols + 1), dtype=np.int32)
            np.cumsum(keep[sorted_block["order"]], axis=1, out=table[:, 1:])
            counts = table.ravel()
            ranks = np.take(counts, through).astype(np.float64)
            before = counts[sorted_block["tied_before"]]
            sizes = (counts[group_through] - counts[group_before]).astype(np.float64)
        if tied.size:
            flat = ranks.ravel()
            flat[tied] = (flat[tied] + 1.0 + before) * 0.5
        n = float(keep.sum())
        sumsq = np.full(n_block, n * (n + 1) * (2 * n + 1) / 6)
        if sizes.size:
            rows = group_before // (n_cols + 1)
            sumsq -= np.bincount(rows, weights=sizes**3 - sizes, minlength=n_block) / 12
        return ranks, sumsq

    def all_ranks(self, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ranks of every row and their sums of squares (see :meth:`ranks`)."""
        parts = [self.ranks(keep, self.sort(block)) for block in range(len(self.blocks))]
        return np.vstack([r for r, _ in parts]), np.concatenate([s for _, s in parts])


# --------------------------------------------------------------------------------------------
# Inputs: features, covariates and the jobs that test them
# --------------------------------------------------------------------------------------------


@dataclass
class _Feature:
    name: object
    kind: str  # correlation / binary / categorical
    test: str
    values: np.ndarray  # float (correlation) or int codes (groups, -1 = missing)
    levels: list[str]
    contrast: str
    usable: np.ndarray  # bool: value present and covariates complete


@dataclass
class _Job:
    """One feature on one missing-value pattern of the values: the patients it uses."""

    feature: int
    keep: np.ndarray  # bool over the pattern's patients
    codes: np.ndarray | None = None  # group codes 0..k-1 of the kept patients (groups only)
    group_sizes: np.ndarray | None = None


def is_plain_number(dtype: object) -> bool:
    """Numbers as they are: a numeric dtype that is neither boolean nor categorical."""
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
    )


def _encode_feature(
    name: object, column: pd.Series, feature_type: str, tests: Mapping[str, str]
) -> tuple[str, str, np.ndarray, list[str], str]:
    """A feature's kind, test, values (floats, or group codes with -1 for missing), levels
    and contrast. Continuous features stored as plain numbers are read by
    :func:`_numeric_columns` instead, all in one block."""
    kind = FEATURE_KINDS.get(feature_type)
    if kind is None:
        raise InputError(
            f"types: feature {name!r} has type {feature_type!r}; use one of "
            + ", ".join(FEATURE_KINDS)
        )
    test = tests[kind]
    is_categorical = isinstance(column.dtype, pd.CategoricalDtype)
    if kind == "correlation":
        if is_categorical:
            codes = column.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            return kind, test, codes, [], ""
        values = pd.to_numeric(column, errors="coerce")
        if values.isna().sum() > column.isna().sum():
            raise InputError(
                f"features: column {name!r} is {feature_type} but holds non-numeric values; "
                "convert it to numbers or give it a categorical type"
            )
        return kind, test, values.to_numpy(dtype=np.float64), [], ""
    if is_categorical:
        categories = list(column.cat.categories)
        if kind == "categorical" or len(categories) > 2:
            present = set(column.dropna().unique())
            categories = [c for c in categories if c in present]
    else:
        present = column.dropna().unique()
        try:
            categories = sorted(present)
        except TypeError:  # mixed types
            categories = sorted(present, key=str)
    if kind == "binary" and len(categories) > 2:
        raise InputError(
            f"features: binary feature {name!r} has {len(categories)} levels "
            f"({', '.join(map(str, categories[:5]))}); declare it categorical or recode it"
        )
    if is_categorical and categories == list(column.cat.categories):
        codes = column.cat.codes.to_numpy().astype(np.int64)
    else:
        codes = pd.Categorical(column, categories=categories).codes.astype(np.int64)
    levels = [_level_label(c) for c in categories]
    contrast = f"{levels[1]} vs {levels[0]}" if kind == "binary" and len(levels) == 2 else ""
    return kind, test, codes, levels, contrast


def _numeric_columns(frame: pd.DataFrame, types: Mapping[str, str]) -> dict[int, np.ndarray]:
    """The continuous / ordinal features stored as plain numbers, by column position, read
    in one block (what :func:`_encode_feature` gives each of them, without its per-column
    cost)."""
    plain = {dtype: is_plain_number(dtype) for dtype in set(frame.dtypes)}
    positions = [
        position
        for position, (name, dtype) in enumerate(frame.dtypes.items())
        if FEATURE_KINDS.get(types[name]) == "correlation" and plain[dtype]
    ]
    if not positions:
        return {}
    block = frame.iloc[:, positions].to_numpy(dtype=np.float64, na_value=np.nan).T.copy()
    return dict(zip(positions, block))


def _level_label(level: object) -> str:
    if isinstance(level, float | np.floating) and float(level).is_integer():
        return str(int(level))
    return str(level)


def _covariate_matrix(covariates: pd.DataFrame, index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Covariates as a numeric design (categorical one-hot, first level dropped) + completeness."""
    if not isinstance(covariates, pd.DataFrame):
        raise InputError("covariates: expected a DataFrame of patients x covariates")
    aligned = covariates.reindex(index)
    complete = aligned.notna().all(axis=1).to_numpy()
    blocks = []
    for name, column in aligned.items():
        if is_plain_number(column.dtype):
            blocks.append(column.to_numpy(dtype=np.float64)[:, None])
            continue
        dummies = pd.get_dummies(column, prefix=str(name), drop_first=True, dtype=np.float64)
        if dummies.shape[1] == 0:
            logger.warning("covariate %r has a single level: ignored", name)
            continue
        blocks.append(dummies.to_numpy())
    design = np.hstack(blocks) if blocks else np.empty((len(index), 0))
    design = np.where(complete[:, None], design, 0.0)
    return design, complete


def _orthonormal_basis(matrix: np.ndarray, *, scale: float | None = None) -> np.ndarray:
    """Orthonormal basis of the column space (rank-revealing SVD).

    Directions with singular values below a relative tolerance of ``scale`` (default: the
    largest singular value) are dropped.
    """
    if matrix.shape[1] == 0:
        return matrix
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    scale = s.max(initial=0.0) if scale is None else scale
    tolerance = max(scale * max(matrix.shape) * np.finfo(np.float64).eps, scale * 1e-8)
    return u[:, s > tolerance]


def _variables_by_patients(values: pd.DataFrame, patients: pd.Index) -> tuple[np.ndarray, bool]:
    """The values as a C-contiguous float64 variables x patients array (copied block by block
    to keep the peak memory near one copy), and whether any value is missing."""
    raw = values.to_numpy()
    rows = values.index.get_indexer(patients)
    if np.array_equal(rows, np.arange(len(values))):
        rows = slice(None)
    data = np.empty((raw.shape[1], len(patients)))
    any_missing = False
    for start in range(0, raw.shape[1], _ROW_BLOCK):
        block = data[start : start + _ROW_BLOCK]
        block[:] = raw[rows, start : start + _ROW_BLOCK].T
        any_missing = any_missing or bool(np.isnan(block).any())
    return data, any_missing


def row_patterns(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a boolean matrix (e.g. each variable's missing patients) and the
    pattern of each row: ``np.unique(rows, axis=0, return_inverse=True)``, on packed bits."""
    packed = np.packbits(rows, axis=1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return rows[first], inverse.ravel()


def numeric_block(frame: pd.DataFrame, *, codes: bool = False) -> np.ndarray:
    """The columns as float numbers, numeric columns read in one block; the others through
    ``pd.to_numeric(errors="coerce")``, or, with ``codes``, categorical columns as their
    category codes (missing = NaN)."""
    numeric = {dtype: pd.api.types.is_numeric_dtype(dtype) for dtype in set(frame.dtypes)}
    block = np.array([numeric[dtype] for dtype in frame.dtypes], dtype=bool)
    out = np.full(frame.shape, np.nan)
    if block.any():
        out[:, block] = frame.loc[:, block].to_numpy(dtype=np.float64, na_value=np.nan)
    for position in np.flatnonzero(~block):
        column = frame.iloc[:, position]
        if codes and isinstance(column.dtype, pd.CategoricalDtype):
            category = column.cat.codes.to_numpy().astype(np.float64)
            out[:, position] = np.where(category < 0, np.nan, category)
        else:
            out[:, position] = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    return out


# --------------------------------------------------------------------------------------------
# Product batches: matrix products shared by many jobs
# --------------------------------------------------------------------------------------------


class _Columns:
    """Columns to multiply the data by, collected job by job."""

    def __init__(self, length: int):
        self.length = length
        self.blocks: list[np.ndarray] = []
        self.width = 0

    def add(self, block: np.ndarray) -> slice:
        block = block.reshape(self.length, -1)
        self.blocks.append(block)
        self.width += block.shape[1]
        return slice(self.width - block.shape[1], self.width)

    def matrix(self) -> np.ndarray:
        if not self.blocks:
            return np.zeros((self.length, 0))
        return np.hstack(self.blocks)


def _centred_products(
    data: np.ndarray, linear: np.ndarray, square: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``yc @ linear`` and ``yc**2 @ square`` with yc = rows of ``data`` minus their mean.

    Processed in blocks of rows so that no full-size centred copy is held.
    """
    n_rows = data.shape[0]
    out_linear = np.empty((n_rows, linear.shape[1]))
    out_square = np.empty((n_rows, square.shape[1]))
    for start in range(0, n_rows, _ROW_BLOCK):
        block = data[start : start + _ROW_BLOCK]
        block = block - block.mean(axis=1, keepdims=True)
        out_linear[start : start + _ROW_BLOCK] = block @ linear
        np.square(block, out=block)
        out_square[start : start + _ROW_BLOCK] = block @ square
    return out_linear, out_square


# --------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------


def associate(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    *,
    continuous: Literal["spearman", "pearson"] = "spearman",
    binary: Literal["welch", "student", "mannwhitney"] = "welch",
    categorical: Literal["kruskal", "anova"] = "kruskal",
    covariates: pd.DataFrame | None = None,
    min_n: int = 10,
    min_group: int = 3,
) -> Associations:
    """Test every variable against every feature with the test its type calls for.

    Parameters
    ----------
    values
        Patients x variables (module eigengenes, genes); numeric, may hold NaN.
    features
        Patients x features. Numeric columns, or pandas ``Categorical`` (the category order
        sets the binary contrast: second level vs first; ordinal categories enter correlations
        as their codes). Non-categorical group columns use their sorted values as levels.
    types
        Feature -> ``continuous`` / ``ordinal`` / ``binary`` / ``categorical``. Every column of
        ``features`` needs a type; extra keys are ignored.
    continuous
        Test for continuous and ordinal features: Spearman rho or Pearson r (t-test p-value).
    binary
        Test for binary features: Welch t (effect Hedges' g), Student's t (pooled variance;
        exact under the null of no link, which makes the two groups exchangeable, where
        Welch's p is far too small in the tail when one group is small: 26 times too many
        p < 1e-4 for 4 vs 36 patients) or Mann–Whitney U (effect rank-biserial correlation,
        asymptotic p with tie and continuity correction).
    categorical
        Test for categorical features: Kruskal–Wallis H (tie corrected, effect epsilon-squared)
        or one-way ANOVA F (effect eta-squared).
    covariates
        Patients x covariates (numeric, or categorical one-hot encoded with the first level
        dropped); patients missing a covariate are left out. With covariates every test becomes
        a linear model fitted to all variables at once (one least-squares projection per set of
        patients):

        - continuous/ordinal -> ``partial_spearman``: the ranks of the values and of the
          feature (within the patients used) are residualised on intercept + covariates (the
          covariates enter as they are, not ranked, unlike e.g. pingouin's partial Spearman)
          and the residuals correlated; t-test with n - 2 - k degrees of freedom, k = covariate
          columns. With ``continuous="pearson"``: ``partial_pearson``, the same on the raw
          values (its p equals the OLS t-test of the feature's coefficient);
        - binary -> ``ols``: t of the feature's coefficient in value ~ feature + covariates
          (effect = coefficient / residual sd);
        - categorical -> ``ols``: F test of the feature's dummy block (effect = partial
          eta-squared).
    min_n
        Features with fewer usable patients get NaN p-values.
    min_group
        Groups of a binary/categorical feature with fewer patients are left out (their patients
        are not counted in ``n``); with fewer than two groups left the p-value is NaN.

    Returns
    -------
    :class:`Associations` (variables x features). Constant variables give NaN.
    """
    started = time.perf_counter()
    tests = _check_options(continuous, binary, categorical, min_n, min_group)
    if not isinstance(values, pd.DataFrame) or not isinstance(features, pd.DataFrame):
        raise InputError("associate: values and features must be pandas DataFrames")
    for frame, label in ((values, "values"), (features, "features")):
        if frame.index.has_duplicates:
            duplicate = frame.index[frame.index.duplicated()][0]
            raise InputError(f"{label}: patient ID {duplicate!r} appears twice; make IDs unique")
        if frame.columns.has_duplicates:
            duplicate = frame.columns[frame.columns.duplicated()][0]
            raise InputError(f"{label}: column {duplicate!r} appears twice; rename one")
    numeric = {dtype: pd.api.types.is_numeric_dtype(dtype) for dtype in set(values.dtypes)}
    non_numeric = [c for c, dtype in values.dtypes.items() if not numeric[dtype]]
    if non_numeric:
        raise InputError(
            f"values: column {non_numeric[0]!r} is not numeric; associate numeric variables only"
        )
    untyped = [c for c in features.columns if c not in types]
    if untyped:
        raise InputError(
            f"types: feature {untyped[0]!r} has no type; give it continuous / ordinal / "
            "binary / categorical"
        )
    patients = values.index.intersection(features.index, sort=False)
    if len(patients) == 0:
        raise InputError(
            "associate: values and features share no patient IDs; check the ID columns match"
        )
    logger.info(
        "associate: %d variables x %d features on %d patients",
        values.shape[1],
        features.shape[1],
        len(patients),
    )

    data, any_missing = _variables_by_patients(values, patients)
    feature_frame = features.loc[patients]
    if covariates is not None:
        design, covariates_complete = _covariate_matrix(covariates, patients)
    else:
        design, covariates_complete = None, np.ones(len(patients), dtype=bool)

    encoded = []
    numbers = _numeric_columns(feature_frame, types)
    for position, name in enumerate(features.columns):
        if position in numbers:
            kind, test, levels, contrast = "correlation", tests["correlation"], [], ""
            x = numbers[position]
        else:
            kind, test, x, levels, contrast = _encode_feature(
                name, feature_frame.iloc[:, position], types[name], tests
            )
        if covariates is not None:
            test = _ADJUSTED_TEST[test]
        present = ~np.isnan(x) if kind == "correlation" else x >= 0
        encoded.append(
            _Feature(name, kind, test, x, levels, contrast, present & covariates_complete)
        )

    if any_missing:
        missing_patterns, pattern_of_row = row_patterns(np.isnan(data))
    else:
        missing_patterns = np.zeros((1, data.shape[1]), dtype=bool)
        pattern_of_row = np.zeros(data.shape[0], dtype=np.intp)
    notes = []
    if len(missing_patterns) > MANY_PATTERNS:
        notes.append(
            f"values: {len(missing_patterns)} distinct patterns of missing values make testing "
            "slow; impute or filter the variables with missing values"
        )
    # Results are filled feature by feature: feature-major arrays keep the writes contiguous.
    shape = (len(encoded), data.shape[0])
    statistic, effect, p = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    n_pairs = np.zeros(shape if any_missing else (0, 0), dtype=np.int64)
    runner = _Runner(encoded, design, min_n, min_group)
    for pattern, pattern_missing in enumerate(missing_patterns):
        if len(missing_patterns) == 1:
            rows, block = slice(None), data
        else:
            rows = np.flatnonzero(pattern_of_row == pattern)
            block = data[rows]
        observed = ~pattern_missing
        if not observed.all():
            block = block[:, observed]
        results = runner.run(block, observed)
        for feature, (job_n, job_statistic, job_effect, job_p) in results.items():
            statistic[feature, rows] = job_statistic
            effect[feature, rows] = job_effect
            p[feature, rows] = job_p
            if any_missing:
                n_pairs[feature, rows] = job_n
    if any_missing:
        constant = np.nanmax(data, axis=1, initial=-np.inf) == np.nanmin(
            data, axis=1, initial=np.inf
        )
    else:
        constant = data.max(axis=1) == data.min(axis=1)
    _set_nan((slice(None), constant), statistic, effect, p)

    index, columns = values.columns, features.columns
    everyone = np.ones(len(patients), dtype=bool)
    n = []
    for _, used, feature_notes in runner.jobs(everyone):
        n.append(used)
        notes.extend(feature_notes)
    for note in notes:
        logger.info("associate: %s", note)
    result = Associations(
        statistic=pd.DataFrame(statistic.T, index=index, columns=columns),
        effect=pd.DataFrame(effect.T, index=index, columns=columns),
        p=pd.DataFrame(p.T, index=index, columns=columns),
        n=pd.Series(n, index=columns, name="n", dtype=np.int64),
        test=pd.Series([f.test for f in encoded], index=columns, name="test", dtype=object),
        contrast=pd.Series(
            [f.contrast for f in encoded], index=columns, name="contrast", dtype=object
        ),
        n_pairs=pd.DataFrame(n_pairs.T, index=index, columns=columns) if any_missing else None,
        notes=notes,
        measure=pd.Series(
            [EFFECT_MEASURES[f.kind, f.test] for f in encoded],
            index=columns,
            name="effect_measure",
            dtype=object,
        ),
    )
    logger.info("associate: finished (%.2f s)", time.perf_counter() - started)
    return result


_ADJUSTED_TEST = {
    "spearman": "partial_spearman",
    "pearson": "partial_pearson",
    "welch": "ols",
    "student": "ols",
    "mannwhitney": "ols",
    "kruskal": "ols",
    "anova": "ols",
}


def _check_options(
    continuous: str, binary: str, categorical: str, min_n: int, min_group: int
) -> dict[str, str]:
    for option, value, allowed in (
        ("continuous", continuous, CONTINUOUS_TESTS),
        ("binary", binary, BINARY_TESTS),
        ("categorical", categorical, CATEGORICAL_TESTS),
    ):
        if value not in allowed:
            raise InputError(f"associate: {option} must be one of {allowed}, not {value!r}")
    if min_n < 3 or min_group < 1:
        raise InputError("associate: min_n must be >= 3 and min_group >= 1")
    return {"correlation": continuous, "binary": binary, "categorical": categorical}


class _Runner:
    """Tests every feature on one missing-value pattern of the values.

    Jobs (one per feature) are collected into two batches: moment tests share one product of
    the row-centred values (and their squares) with zero-padded columns; rank tests share one
    ranking of the values and one product per distinct set of patients.
    """

    def __init__(
        self, features: list[_Feature], design: np.ndarray | None, min_n: int, min_group: int
    ):
        self.features = features
        self.design = design
        self.min_n = min_n
        self.min_group = min_group
        # The correlation features' values and usable patients as matrices (features x
        # patients): their jobs are found for all of them at once.
        self.correlations = np.array(
            [i for i, feature in enumerate(features) if feature.kind == "correlation"], dtype=int
        )
        self.correlation_row = np.full(len(features), -1)
        self.correlation_row[self.correlations] = np.arange(len(self.correlations))
        shape = (len(self.correlations), len(features[0].values) if features else 0)
        self.correlation_values = np.empty(shape)
        self.correlation_usable = np.empty(shape, dtype=bool)
        for row, index in enumerate(self.correlations):
            self.correlation_values[row] = features[index].values
            self.correlation_usable[row] = features[index].usable
        self._last_jobs: tuple[bytes, list] | None = None

    def run(self, data: np.ndarray, observed: np.ndarray) -> dict[int, tuple]:
        """Results per feature index: (n, statistic, effect, p) arrays over the rows of data."""
        jobs = [job for job, _, _ in self.jobs(observed) if job is not None]
        rank_jobs = [j for j in jobs if self.features[j.feature].test in RANK_TESTS]
        moment_jobs = [j for j in jobs if self.features[j.feature].test not in RANK_TESTS]
        results: dict[int, tuple] = {}
        if moment_jobs:
            results.update(self._run_moments(data, observed, moment_jobs))
        if rank_jobs:
            results.update(self._run_ranks(data, observed, rank_jobs))
        return results

    def jobs(self, observed: np.ndarray) -> list[tuple[_Job | None, int, list[str]]]:
        """The patients (and groups) each feature is tested on among the observed ones.

        Per feature: the job (None if the feature can't be tested), the patients it uses, and
        what to tell the user. The correlation features are checked all at once; the last
        answer is kept (without missing values, the tests and the final counts ask for the
        same patients).
        """
        key = observed.tobytes()
        if self._last_jobs is not None and self._last_jobs[0] == key:
            return self._last_jobs[1]
        found: list = [None] * len(self.features)
        usable = self.correlation_usable[:, observed]
        values = self.correlation_values[:, observed]
        n = usable.sum(axis=1)
        constant = (n > 0) & (
            np.where(usable, values, np.inf).min(axis=1, initial=np.inf)
            == np.where(usable, values, -np.inf).max(axis=1, initial=-np.inf)
        )
        for row, index in enumerate(self.correlations):
            used = int(n[row])
            if constant[row]:
                note = f"feature {self.features[index].name!r} is constant: not tested"
                found[index] = (None, used, [note])
            else:
                found[index] = self._counted(_Job(int(index), usable[row]), used, [])
        for index, feature in enumerate(self.features):
            if feature.kind != "correlation":
                found[index] = self.group_job(index, observed)
        self._last_jobs = (key, found)
        return found

    def correlation_values_of(
        self, features: Sequence[int], observed: np.ndarray, keep: np.ndarray
    ) -> np.ndarray:
        """Kept patients x the given correlation features' values."""
        rows = self.correlation_row[np.asarray(features, dtype=int)]
        return self.correlation_values[rows][:, observed][:, keep].T

    def group_job(self, index: int, observed: np.ndarray) -> tuple[_Job | None, int, list[str]]:
        """The patients and groups a binary or categorical feature is tested on among the
        observed ones (a job of :meth:`jobs`)."""
        feature = self.features[index]
        keep = feature.usable[observed]
        notes = []
        codes = feature.values[observed]
        sizes = np.bincount(codes[keep], minlength=len(feature.levels))
        large = sizes >= self.min_group
        if large.sum() < 2 or (feature.kind == "binary" and not large.all()):
            note = (
                f"feature {feature.name!r}: fewer than 2 groups with >= {self.min_group} "
                f"patients ({_group_counts(feature.levels, sizes)}): not tested"
            )
            return None, int(keep.sum()), [note]
        if not large.all():
            small = _group_counts(feature.levels, np.where(large, 0, sizes))
            notes.append(
                f"feature {feature.name!r}: groups with < {self.min_group} patients left "
                f"out ({small})"
            )
        keep = keep & large[np.maximum(codes, 0)]
        new_code = np.cumsum(large) - 1
        job = _Job(index, keep, new_code[codes[keep]], sizes[large].astype(np.float64))
        return self._counted(job, int(keep.sum()), notes)

    def _counted(self, job: _Job, n: int, notes: list[str]) -> tuple[_Job | None, int, list[str]]:
        """The job, or None with a note when it has fewer than ``min_n`` patients."""
        if n < self.min_n:
            name = self.features[job.feature].name
            return None, n, [f"feature {name!r}: {n} patients < min_n={self.min_n}: not tested"]
        return job, n, notes

    def _basis(self, observed: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Orthonormal basis of intercept + covariates over the kept patients."""
        intercept = np.ones((int(keep.sum()), 1))
        if self.design is None:
            return intercept / np.sqrt(len(intercept))
        return _orthonormal_basis(np.hstack([intercept, self.design[observed][keep]]))

    def _regressors(self, job: _Job, x: np.ndarray, basis: np.ndarray) -> np.ndarray:
        """The feature's columns in the linear model, residualised on the basis (no columns
        when the feature is collinear with the covariates)."""
        kind = self.features[job.feature].kind
        if kind == "categorical":
            dummies = np.eye(len(job.group_sizes))[job.codes][:, 1:]
            centred = dummies - dummies.mean(axis=0)
            return _orthonormal_basis(
                dummies - basis @ (basis.T @ dummies), scale=np.linalg.norm(centred, 2)
            )
        column = x if kind == "correlation" else (job.codes == 1).astype(np.float64)
        residual = column - basis @ (basis.T @ column)
        centred = column - column.mean()
        if residual @ residual <= 1e-12 * (centred @ centred):
            return np.empty((len(column), 0))
        return residual[:, None]

    def _run_moments(self, data: np.ndarray, observed: np.ndarray, jobs: list[_Job]) -> dict:
        n_patients = data.shape[1]
        linear, square = _Columns(n_patients), _Columns(n_patients)
        pending = []
        finish: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]
        # The Pearson features on the same patients: one block of columns, finished at once.
        pearson: dict[bytes, list[_Job]] = {}
        for job in jobs:
            if self.features[job.feature].test == "pearson":
                pearson.setdefault(job.keep.tobytes(), []).append(job)
        for same in pearson.values():
            keep, n = same[0].keep, int(same[0].keep.sum())
            x = self.correlation_values_of([job.feature for job in same], observed, keep)
            xc = x - x.mean(axis=0)
            ss_x = np.einsum("ij,ij->j", xc, xc)
            mask = keep.astype(np.float64)
            sq = square.add(mask)
            for part in _finish_blocks(len(same), data.shape[0]):
                lin = linear.add(np.column_stack([mask, _pad(xc[:, part], keep)]))

                def finish(a, b, n=n, ss_x=ss_x[part]):
                    ss_values = b[:, 0] - a[:, 0] ** 2 / n
                    return _correlation_kernel(a[:, 1:], ss_values[:, None], ss_x, n - 2)

                pending.append(([job.feature for job in same[part]], n, lin, sq, finish))
        for job in jobs:
            feature = self.features[job.feature]
            if feature.test == "pearson":
                continue
            keep, n = job.keep, int(job.keep.sum())

            # Column 0 of both products is the patients' indicator: sum and sum of squares of
            # the row-centred values, used to find variables constant over these patients.
            mask = keep.astype(np.float64)
            x = feature.values[observed][keep]
            if feature.test in ("welch", "student", "anova"):
                indicators = _pad(np.eye(len(job.group_sizes))[job.codes], keep)
                lin = linear.add(np.column_stack([mask, indicators]))
                sq = square.add(np.column_stack([mask, indicators]))
                sizes = job.group_sizes
                if feature.test in ("welch", "student"):

                    def finish(a, b, sizes=sizes, pooled=feature.test == "student"):
                        return _welch_kernel(
                            a[:, 1], b[:, 1], sizes[0], a[:, 2], b[:, 2], sizes[1], pooled=pooled
                        )
                else:

                    def finish(a, b, sizes=sizes):
                        return _anova_kernel(a[:, 1:], b[:, 1:], sizes)

            else:  # ols, partial_pearson
                basis = self._basis(observed, keep)
                regressors = self._regressors(job, x, basis)
                df = n - basis.shape[1] - regressors.shape[1]
                if regressors.shape[1] == 0 or df < 1:
                    continue
                lin = linear.add(np.column_stack([mask, _pad(basis, keep), _pad(regressors, keep)]))
                sq = square.add(mask)
                finish = _linear_model_finisher(feature.kind, basis.shape[1], regressors, df)
            pending.append(([job.feature], n, lin, sq, finish))

        product_linear, product_square = _centred_products(data, linear.matrix(), square.matrix())

        def finish_one(item: tuple) -> list[tuple[int, tuple]]:
            features, n, lin, sq, finish = item
            a, b = product_linear[:, lin], product_square[:, sq]
            ss_centred = b[:, 0] - a[:, 0] ** 2 / n
            constant = ss_centred <= _CONSTANT_TOLERANCE * b[:, 0]
            return _by_feature(features, n, finish(a, b), constant)

        return _finish_all(finish_one, pending, rows=data.shape[0])

    def _run_ranks(self, data: np.ndarray, observed: np.ndarray, jobs: list[_Job]) -> dict:
        ranker = _RowRanker(data)
        by_patients: dict[bytes, list[_Job]] = {}
        for job in jobs:
            by_patients.setdefault(job.keep.tobytes(), []).append(job)
        batches = [
            self._rank_batch(same, observed, rows=data.shape[0]) for same in by_patients.values()
        ]

        n_rows = data.shape[0]
        for batch in batches:
            batch["sumsq"] = np.empty(n_rows)
            batch["product"] = np.empty((n_rows, batch["columns"].shape[1]))

        def multiply(block: int) -> None:
            # One sort of a cache-sized block of rows serves every set of patients.
            sorted_block = ranker.sort(block)
            rows = ranker.blocks[block]
            for batch in batches:
                ranks, batch["sumsq"][rows] = ranker.ranks(batch["keep"], sorted_block)
                np.matmul(ranks, batch["columns"], out=batch["product"][rows])

        if len(ranker.blocks) == 1:  # a module map: one block, run here
            multiply(0)
        else:
            # The blocks run on every core already: BLAS threads inside them would only contend.
            with blas_controller().limit(limits=1, user_api="blas"):
                _thread_map(multiply, list(range(len(ranker.blocks))))

        def finish_one(item: tuple) -> list[tuple[int, tuple]]:
            batch, features, cols, finish = item
            n, sumsq = batch["n"], batch["sumsq"]
            # Centred sum of squares of the ranks: exact (ranks are multiples of 1/2).
            ss_ranks = sumsq - n * ((n + 1) / 2) ** 2
            results = finish(batch["product"][:, cols], sumsq, ss_ranks)
            return _by_feature(features, n, results, ss_ranks <= 0)

        pending = [(batch, *item) for batch in batches for item in batch["pending"]]
        return _finish_all(finish_one, pending, rows=data.shape[0])

    def _rank_batch(self, jobs: list[_Job], observed: np.ndarray, *, rows: int) -> dict:
        """Columns to multiply the ranks by, and how to finish each job, for jobs sharing the
        same patients (of ``rows`` variables)."""
        keep = jobs[0].keep
        n = int(keep.sum())
        columns = _Columns(len(keep))
        pending = []
        basis = basis_columns = None
        finish: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]
        # The Spearman features: ranked in one call and finished as one block of columns.
        spearman = [job.feature for job in jobs if self.features[job.feature].test == "spearman"]
        if spearman:
            x = self.correlation_values_of(spearman, observed, keep)
            x_ranks = stats.rankdata(x, axis=0)
            xc = x_ranks - x_ranks.mean(axis=0)
            first = columns.add(_pad(xc, keep)).start
            ss_x = np.einsum("ij,ij->j", xc, xc)
            for part in _finish_blocks(len(spearman), rows):

                def finish(product, sumsq, ss_ranks, ss_x=ss_x[part], n=n):
                    return _correlation_kernel(product, ss_ranks[:, None], ss_x, n - 2)

                cols = slice(first + part.start, first + part.stop)
                pending.append((spearman[part], cols, finish))
        for job in jobs:
            feature = self.features[job.feature]
            if feature.test == "spearman":
                continue
            if feature.test == "mannwhitney":
                cols = columns.add(_pad((job.codes == 1).astype(np.float64), keep))

                def finish(product, sumsq, ss_ranks, sizes=job.group_sizes):
                    return _mannwhitney_kernel(product[:, 0], int(sizes[0]), int(sizes[1]), sumsq)

            elif feature.test == "kruskal":
                cols = columns.add(_pad(np.eye(len(job.group_sizes))[job.codes], keep))

                def finish(product, sumsq, ss_ranks, sizes=job.group_sizes):
                    return _kruskal_kernel(product, sizes, sumsq)

            else:  # partial_spearman: product = ranks @ [basis, residualised feature ranks]
                if basis is None:
                    basis = self._basis(observed, keep)
                    basis_columns = columns.add(_pad(basis, keep))
                x_ranks = stats.rankdata(feature.values[observed][keep])
                residual = self._regressors(job, x_ranks, basis)
                df = n - 1 - basis.shape[1]
                if residual.shape[1] == 0 or df < 1:
                    continue
                cols = np.r_[basis_columns, columns.add(_pad(residual, keep))]
                linear_finish = _linear_model_finisher("correlation", basis.shape[1], residual, df)

                def finish(product, sumsq, ss_ranks, linear_finish=linear_finish):
                    # the linear-model finisher expects [sum, basis, regressor] and [sum of squares]
                    padded = np.column_stack([np.zeros(len(product)), product])
                    return linear_finish(padded, sumsq[:, None])

            pending.append(([job.feature], cols, finish))
        return {"keep": keep, "n": n, "columns": columns.matrix(), "pending": pending}


def _linear_model_finisher(
    kind: str, n_basis: int, regressors: np.ndarray, df: int
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Finish a covariate-adjusted job from ``a = y @ [mask, basis, regressors]`` and
    ``b[:, 0] = sum of y**2`` over the job's patients."""

    def finish(a: np.ndarray, b: np.ndarray):
        sse_reduced = b[:, 0] - (a[:, 1 : 1 + n_basis] ** 2).sum(axis=1)
        projections = a[:, 1 + n_basis :]
        if kind == "categorical":
            ss_block = (projections**2).sum(axis=1)
            return _ols_f_kernel(ss_block, projections.shape[1], sse_reduced, df)
        ss_regressor = float(regressors[:, 0] @ regressors[:, 0])
        if kind == "binary":
            return _ols_t_kernel(projections[:, 0], ss_regressor, sse_reduced, df)
        return _correlation_kernel(projections[:, 0], sse_reduced, ss_regressor, df)

    return finish


def _group_counts(levels: list[str], sizes: np.ndarray) -> str:
    return ", ".join(f"{level}: {size}" for level, size in zip(levels, sizes) if size)


def _thread_map(function: Callable, items: list, *, rows: int | None = None) -> list:
    """``map`` over a few threads: the numpy / scipy.special work inside releases the GIL.

    Items that each work on fewer than ``_THREADED_ROWS`` rows (a module map's eigengenes)
    take less time than handing them to a thread: they run here, one after another.
    """
    if _THREADS <= 1 or len(items) < 2 or (rows is not None and rows < _THREADED_ROWS):
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        return list(pool.map(function, items))


def _by_feature(
    features: list[int], n: int, results: tuple, constant: np.ndarray
) -> list[tuple[int, tuple]]:
    """A block's (statistic, effect, p), variables x ``features`` (or one feature's arrays
    over the variables), as ``(feature, (n, statistic, effect, p))`` per feature; NaN for the
    variables ``constant`` over the block's patients."""
    shape = (len(constant), len(features))
    statistic, effect, p = (np.reshape(r, shape) for r in results)
    _set_nan(constant, statistic, effect, p)
    return [
        (feature, (n, statistic[:, k], effect[:, k], p[:, k])) for k, feature in enumerate(features)
    ]


def _finish_all(finish_one: Callable, pending: list, *, rows: int) -> dict[int, tuple]:
    """Every block finished (:func:`_thread_map`), as one result per feature index."""
    finished = _thread_map(finish_one, pending, rows=rows)
    return dict(result for results in finished for result in results)


def _finish_blocks(n_features: int, rows: int) -> list[slice]:
    """Consecutive blocks of ``n_features`` features finished together (see
    :data:`_FINISH_CELLS`)."""
    size = max(1, _FINISH_CELLS // max(rows, 1))
    return [slice(start, min(start + size, n_features)) for start in range(0, n_features, size)]


def _pad(columns: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Columns over the kept patients -> columns over all patients, zero where not kept."""
    columns = columns.reshape(len(columns), -1)
    out = np.zeros((len(keep), columns.shape[1]))
    out[keep] = columns
    return out


def _set_nan(rows: np.ndarray | tuple, *arrays: np.ndarray) -> None:
    for array in arrays:
        array[rows] = np.nan
