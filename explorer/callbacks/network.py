"""Network page callback: features — modules — pathways at the threshold."""

from __future__ import annotations

from dash import Input, Output

from ..callbacks.common import AppContext, note
from ..data import BundleData
from ..figures.network import network_figure
from ..pages.common import graph_id, sid

PAGE = "network"


def network_view(data: BundleData, *, q: float, min_effect: float = 0.0, sources=(), groups=()):
    """The network figure and a note when no association passes the threshold."""
    nodes, edges = data.network(
        q_threshold=q, min_effect=float(min_effect or 0.0), sources=sources, groups=groups
    )
    n_features = int((nodes["kind"] == "feature").sum())
    message = (
        None
        if n_features
        else f"No imaging feature is associated with a module at q < {q:g}: "
        "raise the threshold or include more feature sources."
    )
    figure = network_figure(nodes, edges, modules=data.module_names)
    return figure, note(message, color="warning")


def register(app, ctx: AppContext) -> None:
    @app.callback(
        Output(graph_id("network"), "figure"),
        Output("network-note", "children"),
        Input(sid(PAGE, "q"), "value"),
        Input(sid(PAGE, "min_effect"), "value"),
        Input(sid(PAGE, "sources"), "value"),
        Input(sid(PAGE, "groups"), "value"),
    )
    def _network(q, min_effect, sources, groups):
        return network_view(
            ctx.data,
            q=float(q),
            min_effect=min_effect,
            sources=tuple(sources or ()),
            groups=tuple(groups or ()),
        )
