"""Kaplan–Meier, log-rank and Cox against lifelines; the survival table against planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from radmap.analysis import datasets, survival
from radmap.analysis.bundle import SURVIVAL_EVENT, SURVIVAL_TIME
from radmap.analysis.validate import InputError
from scipy import stats


@pytest.fixture(scope="module")
def small():
    """120 patients with tied integer times, three groups, a continuous and a binary variable."""
    rng = np.random.default_rng(21)
    n = 120
    index = pd.Index([f"P{i:03d}" for i in range(n)])
    x = pd.Series(rng.normal(10.0, 4.0, n), index=index, name="x")
    group = pd.Series(rng.choice(["a", "b", "c"], n), index=index, name="group")
    hazard = np.exp(0.15 * (x - 10.0) + (group == "c") * 0.6)
    death = np.ceil(rng.exponential(400.0 / hazard))
    censor = np.ceil(rng.uniform(100.0, 900.0, n))
    time = pd.Series(np.minimum(death, censor), index=index)
    event = pd.Series((death <= censor).astype(int), index=index)
    covariates = pd.DataFrame(
        {"age": rng.normal(65.0, 8.0, n), "stage": rng.choice(["I", "II", "III"], n)},
        index=index,
    )
    binary = pd.Series(np.where(rng.random(n) < 0.4, "Mutant", "Wildtype"), index=index)
    return time, event, x, group, covariates, binary


def test_kaplan_meier_matches_lifelines(small):
    time, event, _, group, _, _ = small
    curves = survival.kaplan_meier(time, event, group)
    assert list(curves.columns) == list(survival.KM_COLUMNS)
    for label, curve in curves.groupby("group"):
        members = group == label
        reference = KaplanMeierFitter().fit(time[members], event[members])
        expected = reference.survival_function_.iloc[:, 0]
        interval = reference.confidence_interval_
        assert curve["time"].iloc[0] == 0
        assert curve["survival"].iloc[0] == 1.0
        assert curve["at_risk"].iloc[0] == members.sum()
        np.testing.assert_allclose(curve["time"], expected.index)
        np.testing.assert_allclose(curve["survival"], expected.to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(curve["ci_low"], interval.iloc[:, 0], rtol=1e-12)
        np.testing.assert_allclose(curve["ci_high"], interval.iloc[:, 1], rtol=1e-12)
        np.testing.assert_array_equal(curve["at_risk"], reference.event_table["at_risk"])
        assert curve["events"].sum() == event[members].sum()


@pytest.mark.parametrize(
    ("time", "event"),
    [
        ([1.0, 2.0, 3.0], [1, 1, 1]),  # the estimate reaches 0
        ([0.0, 2.0, 2.0, 3.0, 5.0, 5.0, 8.0, 9.0, 9.0, 12.0], [1, 1, 0, 1, 0, 0, 1, 1, 1, 0]),
        ([4.0, 7.5, 7.5, 10.0], [0, 0, 0, 0]),  # no event: the estimate stays 1
        ([3.0], [1]),
        ([0.0, 0.0, 1.5, 2.25, 2.25], [0, 1, 1, 1, 0]),  # censored and dead at time 0
    ],
)
def test_kaplan_meier_edge_cases_match_lifelines(time, event):
    curve = survival.kaplan_meier(pd.Series(time), pd.Series(event))
    reference = KaplanMeierFitter().fit(time, event)
    table = reference.event_table
    np.testing.assert_allclose(curve["time"], reference.survival_function_.index)
    np.testing.assert_allclose(curve["survival"], reference.survival_function_.iloc[:, 0])
    np.testing.assert_allclose(curve["ci_low"], reference.confidence_interval_.iloc[:, 0])
    np.testing.assert_allclose(curve["ci_high"], reference.confidence_interval_.iloc[:, 1])
    np.testing.assert_array_equal(curve["at_risk"], table["at_risk"])
    np.testing.assert_array_equal(curve["events"], table["observed"])
    np.testing.assert_array_equal(curve["censored"], table["censored"])


def test_kaplan_meier_product_limit_by_hand():
    time = pd.Series([2.0, 3.0, 3.0, 5.0, 8.0, 8.0])
    event = pd.Series([1, 1, 0, 1, 0, 1])
    curve = survival.kaplan_meier(time, event).set_index("time")
    expected = {
        0: 1.0,
        2: 5 / 6,
        3: 5 / 6 * 4 / 5,
        5: 5 / 6 * 4 / 5 * 2 / 3,
        8: 5 / 6 * 4 / 5 * 2 / 3 / 2,
    }
    for t, value in expected.items():
        assert curve.loc[t, "survival"] == pytest.approx(value)
    assert curve.loc[5, "at_risk"] == 3
    assert (curve["group"] == "all").all()


def test_kaplan_meier_drops_incomplete_rows(small):
    time, event, _, group, _, _ = small
    clean = survival.kaplan_meier(time, event, group)
    time_gap = time.copy().astype(float)
    group_gap = group.copy().astype(object)
    event_gap = event.copy().astype(float)
    extra = pd.Index(["NA1", "NA2", "NA3"])
    time_gap = pd.concat([time_gap, pd.Series([np.nan, 5.0, 6.0], index=extra)])
    event_gap = pd.concat([event_gap, pd.Series([1.0, np.nan, 1.0], index=extra)])
    group_gap = pd.concat([group_gap, pd.Series(["a", "a", np.nan], index=extra)])
    pd.testing.assert_frame_equal(survival.kaplan_meier(time_gap, event_gap, group_gap), clean)


def test_logrank_matches_lifelines_for_several_and_two_groups(small):
    time, event, _, group, _, binary = small
    statistic, p = survival.logrank(time, event, group)
    reference = multivariate_logrank_test(time, group, event)
    assert statistic == pytest.approx(reference.test_statistic, rel=1e-10)
    assert p == pytest.approx(reference.p_value, rel=1e-10)
    mutant = binary == "Mutant"
    statistic, p = survival.logrank(time, event, binary)
    reference = logrank_test(time[mutant], time[~mutant], event[mutant], event[~mutant])
    assert statistic == pytest.approx(reference.test_statistic, rel=1e-10)
    assert p == pytest.approx(reference.p_value, rel=1e-10)
    assert np.isnan(survival.logrank(time, event, pd.Series("a", index=time.index))[1])


def test_cox_per_sd_with_covariates_matches_lifelines(small):
    time, event, x, _, covariates, _ = small
    result = survival.cox(time, event, x, covariates=covariates)
    frame = pd.DataFrame(
        {
            "time": time,
            "event": event,
            "x": (x - x.mean()) / x.std(),
            "age": covariates["age"],
            "II": (covariates["stage"] == "II").astype(float),
            "III": (covariates["stage"] == "III").astype(float),
        }
    )
    reference = CoxPHFitter().fit(frame, "time", "event").summary.loc["x"]
    assert result["hr"] == pytest.approx(reference["exp(coef)"], rel=1e-4)
    assert result["ci_low"] == pytest.approx(reference["exp(coef) lower 95%"], rel=1e-4)
    assert result["ci_high"] == pytest.approx(reference["exp(coef) upper 95%"], rel=1e-4)
    assert result["statistic"] == pytest.approx(reference["z"], rel=1e-4)
    assert result["p"] == pytest.approx(reference["p"], rel=1e-3)
    assert (result["n"], result["events"], result["reason"]) == (len(x), event.sum(), "")


def test_cox_hazard_ratio_is_per_standard_deviation(small):
    time, event, x, _, _, _ = small
    raw = CoxPHFitter().fit(pd.DataFrame({"t": time, "e": event, "x": x}), "t", "e")
    per_unit = raw.params_["x"]
    result = survival.cox(time, event, x)
    assert result["hr"] == pytest.approx(np.exp(per_unit * x.std()), rel=1e-4)
    assert result["hr"] > 1, "the simulated hazard rises with x"


def test_cox_two_level_variable_compares_second_level_to_first(small):
    time, event, _, _, _, binary = small
    result = survival.cox(time, event, binary.rename("egfr"))
    frame = pd.DataFrame({"t": time, "e": event, "wt": (binary == "Wildtype").astype(float)})
    reference = CoxPHFitter().fit(frame, "t", "e").summary.loc["wt"]
    assert result["hr"] == pytest.approx(reference["exp(coef)"], rel=1e-4)
    assert result["p"] == pytest.approx(reference["p"], rel=1e-3)


def test_cox_reports_failures_instead_of_raising(small):
    time, event, x, group, _, _ = small
    few = survival.cox(time, event * (np.arange(len(event)) < 4), x)
    assert np.isnan(few["hr"]) and "events" in few["reason"]
    assert few["events"] < 5
    separated_time = pd.Series(np.arange(40, 0, -1, dtype=float))
    separated = survival.cox(
        separated_time, pd.Series(np.ones(40)), pd.Series(np.arange(40.0), name="x")
    )
    assert np.isnan(separated["hr"]) and separated["reason"].startswith("Cox model failed")
    constant = survival.cox(time, event, pd.Series(1.0, index=time.index, name="c"))
    assert np.isnan(constant["p"]) and "does not vary" in constant["reason"]
    with pytest.raises(InputError, match="3 categories"):
        survival.cox(time, event, group)


def test_bad_survival_values_name_the_patient(small):
    time, event, _, group, _, _ = small
    with pytest.raises(InputError, match="P001"):
        survival.logrank(time, event.where(event.index != "P001", 2), group)
    with pytest.raises(InputError, match="negative"):
        survival.logrank(time - 1000, event, group)


def test_median_split_labels_and_keeps_missing():
    values = pd.Series([1.0, 5.0, np.nan, 3.0, 4.0, 2.0], index=list("abcdef"), name="v")
    split = survival.median_split(values)
    assert split.name == "v" and list(split.index) == list("abcdef")
    assert split.astype(object).where(split.notna(), None).tolist() == [
        "low",
        "high",
        None,
        "low",
        "high",
        "low",
    ]
    assert list(split.cat.categories) == ["low", "high"]


def _eigengenes(cohort) -> pd.DataFrame:
    truth = cohort.truth["gene_module"]
    samples = cohort.expression.T
    columns = {}
    for module in cohort.truth["module_terms"]:
        block = samples.loc[:, truth.index[truth == module]]
        block = (block - block.mean()) / block.std()
        u, s, _ = np.linalg.svd(block.to_numpy(), full_matrices=False)
        first = u[:, 0] * s[0]
        columns[module] = first * np.sign(np.corrcoef(first, block.mean(axis=1))[0, 1])
    return pd.DataFrame(columns, index=samples.index)


@pytest.fixture(scope="module")
def cohort():
    return datasets.synthetic(n_patients=200, n_genes=400, n_features=40, seed=2)


def test_survival_table_finds_the_planted_module(cohort):
    features = pd.DataFrame({"type": pd.Series(cohort.feature_types)})
    table, warnings = survival.survival_table(
        cohort.clinical,
        eigengenes=_eigengenes(cohort),
        imaging=cohort.imaging,
        features=features,
        mutations=["EGFR", "KRAS"],
        covariates=["age", "stage"],
    )
    assert warnings == []
    assert list(table.columns) == list(survival.SURVIVAL_COLUMNS)
    planted = cohort.truth["survival_module"]
    cox_rows = table[(table["kind"] == "module") & (table["test"] == "cox")].set_index("variable")
    assert cox_rows["p"].idxmin() == planted
    assert cox_rows.loc[planted, "q"] < 0.05
    assert cox_rows.loc[planted, "hr"] > 1.3
    planted_logrank = table[(table["variable"] == planted) & (table["test"] == "logrank")]
    assert planted_logrank["q"].iloc[0] < 0.05
    null = table[table["variable"].isin(cohort.truth["null_features"])]
    assert len(null) >= 40
    assert (null["q"] < 0.05).mean() <= 0.05
    # q is BH within each declared family (kind x imaging source x test)
    finite = table["p"].notna()
    assert table["family"].nunique() > 3
    for _, members in table[finite].groupby("family"):
        np.testing.assert_allclose(members["q"], stats.false_discovery_control(members["p"]))
    kinds = table.groupby("kind")["test"].agg(set).to_dict()
    assert kinds == {
        "module": {"cox", "logrank"},
        "feature": {"cox", "cox_trend", "logrank"},
        "mutation": {"logrank"},
    }
    # ordinal scales get a trend test with a hazard ratio per level
    emphysema = table[table["variable"] == "emphysema"].iloc[0]
    assert emphysema["test"] == "cox_trend" and emphysema["effect_measure"] == "hr_per_level"
    measures = table.groupby("test")["effect_measure"].agg(set).to_dict()
    assert measures["logrank"] == {""} and measures["cox"] <= {"hr_per_sd", "hr"}
    categorical = table[table["variable"] == "nodule_shape"]
    assert categorical["test"].tolist() == ["logrank"]
    complete = cohort.clinical[[SURVIVAL_TIME, SURVIVAL_EVENT]].notna().all(axis=1)
    egfr = table[table["variable"] == "EGFR"].iloc[0]
    known = cohort.clinical["EGFR"].isin(["Mutant", "Wildtype"])
    assert egfr["n"] == (complete & known).sum()


def test_survival_table_skips_with_a_warning(cohort):
    features = pd.DataFrame({"type": pd.Series(cohort.feature_types)})
    arguments = {"eigengenes": _eigengenes(cohort), "imaging": cohort.imaging, "features": features}
    table, warnings = survival.survival_table(
        cohort.clinical.drop(columns=[SURVIVAL_EVENT]), **arguments
    )
    assert table.empty and list(table.columns) == list(survival.SURVIVAL_COLUMNS)
    assert len(warnings) == 1 and SURVIVAL_EVENT in warnings[0]
    no_events = cohort.clinical.assign(**{SURVIVAL_EVENT: 0.0})
    table, warnings = survival.survival_table(no_events, **arguments)
    assert table.empty and "0 events" in warnings[0]
    table, warnings = survival.survival_table(cohort.clinical, mutations=["TP53"], **arguments)
    assert "TP53" in warnings[0] and "TP53" not in set(table["variable"])
    with pytest.raises(InputError, match="smoking"):
        survival.survival_table(cohort.clinical, covariates=["smoking"], **arguments)


def test_survival_table_leaves_out_tiny_groups_and_says_so(cohort):
    imaging = cohort.imaging[["nodule_shape"]].copy()
    shape = imaging["nodule_shape"].cat.add_categories("star").astype(object)
    shape.iloc[:2] = "star"  # two patients: a log-rank group of two
    imaging["nodule_shape"] = pd.Categorical(shape)
    features = pd.DataFrame({"type": {"nodule_shape": "categorical"}, "source": "semantic"})
    table, warnings = survival.survival_table(
        cohort.clinical, eigengenes=_eigengenes(cohort).iloc[:, :0], imaging=imaging,
        features=features,
    )  # fmt: skip
    row = table.set_index("variable").loc["nodule_shape"]
    assert any("star: 2" in w and "left out" in w for w in warnings)
    complete = cohort.clinical[[SURVIVAL_TIME, SURVIVAL_EVENT]].notna().all(axis=1)
    kept = complete & (shape != "star") & shape.notna()
    assert row["n"] == kept.sum()
    codes = survival._group_codes(imaging["nodule_shape"].where(kept))
    expected, p = survival._logrank_kernel(
        cohort.clinical[SURVIVAL_TIME].to_numpy(float),
        cohort.clinical[SURVIVAL_EVENT].to_numpy(float),
        codes,
    )
    assert row["p"] == pytest.approx(p) and row["family"] == "semantic feature (logrank)"


def test_survival_table_fits_continuous_variables_together_as_one_at_a_time(small):
    """Modules and continuous features are fitted side by side (the same Newton steps for
    every column that has the same patients): each row must be what fitting that variable
    alone gives, and what lifelines gives, whatever the column's missing values."""
    time, event, x, _, _, _ = small
    rng = np.random.default_rng(5)
    n = len(x)
    obs = pd.DataFrame({SURVIVAL_TIME: time.astype(float), SURVIVAL_EVENT: event.astype(float)})
    obs.iloc[[4, 9], 0] = np.nan  # no follow-up: left out of every test
    eigengenes = pd.DataFrame(
        {"M1": x.to_numpy() + rng.normal(0, 2, n), "M2": rng.standard_normal(n)}, index=x.index
    )
    holes = np.where(rng.random(n) < 0.15, np.nan, 1.0)
    outlier = np.r_[np.zeros(n - 3), [1.0, 2.0, 3.0]]
    dead = event.to_numpy() == 1
    few_events = (dead & (np.cumsum(dead) <= 4)) | (~dead & (np.cumsum(~dead) <= 20))
    imaging = pd.DataFrame(
        {
            "x": x,
            "holes": x.to_numpy() * holes,  # its own missing patients
            "rounded": np.round(rng.normal(0, 1, n)),  # ties
            "two": rng.integers(0, 2, n).astype(float),  # hazard ratio of the two values
            "flat": 2.0,  # does not vary: no estimate
            "outlier": outlier,  # a median half of 3 patients: left out, and said so
            "sparse": np.where(few_events, rng.standard_normal(n), np.nan),  # 4 events
            "separates": dead * 1.0,  # the events themselves: no finite estimate
        },
        index=x.index,
    )
    features = pd.DataFrame({"type": "continuous", "source": "radiomic"}, index=imaging.columns)
    table, warnings = survival.survival_table(
        obs, eigengenes=eigengenes, imaging=imaging, features=features, min_events=5
    )
    rows = table.set_index(["variable", "test"])
    times, events = obs[SURVIVAL_TIME].to_numpy(float), obs[SURVIVAL_EVENT].to_numpy(float)
    known = np.isfinite(times)
    for frame in (eigengenes, imaging):
        for name, column in frame.items():
            values = column.to_numpy(float)
            alone = survival._cox_arrays(
                times, events, values, np.empty((n, 0)), 5, min_group=survival.MIN_GROUP
            )
            cox = rows.loc[(name, "cox")]
            for key in ("hr", "ci_low", "ci_high", "p", "statistic"):
                assert cox[key] == pytest.approx(alone[key], rel=1e-9, nan_ok=True), (name, key)
            assert (cox["n"], cox["events"]) == (alone["n"], alone["events"])
            codes, small_half = survival._min_group_codes(
                survival._median_codes(values), known, survival.MIN_GROUP
            )
            statistic, p = survival._logrank_kernel(times, events, codes)
            logrank = rows.loc[(name, "logrank")]
            if logrank["events"] < 5:  # too few events: the table gives no statistic
                statistic = p = np.nan
            assert logrank["statistic"] == pytest.approx(statistic, rel=1e-9, nan_ok=True)
            assert logrank["p"] == pytest.approx(p, rel=1e-9, nan_ok=True)
            assert logrank["n"] == (known & (codes >= 0)).sum()
            assert bool(small_half) == (name == "outlier")
    assert np.isnan(rows.loc[("flat", "cox"), "p"]) and np.isnan(rows.loc[("sparse", "cox"), "p"])
    assert any("outlier (1: 3)" in w for w in warnings)
    assert any("flat (the variable does not vary" in w for w in warnings)
    assert np.isnan(rows.loc[("outlier", "cox"), "hr"])
    assert any("outlier (only 3 of" in w for w in warnings)
    reason = survival._cox_arrays(
        times, events, imaging["separates"].to_numpy(float), np.empty((n, 0)), 5
    )["reason"]
    assert reason.startswith("Cox model failed") and any(
        f"separates ({reason})" in w for w in warnings
    )
    for name in ("holes", "two"):
        used = imaging[name].notna() & known
        column = imaging.loc[used, name]
        scaled = column if name == "two" else (column - column.mean()) / column.std()
        frame = pd.DataFrame({"time": times[used], "event": events[used], "v": scaled})
        reference = CoxPHFitter().fit(frame, "time", "event").summary.loc["v"]
        assert rows.loc[(name, "cox"), "hr"] == pytest.approx(reference["exp(coef)"], rel=1e-4)
        assert rows.loc[(name, "cox"), "p"] == pytest.approx(reference["p"], rel=1e-3)


def test_a_variable_that_differs_in_too_few_patients_gets_no_hazard_ratio(small):
    """A radiomic feature constant but for a handful of patients: a Cox fit on it gave
    hazard ratios such as 1e-15 with p = 1, or failed, as Newton's method went."""
    time, event, x, _, _, _ = small
    n = len(x)
    obs = pd.DataFrame({SURVIVAL_TIME: time.astype(float), SURVIVAL_EVENT: event.astype(float)})
    rng = np.random.default_rng(11)
    columns = {}
    for k in (1, survival.MIN_GROUP - 1, survival.MIN_GROUP):
        values = np.zeros(n)
        values[rng.choice(n, k, replace=False)] = rng.uniform(1, 2, k)
        columns[f"differ_{k}"] = values
    imaging = pd.DataFrame(columns, index=x.index)
    features = pd.DataFrame({"type": "continuous"}, index=imaging.columns)
    for adjust in ((), ("age",)):
        table, warnings = survival.survival_table(
            obs.assign(age=rng.normal(60, 8, n)),
            eigengenes=pd.DataFrame(index=x.index),
            imaging=imaging,
            features=features,
            covariates=adjust,
        )
        cox = table[table["test"] == "cox"].set_index("variable")
        for k in (1, survival.MIN_GROUP - 1):
            assert np.isnan(cox.loc[f"differ_{k}", ["hr", "p"]].astype(float)).all()
            assert any(f"differ_{k} (only {k} of {n} patients differ" in w for w in warnings)
        fitted = cox.loc[f"differ_{survival.MIN_GROUP}"]
        assert np.isfinite(fitted["hr"]) and 0 <= fitted["p"] <= 1
    # the public function keeps fitting unless asked
    alone = survival.cox(time, event, imaging["differ_1"])
    assert alone["reason"] == "" or "differ" not in alone["reason"]
    asked = survival.cox(time, event, imaging["differ_1"], min_group=survival.MIN_GROUP)
    assert np.isnan(asked["hr"]) and "only 1 of" in asked["reason"]


def test_patients_differing_from_the_most_common_value_per_column():
    rng = np.random.default_rng(2)
    block = rng.integers(0, 4, (40, 300)).astype(float)
    block[:, :20] = 1.0
    block[:3, 20:40] = 7.0
    block[3:, 20:40] = 1.0
    expected = [len(column) - np.unique(column, return_counts=True)[1].max() for column in block.T]
    distinct, differing = survival._value_runs(np.sort(block, axis=0))
    assert differing.tolist() == expected
    assert distinct.tolist() == [len(np.unique(column)) for column in block.T]
    assert [runs.tolist() for runs in survival._value_runs(np.empty((0, 3)))] == [[0, 0, 0]] * 2
