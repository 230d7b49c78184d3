"""Volcano page: every gene's association with one imaging feature, selection enrichment."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from ..data import BundleData
from ..pages.common import (
    control,
    controls_card,
    figure_card,
    long_dropdown,
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

PAGE = "volcano"
PERMUTATION_CHOICES = (100, 1000)


def layout(data: BundleData, state: ViewState) -> html.Div:
    from ..callbacks.subset import resolve
    from ..callbacks.volcano import selection_enrichment, volcano_view  # callbacks import pages

    feature = state.feature or data.strongest_link()["feature"]
    view = resolve(data, state.subset)
    # Drawn with the page (one round trip); the volcano callback answers later changes.
    figure, volcano_note, top_rows, top_columns = volcano_view(
        view,
        feature,
        y=state.y,
        q=state.q,
        min_effect=state.min_effect,
        gene=state.gene,
    )
    ora_rows, ora_columns, ora_status = selection_enrichment(data, None)
    collections = [
        {"label": "Hallmark", "value": "hallmark"},
        {"label": "GO BP (slow)", "value": "go_bp"},
    ]
    controls = controls_card(
        [
            control(
                "Imaging feature",
                long_dropdown(
                    sid(PAGE, "feature"),
                    data.feature_options(gene_level=True),
                    feature,
                    placeholder="Choose a feature",
                    clearable=False,
                ),
            ),
            control(
                "Y axis",
                dbc.RadioItems(
                    id=sid(PAGE, "y"),
                    options=[
                        {"label": "-log10 q (FDR)", "value": "q"},
                        {"label": "-log10 p", "value": "p"},
                    ],
                    value=state.y,
                    inline=True,
                ),
            ),
            q_control(PAGE, state.q),
            min_effect_control(PAGE, state.min_effect),
            html.Div(pin_button(PAGE, label="Pin this feature"), className="mt-2"),
        ]
    )
    prerank = dbc.Card(
        [
            dbc.CardHeader("Pre-ranked enrichment (GSEA)", className="rm-card-header"),
            dbc.CardBody(
                [
                    html.P(
                        "Ranks every gene by its effect on the feature and tests gene sets "
                        "for enrichment at the top or bottom of the ranking. Runs in the "
                        "background; results are cached.",
                        className="text-muted",
                    ),
                    dbc.Row(
                        [
                            dbc.Col(
                                control(
                                    "Gene sets",
                                    dbc.RadioItems(
                                        id="prerank-collection",
                                        options=collections,
                                        value="hallmark",
                                        inline=True,
                                    ),
                                ),
                                md=5,
                            ),
                            dbc.Col(
                                control(
                                    "Permutations",
                                    dbc.RadioItems(
                                        id="prerank-permutations",
                                        options=[
                                            {"label": f"{n:,}", "value": n}
                                            for n in PERMUTATION_CHOICES
                                        ],
                                        value=1000,
                                        inline=True,
                                    ),
                                ),
                                md=4,
                            ),
                            dbc.Col(
                                [
                                    dbc.Button(
                                        "Run pre-ranked enrichment",
                                        id="prerank-run",
                                        color="primary",
                                        size="sm",
                                        className="me-2",
                                    ),
                                    dbc.Button(
                                        "Cancel",
                                        id="prerank-cancel",
                                        color="secondary",
                                        outline=True,
                                        size="sm",
                                        disabled=True,
                                    ),
                                ],
                                md=3,
                                className="d-flex align-items-center",
                            ),
                        ]
                    ),
                    dbc.Progress(
                        id="prerank-progress",
                        value=0,
                        striped=True,
                        animated=True,
                        className="mb-2",
                        style={"visibility": "hidden"},
                    ),
                    html.Div(id="prerank-status", className="mb-2"),
                    table_card("prerank", "Pre-ranked enrichment results", height=320),
                ]
            ),
        ],
        className="rm-card mb-3",
    )
    return html.Div(
        [
            page_title(
                "Volcano",
                "Each gene's association with one imaging feature. Box- or lasso-select "
                "genes to test them for pathway over-representation; click a gene to open "
                "its page.",
            ),
            subset_panel(data, PAGE, state),
            state_store(PAGE, "gene", state.gene),
            dbc.Row(
                [
                    dbc.Col(controls, lg=3),
                    dbc.Col(
                        [
                            _gene_null_badge(view),
                            html.Div(volcano_note, id="volcano-note"),
                            figure_card("volcano", "Gene associations", height=480, figure=figure),
                        ],
                        lg=9,
                    ),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(
                        table_card(
                            "volcano-ora",
                            "Enrichment of the selected genes",
                            extra=[html.Div(ora_status, id="volcano-ora-status", className="mb-2")],
                            rows=ora_rows,
                            columns=ora_columns,
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        table_card(
                            "volcano-top",
                            "Top genes (click a row to open the gene)",
                            row_id="gene",
                            rows=top_rows,
                            columns=top_columns,
                        ),
                        lg=6,
                    ),
                ]
            ),
            prerank,
        ]
    )


def _gene_null_badge(data: BundleData) -> html.Div:
    """How much of the gene map chance alone would give (the bundle's gene-map null)."""
    return null_badge(
        data.gene_null_badge(),
        badge_id="volcano-null-badge",
        title="Patients' imaging rows permuted against expression; gene links passing the "
        "map-level q (hierarchical over features, then genes) in the permuted maps are "
        "false by construction",
    )
