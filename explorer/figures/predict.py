"""Virtual-biopsy figures: ROC curves with bands, calibration, performance per feature set.

Pure factories over the tables of :mod:`radmap.analysis.predict` (``roc``, ``calibration``,
``summary``); imaging feature sets are drawn in colour, baselines in greys with dashes.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ...analysis.predict import FEATURE_SET_LABELS, IMAGING_SETS
from ..figures.margins import fits_screen
from ..figures.style import NEUTRAL_COLOR, OKABE_ITO, TEMPLATE, empty_figure

SET_COLORS = {
    "semantic": OKABE_ITO[0],
    "radiomic": OKABE_ITO[1],
    "imaging": OKABE_ITO[4],
    "size": "#6F6F6F",
    "clinical": "#A0A0A0",
    "constant": "#C8C8C8",
}
COHORT_DASH = {"development": "solid", "external": "dot"}
FIGURE_HEIGHT = 620
"""Height of the ROC and calibration figures (px): room for a square-ish plot and the
legend rows (under it on screen and in double-column exports, above it in single-column
ones), also on a phone, where the rows are many."""
LEGEND_BELOW = {
    "orientation": "h",
    "x": 0.0,
    "xanchor": "left",
    "yref": "container",
    "y": 0.0,
    "yanchor": "bottom",
    "itemsizing": "trace",
}
"""Legend rows at the figure's foot, where they hide no curve at any width. plotly reserves
their height under the x axis's own margin, so no axis title reaches into them (set at a
fraction of the plot's height under it, the rows met the title when the axis grew deeper).
Each entry draws its line as the curve is drawn (the template's constant size made every
line 5 px thick and its dashes unreadable)."""


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _set_label(name: str, row: pd.Series | None, cohort: str) -> str:
    label = FEATURE_SET_LABELS.get(name, name)
    if cohort == "external":
        label += ", external"
    if row is not None and pd.notna(row.get("auc")):
        label += f" (AUC {row['auc']:.2f} [{row['auc_low']:.2f}, {row['auc_high']:.2f}])"
    return label


def _ordered(names) -> list[str]:
    order = list(FEATURE_SET_LABELS)
    return sorted(set(names), key=lambda n: order.index(n) if n in order else len(order))


@fits_screen
def roc_figure(
    roc: pd.DataFrame, summary: pd.DataFrame | None = None, *, title: str | None = None
) -> go.Figure:
    """ROC curve of each feature set (mean over repeats) with its bootstrap band.

    Parameters
    ----------
    roc
        Rows ``feature_set``, ``cohort``, ``fpr``, ``tpr``, ``tpr_low``, ``tpr_high`` of one
        target.
    summary
        The target's summary rows (AUC and CI go into the legend).
    title
        Figure title.
    """
    if roc is None or roc.empty:
        return empty_figure("No ROC curves: the target is continuous or nothing was run.")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"color": NEUTRAL_COLOR, "dash": "dash", "width": 1},
            name="Chance",
            hoverinfo="skip",
        )
    )
    rows = (
        summary.set_index(["feature_set", "cohort"])
        if summary is not None and not summary.empty
        else None
    )
    for cohort in ("development", "external"):
        part = roc[roc["cohort"] == cohort]
        for name in _ordered(part["feature_set"]):
            curve = part[part["feature_set"] == name].sort_values("fpr")
            color = SET_COLORS.get(name, NEUTRAL_COLOR)
            row = (
                rows.loc[(name, cohort)]
                if rows is not None and (name, cohort) in rows.index
                else None
            )
            label = _set_label(name, row, cohort)
            group = f"{name}-{cohort}"
            fig.add_trace(
                go.Scatter(
                    x=list(curve["fpr"]) + list(curve["fpr"][::-1]),
                    y=list(curve["tpr_high"]) + list(curve["tpr_low"][::-1]),
                    fill="toself",
                    fillcolor=_rgba(color, 0.15 if name in IMAGING_SETS else 0.08),
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=group,
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=curve["fpr"],
                    y=curve["tpr"],
                    mode="lines",
                    name=label,
                    legendgroup=group,
                    line={
                        "color": color,
                        "width": 2.5 if name in IMAGING_SETS else 1.5,
                        "dash": COHORT_DASH[cohort] if name in IMAGING_SETS else "dashdot",
                    },
                    hovertemplate="FPR %{x:.2f}<br>TPR %{y:.2f}<extra>" + label + "</extra>",
                )
            )
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        xaxis={"title": "False positive rate (1 − specificity)", "range": [0, 1]},
        yaxis={"title": "True positive rate (sensitivity)", "range": [0, 1.02]},
        legend=LEGEND_BELOW,
        height=FIGURE_HEIGHT,
    )
    return fig


@fits_screen
def calibration_figure(calibration: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Observed event rate against mean predicted probability (quantile bins) per set."""
    if calibration is None or calibration.empty:
        return empty_figure("No calibration curve: the target is continuous.")
    fig = go.Figure()
    top = float(max(calibration["predicted"].max(), calibration["observed"].max(), 0.1))
    fig.add_trace(
        go.Scatter(
            x=[0, top],
            y=[0, top],
            mode="lines",
            line={"color": NEUTRAL_COLOR, "dash": "dash", "width": 1},
            name="Perfect calibration",
            hoverinfo="skip",
        )
    )
    for cohort in ("development", "external"):
        part = calibration[calibration["cohort"] == cohort]
        for name in _ordered(part["feature_set"]):
            if name == "constant":
                continue
            points = part[part["feature_set"] == name].sort_values("predicted")
            label = _set_label(name, None, cohort)
            fig.add_trace(
                go.Scatter(
                    x=points["predicted"],
                    y=points["observed"],
                    mode="lines+markers",
                    name=label,
                    line={
                        "color": SET_COLORS.get(name, NEUTRAL_COLOR),
                        "dash": COHORT_DASH[cohort],
                    },
                    customdata=points["n"],
                    hovertemplate=(
                        "predicted %{x:.2f}<br>observed %{y:.2f}<br>n %{customdata}<extra>"
                        + label
                        + "</extra>"
                    ),
                )
            )
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        xaxis={"title": "Mean predicted probability", "range": [0, top * 1.05]},
        yaxis={"title": "Observed event rate", "range": [0, top * 1.05]},
        # One name a row on screen; two a row where exports lay the legend in rows.
        legend=LEGEND_BELOW | {"orientation": "v", "entrywidth": 0.5, "entrywidthmode": "fraction"},
        height=FIGURE_HEIGHT,
    )
    return fig


@fits_screen
def performance_figure(summary: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """AUC (or R²) of every feature set with its 95% CI, imaging sets against baselines."""
    if summary is None or summary.empty:
        return empty_figure("No results for this target.")
    metric = "auc" if "auc" in summary.columns and summary["auc"].notna().any() else "r2"
    fig = go.Figure()
    for cohort in ("development", "external"):
        part = summary[summary["cohort"] == cohort]
        if part.empty:
            continue
        names = _ordered(part["feature_set"])
        part = part.set_index("feature_set").loc[names]
        labels = [FEATURE_SET_LABELS.get(n, n) for n in names]
        fig.add_trace(
            go.Scatter(
                x=part[metric],
                y=labels,
                mode="markers",
                name=cohort,
                marker={
                    "color": [SET_COLORS.get(n, NEUTRAL_COLOR) for n in names],
                    "size": 11,
                    "symbol": "circle" if cohort == "development" else "diamond",
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": part[f"{metric}_high"] - part[metric],
                    "arrayminus": part[metric] - part[f"{metric}_low"],
                    "color": NEUTRAL_COLOR,
                },
                hovertemplate="%{y}: %{x:.3f}<extra>" + cohort + "</extra>",
            )
        )
    reference = 0.5 if metric == "auc" else 0.0
    fig.add_vline(x=reference, line={"color": NEUTRAL_COLOR, "dash": "dash", "width": 1})
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        xaxis={"title": "AUC (95% CI)" if metric == "auc" else "R² (95% CI)"},
        yaxis={"autorange": "reversed"},
        showlegend=summary["cohort"].nunique() > 1,
    )
    return fig
