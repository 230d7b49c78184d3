"""Patient page: one patient's hub genes, eigengenes, imaging, markers and survival vs the cohort."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..data import BundleData
from ..figures.patient import patient_profile_figure, patient_survival_figure
from ..pages.common import control, controls_card, figure_card, page_title, sid, table_card
from ..patient import (
    patient_categories,
    patient_ids,
    patient_measures,
    patient_survival,
    viewer_link,
)
from ..state import ViewState

PAGE = "patient"
CATEGORY_COLUMNS = ("kind", "name", "value", "share", "n", "levels")
CATEGORY_WIDTHS = {"name": 260, "value": 160}
"""Widest these columns get (px; full text on hover): the patient's value and share stay in
view in a card beside the survival curve at 1600 px."""


def default_patient(data: BundleData) -> str | None:
    ids = patient_ids(data)
    return ids[0] if ids else None


def profile_figure(data: BundleData, patient: str):
    return patient_profile_figure(
        patient_measures(data, patient),
        patient=patient,
        title=f"Patient {patient} in the cohort",
    )


def survival_figure(data: BundleData, patient: str):
    return patient_survival_figure(
        patient_survival(data, patient),
        patient=patient,
        title=f"Patient {patient} on the cohort's survival curve",
    )


def category_grid(data: BundleData, patient: str) -> tuple[list[dict], list[dict]]:
    from ..callbacks.common import grid  # callbacks import the pages: not at module level

    table = patient_categories(data, patient)
    table["share"] = table["share"].round(1)
    rows, columns = grid(table, CATEGORY_COLUMNS)
    for definition in columns:
        widest = CATEGORY_WIDTHS.get(definition["field"])
        if widest is not None:
            definition["width"] = min(definition["width"], widest)
    return rows, columns


def facts(data: BundleData, patient: str) -> list:
    """Viewer link and survival line of the patient (the controls card)."""
    items: list = []
    link = viewer_link(data.viewer_url, patient)
    if link:
        items.append(
            html.A(
                "Open the image series ↗",
                href=link,
                target="_blank",
                rel="noopener noreferrer",
                id="patient-viewer-link",
                className="btn btn-outline-primary btn-sm mt-2",
            )
        )
    markers = patient_categories(data, patient)
    markers = markers[markers["kind"] == "mutation"]
    if not markers.empty:
        items.append(
            html.Div(
                [
                    html.Span(f"{row.key} {row.value}", className="rm-fact me-3")
                    for row in markers.itertuples()
                ],
                id="patient-markers",
                className="mt-2",
            )
        )
    survival = patient_survival(data, patient)
    if survival is not None and survival["time"] == survival["time"]:
        what = "event" if survival["event"] == 1 else "censored"
        items.append(
            html.Div(
                f"Follow-up {survival['time']:.0f} days ({what}); longer than "
                f"{survival['percentile']:.0f} % of the cohort.",
                className="rm-stat mt-2",
            )
        )
    return items


def body(data: BundleData, patient: str | None) -> list:
    """Figures and table of one patient (the part a new patient choice replaces)."""
    if patient is None:
        return [html.P("This bundle has no patients.", className="rm-empty")]
    rows, columns = category_grid(data, patient)
    return [
        figure_card(
            "patient-profile",
            "Hub genes, eigengenes and imaging features vs the cohort",
            figure=profile_figure(data, patient),
        ),
        dbc.Row(
            [
                dbc.Col(
                    figure_card(
                        "patient-survival",
                        "Survival",
                        figure=survival_figure(data, patient),
                    ),
                    lg=5,
                ),
                dbc.Col(
                    table_card(
                        "patient-categories",
                        "Marker status and categorical imaging features (share of the "
                        "cohort at the patient's level, %)",
                        height=440,
                        rows=rows,
                        columns=columns,
                    ),
                    lg=7,
                ),
            ]
        ),
    ]


def layout(data: BundleData, state: ViewState) -> html.Div:
    patient = state.patient or default_patient(data)
    ids = patient_ids(data)
    controls = controls_card(
        [
            control(
                "Patient",
                dcc.Dropdown(
                    id=sid(PAGE, "patient"),
                    options=ids,
                    value=patient,
                    placeholder="Type a patient ID",
                    searchable=True,
                    clearable=False,
                ),
                help=f"Search among {len(ids):,} patients, or click a patient's point in a "
                "phenotype plot (Map drill-down, Gene page).",
            ),
            html.Div(facts(data, patient) if patient else [], id="patient-facts"),
        ],
        title="Patient",
    )
    return html.Div(
        [
            page_title(
                "Patient",
                "One patient's module eigengenes, hub-gene expression, imaging features, "
                "marker status and survival, each against the rest of the cohort.",
            ),
            dbc.Row(
                [
                    dbc.Col(controls, lg=3),
                    dbc.Col(html.Div(body(data, patient), id="patient-body"), lg=9),
                ]
            ),
        ]
    )
