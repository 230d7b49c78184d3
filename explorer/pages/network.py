"""Network page: imaging features — gene modules — pathways at the FDR threshold."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from ..data import BundleData
from ..pages.common import (
    controls_card,
    feature_filter_controls,
    figure_card,
    min_effect_control,
    page_title,
    q_control,
)
from ..state import ViewState

PAGE = "network"


def layout(data: BundleData, state: ViewState) -> html.Div:
    controls = controls_card(
        [
            q_control(PAGE, state.q),
            min_effect_control(PAGE, state.min_effect),
            *feature_filter_controls(PAGE, data, state),
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
