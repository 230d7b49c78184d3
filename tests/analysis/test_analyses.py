"""The map's analyses: declared families, patients per analysis, power, and calibration on
seeded synthetic full nulls (runs with any discovery near alpha), planted links still found."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import analyses, datasets, power
from radmap.analysis.multitest import across_families, bh
from statsmodels.stats.multitest import multipletests


def _status(clinical: pd.DataFrame) -> pd.DataFrame:
    return clinical[["EGFR", "KRAS"]].apply(
        lambda s: pd.Categorical(
            s.where(s.isin(["Wildtype", "Mutant"])), categories=["Wildtype", "Mutant"]
        )
    )


def _inputs(cohort: datasets.SyntheticCohort):
    """Expression (patients x genes), true-module eigengenes, feature table, mutation status."""
    expression = cohort.expression.T
    z = (expression - expression.mean()) / expression.std()
    truth = cohort.truth["gene_module"]
    eigengenes = pd.DataFrame(
        {
            module: np.linalg.svd(z[truth.index[truth == module]].to_numpy(), full_matrices=False)[
                0
            ][:, 0]
            for module in sorted(set(truth) - {datasets.NO_MODULE})
        },
        index=expression.index,
    )
    features = pd.DataFrame(
        {"type": pd.Series(cohort.feature_types), "source": pd.Series(cohort.feature_sources)}
    )
    return expression, eigengenes, features, _status(cohort.clinical)


@pytest.fixture(scope="module")
def planted():
    cohort = datasets.synthetic(
        n_patients=160, n_genes=150, n_features=20, n_modules=4, module_size=15, seed=11,
        n_imaging_only=60,
    )  # fmt: skip
    return cohort, *_inputs(cohort)


def test_module_map_q_within_declared_families(planted):
    cohort, _, eigengenes, features, _ = planted
    table, assoc = analyses.module_map(eigengenes, cohort.imaging, features, min_group=5)
    assert set(table["family"]) == {"module map: semantic", "module map: radiomic"}
    for _, members in table[table["p"].notna()].groupby("family"):
        np.testing.assert_allclose(members["q"], multipletests(members["p"], method="fdr_bh")[1])
    np.testing.assert_allclose(
        table["q_analysis"], across_families(table["p"], table["family"]), equal_nan=True
    )
    # the module map uses the patients with expression (160), not the 220 with imaging
    assert table["n"].max() <= 160 and table["n"].min() > 140
    measures = table.drop_duplicates("feature").set_index("feature")["effect_measure"]
    assert measures["emphysema"] == "rho" and measures["nodule_shape"] == "epsilon_squared"
    assert measures["spiculation"] == "hedges_g"
    # every planted link is found at the analysis level
    found = table[table["q_analysis"] < 0.05]
    pairs = set(zip(found["module"], found["feature"]))
    for link in cohort.truth["links"].itertuples():
        assert (link.module, link.feature) in pairs
    single = analyses.module_map(eigengenes, cohort.imaging, features, families="analysis")[0]
    np.testing.assert_allclose(single["q"], bh(single["p"]), equal_nan=True)


def test_mutation_imaging_uses_every_patient_with_imaging_and_status(planted):
    cohort, _, _, features, status = planted
    notes: list[str] = []
    table = analyses.mutation_imaging(status, cohort.imaging, features, notes=notes)
    egfr = table[table["mutation"] == "EGFR"].set_index("feature")
    known = status["EGFR"].notna()
    # 220 patients have imaging: the test is not limited to the 160 with expression
    assert egfr.loc["attenuation", "n"] == (known & cohort.imaging["attenuation"].notna()).sum()
    assert egfr.loc["attenuation", "n"] > 160
    assert egfr.loc["attenuation", "test"] == "mannwhitney"  # an ordered scale
    assert egfr.loc["attenuation", "effect_measure"] == "rank_biserial"
    assert egfr.loc["attenuation", "effect"] < 0  # mutants: less solid
    assert egfr.loc["attenuation", "q"] < 0.05
    assert egfr.loc["spiculation", "effect_measure"] == "cramers_v"
    assert set(table["family"]) == {
        f"{m} x imaging: {s}" for m in ("EGFR", "KRAS") for s in ("semantic", "radiomic")
    }
    modules = analyses.mutation_modules(status.loc[cohort.expression.columns], planted[2])
    assert set(modules["family"]) == {"EGFR x module", "KRAS x module"}
    assert modules["n"].max() <= 160


def test_power_summary_reports_the_detectable_effect(planted):
    cohort, _, eigengenes, features, _ = planted
    table, _ = analyses.module_map(eigengenes, cohort.imaging, features)
    used = cohort.imaging.loc[eigengenes.index]  # the patients of the module map
    summary, per_feature = analyses.power_summary("module map", table, features, used)
    row = summary.set_index(["family", "feature_type"]).loc[("module map: radiomic", "continuous")]
    n_tests = int((table["family"] == "module map: radiomic").sum())
    assert row["family_size"] == n_tests and row["measure"] == "rho"
    assert row["detectable_effect"] == pytest.approx(power.correlation(row["n"], n_tests), abs=0.02)
    assert set(per_feature.index) == set(table["feature"])
    assert (per_feature.dropna() > 0).all()


def test_detectable_effects_use_the_groups_present():
    """Binary and categorical features: the sizes of the groups patients are in (missing
    values and unused categories left out), whatever the column's dtype."""
    n = 30
    index = [f"P{i}" for i in range(n)]
    binary = ["yes"] * 12 + ["no"] * 7 + [None] * 11
    grades = ["low"] * 10 + ["mid"] * 8 + ["high"] * 9 + [None] * 3
    imaging = pd.DataFrame(
        {
            "spiculated": pd.Categorical(binary, categories=["no", "yes", "unused"]),
            "spiculated_text": binary,
            "grade": pd.Categorical(grades, categories=["low", "mid", "high", "unused"]),
            "grade_codes": pd.Series(grades).map({"low": 1, "mid": 2, "high": 3}).to_numpy(),
            "size": np.r_[np.arange(n - 4, dtype=float), [np.nan] * 4],
        },
        index=index,
    )
    types = {"spiculated": "binary", "spiculated_text": "binary", "grade": "categorical"}
    features = pd.DataFrame(
        {"type": [*types.values(), "categorical", "continuous"]}, index=imaging.columns
    )
    family_of = dict.fromkeys(imaging.columns, "map")
    effects = analyses.detectable_effects(imaging, features, {"map": 10}, family_of)
    two = power.two_groups(12, 7, 10)
    assert effects["spiculated"] == effects["spiculated_text"] == pytest.approx(two, rel=1e-12)
    three = power.k_groups(27, 3, 10)
    assert effects["grade"] == effects["grade_codes"] == pytest.approx(three, rel=1e-12)
    assert effects["size"] == pytest.approx(power.correlation(26, 10), rel=1e-12)
    one_group = imaging.assign(spiculated=pd.Categorical(["yes"] * n))
    assert np.isnan(analyses.detectable_effects(one_group, features, {}, {})["spiculated"])


def _null_run(seed: int) -> dict[str, tuple[bool, bool]]:
    """One seeded full null: (any discovery at the analysis level, any within one family)."""
    cohort = datasets.synthetic(
        n_patients=40, n_genes=80, n_features=14, n_modules=3, module_size=10, seed=seed,
        null=True,
    )  # fmt: skip
    expression, eigengenes, features, status = _inputs(cohort)
    module_table, _ = analyses.module_map(eigengenes, cohort.imaging, features)
    genes = analyses.gene_map(expression, cohort.imaging, features)
    mutations = analyses.mutation_imaging(status, cohort.imaging, features, draws=999)
    first = {"module": "module map: semantic", "mutation": "EGFR x imaging: semantic"}
    return {
        "module map": (
            bool((module_table["q_analysis"] < 0.05).any()),
            bool((module_table.loc[module_table["family"] == first["module"], "q"] < 0.05).any()),
        ),
        "gene map": (
            bool((genes.q_map.to_numpy() < 0.05).any()),
            bool((genes.q_feature.to_numpy() < 0.05).any()),
        ),
        "mutation x imaging": (
            bool((mutations["q_analysis"] < 0.05).any()),
            bool((mutations.loc[mutations["family"] == first["mutation"], "q"] < 0.05).any()),
        ),
    }


@pytest.mark.slow
def test_full_null_any_discovery_rate_stays_near_alpha():
    logging.disable(logging.WARNING)
    try:
        runs = [_null_run(seed) for seed in range(150)]
    finally:
        logging.disable(logging.NOTSET)
    rates = {analysis: np.mean([run[analysis] for run in runs], axis=0) for analysis in runs[0]}
    print({analysis: tuple(np.round(rate, 3)) for analysis, rate in rates.items()})
    # 150 runs: a true rate of 0.05 exceeds 0.10 with probability < 1 %
    for analysis, (overall, one_family) in rates.items():
        assert overall <= 0.10, analysis
        if analysis != "gene map":  # there: per-feature BH counted across features
            assert one_family <= 0.10, analysis
    # per-feature BH over genes, counted across features, is what the map-level q replaces
    assert rates["gene map"][1] > 0.2
