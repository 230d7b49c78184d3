"""Hypotheses page: pinned associations with notes, and the session report."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..data import BundleData
from ..pages.common import page_title
from ..state import ViewState

PAGE = "hypotheses"


def layout(data: BundleData, state: ViewState) -> html.Div:
    return html.Div(
        [
            page_title(
                "Hypotheses",
                "Associations you pinned from the map, volcano and gene views, with their "
                "statistics and your notes. Export them as a report.",
            ),
            dbc.Card(
                [
                    dbc.CardHeader("Session report", className="rm-card-header"),
                    dbc.CardBody(
                        [
                            dbc.Button(
                                "Download Markdown",
                                id="report-markdown",
                                color="primary",
                                outline=True,
                                size="sm",
                                className="me-2",
                            ),
                            dbc.Button(
                                "Download HTML",
                                id="report-html",
                                color="primary",
                                outline=True,
                                size="sm",
                            ),
                            dcc.Download(id="report-download"),
                        ]
                    ),
                ],
                className="rm-card mb-3",
            ),
            dcc.Loading(html.Div(id="pins-list")),
        ]
    )
