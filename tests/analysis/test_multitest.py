"""Multiple-testing procedures, exact contingency tests and power, against references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from radmap.analysis import power
from radmap.analysis.associate import contingency_test, sparse_table
from radmap.analysis.multitest import bh, family_q, hierarchical, simes
from radmap.analysis.validate import InputError
from scipy import special, stats
from statsmodels.stats.multitest import multipletests


def test_bh_matches_statsmodels_and_ignores_nan():
    p = np.random.default_rng(0).uniform(size=40) ** 3
    expected = multipletests(p, method="fdr_bh")[1]
    np.testing.assert_allclose(bh(p), expected, rtol=1e-12)
    with_nan = np.append(p, np.nan)
    np.testing.assert_allclose(bh(with_nan)[:-1], expected, rtol=1e-12)
    assert np.isnan(bh(with_nan)[-1])


def test_family_q_corrects_within_each_family_only():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=30) ** 2
    families = np.repeat(["semantic", "radiomic", "clinical"], [5, 20, 5])
    q = family_q(p, families)
    for family in ("semantic", "radiomic", "clinical"):
        members = families == family
        np.testing.assert_allclose(q[members], multipletests(p[members], method="fdr_bh")[1])
    # one family of 5 beside 20 others: q is smaller than over all 30 at once
    assert (q[:5] <= bh(p)[:5] + 1e-15).all() and (q[:5] < bh(p)[:5]).any()
    with pytest.raises(InputError, match="family labels"):
        family_q(p, families[:-1])


def test_simes_is_the_definition_and_the_smallest_bh_q():
    rng = np.random.default_rng(2)
    p = rng.uniform(size=(12, 4)) ** 2
    p[3, 1] = np.nan
    p[:, 3] = np.nan
    got = simes(p)
    for j in range(3):
        column = np.sort(p[~np.isnan(p[:, j]), j])
        m = len(column)
        expected = min(1.0, min(m * column[i] / (i + 1) for i in range(m)))
        assert got[j] == pytest.approx(expected, rel=1e-12)
        assert got[j] == pytest.approx(np.nanmin(bh(p[:, j])), rel=1e-12)
    assert np.isnan(got[3])


def test_hierarchical_equals_benjamini_bogomolov_by_hand():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(50, 8))
    p[:6, 0] = rng.uniform(0, 1e-4, 6)  # two features carry signal
    p[:3, 5] = rng.uniform(0, 1e-3, 3)
    p[10, 2] = 0.004  # a lone small p in a null feature
    result = hierarchical(p, alpha=0.05)

    # by hand: Simes per feature, BH over features, BH within selected at alpha * R / m
    simes_p = [min(len(col) * np.sort(col)[i] / (i + 1) for i in range(len(col))) for col in p.T]
    selected = multipletests(simes_p, alpha=0.05, method="fdr_bh")[0]
    assert list(selected) == list(result.selected)
    r, m = int(selected.sum()), p.shape[1]
    expected = np.zeros_like(p, dtype=bool)
    for j in np.flatnonzero(selected):
        expected[:, j] = multipletests(p[:, j], alpha=0.05 * r / m, method="fdr_bh")[0]
    np.testing.assert_array_equal(result.q <= 0.05, expected)
    assert result.n_discoveries == expected.sum()
    assert result.selected[0] and result.selected[5] and not result.selected[2]
    # per-feature BH would have called the lone p a discovery? not at 50 tests: check the map
    assert (result.q[:, ~result.selected] == 1).all()


def test_hierarchical_keeps_nan_and_checks_input():
    p = np.full((5, 3), 0.5)
    p[0, 0] = np.nan
    result = hierarchical(p)
    assert np.isnan(result.q[0, 0]) and not result.selected.any()
    with pytest.raises(InputError, match="alpha"):
        hierarchical(p, alpha=1.5)


def _exact_rxc_p(counts: np.ndarray) -> float:
    """Exact chi-square p of a 2 x c table by enumerating every table with its margins."""
    rows, columns = counts.sum(axis=1), counts.sum(axis=0)
    n = counts.sum()
    expected = np.outer(rows, columns) / n
    observed = ((counts - expected) ** 2 / expected).sum()
    total = 0.0
    for first in itertools.product(*(range(c + 1) for c in columns)):
        first = np.array(first)
        if first.sum() != rows[0]:
            continue
        table = np.vstack([first, columns - first])
        log_probability = (
            special.gammaln(rows + 1).sum()
            + special.gammaln(columns + 1).sum()
            - special.gammaln(n + 1)
            - special.gammaln(table + 1).sum()
        )
        if ((table - expected) ** 2 / expected).sum() >= observed - 1e-9:
            total += math.exp(log_probability)
    return total


def test_sparse_rxc_table_gets_a_monte_carlo_p_close_to_the_exact_one():
    counts = np.array([[5, 1, 0, 2], [1, 4, 3, 0]])
    assert sparse_table(counts)
    test, statistic, effect, p = contingency_test(counts, draws=20000, seed=1)
    assert test == "chi2_monte_carlo"
    reference = stats.chi2_contingency(counts, correction=False)
    assert statistic == pytest.approx(reference.statistic)
    assert effect == pytest.approx(stats.contingency.association(counts, method="cramer"))
    exact = _exact_rxc_p(counts)
    assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-4
    # the asymptotic p of such a table is noticeably off: the reason for the fallback
    assert abs(reference.pvalue - exact) > abs(p - exact)


def test_dense_tables_keep_chi2_and_2x2_fisher():
    dense = np.array([[30, 20, 25], [22, 28, 24]])
    assert not sparse_table(dense)
    test, statistic, _, p = contingency_test(dense)
    reference = stats.chi2_contingency(dense, correction=False)
    assert test == "chi2" and p == pytest.approx(reference.pvalue)
    two = np.array([[8, 2], [1, 9]])
    test, statistic, _, p = contingency_test(two)
    assert test == "fisher" and p == pytest.approx(stats.fisher_exact(two).pvalue)


def test_power_correlation_reaches_80_percent_at_the_returned_r():
    n, m = 60, 20
    r = power.correlation(n, m)
    level = 0.05 / m
    z = np.arctanh(r) * math.sqrt(n - 3)
    achieved = stats.norm.sf(stats.norm.isf(level / 2) - z)
    assert achieved == pytest.approx(0.8, abs=1e-3)
    assert power.correlation(120, m) < r < power.correlation(n, m * 10)


@pytest.mark.parametrize(
    ("n_a", "n_b", "family"), [(100, 400, 2000), (3, 120, 1476), (60, 60, 10332)]
)
def test_power_two_groups_reaches_80_percent_at_tiny_per_test_levels(n_a, n_b, family):
    # statsmodels' solver returned g = 0.474 for (100, 400, 2000): 45 % power, because its
    # power function is NaN far from zero (the lower tail underflows) at such levels.
    g = power.two_groups(n_a, n_b, family)
    level, df = 0.05 / family, n_a + n_b - 2
    critical = stats.t.isf(level / 2, df)
    noncentrality = g * math.sqrt(n_a * n_b / (n_a + n_b))
    achieved = stats.nct.sf(critical, df, noncentrality) + np.nan_to_num(
        stats.nct.cdf(-critical, df, noncentrality)
    )
    assert achieved == pytest.approx(0.8, abs=1e-6)


def test_power_two_and_k_groups_match_statsmodels_power():
    from statsmodels.stats.power import FTestAnovaPower, TTestIndPower

    g = power.two_groups(30, 50, 10)
    achieved = TTestIndPower().power(effect_size=g, nobs1=30, ratio=50 / 30, alpha=0.005)
    assert achieved == pytest.approx(0.8, abs=1e-3)
    eta2 = power.k_groups(90, 3, 10)
    f = math.sqrt(eta2 / (1 - eta2))
    achieved = FTestAnovaPower().power(effect_size=f, nobs=90, alpha=0.005, k_groups=3)
    assert achieved == pytest.approx(0.8, abs=1e-3)
    # Small groups need Cohen's f above 1, beyond statsmodels' own search (it raised).
    eta2 = power.k_groups(15, 3, 20)
    f = math.sqrt(eta2 / (1 - eta2))
    assert f > 1
    achieved = FTestAnovaPower().power(effect_size=f, nobs=15, alpha=0.05 / 20, k_groups=3)
    assert achieved == pytest.approx(0.8, abs=1e-3)
    # One patient more than groups at a tiny level: Cohen's f far beyond 1,000, reported NaN.
    eta2 = power.k_groups(6, 4, 2000)
    f = math.sqrt(eta2 / (1 - eta2))
    achieved = FTestAnovaPower().power(effect_size=f, nobs=6, alpha=0.05 / 2000, k_groups=4)
    assert f > 100 and achieved == pytest.approx(0.8, abs=1e-3)
    assert math.isnan(power.k_groups(4, 3, 200))
    v = power.contingency(100, 2, 3, 5)
    assert 0 < v < 1
    hr = power.hazard_ratio(60, 1)
    assert hr == pytest.approx(math.exp((1.959964 + 0.841621) / math.sqrt(60)), rel=1e-5)
    assert math.isnan(power.correlation(3, 1))


def test_bh_columns_is_bh_of_each_column():
    """The gene map's q within each feature: every column corrected on its own, with its own
    number of tests (NaN left out), as bh column by column and statsmodels give."""
    from radmap.analysis.multitest import bh_columns

    rng = np.random.default_rng(12)
    p = np.round(rng.random((80, 6)) ** 2, 3)  # ties
    p[rng.random(p.shape) < 0.25] = np.nan
    p[:, 0] = np.nan  # nothing tested
    p[1:, 1] = np.nan  # one test
    q = bh_columns(p)
    for column in range(p.shape[1]):
        np.testing.assert_array_equal(q[:, column], bh(p[:, column]))
        tested = ~np.isnan(p[:, column])
        if tested.any():
            expected = multipletests(p[tested, column], method="fdr_bh")[1]
            np.testing.assert_allclose(q[tested, column], expected, rtol=1e-12)
    assert np.isnan(q[:, 0]).all() and q[0, 1] == p[0, 1]
