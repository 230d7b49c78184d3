"""Replication figures: the scorecard of the discovery links and module preservation.

Pure factories over the tables of :mod:`radmap.analysis.replicate` (``scorecard``,
``preservation``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from ..figures.margins import MIN_PLOT_PX, fits_screen, text_width
from ..figures.style import NEUTRAL_COLOR, OKABE_ITO, SCREEN_FONT_PX, TEMPLATE, empty_figure

STATUS_COLORS = {
    "replicated": OKABE_ITO[2],
    "opposite sign": OKABE_ITO[4],
    "not replicated": "#A0A0A0",
    "not testable": "#D0D0D0",
}
STRONG, MODERATE = 10.0, 2.0
"""Z-summary thresholds of strong and moderate preservation (Langfelder et al. 2011)."""


@fits_screen
def scorecard_figure(card: Mapping[str, int], *, title: str | None = None) -> go.Figure:
    """Discovery links by replication status (one horizontal bar each).

    Parameters
    ----------
    card
        The scorecard of :func:`radmap.analysis.replicate.scorecard`.
    title
        Figure title.
    """
    total = int(card.get("discovery_links", 0))
    if not total:
        return empty_figure("No discovery link to replicate (none passed the q threshold).")
    statuses = list(STATUS_COLORS)
    counts = [int(card.get(status.replace(" ", "_"), 0)) for status in statuses]
    texts = [f"{c} ({c / total:.0%})" for c in counts]
    # the counts beside the bars stay on the plot at its narrowest (they ran past its edge)
    room = max(text_width(text, SCREEN_FONT_PX) for text in texts) + 8
    top = max(*counts, 1) / (1 - min(room / MIN_PLOT_PX, 0.5))
    fig = go.Figure(
        go.Bar(
            x=counts,
            y=statuses,
            orientation="h",
            marker_color=[STATUS_COLORS[s] for s in statuses],
            text=texts,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x} links<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=title or f"{total} discovery links, {int(card.get('tested', 0))} tested",
        xaxis={"title": "Discovery links", "range": [0, top]},
        yaxis={"autorange": "reversed"},
        showlegend=False,
        margin={"l": 120, "b": 50},
    )
    return fig


@fits_screen
def preservation_figure(preservation: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Z-summary of each discovery module in the validation cohort, with the strong (10) and
    moderate (2) thresholds.

    Parameters
    ----------
    preservation
        Index = module; column ``Z_summary`` (and ``preservation``).
    title
        Figure title.
    """
    if preservation is None or preservation.empty or "Z_summary" not in preservation:
        return empty_figure("No module preservation in this replication.")
    table = preservation.sort_values("Z_summary", ascending=False)
    z = table["Z_summary"].astype(float)
    colors = [
        OKABE_ITO[2] if value > STRONG else OKABE_ITO[0] if value > MODERATE else "#A0A0A0"
        for value in z
    ]
    fig = go.Figure(
        go.Bar(
            x=[str(m) for m in table.index],
            y=z,
            marker_color=colors,
            hovertemplate="%{x}: Z-summary %{y:.1f}<extra></extra>",
        )
    )
    for level, label in ((STRONG, "strong"), (MODERATE, "moderate")):
        fig.add_hline(
            y=level,
            line={"color": NEUTRAL_COLOR, "dash": "dash", "width": 1},
            annotation_text=label,
            annotation_position="top left",
            annotation_bgcolor="rgba(255,255,255,0.8)",  # legible over a bar
        )
    fig.update_layout(
        template=TEMPLATE,
        title=title or "Module preservation in the validation cohort",
        xaxis_title="Discovery module",
        yaxis_title="Z-summary",
        showlegend=False,
        margin={"b": 60},
    )
    return fig
