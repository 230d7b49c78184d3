"""One patient against the cohort: values marked on the cohort's distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..figures.margins import fits_screen
from ..figures.style import (
    NEUTRAL_COLOR,
    OKABE_ITO,
    TEMPLATE,
    empty_figure,
    labelled_categories,
    rows_height,
)
from ..figures.survival import km_figure

SECTION_COLORS = {
    "Module eigengene": OKABE_ITO[3],
    "Hub gene": OKABE_ITO[2],
    "Semantic feature": OKABE_ITO[4],
    "Radiomic feature": OKABE_ITO[5],
    "Other imaging feature": OKABE_ITO[0],
}
BOX_COLOR = "#9aa5b1"
PATIENT_SYMBOL = "diamond"


def _z(values: pd.Series, measures: pd.DataFrame) -> np.ndarray:
    return ((values - measures["mean"]) / measures["sd"]).to_numpy(dtype=float)


@fits_screen
def patient_profile_figure(
    measures: pd.DataFrame, *, patient: str, title: str | None = None
) -> go.Figure:
    """The patient's value on each row against the cohort's box (quartiles and range).

    Parameters
    ----------
    measures
        As from :func:`explorer.patient.patient_measures`: one row per measure with the
        patient's ``value``, ``percentile``, ``z`` and the cohort's ``mean``, ``sd``,
        ``q1``, ``median``, ``q3``, ``low``, ``high``, ``n``; ``section`` groups the rows.
    patient
        The patient's ID (legend and hover).
    title
        Figure title.

    Returns
    -------
    One row per measure, in cohort standard deviations from the cohort mean (so genes,
    eigengenes and imaging features share an axis): a grey box (quartiles, whiskers to the
    cohort's range) and the patient as a diamond coloured by section; hover gives the raw
    value, the percentile and the cohort's median. The patient's markers carry the row key
    as ``customdata``.
    """
    rows = measures[(measures["sd"] > 0) & measures["sd"].notna()].reset_index(drop=True)
    if rows.empty:
        return empty_figure("No values to compare for this patient.", title=title)
    names = rows["name"].astype(str).tolist()
    fig = go.Figure()
    fig.add_trace(
        go.Box(
            y=names,
            q1=_z(rows["q1"], rows),
            median=_z(rows["median"], rows),
            q3=_z(rows["q3"], rows),
            lowerfence=_z(rows["low"], rows),
            upperfence=_z(rows["high"], rows),
            orientation="h",
            name="cohort",
            marker={"color": BOX_COLOR},
            line={"color": BOX_COLOR, "width": 1},
            fillcolor="rgba(154,165,177,0.25)",
            hoverinfo="skip",
        )
    )
    for section, part in rows.groupby("section", sort=False):
        known = part[part["value"].notna()]
        if known.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=np.round(known["z"].to_numpy(dtype=float), 3),
                y=known["name"].astype(str).tolist(),
                customdata=np.column_stack(
                    [
                        known["key"].astype(str),
                        known["value"].map(lambda v: f"{v:.4g}"),
                        known["percentile"].round(0),
                        known["median"].map(lambda v: f"{v:.4g}"),
                        known["n"],
                    ]
                ),
                mode="markers",
                name=f"{patient}: {str(section).lower()}",
                marker={
                    "symbol": PATIENT_SYMBOL,
                    "size": 11,
                    "color": SECTION_COLORS.get(str(section), NEUTRAL_COLOR),
                    "line": {"color": "black", "width": 1},
                },
                hovertemplate="<b>%{y}</b><br>patient %{customdata[1]} "
                "(percentile %{customdata[2]:.0f})<br>cohort median %{customdata[3]}, "
                "n = %{customdata[4]}<br>z = %{x:.2f}<extra></extra>",
            )
        )
    axis = labelled_categories(names[::-1])
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=names[::-1], **axis)
    fig.update_xaxes(zeroline=True, zerolinecolor="#cccccc")
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        xaxis_title="cohort standard deviations from the cohort mean (z)",
        height=rows_height(len(rows), chrome=170) + 4 * len(rows),
        legend={"orientation": "h", "y": -0.08 - 20 / max(len(rows), 1) / 40, "x": 0},
        showlegend=True,
    )
    return fig


@fits_screen
def patient_survival_figure(
    survival: dict | None, *, patient: str, title: str | None = None
) -> go.Figure:
    """The cohort's Kaplan–Meier curve with the patient's follow-up marked on it.

    ``survival`` is :func:`explorer.patient.patient_survival`'s dict (None: no survival
    data). The patient is a diamond at their follow-up time on the cohort curve: filled for
    an event, open when censored.
    """
    if survival is None:
        return empty_figure("This bundle has no survival time / event.", title=title)
    fig = km_figure(survival["curve"].assign(group="cohort"), title=title)
    time, event = survival["time"], survival["event"]
    if np.isfinite(time):
        state = "event" if event == 1 else "censored (alive at last follow-up)"
        fig.add_trace(
            go.Scatter(
                x=[time],
                y=[survival["at_time"]],
                mode="markers",
                name=f"{patient}: {'event' if event == 1 else 'censored'}",
                marker={
                    "symbol": PATIENT_SYMBOL if event == 1 else f"{PATIENT_SYMBOL}-open",
                    "size": 14,
                    "color": OKABE_ITO[4],
                    "line": {"color": OKABE_ITO[4], "width": 2},
                },
                customdata=[[state, survival["percentile"]]],
                hovertemplate=f"<b>{patient}</b><br>%{{customdata[0]}} at %{{x:.0f}}<br>"
                "cohort survival there %{y:.2f}<br>follow-up longer than "
                "%{customdata[1]:.0f} % of the cohort<extra></extra>",
                xaxis="x",
                yaxis="y",
            )
        )
        fig.add_vline(x=time, line={"color": OKABE_ITO[4], "dash": "dot", "width": 1})
        # two entries, inside the curve's top right corner: the figure fits a half-width
        # card (beside the curve they needed 580 px and the card scrolled them off)
        fig.update_layout(
            legend={
                "x": 0.99,
                "xanchor": "right",
                "y": 0.99,
                "yanchor": "top",
                "bgcolor": "rgba(255,255,255,0.85)",
            }
        )
    return fig
