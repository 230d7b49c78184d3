"""Replication page: how the discovery map fares in a second cohort (``radmap replicate``)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from ..data import BundleData
from ..pages.common import (
    control,
    controls_card,
    empty_state,
    figure_card,
    page_title,
    table_card,
)
from ..state import ViewState

PAGE = "replication"
STATUS_OPTIONS = ("all", "replicated", "opposite sign", "not replicated", "not testable")
DESCRIPTION = (
    "Each discovery link re-tested in a validation cohort (same feature, the module's "
    "eigengene projected with the discovery loadings, one-sided in the discovery direction, "
    "BH replication q over the links), and each module's preservation (WGCNA Z-summary: "
    "> 10 strong, 2–10 moderate)."
)


def layout(data: BundleData, state: ViewState) -> html.Div:
    """The page; without a replication result it says how to make one (the components stay,
    hidden, so that a result written while the app runs shows on the next visit)."""
    from ..callbacks.replication import load_replication

    result, message = load_replication(data)
    controls = controls_card(
        [
            control(
                "Links shown",
                dbc.RadioItems(
                    id="replication-status",
                    options=[{"label": s.capitalize(), "value": s} for s in STATUS_OPTIONS],
                    value="all",
                ),
            ),
            html.Div(id="replication-protocol", className="small text-muted mt-2"),
        ]
    )
    if result is None:
        notes = [empty_state(message, title="No replication result for this bundle")]
    elif message:
        notes = [dbc.Alert(message, color="warning", className="rm-alert")]
    else:
        notes = []
    return html.Div(
        [
            page_title("Replication", DESCRIPTION),
            *notes,
            dbc.Row(
                [
                    dbc.Col(controls, lg=3),
                    dbc.Col(
                        [
                            dbc.Alert(
                                id="replication-verdict", color="info", className="rm-verdict"
                            ),
                            dbc.Row(
                                [
                                    dbc.Col(
                                        figure_card(
                                            "replication-scorecard", "Scorecard", height=360
                                        ),
                                        lg=6,
                                    ),
                                    dbc.Col(
                                        figure_card(
                                            "replication-preservation",
                                            "Module preservation",
                                            height=360,
                                        ),
                                        lg=6,
                                    ),
                                ]
                            ),
                            table_card(
                                "replication-links", "Discovery links re-tested", height=420
                            ),
                            table_card("replication-modules", "Module preservation", height=300),
                        ],
                        lg=9,
                    ),
                ],
                style=None if result is not None else {"display": "none"},
            ),
        ]
    )
