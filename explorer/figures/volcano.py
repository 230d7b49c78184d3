"""Volcano plot of gene-level associations with one imaging feature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.bundle import UNASSIGNED
from analysis.validate import InputError
from explorer.figures.style import (
    NEUTRAL_COLOR,
    TEMPLATE,
    empty_figure,
    module_colors,
    order_modules,
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
    return ["NA" if not np.isfinite(v) else f"{v:.2g}" for v in values]


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
    A figure of one ``Scattergl`` trace per module (``customdata`` = gene symbol), lasso
    selection enabled.
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
    fig = go.Figure()
    for module in order_modules(data["module"]):
        part = data[data["module"] == module]
        sig = part["significant"].to_numpy()
        fig.add_trace(
            go.Scattergl(
                x=part["effect"].to_numpy(dtype=np.float32),
                y=part["height"].to_numpy(dtype=np.float32),
                customdata=part["gene"].tolist(),
                text=_format_sig(part[other].to_numpy(dtype=float)),
                mode="markers",
                name=f"{module} ({int(sig.sum())}/{len(part)})",
                marker={
                    "color": colors.get(module, NEUTRAL_COLOR),
                    "size": np.where(sig, 7, 4).astype(np.uint8),
                    "opacity": np.where(sig, SIGNIFICANT_OPACITY, BACKGROUND_OPACITY).astype(
                        np.float32
                    ),
                    "line": {"width": 0},
                },
                hovertemplate="<b>%{customdata}</b><br>effect %{x:.3f}<br>"
                + f"−log10 {y} %{{y:.2f}}<br>{other} %{{text}}"
                + f"<extra>{module}</extra>",
            )
        )
    if y == "q":
        cut = q_threshold
    else:
        passing = data.loc[data["q"] < q_threshold, "p"]
        cut = float(passing.max()) if len(passing) else None
    if cut is not None and cut > 0:
        fig.add_hline(
            y=float(-np.log10(cut)),
            line={"dash": "dash", "color": NEUTRAL_COLOR, "width": 1},
            annotation_text=f"q = {q_threshold:g}",
            annotation_position="top left",
        )
    if min_effect > 0:
        for x in (-min_effect, min_effect):
            fig.add_vline(x=x, line={"dash": "dot", "color": NEUTRAL_COLOR, "width": 1})
    if highlight:
        chosen = data[data["gene"].isin(list(highlight))].nlargest(max_labels, "height")
        fig.add_trace(
            go.Scattergl(
                x=chosen["effect"].to_numpy(dtype=np.float32),
                y=chosen["height"].to_numpy(dtype=np.float32),
                customdata=chosen["gene"].tolist(),
                mode="markers",
                marker={
                    "size": 11,
                    "color": "rgba(0,0,0,0)",
                    "line": {"color": "black", "width": 1.5},
                },
                name="highlighted",
                hoverinfo="skip",
            )
        )
        for gene, x, height in zip(chosen["gene"], chosen["effect"], chosen["height"]):
            fig.add_annotation(
                x=round(float(x), 4),
                y=round(float(height), 3),
                text=gene,
                showarrow=True,
                arrowhead=0,
                arrowwidth=1,
                ax=0,
                ay=-18,
                bgcolor="rgba(255,255,255,0.8)",
            )
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        dragmode="lasso",
        xaxis_title="effect",
        yaxis_title=f"−log10 {y}",
        legend={"title": {"text": "module (significant/all)"}},
        height=480,
    )
    fig.update_xaxes(zeroline=True, zerolinecolor="#DDDDDD")
    return fig
