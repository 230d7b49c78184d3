"""Network page: imaging features — gene modules — pathways at the FDR threshold."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from explorer.data import BundleData
from explorer.pages.common import (
    control,
    controls_card,
    figure_card,
    min_effect_control,
    page_title,
    q_control,
    sid,
)
from explorer.state import ViewState

PAGE = "network"


def layout(data: BundleData, state: ViewState) -> html.Div:
    sources = sorted(data.features["source"].dropna().astype(str).unique())
    groups = sorted(data.features["group"].dropna().astype(str).unique())
    controls = controls_card(
        [
            q_control(PAGE, state.q),
            min_effect_control(PAGE, state.min_effect),
            control(
                "Feature sources",
                dbc.Checklist(
                    id=sid(PAGE, "sources"),
                    options=[{"label": s.capitalize(), "value": s} for s in sources],
                    value=list(state.sources),
                ),
                help="None ticked = all sources.",
            ),
            control(
                "Feature groups",
                dcc.Dropdown(
                    id=sid(PAGE, "groups"),
                    options=[{"label": g, "value": g} for g in groups],
                    value=list(state.groups),
                    multi=True,
                    placeholder="All groups",
                ),
            ),
        ]
    )
    return html.Div(
        [
            page_title(
                "Association network",
                "Imaging features linked to the modules they associate with (q below the "
                "threshold), and each module's top enriched pathways. Click a feature to open "
                "its volcano plot, a module or pathway to open the module page.",
            ),
            dbc.Row(
                [
                    dbc.Col(controls, lg=3),
                    dbc.Col(
                        [
                            html.Div(id="network-note"),
                            figure_card("network", "Network", height=640),
                        ],
                        lg=9,
                    ),
                ]
            ),
        ]
    )
