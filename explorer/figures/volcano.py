"""Volcano plot of gene-level associations with one imaging feature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ...analysis.bundle import UNASSIGNED
from ...analysis.validate import InputError
from ..figures.margins import fits_screen
from ..figures.style import (
    NEUTRAL_COLOR,
    FrozenArray,
    effect_title,
    empty_figure,
    figure_from_spec,
    format_p_values,
    module_colors,
    order_modules,
    scatter_type,
)

SIGNIFICANT_OPACITY = 0.9
BACKGROUND_OPACITY = 0.3


def neg_log10(values: np.ndarray) -> np.ndarray:
    """-log10 of p-values, with zeros put one decade below the smallest positive value."""
    values = np.asarray(values, dtype=float)
    positive = values[values > 0]
    floor = positive.min() / 10 if positive.size else 1e-300
    return -np.log10(np.clip(values, max(floor, 1e-300), None))


def _format_sig(values: np.ndarray) -> list[str]:
    return format_p_values(values)


@fits_screen
def volcano(
    df: pd.DataFrame,
    *,
    y: Literal["p", "q"] = "p",
    q_threshold: float = 0.05,
    min_effect: float = 0.0,
    highlight: Sequence[str] | None = None,
    modules: Sequence[str] | None = None,
    max_labels: int = 30,
    title: str | None = None,
) -> go.Figure:
    """Effect against -log10 p (or q) for every gene, coloured by module.

    Parameters
    ----------
    df
        Columns ``gene``, ``effect``, ``p``, ``q`` and optionally ``module``.
    y
        Plot -log10 of ``p`` or of ``q``.
    q_threshold, min_effect
        Genes with ``q < q_threshold`` and ``|effect| >= min_effect`` are drawn larger and
        opaque; the thresholds are drawn as lines (for ``y="p"`` the horizontal line is at
        the largest p that passes the q threshold).
    highlight
        Genes to label.
    modules
        Full module list of the bundle, so that colours match other views.
    max_labels
        At most this many highlighted genes are labelled.
    title
        Figure title.

    Returns
    -------
    A figure of scatter traces (WebGL for many genes), one per module and significance (legend entries
    grouped by module; ``customdata`` = gene symbol), lasso selection enabled.
    """
    if y not in ("p", "q"):
        raise InputError(f"y must be 'p' or 'q', got {y!r}")
    if df is None or df.empty:
        return empty_figure("No gene statistics to show: choose an imaging feature.", title=title)
    missing = [column for column in ("gene", "effect", "p", "q") if column not in df]
    if missing:
        raise InputError(f"volcano table lacks column(s) {missing}")
    data = df.dropna(subset=["effect", y]).copy()
    if data.empty:
        return empty_figure(
            "No gene has a finite effect and p-value for this feature.", title=title
        )
    data["module"] = (
        data["module"].fillna(UNASSIGNED).astype(str) if "module" in data else UNASSIGNED
    )
    data["gene"] = data["gene"].astype(str)
    data["height"] = neg_log10(data[y].to_numpy())
    significant = (data["q"] < q_threshold) & (data["effect"].abs() >= min_effect)
    data["significant"] = significant.to_numpy()
    other = "q" if y == "p" else "p"
    colors = module_colors(
        [*modules, UNASSIGNED] if modules is not None else order_modules(data["module"])
    )
    effect = data["effect"].to_numpy(dtype=np.float32)
    height = data["height"].to_numpy(dtype=np.float32)
    genes = data["gene"].to_numpy(dtype=str)
    other_text = np.array(_format_sig(data[other].to_numpy(dtype=float)), dtype=str)
    significant = data["significant"].to_numpy()
    module_code, module_names = pd.factorize(data["module"])
    traces = []
    trace_type = scatter_type(len(data))
    # One trace per module and significance with a single marker size and opacity: plotly's
    # WebGL scatter re-reads per-point arrays on every draw (10x slower for 20,000 genes).
    for module in order_modules(module_names):
        in_module = module_code == module_names.get_loc(module)
        n_significant, n_all = int(significant[in_module].sum()), int(in_module.sum())
        for passed in (True, False):
            part = np.flatnonzero(in_module & (significant == passed))
            if not len(part):
                continue
            traces.append(
                {
                    "type": trace_type,
                    "x": effect[part],
                    "y": height[part],
                    "customdata": FrozenArray(genes[part].tolist()),
                    "text": FrozenArray(other_text[part].tolist()),
                    "mode": "markers",
                    "name": f"{module} ({n_significant}/{n_all})",
                    "legendgroup": module,
                    "showlegend": passed or n_significant == 0,
                    "marker": {
                        "color": colors.get(module, NEUTRAL_COLOR),
                        "size": 7 if passed else 4,
                        "opacity": SIGNIFICANT_OPACITY if passed else BACKGROUND_OPACITY,
                        "line": {"width": 0},
                    },
                    "hovertemplate": "<b>%{customdata}</b><br>effect %{x:.3f}<br>"
                    + f"−log10 {y} %{{y:.2f}}<br>{other} %{{text}}"
                    + f"<extra>{module}</extra>",
                }
            )
    shapes = []
    annotations = []
    if y == "q":
        cut = q_threshold
    else:
        passing = data.loc[data["q"] < q_threshold, "p"]
        cut = float(passing.max()) if len(passing) else None
    if cut is not None and cut > 0:
        line_y = float(-np.log10(cut))
        shapes.append(
            {
                "type": "line",
                "xref": "x domain",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": line_y,
                "y1": line_y,
                "line": {"dash": "dash", "color": NEUTRAL_COLOR, "width": 1},
            }
        )
        annotations.append(
            {
                "text": f"q = {q_threshold:g}",
                "xref": "x domain",
                "yref": "y",
                "x": 0,
                "y": line_y,
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
    if min_effect > 0:
        for x in (-min_effect, min_effect):
            shapes.append(
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "y domain",
                    "x0": x,
                    "x1": x,
                    "y0": 0,
                    "y1": 1,
                    "line": {"dash": "dot", "color": NEUTRAL_COLOR, "width": 1},
                }
            )
    if highlight:
        chosen = data[data["gene"].isin(list(highlight))].nlargest(max_labels, "height")
        traces.append(
            {
                "type": trace_type,
                "x": chosen["effect"].to_numpy(dtype=np.float32),
                "y": chosen["height"].to_numpy(dtype=np.float32),
                "customdata": chosen["gene"].tolist(),
                "mode": "markers",
                "marker": {
                    "size": 11,
                    "color": "rgba(0,0,0,0)",
                    "line": {"color": "black", "width": 1.5},
                },
                "name": "highlighted",
                "hoverinfo": "skip",
            }
        )
        for gene, x, point_height in zip(chosen["gene"], chosen["effect"], chosen["height"]):
            annotations.append(
                {
                    "x": round(float(x), 4),
                    "y": round(float(point_height), 3),
                    "text": gene,
                    "showarrow": True,
                    "arrowhead": 0,
                    "arrowwidth": 1,
                    "ax": 0,
                    "ay": -18,
                    "bgcolor": "rgba(255,255,255,0.8)",
                }
            )
    layout = {
        "dragmode": "lasso",
        "xaxis": {
            "title": {"text": effect_title(df)},
            "zeroline": True,
            "zerolinecolor": "#DDDDDD",
        },
        "yaxis": {"title": {"text": f"−log10 {y}"}},
        "legend": {"title": {"text": "module (significant/all)"}},
        "height": 480,
        "shapes": shapes,
        "annotations": annotations,
    }
    if title:
        layout["title"] = {"text": title}
    return figure_from_spec(traces, layout)
