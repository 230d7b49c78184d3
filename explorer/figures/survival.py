"""Kaplan–Meier curves with confidence bands and a number-at-risk table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ...analysis.validate import InputError
from ..figures.margins import fits_screen
from ..figures.style import (
    QUALITATIVE,
    FrozenArray,
    empty_figure,
    figure_from_spec,
    p_statement,
)

_ROW_SPACING = 0.1
TEST_NAMES = {"logrank": "log-rank", "cox_trend": "Cox trend"}
REQUIRED = ("group", "time", "survival", "ci_low", "ci_high", "at_risk")


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def at_risk_at(curve: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """Number at risk at each of ``times`` from a curve's ``time`` / ``at_risk`` rows.

    The number at risk at ``t`` is that of the first curve time ``>= t`` (no one leaves
    the risk set between recorded times); 0 after the last recorded time.
    """
    curve = curve.sort_values("time")
    position = np.searchsorted(curve["time"].to_numpy(), times, side="left")
    at_risk = np.append(curve["at_risk"].to_numpy(), 0)
    return at_risk[position].astype(int)


def time_ticks(end: float, n_ticks: int = 6) -> np.ndarray:
    """Round times from 0 to ``end`` for a survival plot's axis and its at-risk table.

    Steps of 1, 2, 2.5 or 5 times a power of ten, at most ``n_ticks`` times (fewer when
    the last round time past ``end`` would be needed), as on a published Kaplan–Meier plot.
    """
    if not np.isfinite(end) or end <= 0:
        return np.array([0.0])
    raw = end / max(n_ticks - 1, 1)
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(factor * power for factor in (1, 2, 2.5, 5, 10) if factor * power >= raw)
    return np.round(np.arange(0.0, end * (1 + 1e-9), step), 10)


@fits_screen
def km_figure(
    curves: pd.DataFrame,
    *,
    p: float | None = None,
    test: str = "logrank",
    n: int | None = None,
    events: int | None = None,
    q: float | None = None,
    hr: float | None = None,
    note: str = "",
    time_label: str = "Time (days)",
    n_ticks: int = 6,
    title: str | None = None,
) -> go.Figure:
    """Step survival curves per group, shaded confidence bands and numbers at risk.

    Parameters
    ----------
    curves
        Columns ``group``, ``time``, ``survival``, ``ci_low``, ``ci_high``, ``at_risk``
        (one row per group and time, as from a Kaplan–Meier fit).
    p
        p-value of the test comparing the groups, shown on the plot.
    test
        That test: ``logrank`` or ``cox_trend`` (the Cox trend test over an ordered scale,
        shown with ``hr``, its hazard ratio per level).
    n, events
        Patients (and their events) in the curves, shown on the plot.
    q
        The analysis' q of the test, when the curves show the analysis' own grouping.
    note
        A line under the statistics (e.g. levels left out).
    time_label
        x-axis title.
    n_ticks
        Most time points in the at-risk table (round times: :func:`time_ticks`).
    title
        Figure title.

    Returns
    -------
    The figure: curves on top, numbers at risk per group below.
    """
    if curves is None or curves.empty:
        return empty_figure(
            "No survival data: the bundle needs survival_time and survival_event columns.",
            title=title,
        )
    missing = [column for column in REQUIRED if column not in curves]
    if missing:
        raise InputError(f"survival curves lack column(s) {missing}")
    data = curves.dropna(subset=["time", "survival"]).copy()
    data["group"] = data["group"].astype(str)
    # In the order of the curves (kaplan_meier's: a split's low -> high, a scale's levels).
    groups = list(pd.unique(data["group"]))
    lower = (0.16 if len(groups) <= 2 else 0.25) * (1 - _ROW_SPACING)
    end = float(data["time"].max())
    ticks = time_ticks(end, n_ticks)
    traces = []
    for index, group in enumerate(groups):
        color = QUALITATIVE[index % len(QUALITATIVE)]
        curve = data[data["group"] == group].sort_values("time")
        if curve["time"].iloc[0] > 0:
            first = curve.iloc[[0]].assign(time=0.0, survival=1.0, ci_low=1.0, ci_high=1.0)
            curve = pd.concat([first, curve], ignore_index=True)
        time = FrozenArray(curve["time"].round(3).tolist())
        for bound, fill in (("ci_high", None), ("ci_low", "tonexty")):
            band = {
                "type": "scatter",
                "x": time,
                "y": FrozenArray(curve[bound].round(4).tolist()),
                "mode": "lines",
                "line": {"width": 0, "shape": "hv", "color": color},
                "fillcolor": _rgba(color, 0.18),
                "legendgroup": group,
                "showlegend": False,
                "hoverinfo": "skip",
                "name": f"{group} {bound}",
                "xaxis": "x",
                "yaxis": "y",
            }
            if fill:
                band["fill"] = fill
            traces.append(band)
        traces.append(
            {
                "type": "scatter",
                "x": time,
                "y": FrozenArray(curve["survival"].round(4).tolist()),
                "customdata": np.column_stack(
                    [curve["ci_low"].round(3), curve["ci_high"].round(3), curve["at_risk"]]
                ),
                "mode": "lines",
                "line": {"shape": "hv", "color": color, "width": 2},
                "name": group,
                "legendgroup": group,
                "hovertemplate": f"<b>{group}</b><br>time %{{x:.0f}}<br>survival %{{y:.2f}} "
                "(%{customdata[0]:.2f}–%{customdata[1]:.2f})<br>at risk %{customdata[2]}"
                "<extra></extra>",
                "xaxis": "x",
                "yaxis": "y",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "x": ticks,
                "y": [group] * len(ticks),
                "mode": "text",
                "text": [str(n) for n in at_risk_at(curve, ticks)],
                "textfont": {"color": color},
                "showlegend": False,
                "hoverinfo": "skip",
                "name": f"{group} at risk",
                "xaxis": "x2",
                "yaxis": "y2",
            }
        )
    annotations = []
    lines = []
    if p is not None and np.isfinite(p):
        name = TEST_NAMES.get(test, test)
        text = f"{name} {p_statement('p', p)}"
        if q is not None and np.isfinite(q):
            text += f", {p_statement('q', q)}"
        lines.append(text)
        if hr is not None and np.isfinite(hr):
            lines.append(f"HR per level = {hr:.2f}")
    if n is not None:
        lines.append(f"n = {n:,}" + (f", {events:,} events" if events is not None else ""))
    if note:
        lines.append(note)
    if lines:
        annotations.append(
            {
                # Bottom left, where survival curves (starting at 1) rarely are.
                "text": "<br>".join(lines),
                "x": 0.02,
                "y": 0.03,
                "xref": "x domain",
                "yref": "y domain",
                "xanchor": "left",
                "yanchor": "bottom",
                "align": "left",
                "bgcolor": "rgba(255,255,255,0.85)",
                "showarrow": False,
            }
        )
    layout = {
        "xaxis": {
            "anchor": "y",
            "domain": [0.0, 1.0],
            "matches": "x2",
            "showticklabels": False,
            "tickvals": ticks,
        },
        "xaxis2": {
            "anchor": "y2",
            "domain": [0.0, 1.0],
            "title": {"text": time_label},
            "tickvals": ticks,
            "tickformat": ",~g",  # 10,000 days, not plotly's "10k"
            "showline": False,
            "ticks": "",
        },
        "yaxis": {
            "anchor": "x",
            "domain": [lower + _ROW_SPACING, 1.0],
            "title": {"text": "Survival probability"},
            "range": [0, 1.02],
        },
        "yaxis2": {
            "anchor": "x2",
            "domain": [0.0, lower],
            "type": "category",
            "categoryorder": "array",
            "categoryarray": groups[::-1],
            "range": [-0.6, len(groups) - 0.4],
            "showline": False,
            "ticks": "",
            "title": {"text": "At risk"},
        },
        "annotations": annotations,
        "height": 440,
        "hovermode": "closest",
    }
    if title:
        layout["title"] = {"text": title}
    if n is not None:
        layout["meta"] = {"n": int(n), "events": None if events is None else int(events)}
    return figure_from_spec(traces, layout)


@fits_screen
def survival_view_figure(view, *, title: str | None = None) -> go.Figure:
    """:func:`km_figure` of an :class:`explorer.data.SurvivalView` (curves, test, n)."""
    return km_figure(
        view.curves,
        p=view.p,
        test=view.test,
        n=view.n,
        events=view.events,
        q=view.q,
        hr=view.hr,
        note=view.note,
        title=view.description if title is None else title,
    )
