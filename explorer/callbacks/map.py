"""Map page callbacks: the heatmap, a cell click and the drill-down panel."""

from __future__ import annotations

import pandas as pd
from dash import ClientsideFunction, Input, Output, State, callback_context, html, no_update
from dash.exceptions import PreventUpdate

from .. import pl
from ..callbacks.common import (
    AppContext,
    grid,
    memoised_figure,
    note,
    stat_line,
    stays_hidden,
)
from ..callbacks.subset import resolve
from ..data import BundleData
from ..figures.heatmap import map_heatmap
from ..figures.margins import layout_setting, min_width
from ..figures.phenotype import PHENOTYPE_HEIGHT
from ..figures.style import MEASURE_NAMES, empty_figure
from ..pages.common import (
    HIDDEN_AT_WIDTH,
    graph_id,
    null_badge_content,
    sid,
    store_id,
    table_id,
)
from ..pages.map import COMPARE_REQUEST, DRILL_REQUEST
from ..state import ViewState, to_url

PAGE = "map"
PATHWAY_COLUMNS = ("term", "collection", "overlap", "q")


def map_figure(
    data: BundleData,
    *,
    q: float,
    stat: str,
    sources=(),
    groups=(),
    min_effect: float = 0.0,
    rows: str = "auto",
    top: int = 40,
):
    """The heatmap figure, its height style and the note on how rows are shown."""
    view = data.map_view(sources=sources or (), groups=groups or (), rows=rows, top=int(top or 40))
    empty_reason = str(data.params.get("empty_reason") or "")
    if empty_reason and not pd.to_numeric(view.assoc.get("p"), errors="coerce").notna().any():
        message = f"The map is empty: {empty_reason}."
        return empty_figure(message), {"height": "420px"}, note(message, color="warning")
    if view.assoc.empty:
        fig = empty_figure(
            "No associations for these filters: tick more feature sources or clear the groups."
        )
        return fig, {"height": "420px"}, note("No imaging feature matches the filters.")
    min_effect = float(min_effect or 0.0)
    params = {
        "sources": sources or (),
        "groups": groups or (),
        "rows": rows,
        "top": int(top or 40),
        "q": q,
        "stat": stat,
        "min_effect": min_effect,
    }
    fig = memoised_figure(
        data,
        "map",
        params,
        lambda: map_heatmap(
            view.assoc,
            view.features,
            value=stat,
            q_threshold=q,
            min_effect=min_effect,
            families=view.families,
            max_rows=10**9,
            bootstraps=data.stability_runs(),
        ),
    )
    height = layout_setting(fig, "height") or 600
    style = {"height": f"{int(height)}px"}
    if (width := min_width(fig)) is not None:
        style["minWidth"] = f"{width}px"
    return (
        fig,
        style,
        note(" ".join(filter(None, [view.note, power_note(data)]))),
    )


def power_note(data: BundleData) -> str:
    """What an empty map means: the smallest effect each family could detect (80 % power)."""
    table = data.uns_table("power")
    if table is None or table.empty:
        return ""
    rows = table[table["analysis"].astype(str) == "module map"]
    parts = [
        f"{row.feature_type} {MEASURE_NAMES.get(str(row.measure), row.measure)} "
        f"{float(row.detectable_effect):.2g} "
        f"({str(row.family).removeprefix('module map: ')}, n = {int(float(row.n))})"
        for row in rows.itertuples()
        if pd.notna(pd.to_numeric(row.detectable_effect, errors="coerce"))
    ]
    if not parts:
        return ""
    return "Detectable with 80% power at the map's n and family size: " + "; ".join(parts) + "."


def drill_down(
    data: BundleData,
    feature: str | None,
    module: str | None,
    *,
    q: float,
    color: str | None = None,
    base: str = "/",
) -> dict:
    """Everything the drill-down panel shows for one feature x module cell.

    Returns a dict with ``style``, ``title``, ``stats``, ``volcano_href``, ``module_href``,
    ``figure``, ``hubs``, ``pathway_rows`` and ``pathway_columns``.
    """
    hidden = {
        "style": HIDDEN_AT_WIDTH,
        "title": "",
        "stats": [],
        "volcano_href": "#",
        "module_href": "#",
        "figure": empty_figure(
            "Click a cell of the map to see the patients behind it."
        ).update_layout(height=PHENOTYPE_HEIGHT),
        "hubs": [],
        "pathway_rows": [],
        "pathway_columns": [],
    }
    if not feature or not module:
        return hidden
    if feature not in data.features.index or module not in data.module_names:
        return hidden | {
            "style": {"display": "block"},
            "stats": note(f"No association {feature} x {module} in this bundle.", color="warning"),
        }
    stats = data.association(feature, module)
    figure = pl.phenotype(data, feature, module=module, color=color)
    significant = stats is not None and stats.get("q") is not None and stats["q"] < q
    verdict = html.Span(
        "significant" if significant else "not significant",
        className="badge " + ("text-bg-success" if significant else "text-bg-secondary"),
    )
    hubs = data.hub_genes(module, n=10)
    gene_links = [
        html.A(
            gene,
            href=to_url(ViewState(page="gene", gene=gene, q=q), base=base),
            className="rm-chip",
        )
        for gene in hubs
    ]
    rows, columns = grid(data.enrichment(module).head(8), PATHWAY_COLUMNS, numeric=("q",))
    return {
        "style": {"display": "block"},
        "title": f"{data.feature_label(feature)} x {module}",
        "stats": [
            stat_line(stats),
            html.Div(verdict, className="mt-1"),
            trust_line(data.link_trust(feature, module)),
        ],
        "volcano_href": to_url(ViewState(page="volcano", feature=feature, q=q), base=base)
        if data.has_gene_level(feature)
        else "#",
        "module_href": to_url(ViewState(page="module", module=module, q=q), base=base),
        "figure": figure,
        "hubs": gene_links or [html.Span("No hub genes recorded.", className="text-muted")],
        "pathway_rows": rows,
        "pathway_columns": columns,
    }


def trust_line(trust: dict) -> html.Div:
    """Permutation p, bootstrap stability and trust flags of a link (empty without them)."""
    parts = []
    if isinstance(trust.get("perm_p"), float):
        parts.append(f"permutation p {trust['perm_p']:.2g}")
    if isinstance(trust.get("stability"), float):
        parts.append(f"bootstrap stability {trust['stability']:.0%}")
    flags = [flag for flag in str(trust.get("flags") or "").split("|") if flag]
    children: list = [html.Span(" · ".join(parts), className="text-muted")] if parts else []
    children += [html.Span(flag, className="badge text-bg-warning ms-1") for flag in flags]
    return html.Div(children, className="mt-1 rm-trust")


def subset_drill_down(
    data: BundleData, subset: str | None, feature: str | None, module: str | None, **options
) -> dict:
    """:func:`drill_down` on ``subset``'s patients; the hidden panel (no cell chosen) is
    answered without computing the subset's results."""
    view = resolve(data, subset) if feature and module else data
    return drill_down(view, feature, module, **options)


def register(app, ctx: AppContext) -> None:
    data = ctx.data

    @app.callback(
        Output(graph_id("map-heatmap"), "figure"),
        Output("map-heatmap-box", "style"),
        Output("map-note", "children"),
        Output("map-null-badge", "children"),
        Output(DRILL_REQUEST, "data"),
        Output(COMPARE_REQUEST, "data"),
        Input(sid(PAGE, "q"), "value"),
        Input(sid(PAGE, "stat"), "value"),
        Input(sid(PAGE, "sources"), "value"),
        Input(sid(PAGE, "groups"), "value"),
        Input(sid(PAGE, "min_effect"), "value"),
        Input(sid(PAGE, "rows"), "value"),
        Input(sid(PAGE, "top"), "value"),
        Input(store_id(PAGE, "subset"), "data"),
        State(store_id(PAGE, "feature"), "data"),
        State(store_id(PAGE, "module"), "data"),
        State(store_id(PAGE, "compare"), "data"),
        prevent_initial_call=True,  # the page layout draws the first map
    )
    def _heatmap(q, stat, sources, groups, min_effect, rows, top, subset, feature, module, compare):
        view = resolve(data, subset)
        figure, style, heatmap_note = map_figure(
            view,
            q=float(q),
            stat=stat,
            sources=tuple(sources or ()),
            groups=tuple(groups or ()),
            min_effect=min_effect,
            rows=rows,
            top=top,
        )
        # the panels shown are computed again for the new map (after it: the map comes first)
        request = dict(callback_context.inputs)
        drill = request if feature and module else no_update
        badge = null_badge_content(view.null_badge())  # the whole cohort's null, not a subset's
        return figure, style, heatmap_note, badge, drill, request if compare else no_update

    # The clicked cell's feature and module, read in the browser (assets/radmap.js).
    app.clientside_callback(
        ClientsideFunction(namespace="radmap", function_name="cellFromClick"),
        Output(store_id(PAGE, "feature"), "data"),
        Output(store_id(PAGE, "module"), "data"),
        Input(graph_id("map-heatmap"), "clickData"),
        State(graph_id("map-heatmap"), "figure"),
        prevent_initial_call=True,
    )

    # A click on a cell scrolls its drill-down (drawn below the map) into view.
    app.clientside_callback(
        ClientsideFunction(namespace="radmap", function_name="revealDrill"),
        Output("map-drill-revealed", "data"),
        Input("map-drill-title", "children"),
        State(graph_id("map-heatmap"), "clickData"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("map-drill", "style"),
        Output("map-drill-title", "children"),
        Output("map-drill-stats", "children"),
        Output("map-drill-volcano", "href"),
        Output("map-drill-module", "href"),
        Output(graph_id("map-phenotype"), "figure"),
        Output("map-drill-hubs", "children"),
        Output(table_id("map-pathways"), "rowData"),
        Output(table_id("map-pathways"), "columnDefs"),
        Input(store_id(PAGE, "feature"), "data"),
        Input(store_id(PAGE, "module"), "data"),
        Input(sid(PAGE, "color"), "value"),
        Input(DRILL_REQUEST, "data"),  # a new map (FDR, subset) with a cell chosen
        State(sid(PAGE, "q"), "value"),
        State(store_id(PAGE, "subset"), "data"),
        prevent_initial_call=True,  # the page layout draws the drill-down of the URL
    )
    def _drill(feature, module, color, _request, q, subset):
        if stays_hidden(
            bool(feature and module), store_id(PAGE, "feature"), store_id(PAGE, "module")
        ):
            raise PreventUpdate  # no cell chosen before or now
        panel = subset_drill_down(
            data, subset, feature, module, q=float(q), color=color, base=ctx.base
        )
        return (
            panel["style"],
            panel["title"],
            panel["stats"],
            panel["volcano_href"],
            panel["module_href"],
            panel["figure"],
            panel["hubs"],
            panel["pathway_rows"],
            panel["pathway_columns"],
        )
