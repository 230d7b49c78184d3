"""Survival analysis: Kaplan–Meier curves, log-rank tests and Cox models.

Kaplan–Meier curves, the log-rank test and the Cox model are small numpy kernels, checked
against lifelines (``KaplanMeierFitter``, ``multivariate_logrank_test``, ``CoxPHFitter``) in
the tests: :func:`survival_table` runs the tests for every module and imaging feature
(thousands of radiomic features), and the explorer draws new curves on every gene or split
a user chooses, where lifelines' per-call overhead dominated (17 ms per curve against 0.1).
"""

from __future__ import annotations

import logging
import time as timer
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .associate import numeric_block, row_patterns
from .bundle import MUTANT, SURVIVAL_EVENT, SURVIVAL_TIME, WILDTYPE
from .multitest import family_q
from .validate import InputError

logger = logging.getLogger("radmap")

SURVIVAL_COLUMNS = (
    "kind",
    "variable",
    "test",
    "statistic",
    "hr",
    "ci_low",
    "ci_high",
    "effect_measure",
    "p",
    "q",
    "family",
    "n",
    "events",
)
MIN_GROUP = 5
"""Smallest group a log-rank test compares (smaller levels are left out, and said so)."""
KM_COLUMNS = ("group", "time", "survival", "ci_low", "ci_high", "at_risk", "events", "censored")
COX_KEYS = ("hr", "ci_low", "ci_high", "p", "n", "events", "statistic", "reason")
ALL_PATIENTS = "all"
Z_95 = float(stats.norm.ppf(0.975))
"""Normal quantile of two-sided 95 % intervals (survival curves, hazard ratios)."""


def _survival_frame(time, event, **columns) -> pd.DataFrame:
    """Time, event and extra columns side by side (Series align on their index)."""
    frame = pd.DataFrame({"time": time, "event": event, **columns})
    frame["time"] = pd.to_numeric(frame["time"], errors="coerce")
    if pd.api.types.is_bool_dtype(frame["event"]):
        frame["event"] = frame["event"].astype(float)
    frame["event"] = pd.to_numeric(frame["event"], errors="coerce")
    known_time = frame["time"].dropna()
    if (known_time < 0).any():
        raise InputError(
            f"survival time: negative value {known_time.min():g} (patient "
            f"{known_time.idxmin()}); times must be days from baseline, >= 0"
        )
    known_event = frame["event"].dropna()
    if not known_event.isin([0, 1]).all():
        bad = known_event[~known_event.isin([0, 1])]
        raise InputError(
            f"survival event: value {bad.iloc[0]:g} (patient {bad.index[0]}) is not 0/1; "
            "code events as 1 = event (death), 0 = censored"
        )
    return frame


def _group_order(groups: pd.Series) -> list:
    if isinstance(groups.dtype, pd.CategoricalDtype):
        present = set(groups.dropna().unique())
        return [level for level in groups.cat.categories if level in present]
    return sorted(groups.dropna().unique(), key=str)


def kaplan_meier(time, event, groups=None) -> pd.DataFrame:
    """Kaplan–Meier survival curves per group, as a tidy step table.

    Parameters
    ----------
    time
        Follow-up time (days) per patient.
    event
        1 = event observed, 0 = censored.
    groups
        Group label per patient; ``None`` gives one curve labelled ``"all"``.
        Rows with a missing time, event or group are dropped.

    Returns
    -------
    Columns ``group``, ``time``, ``survival``, ``ci_low``, ``ci_high`` (95 %, exponential
    Greenwood), ``at_risk`` (patients at risk just before ``time``), ``events``,
    ``censored``. One row per distinct time of each group, starting at time 0.
    """
    if groups is None:
        groups = ALL_PATIENTS
    frame = _survival_frame(time, event, group=groups).dropna()
    group_values = frame["group"]
    if isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype):
        group_values = group_values.astype(groups.dtype)
    curves = []
    for group in _group_order(group_values):
        subset = frame[group_values == group]
        curve = _product_limit(subset["time"].to_numpy(float), subset["event"].to_numpy(float))
        curves.append(pd.DataFrame({"group": group, **curve}))
    if not curves:
        return pd.DataFrame({column: pd.Series(dtype=float) for column in KM_COLUMNS})
    return pd.concat(curves, ignore_index=True)[list(KM_COLUMNS)]


def _product_limit(time: np.ndarray, event: np.ndarray) -> dict[str, np.ndarray]:
    """Kaplan–Meier step table of one group, with exponential Greenwood 95 % bounds.

    One row per distinct time (censoring times included) and time 0, as lifelines'
    ``KaplanMeierFitter`` tabulates it; bounds are 1 where the estimate is 1.
    """
    times = np.union1d(0.0, time)
    row = np.searchsorted(times, time)
    removed = np.bincount(row, minlength=len(times))
    events = np.bincount(row, weights=event, minlength=len(times)).astype(int)
    at_risk = len(time) - np.concatenate([[0], np.cumsum(removed)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - events / at_risk)
        greenwood = np.cumsum(
            np.where(at_risk > events, events / (at_risk * (at_risk - events)), 0.0)
        )
        log_survival = np.log(survival)
        spread = Z_95 * np.sqrt(greenwood) / log_survival
        low = np.exp(-np.exp(np.log(-log_survival) - spread))
        high = np.exp(-np.exp(np.log(-log_survival) + spread))
    return {
        "time": times,
        "survival": survival,
        "ci_low": np.where(np.isnan(low), 1.0, low),
        "ci_high": np.where(np.isnan(high), 1.0, high),
        "at_risk": at_risk,
        "events": events,
        "censored": removed - events,
    }


def _logrank_kernel(time: np.ndarray, event: np.ndarray, codes: np.ndarray) -> tuple[float, float]:
    """K-group log-rank chi-square; rows with a code < 0 or a NaN time/event are left out."""
    complete = (codes >= 0) & np.isfinite(time) & np.isfinite(event)
    time, event = time[complete], event[complete]
    _, codes = np.unique(codes[complete], return_inverse=True)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    event_times = np.unique(time[event == 1])
    if n_groups < 2 or len(event_times) == 0:
        return np.nan, np.nan
    at_risk = np.empty((n_groups, len(event_times)))
    deaths = np.empty((n_groups, len(event_times)))
    for group in range(n_groups):
        in_group = codes == group
        sorted_times = np.sort(time[in_group])
        at_risk[group] = len(sorted_times) - np.searchsorted(sorted_times, event_times, "left")
        death_times = time[in_group & (event == 1)]
        deaths[group] = np.bincount(
            np.searchsorted(event_times, death_times), minlength=len(event_times)
        )
    total_at_risk = at_risk.sum(axis=0)
    total_deaths = deaths.sum(axis=0)
    share = at_risk / total_at_risk
    observed_minus_expected = (deaths - share * total_deaths).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tie_factor = np.where(
            total_at_risk > 1,
            total_deaths * (total_at_risk - total_deaths) / (total_at_risk - 1),
            0.0,
        )
    covariance = np.diag((tie_factor * share).sum(axis=1)) - (tie_factor * share) @ share.T
    reduced = observed_minus_expected[:-1]
    statistic = float(reduced @ np.linalg.pinv(covariance[:-1, :-1]) @ reduced)
    return statistic, float(stats.chi2.sf(statistic, n_groups - 1))


def _group_codes(groups: pd.Series) -> np.ndarray:
    """Integer code per patient (-1 = missing), in the groups' category or sorted order."""
    if isinstance(groups.dtype, pd.CategoricalDtype):
        return groups.cat.codes.to_numpy()
    codes, _ = pd.factorize(groups, sort=True)
    return codes


def logrank(time, event, groups) -> tuple[float, float]:
    """Log-rank test of equal survival across two or more groups.

    Parameters
    ----------
    time
        Follow-up time per patient.
    event
        1 = event observed, 0 = censored.
    groups
        Group label per patient; rows with a missing time, event or group are dropped.

    Returns
    -------
    The chi-square statistic (K - 1 degrees of freedom for K groups present) and its
    p-value; both NaN when fewer than two groups or no event remain.
    """
    frame = _survival_frame(time, event, group=groups)
    return _logrank_kernel(
        frame["time"].to_numpy(float), frame["event"].to_numpy(float), _group_codes(frame["group"])
    )


class _CoxFailure(Exception):
    """The Cox model has no finite maximum-likelihood estimate for these data."""


SINGULAR = "singular information matrix (collinear variables)"
SEPARATED = "no finite estimate (the variable separates events completely)"
MAX_COEFFICIENT = 25
"""A standardised coefficient beyond this means no finite estimate (separation)."""


def _efron_terms(
    beta: np.ndarray, design: np.ndarray, layout: dict
) -> tuple[float, np.ndarray, np.ndarray]:
    """Efron partial log-likelihood, its gradient and the observed information.

    ``design`` rows are sorted by time; ``layout`` describes the distinct event times.
    """
    eta = design @ beta
    eta -= eta.max()
    risk = np.exp(eta)
    weighted = risk[:, None] * design
    outer = weighted[:, :, None] * design[:, None, :]
    start, deaths, first = layout["risk_start"], layout["deaths"], layout["first_death"]
    at_risk0 = np.cumsum(risk[::-1])[::-1][start]
    at_risk1 = np.cumsum(weighted[::-1], axis=0)[::-1][start]
    at_risk2 = np.cumsum(outer[::-1], axis=0)[::-1][start]
    tied0 = np.add.reduceat(risk[deaths], first)
    tied1 = np.add.reduceat(weighted[deaths], first, axis=0)
    tied2 = np.add.reduceat(outer[deaths], first, axis=0)
    time_of, fraction = layout["time_of_term"], layout["fraction"]
    s0 = at_risk0[time_of] - fraction * tied0[time_of]
    s1 = at_risk1[time_of] - fraction[:, None] * tied1[time_of]
    s2 = at_risk2[time_of] - fraction[:, None, None] * tied2[time_of]
    mean = s1 / s0[:, None]
    log_likelihood = eta[deaths].sum() - np.log(s0).sum()
    gradient = design[deaths].sum(axis=0) - mean.sum(axis=0)
    information = (s2 / s0[:, None, None]).sum(axis=0) - mean.T @ mean
    return float(log_likelihood), gradient, information


def _cox_efron(
    time: np.ndarray, event: np.ndarray, design: np.ndarray, *, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Cox proportional-hazards fit (Efron ties) by Newton–Raphson with step halving.

    Columns of ``design`` should be centred and scaled. Returns the coefficients and their
    standard errors; raises :class:`_CoxFailure` without a finite estimate.
    """
    order, layout = _cox_layout(time, event)
    design = design[order]
    beta = np.zeros(design.shape[1])
    log_likelihood, gradient, information = _efron_terms(beta, design, layout)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(information, gradient)
        except np.linalg.LinAlgError as error:
            raise _CoxFailure(SINGULAR) from error
        for _ in range(30):
            candidate = beta + step
            terms = _efron_terms(candidate, design, layout)
            if terms[0] >= log_likelihood - 1e-12:
                break
            step = step / 2
        beta = candidate
        converged = abs(terms[0] - log_likelihood) < 1e-10 and np.abs(step).max() < 1e-7
        log_likelihood, gradient, information = terms
        if np.abs(beta).max() > MAX_COEFFICIENT:
            raise _CoxFailure(SEPARATED)
        if converged:
            break
    else:
        raise _CoxFailure(f"no convergence in {max_iter} Newton steps")
    try:
        variance = np.diag(np.linalg.inv(information))
    except np.linalg.LinAlgError as error:
        raise _CoxFailure(SINGULAR) from error
    if not np.all(np.isfinite(variance)) or np.any(variance <= 0):
        raise _CoxFailure(SINGULAR)
    return beta, np.sqrt(variance)


def _cox_layout(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, dict]:
    """The order that sorts the patients by time, and the distinct event times of the
    sorted patients as :func:`_efron_terms` reads them."""
    order = np.argsort(time, kind="stable")
    time, event = time[order], event[order]
    deaths = np.flatnonzero(event == 1)
    death_times, tie_counts = np.unique(time[deaths], return_counts=True)
    first_death = np.cumsum(tie_counts) - tie_counts
    time_of_term = np.repeat(np.arange(len(death_times)), tie_counts)
    return order, {
        "risk_start": np.searchsorted(time, death_times, side="left"),
        "deaths": deaths,
        "first_death": first_death,
        "time_of_term": time_of_term,
        "fraction": (np.arange(len(deaths)) - first_death[time_of_term]) / tie_counts[time_of_term],
    }


def _efron_columns(
    beta: np.ndarray, x: np.ndarray, layout: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_efron_terms` of one-variable models, one per column of ``x`` (sorted by
    time) with its coefficient in ``beta``: log-likelihoods, gradients, informations."""
    eta = x * beta
    eta -= eta.max(axis=0)
    risk = np.exp(eta)
    weighted = risk * x
    outer = weighted * x
    start, deaths, first = layout["risk_start"], layout["deaths"], layout["first_death"]
    time_of, fraction = layout["time_of_term"], layout["fraction"][:, None]
    sums = []
    for term in (risk, weighted, outer):
        at_risk = np.cumsum(term[::-1], axis=0)[::-1][start]
        tied = np.add.reduceat(term[deaths], first, axis=0)
        sums.append(at_risk[time_of] - fraction * tied[time_of])
    s0, s1, s2 = sums
    mean = s1 / s0
    log_likelihood = eta[deaths].sum(axis=0) - np.log(s0).sum(axis=0)
    gradient = x[deaths].sum(axis=0) - mean.sum(axis=0)
    information = (s2 / s0).sum(axis=0) - (mean * mean).sum(axis=0)
    return log_likelihood, gradient, information


def _cox_efron_columns(
    time: np.ndarray, event: np.ndarray, x: np.ndarray, *, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`_cox_efron` of one-variable models, one per (centred, scaled) column of
    ``x``, all fitted together: the same Newton–Raphson steps with step halving, column by
    column. Returns the coefficients, their standard errors and, per column, why there is
    no estimate (``""`` when there is one)."""
    order, layout = _cox_layout(time, event)
    x = x[order]
    n_columns = x.shape[1]
    beta = np.zeros(n_columns)
    reasons = [""] * n_columns
    log_likelihood, gradient, information = _efron_columns(beta, x, layout)
    active = np.ones(n_columns, dtype=bool)

    def fail(columns: np.ndarray, reason: str) -> None:
        for column in columns:
            reasons[column] = reason
        active[columns] = False

    for _ in range(max_iter):
        fail(np.flatnonzero(active & (information == 0)), SINGULAR)
        columns = np.flatnonzero(active)
        if not len(columns):
            break
        step = gradient[columns] / information[columns]
        candidate = beta[columns] + step
        terms = _efron_columns(candidate, x[:, columns], layout)
        for halving in range(1, 31):
            worse = np.flatnonzero(~(terms[0] >= log_likelihood[columns] - 1e-12))
            if not len(worse):
                break
            step[worse] /= 2
            if halving == 30:  # as _cox_efron: the last candidate is kept
                break
            candidate[worse] = beta[columns[worse]] + step[worse]
            retried = _efron_columns(candidate[worse], x[:, columns[worse]], layout)
            for term, new in zip(terms, retried):
                term[worse] = new
        converged = (np.abs(terms[0] - log_likelihood[columns]) < 1e-10) & (np.abs(step) < 1e-7)
        beta[columns] = candidate
        log_likelihood[columns], gradient[columns], information[columns] = terms
        separated = np.abs(candidate) > MAX_COEFFICIENT
        fail(columns[separated], SEPARATED)
        active[columns[converged & ~separated]] = False
    fail(np.flatnonzero(active), f"no convergence in {max_iter} Newton steps")
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = 1 / information
    bad = ~(np.isfinite(variance) & (variance > 0))
    fail(np.flatnonzero(bad & np.array([not reason for reason in reasons])), SINGULAR)
    return beta, np.sqrt(np.where(bad, np.nan, variance)), reasons


def _failed_cox(n: int, events: int, reason: str) -> dict:
    return {
        "hr": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p": np.nan,
        "n": n,
        "events": events,
        "statistic": np.nan,
        "reason": reason,
    }


def _encode_variable(variable: pd.Series) -> np.ndarray:
    """Numeric values of a Cox variable; two categories become 0/1 (second level = 1)."""
    if pd.api.types.is_numeric_dtype(variable) and not pd.api.types.is_bool_dtype(variable):
        return pd.to_numeric(variable, errors="coerce").to_numpy(dtype=float)
    levels = _group_order(variable.astype(object) if variable.dtype == bool else variable)
    if len(levels) > 2:
        raise InputError(
            f"Cox variable {variable.name!r}: {len(levels)} categories; give a numeric "
            "or two-level variable (compare several categories with logrank)"
        )
    codes = variable.map({level: float(code) for code, level in enumerate(levels)})
    return codes.where(variable.notna()).to_numpy(dtype=float)


def _encode_covariates(covariates: pd.DataFrame | None, index: pd.Index) -> np.ndarray:
    """Covariates as numbers (non-numeric one-hot, first level dropped); NaN rows if missing."""
    if covariates is None or covariates.shape[1] == 0:
        return np.empty((len(index), 0))
    covariates = covariates.reindex(index)
    encoded = pd.get_dummies(covariates, drop_first=True, dummy_na=False, dtype=float)
    matrix = encoded.to_numpy(dtype=float)
    matrix[covariates.isna().any(axis=1).to_numpy()] = np.nan
    return matrix


NO_VARIATION = "the variable does not vary among the patients used"


def _value_runs(sorted_block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of a block sorted along its rows: how many distinct values it has, and
    how many rows differ from its most common value (the rows outside its longest run of
    equal values)."""
    n, width = sorted_block.shape
    if not n:
        return np.zeros(width, dtype=int), np.zeros(width, dtype=int)
    rows = np.arange(n)[:, None]
    starts = np.vstack([np.ones((1, width), dtype=bool), np.diff(sorted_block, axis=0) != 0])
    run_start = np.maximum.accumulate(np.where(starts, rows, 0), axis=0)
    return starts.sum(axis=0), n - (rows - run_start + 1).max(axis=0)


def _few_differ_reason(differing: int, n: int, min_group: int) -> str:
    return (
        f"only {differing} of {n} patients differ from the variable's most common value "
        f"(< {min_group}): no hazard ratio rests on so few"
    )


def _cox_arrays(
    time: np.ndarray,
    event: np.ndarray,
    values: np.ndarray,
    covariates: np.ndarray,
    min_events: int,
    *,
    per_unit: bool = False,
    min_group: int = 1,
) -> dict:
    """Cox fit on aligned arrays: complete cases, variable per SD unless it is two-valued
    or ``per_unit`` (then per unit of the variable, e.g. per step of an ordinal scale); not
    fitted when fewer than ``min_group`` patients differ from the variable's most common
    value."""
    complete = (
        np.isfinite(time)
        & np.isfinite(event)
        & np.isfinite(values)
        & np.isfinite(covariates).all(axis=1)
    )
    n, events = int(complete.sum()), int(event[complete].sum())
    if events < min_events:
        return _failed_cox(n, events, f"{events} events among {n} patients (< {min_events})")
    runs = _value_runs(np.sort(values[complete])[:, None])
    distinct, differing = int(runs[0][0]), int(runs[1][0])
    if not differing:  # not the SD: the SD of equal floats can come out as 1e-17
        return _failed_cox(n, events, NO_VARIATION)
    if differing < min_group:
        return _failed_cox(n, events, _few_differ_reason(differing, n, min_group))
    design = np.column_stack([values[complete], covariates[complete]])
    spread = design.std(axis=0, ddof=1)
    design, spread = design[:, spread > 0], spread[spread > 0]
    standardised = (design - design.mean(axis=0)) / spread
    try:
        beta, standard_error = _cox_efron(time[complete], event[complete], standardised)
    except _CoxFailure as failure:
        return _failed_cox(n, events, f"Cox model failed: {failure}")
    scale = 1.0 if distinct > 2 and not per_unit else spread[0]
    coefficient, error = beta[0] / scale, standard_error[0] / scale
    margin = Z_95 * error
    z = coefficient / error
    return {
        "hr": float(np.exp(coefficient)),
        "ci_low": float(np.exp(coefficient - margin)),
        "ci_high": float(np.exp(coefficient + margin)),
        "p": float(2 * stats.norm.sf(abs(z))),
        "n": n,
        "events": events,
        "statistic": float(z),
        "reason": "",
    }


def _cox_columns(
    time: np.ndarray, event: np.ndarray, values: np.ndarray, min_events: int, min_group: int = 1
) -> list[dict]:
    """:func:`_cox_arrays` without covariates for each column of ``values`` (patients x
    variables): the columns with the same complete patients are fitted together."""
    known = np.isfinite(time) & np.isfinite(event)
    complete = known[:, None] & np.isfinite(values)
    results: list[dict] = [{}] * values.shape[1]
    if not values.shape[1]:
        return results
    patterns, pattern_of = row_patterns(complete.T)
    for pattern, rows in enumerate(patterns):
        columns = np.flatnonzero(pattern_of == pattern)
        n, events = int(rows.sum()), int(event[rows].sum())
        if events < min_events:
            reason = f"{events} events among {n} patients (< {min_events})"
            for column in columns:
                results[column] = _failed_cox(n, events, reason)
            continue
        block = values[rows][:, columns]
        spread = block.std(axis=0, ddof=1) if n > 1 else np.full(len(columns), np.nan)
        distinct, differing = _value_runs(np.sort(block, axis=0))
        varies = differing > 0
        for column in columns[~varies]:
            results[column] = _failed_cox(n, events, NO_VARIATION)
        few = varies & (differing < min_group)
        for column, count in zip(columns[few], differing[few], strict=True):
            results[column] = _failed_cox(n, events, _few_differ_reason(int(count), n, min_group))
        fit = varies & ~few
        columns, block, spread, distinct = columns[fit], block[:, fit], spread[fit], distinct[fit]
        if not len(columns):
            continue
        standardised = (block - block.mean(axis=0)) / spread
        beta, standard_error, reasons = _cox_efron_columns(time[rows], event[rows], standardised)
        scale = np.where(distinct > 2, 1.0, spread)
        coefficient, error = beta / scale, standard_error / scale
        z = coefficient / error
        p = 2 * stats.norm.sf(np.abs(z))
        for k, column in enumerate(columns):
            if reasons[k]:
                results[column] = _failed_cox(n, events, f"Cox model failed: {reasons[k]}")
                continue
            margin = Z_95 * error[k]
            results[column] = {
                "hr": float(np.exp(coefficient[k])),
                "ci_low": float(np.exp(coefficient[k] - margin)),
                "ci_high": float(np.exp(coefficient[k] + margin)),
                "p": float(p[k]),
                "n": n,
                "events": events,
                "statistic": float(z[k]),
                "reason": "",
            }
    return results


def _median_logrank_columns(
    time: np.ndarray, event: np.ndarray, values: np.ndarray, min_group: int
) -> list[tuple[float, float, int, int] | None]:
    """Log-rank test of the median split (:func:`_median_codes`) of each column of
    ``values``: (statistic, p, n, events), or None where a half has fewer than
    ``min_group`` patients with survival data (left to :func:`_logrank_kernel` and its
    note). Columns with the same patients are tested together, two groups at a time."""
    known = np.isfinite(time) & np.isfinite(event)
    finite = np.isfinite(values)
    results: list = [None] * values.shape[1]
    if not values.shape[1]:
        return results
    patterns, pattern_of = row_patterns(finite.T)
    for pattern, present in enumerate(patterns):
        columns = np.flatnonzero(pattern_of == pattern)
        block = values[present][:, columns]
        high = block > np.median(block, axis=0) if len(block) else block.astype(bool)
        rows = known[present]
        high, used_time, used_event = high[rows], time[present][rows], event[present][rows]
        n, events = int(rows.sum()), int(used_event.sum())
        n_high = high.sum(axis=0)
        n_low = n - n_high
        small = ((n_high > 0) & (n_high < min_group)) | ((n_low > 0) & (n_low < min_group))
        statistic = np.full(len(columns), np.nan)
        two_groups = ~small & (n_high > 0) & (n_low > 0)
        if events and two_groups.any():
            statistic[two_groups] = _two_group_logrank(used_time, used_event, high[:, two_groups])
        p = stats.chi2.sf(statistic, 1)
        for k, column in enumerate(columns):
            if not small[k]:
                results[column] = (float(statistic[k]), float(p[k]), n, events)
    return results


def _two_group_logrank(time: np.ndarray, event: np.ndarray, second: np.ndarray) -> np.ndarray:
    """:func:`_logrank_kernel`'s chi-square for two groups, one split per column of the
    boolean ``second`` (patients x splits; every patient has a time and an event)."""
    order = np.argsort(time, kind="stable")
    time, event, second = time[order], event[order], second[order].astype(float)
    event_times = np.unique(time[event == 1])
    start = np.searchsorted(time, event_times, side="left")
    at_risk = (len(time) - start).astype(float)
    at_risk_second = np.cumsum(second[::-1], axis=0)[::-1][start]
    death_slot = np.searchsorted(event_times, time[event == 1])
    deaths = np.bincount(death_slot, minlength=len(event_times)).astype(float)
    deaths_second = np.zeros((len(event_times), second.shape[1]))
    np.add.at(deaths_second, death_slot, second[event == 1])
    share = at_risk_second / at_risk[:, None]
    observed_minus_expected = (deaths_second - share * deaths[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tie_factor = np.where(at_risk > 1, deaths * (at_risk - deaths) / (at_risk - 1), 0.0)
    variance = (tie_factor[:, None] * share * (1 - share)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance != 0, observed_minus_expected**2 / variance, 0.0)


def cox(
    time,
    event,
    variable: pd.Series,
    *,
    covariates: pd.DataFrame | None = None,
    min_events: int = 5,
    min_group: int = 1,
) -> dict:
    """Cox proportional-hazards model for one variable, optionally adjusted for covariates.

    A numeric variable with more than two distinct values is standardised (mean 0, SD 1
    over the patients used) so that the hazard ratio is per 1 SD; a two-valued variable is
    coded 0/1 (higher value, or second category, = 1) and its hazard ratio compares the two.
    Non-numeric covariates are one-hot encoded (first level dropped). Complete cases only.
    Ties are handled by Efron's method, as in lifelines' ``CoxPHFitter``, whose estimates
    this numpy Newton–Raphson fit reproduces at a fraction of the cost.

    Parameters
    ----------
    time
        Follow-up time per patient.
    event
        1 = event observed, 0 = censored.
    variable
        The variable of interest (named Series; aligned with ``time`` and ``event``).
    covariates
        Patients x adjustment variables (e.g. age, stage), aligned on the index.
    min_events
        Fewer events than this among the complete cases gives NaN results.
    min_group
        Fewer patients than this differing from the variable's most common value gives NaN
        results (:func:`survival_table` uses :data:`MIN_GROUP`).

    Returns
    -------
    Keys ``hr``, ``ci_low``, ``ci_high`` (95 %), ``p`` (Wald), ``n``, ``events``,
    ``statistic`` (Wald z) for the variable, and ``reason``: ``""`` on success, otherwise
    why the numbers are NaN (too few events, no variation, no convergence).
    """
    variable = pd.Series(variable)
    frame = _survival_frame(time, event, variable=variable)
    values = _encode_variable(frame["variable"].rename(variable.name))
    return _cox_arrays(
        frame["time"].to_numpy(dtype=float),
        frame["event"].to_numpy(dtype=float),
        values,
        _encode_covariates(covariates, frame.index),
        min_events,
        min_group=min_group,
    )


def median_split(values: pd.Series) -> pd.Series:
    """Split a numeric variable at its median: ``"high"`` above it, ``"low"`` otherwise.

    Parameters
    ----------
    values
        Numeric values; missing values stay missing.

    Returns
    -------
    Ordered categorical Series (``low`` < ``high``) with the index of ``values``.
    """
    numeric = pd.to_numeric(values, errors="coerce")
    labels = np.where(numeric > numeric.median(), "high", "low")
    return pd.Series(
        pd.Categorical(labels, categories=["low", "high"], ordered=True),
        index=values.index,
        name=values.name,
    ).where(numeric.notna())


SPLITS = ("median", "tertiles", "quartiles", "cut")
"""How a continuous variable is split into groups for Kaplan–Meier curves."""
_QUANTILE_LABELS = {
    "tertiles": ("low", "middle", "high"),
    "quartiles": ("Q1 (lowest)", "Q2", "Q3", "Q4 (highest)"),
}


def split_groups(
    values: pd.Series, split: str = "median", *, cut: float | None = None
) -> pd.Series:
    """Group a numeric variable for survival curves: median, tertiles, quartiles or a cut.

    Parameters
    ----------
    values
        Numeric values; missing values stay missing.
    split
        ``"median"`` (as :func:`median_split`: ``high`` above the median), ``"tertiles"``
        (``low`` / ``middle`` / ``high``), ``"quartiles"`` (``Q1 (lowest)`` ... ``Q4
        (highest)``), each group closed on the right (a value equal to a quantile goes to the
        lower group), or ``"cut"``: ``≤ cut`` against ``> cut``.
    cut
        The threshold of ``split="cut"``.

    Returns
    -------
    Ordered categorical Series with the index of ``values``. Tied values never straddle a
    boundary, so with many ties a quantile group can be empty (it is then dropped from the
    categories).

    Raises
    ------
    InputError
        Unknown ``split``, or ``"cut"`` without a finite ``cut``.
    """
    if split == "median":
        return median_split(values)
    numeric = pd.to_numeric(values, errors="coerce")
    if split == "cut":
        if cut is None or not np.isfinite(cut):
            raise InputError("a survival split at a cut needs a finite cut value")
        labels = [f"≤ {cut:g}", f"> {cut:g}"]
        grouped = np.where(numeric > cut, labels[1], labels[0])
        return pd.Series(
            pd.Categorical(grouped, categories=labels, ordered=True),
            index=values.index,
            name=values.name,
        ).where(numeric.notna())
    if split not in _QUANTILE_LABELS:
        raise InputError(f"unknown survival split {split!r}; choose one of {', '.join(SPLITS)}")
    labels = _QUANTILE_LABELS[split]
    edges = np.nanquantile(numeric.to_numpy(float), np.linspace(0, 1, len(labels) + 1))
    codes = np.searchsorted(edges[1:-1], numeric.to_numpy(float), side="left")
    grouped = pd.Categorical.from_codes(
        np.where(numeric.notna(), codes, -1), categories=list(labels), ordered=True
    )
    return pd.Series(grouped, index=values.index, name=values.name).cat.remove_unused_categories()


def _median_codes(values: np.ndarray) -> np.ndarray:
    """0 = low, 1 = high, -1 = missing (as :func:`median_split`)."""
    finite = np.isfinite(values)
    codes = np.full(len(values), -1)
    if finite.any():
        codes[finite] = (values[finite] > np.median(values[finite])).astype(int)
    return codes


def _empty_survival_table() -> pd.DataFrame:
    dtypes = {
        "kind": object,
        "variable": object,
        "test": object,
        "effect_measure": object,
        "family": object,
        "n": "int64",
        "events": "int64",
    }
    return pd.DataFrame(
        {column: pd.Series(dtype=dtypes.get(column, float)) for column in SURVIVAL_COLUMNS}
    )


def _min_group_codes(
    codes: np.ndarray, known: np.ndarray, min_group: int
) -> tuple[np.ndarray, list]:
    """Codes with the levels of fewer than ``min_group`` patients (with survival data) set to
    -1, and the left-out (code, size) pairs."""
    sizes = np.bincount(codes[known & (codes >= 0)], minlength=max(int(codes.max()) + 1, 0))
    small = [(code, int(size)) for code, size in enumerate(sizes) if 0 < size < min_group]
    if small:
        codes = np.where(np.isin(codes, [code for code, _ in small]), -1, codes)
    return codes, small


def survival_table(
    obs: pd.DataFrame,
    *,
    eigengenes: pd.DataFrame,
    imaging: pd.DataFrame,
    features: pd.DataFrame,
    mutations: Sequence[str] = (),
    covariates: Sequence[str] = (),
    min_events: int = 5,
    min_group: int = MIN_GROUP,
) -> tuple[pd.DataFrame, list[str]]:
    """Survival associations of every module, imaging feature and mutation.

    - Module eigengenes: Cox model per 1 SD (adjusted for ``covariates``) and log-rank
      between the halves of a median split.
    - Imaging features: continuous ones as the eigengenes; ordinal ones by a Cox trend test
      (hazard ratio per step of the scale, ``cox_trend``); binary and categorical ones by
      log-rank across their categories, levels with fewer than ``min_group`` patients left
      out (a warning names them).
    - Mutations: log-rank of Mutant against Wildtype (other values count as missing).

    Each test uses the patients with complete data (reported as ``n`` and ``events``); a
    test with fewer than ``min_events`` events, or that cannot be fitted, has NaN
    statistics. q is Benjamini–Hochberg within each family (``family``: the kind of
    variable, the imaging source for features, and the test), so that 1,400 radiomic
    features do not dilute 30 semantic ones. ``effect_measure`` names what ``hr`` is
    (``hr_per_sd``, ``hr_per_level``, ``hr`` for two levels; empty for log-rank, which has
    no effect size). The continuous variables with the same patients are fitted together:
    about 0.5 s for 96 patients x 1,476 features.

    Parameters
    ----------
    obs
        Patients x clinical columns, including ``survival_time`` and ``survival_event``.
    eigengenes
        Patients x modules (aligned to ``obs`` by index).
    imaging
        Patients x imaging features (aligned to ``obs`` by index).
    features
        The bundle's feature table (index = feature ID, columns ``type`` and optionally
        ``source``); features missing from it are typed from their dtype.
    mutations
        Columns of ``obs`` holding mutation status.
    covariates
        Columns of ``obs`` to adjust the Cox models for.
    min_events
        Minimum events for a test (overall and per test).
    min_group
        Smallest level a log-rank test keeps, and the fewest patients that must differ
        from a Cox-fitted variable's most common value (a radiomic feature constant but
        for one patient gave hazard ratios such as 1e-15, or none, as Newton's method
        happened to go); such a variable gets NaN and a reason in the warnings.

    Returns
    -------
    The table (columns ``kind``, ``variable``, ``test``, ``statistic``, ``hr``,
    ``ci_low``, ``ci_high``, ``effect_measure``, ``p``, ``q``, ``family``, ``n``,
    ``events``) and the warnings raised.
    """
    start = timer.perf_counter()
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        logger.warning(message)

    missing_columns = [c for c in (SURVIVAL_TIME, SURVIVAL_EVENT) if c not in obs.columns]
    if missing_columns:
        warn(f"survival analysis skipped: no {' / '.join(missing_columns)} column in clinical data")
        return _empty_survival_table(), warnings
    for column in covariates:
        if column not in obs.columns:
            raise InputError(
                f"survival covariate {column!r} is not a clinical column; "
                f"choose from: {', '.join(map(str, obs.columns))}"
            )
    frame = _survival_frame(obs[SURVIVAL_TIME], obs[SURVIVAL_EVENT])
    time = frame["time"].to_numpy(dtype=float)
    event = frame["event"].to_numpy(dtype=float)
    known = np.isfinite(time) & np.isfinite(event)
    total_events = int(event[known].sum())
    if total_events < min_events:
        warn(
            f"survival analysis skipped: {total_events} events among {int(known.sum())} "
            f"patients with survival data (at least {min_events} needed)"
        )
        return _empty_survival_table(), warnings

    adjust = _encode_covariates(obs[list(covariates)], obs.index) if covariates else None
    if adjust is None:
        adjust = np.empty((len(obs), 0))
    feature_types = features["type"] if "type" in features.columns else pd.Series(dtype=object)
    feature_sources = (
        features["source"] if "source" in features.columns else pd.Series(dtype=object)
    )
    rows: list[dict] = []
    failed: list[str] = []
    left_out: list[str] = []

    def logrank_row(kind: str, name: str, codes: np.ndarray, family: str, levels=None) -> None:
        codes, small = _min_group_codes(codes, known, min_group)
        if small:
            names = [str(levels[c]) if levels is not None else str(c) for c, _ in small]
            left_out.append(
                f"{name} ({', '.join(f'{n}: {size}' for n, (_, size) in zip(names, small))})"
            )
        statistic, p = _logrank_kernel(time, event, codes)
        used = known & (codes >= 0)
        add_logrank_row(kind, name, family, (statistic, p, int(used.sum()), int(event[used].sum())))

    def add_logrank_row(kind: str, name: str, family: str, tested: tuple) -> None:
        statistic, p, n, events = tested
        rows.append(
            {
                "kind": kind,
                "variable": name,
                "test": "logrank",
                "statistic": statistic,
                "effect_measure": "",
                "p": p,
                "family": f"{family} (logrank)",
                "n": n,
                "events": events,
            }
        )

    def cox_row(
        kind: str,
        name: str,
        numbers: np.ndarray,
        family: str,
        test: str,
        result: dict | None = None,
        **options,
    ):
        if result is None:
            result = _cox_arrays(
                time, event, numbers, adjust, min_events, min_group=min_group, **options
            )
        if result["reason"]:
            failed.append(f"{name} ({result['reason']})")
        two_valued = len(np.unique(numbers[np.isfinite(numbers)])) <= 2
        measure = "hr" if two_valued else ("hr_per_level" if options else "hr_per_sd")
        rows.append(
            {"kind": kind, "variable": name, "test": test, "effect_measure": measure}
            | {"family": f"{family} ({test})"}
            | {key: result[key] for key in COX_KEYS if key != "reason"}
        )

    kinds = {}
    for feature in imaging.columns:
        feature_type = feature_types.get(feature)
        if feature_type is None:
            values = imaging[feature]
            numeric = pd.api.types.is_numeric_dtype(values) and values.nunique() > 2
            feature_type = "continuous" if numeric else "categorical"
        kinds[feature] = feature_type
    # The continuous variables (modules, continuous features): Cox per SD and the log-rank
    # of the median split, tested together where they have the same patients.
    continuous = [
        *(("module", str(module), "module") for module in eigengenes.columns),
        *(
            ("feature", str(feature), f"{feature_sources.get(feature, '') or 'imaging'} feature")
            for feature, kind in kinds.items()
            if kind == "continuous"
        ),
    ]
    numbers = np.hstack(
        [
            numeric_block(eigengenes.reindex(obs.index)),
            numeric_block(
                imaging[[f for f, kind in kinds.items() if kind == "continuous"]].reindex(obs.index)
            ),
        ]
    )
    if adjust.shape[1]:
        fitted = [
            _cox_arrays(time, event, column, adjust, min_events, min_group=min_group)
            for column in numbers.T
        ]
    else:
        fitted = _cox_columns(time, event, numbers, min_events, min_group)
    split = _median_logrank_columns(time, event, numbers, min_group)

    def continuous_rows(k: int) -> None:
        kind, name, family = continuous[k]
        cox_row(kind, name, numbers[:, k], family, "cox", result=fitted[k])
        if split[k] is None:  # a half too small: left out, and said so
            logrank_row(kind, name, _median_codes(numbers[:, k]), family)
        else:
            add_logrank_row(kind, name, family, split[k])

    position = iter(range(len(continuous)))  # modules, then features in column order
    for _ in eigengenes.columns:
        continuous_rows(next(position))
    for feature in imaging.columns:
        feature_type = kinds[feature]
        family = f"{feature_sources.get(feature, '') or 'imaging'} feature"
        if feature_type == "continuous":
            continuous_rows(next(position))
            continue
        aligned = imaging[feature].reindex(obs.index)
        if feature_type == "ordinal":
            codes = _group_codes(aligned).astype(float)
            codes[codes < 0] = np.nan
            cox_row("feature", str(feature), codes, family, "cox_trend", per_unit=True)
        else:
            levels = (
                _group_order(aligned)
                if not isinstance(aligned.dtype, pd.CategoricalDtype)
                else (list(aligned.cat.categories))
            )
            logrank_row("feature", str(feature), _group_codes(aligned), family, levels)
    for mutation in mutations:
        if mutation not in obs.columns:
            warn(f"survival: mutation column {mutation!r} not found in clinical data; skipped")
            continue
        status = obs[mutation].astype(object).where(obs[mutation].isin([MUTANT, WILDTYPE]))
        logrank_row("mutation", str(mutation), _group_codes(status), "mutation")

    if left_out:
        warn(
            f"survival: log-rank levels with < {min_group} patients left out: "
            + "; ".join(left_out[:10])
            + (" ..." if len(left_out) > 10 else "")
        )
    if not rows:
        return _empty_survival_table(), warnings
    table = pd.DataFrame(rows, columns=[c for c in SURVIVAL_COLUMNS if c != "q"])
    too_few = table["events"] < min_events
    table.loc[too_few, ["statistic", "hr", "ci_low", "ci_high", "p"]] = np.nan
    table["q"] = family_q(table["p"].to_numpy(dtype=float), table["family"].to_numpy())
    if failed:
        warn(
            f"survival: Cox model gave no estimate for {len(failed)} variable(s): "
            + "; ".join(failed[:5])
            + (" ..." if len(failed) > 5 else "")
        )
    logger.info("survival: %d tests finished (%.1f s)", len(table), timer.perf_counter() - start)
    table = table.astype({"n": "int64", "events": "int64"})
    return table[list(SURVIVAL_COLUMNS)], warnings
