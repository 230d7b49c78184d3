"""Module page: the table of modules and, per module, expression, enrichment and genes."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..data import BundleData
from ..pages.common import (
    control,
    controls_card,
    figure_card,
    long_dropdown,
    page_title,
    q_control,
    sid,
    table_card,
)
from ..state import ViewState

PAGE = "module"


def layout(data: BundleData, state: ViewState, *, base: str = "/") -> html.Div:
    from ..callbacks.module import module_view, modules_grid  # callbacks import the pages

    module = state.module or data.strongest_link()["module"]
    # Drawn with the page (one round trip); the module callback answers later changes.
    view = module_view(data, module, order=state.order, q=state.q, base=base)
    module_rows, module_columns = modules_grid(data, q=state.q)
    controls = controls_card(
        [
            control(
                "Module",
                dcc.Dropdown(
                    id=sid(PAGE, "module"),
                    options=[{"label": m, "value": m} for m in data.module_names],
                    value=module,
                    placeholder="Choose a module (or click a row)",
                ),
            ),
            control(
                "Order patients by",
                long_dropdown(
                    sid(PAGE, "order"),
                    data.feature_options(),
                    state.order,
                    placeholder="Module eigengene",
                ),
            ),
            q_control(PAGE, state.q),
            html.Div(view["info"], id="module-info", className="rm-stats"),
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
            table_card(
                "modules",
                "Modules",
                height=300,
                row_selection=True,
                row_id="module",
                rows=module_rows,
                columns=module_columns,
            ),
            dbc.Row(
                [
                    dbc.Col(controls, lg=3),
                    dbc.Col(
                        [
                            html.Div(view["note"], id="module-note"),
                            figure_card(
                                "module-heatmap",
                                "Member genes across patients",
                                height=520,
                                figure=view["heatmap"],
                            ),
                            dbc.Row(
                                [
                                    dbc.Col(
                                        figure_card(
                                            "module-enrichment",
                                            "Enriched pathways",
                                            height=440,
                                            figure=view["enrichment"],
                                        ),
                                        lg=6,
                                    ),
                                    dbc.Col(
                                        table_card(
                                            "module-genes",
                                            "Member genes (kME)",
                                            height=440,
                                            rows=view["rows"],
                                            columns=view["columns"],
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
