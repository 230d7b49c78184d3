"""Subsets of the cohort: URL form, validation, recompute against the restricted analysis."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import tl
from radmap.analysis.validate import InputError
from radmap.explorer.callbacks import core
from radmap.explorer.callbacks import map as map_cb
from radmap.explorer.callbacks.pins import pin_draft
from radmap.explorer.callbacks.subset import banner, compare_view, edited, resolve
from radmap.explorer.data import BundleData, SubsetData
from radmap.explorer.figures.compare import map_difference
from radmap.explorer.pages.common import HIDDEN_AT_WIDTH
from radmap.explorer.state import ViewState, parse_url, to_url
from radmap.explorer.subset import (
    Column,
    Condition,
    Subset,
    describe_column,
    parse_subset,
    subset_columns,
)

from tests.explorer.conftest import make_toy_adata

COLUMNS = {
    "histology": Column(
        "histology",
        "Histology",
        "categorical",
        "clinical",
        levels=("adenocarcinoma", "squamous", "large cell"),
    ),
    "age": Column("age", "Age", "numeric", "clinical", low=40.0, high=90.0),
    "odd:name|x": Column("odd:name|x", "odd", "categorical", "imaging", levels=("a;b", "c~d")),
}


# ------------------------------------------------------------------------ URL form
def test_subset_round_trips_in_canonical_form():
    subset, messages = parse_subset("histology:squamous|adenocarcinoma;age:50~70", COLUMNS)
    assert messages == []
    # Conditions sorted by column, levels in the column's own order.
    assert subset.key == "age:50~70;histology:adenocarcinoma|squamous"
    assert parse_subset(subset.key, COLUMNS)[0] == subset
    assert subset.label(COLUMNS) == "50 ≤ Age ≤ 70, Histology = adenocarcinoma or squamous"


def test_open_ranges_and_reserved_characters_round_trip():
    subset = Subset((Condition("age", low=60.0), Condition("odd:name|x", levels=("a;b", "c~d"))))
    parsed, messages = parse_subset(subset.key, COLUMNS)
    assert messages == []
    assert parsed == subset
    assert parse_subset("age:~55", COLUMNS)[0].conditions[0] == Condition("age", high=55.0)
    precise = Subset((Condition("age", low=0.000123456789, high=1234567.891),))
    assert precise.key == "age:0.000123456789~1234567.891"
    assert parse_subset(precise.key, COLUMNS)[0] == precise


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("smoking:yes", "no column 'smoking'"),
        ("histology:small cell", "no level 'small cell'"),
        ("age:70~50", "is empty"),
        ("age:old", "is not a range"),
        ("age:~", "has no bounds"),
        ("histology", "is not 'column:levels'"),
    ],
)
def test_bad_conditions_are_dropped_with_a_message(text, problem):
    subset, messages = parse_subset(f"{text};histology:squamous", COLUMNS)
    assert subset.key == "histology:squamous"
    assert len(messages) == 1 and problem in messages[0]


def test_condition_mask_never_keeps_missing_values():
    values = pd.Series(["squamous", None, "adenocarcinoma", "squamous"])
    assert Condition("histology", levels=("squamous",)).mask(values).tolist() == [
        True,
        False,
        False,
        True,
    ]
    ages = pd.Series([45.0, np.nan, 70.0, 71.0])
    assert Condition("age", low=45.0, high=70.0).mask(ages).tolist() == [True, False, True, False]


def test_columns_offered_leave_out_identifiers_and_constants():
    obs = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(40)],
            "site": ["A"] * 40,
            "stage": (["I", "II", "III", "IV"] * 10),
            "grade": [1, 2, 3] * 13 + [1],
            "age": np.linspace(40, 80, 40),
        }
    )
    columns = subset_columns(obs, pd.DataFrame(index=obs.index), {"age": "Age (years)"})
    assert set(columns) == {"stage", "grade", "age"}
    assert columns["grade"].kind == "categorical" and columns["grade"].levels == ("1", "2", "3")
    assert columns["age"].kind == "numeric" and columns["age"].label == "Age (years)"
    assert describe_column("x", pd.Series([np.nan, np.nan]), label="x", source="clinical") is None


def test_view_state_keeps_the_subset_in_the_url_and_across_pages(toy_data):
    vocabulary = toy_data.vocabulary()
    state, messages = parse_url("/map", "?subset=stage:III|II&compare=stage:I&q=0.1", vocabulary)
    assert messages == []
    assert state.subset == "stage:II|III" and state.compare == "stage:I"
    again, _ = parse_url(*to_url(state).split("?"), vocabulary)
    assert again == state
    moved = state.for_page("volcano")
    assert moved.subset == "stage:II|III" and moved.compare == ""
    bad, messages = parse_url("/gene", "?subset=stage:V", vocabulary)
    assert bad.subset == "" and "no level 'V'" in messages[0]


def test_editing_adds_replaces_and_drops_conditions(toy_data):
    first = edited(toy_data, "", "stage", ["III", "II"], None, None)
    assert first == "stage:II|III"
    both = edited(toy_data, first, "age", None, 70, 50)
    assert both == "age:50~70;stage:II|III"
    assert edited(toy_data, both, "stage", [], None, None) == "age:50~70"
    assert edited(toy_data, both, "age", None, None, None) == "stage:II|III"


# ---------------------------------------------------------------------- recompute
@pytest.fixture(scope="module")
def cohort():
    adata = make_toy_adata(n_patients=120, seed=3)
    adata.uns["radmap"]["params"]["mutations"] = ["EGFR", "KRAS"]
    return adata, BundleData(adata)


def _restricted(adata, mask):
    restricted = adata[mask].copy()
    tl.associate(restricted)
    tl.mutations(restricted)
    tl.survival(restricted)
    return restricted


def test_subset_results_equal_the_analysis_of_a_bundle_of_those_patients(cohort):
    adata, data = cohort
    view = data.subset_view("stage:II|III")
    mask = adata.obs["stage"].astype(str).isin(["II", "III"]).to_numpy()
    assert isinstance(view, SubsetData) and view.n_patients == int(mask.sum()) < adata.n_obs
    reference = _restricted(adata, mask)
    uns = reference.uns["radmap"]

    got = view.associations()
    expected = uns["associations"]
    merged = got.merge(expected, on=["module", "feature"], suffixes=("", "_ref"))
    assert len(merged) == len(got) == len(expected)
    for column in ("effect", "p", "q", "q_analysis"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_ref"], rtol=1e-9)
    assert (merged["n"].astype(int) == merged["n_ref"].astype(int)).all()
    assert (merged["family"] == merged["family_ref"]).all()

    # The map's power note: the same summary as the analysis stores.
    power = view.uns_table("power").set_index(["family", "feature_type"])
    expected_power = uns["power"].set_index(["family", "feature_type"]).loc[power.index]
    np.testing.assert_allclose(
        power["detectable_effect"].astype(float), expected_power["detectable_effect"].astype(float)
    )

    # Volcano: one feature's gene map (q within the feature) = that column of the full run.
    features = list(uns["gene_features"])
    column = features.index("original_shape_Sphericity")
    table = view.gene_table("original_shape_Sphericity").set_index("gene")
    np.testing.assert_allclose(
        table["p"].to_numpy(), reference.varm["radmap_p"][:, column], rtol=1e-5
    )
    np.testing.assert_allclose(
        table["q"].to_numpy(), reference.varm["radmap_q"][:, column], rtol=1e-5
    )
    # Gene page: map-level q over the whole gene map of the subset.
    gene = str(adata.var_names[0])
    row = view.gene_associations(gene).set_index("feature")
    expected_q = pd.Series(reference.varm["radmap_q_map"][0], index=features)
    np.testing.assert_allclose(row["q"].reindex(features), expected_q, rtol=1e-5)

    survival = view.survival_table()
    expected = uns["survival"].sort_values(["q", "p"], kind="mergesort")
    np.testing.assert_allclose(
        np.sort(survival["p"].astype(float).dropna()),
        np.sort(expected["p"].astype(float).dropna()),
        rtol=1e-9,
    )
    mutations = view.mutation_imaging()
    expected = uns["mutation_imaging"]
    merged = mutations.merge(expected, on=["mutation", "feature"], suffixes=("", "_ref"))
    assert len(merged) == len(expected) > 0
    np.testing.assert_allclose(merged["p"].astype(float), merged["p_ref"].astype(float))
    # Kaplan-Meier on the subset: its own patients only.
    km = view.km("module", "M1")
    assert km.n <= view.n_patients < data.km("module", "M1").n
    # ... and its q is the subset's own survival q for the median split.
    row = survival[(survival["kind"] == "module") & (survival["variable"] == "M1")]
    assert km.q == pytest.approx(float(row[row["test"] == "logrank"]["q"].iloc[0]))
    # Imaging-feature curves use the subset's patients too.
    assert view.km("feature", "margin_spiculated").n <= view.n_patients


def test_subset_finds_the_planted_links_and_differs_from_the_whole_cohort(cohort):
    _, data = cohort
    view = data.subset_view("stage:II|III")
    assoc = view.associations().set_index(["feature", "module"])
    # Planted in the toy generator: sphericity ~ M1 (a strong continuous link).
    assert assoc.loc[("original_shape_Sphericity", "M1"), "q"] < 1e-3
    assert (assoc["n"] <= view.n_patients).all()
    whole = data.associations().set_index(["feature", "module"])
    assert not np.allclose(assoc["p"].astype(float), whole.loc[assoc.index, "p"].astype(float))


def test_subset_views_are_cached_and_the_whole_cohort_is_the_bundle(cohort):
    _, data = cohort
    assert data.subset_view("") is data
    first = data.subset_view("stage:II|III")
    assert data.subset_view("stage:III|II") is first
    table = first.gene_table("original_shape_Sphericity")
    assert first.gene_table("original_shape_Sphericity").equals(table)


def test_too_small_subsets_are_refused_with_a_message(cohort):
    _, data = cohort
    text = "age:" + f"{data.adata.obs['age'].max() - 0.5:g}~"
    with pytest.raises(InputError, match=r"at least 10 are needed to test"):
        data.subset_view(text)
    assert resolve(data, text) is data
    shown = json.dumps([item.to_plotly_json() for item in banner(data, text)], default=str)
    assert "not used" in shown and "Showing the whole cohort" in shown
    unknown = banner(data, "stage:V")[0].children
    assert "no level 'V'" in unknown and ".." not in unknown
    with pytest.raises(InputError, match="no level"):
        data.subset_view("stage:V")


def test_banner_names_the_subset_and_its_n(cohort):
    _, data = cohort
    view = data.subset_view("stage:II|III")
    text = banner(data, "stage:II|III")[0].children
    assert text == f"subset: stage = II or III (n = {view.n_patients} of {data.adata.n_obs})"


def test_banner_and_a_hidden_drill_down_compute_no_subset_results(cohort):
    adata, data = cohort
    fresh = BundleData(adata)
    stage = adata.obs["stage"].astype(str)
    n_patients = int(stage.isin(["II", "III"]).sum())
    text = banner(fresh, "stage:II|III")[0].children
    assert text == f"subset: stage = II or III (n = {n_patients} of {adata.n_obs})"
    assert not fresh._subset_views  # the subset's map is left to the callbacks that show it
    assert fresh.subset_size("stage:III|II") == ("stage = II or III", n_patients)
    hidden = map_cb.subset_drill_down(fresh, "stage:II|III", None, None, q=0.05)
    assert hidden["style"] == HIDDEN_AT_WIDTH
    assert not fresh._subset_views
    feature = "original_shape_Sphericity"
    shown = map_cb.subset_drill_down(fresh, "stage:II|III", feature, "M1", q=0.05)
    assert shown["style"] != HIDDEN_AT_WIDTH and list(fresh._subset_views) == ["stage:II|III"]
    view = fresh.subset_view("stage:II|III")
    assert fresh.subset_size("stage:II|III") == (view.label, view.n_patients)
    with pytest.raises(InputError, match="no level"):
        fresh.subset_size("stage:V")


def test_exports_and_pins_carry_the_subset(cohort):
    _, data = cohort
    state = ViewState(page="map", subset="stage:II|III", feature="original_shape_Sphericity")
    state = ViewState(**(state.to_dict() | {"module": "M1", "sources": (), "groups": ()}))
    info = core.provenance(data, "map-heatmap", state, "/map?subset=stage:II%7CIII")
    assert info["subset"]["definition"] == "stage:II|III"
    assert info["subset"]["n"] == data.subset_view("stage:II|III").n_patients
    pin, reason = pin_draft(data, state, "/map?subset=stage:II%7CIII")
    assert reason == ""
    view = data.subset_view("stage:II|III")
    assert pin["subset"].startswith("stage = II or III (n = ")
    assert pin["statistics"]["p"] == pytest.approx(
        view.association("original_shape_Sphericity", "M1")["p"]
    )
    assert "[subset: stage = II or III" in pin["label"]
    # The exported figure is the subset's map, not the whole cohort's.
    figure = core.view_figure(data, "map-heatmap", state)
    whole = core.view_figure(data, "map-heatmap", ViewState(page="map"))
    assert figure.to_json() != whole.to_json()


def test_compare_marks_cells_significant_in_one_subset_only():
    first = pd.DataFrame(
        {
            "module": ["M1", "M2", "M1", "M2"],
            "feature": ["f1", "f1", "f2", "f2"],
            "effect": [0.5, 0.1, 0.0, -0.4],
            "q": [0.001, 0.6, 0.9, 0.01],
        }
    )
    second = first.assign(effect=[0.1, 0.1, 0.3, -0.4], q=[0.4, 0.7, 0.02, 0.01])
    fig = map_difference(first, second, q_threshold=0.05, label_a="adeno", label_b="squamous")
    trace = fig.data[0]
    cells = {
        (row, module): (z, text)
        for row, zs, texts in zip(trace.y, trace.z, trace.text, strict=True)
        for module, z, text in zip(trace.x, zs, texts, strict=True)
    }
    assert cells[("f1", "M1")] == (pytest.approx(-0.4), "A")
    assert cells[("f2", "M1")] == (pytest.approx(0.3), "B")
    assert cells[("f2", "M2")] == (pytest.approx(0.0), "•")
    assert cells[("f1", "M2")][1] == ""


def test_compare_view_builds_both_panels(cohort):
    _, data = cohort
    options = {
        "q": 0.05,
        "stat": "effect",
        "sources": (),
        "groups": (),
        "min_effect": 0.0,
        "rows": "auto",
        "top": 40,
    }
    style, figure, difference = compare_view(data, "stage:II|III", "stage:I", **options)
    assert style == {"display": "block"}
    assert "stage = I" in difference.layout.title.text
    assert len(difference.data[0].y) > 0
    hidden, _, _ = compare_view(data, "stage:II|III", "", **options)
    assert hidden == HIDDEN_AT_WIDTH
