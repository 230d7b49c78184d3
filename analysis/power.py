"""What an empty map means: the smallest effect each test could have detected.

For a family of ``m`` tests controlled by Benjamini–Hochberg at level ``alpha``, a single true
link is found when its p-value is below ``alpha / m`` (BH's first step), so the detectable
effect is computed at the per-test level ``alpha / m`` with the test's own effect measure:

- correlation (Spearman / Pearson, continuous and ordinal features): Fisher's z,
  ``r = tanh((z_{1-a/2} + z_{power}) / sqrt(n - 3))``;
- two groups (binary features, Welch t): Hedges' g (≈ Cohen's d) from statsmodels'
  ``TTestIndPower`` with the actual group sizes;
- k groups (categorical features, Kruskal–Wallis / ANOVA): eta-squared (≈ epsilon-squared)
  from statsmodels' ``FTestAnovaPower`` Cohen's f, ``eta2 = f^2 / (1 + f^2)``;
- contingency tables (mutation x categorical feature): Cramér's V (= Cohen's w / sqrt(min
  dimension - 1)) from statsmodels' ``GofChisquarePower`` with the table's degrees of freedom;
- survival (Cox per SD, log-rank of two groups): the hazard ratio from Schoenfeld's formula,
  ``log HR = (z_{1-a/2} + z_{power}) / sqrt(D * v)``, D events, v the variance of the
  variable (1 per SD, ``p (1 - p)`` for two groups).

The figures are approximations for rank tests (asymptotic relative efficiency near 1 for
normal data) and are meant to read "no link larger than r = 0.43 at n = 113", not as exact
power calculations.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from scipy import stats

from .validate import InputError

POWER = 0.8
ALPHA = 0.05
MAX_COHENS_F = 1_000
"""Beyond this Cohen's f (eta-squared 0.999999) no split short of a perfect one is
detectable: reported as NaN."""


def _scalar(value) -> float:
    """statsmodels' solvers return a scalar or a one-element array."""
    return float(np.asarray(value, dtype=float).ravel()[0])


def _per_test_alpha(alpha: float, family_size: int) -> float:
    if family_size < 1:
        raise InputError(f"power: family size must be at least 1, not {family_size}")
    return alpha / family_size


def _z_sum(alpha: float, power: float) -> float:
    return float(stats.norm.isf(alpha / 2) + stats.norm.ppf(power))


@functools.cache  # a map asks the same question for many features
def correlation(n: int, family_size: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest |r| detectable with ``power`` at ``n`` patients in a family of tests."""
    if n < 4:
        return math.nan
    level = _per_test_alpha(alpha, family_size)
    return float(np.tanh(_z_sum(level, power) / math.sqrt(n - 3)))


@functools.cache  # a map asks the same question for many features
def two_groups(
    n_a: int, n_b: int, family_size: int, *, alpha: float = ALPHA, power: float = POWER
) -> float:
    """Smallest |Hedges' g| detectable between groups of ``n_a`` and ``n_b`` patients.

    statsmodels' ``TTestIndPower``: the two-sided t test's power depends on g only through
    the noncentrality ``g * sqrt(n_a n_b / (n_a + n_b))`` at ``n_a + n_b - 2`` degrees of
    freedom, so the noncentrality reaching ``power`` is solved once per degrees of freedom
    and level (features with other group splits of the same patients share it).
    """
    if min(n_a, n_b) < 2:
        return math.nan
    level = _per_test_alpha(alpha, family_size)
    noncentrality = _t_noncentrality(int(n_a + n_b - 2), level, power)
    return noncentrality / math.sqrt(n_a * n_b / (n_a + n_b))


@functools.cache
def _t_noncentrality(df: int, level: float, power: float) -> float:
    """Noncentrality at which a two-sided t test with ``df`` degrees of freedom at ``level``
    has ``power`` (the power statsmodels' ``ttest_power`` computes; its lower tail, which
    underflows to NaN far from zero, counts as 0 here)."""
    from scipy.optimize import brentq
    from scipy.special import nctdtr, stdtrit

    # scipy.special's distribution functions, not scipy.stats' t and nct: the same values,
    # without the ~0.15 ms of argument handling per call (a subset solves afresh)
    critical = -stdtrit(df, level / 2)

    def shortfall(noncentrality: float) -> float:
        lower = np.nan_to_num(nctdtr(df, noncentrality, -critical))
        return float(1.0 - nctdtr(df, noncentrality, critical) + lower) - power

    high = 4.0
    while shortfall(high) < 0 and high < 1e6:  # heavy tails at few df need a far bound
        high *= 4
    return float(brentq(shortfall, 0.0, high, xtol=1e-12))


@functools.cache  # a map asks the same question for many features
def k_groups(
    n: int, k: int, family_size: int, *, alpha: float = ALPHA, power: float = POWER
) -> float:
    """Smallest eta-squared (≈ epsilon-squared) detectable across ``k`` groups of ``n``.

    The power of statsmodels' ``FTestAnovaPower`` (noncentral F with noncentrality
    ``f^2 n`` at ``k - 1`` and ``n - k`` degrees of freedom), solved for Cohen's f.
    """
    if k < 2 or n <= k:
        return math.nan
    level = _per_test_alpha(alpha, family_size)
    f_squared = _f_noncentrality(k - 1, n - k, level, power) / n
    return f_squared / (1 + f_squared)


@functools.cache
def _f_noncentrality(df_num: int, df_denom: int, level: float, power: float) -> float:
    """Noncentrality at which the F test with ``df_num`` and ``df_denom`` degrees of
    freedom at ``level`` has ``power`` (NaN beyond Cohen's f = ``MAX_COHENS_F``)."""
    from scipy.optimize import brentq
    from scipy.special import ncfdtr

    critical = stats.f.isf(level, df_num, df_denom)

    def shortfall(noncentrality: float) -> float:
        return float(1.0 - ncfdtr(df_num, df_denom, noncentrality, critical)) - power

    limit = MAX_COHENS_F**2 * (df_num + df_denom + 1)
    high = 16.0
    while not shortfall(high) >= 0:  # small groups at tiny levels need a far bound
        if high >= limit:
            return math.nan
        high = min(high * 4, limit)
    return float(brentq(shortfall, 0.0, high, xtol=1e-10))


def contingency(
    n: int, rows: int, columns: int, family_size: int, *, alpha=ALPHA, power=POWER
) -> float:
    """Smallest Cramér's V detectable in a ``rows`` x ``columns`` table of ``n`` patients."""
    from statsmodels.stats.power import GofChisquarePower

    if min(rows, columns) < 2 or n < 4:
        return math.nan
    level = _per_test_alpha(alpha, family_size)
    df = (rows - 1) * (columns - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = _scalar(
            GofChisquarePower().solve_power(
                effect_size=None, nobs=n, alpha=level, power=power, n_bins=df + 1
            )
        )
    return w / math.sqrt(min(rows, columns) - 1)


def hazard_ratio(
    events: int,
    family_size: int,
    *,
    variance: float = 1.0,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float:
    """Smallest hazard ratio (> 1) detectable with ``events`` deaths (Schoenfeld 1983)."""
    if events < 1 or variance <= 0:
        return math.nan
    level = _per_test_alpha(alpha, family_size)
    return float(math.exp(_z_sum(level, power) / math.sqrt(events * variance)))
