"""The Patient page: one patient's values against the cohort, its figures and how it is reached."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from radmap.analysis import bundle as B
from radmap.analysis.validate import InputError
from radmap.explorer import patient as P
from radmap.explorer.callbacks.core import navigation_target, view_figure
from radmap.explorer.data import BundleData
from radmap.explorer.figures.margins import min_width
from radmap.explorer.figures.patient import patient_profile_figure, patient_survival_figure
from radmap.explorer.pages import patient as page
from radmap.explorer.state import ViewState, parse_url, to_url
from scipy import stats

from tests.explorer.conftest import find_component, make_toy_adata

PATIENT = "P007"


def _text(component) -> str:
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    children = getattr(component, "children", None)
    return _text(children) if children is not None else ""


def test_values_and_percentiles_match_the_cohort(toy_data):
    measures = P.patient_measures(toy_data, PATIENT).set_index("name")
    position = list(toy_data.adata.obs_names).index(PATIENT)
    eigengene = toy_data.eigengenes["M2"].to_numpy(dtype=float)
    row = measures.loc["M2"]
    assert row["section"] == "Module eigengene"
    assert row["value"] == pytest.approx(eigengene[position])
    assert row["percentile"] == pytest.approx(
        stats.percentileofscore(eigengene, eigengene[position], kind="mean")
    )
    assert row["z"] == pytest.approx(
        (eigengene[position] - eigengene.mean()) / eigengene.std(ddof=1)
    )
    assert (row["q1"], row["median"], row["q3"]) == pytest.approx(
        tuple(np.percentile(eigengene, [25, 50, 75]))
    )
    hub = toy_data.hub_genes("M1", n=1)[0]
    expression = toy_data.adata[:, hub].X.ravel().astype(float)
    assert measures.loc[f"{hub} (M1)", "value"] == pytest.approx(expression[position])
    assert set(measures["section"]) >= {"Module eigengene", "Hub gene", "Radiomic feature"}


def test_key_radiomic_features_are_those_with_the_lowest_q(toy_data):
    key = P.key_radiomic_features(toy_data, n=3)
    table = toy_data.associations()
    table = table[table["source"] == "radiomic"]
    best = table.groupby("feature")["q"].min().sort_values()
    assert len(key) == 3
    assert best.loc[key].max() <= best.drop(key).min()


def test_a_missing_value_has_no_position_but_the_cohort_is_kept(toy_data):
    patient = str(toy_data.adata.obs_names[0])  # the toy patient without radiomic feature 2
    missing = toy_data.imaging.columns[toy_data.imaging.iloc[0].isna()]
    measures = P.patient_measures(toy_data, patient)
    rows = measures[measures["key"].isin(missing)]
    assert not rows.empty
    for row in rows.itertuples():
        assert np.isnan(row.value) and np.isnan(row.percentile) and row.n > 0
    figure = patient_profile_figure(measures, patient=patient)
    marked = {y for trace in figure.data if trace.type == "scatter" for y in trace.y}
    assert not marked & set(rows["name"])


def test_categories_give_the_share_of_the_cohort_at_the_patients_level(toy_data):
    table = P.patient_categories(toy_data, PATIENT).set_index("key")
    column = toy_data.imaging["nodule_attenuation"]
    level = str(column.loc[PATIENT])
    expected = 100 * (column.astype(str) == level).sum() / column.notna().sum()
    assert table.loc["nodule_attenuation", "value"] == level
    assert table.loc["nodule_attenuation", "share"] == pytest.approx(expected)
    for marker in toy_data.mutations:
        status = toy_data.adata.obs.loc[PATIENT, marker]
        assert table.loc[marker, "value"] == ("missing" if pd.isna(status) else str(status))


def test_survival_marks_the_patient_on_the_cohort_curve(toy_data):
    survival = P.patient_survival(toy_data, PATIENT)
    obs = toy_data.adata.obs
    time, event = obs[B.SURVIVAL_TIME].astype(float), obs[B.SURVIVAL_EVENT].astype(float)
    keep = time.notna() & event.notna()
    fitter = KaplanMeierFitter().fit(time[keep], event[keep])
    assert survival["time"] == time.loc[PATIENT]
    assert survival["at_time"] == pytest.approx(
        float(fitter.survival_function_at_times(time.loc[PATIENT]).iloc[0])
    )
    figure = patient_survival_figure(survival, patient=PATIENT)
    marker = [trace for trace in figure.data if trace.name and PATIENT in trace.name]
    assert len(marker) == 1
    assert marker[0].x[0] == pytest.approx(survival["time"])
    assert marker[0].y[0] == pytest.approx(survival["at_time"])


def test_survival_and_categories_fit_their_cards_beside_each_other(toy_data):
    """At 1600 px the survival card is ~440 px wide: its legend beside the curve made the
    figure need 580 px (scrolled off the card); the table's long names pushed the
    patient's value and share out of view."""
    figure = patient_survival_figure(P.patient_survival(toy_data, PATIENT), patient=PATIENT)
    assert min_width(figure) is None
    assert figure.layout.legend.x < 1 and figure.layout.legend.xanchor == "right"
    _, columns = page.category_grid(toy_data, PATIENT)
    widths = {column["field"]: column["width"] for column in columns}
    assert widths["kind"] + widths["name"] + widths["value"] + widths["share"] <= 620


def test_profile_figure_puts_the_patient_at_its_z_on_every_row(toy_data):
    measures = P.patient_measures(toy_data, PATIENT)
    figure = patient_profile_figure(measures, patient=PATIENT)
    box = next(trace for trace in figure.data if trace.type == "box")
    shown = measures[measures["sd"] > 0]
    assert list(box.y) == shown["name"].tolist()
    axis = figure.layout.yaxis
    assert list(axis.tickvals) == shown["name"].tolist()[::-1]  # every row labelled
    marks = {
        y: x for trace in figure.data if trace.type == "scatter" for x, y in zip(trace.x, trace.y)
    }
    for row in shown.dropna(subset=["value"]).itertuples():
        assert marks[row.name] == pytest.approx((row.value - row.mean) / row.sd, abs=1e-3)
    assert figure.layout.height >= 17 * len(shown)


def test_an_unknown_patient_is_a_clear_error_and_the_url_drops_it(toy_data):
    with pytest.raises(InputError, match="not in this bundle"):
        P.patient_measures(toy_data, "nobody")
    state, messages = parse_url("/patient", "?patient=nobody", toy_data.vocabulary())
    assert state.patient is None and "nobody" in messages[0]
    state, messages = parse_url("/patient", f"?patient={PATIENT}", toy_data.vocabulary())
    assert state.patient == PATIENT and not messages
    assert to_url(state) == f"/patient?patient={PATIENT}"


def test_a_click_on_a_phenotype_point_opens_that_patient(toy_data):
    state = ViewState(page="map", feature="original_shape_Sphericity", module="M1")
    for source in ("map-phenotype", "gene-phenotype"):
        event = {"points": [{"x": 1.0, "y": 0.2, "customdata": PATIENT}]}
        href = navigation_target(toy_data, source, event, state)
        assert href == f"/patient?patient={PATIENT}"
    unknown = {"points": [{"customdata": "nobody"}]}
    assert navigation_target(toy_data, "map-phenotype", unknown, state) is None


def test_viewer_link_fills_in_the_quoted_patient_id():
    template = "https://viewer.example.org/series?patient={patient}"
    assert P.viewer_link(template, "R01 023/x") == (
        "https://viewer.example.org/series?patient=R01%20023%2Fx"
    )
    assert P.viewer_link(None, "R01") is None


def test_page_links_to_the_viewer_only_when_the_bundle_carries_a_template(toy_data, tmp_path):
    state = ViewState(page="patient", patient=PATIENT)
    assert find_component(page.layout(toy_data, state), "patient-viewer-link") is None
    adata = make_toy_adata()
    adata.uns[B.UNS_KEY]["viewer_url"] = "https://viewer.example.org/{patient}"
    data = BundleData(adata)
    link = find_component(page.layout(data, state), "patient-viewer-link")
    assert link is not None and link.href == f"https://viewer.example.org/{PATIENT}"
    assert link.rel == "noopener noreferrer"


def test_page_renders_its_figures_with_the_layout(toy_data):
    layout = page.layout(toy_data, ViewState(page="patient", patient=PATIENT))
    graph = find_component(layout, {"role": "graph", "fig": "patient-profile"})
    assert graph is not None and graph.figure.data
    assert PATIENT in _text(layout) or PATIENT in graph.figure.layout.title.text
    markers = find_component(layout, "patient-markers")
    assert markers is not None and all(m in _text(markers) for m in toy_data.mutations)


def test_patient_figures_export(toy_data):
    state = ViewState(page="patient", patient=PATIENT)
    assert view_figure(toy_data, "patient-profile", state).data
    assert view_figure(toy_data, "patient-survival", state).data
    default = view_figure(toy_data, "patient-profile", ViewState(page="patient"))
    assert str(toy_data.adata.obs_names[0]) in default.layout.title.text
