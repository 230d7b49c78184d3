"""Expression of a module's genes across patients ordered by an imaging feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..figures.heatmap import leaf_order
from ..figures.margins import fits_screen
from ..figures.style import (
    DIVERGING,
    QUALITATIVE,
    SEQUENTIAL,
    TEMPLATE,
    empty_figure,
    labelled_categories,
    natural_key,
    rows_height,
)

MISSING_LEVEL = "unknown"


def _strip(values: pd.Series) -> tuple[np.ndarray, dict]:
    """Colour-strip z values and trace options for numeric or categorical values."""
    if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        return values.to_numpy(dtype=np.float32)[None, :], {
            "colorscale": SEQUENTIAL,
            "showscale": False,
            "customdata": [[f"{v:.3g}" for v in values]],
        }
    text = values.astype(str).where(values.notna(), MISSING_LEVEL)
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [str(c) for c in values.cat.categories if str(c) in set(text)]
    else:
        levels = sorted(set(text) - {MISSING_LEVEL}, key=natural_key)
    if MISSING_LEVEL in set(text):
        levels.append(MISSING_LEVEL)
    code = {level: k for k, level in enumerate(levels)}
    scale = []
    for k, level in enumerate(levels):
        color = "#DDDDDD" if level == MISSING_LEVEL else QUALITATIVE[k % len(QUALITATIVE)]
        scale += [[k / len(levels), color], [(k + 1) / len(levels), color]]
    return np.array([[code[t] for t in text]], dtype=np.float32), {
        "colorscale": scale,
        "zmin": -0.5,
        "zmax": len(levels) - 0.5,
        "showscale": False,
        "customdata": [list(text)],
    }


@fits_screen
def module_expression_heatmap(
    matrix: pd.DataFrame,
    order_values: pd.Series,
    *,
    feature_label: str,
    cluster_genes: bool = True,
    max_genes: int = 200,
    clip: float = 3.0,
    title: str | None = None,
) -> go.Figure:
    """Genes x patients z-scores with patients sorted by an imaging feature.

    Parameters
    ----------
    matrix
        Genes (rows) x patients (columns), z-scored; pass genes in order of importance
        (e.g. by kME): only the first ``max_genes`` are drawn.
    order_values
        One value per patient (numeric or categorical); patients are sorted by it
        (missing last, ties by patient ID) and it is drawn as a strip on top.
    feature_label
        Name of the ordering feature.
    cluster_genes
        Order genes by average-linkage clustering, else keep the given order.
    max_genes
        Largest number of genes drawn.
    clip
        Colour range is ``[-clip, clip]``.
    title
        Figure title.

    Returns
    -------
    The figure.
    """
    if matrix is None or matrix.empty or order_values is None or order_values.empty:
        return empty_figure(
            "No expression to show: choose a module and an imaging feature.", title=title
        )
    patients = [p for p in matrix.columns.astype(str) if p in set(order_values.index.astype(str))]
    if not patients:
        return empty_figure(
            "The expression matrix and the feature share no patient IDs.", title=title
        )
    values = order_values.copy()
    values.index = values.index.astype(str)
    values = values[~values.index.duplicated()].reindex(patients)
    frame = matrix.copy()
    frame.columns = frame.columns.astype(str)
    frame = frame.loc[:, patients].head(max_genes)
    sort_key = (
        values.cat.codes.replace(-1, np.nan)
        if isinstance(values.dtype, pd.CategoricalDtype)
        else values
    )
    order = (
        pd.DataFrame({"key": sort_key.to_numpy(), "patient": patients})
        .sort_values(["key", "patient"], na_position="last", kind="mergesort")["patient"]
        .tolist()
    )
    frame = frame.loc[:, order]
    values = values.reindex(order)
    if cluster_genes:
        frame = frame.iloc[leaf_order(frame.to_numpy(dtype=float))]
    genes = frame.index.astype(str).tolist()
    height = rows_height(len(genes), chrome=200, minimum=380)
    strip = min(0.2, 24 / height)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[strip, 1 - strip], vertical_spacing=0.01
    )
    strip_z, strip_options = _strip(values)
    fig.add_trace(
        go.Heatmap(
            x=order,
            y=[feature_label],
            z=strip_z,
            hovertemplate="patient %{x}<br>" + feature_label + " %{customdata}<extra></extra>",
            name=feature_label,
            **strip_options,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Heatmap(
            x=order,
            y=genes,
            z=frame.to_numpy(dtype=np.float32),
            colorscale=DIVERGING,
            zmin=-clip,
            zmax=clip,
            colorbar={"title": {"text": "z-score"}, "len": 0.8, "y": 0.4},
            hovertemplate="gene %{y}<br>patient %{x}<br>z %{z:.2f}<extra></extra>",
            name="expression",
        ),
        row=2,
        col=1,
    )
    fig.update_xaxes(type="category", showticklabels=False, ticks="", showline=False)
    fig.update_xaxes(
        title_text=f"patients (n = {len(order)}) ordered by {feature_label}", row=2, col=1
    )
    fig.update_yaxes(type="category", ticks="", showline=False)
    fig.update_yaxes(autorange="reversed", row=2, col=1, **labelled_categories(genes))
    fig.update_layout(template=TEMPLATE, title=title, height=height)
    return fig
