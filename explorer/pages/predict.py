"""Predict page: the virtual biopsy, imaging feature sets against the baselines."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..data import BundleData
from ..pages.common import (
    control,
    controls_card,
    empty_state,
    figure_card,
    page_title,
    pin_button,
    sid,
    table_card,
)
from ..state import ViewState

PAGE = "predict"
DESCRIPTION = (
    "Can imaging read mutation status or module activity? Each feature set is scored by "
    "repeated nested cross-validation with every fitted step inside the folds, against "
    "tumour size, clinical and constant baselines; a permutation test of the whole procedure "
    "gives each AUC's p-value."
)


def layout(data: BundleData, state: ViewState) -> html.Div:
    """The page; without results it says how to make them (the components stay, hidden, so
    that results written while the app runs show up on the next visit)."""
    from ..callbacks.predict import load_results

    results, message = load_results(data)
    targets = (
        list(dict.fromkeys(results.summary["target"].astype(str)))
        if results is not None and not results.summary.empty
        else []
    )
    target = state.target if state.target in targets else (targets[0] if targets else None)
    controls = controls_card(
        [
            control(
                "Target",
                dcc.Dropdown(
                    id=sid(PAGE, "target"),
                    options=[{"label": t, "value": t} for t in targets],
                    value=target,
                    clearable=False,
                ),
            ),
            html.Div(id="predict-protocol", className="small text-muted text-break"),
            html.Div(pin_button(PAGE, label="Pin this prediction"), className="mt-2"),
        ]
    )
    if not targets:
        notes = [empty_state(message, title="No prediction results for this bundle")]
    elif message:
        notes = [dbc.Alert(message, color="warning", className="rm-alert")]
    else:
        notes = []
    return html.Div(
        [
            page_title("Predict", DESCRIPTION),
            *notes,
            dbc.Row(
                [
                    dbc.Col(controls, lg=3),
                    dbc.Col(
                        [
                            dbc.Alert(id="predict-verdict", color="info", className="rm-verdict"),
                            dbc.Row(
                                [
                                    dbc.Col(
                                        figure_card("predict-roc", "ROC curves", height=640), lg=7
                                    ),
                                    dbc.Col(
                                        figure_card(
                                            "predict-calibration", "Calibration", height=640
                                        ),
                                        lg=5,
                                    ),
                                ]
                            ),
                            figure_card(
                                "predict-performance", "Performance by feature set", height=320
                            ),
                            table_card("predict-summary", "Metrics", height=380),
                            table_card(
                                "predict-importance",
                                "Most important features and their stability across folds",
                                height=420,
                            ),
                        ],
                        lg=9,
                    ),
                ],
                style=None if targets else {"display": "none"},
            ),
        ]
    )
