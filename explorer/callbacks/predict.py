"""Predict page callbacks: read the ``radmap predict`` results, draw one target's view."""

from __future__ import annotations

import pandas as pd
from dash import Input, Output, html
from dash.exceptions import PreventUpdate

from ...analysis.predict import (
    FEATURE_SET_LABELS,
    IMAGING_SETS,
    PredictionResult,
    read_predictions,
    sidecar_path,
    stored_result,
    verdict,
)
from ...analysis.validate import InputError
from ..callbacks.common import AppContext, grid
from ..data import BundleData
from ..figures.predict import calibration_figure, performance_figure, roc_figure
from ..pages.common import graph_id, sid, table_id
from ..state import ViewState

PAGE = "predict"
SUMMARY_COLUMNS = (
    "cohort",
    "feature_set",
    "n",
    "n_positive",
    "auc",
    "auc_low",
    "auc_high",
    "r2",
    "r2_low",
    "r2_high",
    "spearman",
    "permutation_p",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "brier",
    "difference",
    "difference_low",
    "difference_high",
)
IMPORTANCE_COLUMNS = (
    "feature_set",
    "rank",
    "feature",
    "mean_coefficient",
    "selected_fraction",
    "sign_agreement",
)


def load_results(data: BundleData) -> tuple[PredictionResult | None, str]:
    """The results of ``radmap predict`` for the bundle and a message for the user.

    The ``.predict.json`` next to the bundle (memoised per file version) comes first; without
    one, the results ``radmap.tl.predict`` stored in the bundle. The message says how to make
    the results when there are none, or warns when the file was computed from another
    version of the bundle.
    """
    stored = stored_result(data.adata)
    if data.path is None:
        if stored is not None:
            return stored, ""
        return None, (
            "No prediction results in this bundle: run radmap.tl.predict(adata) (or save it and "
            "run `radmap predict` on the file) to compare imaging with the baselines."
        )
    path = sidecar_path(data.path)
    if not path.is_file():
        if stored is not None:
            return stored, ""
        return None, (
            f"Run `radmap predict {data.path.name}` to compare imaging with the baselines; "
            f"the results ({path.name}) are then shown here."
        )
    stamp = path.stat().st_mtime_ns

    def build():
        try:
            return read_predictions(path), ""
        except InputError as error:
            return (None, None), str(error)

    (result, header), problem = data.memo("predict-results", {"mtime": stamp}, build)
    if result is None:
        return None, problem
    if header.get("bundle_sha256") and header["bundle_sha256"] != data.bundle_id:
        return result, (
            f"{path.name} was computed from another version of {data.path.name}; "
            "run `radmap predict` again to bring it up to date."
        )
    return result, ""


def _rows(table, target: str):
    if table is None or table.empty or "target" not in table.columns:
        return table
    return table[table["target"] == target]


def predict_view(data: BundleData, target: str | None) -> dict:
    """Every figure, table and sentence of the Predict page for ``target``."""
    result, _ = load_results(data)
    if result is None or result.summary.empty:
        return {}
    targets = list(dict.fromkeys(result.summary["target"].astype(str)))
    target = target if target in targets else targets[0]
    summary = _rows(result.summary, target)
    importance = _rows(result.importance, target)
    summary_rows, summary_columns = grid(
        summary,
        SUMMARY_COLUMNS,
        numeric=[c for c in SUMMARY_COLUMNS if c not in ("cohort", "feature_set")],
    )
    importance_rows, importance_columns = grid(
        importance,
        IMPORTANCE_COLUMNS,
        numeric=("mean_coefficient", "selected_fraction", "sign_agreement"),
    )
    params = result.params
    protocol = (
        f"{params.get('outer_splits')}-fold x {params.get('outer_repeats')} outer, "
        f"{params.get('inner_splits')}-fold inner CV; {params.get('model')}; "
        f"{params.get('n_permutations')} permutations; threshold {params.get('threshold')}; "
        f"seed {params.get('seed')}."
    )
    return {
        "target": target,
        "targets": ", ".join(targets),
        "verdict": verdict(summary, target),
        "roc": roc_figure(_rows(result.roc, target), summary, title=f"{target}: ROC"),
        "calibration": calibration_figure(
            _rows(result.calibration, target), title=f"{target}: calibration"
        ),
        "performance": performance_figure(summary, title=f"{target}: imaging vs baselines"),
        "summary_rows": summary_rows,
        "summary_columns": summary_columns,
        "importance_rows": importance_rows,
        "importance_columns": importance_columns,
        "protocol": protocol,
    }


def prediction_pin(data: BundleData, state: ViewState, href: str | None):
    """The pin of the Predict view: the best imaging set's AUC, p and n, with the ROC figure."""
    view = predict_view(data, state.target)
    if not view:
        return None, "Run `radmap predict` on this bundle first, then pin a prediction."
    result, _ = load_results(data)
    summary = _rows(result.summary, view["target"])
    development = summary[summary["cohort"] == "development"]
    imaging = development[development["feature_set"].isin(IMAGING_SETS)]
    metric = "auc" if "auc" in imaging.columns and imaging["auc"].notna().any() else "r2"
    if imaging.empty:
        return None, "No imaging feature set was evaluated for this target."
    best = imaging.loc[imaging[metric].idxmax()]
    statistics = {
        "test": f"nested CV {metric.upper()}",
        "effect": float(best[metric]),
        "p": None if pd.isna(best.get("permutation_p")) else float(best["permutation_p"]),
        "q": None,
        "n": int(best["n"]),
        "ci_low": float(best[f"{metric}_low"]),
        "ci_high": float(best[f"{metric}_high"]),
    }
    pin = {
        "kind": "prediction",
        "feature": FEATURE_SET_LABELS.get(str(best["feature_set"]), str(best["feature_set"])),
        "module": None,
        "gene": None,
        "url": href or "",
        "label": f"{view['target']} from {statistics_label(best, metric)}",
        "statistics": statistics,
        "figure": view["roc"].to_json(),
    }
    return pin, ""


def statistics_label(row, metric: str) -> str:
    name = FEATURE_SET_LABELS.get(str(row["feature_set"]), str(row["feature_set"])).lower()
    return (
        f"{name}: {metric.upper()} {row[metric]:.2f} "
        f"[{row[metric + '_low']:.2f}, {row[metric + '_high']:.2f}]"
    )


def register(app, ctx: AppContext) -> None:
    data = ctx.data

    @app.callback(
        Output("predict-verdict", "children"),
        Output("predict-protocol", "children"),
        Output(graph_id("predict-roc"), "figure"),
        Output(graph_id("predict-calibration"), "figure"),
        Output(graph_id("predict-performance"), "figure"),
        Output(table_id("predict-summary"), "rowData"),
        Output(table_id("predict-summary"), "columnDefs"),
        Output(table_id("predict-importance"), "rowData"),
        Output(table_id("predict-importance"), "columnDefs"),
        Input(sid(PAGE, "target"), "value"),
    )
    def _view(target):
        view = predict_view(data, target)
        if not view:
            raise PreventUpdate
        return (
            view["verdict"],
            html.Span(view["protocol"]),
            view["roc"],
            view["calibration"],
            view["performance"],
            view["summary_rows"],
            view["summary_columns"],
            view["importance_rows"],
            view["importance_columns"],
        )
