"""The "Subset" panel: restrict a page's analyses to some patients (and, on the map, compare
two subsets). Its stores are part of the URL state (keys ``subset`` and ``compare``)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ...analysis.validate import InputError
from ..data import BundleData
from ..pages.common import long_dropdown, state_store
from ..state import ViewState

SUBSET_KEYS = ("subset", "compare")
"""The URL state keys (and state stores) of the subset panel."""


def panel_id(part: str, page: str) -> dict:
    """Id of one part of the subset panel of ``page``."""
    return {"role": f"subset-{part}", "page": page}


def column_options(data: BundleData) -> list[dict]:
    """Dropdown options for the filterable columns, clinical first."""
    return [
        {
            "label": f"{column.label} ({column.source}"
            + (", range)" if column.kind == "numeric" else ")"),
            "value": name,
        }
        for name, column in data.subset_columns().items()
    ]


def banner(data: BundleData, subset: str | None, compare: str | None = None) -> list:
    """ "subset: histology = adenocarcinoma (n = 84 of 130)", or why it is not used."""
    parts = []
    for name, text, css in (
        ("subset", subset, "rm-subset-a"),
        ("compared with", compare, "rm-subset-b"),
    ):
        if not text:
            continue
        try:
            label, n_patients = data.subset_size(text)
        except InputError as error:
            parts.append(
                html.Div(
                    f"{name}: not used — {str(error).rstrip('.')}. Showing the whole cohort.",
                    className="alert alert-danger py-1 mb-1 rm-subset-error",
                )
            )
            continue
        parts.append(
            html.Div(
                f"{name}: {label} (n = {n_patients} of {data.adata.n_obs})",
                className=f"alert alert-info py-1 mb-1 {css}",
            )
        )
    return parts


def subset_panel(data: BundleData, page: str, state: ViewState, *, compare: bool = False):
    """The banner naming the subset shown, and a collapsible editor under it."""
    target = []
    if compare:
        target = [
            dbc.RadioItems(
                id=panel_id("target", page),
                options=[
                    {"label": "Subset shown", "value": "subset"},
                    {"label": "Compare with", "value": "compare"},
                ],
                value="subset",
                inline=True,
                className="mb-2",
            )
        ]
    else:
        target = [
            dbc.RadioItems(
                id=panel_id("target", page),
                options=[{"label": "Subset shown", "value": "subset"}],
                value="subset",
                style={"display": "none"},
            )
        ]
    editor = dbc.Row(
        [
            dbc.Col(
                long_dropdown(
                    panel_id("column", page),
                    column_options(data),
                    None,
                    placeholder="Filter patients by a clinical or imaging column…",
                ),
                lg=4,
            ),
            dbc.Col(
                [
                    dcc.Dropdown(
                        id=panel_id("levels", page),
                        multi=True,
                        placeholder="levels to keep",
                        style={"display": "none"},
                    ),
                    html.Div(
                        [
                            dbc.Input(
                                id=panel_id("low", page),
                                type="number",
                                step="any",
                                placeholder="from",
                            ),
                            dbc.Input(
                                id=panel_id("high", page),
                                type="number",
                                step="any",
                                placeholder="to",
                            ),
                        ],
                        id=panel_id("range", page),
                        className="gap-2",
                        style={"display": "none"},
                    ),
                ],
                lg=4,
            ),
            dbc.Col(
                [
                    dbc.Button("Apply", id=panel_id("apply", page), size="sm", className="me-2"),
                    dbc.Button(
                        "Whole cohort",
                        id=panel_id("clear", page),
                        size="sm",
                        color="secondary",
                        outline=True,
                    ),
                ],
                lg=4,
            ),
        ],
        className="g-2 align-items-center",
    )
    return html.Div(
        [
            state_store(page, "subset", state.subset),
            state_store(page, "compare", state.compare),
            html.Div(
                banner(data, state.subset, state.compare),
                id=panel_id("banner", page),
                className="rm-subset-banner",
            ),
            html.Details(
                [
                    html.Summary("Subset of patients", className="rm-subset-summary"),
                    html.Div(
                        [
                            *target,
                            editor,
                            html.Small(
                                "The analyses of this page are run again on the chosen "
                                "patients with the same tests and corrections. Apply with no "
                                "level chosen to drop that column's condition.",
                                className="text-muted d-block mt-1",
                            ),
                        ],
                        className="rm-subset-editor",
                    ),
                ],
                open=bool(state.subset or state.compare),
                className="rm-subset mb-2",
            ),
        ]
    )
