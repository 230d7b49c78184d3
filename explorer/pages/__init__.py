"""Page layouts (builders only: no callbacks here) and the navigation bar."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import dash_bootstrap_components as dbc
from dash import html

from ..data import BundleData
from ..pages import (
    cohort,
    gene,
    hypotheses,
    module,
    network,
    patient,
    predict,
    replication,
    volcano,
)
from ..pages import map as map_page
from ..pages.common import state_store
from ..pages.help import help_button
from ..state import PAGE_TITLES, PAGES, ViewState, path_for

LAYOUTS: dict[str, Callable[[BundleData, ViewState], html.Div]] = {
    "map": map_page.layout,
    "network": network.layout,
    "volcano": volcano.layout,
    "gene": gene.layout,
    "module": module.layout,
    "cohort": cohort.layout,
    "patient": patient.layout,
    "predict": predict.layout,
    "replication": replication.layout,
    "hypotheses": hypotheses.layout,
}


Q_CONTROLS = ("map", "network", "volcano", "gene", "module")
"""Pages with an FDR control (the others keep the URL's q in a store)."""


def page_layout(data: BundleData, state: ViewState, *, base: str = "/") -> html.Div:
    """The layout of ``state.page`` initialised from ``state``.

    Layouts that draw links of their own take the app's ``base`` path as a keyword.
    """
    build = LAYOUTS[state.page]
    if "base" in inspect.signature(build).parameters:
        layout = build(data, state, base=base)
    else:
        layout = build(data, state)
    if state.page in Q_CONTROLS:
        return layout
    # The page has no FDR control: it keeps the URL's q (shared across pages) in a store.
    return html.Div([state_store(state.page, "q", state.q), layout])


def not_found(pathname: str, *, base: str = "/") -> html.Div:
    return html.Div(
        [
            html.H2("Page not found", className="rm-page-title"),
            html.P(f"There is no page at {pathname}. Choose one:"),
            html.Ul([html.Li(html.A(PAGE_TITLES[p], href=path_for(p, base=base))) for p in PAGES]),
        ],
        className="rm-empty",
    )


NAVBAR_TOGGLER = "navbar-toggler"
NAVBAR_COLLAPSE = "navbar-collapse"


def navbar(
    *, base: str = "/", hrefs: list[str] | None = None, active: list[bool] | None = None
) -> dbc.Navbar:
    """The navigation bar; link targets and the active page are set by a callback (``hrefs``
    and ``active``, one per page of :data:`PAGES`, are the first ones).

    Below Bootstrap's ``lg`` width (992 px) the links fold behind a toggler button (a
    browser-side callback opens and closes them, and closes them after a page change).
    """
    hrefs = hrefs or [path_for(page, base=base) for page in PAGES]
    active = active or [False] * len(PAGES)
    links = [
        dbc.NavItem(
            dbc.NavLink(
                PAGE_TITLES[page], href=href, active=is_active, id={"role": "nav", "page": page}
            )
        )
        for page, href, is_active in zip(PAGES, hrefs, active, strict=True)
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand(
                    [
                        html.Span("rad", className="rm-brand-a"),
                        html.Span("map", className="rm-brand-b"),
                    ],
                    href=path_for("map", base=base),
                    className="rm-brand",
                ),
                dbc.NavbarToggler(id=NAVBAR_TOGGLER, n_clicks=0),
                dbc.Collapse(
                    [dbc.Nav(links, className="ms-auto", navbar=True), help_button()],
                    id=NAVBAR_COLLAPSE,
                    is_open=False,
                    navbar=True,
                ),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        expand="lg",
        className="rm-navbar mb-0",
    )


def dataset_header(summary: dict, q: str | None = None) -> html.Div:
    """Dataset name, sizes and the current FDR threshold ``q`` (``header-q`` is updated
    live)."""
    facts = [
        html.Span(summary["dataset"], className="rm-dataset"),
        html.Span(f"{summary['n_patients']:,} patients", className="rm-fact"),
        html.Span(f"{summary['n_genes']:,} genes", className="rm-fact"),
        html.Span(f"{summary['n_features']:,} imaging features", className="rm-fact"),
        html.Span(f"{summary['n_modules']:,} modules", className="rm-fact"),
        html.Span(["FDR q < ", html.Span(q, id="header-q")], className="rm-fact rm-fact-q"),
    ]
    return html.Div(
        dbc.Container(facts, fluid=True, className="rm-header-inner"), className="rm-header"
    )
