"""Gene page: one gene's associations with every imaging feature, module and survival."""

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
    pin_button,
    q_control,
    sid,
    split_controls,
    table_card,
    table_note,
)
from ..pages.subset import subset_panel
from ..state import ViewState

PAGE = "gene"


def layout(data: BundleData, state: ViewState, *, base: str = "/") -> html.Div:
    from ..callbacks.gene import gene_phenotype, gene_view  # callbacks import the pages
    from ..callbacks.subset import resolve

    gene = state.gene or data.strongest_link()["gene"]
    # Drawn with the page (one round trip); the gene callbacks answer later changes.
    subset = resolve(data, state.subset)
    view = gene_view(subset, gene, q=state.q, base=base, split=state.split, cut=state.cut)
    phenotype = gene_phenotype(subset, gene, state.feature, color=state.color)
    gene_options = [{"label": gene, "value": gene}] if gene else []
    controls = controls_card(
        [
            control(
                "Gene",
                dcc.Dropdown(
                    id=sid(PAGE, "gene"),
                    options=gene_options,
                    value=gene,
                    placeholder="Type a gene symbol, e.g. EGFR",
                    searchable=True,
                    clearable=True,
                ),
                help=f"Search among {len(data.genes):,} genes.",
            ),
            q_control(PAGE, state.q),
            html.Div(view["info"], id="gene-info", className="rm-stats"),
        ],
        title="Gene",
    )
    phenotype_controls = [
        dbc.Row(
            [
                dbc.Col(
                    control(
                        "Imaging feature",
                        long_dropdown(
                            sid(PAGE, "feature"),
                            data.feature_options(gene_level=True),
                            state.feature,
                            placeholder="Strongest association",
                        ),
                    ),
                    md=7,
                ),
                dbc.Col(
                    control(
                        "Colour by",
                        dcc.Dropdown(
                            id=sid(PAGE, "color"),
                            options=[{"label": f"{m} status", "value": m} for m in data.mutations],
                            value=state.color,
                            placeholder="No colour",
                        ),
                    ),
                    md=5,
                ),
            ]
        )
    ]
    return html.Div(
        [
            page_title(
                "Gene",
                "How one gene's expression relates to every imaging feature, its module and "
                "its pathways, and survival by its expression.",
            ),
            subset_panel(data, PAGE, state),
            dbc.Row(
                [
                    dbc.Col(
                        [controls, html.Div(pin_button(PAGE, label="Pin gene x feature"))],
                        lg=3,
                    ),
                    dbc.Col(
                        [
                            html.Div(view["note"], id="gene-note"),
                            html.Div(
                                [
                                    figure_card(
                                        "gene-bar",
                                        "Associations with imaging features",
                                        height=440,
                                        figure=view["bar"],
                                    ),
                                    table_card(
                                        "gene-associations",
                                        "All features (click a row for its phenotype plot)",
                                        row_id="feature",
                                        rows=view["rows"],
                                        columns=view["columns"],
                                        extra=[
                                            table_note("gene-associations-note", view["rows_note"])
                                        ],
                                    ),
                                    dbc.Row(
                                        [
                                            dbc.Col(
                                                figure_card(
                                                    "gene-phenotype",
                                                    "Expression by imaging feature",
                                                    height=440,
                                                    extra=phenotype_controls,
                                                    figure=phenotype,
                                                ),
                                                lg=6,
                                            ),
                                            dbc.Col(
                                                figure_card(
                                                    "gene-km",
                                                    "Survival by expression",
                                                    height=440,
                                                    extra=[split_controls(PAGE, state)],
                                                    figure=view["km"],
                                                ),
                                                lg=6,
                                            ),
                                        ]
                                    ),
                                    table_card(
                                        "gene-pathways",
                                        "Pathways of the gene's module",
                                        rows=view["pathway_rows"],
                                        columns=view["pathway_columns"],
                                    ),
                                ],
                                id="gene-body",
                                style=view["body_style"],
                            ),
                        ],
                        lg=9,
                    ),
                ]
            ),
        ]
    )
