"""The explorer's views use the patients, test and n of the analysis row they show.

A seeded synthetic cohort with patients that have imaging and clinical data but no
expression: imaging x survival and mutation x survival use them, module x survival does not,
and every Kaplan–Meier view must count the same patients as its analysis row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import bundle, datasets
from radmap.analysis.pipeline import Config, build_bundle
from radmap.analysis.survival import logrank, split_groups
from radmap.explorer.callbacks import cohort
from radmap.explorer.data import BundleData

N_SEQUENCED = 60
N_IMAGING_ONLY = 30


@pytest.fixture(scope="module")
def cohort_data(tmp_path_factory):
    synthetic = datasets.synthetic(
        n_patients=N_SEQUENCED, n_genes=200, n_features=14, n_modules=3, module_size=20,
        seed=3, n_imaging_only=N_IMAGING_ONLY, annotations=True,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("patients")
    files = datasets.write_cohort(synthetic, folder)
    config = Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        clinical=files["clinical"],
        survival_time="Survival time (days)",
        survival_event="Event",
        gene_sets=["hallmark"],
        out=folder / "out",
    )
    adata = build_bundle(config, progress=lambda message: None)
    return BundleData(adata)


def _figure_n(figure) -> int:
    return int(figure.layout.meta["n"])


def test_every_survival_view_counts_the_patients_of_its_analysis_row(cohort_data):
    data = cohort_data
    table = data.survival_table()
    checked = {"feature": 0, "mutation": 0, "module": 0}
    for kind in checked:
        rows = table[table["kind"] == kind]
        for variable in rows["variable"].unique():
            tests = rows[rows["variable"] == variable].set_index("test")
            test = "cox_trend" if "cox_trend" in tests.index else "logrank"
            row = tests.loc[test]
            view = data.km(kind, str(variable))
            figure = cohort.cohort_km(data, f"{kind}:{variable}")
            assert view.n == int(row["n"]) == _figure_n(figure), (kind, variable)
            assert view.events == int(row["events"])
            if np.isfinite(row["p"]):
                assert view.p == pytest.approx(float(row["p"]), rel=1e-9), (kind, variable)
            checked[kind] += 1
    assert all(checked.values()), checked
    # Imaging and mutation views reach beyond the patients with expression.
    beyond = table[table["kind"].isin(["feature", "mutation"]) & (table["n"] > N_SEQUENCED)]
    assert len(beyond) > 0
    assert (table.loc[table["kind"] == "module", "n"] <= N_SEQUENCED).all()


def test_ordinal_feature_shows_the_cox_trend_test_of_the_analysis(cohort_data):
    data = cohort_data
    ordinal = data.features.index[data.features["type"] == "ordinal"]
    assert len(ordinal)
    feature = str(ordinal[0])
    row = data.survival_row("feature", feature, "cox_trend")
    view = data.km("feature", feature)
    assert view.test == "cox_trend" and view.p == row["p"] and view.n == row["n"]
    text = " ".join(a.text for a in cohort.cohort_km(data, f"feature:{feature}").layout.annotations)
    assert "Cox trend p" in text and f"n = {row['n']}" in text


@pytest.mark.parametrize("split, n_groups", [("tertiles", 3), ("quartiles", 4)])
def test_module_split_into_quantiles_gives_a_live_logrank(cohort_data, split, n_groups):
    data = cohort_data
    module = data.module_names[0]
    view = data.km("module", module, split=split)
    assert view.curves["group"].nunique() == n_groups
    assert view.q is None  # not the analysis' grouping, so no analysis q
    obs = data.adata.obs
    groups = split_groups(data.eigengenes[module], split)
    _, expected = logrank(obs[bundle.SURVIVAL_TIME], obs[bundle.SURVIVAL_EVENT], groups)
    assert view.p == pytest.approx(expected)
    reference = pd.qcut(data.eigengenes[module], n_groups, labels=False)
    assert (groups.cat.codes.to_numpy() == reference.to_numpy()).all()


def test_continuous_feature_split_at_a_cut(cohort_data):
    data = cohort_data
    continuous = data.features.index[data.features["type"] == "continuous"]
    feature = str(continuous[0])
    imaging, _ = data.all_patients
    cut = float(imaging[feature].median()) + 0.1
    view = data.km("feature", feature, split="cut", cut=cut)
    assert set(view.curves["group"]) == {f"≤ {cut:g}", f"> {cut:g}"}
    assert f"split at {cut:g}" in view.description
    figure = cohort.cohort_km(data, f"feature:{feature}", split="cut", cut=None)
    assert "Type the value" in figure.layout.annotations[0].text


def test_drill_down_shows_the_patients_of_the_map_test(cohort_data):
    """Module x feature drill-downs use the patients with expression and imaging, without
    the levels the analysis left out for being too small."""
    data = cohort_data
    assoc = data.associations()
    assert (assoc["n"] <= N_SEQUENCED).all()
    tested = assoc[assoc["p"].notna()]
    for row in tested.itertuples():
        frame = data.phenotype(row.feature, module=row.module)
        assert len(frame) == row.n, (row.feature, row.module)
    sparse = [
        f for f in data.features.index[data.features["type"] == "categorical"]
        if data.imaging[f].value_counts().min() < 5
    ]  # fmt: skip
    assert sparse, "the synthetic cohort has a sparse categorical feature"
