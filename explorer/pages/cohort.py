"""Cohort page: sample matching, missingness, feature types, mutations and survival."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..data import BundleData
from ..pages.common import (
    control,
    empty_state,
    figure_card,
    long_dropdown,
    page_title,
    sid,
    split_controls,
    table_card,
    table_note,
    warnings_panel,
)
from ..pages.subset import subset_panel
from ..state import ViewState

PAGE = "cohort"


def km_options(data: BundleData) -> list[dict]:
    """What the Kaplan–Meier view can group patients by (features, modules, mutations)."""
    return [{"label": label, "value": value} for value, label in data.survival_choices()]


def layout(data: BundleData, state: ViewState) -> html.Div:
    from ..callbacks.cohort import LAYOUT_PARTS  # callbacks import the pages
    from ..callbacks.subset import resolve

    # The first figures are drawn with the page; the slower parts follow by callback.
    view = resolve(data, state.subset)
    drawn = {key: value for build in LAYOUT_PARTS for key, value in build(view, state.q).items()}
    choices = data.survival_choices()
    if choices:
        km = figure_card(
            "cohort-km",
            "Kaplan–Meier",
            height=440,
            extra=[
                control(
                    "Group patients by",
                    long_dropdown(
                        sid(PAGE, "km"),
                        km_options(data),
                        state.km or choices[0][0],
                        clearable=False,
                    ),
                ),
                split_controls(PAGE, state),
            ],
        )
    else:
        km = empty_state(
            "This bundle has no survival time / event: add them to the clinical table and "
            "re-run `radmap analyze`.",
            title="No survival data",
        )
    return html.Div(
        [
            dcc.Store(id="cohort-ready"),
            page_title(
                "Cohort",
                "Which patients have which data, how complete the imaging features are, "
                "how mutations relate to imaging, and survival.",
            ),
            subset_panel(data, PAGE, state),
            dbc.Row(
                [
                    dbc.Col(
                        figure_card(
                            "cohort-overlap", "Sample matching", height=360, figure=drawn["overlap"]
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        figure_card(
                            "cohort-types", "Feature types", height=360, figure=drawn["types"]
                        ),
                        lg=6,
                    ),
                ]
            ),
            figure_card(
                "cohort-missing", "Missing imaging values", height=420, figure=drawn["missing"]
            ),
            dbc.Row(
                [
                    dbc.Col(figure_card("cohort-mutation", "Mutation x imaging", height=460), lg=6),
                    dbc.Col(
                        table_card(
                            "cohort-mutation",
                            "Mutation x imaging tests",
                            height=460,
                            extra=[table_note("cohort-mutation-note")],
                        ),
                        lg=6,
                    ),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(
                        table_card(
                            "cohort-survival",
                            "Survival tests",
                            height=420,
                            row_id="key",
                            extra=[table_note("cohort-survival-note")],
                        ),
                        lg=6,
                    ),
                    dbc.Col(km, lg=6),
                ]
            ),
            table_card("cohort-matching", "Matching details", height=240),
            dbc.Card(
                [
                    dbc.CardHeader(
                        f"Warnings from the analysis ({len(data.warnings)})",
                        className="rm-card-header",
                    ),
                    dbc.CardBody(warnings_panel(data.warnings)),
                ],
                className="rm-card mb-3",
            ),
        ]
    )
