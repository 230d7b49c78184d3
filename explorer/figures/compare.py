"""Two subsets' module maps compared: the effect difference, cells significant in one only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .margins import fits_screen
from .style import (
    DIVERGING,
    TEMPLATE,
    empty_figure,
    format_p,
    labelled_categories,
    order_modules,
    rows_height,
)

MARKS = {(True, False): "A", (False, True): "B", (True, True): "•", (False, False): ""}
"""Cell text: significant in subset A only, in B only, in both."""


@fits_screen
def map_difference(
    first: pd.DataFrame,
    second: pd.DataFrame,
    features: pd.DataFrame | None = None,
    *,
    q_threshold: float = 0.05,
    label_a: str = "A",
    label_b: str = "B",
    max_rows: int = 60,
) -> go.Figure:
    """Heatmap of the effect in subset B minus subset A, per module x feature.

    Rows are the features whose effect changes most (at most ``max_rows``), cells are
    marked "A" / "B" when significant (``q < q_threshold``) in that subset only and "•" in
    both; the hover gives both effects and q-values.

    Parameters
    ----------
    first, second
        Module x feature associations of subsets A and B (``module``, ``feature``,
        ``effect``, ``q``; ``effect_measure`` optional).
    features
        Feature table for row labels (``label``).
    """
    keys = ["module", "feature"]
    columns = [*keys, "effect", "q"]
    merged = first[columns].merge(second[columns], on=keys, suffixes=("_a", "_b"))
    merged = merged[merged["effect_a"].notna() | merged["effect_b"].notna()]
    if merged.empty:
        return empty_figure("The two subsets have no association in common to compare.")
    merged["difference"] = merged["effect_b"] - merged["effect_a"]
    merged["sig_a"] = merged["q_a"] < q_threshold
    merged["sig_b"] = merged["q_b"] < q_threshold
    strength = merged["difference"].abs().groupby(merged["feature"]).max()
    flagged = merged.groupby("feature").apply(
        lambda g: bool((g["sig_a"] != g["sig_b"]).any()), include_groups=False
    )
    order = (
        pd.DataFrame({"flagged": flagged, "strength": strength.fillna(0)})
        .sort_values(["flagged", "strength"], ascending=False)
        .index[:max_rows]
    )
    merged = merged[merged["feature"].isin(order)]
    labels = (
        features["label"].astype(str).to_dict()
        if features is not None and "label" in features
        else {}
    )
    rows = [labels.get(f, f) for f in order][::-1]
    row_of = {f: labels.get(f, f) for f in order}
    modules = order_modules(merged["module"].unique())
    grid = merged.assign(row=merged["feature"].map(row_of)).set_index(["row", "module"])
    index = pd.MultiIndex.from_product([rows, modules], names=["row", "module"])
    grid = grid.reindex(index)

    def matrix(column: str) -> np.ndarray:
        return grid[column].to_numpy().reshape(len(rows), len(modules))

    diff = matrix("difference").astype(float)
    marks = [
        [MARKS[(bool(a is True), bool(b is True))] for a, b in zip(row_a, row_b, strict=True)]
        for row_a, row_b in zip(
            matrix("sig_a").astype(object), matrix("sig_b").astype(object), strict=True
        )
    ]
    hover = [
        [
            f"{row} x {module}<br>{label_a}: effect {_number(ea)}, q {format_p(qa)}"
            f"<br>{label_b}: effect {_number(eb)}, q {format_p(qb)}"
            f"<br>difference {_number(d)}"
            for module, ea, qa, eb, qb, d in zip(modules, *values, strict=True)
        ]
        for row, *values in zip(
            rows,
            matrix("effect_a"),
            matrix("q_a"),
            matrix("effect_b"),
            matrix("q_b"),
            diff,
            strict=True,
        )
    ]
    limit = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=diff,
            x=modules,
            y=rows,
            text=marks,
            texttemplate="%{text}",
            hovertext=hover,
            hoverinfo="text",
            colorscale=DIVERGING,
            zmid=0,
            zmin=-limit,
            zmax=limit,
            colorbar={"title": {"text": "effect<br>B − A"}},
            xgap=1,
            ygap=1,
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title={
            "text": f"Difference: B ({label_b}) − A ({label_a})<br><sup>"
            f"A / B: significant (q < {q_threshold:g}) in that subset only; • in both</sup>"
        },
        height=rows_height(len(rows), chrome=200),
        yaxis=labelled_categories(rows),
        xaxis={"title": {"text": "module"}, "side": "bottom"},
    )
    return fig


def _number(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if not np.isfinite(number) else f"{number:.2f}"
