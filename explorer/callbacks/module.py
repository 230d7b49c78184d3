"""Module page callbacks: the modules table and one module's expression, pathways, genes."""

from __future__ import annotations

from dash import Input, Output, html
from dash.exceptions import PreventUpdate

from ..callbacks.common import AppContext, grid, memoised_figure, note, register_option_search
from ..data import BundleData
from ..figures.enrichment import enrichment_dotplot
from ..figures.module import module_expression_heatmap
from ..figures.style import empty_figure
from ..pages.common import format_number, format_p, graph_id, sid, table_id
from ..state import ViewState, to_url

PAGE = "module"
MODULE_COLUMNS = (
    "module",
    "size",
    "hub_genes",
    "top_pathway",
    "strongest_feature",
    "strongest_effect",
    "strongest_q",
    "n_links",
)
GENE_COLUMNS = ("gene", "kME", "is_hub", "mean", "variance")


def _pathway_name(data: BundleData, module: str, top_pathway: str | None) -> str:
    """The module's name: its pathway with q when one passes, else what names it instead."""
    info = data.modules_info
    label = str(info.at[module, "label"]) if "label" in info and module in info.index else ""
    if top_pathway:
        return label or str(top_pathway)
    if label.startswith("hubs: "):
        return f"none with q < 0.05; named by its {label}"
    return "—"


def modules_grid(data: BundleData, *, q: float = 0.05):
    """Rows and columns of the modules table."""
    table = data.modules_table(q_threshold=q)
    return grid(table, MODULE_COLUMNS, numeric=("strongest_effect", "strongest_q"))


def module_from_cell(data: BundleData, cell: dict | None) -> str | None:
    if not cell:
        return None
    module = cell.get("rowId") or (cell.get("value") if cell.get("colId") == "module" else None)
    return module if module in data.module_names else None


def module_view(
    data: BundleData, module: str | None, *, order: str | None = None, q: float = 0.05, base="/"
) -> dict:
    """Heatmap, enrichment dot plot, member genes and summary of one module."""
    empty_rows, empty_columns = grid(None, GENE_COLUMNS)
    if not module:
        message = "Choose a module in the table or the dropdown to see its genes and pathways."
        return {
            "note": note(message),
            "heatmap": empty_figure(message),
            "enrichment": empty_figure(message),
            "rows": empty_rows,
            "columns": empty_columns,
            "info": [],
        }

    def heatmap_figure():
        matrix, order_values = data.module_expression(module, order_feature=order)
        label = data.feature_label(order) if order else f"{module} eigengene"
        return module_expression_heatmap(
            matrix, order_values, feature_label=label, title=f"{module}: top genes by kME"
        )

    heatmap = memoised_figure(
        data, "module-heatmap", {"module": module, "order": order}, heatmap_figure
    )
    enrichment = memoised_figure(
        data,
        "module-enrichment",
        {"module": module, "q": q},
        lambda: enrichment_dotplot(
            data.enrichment(module), q_threshold=q, title=f"{module} pathways"
        ),
    )
    rows, columns = grid(
        data.module_members(module), GENE_COLUMNS, numeric=("kME", "mean", "variance")
    )
    summary = data.modules_table(q_threshold=q)
    row = summary[summary["module"] == module].iloc[0]
    info = [
        html.Div([html.B("Genes "), str(row["size"])]),
        html.Div([html.B("Top pathway "), _pathway_name(data, module, row["top_pathway"])]),
        html.Div(
            [
                html.B("Strongest link "),
                html.A(
                    row["strongest_feature"] or "—",
                    href=to_url(
                        ViewState(
                            page="map", feature=row["strongest_feature_id"], module=module, q=q
                        ),
                        base=base,
                    ),
                )
                if row["strongest_feature_id"]
                else "—",
                f" (effect {format_number(row['strongest_effect'])}, q {format_p(row['strongest_q'])})",
            ]
        ),
        html.Div([html.B(f"Links at q < {q:g} "), str(row["n_links"])]),
    ]
    return {
        "note": [],
        "heatmap": heatmap,
        "enrichment": enrichment,
        "rows": rows,
        "columns": columns,
        "info": info,
    }


def register(app, ctx: AppContext) -> None:
    data = ctx.data
    register_option_search(app, sid(PAGE, "order"), data.feature_options)

    @app.callback(
        Output(table_id("modules"), "rowData"),
        Output(table_id("modules"), "columnDefs"),
        Input(sid(PAGE, "q"), "value"),
        prevent_initial_call=True,  # the page layout lists the modules
    )
    def _modules(q):
        return modules_grid(data, q=float(q))

    @app.callback(
        Output(sid(PAGE, "module"), "value"),
        Input(table_id("modules"), "cellClicked"),
        prevent_initial_call=True,
    )
    def _choose(cell):
        module = module_from_cell(data, cell)
        if module is None:
            raise PreventUpdate
        return module

    @app.callback(
        Output("module-note", "children"),
        Output(graph_id("module-heatmap"), "figure"),
        Output(graph_id("module-enrichment"), "figure"),
        Output(table_id("module-genes"), "rowData"),
        Output(table_id("module-genes"), "columnDefs"),
        Output("module-info", "children"),
        Input(sid(PAGE, "module"), "value"),
        Input(sid(PAGE, "order"), "value"),
        Input(sid(PAGE, "q"), "value"),
        prevent_initial_call=True,  # the page layout draws the first module
    )
    def _module(module, order, q):
        view = module_view(data, module, order=order, q=float(q), base=ctx.base)
        return (
            view["note"],
            view["heatmap"],
            view["enrichment"],
            view["rows"],
            view["columns"],
            view["info"],
        )
