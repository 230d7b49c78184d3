"""Predict page: figures, view, results file handling, URL state and pinning."""

from __future__ import annotations

import shutil

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from radmap.analysis import predict as P
from radmap.explorer.callbacks import core
from radmap.explorer.callbacks.predict import load_results, predict_view, prediction_pin
from radmap.explorer.data import BundleData
from radmap.explorer.figures.predict import calibration_figure, performance_figure, roc_figure
from radmap.explorer.hypotheses import PinStore
from radmap.explorer.state import Vocabulary, parse_url, to_url

TINY = P.PredictParams(
    outer_splits=3, inner_splits=2, outer_repeats=1, n_permutations=2, n_bootstrap=200
)


@pytest.fixture(scope="module")
def predicted(toy_bundle_path, toy_adata, tmp_path_factory):
    """A copy of the toy bundle with ``radmap predict`` results next to it."""
    folder = tmp_path_factory.mktemp("predict")
    path = shutil.copy(toy_bundle_path, folder / "toy.h5ad")
    result = P.predict(toy_adata.copy(), targets=["EGFR"], params=TINY, key_added=None)
    P.write_predictions(result, P.sidecar_path(path), bundle_path=path)
    return BundleData(path), result


def _text(component) -> str:
    if component is None or isinstance(component, int | float):
        return ""
    if isinstance(component, str):
        return component
    if isinstance(component, list | tuple):
        return " ".join(_text(child) for child in component)
    return _text(getattr(component, "children", None))


def test_figures_draw_every_set_with_bands(predicted):
    _, result = predicted
    summary = result.summary
    roc = roc_figure(result.roc, summary)
    names = [trace.name for trace in roc.data if trace.name]
    assert names[0] == "Chance"
    assert sum(name.startswith("Semantic (AUC") for name in names) == 1
    bands = [trace for trace in roc.data if trace.fill == "toself"]
    assert len(bands) == summary["feature_set"].nunique()
    calibration = calibration_figure(result.calibration)
    assert {t.name for t in calibration.data} >= {"Perfect calibration", "Radiomic"}
    assert "Constant (baseline)" not in {t.name for t in calibration.data}
    performance = performance_figure(summary)
    (points,) = performance.data
    assert len(points.y) == len(summary) and points.error_x.array is not None
    assert "No ROC" in roc_figure(result.roc.iloc[0:0]).layout.annotations[0].text


def test_view_has_verdict_tables_and_protocol(predicted):
    data, result = predicted
    view = predict_view(data, "EGFR")
    assert view["verdict"].startswith("For EGFR, the best imaging set")
    assert len(view["summary_rows"]) == len(result.summary)
    assert {row["feature_set"] for row in view["importance_rows"]} <= set(P.FEATURE_SETS)
    assert "3-fold x 1 outer" in view["protocol"]
    assert predict_view(data, "no-such-target")["target"] == "EGFR"


def test_page_routes_and_url_state(predicted, toy_data):
    data, _ = predicted
    layout, messages = core.route(data, "/predict", "?target=EGFR", base="/")
    assert messages == []
    assert {"role": "state", "page": "predict", "key": "target"} in [
        getattr(c, "id", None) for c in _walk(layout)
    ]
    state, _ = parse_url("/predict", "?target=EGFR&feature=x", Vocabulary())
    assert state.target == "EGFR" and state.feature is None
    assert to_url(state) == "/predict?target=EGFR"
    empty, _ = core.route(toy_data, "/predict", "", base="/")
    assert "Run `radmap predict toy.h5ad`" in _text(empty)


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    if isinstance(children, list | tuple):
        for child in children:
            yield from _walk(child)
    elif children is not None and not isinstance(children, str | int | float):
        yield from _walk(children)


def test_results_of_another_bundle_version_are_flagged(predicted, tmp_path):
    data, result = predicted
    path = shutil.copy(data.path, tmp_path / "other.h5ad")
    P.write_predictions(result, P.sidecar_path(path), bundle_path=data.path)
    with open(path, "ab") as handle:
        handle.write(b"\0")  # the bundle changed after the prediction ran
    loaded, message = load_results(BundleData(path))
    assert loaded is not None and "another version" in message
    P.sidecar_path(path).write_text("{not json")
    _, message = load_results(BundleData(path))
    assert "not a radmap prediction file" in message


def test_prediction_is_pinnable(predicted, tmp_path):
    data, _ = predicted
    state, _ = parse_url("/predict", "?target=EGFR", Vocabulary())
    pin, reason = prediction_pin(data, state, "http://127.0.0.1/predict?target=EGFR")
    assert reason == "" and pin["kind"] == "prediction"
    assert pin["label"].startswith("EGFR from ")
    assert 0 <= pin["statistics"]["effect"] <= 1 and pin["statistics"]["n"] > 0
    stored = PinStore(tmp_path, data.bundle_id).add(pin | {"note": "imaging vs size"})
    assert stored["kind"] == "prediction" and stored["figure"]["data"]


def test_notebook_predict_fills_the_slot_the_page_and_pl_read(toy_adata, tmp_path):
    from radmap.analysis.io import load_bundle, save_bundle
    from radmap.analysis.validate import InputError

    import radmap

    adata = toy_adata.copy()
    options = {"outer_splits": 3, "inner_splits": 2, "outer_repeats": 1, "n_permutations": 2}
    assert radmap.tl.predict(adata, target="EGFR", **options) is None
    assert adata.uns["radmap"]["params"]["predict"]["n_permutations"] == 2
    stored = P.stored_result(adata)
    assert set(stored.summary["feature_set"]) >= {"semantic", "radiomic", "constant"}
    # In memory, the page and radmap.pl read the slot.
    results, message = load_results(BundleData(adata))
    assert message == "" and results.summary.equals(stored.summary)
    roc = radmap.pl.predict(adata)
    assert any(trace.name and trace.name.startswith("Semantic (AUC") for trace in roc.data)
    assert radmap.pl.predict(adata, "EGFR", kind="performance").data
    with pytest.raises(InputError, match="kind must be"):
        radmap.pl.predict(adata, kind="volcano")
    with pytest.raises(InputError, match="no prediction results for 'KRAS'"):
        radmap.pl.predict(adata, "KRAS")
    # Saved with the bundle writer and read back, the slot still serves the page.
    path = save_bundle(adata, tmp_path / "predicted.h5ad")
    again = BundleData(path)
    results, message = load_results(again)
    assert message == "" and not P.sidecar_path(path).exists()
    view = predict_view(again, "EGFR")
    assert view["verdict"].startswith("For EGFR")
    assert results.params["outer_splits"] == 3
    reloaded = P.stored_result(load_bundle(path))
    assert list(reloaded.summary["auc"].round(6)) == list(stored.summary["auc"].round(6))
    # A copy leaves the input alone.
    untouched = toy_adata.copy()
    copied = radmap.tl.predict(untouched, target="EGFR", copy=True, **options)
    assert P.stored_result(untouched) is None and P.stored_result(copied) is not None


def test_figures_keep_room_for_the_plot_in_print(predicted):
    from radmap.explorer.figures.style import publication_layout

    _, result = predicted
    for fig in (roc_figure(result.roc, result.summary), calibration_figure(result.calibration)):
        legend = fig.layout.legend
        # at the figure's foot: plotly reserves its rows under the x axis, hiding no curve
        # and no axis title
        assert (legend.yref, legend.y, legend.yanchor) == ("container", 0, "bottom")
        for width in ("single", "double"):
            printed = publication_layout(fig, width)
            margin = printed.layout.margin
            plot_height = printed.layout.height - margin.t - margin.b
            # The legend rows of a single-column page still leave a square-ish plot.
            assert plot_height > 0.6 * printed.layout.width, (width, plot_height)


def test_figures_have_the_explorer_look(predicted):
    """White plot, axis lines and the explorer's fonts, as on every other page (they were
    drawn in plotly's grey default)."""
    from radmap.explorer.figures.style import TEMPLATE

    _, result = predicted
    for fig in (
        roc_figure(result.roc, result.summary),
        calibration_figure(result.calibration),
        performance_figure(result.summary),
    ):
        assert fig.layout.template.layout.plot_bgcolor == "white"
        assert fig.layout.template.layout.xaxis.showline is True
        assert fig.layout.template == go.layout.Template(pio.templates[TEMPLATE])
    # each curve's legend line is drawn as the curve is, dashes readable
    assert roc_figure(result.roc, result.summary).layout.legend.itemsizing == "trace"
