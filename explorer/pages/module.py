"""Module page: the table of modules and, per module, expression, enrichment and genes."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..data import BundleData
from ..pages.common import (
    control,
    controls_card,
    figure_card,
    page_title,
    q_control,
    sid,
    table_card,
)
from ..state import ViewState

PAGE = "module"


def layout(data: BundleData, state: ViewState) -> html.Div:
    controls = controls_card(
        [
            control(
                "Module",
                dcc.Dropdown(
                    id=sid(PAGE, "module"),
                    options=[{"label": m, "value": m} for m in data.module_names],
                    value=state.module or data.strongest_link()["module"],
                    placeholder="Choose a module (or click a row)",
                ),
            ),
            control(
                "Order patients by",
                dcc.Dropdown(
                    id=sid(PAGE, "order"),
                    options=data.feature_options(),
                    value=state.order,
                    placeholder="Module eigengene",
                ),
            ),
            q_control(PAGE, state.q),
            html.Div(id="module-info", className="rm-stats"),
        ],
        title="Module",
    )
    return html.Div(
        [
            page_title(
                "Gene modules",
                "Co-expressed gene modules with their hub genes, top pathway and strongest "
                "imaging link. Click a row to open a module.",
            ),
            table_card("modules", "Modules", height=300, row_selection=True, row_id="module"),
            dbc.Row(
                [
                    dbc.Col(controls, lg=3),
                    dbc.Col(
                        [
                            html.Div(id="module-note"),
                            figure_card(
                                "module-heatmap", "Member genes across patients", height=520
                            ),
                            dbc.Row(
                                [
                                    dbc.Col(
                                        figure_card(
                                            "module-enrichment", "Enriched pathways", height=440
                                        ),
                                        lg=6,
                                    ),
                                    dbc.Col(
                                        table_card(
                                            "module-genes", "Member genes (kME)", height=440
                                        ),
                                        lg=6,
                                    ),
                                ]
                            ),
                        ],
                        lg=9,
                    ),
                ]
            ),
        ]
    )
