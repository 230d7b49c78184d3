"""Map page: the clustered heatmap of imaging features x gene modules, with a drill-down."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..data import BundleData
from ..pages.common import (
    control,
    controls_card,
    feature_filter_controls,
    figure_card,
    min_effect_control,
    null_badge,
    page_title,
    pin_button,
    q_control,
    sid,
    state_store,
    table_card,
)
from ..pages.subset import subset_panel
from ..state import ViewState

PAGE = "map"
DRILL_REQUEST = "map-drill-request"
COMPARE_REQUEST = "map-compare-request"
"""Stores the map's callback writes when a new map needs the drill-down (a cell is chosen)
or the comparison (one is shown) computed again: the hidden panels' callbacks are not even
called when only the map changes (each call costs the page ~15 updates of Dash's store)."""
ROW_CHOICES = (
    ("Automatic", "auto"),
    ("All features", "features"),
    ("Radiomic families", "families"),
    ("Top features", "top"),
)


def row_options(data: BundleData) -> list[dict]:
    """The map's row choices; "Radiomic families" only when there are radiomic features."""
    radiomic = (data.features["source"].astype(str) == "radiomic").any()
    return [
        {"label": label, "value": value}
        for label, value in ROW_CHOICES
        if value != "families" or radiomic
    ]


def layout(data: BundleData, state: ViewState, *, base: str = "/") -> html.Div:
    """The map page with its controls initialised from ``state``."""
    from ..callbacks.map import drill_down, map_figure  # callbacks import the pages
    from ..callbacks.subset import compare_view, resolve

    # The map, its drill-down and the compared subset are drawn with the page (one round
    # trip); their callbacks answer later changes.
    view = resolve(data, state.subset)
    map_options = state.map_options()
    heatmap, heatmap_style, heatmap_note = map_figure(view, **map_options)
    panel = drill_down(view, state.feature, state.module, q=state.q, color=state.color, base=base)
    compared = compare_view(data, state.subset, state.compare, **map_options)
    mutation_options = [{"label": f"{m} status", "value": m} for m in data.mutations]
    controls = controls_card(
        [
            q_control(PAGE, state.q),
            control(
                "Colour by",
                dbc.RadioItems(
                    id=sid(PAGE, "stat"),
                    options=[
                        {"label": "Effect size", "value": "effect"},
                        {"label": "Signed -log10 q", "value": "signed_log10_q"},
                    ],
                    value=state.stat,
                ),
            ),
            *feature_filter_controls(PAGE, data, state),
            min_effect_control(PAGE, state.min_effect),
            control(
                "Rows",
                dbc.RadioItems(
                    id=sid(PAGE, "rows"),
                    options=row_options(data),
                    value=state.rows,
                ),
                help="Automatic keeps the map readable with many radiomic features.",
            ),
            control(
                "Top features (N)",
                dbc.Input(
                    id=sid(PAGE, "top"),
                    type="number",
                    min=5,
                    max=500,
                    step=5,
                    value=state.top,
                    debounce=True,
                ),
            ),
        ]
    )
    drill = html.Div(
        [
            dbc.Card(
                [
                    dbc.CardHeader(
                        [
                            html.Span(
                                panel["title"], id="map-drill-title", className="rm-card-title"
                            ),
                            html.Div(
                                [
                                    pin_button(PAGE),
                                    dcc.Link(
                                        "Volcano of this feature",
                                        id="map-drill-volcano",
                                        href=panel["volcano_href"],
                                        className="btn btn-sm btn-outline-secondary",
                                    ),
                                    dcc.Link(
                                        "Module page",
                                        id="map-drill-module",
                                        href=panel["module_href"],
                                        className="btn btn-sm btn-outline-secondary",
                                    ),
                                ],
                                className="rm-export",
                            ),
                        ],
                        className="rm-card-header d-flex justify-content-between align-items-center",
                    ),
                    dbc.CardBody(
                        html.Div(panel["stats"], id="map-drill-stats", className="rm-stats")
                    ),
                ],
                className="rm-card mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        figure_card(
                            "map-phenotype",
                            "Eigengene by imaging feature",
                            height=440,
                            figure=panel["figure"],
                            extra=[
                                control(
                                    "Colour points by",
                                    dcc.Dropdown(
                                        id=sid(PAGE, "color"),
                                        options=mutation_options,
                                        value=state.color,
                                        placeholder="No colour",
                                    ),
                                )
                            ],
                        ),
                        lg=7,
                    ),
                    dbc.Col(
                        [
                            dbc.Card(
                                [
                                    dbc.CardHeader("Hub genes", className="rm-card-header"),
                                    dbc.CardBody(html.Div(panel["hubs"], id="map-drill-hubs")),
                                ],
                                className="rm-card mb-3",
                            ),
                            table_card(
                                "map-pathways",
                                "Top enriched pathways",
                                height=260,
                                rows=panel["pathway_rows"],
                                columns=panel["pathway_columns"],
                            ),
                        ],
                        lg=5,
                    ),
                ]
            ),
        ],
        id="map-drill",
        className="rm-drill",
        style=panel["style"],
    )
    return html.Div(
        [
            dcc.Store(id="map-drill-revealed"),
            dcc.Store(id=DRILL_REQUEST),
            dcc.Store(id=COMPARE_REQUEST),
            page_title(
                "Radiogenomic map",
                "Associations between imaging features (rows) and co-expressed gene modules "
                "(columns). Dots mark cells below the FDR threshold. Click a cell to drill down.",
            ),
            subset_panel(data, PAGE, state, compare=True),
            state_store(PAGE, "feature", state.feature),
            state_store(PAGE, "module", state.module),
            dbc.Row(
                [
                    dbc.Col(controls, lg=3),
                    dbc.Col(
                        [
                            _null_badge(view),
                            html.Div(heatmap_note, id="map-note"),
                            figure_card(
                                "map-heatmap",
                                "Module x feature associations",
                                height=None,
                                fit=False,
                                figure=heatmap,
                                box_style=heatmap_style,
                            ),
                            _compare_panel(*compared),
                            drill,
                        ],
                        lg=9,
                    ),
                ]
            ),
        ]
    )


def _null_badge(data: BundleData) -> html.Div:
    """How much of the map chance alone would give (the bundle's permutation null)."""
    return null_badge(
        data.null_badge(),
        badge_id="map-null-badge",
        title="Patients' imaging rows permuted against expression; links passing the same "
        "q threshold in the permuted maps are false by construction",
    )


def _compare_panel(style: dict, compared, difference) -> html.Div:
    """The comparison subset's map (B) under the map (A), at its width, then the difference
    B - A; shown with a comparison. (Side by side at half width, both scrolled sideways
    at 1600 px.)"""
    return html.Div(
        [
            figure_card("map-compare", "Compared subset (B)", height=460, figure=compared),
            figure_card("map-difference", "Difference B − A", height=460, figure=difference),
        ],
        id="map-compare-panel",
        style=style,
    )
