"""Replication page callbacks: read the ``radmap replicate`` result, draw the page."""

from __future__ import annotations

from dash import Input, Output
from dash.exceptions import PreventUpdate

from ...analysis.replicate import read_replication, scorecard_text, sidecar_dir
from ...analysis.validate import InputError
from ..callbacks.common import AppContext, grid
from ..data import BundleData
from ..figures.replication import preservation_figure, scorecard_figure
from ..pages.common import graph_id, table_id

PAGE = "replication"
LINK_COLUMNS = (
    "module",
    "feature",
    "status",
    "effect_discovery",
    "q_discovery",
    "effect_validation",
    "p_replication",
    "q_replication",
    "n_validation",
    "test",
    "reason",
)
MODULE_COLUMNS = (
    "module",
    "size",
    "genes_used",
    "Z_summary",
    "Z_density",
    "Z_connectivity",
    "preservation",
)


def load_replication(data: BundleData) -> tuple[dict | None, str]:
    """The replication result next to the bundle (``<bundle>.replication/``, memoised per
    file version) and a message: how to make one when there is none, or a warning when it
    was computed from another version of the bundle."""
    if data.path is None:
        return None, (
            "This bundle is in memory: save it (radmap.write_bundle) and run `radmap "
            "replicate BUNDLE VALIDATION` on the file to see the replication here."
        )
    folder = sidecar_dir(data.path)
    summary = folder / "replication.json"
    if not summary.is_file():
        return None, (
            f"Run `radmap replicate {data.path.name} VALIDATION.h5ad` (a bundle of a second "
            f"cohort) to test this map's modules and links; the result ({folder.name}/) is "
            "then shown here."
        )
    stamp = summary.stat().st_mtime_ns

    def build():
        try:
            return read_replication(folder), ""
        except InputError as error:
            return None, str(error)

    result, problem = data.memo("replication-result", {"mtime": stamp}, build)
    if result is None:
        return None, problem
    recorded = result["params"].get("discovery_bundle_sha256")
    if recorded and recorded != data.bundle_id:
        return result, (
            f"{folder.name} was computed from another version of {data.path.name}; run "
            "`radmap replicate` again to bring it up to date."
        )
    return result, ""


def replication_view(data: BundleData, status: str | None = "all") -> dict:
    """Every figure, table and sentence of the Replication page ({} without a result)."""
    result, _ = load_replication(data)
    if result is None:
        return {}
    card, params = result["scorecard"], result["params"]
    links = result["links"]
    if status and status != "all":
        links = links[links["status"].astype(str) == status]
    modules = result["preservation"].rename_axis("module").reset_index()
    link_rows, link_columns = grid(
        links,
        [c for c in LINK_COLUMNS if c in links.columns],
        numeric=[
            c
            for c in LINK_COLUMNS
            if c in links.columns and c not in ("module", "feature", "status", "test", "reason")
        ],
    )
    module_rows, module_columns = grid(
        modules,
        [c for c in MODULE_COLUMNS if c in modules.columns],
        numeric=[c for c in ("Z_summary", "Z_density", "Z_connectivity") if c in modules],
    )
    protocol = (
        f"Validation cohort: {params.get('validation_patients')} patients (discovery "
        f"{params.get('discovery_patients')}); links with q < {params.get('alpha')}; "
        f"{params.get('n_permutations')} random gene sets per module; seed "
        f"{params.get('seed')}."
    )
    return {
        "verdict": scorecard_text(card) + ".",
        "protocol": protocol,
        "scorecard": scorecard_figure(card),
        "preservation": preservation_figure(result["preservation"]),
        "link_rows": link_rows,
        "link_columns": link_columns,
        "module_rows": module_rows,
        "module_columns": module_columns,
    }


def register(app, ctx: AppContext) -> None:
    data = ctx.data

    @app.callback(
        Output("replication-verdict", "children"),
        Output("replication-protocol", "children"),
        Output(graph_id("replication-scorecard"), "figure"),
        Output(graph_id("replication-preservation"), "figure"),
        Output(table_id("replication-links"), "rowData"),
        Output(table_id("replication-links"), "columnDefs"),
        Output(table_id("replication-modules"), "rowData"),
        Output(table_id("replication-modules"), "columnDefs"),
        Input("replication-status", "value"),
    )
    def _view(status):
        view = replication_view(data, status)
        if not view:
            raise PreventUpdate
        return (
            view["verdict"],
            view["protocol"],
            view["scorecard"],
            view["preservation"],
            view["link_rows"],
            view["link_columns"],
            view["module_rows"],
            view["module_columns"],
        )
