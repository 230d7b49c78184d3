"""One module (or gene) against one imaging feature, patient by patient."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from ...analysis.validate import InputError
from ..figures.margins import fits_screen
from ..figures.style import (
    NEUTRAL_COLOR,
    PRINT_LINE,
    QUALITATIVE,
    SCREEN_TITLE_PX,
    UNASSIGNED_COLOR,
    empty_figure,
    figure_from_spec,
    title_from_top,
)

CATEGORY_TYPES = ("ordinal", "binary", "categorical")
MISSING_LEVEL = "unknown"

PHENOTYPE_HEIGHT = 440
"""Height of a phenotype plot in pixels (its card starts at it: drawn once, at its size)."""


TOOLBAR_PX = 32
"""Height of plotly's toolbar, drawn over the top of a graph while the pointer is on it."""


def _under_the_toolbar(text: str | None) -> tuple[dict, dict]:
    """The title (its lines under plotly's toolbar, so the toolbar never covers its end) and
    the top margin that holds it."""
    if not text:
        return {"text": text}, {}
    lines = text.count("<br>") + 1
    title = {"text": text} | title_from_top(text, TOOLBAR_PX, SCREEN_TITLE_PX)
    return title, {"t": round(TOOLBAR_PX + lines * SCREEN_TITLE_PX * PRINT_LINE + 8)}


def _category_order(values: pd.Series, levels: Sequence[str] | None) -> list[str]:
    present = set(values.astype(str))
    if levels is None and isinstance(values.dtype, pd.CategoricalDtype):
        levels = [str(level) for level in values.cat.categories]
    if levels is None:
        return sorted(present)
    ordered = [str(level) for level in levels if str(level) in present]
    return ordered + sorted(present - set(ordered))


def _color_levels(values: pd.Series) -> list[str]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [str(level) for level in values.cat.categories]
    else:
        levels = sorted(set(values.dropna().astype(str)))
    return levels + ([MISSING_LEVEL] if values.isna().any() else [])


def _level_color(level: str | None, index: int) -> str:
    if level is None:
        return NEUTRAL_COLOR
    return UNASSIGNED_COLOR if level == MISSING_LEVEL else QUALITATIVE[index % len(QUALITATIVE)]


@fits_screen
def phenotype_plot(
    df: pd.DataFrame,
    *,
    feature_type: str,
    value_label: str,
    feature_label: str,
    color: str | None = None,
    levels: Sequence[str] | None = None,
    title: str | None = None,
    color_title: str | None = None,
) -> go.Figure:
    """Eigengene (or expression) per patient against an imaging feature.

    Parameters
    ----------
    df
        Columns ``patient``, ``value`` (y), ``feature`` (x) and optionally the column named
        by ``color`` (e.g. a mutation status).
    feature_type
        ``continuous`` gives a scatter with an OLS line and Spearman's rho in the title;
        ``ordinal`` / ``binary`` / ``categorical`` give a box with the points per category.
    value_label, feature_label
        Axis titles.
    color
        Column of ``df`` to colour points by.
    levels
        Category order (defaults to the categorical dtype's order, else sorted).
    title
        Figure title (the rho summary is appended for continuous features).

    Returns
    -------
    The figure; every point's ``customdata`` is its patient ID.
    """
    if df is None or df.empty:
        return empty_figure(
            "No patients to show: choose a module and an imaging feature.", title=title
        )
    missing = [column for column in ("patient", "value", "feature") if column not in df]
    if color is not None and color not in df:
        missing.append(color)
    if missing:
        raise InputError(f"phenotype table lacks column(s) {missing}")
    data = df.dropna(subset=["value", "feature"])
    if data.empty:
        return empty_figure(
            "No patient has both values: choose another feature or module.", title=title
        )
    patients = data["patient"].astype(str)
    groups = (
        [(None, np.ones(len(data), dtype=bool))]
        if color is None
        else [
            (
                level,
                (
                    data[color].astype(str).where(data[color].notna(), MISSING_LEVEL) == level
                ).to_numpy(),
            )
            for level in _color_levels(data[color])
        ]
    )
    traces: list[dict] = []
    layout: dict = {}
    if feature_type in CATEGORY_TYPES:
        order = _category_order(data["feature"], levels)
        x = data["feature"].astype(str)
        for index, (level, mask) in enumerate(groups):
            if not mask.any():
                continue
            traces.append(
                {
                    "type": "box",
                    "x": x[mask].tolist(),
                    "y": data["value"][mask].astype(float).round(4).tolist(),
                    "customdata": patients[mask].tolist(),
                    "name": level if level is not None else value_label,
                    "showlegend": level is not None,
                    "boxpoints": "all",
                    "jitter": 0.4,
                    "pointpos": 0,
                    "marker": {"size": 5, "opacity": 0.7, "color": _level_color(level, index)},
                    "line": {"color": _level_color(level, index)},
                    "fillcolor": "rgba(0,0,0,0)",
                    "hovertemplate": "patient %{customdata}<br>%{x}<br>"
                    + value_label
                    + " %{y:.3f}<extra>%{fullData.name}</extra>",
                }
            )
        counts = x.value_counts()
        layout["xaxis"] = {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": order,
            "tickvals": order,
            "ticktext": [f"{level}<br>(n={counts.get(level, 0)})" for level in order],
        }
        layout["boxmode"] = "group" if color is not None else "overlay"
        full_title = title
    elif feature_type == "continuous":
        x = data["feature"].astype(float).to_numpy()
        y = data["value"].astype(float).to_numpy()
        for index, (level, mask) in enumerate(groups):
            if not mask.any():
                continue
            traces.append(
                {
                    "type": "scatter",
                    "x": np.round(x[mask], 4),
                    "y": np.round(y[mask], 4),
                    "customdata": patients[mask].tolist(),
                    "mode": "markers",
                    "name": level if level is not None else value_label,
                    "showlegend": level is not None,
                    "marker": {"size": 6, "opacity": 0.8, "color": _level_color(level, index)},
                    "hovertemplate": "patient %{customdata}<br>"
                    + f"{feature_label} %{{x:.3g}}<br>{value_label} %{{y:.3f}}"
                    + "<extra>%{fullData.name}</extra>",
                }
            )
        summary = f"n = {len(x)}"
        if len(x) >= 3 and np.ptp(x) > 0:
            fit = stats.linregress(x, y)
            line_x = np.array([x.min(), x.max()])
            traces.append(
                {
                    "type": "scatter",
                    "x": line_x,
                    "y": fit.intercept + fit.slope * line_x,
                    "mode": "lines",
                    "line": {"color": "black", "width": 1.5},
                    "name": "OLS fit",
                    "hoverinfo": "skip",
                }
            )
            rho = stats.spearmanr(x, y).statistic
            summary = f"Spearman ρ = {rho:.2f}, n = {len(x)}"
        full_title = f"{title}<br>{summary}" if title else summary
    else:
        raise InputError(
            f"feature_type must be continuous, ordinal, binary or categorical, got {feature_type!r}"
        )
    title_layout, top = _under_the_toolbar(full_title)
    layout["title"] = title_layout
    layout["margin"] = top
    layout.setdefault("xaxis", {})["title"] = {"text": feature_label}
    layout["yaxis"] = {"title": {"text": value_label}}
    if color:
        layout["legend"] = {"title": {"text": color_title or color}}
    layout["height"] = PHENOTYPE_HEIGHT
    return figure_from_spec(traces, layout)
