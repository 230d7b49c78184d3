"""Pathway enrichment of a module, and one gene's associations with imaging features."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ...analysis.validate import InputError
from ..figures.margins import fits_screen
from ..figures.style import (
    DIVERGING,
    NEUTRAL_COLOR,
    SEQUENTIAL,
    TEMPLATE,
    colors_on_scale,
    effect_title,
    empty_figure,
    figure_from_spec,
    format_p_values,
    labelled_categories,
    rows_height,
)
from ..figures.volcano import neg_log10

LINE_CHARS = 26
MAX_LINES = 2


def wrap_term(term: str, *, width: int = LINE_CHARS, lines: int = MAX_LINES) -> str:
    """Term name for an axis: underscores as spaces, wrapped with <br>, cut with an ellipsis."""
    wrapped = textwrap.wrap(term.replace("_", " "), width=width, break_long_words=True)
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1] + "…"
    return "<br>".join(wrapped)


@fits_screen
def enrichment_dotplot(
    df: pd.DataFrame, *, top: int = 15, q_threshold: float = 0.05, title: str | None = None
) -> go.Figure:
    """Top enriched terms: gene ratio (x), term (y), overlap (size), -log10 q (colour).

    Parameters
    ----------
    df
        Columns ``term``, ``collection``, ``overlap``, ``set_size``, ``p``, ``q``,
        ``odds_ratio`` (bundle ``enrichment`` rows of one module).
    top
        Number of terms, the smallest q first.
    q_threshold
        Terms with ``q >= q_threshold`` are drawn with a grey outline instead of black.
    title
        Figure title.

    Returns
    -------
    The figure; ``customdata`` per dot is ``[term, collection, overlap, set_size, p, q,
    odds_ratio]``.
    """
    if df is None or df.empty:
        return empty_figure("No enrichment results for this module.", title=title)
    required = ("term", "collection", "overlap", "set_size", "p", "q", "odds_ratio")
    missing = [column for column in required if column not in df]
    if missing:
        raise InputError(f"enrichment table lacks column(s) {missing}")
    data = (
        df.sort_values(["q", "p", "term"], na_position="last", kind="mergesort")
        .head(top)
        .iloc[::-1]
        .reset_index(drop=True)
    )
    names = data["term"].astype(str)
    duplicated = names.duplicated(keep=False)
    labels = [
        wrap_term(f"{name} ({collection})" if dup else name)
        for name, collection, dup in zip(names, data["collection"].astype(str), duplicated)
    ]
    ratio = data["overlap"].astype(float) / data["set_size"].astype(float).replace(0, np.nan)
    strength = neg_log10(data["q"].to_numpy(dtype=float))
    finite = strength[np.isfinite(strength)]
    strength_max = round(float(max(finite.max(initial=0.0), -np.log10(q_threshold))), 3)
    overlap = data["overlap"].astype(float).to_numpy()
    size = 6 + 18 * np.sqrt(overlap / overlap.max()) if overlap.max() > 0 else np.full(len(data), 8)
    significant = data["q"].to_numpy(dtype=float) < q_threshold
    fig = go.Figure(
        go.Scatter(
            x=ratio.round(4).tolist(),
            y=labels,
            mode="markers",
            marker={
                "size": np.round(size, 1),
                "color": np.round(strength, 3),
                "colorscale": SEQUENTIAL,
                "cmin": 0,
                # at least up to the threshold: with every q = 1 (nothing enriched) plotly
                # centred its scale on 0 and printed negative -log10 q
                "cmax": strength_max,
                "colorbar": {"title": {"text": "−log10 q", "side": "right"}},
                "line": {
                    "color": ["black" if s else "#BBBBBB" for s in significant],
                    "width": 1,
                },
            },
            customdata=np.column_stack(
                [
                    names,
                    data["collection"].astype(str),
                    data["overlap"],
                    data["set_size"],
                    format_p_values(data["p"]),
                    format_p_values(data["q"]),
                    [f"{v:.3g}" for v in data["odds_ratio"]],
                ]
            ),
            hovertemplate="<b>%{customdata[0]}</b> (%{customdata[1]})<br>"
            "overlap %{customdata[2]} of %{customdata[3]}<br>p %{customdata[4]}, "
            "q %{customdata[5]}<br>odds ratio %{customdata[6]}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=labels)
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        xaxis_title="gene ratio (overlap / set size)",
        height=int(np.clip(120 + 32 * len(data), 300, 900)),
    )
    return fig


@fits_screen
def gene_association_bar(
    df: pd.DataFrame, *, q_threshold: float = 0.05, top: int = 30, title: str | None = None
) -> go.Figure:
    """One gene's associations with imaging features: signed effect per feature.

    Parameters
    ----------
    df
        Columns ``feature``, ``label``, ``effect``, ``q``, ``test``.
    q_threshold
        Bars with ``q < q_threshold`` are opaque and outlined, the others faded.
    top
        Number of features, the smallest q first.
    title
        Figure title.

    Returns
    -------
    The figure; ``customdata`` per bar is ``[feature, test, q]``.
    """
    if df is None or df.empty:
        return empty_figure("No associations for this gene: choose another gene.", title=title)
    missing = [c for c in ("feature", "label", "effect", "q", "test") if c not in df]
    if missing:
        raise InputError(f"gene association table lacks column(s) {missing}")
    data = df.dropna(subset=["effect"])
    if data.empty:
        return empty_figure("No finite effect for this gene.", title=title)
    data = data.assign(_strength=-data["effect"].abs())
    data = data.sort_values(["q", "_strength", "feature"], na_position="last", kind="mergesort")
    data = data.head(top).sort_values("effect", kind="mergesort").reset_index(drop=True)
    labels = data["label"].astype(str)
    duplicated = labels.duplicated(keep=False)
    labels = [
        f"{label} ({feature})" if dup else label
        for label, feature, dup in zip(labels, data["feature"], duplicated)
    ]
    significant = (data["q"] < q_threshold).to_numpy()
    limit = float(data["effect"].abs().max()) or 1.0
    bar = {
        "type": "bar",
        "x": data["effect"].round(4).tolist(),
        "y": labels,
        "orientation": "h",
        "marker": {
            "color": colors_on_scale(data["effect"], DIVERGING, -limit, limit),
            "opacity": np.where(significant, 1.0, 0.4),
            "line": {
                "color": [NEUTRAL_COLOR if s else "rgba(0,0,0,0)" for s in significant],
                "width": 1,
            },
        },
        "customdata": np.column_stack(
            [
                data["feature"].astype(str),
                data["test"].astype(str),
                format_p_values(data["q"]),
            ]
        ),
        "hovertemplate": "<b>%{y}</b><br>effect %{x:.3f}<br>test %{customdata[1]}"
        "<br>q %{customdata[2]}<extra></extra>",
        "showlegend": False,
    }
    layout = {
        "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": labels}
        | labelled_categories(labels),
        "xaxis": {
            "zeroline": True,
            "zerolinecolor": NEUTRAL_COLOR,
            "zerolinewidth": 1,
            "title": {"text": f"{effect_title(data)}<br>opaque: q < {q_threshold:g}"},
        },
        "height": rows_height(len(data), chrome=130),
    }
    if title:
        layout["title"] = {"text": title}
    return figure_from_spec([bar], layout)
