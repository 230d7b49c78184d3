"""Permutation null of the module x feature map (radmap.analysis.null)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import null
from radmap.analysis.datasets import synthetic
from radmap.analysis.validate import InputError
from scipy import stats


@pytest.fixture(scope="module")
def cohort():
    return synthetic(n_patients=120, n_genes=300, n_features=25, n_modules=4, module_size=20)


def _random_values(n_patients: int, index: pd.Index, seed: int, n_variables: int = 4):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.standard_normal((n_patients, n_variables)),
        index=index,
        columns=[f"m{i}" for i in range(n_variables)],
    )


def test_statistics_match_scipy_on_complete_data():
    rng = np.random.default_rng(3)
    index = pd.Index([f"P{i}" for i in range(40)])
    values = _random_values(40, index, 4, n_variables=3)
    features = pd.DataFrame(
        {
            "size": rng.lognormal(size=40),
            "grade": pd.Categorical(rng.integers(0, 4, 40), ordered=True),
            "shape": pd.Categorical(rng.choice(["a", "b", "c"], 40)),
            "flag": pd.Categorical(rng.choice(["no", "yes"], 40)),
        },
        index=index,
    )
    types = {"size": "continuous", "grade": "ordinal", "shape": "categorical", "flag": "binary"}
    design, tested, _, _ = null.rank_design(values, features, types)
    statistic, p = null.map_statistics(design.ranks[None], design)
    for j, name in enumerate(tested):
        for i, module in enumerate(values.columns):
            y = values[module].to_numpy()
            if types[name] in ("continuous", "ordinal"):
                x = features[name]
                x = x.cat.codes if hasattr(x, "cat") else x
                reference = stats.spearmanr(y, x)
            else:
                codes = features[name].cat.codes.to_numpy()
                reference = stats.kruskal(*[y[codes == c] for c in np.unique(codes)])
            assert statistic[0, i, j] == pytest.approx(reference.statistic, rel=1e-10)
            assert p[0, i, j] == pytest.approx(reference.pvalue, rel=1e-8)


def test_missing_feature_values_use_whole_cohort_ranks():
    rng = np.random.default_rng(5)
    index = pd.Index([f"P{i}" for i in range(50)])
    values = _random_values(50, index, 6, n_variables=2)
    x = rng.normal(size=50)
    x[:7] = np.nan
    features = pd.DataFrame({"texture": x}, index=index)
    design, _, _, _ = null.rank_design(values, features, {"texture": "continuous"})
    statistic, _ = null.map_statistics(design.ranks[None], design)
    used = ~np.isnan(x)
    for i, module in enumerate(values.columns):
        whole_ranks = stats.rankdata(values[module].to_numpy())[used]
        expected = np.corrcoef(whole_ranks, stats.rankdata(x[used]))[0, 1]
        assert statistic[0, i, 0] == pytest.approx(expected, rel=1e-10)


def test_bh_discoveries_match_scipy():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(30, 40)) ** 3
    expected = [(stats.false_discovery_control(row) < 0.1).sum() for row in p]
    assert null.bh_discoveries(p, 0.1).tolist() == expected


def test_planted_links_have_small_permutation_p_and_null_ones_do_not(cohort):
    result = null.permutation_null(
        cohort.truth["latent"], cohort.imaging, cohort.feature_types, n_permutations=199
    )
    links = cohort.truth["links"]
    planted = [result.p_perm.loc[m, f] for m, f in zip(links["module"], links["feature"])]
    assert max(planted) < 0.05
    assert min(planted) == pytest.approx(1 / 200)
    null_cells = result.p_perm[cohort.truth["null_features"]].to_numpy().ravel()
    assert np.median(null_cells) > 0.3
    assert result.observed_links >= len(links)
    assert result.expected_false_links < 1
    assert result.empirical_fdr < 0.25
    summary = result.summary()
    assert summary["observed_links"] == result.observed_links
    assert f"{result.observed_links} links at q < 0.05" in result.badge()
    table = result.tidy()
    assert len(table) == result.p_perm.size
    assert set(table.columns) >= {"module", "feature", "perm_p", "perm_q"}


def test_empirical_fdr_covers_the_truth_on_a_full_null(cohort):
    """Independent eigengenes vs real-looking imaging: every link is false.

    The null's expected count must match the observed count on average, and the per-cell
    permutation p-values must be uniform.
    """
    imaging = cohort.imaging[cohort.truth["null_features"]]
    observed, expected, small = [], [], []
    for seed in range(40):
        values = _random_values(len(imaging), imaging.index, 100 + seed)
        result = null.permutation_null(
            values, imaging, cohort.feature_types, n_permutations=100, alpha=0.3, seed=seed
        )
        observed.append(result.observed_links)
        expected.append(result.expected_false_links)
        small.append(np.nanmean(result.p_perm.to_numpy() <= 0.1))
    observed, expected = np.array(observed), np.array(expected)
    assert observed.sum() > 0
    standard_error = observed.std(ddof=1) / np.sqrt(len(observed))
    assert abs(observed.mean() - expected.mean()) < 3 * standard_error + 0.05
    assert np.mean(small) == pytest.approx(0.1, abs=0.03)


def test_result_does_not_depend_on_blocks(cohort):
    args = (cohort.truth["latent"], cohort.imaging, cohort.feature_types)
    one = null.permutation_null(*args, n_permutations=60, seed=7, block_size=60)
    many = null.permutation_null(*args, n_permutations=60, seed=7, block_size=7)
    other = null.permutation_null(*args, n_permutations=60, seed=8, block_size=7)
    pd.testing.assert_frame_equal(one.p_perm, many.p_perm)
    np.testing.assert_array_equal(one.discoveries_null, many.discoveries_null)
    assert not one.p_perm.equals(other.p_perm)


def test_result_does_not_depend_on_threads(cohort):
    args = (cohort.truth["latent"], cohort.imaging, cohort.feature_types)
    one = null.permutation_null(*args, n_permutations=60, seed=7, block_size=7, n_workers=1)
    two = null.permutation_null(*args, n_permutations=60, seed=7, block_size=7, n_workers=2)
    pd.testing.assert_frame_equal(one.p_perm, two.p_perm)
    np.testing.assert_array_equal(one.discoveries_null, two.discoveries_null)
    covariates = cohort.clinical[["age"]]  # the Freedman-Lane kernel
    one = null.permutation_null(
        *args, n_permutations=30, seed=7, block_size=7, n_workers=1, covariates=covariates
    )
    two = null.permutation_null(
        *args, n_permutations=30, seed=7, block_size=7, n_workers=2, covariates=covariates
    )
    pd.testing.assert_frame_equal(one.p_perm, two.p_perm)


@pytest.mark.slow
def test_same_result_on_a_two_worker_local_cluster(cohort):
    args = (cohort.truth["latent"], cohort.imaging, cohort.feature_types)
    serial = null.permutation_null(*args, n_permutations=40, seed=3, block_size=10)
    dask = null.permutation_null(
        *args, n_permutations=40, seed=3, block_size=10, scheduler="local", n_workers=2
    )
    pd.testing.assert_frame_equal(serial.p_perm, dask.p_perm)
    np.testing.assert_array_equal(serial.discoveries_null, dask.discoveries_null)


def test_bad_input_is_reported(cohort):
    values = cohort.truth["latent"].copy()
    with pytest.raises(InputError, match="n_permutations"):
        null.permutation_null(values, cohort.imaging, cohort.feature_types, n_permutations=0)
    values.iloc[0, 0] = np.nan
    with pytest.raises(InputError, match="missing values"):
        null.permutation_null(values, cohort.imaging, cohort.feature_types, n_permutations=5)
    with pytest.raises(InputError, match="scheduler"):
        null.permutation_null(
            cohort.truth["latent"],
            cohort.imaging,
            cohort.feature_types,
            n_permutations=5,
            scheduler="nowhere",
        )


def test_p_values_below_a_threshold_only_are_the_full_ones(cohort):
    design, _, _, _ = null.rank_design(cohort.truth["latent"], cohort.imaging, cohort.feature_types)
    orders = np.stack([np.random.default_rng(b).permutation(len(design.ranks)) for b in range(20)])
    ranks = design.ranks[orders]
    _, full = null.map_statistics(ranks, design)
    _, cut = null.map_statistics(ranks, design, p_below=0.05)
    small = full <= 0.05
    assert small.any() and (~small & np.isfinite(full)).any()
    np.testing.assert_allclose(cut[small], full[small], rtol=1e-12)
    assert (cut[~small & np.isfinite(full)] == 1.0).all()
    assert np.array_equal(np.isnan(cut), np.isnan(full))


def test_links_are_counted_within_families(cohort):
    args = (cohort.truth["latent"], cohort.imaging, cohort.feature_types)
    semantic = {f for f, s in cohort.feature_sources.items() if s == "semantic"}
    families = {f: "semantic" if f in semantic else "radiomic" for f in cohort.imaging}
    result = null.permutation_null(*args, n_permutations=20, alpha=0.2, families=families)
    expected = 0
    for label in ("semantic", "radiomic"):
        columns = [f for f in result.p.columns if families[f] == label]
        p = result.p[columns].to_numpy().ravel()
        p = p[np.isfinite(p)]
        expected += int((stats.false_discovery_control(p) < 0.2).sum())
    assert result.observed_links == expected
    whole = null.permutation_null(*args, n_permutations=20, alpha=0.2)
    p = whole.p.to_numpy().ravel()
    assert whole.observed_links == int(
        (stats.false_discovery_control(p[np.isfinite(p)]) < 0.2).sum()
    )


def test_features_ranked_together_as_one_at_a_time():
    """Continuous and ordinal features are ranked in one call per set of patients: each
    must get what ranking it alone (``feature_columns``) gives, whatever its dtype."""
    from radmap.analysis.associate import row_patterns
    from radmap.analysis.null import feature_columns, ranked_features

    rng = np.random.default_rng(4)
    n = 40
    frame = pd.DataFrame(
        {
            "plain": rng.normal(size=n),
            "ties": np.round(rng.normal(size=n)),
            "holes": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "same holes": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "integers": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "grade": pd.Categorical(rng.choice(["low", "mid", "high", None], n), ordered=True),
            "text numbers": [str(v) if v > -1 else "n/a" for v in rng.normal(size=n)],
            "constant": 3.0,
            "rare": np.where(np.arange(n) < 5, 1.0 * np.arange(n), np.nan),
        }
    )
    frame.loc[3, "integers"] = pd.NA
    ranked = ranked_features(frame, min_n=10)
    for name in frame.columns:
        alone = feature_columns(name, frame[name], "continuous", min_n=10, min_group=3)
        if isinstance(alone, str):
            assert ranked[name] == alone
            continue
        np.testing.assert_array_equal(ranked[name][0], alone[0])
        np.testing.assert_array_equal(ranked[name][1], alone[1])
    assert isinstance(ranked["constant"], str) and isinstance(ranked["rare"], str)
    rows = rng.random((30, 12)) < 0.5
    rows[5] = rows[2]
    expected = np.unique(rows, axis=0, return_inverse=True)
    got = row_patterns(rows)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1].ravel())
