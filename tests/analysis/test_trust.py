"""Size check and leave-one-out influence (radmap.analysis.trust)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import trust
from radmap.analysis.associate import associate
from radmap.analysis.datasets import SIZE_FEATURE, synthetic
from radmap.analysis.validate import InputError
from scipy import stats


@pytest.fixture(scope="module")
def cohort():
    return synthetic(
        n_patients=150, n_genes=300, n_features=25, n_modules=4, module_size=20, size_driven=True
    )


def test_size_driven_link_is_flagged_and_planted_links_are_not(cohort):
    values = cohort.truth["latent"]
    name = trust.find_size_feature(cohort.imaging)
    assert name == SIZE_FEATURE
    table = trust.size_check(values, cohort.imaging, cohort.feature_types, cohort.imaging[name])
    keyed = table.set_index(["module", "feature"])
    link = cohort.truth["size_link"]
    assert keyed.loc[(link["module"], link["feature"]), "size_surrogate"]
    planted = list(zip(cohort.truth["links"]["module"], cohort.truth["links"]["feature"]))
    assert not keyed.loc[planted, "size_surrogate"].any()
    assert (keyed.loc[planted, "q_size_adjusted"] < 0.05).sum() >= 3
    assert table["size_surrogate"].sum() <= 2
    baseline = table[table["is_size_feature"]]
    assert len(baseline) == values.shape[1] and not baseline["size_surrogate"].any()


def test_size_check_uses_a_given_map_and_rejects_a_bad_size_column(cohort):
    values = cohort.truth["latent"]
    q = associate(values, cohort.imaging, cohort.feature_types).q()
    size = cohort.imaging[SIZE_FEATURE]
    table = trust.size_check(values, cohort.imaging, cohort.feature_types, size, q=q)
    link = cohort.truth["size_link"]
    assert table.set_index(["module", "feature"]).loc[
        (link["module"], link["feature"]), "size_surrogate"
    ]
    with pytest.raises(InputError, match="size feature"):
        trust.find_size_feature(cohort.imaging, "tumour_size")
    with pytest.raises(InputError, match="numeric values"):
        trust.size_check(
            values, cohort.imaging, cohort.feature_types, pd.Series("big", index=values.index)
        )


def _single_patient_artefact(n: int = 116, seed: int = 0):
    rng = np.random.default_rng(seed)
    index = pd.Index([f"P{i:03d}" for i in range(n)])
    values = pd.DataFrame(rng.standard_normal((n, 3)), index=index, columns=["m1", "m2", "m3"])
    x = rng.standard_normal(n)
    x[0] = 60.0
    values.iloc[0, 0] = 12.0
    features = pd.DataFrame({"texture": x}, index=index)
    return values, features, {"texture": "continuous"}


def test_single_patient_artefact_is_flagged_under_pearson_not_spearman():
    values, features, types = _single_patient_artefact()
    pearson = associate(values, features, types, continuous="pearson")
    assert pearson.q().loc["m1", "texture"] < 0.05
    table = trust.influence(values, features, types, pearson.test.to_dict(), q=pearson.q())
    row = table.set_index(["module", "feature"]).loc[("m1", "texture")]
    assert row["one_patient"]
    assert row["influential_patient"] == "P000"
    assert row["influence"] > 0.4
    spearman = associate(values, features, types)
    ranked = trust.influence(values, features, types, spearman.test.to_dict(), q=spearman.q())
    assert not ranked["one_patient"].any()


def test_leave_one_out_matches_scipy_refits():
    rng = np.random.default_rng(2)
    n = 30
    index = pd.Index([f"P{i}" for i in range(n)])
    values = pd.DataFrame(rng.standard_normal((n, 2)), index=index, columns=["a", "b"])
    features = pd.DataFrame(
        {
            "texture": rng.normal(size=n),
            "flag": pd.Categorical(rng.choice(["no", "yes"], n)),
            "shape": pd.Categorical(rng.choice(["r", "l", "i"], n)),
        },
        index=index,
    )
    features.iloc[4, 0] = np.nan
    types = {"texture": "continuous", "flag": "binary", "shape": "categorical"}
    tests = {"texture": "pearson", "flag": "welch", "shape": "anova"}
    table = trust.influence(values, features, types, tests).set_index(["module", "feature"])
    for module in values.columns:
        y = values[module]
        for feature in features.columns:
            row = table.loc[(module, feature)]
            drop = index != row["influential_patient"]
            yy, xx = y[drop], features.loc[drop, feature]
            if feature == "texture":
                used = xx.notna()
                ref_effect = stats.pearsonr(yy[used], xx[used]).statistic
                full = stats.pearsonr(y[features[feature].notna()], features[feature].dropna())
                ref_change = abs(ref_effect - full.statistic)
            elif feature == "flag":
                a, b = yy[xx == "no"], yy[xx == "yes"]
                ref_effect = None
                ref_p = stats.ttest_ind(b, a, equal_var=False).pvalue
                assert row["p_without"] >= ref_p - 1e-12
                continue
            else:
                groups = [yy[xx == level] for level in ("i", "l", "r")]
                ref_p = stats.f_oneway(*groups).pvalue
                assert row["p_without"] >= ref_p - 1e-12
                continue
            assert row["effect_without"] == pytest.approx(ref_effect, rel=1e-9)
            assert row["influence"] == pytest.approx(ref_change, rel=1e-9)
    # The largest p without one patient is the max over explicit refits.
    y = values["a"]
    worst = max(
        stats.ttest_ind(
            y.drop(i)[features["flag"].drop(i) == "yes"],
            y.drop(i)[features["flag"].drop(i) == "no"],
            equal_var=False,
        ).pvalue
        for i in index
    )
    assert table.loc[("a", "flag"), "p_without"] == pytest.approx(worst, rel=1e-9)
    worst_anova = max(
        stats.f_oneway(
            *[y.drop(i)[features["shape"].drop(i) == level] for level in ("i", "l", "r")]
        ).pvalue
        for i in index
    )
    assert table.loc[("a", "shape"), "p_without"] == pytest.approx(worst_anova, rel=1e-9)


def test_flags_join_both_checks(cohort):
    values = cohort.truth["latent"]
    size = trust.size_check(
        values, cohort.imaging, cohort.feature_types, cohort.imaging[SIZE_FEATURE]
    )
    loo = trust.influence(values, cohort.imaging, cohort.feature_types, {})
    joined = trust.flags(size, loo)
    link = cohort.truth["size_link"]
    assert trust.SIZE_SURROGATE in joined.loc[(link["module"], link["feature"])]
    assert len(joined) == len(size)


def test_link_made_by_the_scanner_is_flagged_as_acquisition_confounded(cohort):
    rng = np.random.default_rng(9)
    values = cohort.truth["latent"]
    index = values.index
    scanner_b = values["planted_2"].to_numpy() + 0.5 * rng.standard_normal(len(index)) > 0
    scanner = pd.Series(np.where(scanner_b, "B", "A"), index=index, name="scanner")
    imaging = cohort.imaging.copy()
    imaging["scanner_texture"] = 2.0 * scanner_b + rng.standard_normal(len(index))
    types = cohort.feature_types | {"scanner_texture": "continuous"}
    table = trust.acquisition_check(
        values, imaging, types, scanner.astype("category").to_frame()
    ).set_index(["module", "feature"])
    assert table.loc[("planted_2", "scanner_texture"), "acquisition_confounded"]
    planted = list(zip(cohort.truth["links"]["module"], cohort.truth["links"]["feature"]))
    assert not table.loc[planted, "acquisition_confounded"].any()
    assert table["acquisition_confounded"].sum() <= 2
    joined = trust.flags(table.reset_index())
    assert joined.loc[("planted_2", "scanner_texture")] == trust.ACQUISITION


def test_adjusted_q_is_within_the_map_families(cohort):
    values = cohort.truth["latent"]
    families = dict(cohort.feature_sources)
    families[SIZE_FEATURE] = "radiomic"
    table = trust.size_check(
        values,
        cohort.imaging,
        cohort.feature_types,
        cohort.imaging[SIZE_FEATURE],
        families=families,
    )
    for label in ("semantic", "radiomic"):
        part = table[table["feature"].map(families) == label]
        tested = part["p_size_adjusted"].notna()
        expected = stats.false_discovery_control(part.loc[tested, "p_size_adjusted"])
        np.testing.assert_allclose(part.loc[tested, "q_size_adjusted"], expected, rtol=1e-12)


@pytest.mark.parametrize("test", ["student", "welch", "mannwhitney"])
def test_binary_influence_uses_the_links_own_test(test):
    """The leave-one-out p of a binary link comes from the test its map row used (Student's
    t by default), checked against scipy refits without each patient."""
    rng = np.random.default_rng(7)
    n = 24
    index = pd.Index([f"P{i}" for i in range(n)])
    flag = np.array(["no"] * 8 + ["yes"] * 16)
    # Unequal spreads make Student and Welch differ; rounding makes ties for Mann–Whitney.
    y = np.where(flag == "yes", rng.normal(0.8, 2.0, n), rng.normal(0.0, 0.5, n)).round(1)
    values = pd.DataFrame({"a": y}, index=index)
    features = pd.DataFrame({"flag": pd.Categorical(flag)}, index=index)
    table = trust.influence(values, features, {"flag": "binary"}, {"flag": test}).set_index(
        ["module", "feature"]
    )
    row = table.loc[("a", "flag")]
    series = pd.Series(y, index=index)

    def refit(keep):
        a, b = series[keep & (flag == "no")], series[keep & (flag == "yes")]
        if test == "mannwhitney":
            result = stats.mannwhitneyu(b, a, method="asymptotic")
            return result.pvalue, 2 * result.statistic / (len(a) * len(b)) - 1
        result = stats.ttest_ind(b, a, equal_var=test == "student")
        pooled = np.sqrt(((len(a) - 1) * a.var() + (len(b) - 1) * b.var()) / (len(a) + len(b) - 2))
        correction = 1 - 3 / (4 * (len(a) + len(b)) - 9)
        return result.pvalue, correction * (b.mean() - a.mean()) / pooled

    everyone = np.ones(n, bool)
    refits = {patient: refit(index != patient) for patient in index}
    worst = max(p for p, _ in refits.values())
    assert row["p_without"] == pytest.approx(worst, rel=1e-9)
    _, full_effect = refit(everyone)
    changes = {patient: abs(effect - full_effect) for patient, (_, effect) in refits.items()}
    assert row["influence"] == pytest.approx(max(changes.values()), rel=1e-9)
    assert row["effect_without"] == pytest.approx(refits[row["influential_patient"]][1], rel=1e-9)
