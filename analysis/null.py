"""Empirical null of the module x feature map: how much of the map would appear by chance.

Patients' imaging rows are permuted against their expression ``B`` times (the gene-gene and
feature-feature correlation structures stay intact) and the whole map is recomputed for each
permutation. Everything runs on ranks, in one batched matrix product per block of
permutations:

- eigengenes are ranked once over all patients; a permutation only reorders these ranks;
- each continuous / ordinal feature contributes its centred ranks (within the patients who
  have it, zero elsewhere), so a product gives Spearman's numerator; each binary / categorical
  feature contributes its group indicators, so a product gives the group rank sums of the
  Kruskal–Wallis H (the Mann–Whitney test for two groups);
- the sums of the eigengene ranks and of their squares over each feature's patients come from
  one more product with the features' indicators.

With complete data the statistics are exactly Spearman's rho and the tie-corrected
Kruskal–Wallis H. When a feature misses patients, eigengene ranks stay those over all
patients (rank statistics of the whole-cohort ranks), which is what makes one product per
block possible; the permutation p-value is exact for that statistic either way.

Per map cell the result is a permutation p-value, ``(1 + #{b: T_b >= T}) / (B + 1)``. Per map
it is the number of links passing Benjamini–Hochberg at ``alpha`` (on the statistics'
asymptotic p-values, within each multiple-testing family as the map's q) in the data and in
every permutation: the mean over permutations is
the number of links expected by chance, and its ratio to the observed number the empirical
false discovery rate (Storey & Tibshirani 2003, with all cells treated as null).

Permutation ``b`` is drawn from its own seed (``SeedSequence(seed, spawn_key=(b,))``), so the
result is the same whatever the block size, number of workers or scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special, stats

from .associate import numeric_block, row_patterns
from .parallel import blocks, run_tasks, task_rng
from .validate import InputError

if TYPE_CHECKING:
    from .projection import GeneNullResult

logger = logging.getLogger("radmap")

CORRELATION_TYPES = ("continuous", "ordinal")
GROUP_TYPES = ("binary", "categorical")
DEFAULT_PERMUTATIONS = 1000
BLOCK_SIZE = 50
"""Permutations per task (one batched product each)."""
_RELATIVE_TIE = 1e-10


@dataclass
class RankDesign:
    """Everything the permutation kernel needs, as plain arrays (sent once to each worker).

    Attributes
    ----------
    ranks
        Patients x variables, ranks of each variable over all patients.
    columns
        Patients x product columns: centred feature ranks (correlation features) and group
        indicators (group features), zero for patients without the feature.
    indicators
        Patients x distinct sets of patients used by the tested features (1 = used);
        ``pattern`` gives each tested feature's column.
    n_used
        Patients used per tested feature.
    correlation
        Positions (among tested features) of the correlation features; ``correlation_cols``
        their product column, ``ss_feature`` their centred sum of squared ranks.
    group
        Positions of the group features; ``group_cols`` their indicator columns (contiguous
        per feature, starting at ``group_starts`` within ``group_cols``), ``group_sizes``
        the patients per group column, ``n_groups`` per feature.
    """

    ranks: np.ndarray
    columns: np.ndarray
    indicators: np.ndarray
    pattern: np.ndarray
    n_used: np.ndarray
    correlation: np.ndarray
    correlation_cols: np.ndarray
    ss_feature: np.ndarray
    group: np.ndarray
    group_cols: np.ndarray
    group_starts: np.ndarray
    group_sizes: np.ndarray
    n_groups: np.ndarray


@dataclass
class NullResult:
    """Permutation null of a variable x feature map.

    Attributes
    ----------
    statistic
        Variables x features: Spearman rho (continuous / ordinal) or Kruskal–Wallis H
        (binary / categorical) on ranks; NaN for features not tested.
    p
        Asymptotic p-values of ``statistic`` (t-test of rho, chi-square of H).
    p_perm
        Permutation p-values (two-sided for rho).
    test
        Per feature: ``spearman`` / ``kruskal`` (``""`` when not tested).
    n
        Patients used per feature.
    discoveries_null
        Links passing BH at ``alpha`` in each permutation (length ``n_permutations``).
    observed_links
        Links passing BH at ``alpha`` in the data.
    alpha, n_permutations, seed
        Parameters.
    notes
        Features not tested, and why.
    """

    statistic: pd.DataFrame
    p: pd.DataFrame
    p_perm: pd.DataFrame
    test: pd.Series
    n: pd.Series
    discoveries_null: np.ndarray
    observed_links: int
    alpha: float
    n_permutations: int
    seed: int
    notes: list[str] = field(default_factory=list)

    @property
    def expected_false_links(self) -> float:
        """Mean number of links passing the threshold when no link is real."""
        return float(np.mean(self.discoveries_null)) if len(self.discoveries_null) else np.nan

    @property
    def empirical_fdr(self) -> float:
        """Expected false links / observed links (capped at 1; NaN without observed links)."""
        if self.observed_links == 0:
            return np.nan
        return float(min(1.0, self.expected_false_links / self.observed_links))

    @property
    def map_p(self) -> float:
        """Permutation p-value of the whole map: chance of at least as many links by chance."""
        exceed = int(np.sum(self.discoveries_null >= self.observed_links))
        return (1 + exceed) / (self.n_permutations + 1)

    def summary(self) -> dict[str, float | int]:
        """JSON-friendly map-level figures, as stored in the bundle."""
        null = np.asarray(self.discoveries_null, dtype=float)
        return {
            "alpha": float(self.alpha),
            "n_permutations": int(self.n_permutations),
            "seed": int(self.seed),
            "observed_links": int(self.observed_links),
            "expected_false_links": _rounded(self.expected_false_links),
            "null_links_p95": _rounded(np.quantile(null, 0.95)) if len(null) else np.nan,
            "empirical_fdr": _rounded(self.empirical_fdr),
            "map_p": _rounded(self.map_p),
            "tested_links": int(np.isfinite(self.p.to_numpy()).sum()),
        }

    def badge(self) -> str:
        """One line for people, e.g. ``13 links at q < 0.05; 0.4 expected by chance``."""
        links = "link" if self.observed_links == 1 else "links"
        text = (
            f"{self.observed_links} {links} at q < {self.alpha:g}; "
            f"{self.expected_false_links:.1f} expected by chance "
            f"({self.n_permutations} permutations"
        )
        if self.observed_links:
            text += f", empirical FDR {self.empirical_fdr:.2f}"
        return text + ")"

    def tidy(self, variable_name: str = "module") -> pd.DataFrame:
        """One row per cell: ``variable_name``, ``feature``, ``perm_test``, ``perm_statistic``,
        ``perm_p``, ``perm_q`` (BH over the map's permutation p-values)."""
        from .associate import bh

        variables, features = self.p_perm.index.astype(str), self.p_perm.columns.astype(str)
        n_variables, n_features = self.p_perm.shape
        p_perm = self.p_perm.to_numpy(dtype=np.float64)
        return pd.DataFrame(
            {
                variable_name: np.repeat(np.asarray(variables, dtype=object), n_features),
                "feature": np.tile(np.asarray(features, dtype=object), n_variables),
                "perm_test": np.tile(self.test.to_numpy(dtype=object), n_variables),
                "perm_statistic": self.statistic.to_numpy(dtype=np.float64).ravel(),
                "perm_p": p_perm.ravel(),
                "perm_q": bh(p_perm).ravel(),
            }
        )


def _rounded(value: float) -> float:
    return float(np.round(value, 6)) if np.isfinite(value) else float("nan")


# --------------------------------------------------------------------------------------------
# Design: ranks and product columns
# --------------------------------------------------------------------------------------------


def feature_columns(
    name, column: pd.Series, kind: str | None, *, min_n: int, min_group: int
) -> tuple[np.ndarray, np.ndarray] | str:
    """How the rank kernels test one feature.

    Returns ``(used, raw)``: the patients it uses and patients x columns (its ranks over
    ``used`` for a continuous / ordinal feature, zero elsewhere; one indicator per group of at
    least ``min_group`` patients for a binary / categorical feature), or a note saying why the
    feature is left out.
    """
    if kind in CORRELATION_TYPES:
        if isinstance(column.dtype, pd.CategoricalDtype):
            x = column.cat.codes.to_numpy().astype(np.float64)
            x[x < 0] = np.nan
        else:
            x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        used = ~np.isnan(x)
        if used.sum() < min_n or np.nanmin(x) == np.nanmax(x):
            return f"feature {name!r}: constant or fewer than {min_n} patients"
        raw = np.zeros((len(x), 1))
        raw[used, 0] = stats.rankdata(x[used])
        return used, raw
    if kind in GROUP_TYPES:
        codes = pd.Categorical(column).codes
        sizes = np.bincount(codes[codes >= 0], minlength=int(codes.max(initial=-1)) + 1)
        large = np.flatnonzero(sizes >= min_group)
        used = np.isin(codes, large)
        if len(large) < 2 or used.sum() < min_n:
            return f"feature {name!r}: fewer than 2 groups of {min_group} patients"
        return used, (codes[:, None] == large[None, :]).astype(np.float64)
    raise InputError(
        f"null: feature {name!r} has type {kind!r}; use one of "
        + ", ".join(CORRELATION_TYPES + GROUP_TYPES)
    )


def ranked_features(frame: pd.DataFrame, *, min_n: int) -> dict:
    """:func:`feature_columns` of continuous / ordinal features, by name: the columns with
    the same patients are ranked in one call."""
    if not frame.shape[1]:
        return {}
    numbers = numeric_block(frame, codes=True)
    used = ~np.isnan(numbers)
    lowest = np.where(used, numbers, np.inf).min(axis=0, initial=np.inf)
    highest = np.where(used, numbers, -np.inf).max(axis=0, initial=-np.inf)
    left_out = (used.sum(axis=0) < min_n) | (lowest == highest)
    out: dict = {}
    tested = np.flatnonzero(~left_out)
    patterns, pattern_of = row_patterns(used[:, tested].T)
    for pattern, rows in enumerate(patterns):
        positions = tested[pattern_of == pattern]
        ranks = stats.rankdata(numbers[rows][:, positions], axis=0)
        for k, position in enumerate(positions):
            raw = np.zeros((len(rows), 1))
            raw[rows, 0] = ranks[:, k]
            out[frame.columns[position]] = (rows, raw)
    for position in np.flatnonzero(left_out):
        name = frame.columns[position]
        out[name] = f"feature {name!r}: constant or fewer than {min_n} patients"
    return out


def rank_design(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    *,
    min_n: int = 10,
    min_group: int = 3,
) -> tuple[RankDesign, list, list, list[str]]:
    """Build the rank design of a map.

    Parameters
    ----------
    values
        Patients x variables (eigengenes); no missing values.
    features
        Patients x imaging features (numeric or pandas Categorical).
    types
        Feature -> continuous / ordinal / binary / categorical.
    min_n, min_group
        Features with fewer usable patients, and groups with fewer patients, are left out
        (as in :func:`radmap.analysis.associate.associate`).

    Returns
    -------
    The design, the tested feature names, the names of all features in order, and notes.
    """
    if not isinstance(values, pd.DataFrame) or not isinstance(features, pd.DataFrame):
        raise InputError("null: values and features must be pandas DataFrames")
    patients = values.index.intersection(features.index, sort=False)
    if len(patients) < min_n:
        raise InputError(
            f"null: {len(patients)} patients with both expression and imaging; need {min_n}"
        )
    data = values.loc[patients].to_numpy(dtype=np.float64)
    if np.isnan(data).any():
        raise InputError("null: the variables (eigengenes) have missing values; impute them")
    ranks = stats.rankdata(data, axis=0)
    frame = features.loc[patients]
    n = len(patients)
    columns: list[np.ndarray] = []
    indicators: list[np.ndarray] = []
    tested: list = []
    notes: list[str] = []
    correlation, correlation_cols, ss_feature = [], [], []
    group, group_cols, group_starts, group_sizes, n_groups = [], [], [], [], []
    ranked = ranked_features(
        frame.loc[:, [types.get(name) in CORRELATION_TYPES for name in frame.columns]],
        min_n=min_n,
    )
    for position, name in enumerate(frame.columns):
        kind = types.get(name)
        if kind is None:
            raise InputError(f"null: feature {name!r} has no type")
        if kind in CORRELATION_TYPES:
            outcome = ranked[name]
        else:
            outcome = feature_columns(
                name, frame.iloc[:, position], kind, min_n=min_n, min_group=min_group
            )
        if isinstance(outcome, str):
            notes.append(outcome)
            continue
        used, raw = outcome
        if kind in CORRELATION_TYPES:
            centred = np.zeros(n)
            centred[used] = raw[used, 0] - raw[used, 0].mean()
            correlation.append(len(tested))
            correlation_cols.append(len(columns))
            ss_feature.append(float(centred @ centred))
            columns.append(centred)
        else:
            group.append(len(tested))
            group_starts.append(len(group_cols))
            n_groups.append(raw.shape[1])
            for indicator in raw.T:
                group_cols.append(len(columns))
                group_sizes.append(float(indicator.sum()))
                columns.append(indicator)
        indicators.append(used.astype(np.float64))
        tested.append(name)
    if not tested:
        raise InputError("null: no feature can be tested")
    patterns, pattern = row_patterns(np.column_stack(indicators).T.astype(bool))
    design = RankDesign(
        ranks=np.ascontiguousarray(ranks),
        columns=np.column_stack(columns),
        indicators=np.ascontiguousarray(patterns.T.astype(np.float64)),
        pattern=pattern,
        n_used=np.column_stack(indicators).sum(axis=0),
        correlation=np.asarray(correlation, dtype=np.intp),
        correlation_cols=np.asarray(correlation_cols, dtype=np.intp),
        ss_feature=np.asarray(ss_feature),
        group=np.asarray(group, dtype=np.intp),
        group_cols=np.asarray(group_cols, dtype=np.intp),
        group_starts=np.asarray(group_starts, dtype=np.intp),
        group_sizes=np.asarray(group_sizes),
        n_groups=np.asarray(n_groups),
    )
    return design, tested, list(frame.columns), notes


def map_statistics(
    ranks: np.ndarray, design: RankDesign, *, p_below: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Statistics and asymptotic p-values of the map for a stack of (permuted) rank matrices.

    Parameters
    ----------
    ranks
        ``(permutations, patients, variables)``: the design's ranks with rows reordered.
    design
        From :func:`rank_design`.
    p_below
        Compute p-values only where they are at most this (others are set to 1): the
        statistic's critical value is found once per feature, which spares the costly
        distribution functions for the (null) majority of cells.

    Returns
    -------
    ``statistic`` and ``p``, each ``(permutations, variables, tested features)``.
    """
    n_perm, n_patients, n_variables = ranks.shape
    flat = np.ascontiguousarray(ranks.transpose(0, 2, 1)).reshape(-1, n_patients)
    product = flat @ design.columns
    sums = (flat @ design.indicators)[:, design.pattern]
    sumsq = (np.square(flat) @ design.indicators)[:, design.pattern]
    n_used = design.n_used
    with np.errstate(divide="ignore", invalid="ignore"):
        ss = sumsq - sums**2 / n_used
        ss[ss <= _RELATIVE_TIE * sumsq] = np.nan
        statistic = np.full(sums.shape, np.nan)
        p = np.full(sums.shape, np.nan)
        if len(design.correlation):
            f = design.correlation
            rho = np.clip(
                product[:, design.correlation_cols] / np.sqrt(ss[:, f] * design.ss_feature),
                -1.0,
                1.0,
            )
            df = n_used[f] - 2
            statistic[:, f] = rho
            if p_below is None:
                t = rho * np.sqrt((df / ((1.0 + rho) * (1.0 - rho))).clip(0))
                p[:, f] = 2 * special.stdtr(df, -np.abs(t))
            else:
                t_critical = special.stdtrit(df, 1 - p_below / 2)
                rho_critical = t_critical / np.sqrt(df + t_critical**2)
                p[:, f] = _p_where(
                    np.abs(rho) >= rho_critical * (1 - 1e-9),
                    lambda r, d: (
                        2 * special.stdtr(d, -np.abs(r * np.sqrt(d / ((1 + r) * (1 - r)))))
                    ),
                    rho,
                    np.broadcast_to(df, rho.shape),
                )
        if len(design.group):
            f = design.group
            between = np.add.reduceat(
                product[:, design.group_cols] ** 2 / design.group_sizes, design.group_starts, axis=1
            )
            between -= sums[:, f] ** 2 / n_used[f]
            h = (n_used[f] - 1) * between / ss[:, f]
            statistic[:, f] = h
            dof = np.broadcast_to(design.n_groups - 1.0, h.shape)
            if p_below is None:
                p[:, f] = special.chdtrc(dof, h)
            else:
                h_critical = special.chdtri(design.n_groups - 1.0, p_below)
                p[:, f] = _p_where(
                    h >= h_critical * (1 - 1e-9), lambda x, d: special.chdtrc(d, x), h, dof
                )
    shape = (n_perm, n_variables, sums.shape[1])
    return statistic.reshape(shape), p.reshape(shape)


def _p_where(small: np.ndarray, function, statistic: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """``function(statistic, dof)`` where ``small``, 1 elsewhere (NaN statistics stay NaN)."""
    out = np.where(np.isnan(statistic), np.nan, 1.0)
    out[small] = function(statistic[small], dof[small])
    return out


def _extremeness(statistic: np.ndarray, design: RankDesign) -> np.ndarray:
    """The statistic whose large values are extreme: |rho|, H."""
    out = statistic.copy()
    out[..., design.correlation] = np.abs(out[..., design.correlation])
    return out


def bh_discoveries(p: np.ndarray, alpha: float) -> np.ndarray:
    """Number of Benjamini–Hochberg discoveries at ``alpha`` in each row of ``p``.

    NaN entries count as tests with p = 1 (the cell is part of the family in every row).
    """
    p = np.where(np.isnan(p), 1.0, p)
    n_tests = p.shape[1]
    if n_tests == 0:
        return np.zeros(p.shape[0], dtype=np.int64)
    ordered = np.sort(p, axis=1)
    passes = ordered <= alpha * np.arange(1, n_tests + 1) / n_tests
    last = n_tests - np.argmax(passes[:, ::-1], axis=1)
    return np.where(passes.any(axis=1), last, 0).astype(np.int64)


def bh_discoveries_by_family(p: np.ndarray, family: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini–Hochberg discoveries at ``alpha`` within each family (columns of ``p``
    labelled by ``family``), summed per row."""
    total = np.zeros(p.shape[0], dtype=np.int64)
    for label in np.unique(family):
        total += bh_discoveries(p[:, family == label], alpha)
    return total


def _permutation_block(
    block: tuple[int, int],
    *,
    design: RankDesign,
    observed: np.ndarray,
    tested_cells: np.ndarray,
    cell_family: np.ndarray,
    alpha: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exceedance counts per cell and BH discoveries per permutation for one block."""
    start, stop = block
    n_patients = design.ranks.shape[0]
    orders = np.stack([task_rng(seed, b).permutation(n_patients) for b in range(start, stop)])
    statistic, p = map_statistics(design.ranks[orders], design, p_below=alpha)
    extreme = _extremeness(statistic, design)
    threshold = observed - _RELATIVE_TIE * np.abs(observed)
    exceed = (extreme >= threshold).sum(axis=0)
    discoveries = bh_discoveries_by_family(
        p.reshape(len(orders), -1)[:, tested_cells], cell_family, alpha
    )
    return exceed, discoveries


def permutation_null(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    alpha: float = 0.05,
    seed: int = 0,
    min_n: int = 10,
    min_group: int = 3,
    block_size: int = BLOCK_SIZE,
    scheduler: str | None = None,
    n_workers: int = 2,
    families: Mapping[str, str] | None = None,
    covariates: pd.DataFrame | None = None,
) -> NullResult:
    """Permutation null of the variable x feature map (see the module docstring).

    Parameters
    ----------
    values
        Patients x variables (module eigengenes).
    features
        Patients x imaging features.
    types
        Feature -> continuous / ordinal / binary / categorical.
    n_permutations
        Number of permutations B.
    alpha
        Benjamini–Hochberg threshold of a link.
    seed
        Seed of the permutations; the result depends on nothing else.
    min_n, min_group
        As in :func:`radmap.analysis.associate.associate`.
    block_size
        Permutations per task (one batched product each).
    scheduler, n_workers
        Where to run the blocks, see :func:`radmap.analysis.parallel.run_tasks`; in this
        process the blocks run on ``n_workers`` threads (the result does not change).
    families
        Feature -> multiple-testing family (as the map's ``family`` column): links are
        counted by Benjamini–Hochberg within each family, in the data and in every
        permutation. None: the whole map is one family.
    covariates
        Patients x covariates the map is adjusted for (``--adjust-for``): the null then tests
        the adjusted statistics (partial Spearman, rank ANCOVA F) with the Freedman–Lane
        scheme of :mod:`radmap.analysis.projection`, on the patients with every covariate.

    Returns
    -------
    :class:`NullResult`.
    """
    if n_permutations < 1:
        raise InputError(f"null: n_permutations must be at least 1, got {n_permutations}")
    if not 0 < alpha < 1:
        raise InputError(f"null: alpha must be between 0 and 1, got {alpha}")
    started = time.perf_counter()
    if covariates is not None and covariates.shape[1]:
        from .projection import adjusted_module_null

        result = adjusted_module_null(
            values,
            features,
            types,
            covariates,
            n_permutations=n_permutations,
            alpha=alpha,
            seed=seed,
            min_n=min_n,
            min_group=min_group,
            families=families,
            scheduler=scheduler,
            n_workers=n_workers,
            block_size=block_size,
        )
        logger.info(
            "null (adjusted for %s): %s (%.2f s)",
            ", ".join(map(str, covariates.columns)),
            result.badge(),
            time.perf_counter() - started,
        )
        return result
    design, tested, all_features, notes = rank_design(
        values, features, types, min_n=min_n, min_group=min_group
    )
    statistic, p = map_statistics(design.ranks[None], design)
    statistic, p = statistic[0], p[0]
    observed = _extremeness(statistic, design)
    tested_cells = np.isfinite(p).ravel()
    family_of = [str((families or {}).get(name, "map")) for name in tested]
    cell_family = np.tile(np.asarray(family_of, dtype=object), p.shape[0])[tested_cells]
    observed_links = int(
        bh_discoveries_by_family(p.ravel()[tested_cells][None], cell_family, alpha)[0]
    )
    results = run_tasks(
        _permutation_block,
        blocks(n_permutations, block_size),
        shared={
            "design": design,
            "observed": observed,
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
    p_perm = np.where(np.isfinite(observed), (1 + exceed) / (n_permutations + 1), np.nan)

    variables = values.columns
    full = pd.Index(all_features)

    def frame(array: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(array, index=variables, columns=tested).reindex(columns=full)

    kinds = {
        name: ("spearman" if types[name] in CORRELATION_TYPES else "kruskal") for name in tested
    }
    result = NullResult(
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
    logger.info(
        "null: %d permutations of %d x %d map: %s (%.2f s)",
        n_permutations,
        len(variables),
        len(tested),
        result.badge(),
        time.perf_counter() - started,
    )
    return result


# --------------------------------------------------------------------------------------------
# Recording the nulls in a bundle
# --------------------------------------------------------------------------------------------


def _covariates(adata, step: str) -> pd.DataFrame | None:
    """The clinical columns the map of ``step`` was adjusted for (None: not adjusted)."""
    from . import bundle

    return _adjusted_for(adata.obs, adata.uns[bundle.UNS_KEY].get("params", {}).get(step, {}))


def _adjusted_for(obs: pd.DataFrame, params: Mapping | None) -> pd.DataFrame | None:
    """The clinical columns of ``obs`` named by ``params["adjust_for"]`` (None: none)."""
    names = [str(name) for name in ((params or {}).get("adjust_for") or [])]
    missing = [name for name in names if name not in obs.columns]
    if missing:
        raise InputError(f"null: covariate column {missing[0]!r} is not in the clinical table")
    return obs[names] if names else None


def feature_families(associations) -> dict[str, str] | None:
    """Feature -> multiple-testing family of a map's ``associations`` table (None without a
    ``family`` column): the families each null and resampled map correct within."""
    if not isinstance(associations, pd.DataFrame) or "family" not in associations:
        return None
    return associations.groupby("feature")["family"].first().astype(str).to_dict()


def add_module_null(
    adata,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    alpha: float = 0.05,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int = 2,
) -> NullResult:
    """Run :func:`permutation_null` on a bundle's module map, with the covariates the map was
    adjusted for, and record it: ``perm_p`` / ``perm_q`` columns of ``associations`` and the
    summary (with its ``badge``) in ``uns["radmap"]["null"]``."""
    from . import bundle

    uns = adata.uns[bundle.UNS_KEY]
    table = uns["associations"]
    params = uns.get("params", {}).get("associate", {}) or {}
    families = feature_families(table)
    covariates = _covariates(adata, "associate")
    result = permutation_null(
        adata.obsm[bundle.EIGENGENES_KEY],
        adata.obsm[bundle.IMAGING_KEY],
        uns["features"]["type"].astype(str).to_dict(),
        families=families,
        covariates=covariates,
        n_permutations=n_permutations,
        alpha=alpha,
        seed=seed,
        min_n=int(params.get("min_n", 10)),
        scheduler=scheduler,
        n_workers=n_workers,
    )
    summary = result.summary() | {"badge": result.badge()}
    if covariates is not None:
        summary["adjusted_for"] = ", ".join(map(str, covariates.columns))
    uns["null"] = summary
    key = ["module", "feature"]
    perm = result.tidy()[[*key, "perm_p", "perm_q"]]
    uns["associations"] = table.drop(columns=["perm_p", "perm_q"], errors="ignore").merge(
        perm, on=key, how="left"
    )
    return result


def add_gene_null(
    adata,
    *,
    n_permutations: int,
    alpha: float = 0.05,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int = 2,
    computed: Callable[[], GeneNullResult | None] | None = None,
):
    """Run :func:`radmap.analysis.projection.gene_permutation_null` on a bundle's gene map
    (with the covariates it was adjusted for) and record the summary in
    ``uns["radmap"]["gene_null"]`` and the per-feature counts in
    ``uns["radmap"]["gene_null_features"]``. Returns the result, or None (with a warning)
    when the bundle has no gene map or its expression has missing values.

    ``computed`` is the null prepared by :func:`gene_null_of` with the same options (e.g.
    run on another core meanwhile): its result is recorded instead of running it here."""
    from . import bundle

    if computed is None:
        computed = gene_null_of(
            adata,
            n_permutations=n_permutations,
            alpha=alpha,
            seed=seed,
            scheduler=scheduler,
            n_workers=n_workers,
        )
    result = computed() if computed is not None else None
    if result is None:
        return None
    uns = adata.uns[bundle.UNS_KEY]
    uns["gene_null"] = result.summary()
    uns["gene_null_features"] = result.per_feature
    return result


def gene_null_of(
    adata,
    *,
    n_permutations: int,
    alpha: float = 0.05,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int = 2,
    params: Mapping | None = None,
) -> Callable[[], GeneNullResult | None] | None:
    """The computation of :func:`add_gene_null` as a function of nothing: it holds its
    inputs, taken from ``adata`` now, and writes nothing, so it can run while other stages
    change ``adata``. ``params``: the options of the gene map
    (:func:`radmap.analysis.tl.associate_genes`), by default those recorded in the bundle
    (None when the bundle has no gene map)."""
    from . import bundle
    from .projection import gene_permutation_null

    uns = adata.uns[bundle.UNS_KEY]
    if params is None:
        if bundle.GENE_P not in adata.varm:
            return None
        params = uns.get("params", {}).get("associate_genes", {}) or {}
    values = np.asarray(adata.X, dtype=np.float32)
    frame = pd.DataFrame(values, index=adata.obs_names, columns=adata.var_names)
    imaging, obs = adata.obsm[bundle.IMAGING_KEY], adata.obs
    types = uns["features"]["type"].astype(str).to_dict()
    options = {
        "n_permutations": n_permutations,
        "alpha": alpha,
        "seed": seed,
        "min_n": int(params.get("min_n", 10)),
        "min_group": int(params.get("min_group", 3)),
        "scheduler": scheduler,
        "n_workers": n_workers,
    }

    def compute() -> GeneNullResult | None:
        if np.isnan(values).any():
            logger.warning("gene null skipped: the expression matrix has missing values")
            return None
        covariates = _adjusted_for(obs, params)
        return gene_permutation_null(frame, imaging, types, covariates=covariates, **options)

    return compute


def add_null_or_warn(
    add_null,
    adata,
    *,
    n_permutations: int,
    alpha: float,
    seed: int,
    scheduler: str | None,
    n_workers: int,
    **options,
) -> list[str]:
    """Run one bundle null (:func:`add_module_null`, :func:`add_gene_null`) unless
    ``n_permutations`` is 0; a map it cannot be run on (e.g. fewer patients than the map's
    ``min_n``) gives a warning, returned, instead of failing the analysis. ``options`` go
    to ``add_null``."""
    from .parallel import resolve_scheduler

    if n_permutations <= 0:
        return []
    try:
        add_null(
            adata,
            n_permutations=n_permutations,
            alpha=alpha,
            seed=seed,
            scheduler=resolve_scheduler(scheduler, heavy=False),
            n_workers=n_workers,
            **options,
        )
    except InputError as err:
        return [f"permutation null skipped: {err}"]
    return []
