"""Cohort overview: sample matching, missing values, feature types, mutations x imaging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ...analysis.bundle import FEATURE_SOURCES, FEATURE_TYPES
from ...analysis.validate import InputError
from ..figures.heatmap import map_heatmap
from ..figures.margins import fits_screen
from ..figures.style import (
    OKABE_ITO,
    TEMPLATE,
    empty_figure,
    natural_key,
    rows_height,
    short_labels,
)

MATCHED_COLOR = OKABE_ITO[3]
UNMATCHED_COLOR = OKABE_ITO[4]
SHOWN_UNMATCHED = 10


@fits_screen
def overlap_figure(matching: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Matched and unmatched patient IDs per input source (bundle ``matching``).

    Parameters
    ----------
    matching
        Columns ``source``, ``n_ids``, ``n_matched``, ``n_unmatched``, ``unmatched``
        (``|``-joined IDs).
    title
        Figure title.

    Returns
    -------
    Stacked horizontal bars, hover lists the first unmatched IDs.
    """
    if matching is None or matching.empty:
        return empty_figure("No sample matching recorded in this bundle.", title=title)
    missing = [c for c in ("source", "n_matched", "n_unmatched") if c not in matching]
    if missing:
        raise InputError(f"matching table lacks column(s) {missing}")
    data = matching.iloc[::-1]
    names = data["source"].astype(str).tolist()
    sources = [_two_line_source(name) for name in names]
    unmatched = data["unmatched"] if "unmatched" in data else pd.Series([""] * len(data))
    examples = [
        ", ".join(str(ids).split("|")[:SHOWN_UNMATCHED]) if isinstance(ids, str) and ids else "none"
        for ids in unmatched
    ]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=sources,
            x=data["n_matched"].astype(int).tolist(),
            orientation="h",
            name="matched",
            marker_color=MATCHED_COLOR,
            customdata=names,
            hovertemplate="%{customdata}: %{x} matched<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            y=sources,
            x=data["n_unmatched"].astype(int).tolist(),
            orientation="h",
            name="unmatched",
            marker_color=UNMATCHED_COLOR,
            customdata=list(zip(names, examples, strict=True)),
            hovertemplate="%{customdata[0]}: %{x} unmatched<br>e.g. %{customdata[1]}"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(type="category")
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        barmode="stack",
        xaxis_title="patient IDs",
        height=int(np.clip(140 + 40 * len(sources), 260, 600)),
        legend={
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 1.02,
            "yanchor": "bottom",
            "traceorder": "normal",
        },
    )
    return fig


def _two_line_source(source: str, *, width: int = 26) -> str:
    """ "expression (a_long_file_name.csv)" as the source over its (shortened) file name, so
    that the bars keep their width on a narrow screen; the hover has the whole text."""
    name, _, files = source.partition(" (")
    if not files:
        return source
    files = files.rstrip(")")
    if len(files) > width:
        files = files[: width // 2 - 1] + "…" + files[-(width // 2) :]
    return f"{name}<br><span style='font-size:0.85em'>{files}</span>"


def _missing_fraction(missing: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(missing, pd.Series):
        return pd.DataFrame({"fraction": missing.astype(float)})
    if "fraction" in missing:
        return missing.assign(fraction=missing["fraction"].astype(float))
    return pd.DataFrame({"fraction": missing.isna().mean(axis=0)})


@fits_screen
def missingness_figure(
    missing: pd.DataFrame | pd.Series, *, top: int = 40, title: str | None = None
) -> go.Figure:
    """Fraction of patients without a value, per imaging feature.

    Parameters
    ----------
    missing
        Either indexed by feature with a ``fraction`` column (optional ``label``), a Series
        feature -> fraction, or the patients x features data itself.
    top
        Features shown, most missing first.
    title
        Figure title.

    Returns
    -------
    Horizontal bars; the title reports how many features have no missing value.
    """
    if missing is None or len(missing) == 0:
        return empty_figure("No imaging features in this bundle.", title=title)
    data = _missing_fraction(missing)
    data.index = data.index.astype(str)
    complete = int((data["fraction"] == 0).sum())
    shown = (
        data[data["fraction"] > 0]
        .assign(_id=lambda t: t.index)
        .sort_values(["fraction", "_id"], ascending=[False, True], kind="mergesort")
        .head(top)
        .iloc[::-1]
    )
    summary = f"{complete} of {len(data)} features complete"
    full_title = f"{title} ({summary})" if title else summary
    if shown.empty:
        return empty_figure(
            "Every imaging feature has a value for every patient.", title=full_title
        )
    labels = (
        shown["label"].astype(str)
        if "label" in shown
        else pd.Series(shown.index, index=shown.index)
    )
    fig = go.Figure(
        go.Bar(
            x=shown["fraction"].round(4).tolist(),
            y=shown.index.tolist(),
            orientation="h",
            marker_color=UNMATCHED_COLOR,
            customdata=labels.tolist(),
            hovertemplate="%{customdata}<br>%{x:.1%} missing<extra></extra>",
        )
    )
    fig.update_yaxes(
        type="category",
        tickmode="array",
        tickvals=shown.index.tolist(),
        ticktext=short_labels(labels.tolist()),
    )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_layout(
        template=TEMPLATE,
        title=full_title,
        xaxis_title="patients without a value",
        height=rows_height(len(shown), chrome=130, minimum=260),
    )
    return fig


@fits_screen
def feature_types_figure(features: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Number of imaging features per source, split by type (bundle ``features``)."""
    if features is None or features.empty:
        return empty_figure("No imaging features in this bundle.", title=title)
    missing = [c for c in ("type", "source") if c not in features]
    if missing:
        raise InputError(f"features table lacks column(s) {missing}")
    counts = pd.crosstab(features["source"].astype(str), features["type"].astype(str))
    sources = [s for s in FEATURE_SOURCES if s in counts.index]
    sources += sorted(set(counts.index) - set(sources), key=natural_key)
    types = [t for t in FEATURE_TYPES if t in counts.columns]
    types += sorted(set(counts.columns) - set(types), key=natural_key)
    counts = counts.reindex(index=sources, columns=types, fill_value=0)
    fig = go.Figure()
    for index, kind in enumerate(types):
        fig.add_trace(
            go.Bar(
                x=sources,
                y=counts[kind].astype(int).tolist(),
                name=kind,
                marker_color=OKABE_ITO[index % len(OKABE_ITO)],
                hovertemplate="%{x}: %{y} " + kind + "<extra></extra>",
            )
        )
    fig.update_xaxes(type="category")
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        barmode="stack",
        yaxis_title="features",
        yaxis_type="log" if counts.to_numpy().max() > 200 else "linear",
        height=360,
        legend={"title": {"text": "type"}},
    )
    return fig


@fits_screen
def mutation_imaging_figure(
    table: pd.DataFrame,
    features: pd.DataFrame | None = None,
    *,
    q_threshold: float = 0.05,
    title: str | None = None,
) -> go.Figure:
    """Imaging features (rows) x mutations (columns): signed effect, significant marked.

    Parameters
    ----------
    table
        Bundle ``mutation_imaging`` (``mutation``, ``feature``, ``effect``, ``q``, ...) or
        the tidy output of a categorical association (``left``, ``right`` instead).
    features
        Bundle ``features`` table for labels and groups.
    q_threshold
        Cells with ``q < q_threshold`` are marked.
    title
        Figure title.

    Returns
    -------
    A :func:`~explorer.figures.heatmap.map_heatmap` figure whose columns are mutations;
    ``customdata[0:2]`` per cell is ``[feature_id, mutation]``.
    """
    if table is None or table.empty:
        return empty_figure("No mutation status in the clinical table.", title=title)
    data = table.rename(columns={"left": "mutation", "right": "feature"})
    missing = [c for c in ("mutation", "feature", "effect", "q") if c not in data]
    if missing:
        raise InputError(f"mutation x imaging table lacks column(s) {missing}")
    data = data.rename(columns={"mutation": "module"})
    return map_heatmap(
        data, features, q_threshold=q_threshold, cluster=True, column_title="mutation", title=title
    )
