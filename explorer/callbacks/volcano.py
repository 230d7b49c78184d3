"""Volcano page callbacks: the volcano, selection enrichment, pre-ranked enrichment."""

from __future__ import annotations

import logging

from dash import Input, Output, State
from dash.exceptions import PreventUpdate

from ...analysis.validate import InputError
from ..callbacks.common import AppContext, grid, memoised_figure, note, register_option_search
from ..callbacks.subset import resolve
from ..data import BundleData
from ..figures.style import empty_figure
from ..figures.volcano import volcano
from ..pages.common import graph_id, null_badge_content, sid, store_id, table_id

logger = logging.getLogger("radmap")

PAGE = "volcano"
TOP_COLUMNS = ("gene", "module", "effect", "p", "q")
ORA_COLUMNS = ("term", "collection", "overlap", "set_size", "p", "q", "odds_ratio", "genes")
PRERANK_COLUMNS = ("term", "collection", "es", "nes", "p", "q", "lead_genes")
PRERANK_SEED = 0


def volcano_view(
    data: BundleData,
    feature: str | None,
    *,
    y: str = "q",
    q: float = 0.05,
    min_effect: float = 0.0,
    gene: str | None = None,
):
    """Volcano figure, a note, and the top-genes grid (rows, columns) for ``feature``."""
    empty_rows, empty_columns = grid(None, TOP_COLUMNS)
    if not feature:
        return (
            empty_figure("Choose an imaging feature to see every gene's association with it."),
            note("Choose an imaging feature in the controls."),
            empty_rows,
            empty_columns,
        )
    if not data.has_gene_level(feature):
        return (
            empty_figure(f"No gene-level statistics for {data.feature_label(feature)}."),
            note(
                f"{data.feature_label(feature)} was not tested gene by gene in this bundle.",
                color="warning",
            ),
            empty_rows,
            empty_columns,
        )
    table = data.gene_table(feature)
    highlight = [gene] if gene else None
    params = {"feature": feature, "y": y, "q": q, "min_effect": min_effect or 0, "gene": gene}
    figure = memoised_figure(
        data,
        "volcano",
        params,
        lambda: volcano(
            table,
            y=y,
            q_threshold=q,
            min_effect=float(min_effect or 0.0),
            highlight=highlight,
            modules=data.module_names,
            title=data.feature_label(feature),
        ),
    )
    n_significant = int(((table["q"] < q) & (table["effect"].abs() >= (min_effect or 0))).sum())
    message = f"{n_significant:,} of {len(table):,} genes pass q < {q:g}."
    chance = data.gene_null_line(feature)
    if chance:
        message += " " + chance
    rows, columns = grid(data.top_genes(feature, n=200), TOP_COLUMNS, numeric=("effect", "p", "q"))
    return figure, note(message), rows, columns


def selected_genes(selection: dict | None) -> list[str]:
    """Gene symbols of the points in a box / lasso selection."""
    if not selection:
        return []
    genes = []
    for point in selection.get("points") or []:
        custom = point.get("customdata")
        gene = custom[0] if isinstance(custom, list) else custom
        if isinstance(gene, str):
            genes.append(gene)
    return sorted(set(genes))


def selection_enrichment(data: BundleData, selection: dict | None):
    """ORA of the selected genes against every analysed gene: rows, columns, status."""
    genes = selected_genes(selection)
    if not genes:
        rows, columns = grid(None, ORA_COLUMNS)
        return rows, columns, note("Box- or lasso-select genes in the volcano to test them.")
    table = data.ora(genes)
    rows, columns = grid(table, ORA_COLUMNS, numeric=("p", "q", "odds_ratio"))
    if table.empty:
        message = f"{len(genes)} genes selected: no gene set overlaps them."
    else:
        n_sig = int((table["q"] < 0.05).sum())
        message = (
            f"{len(genes)} genes selected against {len(data.genes):,} analysed genes: "
            f"{n_sig} gene sets with q < 0.05."
        )
    return rows, columns, note(message)


def prerank_key(data: BundleData, feature: str, collection: str, permutations: int) -> str:
    """Disk-cache key of a pre-ranked enrichment: bundle id and every parameter."""
    return f"prerank|{data.bundle_id}|{feature}|{collection}|{int(permutations)}|{PRERANK_SEED}"


def prerank_job(
    data: BundleData,
    results,
    feature: str | None,
    collection: str,
    permutations: int,
    *,
    set_progress=None,
):
    """Run (or fetch from the disk cache) pre-ranked enrichment: rows, columns, status."""

    def progress(value: int, label: str) -> None:
        if set_progress is not None:
            set_progress((value, label, {"visibility": "visible"}))

    if not feature:
        rows, columns = grid(None, PRERANK_COLUMNS)
        return rows, columns, note("Choose an imaging feature first.", color="warning")
    key = prerank_key(data, feature, collection, permutations)
    cached = results.get(key) if results is not None else None
    if cached is None:
        progress(10, "Ranking genes")
        progress(30, f"Running {int(permutations):,} permutations")
        try:
            table = data.prerank(
                feature,
                collections=(collection,),
                permutations=int(permutations),
                seed=PRERANK_SEED,
            )
        except InputError as error:
            rows, columns = grid(None, PRERANK_COLUMNS)
            return rows, columns, note(str(error), color="warning")
        if results is not None:
            results.set(key, table)
        origin = "computed"
    else:
        table = cached
        origin = "from cache"
    progress(100, "Done")
    rows, columns = grid(table, PRERANK_COLUMNS, numeric=("es", "nes", "p", "q"))
    n_sig = int((table["q"] < 0.05).sum()) if len(table) else 0
    message = (
        f"{data.feature_label(feature)}: {len(table)} gene sets tested ({collection}, "
        f"{int(permutations):,} permutations, {origin}); {n_sig} with q < 0.05."
    )
    return rows, columns, note(message, color="success")


def register(app, ctx: AppContext, *, background_manager=None) -> None:
    data = ctx.data
    register_option_search(app, sid(PAGE, "feature"), lambda: data.feature_options(gene_level=True))

    @app.callback(
        Output(graph_id("volcano"), "figure"),
        Output("volcano-note", "children"),
        Output(table_id("volcano-top"), "rowData"),
        Output(table_id("volcano-top"), "columnDefs"),
        Output("volcano-null-badge", "children"),
        Input(sid(PAGE, "feature"), "value"),
        Input(sid(PAGE, "y"), "value"),
        Input(sid(PAGE, "q"), "value"),
        Input(sid(PAGE, "min_effect"), "value"),
        Input(store_id(PAGE, "gene"), "data"),
        Input(store_id(PAGE, "subset"), "data"),
        prevent_initial_call=True,  # the page layout draws the first volcano
    )
    def _volcano(feature, y, q, min_effect, gene, subset):
        view = resolve(data, subset)
        shown = volcano_view(view, feature, y=y, q=float(q), min_effect=min_effect, gene=gene)
        return *shown, null_badge_content(view.gene_null_badge())

    @app.callback(
        Output(table_id("volcano-ora"), "rowData"),
        Output(table_id("volcano-ora"), "columnDefs"),
        Output("volcano-ora-status", "children"),
        Input(graph_id("volcano"), "selectedData"),
        prevent_initial_call=True,  # the page layout says how to select genes
    )
    def _selection(selection):
        return selection_enrichment(data, selection)

    background = {}
    if background_manager is not None:
        background = {
            "background": True,
            "manager": background_manager,
            "running": [
                (Output("prerank-run", "disabled"), True, False),
                (Output("prerank-cancel", "disabled"), False, True),
            ],
            "cancel": [Input("prerank-cancel", "n_clicks")],
            "progress": [
                Output("prerank-progress", "value"),
                Output("prerank-progress", "label"),
                Output("prerank-progress", "style"),
            ],
        }

    def _prerank(*args):
        if background_manager is not None:
            set_progress, n_clicks, feature, collection, permutations = args
        else:
            set_progress = None
            n_clicks, feature, collection, permutations = args
        if not n_clicks:
            raise PreventUpdate
        return prerank_job(
            data, ctx.results, feature, collection, permutations, set_progress=set_progress
        )

    app.callback(
        Output(table_id("prerank"), "rowData"),
        Output(table_id("prerank"), "columnDefs"),
        Output("prerank-status", "children"),
        Input("prerank-run", "n_clicks"),
        State(sid(PAGE, "feature"), "value"),
        State("prerank-collection", "value"),
        State("prerank-permutations", "value"),
        prevent_initial_call=True,
        **background,
    )(_prerank)
