"""Permutation nulls on residualised ranks: covariates and the gene map
(radmap.analysis.projection, null.permutation_null(covariates=...))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import null, projection
from radmap.analysis.associate import associate
from radmap.analysis.datasets import synthetic
from radmap.analysis.multitest import hierarchical
from scipy import stats

TYPES = {"x": "continuous", "y": "continuous", "g": "categorical", "b": "binary"}


def _mixed(n: int, seed: int, *, missing: bool = False):
    rng = np.random.default_rng(seed)
    index = pd.Index([f"P{i}" for i in range(n)])
    values = pd.DataFrame(rng.normal(size=(n, 4)), index=index, columns=list("abcd"))
    features = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.lognormal(size=n),
            "g": pd.Categorical(rng.choice(["u", "v", "w"], n)),
            "b": pd.Categorical(rng.choice(["no", "yes"], n)),
        },
        index=index,
    )
    if missing:
        features.loc[index[:5], "y"] = np.nan
    covariates = pd.DataFrame(
        {"age": rng.normal(size=n), "site": pd.Categorical(rng.choice(["A", "B"], n))},
        index=index,
    )
    return values, features, covariates


def _observed(values, features, covariates):
    residuals, design, tested, _, _ = projection.prepare(
        values, features, TYPES, covariates, min_n=10, min_group=3
    )
    ratio, statistic = projection.map_ratios(residuals, design.columns[None], design)
    ratio, statistic = ratio[:, 0, :], statistic[:, 0, :]
    features_of = np.broadcast_to(np.arange(ratio.shape[1]), ratio.shape)
    return statistic, projection.p_values(ratio, design, features_of), tested


def test_without_covariates_the_kernel_is_the_rank_null_even_with_missing_values():
    values, features, _ = _mixed(60, 1, missing=True)
    design, tested, _, _ = null.rank_design(values, features, TYPES)
    reference_statistic, reference_p = null.map_statistics(design.ranks[None], design)
    statistic, p, names = _observed(values, features, None)
    assert names == tested
    np.testing.assert_allclose(statistic, reference_statistic[0], rtol=1e-10)
    np.testing.assert_allclose(p, reference_p[0], rtol=1e-8)


def test_with_covariates_the_kernel_is_the_adjusted_map_on_ranks():
    """Partial Spearman (t on n - 2 - k df) and the OLS F test of the group block, as
    associate() computes them with the same covariates on the ranked values."""
    values, features, covariates = _mixed(70, 2)
    statistic, p, tested = _observed(values, features, covariates)
    reference = associate(
        values.rank(), features, TYPES, covariates=covariates, binary="welch", min_group=3
    )
    assert reference.test[["x", "y"]].eq("partial_spearman").all()
    np.testing.assert_allclose(p, reference.p[tested].to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(
        statistic[:, :2], reference.statistic[["x", "y"]].to_numpy(), rtol=1e-8
    )
    # the binary feature's F is the square of the OLS t
    np.testing.assert_allclose(statistic[:, 3], reference.statistic["b"].to_numpy() ** 2)


def test_sparse_counts_match_the_hierarchical_procedure():
    rng = np.random.default_rng(4)
    for trial in range(20):
        p = rng.uniform(size=(300, 12)) ** rng.uniform(1, 6, size=12)
        p[rng.uniform(size=p.shape) < 0.05] = np.nan
        p[:, 0] = np.nan
        n_tests = np.isfinite(p).sum(axis=0)
        truncated = np.where(p <= 0.1, p, np.where(np.isnan(p), np.nan, 1.0))
        reference = hierarchical(p, alpha=0.1)
        assert projection.hierarchical_discoveries(truncated, n_tests, 0.1) == int(
            (reference.q <= 0.1).sum()
        ), trial
        per_feature, _ = projection.feature_discoveries(truncated, n_tests, 0.1)
        expected = [
            int((stats.false_discovery_control(col[np.isfinite(col)]) <= 0.1).sum())
            if np.isfinite(col).any()
            else 0
            for col in p.T
        ]
        assert per_feature.tolist() == expected


def _confounded(seed: int, n: int = 80):
    """A covariate drives both sides; given it, nothing is linked."""
    rng = np.random.default_rng(seed)
    index = pd.Index([f"P{i}" for i in range(n)])
    age = rng.normal(size=n)
    values = pd.DataFrame(
        age[:, None] + rng.normal(size=(n, 5)), index=index, columns=[f"m{i}" for i in range(5)]
    )
    features = pd.DataFrame(
        age[:, None] + rng.normal(size=(n, 8)), index=index, columns=[f"f{i}" for i in range(8)]
    )
    group = np.where(age + rng.normal(size=n) > 0, "high", "low")
    features["grade"] = pd.Categorical(group)
    types = dict.fromkeys(features.columns, "continuous") | {"grade": "binary"}
    return values, features, types, pd.DataFrame({"age": age}, index=index)


def test_adjusted_null_covers_the_truth_when_a_covariate_confounds_the_map():
    """On a full null given the covariate, the expected-by-chance count of the adjusted null
    matches the adjusted map's observed count on average, and its permutation p-values are
    uniform; the unadjusted null on the same data sees a map full of (confounded) links."""
    observed, expected, small = [], [], []
    for seed in range(30):
        values, features, types, covariates = _confounded(seed)
        result = null.permutation_null(
            values,
            features,
            types,
            covariates=covariates,
            n_permutations=100,
            alpha=0.3,
            seed=seed,
        )
        assert set(result.test) == {"partial_spearman", "rank_ancova"}
        observed.append(result.observed_links)
        expected.append(result.expected_false_links)
        small.append(np.nanmean(result.p_perm.to_numpy() <= 0.1))
    observed, expected = np.array(observed), np.array(expected)
    assert observed.sum() > 0
    standard_error = observed.std(ddof=1) / np.sqrt(len(observed))
    assert abs(observed.mean() - expected.mean()) < 3 * standard_error + 0.05
    assert np.mean(small) == pytest.approx(0.1, abs=0.03)
    unadjusted = null.permutation_null(values, features, types, n_permutations=50, alpha=0.3)
    assert unadjusted.observed_links > 20 * max(unadjusted.expected_false_links, 0.1)


def test_adjusted_null_finds_a_link_planted_beyond_the_covariate():
    values, features, types, covariates = _confounded(3, n=120)
    values["m0"] += 1.5 * features["f0"]
    result = null.permutation_null(
        values, features, types, covariates=covariates, n_permutations=200, alpha=0.05
    )
    assert result.p_perm.loc["m0", "f0"] <= 2 / 201
    assert result.observed_links >= 1 and result.expected_false_links < 0.5


# ------------------------------------------------------------------------------ gene map


@pytest.fixture(scope="module")
def cohort():
    return synthetic(n_patients=120, n_genes=300, n_features=25, n_modules=4, module_size=20)


def test_gene_null_sees_planted_links_as_real(cohort):
    result = projection.gene_permutation_null(
        cohort.expression.T, cohort.imaging, cohort.feature_types, n_permutations=40, alpha=0.1
    )
    assert result.observed_links > 5
    assert result.expected_false_links < 0.1 * result.observed_links
    assert "gene links at map q < 0.1" in result.badge()
    planted = set(cohort.truth["links"]["feature"])
    table = result.per_feature.set_index("feature")
    assert (table.loc[sorted(planted), "observed"] > 0).all()
    assert set(result.summary()) >= {"observed_links", "expected_false_links", "empirical_fdr"}


def test_gene_null_covers_the_truth_on_a_full_null(cohort):
    """Random genes vs real imaging (with a covariate): observed ~ expected on average."""
    imaging = cohort.imaging[cohort.truth["null_features"]]
    rng = np.random.default_rng(0)
    observed, expected = [], []
    for seed in range(25):
        genes = pd.DataFrame(rng.normal(size=(len(imaging), 60)), index=imaging.index)
        covariates = pd.DataFrame({"age": rng.normal(size=len(imaging))}, index=imaging.index)
        result = projection.gene_permutation_null(
            genes,
            imaging,
            cohort.feature_types,
            covariates=covariates if seed % 2 else None,
            n_permutations=40,
            alpha=0.3,
            seed=seed,
        )
        observed.append(result.observed_links)
        expected.append(result.expected_false_links)
    observed, expected = np.array(observed), np.array(expected)
    assert observed.sum() > 0
    standard_error = observed.std(ddof=1) / np.sqrt(len(observed))
    assert abs(observed.mean() - expected.mean()) < 3 * standard_error + 0.05


def test_gene_null_does_not_depend_on_blocks(cohort):
    args = (cohort.expression.T, cohort.imaging, cohort.feature_types)
    one = projection.gene_permutation_null(*args, n_permutations=12, seed=5, block_size=12)
    many = projection.gene_permutation_null(*args, n_permutations=12, seed=5, block_size=5)
    np.testing.assert_array_equal(one.discoveries_null, many.discoveries_null)
    pd.testing.assert_frame_equal(one.per_feature, many.per_feature)


def test_gene_null_does_not_depend_on_threads(cohort):
    args = (cohort.expression.T, cohort.imaging, cohort.feature_types)
    one = projection.gene_permutation_null(
        *args, n_permutations=12, seed=5, block_size=2, n_workers=1
    )
    two = projection.gene_permutation_null(
        *args, n_permutations=12, seed=5, block_size=2, n_workers=2
    )
    np.testing.assert_array_equal(one.discoveries_null, two.discoveries_null)
    pd.testing.assert_frame_equal(one.per_feature, two.per_feature)


def test_column_ranks_are_scipys_average_ranks_with_ties_and_missing_values():
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(size=(40, 3000)), 1)  # many ties
    values[:, 5] = 1.0  # one constant column
    values[3, 7] = np.nan
    ranks = projection.column_ranks(values)
    reference = stats.rankdata(values, axis=0)
    assert ranks.flags.c_contiguous
    np.testing.assert_array_equal(ranks, reference)
    assert np.isnan(ranks[:, 7]).all()


def test_sparse_discoveries_are_the_dense_counts():
    rng = np.random.default_rng(8)
    p = rng.uniform(size=(500, 9)) ** 3
    n_tests = np.full(9, 500)
    tests, features = np.nonzero(p <= 0.2)
    shuffle = rng.permutation(len(tests))
    values, features = p[tests, features][shuffle], features[shuffle]
    dense = projection.feature_discoveries(p, n_tests, 0.2)
    sparse = projection.sparse_feature_discoveries(values, features, n_tests, 0.2)
    np.testing.assert_array_equal(dense[0], sparse[0])
    np.testing.assert_array_equal(dense[1], sparse[1])
    assert dense[0].sum() > 0
    assert projection.hierarchical_discoveries(p, n_tests, 0.2) == (
        projection.sparse_hierarchical_discoveries(values, features, n_tests, 0.2, sparse[1])
    )


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_gene_counts_from_the_head_of_each_feature_equal_the_full_procedure(cohort, alpha):
    """The null's counts, from the p-values that can pass only, are those of BH and the
    hierarchical procedure on every p-value (planted links and permuted maps)."""
    residuals, design, _, _, _ = projection.prepare(
        cohort.expression.T, cohort.imaging, cohort.feature_types, None, min_n=10, min_group=3
    )
    design.ratio_critical = projection.critical_ratios(design, alpha)
    orders = np.stack(
        [np.arange(len(residuals))]
        + [np.random.default_rng(seed).permutation(len(residuals)) for seed in range(6)]
    )
    ratio, _ = projection.map_ratios(residuals, design.columns[orders], design)
    n_tests = np.isfinite(ratio[:, 0, :]).sum(axis=0)
    totals = []
    for i in range(len(orders)):
        p = projection._p_below(ratio[:, i, :], design)
        total, per_feature = projection._gene_discoveries(ratio[:, i, :], design, n_tests, alpha)
        assert total == projection.hierarchical_discoveries(p, n_tests, alpha)
        np.testing.assert_array_equal(
            per_feature, projection.feature_discoveries(p, n_tests, alpha)[0]
        )
        totals.append(total)
    assert totals[0] > 0 and max(totals[1:]) < totals[0]  # planted links, permuted maps
