"""Association kernels against scipy / statsmodels references on small seeded cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import radmap.analysis.associate as associate_module
import statsmodels.api as sm
from radmap.analysis.associate import (
    Associations,
    _RowRanker,
    associate,
    associate_categorical,
    bh,
    tidy,
)
from radmap.analysis.validate import InputError
from scipy import stats
from statsmodels.stats.multitest import multipletests

RTOL = 1e-10
ATOL = 1e-14
TYPES = {
    "size": "continuous",
    "grade": "ordinal",
    "spiculated": "binary",
    "attenuation": "categorical",
    "rare": "continuous",
    "lopsided": "binary",
}


def close(got: float, expected: float) -> bool:
    if np.isnan(expected):
        return bool(np.isnan(got))
    return bool(np.isclose(got, expected, rtol=RTOL, atol=ATOL))


@pytest.fixture
def cohort() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients x variables (ties, a constant column) and patients x features (NaNs, ties,
    unequal groups, a small group, a feature with too few patients)."""
    rng = np.random.default_rng(7)
    n = 64
    patients = [f"R01-{i:03d}" for i in range(n)]
    values = pd.DataFrame(
        {
            "normal": rng.standard_normal(n),
            "rounded": np.round(rng.standard_normal(n), 1),
            "counts": rng.poisson(1.5, n).astype(float),
            "skewed": rng.lognormal(size=n),
            "constant": np.full(n, 2.5),
        },
        index=patients,
    )
    size = np.round(rng.gamma(2, 10, n))
    size[[3, 10, 40]] = np.nan
    grade = pd.Categorical(
        rng.choice(["low", "mid", "high"], n), categories=["low", "mid", "high"], ordered=True
    )
    spiculated = pd.Categorical(
        rng.choice(["no", "yes"], n, p=[0.7, 0.3]), categories=["no", "yes"]
    )
    spiculated[[0, 5]] = np.nan
    attenuation = pd.Categorical(
        rng.choice(["solid", "part-solid", "ground-glass"], n),
        categories=["solid", "part-solid", "ground-glass", "cavitary"],
    )
    attenuation[[1, 2]] = "cavitary"  # a group below min_group: left out
    attenuation[[7, 8, 9]] = np.nan
    rare = np.full(n, np.nan)
    rare[:8] = rng.standard_normal(8)  # fewer than min_n patients
    lopsided = pd.Categorical(["A"] * (n - 2) + ["B"] * 2, categories=["A", "B"])
    features = pd.DataFrame(
        {
            "size": size,
            "grade": grade,
            "spiculated": spiculated,
            "attenuation": attenuation,
            "rare": rare,
            "lopsided": lopsided,
        },
        index=patients,
    )
    # shuffled and with an extra patient: associate must align on the index
    extra = features.iloc[[0]].set_axis(["AMC-999"])
    features = pd.concat([features.iloc[::-1], extra])
    assert isinstance(features["grade"].dtype, pd.CategoricalDtype)
    return values, features


def reference(y: pd.Series, x: pd.Series, kind: str, test: str) -> tuple[float, float]:
    """scipy on the complete cases of one pair."""
    both = y.notna() & x.notna()
    y, x = y[both].to_numpy(), x[both]
    if kind == "correlation":
        x = x.cat.codes.to_numpy() if isinstance(x.dtype, pd.CategoricalDtype) else x.to_numpy()
        result = (stats.spearmanr if test == "spearman" else stats.pearsonr)(x, y)
        return result.statistic, result.pvalue
    groups = [y[(x == level).to_numpy()] for level in x.cat.categories]
    groups = [g for g in groups if len(g) >= 3]
    if kind == "binary":
        a, b = groups
        if test in ("welch", "student"):
            result = stats.ttest_ind(b, a, equal_var=test == "student")
        else:
            result = stats.mannwhitneyu(b, a, method="asymptotic")
        return result.statistic, result.pvalue
    result = (stats.kruskal if test == "kruskal" else stats.f_oneway)(*groups)
    return result.statistic, result.pvalue


KIND = {
    "size": "correlation",
    "grade": "correlation",
    "spiculated": "binary",
    "attenuation": "categorical",
}


@pytest.mark.parametrize(
    "options",
    [
        {"continuous": "spearman", "binary": "welch", "categorical": "kruskal"},
        {"continuous": "pearson", "binary": "mannwhitney", "categorical": "anova"},
        {"continuous": "spearman", "binary": "student", "categorical": "kruskal"},
    ],
)
def test_kernels_match_scipy(cohort, options):
    values, features = cohort
    result = associate(values, features, TYPES, **options)
    tests = {"correlation": options["continuous"], "binary": options["binary"]}
    tests["categorical"] = options["categorical"]
    checked = 0
    for variable in ["normal", "rounded", "counts", "skewed"]:
        for feature, kind in KIND.items():
            statistic, p = reference(
                values[variable], features.loc[values.index, feature], kind, tests[kind]
            )
            assert close(result.statistic.loc[variable, feature], statistic), (variable, feature)
            assert close(result.p.loc[variable, feature], p), (variable, feature)
            checked += 1
    assert checked == 16
    assert result.test.to_dict() == {
        "size": tests["correlation"],
        "grade": tests["correlation"],
        "spiculated": tests["binary"],
        "attenuation": tests["categorical"],
        "rare": tests["correlation"],
        "lopsided": tests["binary"],
    }


def test_nan_rules_and_counts(cohort):
    values, features = cohort
    result = associate(values, features, TYPES)
    assert result.p.loc["constant"].isna().all()
    assert result.statistic.loc["constant"].isna().all()
    assert result.p["rare"].isna().all()  # 8 patients < min_n
    assert result.p["lopsided"].isna().all()  # group B has 2 < min_group patients
    assert result.p.drop(index="constant", columns=["rare", "lopsided"]).notna().all().all()
    n = result.n.to_dict()
    assert n["size"] == 61 and n["grade"] == 64 and n["spiculated"] == 62
    assert n["attenuation"] == 64 - 3 - 2  # NaN and the 2 "cavitary" patients left out
    assert result.n_pairs is None
    notes = " ".join(result.notes)
    assert "'rare': 8 patients < min_n=10" in notes
    assert "'lopsided': fewer than 2 groups" in notes and "B: 2" in notes
    assert "'attenuation': groups with < 3 patients left out (cavitary: 2)" in notes
    relaxed = associate(values, features[["rare"]], TYPES, min_n=8)
    assert relaxed.p["rare"].drop("constant").notna().all()


def test_features_are_checked_on_each_missing_pattern_of_the_values():
    """A feature constant among the patients one variable has, but not among everyone's, is
    untested for that variable only; the others are tested and the counts are everyone's."""
    rng = np.random.default_rng(11)
    n = 30
    patients = [f"P{i}" for i in range(n)]
    values = pd.DataFrame(rng.standard_normal((n, 3)), index=patients, columns=["a", "b", "c"])
    values.loc["P0", "a"] = np.nan  # "a" lacks the only patient where "almost_flat" differs
    values.loc["P1", "c"] = np.nan
    features = pd.DataFrame(
        {"almost_flat": np.where(np.arange(n) == 0, 5.0, 1.0), "size": rng.gamma(2, 10, n)},
        index=patients,
    )
    features.loc["P2", "size"] = np.nan
    types = {"almost_flat": "continuous", "size": "continuous"}
    for test in ("spearman", "pearson"):
        result = associate(values, features, types, continuous=test, min_n=5)
        reference = stats.spearmanr if test == "spearman" else stats.pearsonr
        assert np.isnan(result.p.loc["a", "almost_flat"])
        for variable in ("b", "c"):
            kept = values[variable].notna()
            expected = reference(values.loc[kept, variable], features.loc[kept, "almost_flat"])
            assert close(result.p.loc[variable, "almost_flat"], expected[1])
        for variable in ("a", "b", "c"):
            kept = values[variable].notna() & features["size"].notna()
            expected = reference(values.loc[kept, variable], features.loc[kept, "size"])
            assert close(result.statistic.loc[variable, "size"], expected[0])
            assert result.n_pairs.loc[variable, "size"] == kept.sum()
        assert result.n.to_dict() == {"almost_flat": n, "size": n - 1}
        assert not any("constant" in note for note in result.notes)


def test_nullable_integer_features_read_as_numbers(cohort):
    values, features = cohort
    plain = associate(values, features[["size"]], TYPES)
    rounded = features[["size"]].round().astype("Int64")  # pandas' nullable integers (pd.NA)
    as_float = associate(values, rounded.astype(float), TYPES)
    nullable = associate(values, rounded, TYPES)
    pd.testing.assert_frame_equal(nullable.p, as_float.p)
    assert nullable.n.to_dict() == plain.n.to_dict()


def test_effects_and_contrast(cohort):
    values, features = cohort
    features = features.loc[values.index]
    welch = associate(values, features, TYPES)
    mwu = associate(values, features, TYPES, binary="mannwhitney", categorical="anova")
    assert welch.contrast["spiculated"] == "yes vs no"
    assert welch.contrast["size"] == "" and welch.contrast["attenuation"] == ""
    present = features["spiculated"].notna()
    for variable in ["normal", "counts"]:
        y = values.loc[present, variable].to_numpy()
        b = (features.loc[present, "spiculated"] == "yes").to_numpy()
        ya, yb = y[~b], y[b]
        na, nb = len(ya), len(yb)
        pooled = np.sqrt(((na - 1) * ya.var(ddof=1) + (nb - 1) * yb.var(ddof=1)) / (na + nb - 2))
        hedges = (1 - 3 / (4 * (na + nb) - 9)) * (yb.mean() - ya.mean()) / pooled
        assert close(welch.effect.loc[variable, "spiculated"], hedges)
        diff = yb[:, None] - ya[None, :]
        rank_biserial = ((diff > 0).sum() - (diff < 0).sum()) / (na * nb)
        assert close(mwu.effect.loc[variable, "spiculated"], rank_biserial)
        assert close(welch.effect.loc[variable, "size"], welch.statistic.loc[variable, "size"])
        h = welch.statistic.loc[variable, "attenuation"]
        assert close(welch.effect.loc[variable, "attenuation"], h / (welch.n["attenuation"] - 1))
        kept = features["attenuation"].isin(["solid", "part-solid", "ground-glass"])
        y = values.loc[kept, variable]
        groups = features.loc[kept, "attenuation"].astype(str)
        between = (y.groupby(groups).transform("mean") - y.mean()).pow(2).sum()
        eta2 = between / ((y - y.mean()) ** 2).sum()
        assert close(mwu.effect.loc[variable, "attenuation"], eta2)
    # flipping the category order flips the contrast and the sign of every binary effect
    flipped = features.copy()
    flipped["spiculated"] = flipped["spiculated"].cat.reorder_categories(["yes", "no"])
    again = associate(values, flipped, TYPES)
    assert again.contrast["spiculated"] == "no vs yes"
    pair = again.effect["spiculated"].drop("constant")
    np.testing.assert_allclose(pair, -welch.effect["spiculated"].drop("constant"), rtol=RTOL)


def test_constant_feature_and_collinear_covariate(cohort):
    values, features = cohort
    flat = pd.DataFrame({"flat": 3.0, "size": features["size"]}, index=features.index)
    result = associate(values, flat, {"flat": "continuous", "size": "continuous"})
    assert result.p["flat"].isna().all()
    assert result.p["size"].drop("constant").notna().all()
    assert any("'flat' is constant" in note for note in result.notes)
    # a covariate collinear with the feature (its ranks for partial Spearman) leaves nothing
    same = features.loc[values.index, "size"].rank()  # the ranks among the patients tested
    covariates = pd.DataFrame({"same": same})
    adjusted = associate(values, flat[["size"]], {"size": "continuous"}, covariates=covariates)
    assert adjusted.p["size"].isna().all()
    covariates = pd.DataFrame({"same": 2 * features["size"] + 1}, index=features.index)
    adjusted = associate(
        values, flat[["size"]], {"size": "continuous"}, covariates=covariates, continuous="pearson"
    )
    assert adjusted.p["size"].isna().all()


def test_numeric_and_boolean_group_features(cohort):
    values, features = cohort
    features = features.loc[values.index]
    numeric = pd.DataFrame(
        {
            "flag": (features["spiculated"] == "yes")
            .astype(float)
            .where(features["spiculated"].notna()),
            "label": features["attenuation"].astype(object),
        }
    )
    result = associate(values, numeric, {"flag": "binary", "label": "categorical"})
    expected = associate(values, features, TYPES)
    assert result.contrast["flag"] == "1 vs 0"
    np.testing.assert_allclose(result.p["flag"], expected.p["spiculated"], rtol=RTOL)
    np.testing.assert_allclose(result.p["label"], expected.p["attenuation"], rtol=RTOL)


def test_missing_values_grouped_by_pattern(cohort):
    values, features = cohort
    values = values.copy()
    values.iloc[[0, 4, 9], 0] = np.nan  # "normal"
    values.iloc[[0, 4, 9], 1] = np.nan  # "rounded": same pattern
    values.iloc[[20, 21], 3] = np.nan  # "skewed": another pattern
    for options in ({}, {"continuous": "pearson", "binary": "mannwhitney", "categorical": "anova"}):
        result = associate(values, features, TYPES, **options)
        tests = {
            "correlation": options.get("continuous", "spearman"),
            "binary": options.get("binary", "welch"),
            "categorical": options.get("categorical", "kruskal"),
        }
        for variable in ["normal", "rounded", "counts", "skewed"]:
            for feature, kind in KIND.items():
                x = features.loc[values.index, feature]
                statistic, p = reference(values[variable], x, kind, tests[kind])
                assert close(result.statistic.loc[variable, feature], statistic)
                assert close(result.p.loc[variable, feature], p)
        assert result.n_pairs is not None
        assert result.n_pairs.loc["normal", "grade"] == 61
        assert result.n_pairs.loc["skewed", "grade"] == 62
        assert result.n_pairs.loc["counts", "grade"] == 64
    table = tidy(result, variable_name="gene")
    assert table.set_index(["gene", "feature"]).loc[("normal", "grade"), "n"] == 61


@pytest.mark.parametrize("block", [4096, 7])
def test_row_ranker_matches_rankdata(monkeypatch, block):
    monkeypatch.setattr(associate_module, "_RANK_BLOCK", block)
    rng = np.random.default_rng(3)
    data = np.round(rng.standard_normal((40, 30)), 1)
    data[5] = 1.0
    data[6, :15] = 0.0
    data[30:] = rng.standard_normal((10, 30))  # rows without ties
    ranker = _RowRanker(data)
    assert len(ranker.blocks) == -(-40 // block)
    for keep in [np.ones(30, bool), *(rng.random(30) < 0.6 for _ in range(5))]:
        ranks, sumsq = ranker.all_ranks(keep)
        expected = stats.rankdata(data[:, keep], axis=1)
        np.testing.assert_array_equal(ranks[:, keep], expected)
        np.testing.assert_array_equal(sumsq, (expected**2).sum(axis=1))
        assert np.isfinite(ranks).all()


def test_blocks_and_threads_do_not_change_results(cohort, monkeypatch):
    values, features = cohort
    expected = associate(values, features, TYPES, binary="mannwhitney")
    monkeypatch.setattr(associate_module, "_ROW_BLOCK", 2)
    monkeypatch.setattr(associate_module, "_RANK_BLOCK", 3)
    monkeypatch.setattr(associate_module, "_THREADS", 1)
    result = associate(values, features, TYPES, binary="mannwhitney")
    pd.testing.assert_frame_equal(result.p, expected.p, rtol=RTOL)
    pd.testing.assert_frame_equal(result.statistic, expected.statistic, rtol=RTOL)


def test_bh_matches_statsmodels_and_keeps_nan():
    rng = np.random.default_rng(11)
    p = rng.uniform(size=(30, 7)) ** 3
    p[rng.random(p.shape) < 0.2] = np.nan
    q = bh(p)
    tested = ~np.isnan(p)
    expected = multipletests(p[tested], method="fdr_bh")[1]
    np.testing.assert_allclose(q[tested], expected, rtol=RTOL)
    assert np.isnan(q[~tested]).all()
    assert q.shape == p.shape
    assert np.isnan(bh([np.nan, np.nan])).all()
    assert bh([]).shape == (0,)


def test_q_scopes_and_tidy(cohort):
    values, features = cohort
    result = associate(values, features, TYPES)
    p = result.p.to_numpy()
    np.testing.assert_allclose(result.q("all").to_numpy(), bh(p), rtol=RTOL)
    per_feature = result.q("per_feature")
    for j, feature in enumerate(result.p.columns):
        np.testing.assert_allclose(per_feature[feature].to_numpy(), bh(p[:, j]), rtol=RTOL)
    with pytest.raises(InputError):
        result.q("per_gene")

    table = tidy(result, variable_name="module", q_scope="per_feature")
    assert list(table.columns) == [
        "module",
        "feature",
        "test",
        "statistic",
        "effect",
        "effect_measure",
        "p",
        "q",
        "n",
    ]
    assert len(table) == p.size
    measures = table.drop_duplicates("feature").set_index("feature")["effect_measure"]
    assert measures.to_dict() == {
        "size": "rho",
        "grade": "rho",
        "spiculated": "hedges_g",
        "attenuation": "epsilon_squared",
        "rare": "rho",
        "lopsided": "hedges_g",
    }
    row = table.set_index(["module", "feature"]).loc[("counts", "spiculated")]
    assert close(row["p"], result.p.loc["counts", "spiculated"])
    assert close(row["q"], per_feature.loc["counts", "spiculated"])
    assert row["test"] == "welch" and row["n"] == 62
    assert table.loc[table["p"].isna(), "q"].isna().all()
    assert table["p"].isna().sum() == result.p.isna().sum().sum()


def test_input_errors(cohort):
    values, features = cohort
    with pytest.raises(InputError, match="share no patient"):
        associate(values, features.set_axis([f"X{i}" for i in range(len(features))]), TYPES)
    with pytest.raises(InputError, match="'size' has no type"):
        associate(values, features, {k: v for k, v in TYPES.items() if k != "size"})
    with pytest.raises(InputError, match="nominal"):
        associate(values, features, {**TYPES, "size": "nominal"})
    with pytest.raises(InputError, match="3 levels"):
        associate(values, features, {**TYPES, "grade": "binary"})
    with pytest.raises(InputError, match="not numeric"):
        associate(values.assign(label="x"), features, TYPES)
    with pytest.raises(InputError, match="continuous"):
        associate(values, features, TYPES, continuous="kendall")
    with pytest.raises(InputError, match="non-numeric"):
        associate(values, features.assign(size="big"), TYPES)
    with pytest.raises(InputError, match="appears twice"):
        associate(values, pd.concat([features, features[["size"]]], axis=1), TYPES)


# --------------------------------------------------------------------------------------------
# Covariate adjustment
# --------------------------------------------------------------------------------------------


@pytest.fixture
def adjusted_case():
    rng = np.random.default_rng(21)
    n = 80
    patients = [f"P{i}" for i in range(n)]
    age = rng.normal(65, 8, n)
    stage = rng.choice(["I", "II", "III"], n)
    covariates = pd.DataFrame({"age": age, "stage": pd.Categorical(stage)}, index=patients)
    covariates.iloc[4, 0] = np.nan
    x = rng.standard_normal(n) + 0.05 * age
    group = rng.choice(["wt", "mut"], n)
    category = rng.choice(["a", "b", "c"], n)
    features = pd.DataFrame(
        {
            "x": x,
            "mutation": pd.Categorical(group, categories=["wt", "mut"]),
            "pattern": pd.Categorical(category),
        },
        index=patients,
    )
    features.iloc[7, 0] = np.nan
    features.iloc[9, 1] = np.nan
    values = pd.DataFrame(
        {
            "m1": 0.3 * x + 0.02 * age + (group == "mut") + rng.standard_normal(n),
            "m2": np.round(rng.standard_normal(n) + (stage == "III"), 1),
        },
        index=patients,
    )
    types = {"x": "continuous", "mutation": "binary", "pattern": "categorical"}
    return values, features, types, covariates


def _design(covariates: pd.DataFrame, rows: pd.Index) -> pd.DataFrame:
    design = pd.get_dummies(covariates.loc[rows], drop_first=True, dtype=float)
    return sm.add_constant(design, has_constant="add")


def test_ols_matches_statsmodels(adjusted_case):
    values, features, types, covariates = adjusted_case
    values = values.copy()
    values.iloc[[11, 12], 1] = np.nan  # m2: its own set of patients
    result = associate(values, features, types, covariates=covariates)
    assert result.test.to_dict() == {"x": "partial_spearman", "mutation": "ols", "pattern": "ols"}
    complete = covariates.notna().all(axis=1)
    for variable in values:
        # binary: t of the feature coefficient
        present = complete & values[variable].notna()
        rows = features.index[features["mutation"].notna() & present]
        design = _design(covariates, rows)
        design.insert(1, "mut", (features.loc[rows, "mutation"] == "mut").astype(float))
        fit = sm.OLS(values.loc[rows, variable], design).fit()
        assert close(result.statistic.loc[variable, "mutation"], fit.tvalues["mut"])
        assert close(result.p.loc[variable, "mutation"], fit.pvalues["mut"])
        effect = fit.params["mut"] / np.sqrt(fit.scale)
        assert close(result.effect.loc[variable, "mutation"], effect)
        assert result.n_pairs.loc[variable, "mutation"] == len(rows)
        # categorical: F test of the dummy block
        rows = features.index[present]
        reduced_design = _design(covariates, rows)
        dummies = pd.get_dummies(features.loc[rows, "pattern"], drop_first=True, dtype=float)
        full = sm.OLS(values.loc[rows, variable], pd.concat([reduced_design, dummies], axis=1))
        full = full.fit()
        reduced = sm.OLS(values.loc[rows, variable], reduced_design).fit()
        f, p, _ = full.compare_f_test(reduced)
        assert close(result.statistic.loc[variable, "pattern"], f)
        assert close(result.p.loc[variable, "pattern"], p)
        partial_eta2 = (reduced.ssr - full.ssr) / reduced.ssr
        assert close(result.effect.loc[variable, "pattern"], partial_eta2)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_partial_correlation_by_hand(adjusted_case, method):
    values, features, types, covariates = adjusted_case
    result = associate(values, features, types, covariates=covariates, continuous=method)
    rows = features.index[features["x"].notna() & covariates.notna().all(axis=1)]
    design = _design(covariates, rows)
    k = design.shape[1] - 1
    transform = stats.rankdata if method == "spearman" else np.asarray
    x_residual = sm.OLS(transform(features.loc[rows, "x"]), design).fit().resid
    for variable in values:
        y_residual = sm.OLS(transform(values.loc[rows, variable]), design).fit().resid
        r = np.corrcoef(x_residual, y_residual)[0, 1]
        df = len(rows) - 2 - k
        p = 2 * stats.t.sf(abs(r) * np.sqrt(df / (1 - r**2)), df)
        assert close(result.statistic.loc[variable, "x"], r)
        assert close(result.p.loc[variable, "x"], p)
        if method == "pearson":  # = OLS t of x given the covariates
            design_x = design.assign(x=features.loc[rows, "x"])
            fit = sm.OLS(values.loc[rows, variable], design_x).fit()
            assert close(result.p.loc[variable, "x"], fit.pvalues["x"])
    assert result.test["x"] == f"partial_{method}"


# --------------------------------------------------------------------------------------------
# Contingency tests
# --------------------------------------------------------------------------------------------


def test_associate_categorical_matches_scipy():
    rng = np.random.default_rng(5)
    n = 70
    index = [f"P{i}" for i in range(n)]
    egfr = rng.choice(["Wildtype", "Mutant"], n, p=[0.7, 0.3])
    attenuation = np.where(
        egfr == "Mutant",
        rng.choice(["ground-glass", "part-solid", "solid"], n, p=[0.5, 0.3, 0.2]),
        rng.choice(["ground-glass", "part-solid", "solid"], n, p=[0.1, 0.2, 0.7]),
    )
    left = pd.DataFrame(
        {"EGFR": pd.Categorical(egfr, categories=["Wildtype", "Mutant"]), "KRAS": "Wildtype"},
        index=index,
    )
    left.iloc[:4, 0] = np.nan
    right = pd.DataFrame(
        {
            "Nodule Attenuation": pd.Categorical(attenuation),
            "Spiculation": rng.choice(["yes", "no"], n),
        },
        index=index,
    ).iloc[::-1]
    table = associate_categorical(left, right).set_index(["left", "right"])
    assert list(table.reset_index().columns) == [
        "left", "right", "test", "statistic", "effect", "effect_measure", "p", "q", "n",
    ]  # fmt: skip
    assert set(table["effect_measure"]) == {"cramers_v"}
    for right_name in right:
        both = left["EGFR"].notna()
        counts = pd.crosstab(left.loc[both, "EGFR"], right.loc[left.index[both], right_name])
        row = table.loc[("EGFR", right_name)]
        if counts.shape == (2, 2):
            expected = stats.fisher_exact(counts.to_numpy())
            assert row["test"] == "fisher"
        else:
            expected = stats.chi2_contingency(counts.to_numpy(), correction=False)
            sparse = associate_module.sparse_table(counts.to_numpy())
            assert row["test"] == ("chi2_monte_carlo" if sparse else "chi2")
        assert close(row["statistic"], expected.statistic)
        if row["test"] != "chi2_monte_carlo":
            assert close(row["p"], expected.pvalue)
        cramer = stats.contingency.association(counts.to_numpy(), method="cramer")
        assert close(row["effect"], cramer)
        assert row["n"] == 66
    assert table.loc[("EGFR", "Nodule Attenuation"), "p"] < 0.01
    assert table.loc[("KRAS", "Spiculation"), ["statistic", "p", "q"]].isna().all()
    np.testing.assert_allclose(table["q"], bh(table["p"].to_numpy()), rtol=RTOL)
    with pytest.raises(InputError, match="share no patient"):
        associate_categorical(left, right.set_axis([f"X{i}" for i in range(n)]))


def test_associate_categorical_leaves_out_small_levels_and_says_which():
    index = [f"P{i}" for i in range(40)]
    status = pd.DataFrame({"EGFR": ["Mutant"] * 12 + ["Wildtype"] * 28}, index=index)
    shape = ["round"] * 3 + ["oval"] * 20 + ["lobulated"] * 14 + [None] * 3
    features = pd.DataFrame(
        {"shape": pd.Categorical(shape, categories=["round", "oval", "lobulated", "unused"])},
        index=index,
    )
    notes: list[str] = []
    table = associate_categorical(status, features, min_group=5, notes=notes)
    assert notes == ["EGFR x shape: levels with < 5 patients left out (round (3))"]
    kept = features["shape"].isin(["oval", "lobulated"])
    counts = pd.crosstab(status.loc[kept, "EGFR"], features.loc[kept, "shape"].astype(str))
    row = table.iloc[0]
    assert row["n"] == kept.sum() == 34 and row["test"] == "fisher"
    assert close(row["p"], stats.fisher_exact(counts.to_numpy()).pvalue)


# --------------------------------------------------------------------------------------------
# Planted signal
# --------------------------------------------------------------------------------------------


def test_planted_signal_recovered_and_null_calibrated():
    rng = np.random.default_rng(2024)
    n, n_variables = 150, 300
    index = [f"P{i}" for i in range(n)]
    features = {}
    types = {}
    for j in range(12):
        features[f"c{j}"] = rng.standard_normal(n)
        types[f"c{j}"] = "continuous"
    for j in range(6):
        features[f"b{j}"] = pd.Categorical(rng.choice(["A", "B"], n), categories=["A", "B"])
        types[f"b{j}"] = "binary"
    for j in range(6):
        features[f"k{j}"] = pd.Categorical(rng.choice(["u", "v", "w"], n))
        types[f"k{j}"] = "categorical"
    features = pd.DataFrame(features, index=index)
    for column in ("c3", "b2", "k4"):
        features.loc[features.sample(frac=0.1, random_state=1).index, column] = np.nan
    values = pd.DataFrame(
        rng.standard_normal((n, n_variables)),
        index=index,
        columns=[f"v{i}" for i in range(n_variables)],
    )
    planted = {("v0", "c0"), ("v1", "c3"), ("v2", "b0"), ("v3", "b2"), ("v4", "k0"), ("v5", "k4")}
    for variable, feature in planted:
        x = features[feature]
        if types[feature] == "continuous":
            signal = x.fillna(0)
        elif types[feature] == "binary":
            signal = (x == "B").astype(float)
        else:
            signal = x.map({"u": -1.0, "v": 0.0, "w": 1.0}).astype(float).fillna(0)
        values[variable] += 1.2 * signal

    for options in ({}, {"continuous": "pearson", "binary": "mannwhitney", "categorical": "anova"}):
        result = associate(values, features, types, **options)
        q = result.q("all")
        hits = {(v, f) for v, f in zip(*np.nonzero(q.to_numpy() < 0.05))}
        hits = {(q.index[v], q.columns[f]) for v, f in hits}
        assert hits == planted
        null = result.p.to_numpy().copy()
        for variable, feature in planted:
            null[values.columns.get_loc(variable), features.columns.get_loc(feature)] = np.nan
        null = null[~np.isnan(null)]
        assert len(null) == n_variables * features.shape[1] - len(planted)
        assert 0.035 < (null < 0.05).mean() < 0.065
        assert 0.005 < (null < 0.01).mean() < 0.017


def test_associations_dataclass_fields():
    fields = set(Associations.__dataclass_fields__)
    assert {"statistic", "effect", "p", "n", "test", "contrast"} <= fields


def test_welch_tail_is_too_liberal_with_a_small_group_student_is_not():
    """Why the pipeline uses Student's t: under the null of no link the two groups are
    exchangeable, and with 4 vs 36 patients Welch's p falls below 1e-3 far too often."""
    rng = np.random.default_rng(0)
    n, n_genes = 40, 40_000
    values = pd.DataFrame(rng.standard_normal((n, n_genes)))
    feature = pd.DataFrame({"f": pd.Categorical(np.r_[np.ones(4), np.zeros(n - 4)].astype(int))})
    rates = {}
    for test in ("welch", "student"):
        p = associate(values, feature, {"f": "binary"}, binary=test).p["f"].to_numpy()
        rates[test] = (p < 1e-3).mean() / 1e-3
    assert rates["welch"] > 3
    assert 0.6 < rates["student"] < 1.5


def test_rank_tests_across_row_blocks_match_scipy_with_feature_missing_patterns():
    """Many variables (several rank blocks), ties at zero, and each feature missing its own
    patients: every pair equals scipy on its complete cases."""
    rng = np.random.default_rng(21)
    n, n_variables = 48, 2 * associate_module._RANK_BLOCK + 9
    counts = rng.poisson(0.8, (n, n_variables)).astype(float)
    values = pd.DataFrame(np.log2(counts + 1), columns=[f"g{j}" for j in range(n_variables)])
    features = pd.DataFrame(
        {
            "a": rng.standard_normal(n),
            "b": np.round(rng.standard_normal(n)),
            "c": pd.Categorical(rng.choice(["x", "y", "z"], n)),
            "d": pd.Categorical(rng.choice(["no", "yes"], n)),
        }
    )
    for name in features:
        features.loc[rng.random(n) < 0.15, name] = np.nan
    types = {"a": "continuous", "b": "continuous", "c": "categorical", "d": "binary"}
    result = associate(values, features, types, binary="mannwhitney", min_group=1)
    for j in rng.choice(n_variables, 25, replace=False):
        y = values.iloc[:, j].to_numpy()
        for name in features:
            x = features[name]
            kept = x.notna().to_numpy()
            if types[name] == "continuous":
                expected = stats.spearmanr(x[kept].to_numpy(float), y[kept])
            elif types[name] == "binary":
                expected = stats.mannwhitneyu(
                    y[(x == "yes").to_numpy()], y[(x == "no").to_numpy()], method="asymptotic"
                )
            else:
                expected = stats.kruskal(*[y[(x == level).to_numpy()] for level in "xyz"])
            assert close(
                result.statistic.iat[j, features.columns.get_loc(name)], expected.statistic
            )
            assert close(result.p.iat[j, features.columns.get_loc(name)], expected.pvalue)


@pytest.mark.parametrize("test", ["spearman", "pearson"])
@pytest.mark.parametrize("cells", [1, 40, 10**9])
def test_continuous_features_finished_together_match_scipy_one_by_one(monkeypatch, test, cells):
    """Continuous features sharing their patients are finished as blocks of columns (one
    feature per block, a few, or all at once): each pair still equals scipy on its complete
    cases, with each feature's own scale and missing patients."""
    monkeypatch.setattr(associate_module, "_FINISH_CELLS", cells)
    rng = np.random.default_rng(5)
    n, n_variables, n_features = 40, 6, 9
    values = pd.DataFrame(rng.standard_normal((n, n_variables)), columns=list("uvwxyz"))
    values.iloc[:3, 1] = np.nan  # a variable with missing patients of its own
    features = pd.DataFrame(
        rng.standard_normal((n, n_features)) * np.arange(1, n_features + 1) ** 2,
        columns=[f"f{k}" for k in range(n_features)],
    )
    features.iloc[rng.random(n) < 0.2, [2, 5]] = np.nan  # two features share missing patients
    features.iloc[:4, 7] = np.nan
    features["f8"] = features["f8"].round()  # ties
    types = dict.fromkeys(features, "continuous")
    result = associate(values, features, types, continuous=test)
    reference_test = stats.spearmanr if test == "spearman" else stats.pearsonr
    for variable in values:
        for feature in features:
            kept = (values[variable].notna() & features[feature].notna()).to_numpy()
            expected = reference_test(
                features[feature].to_numpy()[kept], values[variable].to_numpy()[kept]
            )
            assert close(result.statistic.loc[variable, feature], expected.statistic)
            assert close(result.p.loc[variable, feature], expected.pvalue)
            assert result.effect.loc[variable, feature] == result.statistic.loc[variable, feature]


@pytest.mark.parametrize("continuous", ["spearman", "pearson"])
def test_no_variables_give_empty_tables(cohort, continuous):
    values, features = cohort
    result = associate(values.iloc[:, :0], features, TYPES, continuous=continuous)
    assert result.p.shape == (0, features.shape[1])
    assert list(result.p.columns) == list(features.columns)
