"""Gene page callbacks: search, associations across features, phenotype, module, survival."""

from __future__ import annotations

from dash import Input, Output, State, html, no_update
from dash import ctx as callback_context
from dash.exceptions import PreventUpdate

from .. import pl
from ..callbacks.common import (
    AppContext,
    cut_value,
    grid,
    memoised_figure,
    note,
    register_km,
    register_option_search,
    top_rows,
)
from ..callbacks.subset import resolve
from ..data import BundleData
from ..figures.enrichment import gene_association_bar
from ..figures.style import empty_figure, p_statement
from ..figures.survival import survival_view_figure
from ..pages.common import format_number, graph_id, searched_options, sid, store_id, table_id
from ..state import ViewState, to_url

PAGE = "gene"
ASSOCIATION_COLUMNS = ("label", "group", "test", "effect", "p", "q", "n", "feature")
PATHWAY_COLUMNS = ("term", "collection", "overlap", "q", "genes")


def gene_options(data: BundleData, search: str | None, value: str | None) -> list[dict]:
    """Dropdown options for the typed text (server-side search), keeping the current value."""
    genes = data.gene_search(search, limit=30) if search else []
    if value and value not in genes:
        genes = [value, *genes]
    options = [{"label": gene, "value": gene} for gene in genes]
    if search and not genes:
        reason = data.gene_absence(search)
        if reason:
            options.append({"label": reason, "value": "", "disabled": True})
    return options


def gene_view(
    data: BundleData,
    gene: str | None,
    *,
    q: float = 0.05,
    base: str = "/",
    split: str = "median",
    cut: float | None = None,
    with_km: bool = True,
) -> dict:
    """Everything on the gene page that depends on the gene only.

    Keys: ``note``, ``body_style``, ``bar``, ``rows``, ``columns``, ``info``,
    ``pathway_rows``, ``pathway_columns``, ``km`` (expression split by ``split`` / ``cut``;
    ``None`` with ``with_km=False``, when a callback of its own draws it).
    """
    canonical = data.canonical_gene(gene)
    if not gene:
        return _empty_gene_view() | {
            "note": note("Type a gene symbol in the search box to open its view.")
        }
    if canonical is None:
        reason = data.gene_absence(gene) or f"{gene} is not in this dataset"
        return _empty_gene_view() | {
            "note": note(f"{reason}; search for another gene.", color="warning")
        }
    table = data.gene_associations(canonical)
    bar = memoised_figure(
        data,
        "gene-bar",
        {"gene": canonical, "q": q},
        lambda: gene_association_bar(table, q_threshold=q, title=f"{canonical} x imaging features"),
    )
    shown, rows_note = top_rows(table)
    rows, columns = grid(shown, ASSOCIATION_COLUMNS, numeric=("effect", "p", "q"))
    info = data.gene_info(canonical) or {}
    module = info.get("module")
    items = [
        html.Div([html.B("Module "), _module_link(module, q, base)]),
        html.Div([html.B("kME "), format_number(info.get("kME"))]),
        html.Div([html.B("Hub gene "), "yes" if info.get("is_hub") else "no"]),
    ]
    n_sig = int((table["q"] < q).sum()) if len(table) else 0
    items.append(html.Div([html.B("Features at map-level q < "), f"{q:g}: {n_sig}"]))
    if not module or module not in data.module_names:
        items.append(
            html.Div(
                f"{canonical} is in no module (unassigned), so it has no module pathways.",
                className="text-muted",
            )
        )
    pathways = data.enrichment(module) if module and module in data.module_names else None
    pathway_rows, pathway_columns = grid(
        None if pathways is None else pathways.head(10), PATHWAY_COLUMNS, numeric=("q",)
    )
    if not with_km:
        km = None
    elif data.has_survival:
        km = gene_km(data, canonical, split=split, cut=cut)
    else:
        km = empty_figure("No survival data in this bundle.")
    return {
        "note": [],
        "body_style": {"display": "block"},
        "bar": bar,
        "rows": rows,
        "columns": columns,
        "rows_note": rows_note,
        "info": items,
        "pathway_rows": pathway_rows,
        "pathway_columns": pathway_columns,
        "km": km,
    }


def gene_km(data: BundleData, gene: str | None, *, split: str = "median", cut: float | None = None):
    """Kaplan–Meier curves of a gene's expression split by ``split`` (``cut`` for a value)."""
    canonical = data.canonical_gene(gene)
    if canonical is None:
        return empty_figure("Search for a gene.")
    if not data.has_survival:
        return empty_figure("No survival data in this bundle.")
    if split == "cut" and cut is None:
        return empty_figure("Type the value to split the patients at.")
    return memoised_figure(
        data,
        "gene-km",
        {"gene": canonical, "split": split, "cut": cut},
        lambda: survival_view_figure(data.km("gene", canonical, split=split, cut=cut)),
    )


def _empty_gene_view() -> dict:
    empty_rows, empty_columns = grid(None, ASSOCIATION_COLUMNS)
    return {
        "body_style": {"display": "none"},
        "bar": empty_figure("Search for a gene."),
        "rows": empty_rows,
        "columns": empty_columns,
        "rows_note": "",
        "info": [],
        "pathway_rows": [],
        "pathway_columns": [],
        "km": empty_figure("Search for a gene."),
    }


def _module_link(module: str | None, q: float, base: str):
    if not module or module == "unassigned":
        return html.Span(module or "—")
    return html.A(module, href=to_url(ViewState(page="module", module=module, q=q), base=base))


def strongest_feature(data: BundleData, gene: str) -> str | None:
    table = data.gene_associations(gene)
    return None if table.empty else str(table.iloc[0]["feature"])


def gene_phenotype(
    data: BundleData, gene: str | None, feature: str | None, *, color: str | None = None
):
    """Expression of ``gene`` against ``feature`` (default: its strongest association)."""
    canonical = data.canonical_gene(gene)
    if canonical is None:
        return empty_figure("Search for a gene.")
    feature = feature or strongest_feature(data, canonical)
    if not feature:
        return empty_figure("Choose an imaging feature.")

    def build():
        stats = data.gene_association(canonical, feature)
        title = f"{canonical} x {data.feature_label(feature)}"
        if stats and stats.get("q") is not None:
            title += f" ({p_statement('q', stats['q'])})"
        return pl.phenotype(data, feature, gene=canonical, color=color, title=title)

    params = {"gene": canonical, "feature": feature, "color": color}
    return memoised_figure(data, "gene-phenotype", params, build)


def feature_from_cell(data: BundleData, cell: dict | None) -> str | None:
    """The feature of a clicked row of the associations table."""
    if not cell:
        return None
    feature = cell.get("rowId") or (cell.get("value") if cell.get("colId") == "feature" else None)
    return feature if feature in data.features.index else None


def register(app, ctx: AppContext) -> None:
    data = ctx.data
    register_option_search(app, sid(PAGE, "feature"), lambda: data.feature_options(gene_level=True))

    @app.callback(
        Output(sid(PAGE, "gene"), "options"),
        Input(sid(PAGE, "gene"), "search_value"),
        State(sid(PAGE, "gene"), "value"),
        prevent_initial_call=True,  # the page layout offers the URL's gene
    )
    def _options(search, value):
        if not search and not value:
            raise PreventUpdate
        return gene_options(data, search, value)

    # A new gene (or subset) redraws the whole page in one response: three responses
    # (associations, survival, phenotype) cost the browser three rounds of rendering.
    @app.callback(
        Output("gene-note", "children"),
        Output("gene-body", "style"),
        Output(graph_id("gene-bar"), "figure"),
        Output(table_id("gene-associations"), "rowData"),
        Output(table_id("gene-associations"), "columnDefs"),
        Output("gene-associations-note", "children"),
        Output("gene-info", "children"),
        Output(table_id("gene-pathways"), "rowData"),
        Output(table_id("gene-pathways"), "columnDefs"),
        Output(graph_id("gene-km"), "figure", allow_duplicate=True),
        Output(graph_id("gene-phenotype"), "figure", allow_duplicate=True),
        Input(sid(PAGE, "gene"), "value"),
        Input(sid(PAGE, "q"), "value"),
        Input(store_id(PAGE, "subset"), "data"),
        State(sid(PAGE, "feature"), "value"),
        State(sid(PAGE, "color"), "value"),
        State(sid(PAGE, "split"), "value"),
        State(sid(PAGE, "cut"), "value"),
        prevent_initial_call=True,  # the page layout draws the first gene
    )
    def _gene(gene, q, subset, feature, color, split, cut):
        view_data = resolve(data, subset)
        threshold_only = len(
            callback_context.triggered
        ) == 1 and callback_context.triggered_id == sid(PAGE, "q")
        view = gene_view(
            view_data,
            gene,
            q=float(q),
            base=ctx.base,
            split=split or "median",
            cut=cut_value(cut),
            with_km=not threshold_only,
        )
        return (
            view["note"],
            view["body_style"],
            view["bar"],
            view["rows"],
            view["columns"],
            view["rows_note"],
            view["info"],
            view["pathway_rows"],
            view["pathway_columns"],
            no_update if threshold_only else view["km"],
            no_update if threshold_only else gene_phenotype(view_data, gene, feature, color=color),
        )

    register_km(app, data, PAGE, "gene", gene_km, drawn_with_page=True, split_only=True)

    @app.callback(
        Output(graph_id("gene-phenotype"), "figure", allow_duplicate=True),
        Input(sid(PAGE, "feature"), "value"),
        Input(sid(PAGE, "color"), "value"),
        State(sid(PAGE, "gene"), "value"),
        State(store_id(PAGE, "subset"), "data"),
        prevent_initial_call=True,  # the page layout draws the URL's phenotype
    )
    def _phenotype(feature, color, gene, subset):
        return gene_phenotype(resolve(data, subset), gene, feature, color=color)

    @app.callback(
        Output(sid(PAGE, "feature"), "value"),
        Output(sid(PAGE, "feature"), "options", allow_duplicate=True),
        Input(table_id("gene-associations"), "cellClicked"),
        prevent_initial_call=True,
    )
    def _choose_feature(cell):
        feature = feature_from_cell(data, cell)
        if feature is None:
            raise PreventUpdate
        return feature, searched_options(data.feature_options(gene_level=True), None, feature)
