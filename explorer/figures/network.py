"""Network of imaging features, gene modules and pathways."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import igraph as ig
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ...analysis.bundle import UNASSIGNED
from ...analysis.validate import InputError
from ..figures.margins import fits_screen
from ..figures.style import (
    MEASURE_NAMES,
    NEGATIVE_COLOR,
    NEUTRAL_COLOR,
    POSITIVE_COLOR,
    TEMPLATE,
    empty_figure,
    module_colors,
    natural_key,
    order_modules,
)

KINDS = ("feature", "module", "pathway")
LAYER_X = {"feature": 0.0, "module": 1.0, "pathway": 2.0}
SYMBOLS = {"feature": "square", "module": "circle", "pathway": "diamond"}
TEXT_POSITIONS = {"feature": "middle left", "module": "top center", "pathway": "middle right"}
KIND_COLORS = {"feature": NEUTRAL_COLOR, "pathway": "#7F7F7F"}
PATHWAY_EDGE_COLOR = "#AAAAAA"
WIDTHS = (1.0, 2.5, 4.0)
EDGE_DASHES = ("solid", "dash", "dot", "dashdot")
"""Line style of each effect measure's edges, in order of appearance."""
MAX_LABEL_CHARS = 28


def _spread(count: int) -> np.ndarray:
    return np.linspace(1.0, 0.0, count) if count > 1 else np.full(count, 0.5)


def layered_positions(nodes: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """x by layer (features | modules | pathways), y ordered to limit edge crossings.

    Modules are placed in natural order; features and pathways at the weighted mean
    height of the modules they connect to (barycentre), ties broken by ID.
    """
    positions = pd.DataFrame(
        {"x": nodes["kind"].map(LAYER_X).to_numpy(), "y": 0.5}, index=nodes["id"].to_numpy()
    )
    modules = order_modules(nodes.loc[nodes["kind"] == "module", "id"])
    positions.loc[modules, "y"] = _spread(len(modules))
    for kind in ("feature", "pathway"):
        ids = nodes.loc[nodes["kind"] == kind, "id"].tolist()
        links = edges[
            (edges["source"].isin(ids) & edges["target"].isin(modules))
            | (edges["target"].isin(ids) & edges["source"].isin(modules))
        ]
        own = np.where(links["source"].isin(ids), links["source"], links["target"])
        other = np.where(links["source"].isin(ids), links["target"], links["source"])
        weights = links["weight"].abs().to_numpy() + 1e-9
        heights = positions.loc[other, "y"].to_numpy() if len(other) else np.array([])
        centre = (
            pd.DataFrame({"id": own, "wy": heights * weights, "w": weights})
            .groupby("id")[["wy", "w"]]
            .sum()
        )
        barycentre = (centre["wy"] / centre["w"]).reindex(ids).fillna(-1.0)
        ordered = sorted(ids, key=lambda node: (-barycentre[node], natural_key(node)))
        positions.loc[ordered, "y"] = _spread(len(ordered))
    return positions


def force_positions(nodes: pd.DataFrame, edges: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Kamada–Kawai layout from a seeded random start (deterministic for a seed)."""
    index = {node: i for i, node in enumerate(nodes["id"])}
    graph = ig.Graph(
        n=len(index),
        edges=[(index[s], index[t]) for s, t in zip(edges["source"], edges["target"])],
    )
    start = np.random.default_rng(seed).uniform(size=(len(index), 2)).tolist()
    coords = np.asarray(graph.layout_kamada_kawai(seed=start).coords)
    span = np.ptp(coords, axis=0)
    coords = (coords - coords.min(axis=0)) / np.where(span > 0, span, 1.0)
    return pd.DataFrame(coords, index=nodes["id"].to_numpy(), columns=["x", "y"])


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _label_pad(longest: float) -> float:
    """Room (in layer units) for labels of ``longest`` characters beside an outer layer."""
    chars = 0 if pd.isna(longest) else min(longest, MAX_LABEL_CHARS)
    return 0.2 + 0.05 * chars


def _node_size(size: pd.Series, largest: float = 28.0) -> np.ndarray:
    """Marker diameters from 8 px to ``largest`` px, area proportional to ``size``."""
    values = np.sqrt(size.astype(float).clip(lower=0).fillna(0).to_numpy())
    top = values.max() if values.size and values.max() > 0 else 1.0
    return np.round(8 + (largest - 8) * values / top, 1)


@fits_screen
def network_figure(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    layout: Literal["layered", "force"] = "layered",
    seed: int = 0,
    modules: Sequence[str] | None = None,
    max_labels: int = 60,
    title: str | None = None,
) -> go.Figure:
    """Draw features, modules and pathways with their associations.

    Parameters
    ----------
    nodes
        Columns ``id``, ``label``, ``kind`` (``feature`` / ``module`` / ``pathway``),
        ``size``.
    edges
        Columns ``source``, ``target``, ``weight`` (signed effect for feature-module
        edges, -log10 q for module-pathway edges). Edges to unknown nodes are dropped.
    layout
        ``layered`` (features | modules | pathways columns) or ``force`` (Kamada–Kawai
        from a start drawn with ``seed``); both deterministic.
    seed
        Seed of the force layout's start.
    modules
        Full module list of the bundle, so that module colours match other views.
    max_labels
        Above this many nodes only modules are labelled (hover names every node).
    title
        Figure title.

    Returns
    -------
    The figure; node ``customdata`` is ``[id, kind]``.
    """
    if nodes is None or nodes.empty:
        return empty_figure(
            "No network to draw: lower the q threshold or pick modules with associations.",
            title=title,
        )
    missing = [c for c in ("id", "label", "kind", "size") if c not in nodes]
    missing += [
        f"edges.{c}" for c in ("source", "target", "weight") if edges is not None and c not in edges
    ]
    if missing:
        raise InputError(f"network tables lack column(s) {missing}")
    unknown = sorted(set(nodes["kind"]) - set(KINDS))
    if unknown:
        raise InputError(f"node kind must be one of {KINDS}, got {unknown}")
    nodes = nodes.drop_duplicates("id").assign(id=lambda t: t["id"].astype(str))
    if edges is None:
        edges = pd.DataFrame(columns=["source", "target", "weight"])
    edges = edges.assign(source=edges["source"].astype(str), target=edges["target"].astype(str))
    known = set(nodes["id"])
    edges = edges[edges["source"].isin(known) & edges["target"].isin(known)]
    if layout == "layered":
        positions = layered_positions(nodes, edges)
    elif layout == "force":
        positions = force_positions(nodes, edges, seed=seed)
    else:
        raise InputError(f"layout must be 'layered' or 'force', got {layout!r}")

    kind_of = dict(zip(nodes["id"], nodes["kind"]))
    label_of = dict(zip(nodes["id"], nodes["label"].astype(str)))
    fig = go.Figure()
    pathway_edge = [
        "pathway" in (kind_of[s], kind_of[t]) for s, t in zip(edges["source"], edges["target"])
    ]
    from radmap.analysis.associate import SIGNED_MEASURES

    measure = (
        edges["measure"].fillna("").astype(str)
        if "measure" in edges
        else pd.Series("", index=edges.index)
    )
    unsigned = ~(measure.isin(SIGNED_MEASURES) | (measure == "")).to_numpy()
    direction = np.where(
        pathway_edge,
        "pathway",
        np.where(unsigned, "unsigned", np.where(edges["weight"] >= 0, "positive", "negative")),
    )
    measure_name = measure.map(lambda m: MEASURE_NAMES.get(m, m) if m else "effect")
    edges = edges.assign(
        direction=direction,
        scale=np.where(pathway_edge, "pathway", measure_name),
        measure=np.where(pathway_edge, measure.where(measure != "", "weight"), measure_name),
    )
    edge_colors = {
        "positive": POSITIVE_COLOR,
        "negative": NEGATIVE_COLOR,
        "unsigned": NEUTRAL_COLOR,
        "pathway": PATHWAY_EDGE_COLOR,
    }
    # Each effect measure is its own scale: widths are relative to that measure's strongest
    # edge, and the measure is named in the legend (and drawn with its own dash).
    counts = edges.loc[~np.asarray(pathway_edge, bool), "scale"].value_counts(sort=False)
    scales = sorted(counts.index, key=lambda scale: -counts[scale])  # commonest drawn solid
    dashes = {scale: EDGE_DASHES[k % len(EDGE_DASHES)] for k, scale in enumerate(scales)}
    dashes["pathway"] = "solid"

    def edge_name(direction: str, scale: str) -> str:
        if direction == "pathway":
            return "enriched pathway"
        prefix = "" if scale == "effect" else f"{scale}: "
        if direction == "unsigned":
            return f"{prefix}association without direction (unordered categories)"
        return f"{prefix}{direction} association"

    for scale in [*scales, "pathway"]:
        of_scale = edges[edges["scale"] == scale]
        if of_scale.empty:
            continue
        strength_all = of_scale["weight"].abs().to_numpy(dtype=float)
        top = strength_all.max() if strength_all.max() > 0 else 1.0
        for group in ("positive", "negative", "unsigned", "pathway"):
            part = of_scale[of_scale["direction"] == group]
            if part.empty:
                continue
            strength = part["weight"].abs().to_numpy(dtype=float)
            bins = np.minimum((strength / top * len(WIDTHS)).astype(int), len(WIDTHS) - 1)
            for b, width in enumerate(WIDTHS):
                chosen = part[bins == b]
                if chosen.empty:
                    continue
                xs, ys = [], []
                for s, t in zip(chosen["source"], chosen["target"]):
                    xs += [positions.at[s, "x"], positions.at[t, "x"], None]
                    ys += [positions.at[s, "y"], positions.at[t, "y"], None]
                name = edge_name(group, scale)
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        mode="lines",
                        line={"color": edge_colors[group], "width": width, "dash": dashes[scale]},
                        opacity=0.7,
                        name=name,
                        legendgroup=name,
                        showlegend=bool(b == bins.min()),
                        hoverinfo="skip",
                    )
                )
    if not edges.empty:
        mid_x = (
            positions.loc[edges["source"], "x"].to_numpy()
            + positions.loc[edges["target"], "x"].to_numpy()
        ) / 2
        mid_y = (
            positions.loc[edges["source"], "y"].to_numpy()
            + positions.loc[edges["target"], "y"].to_numpy()
        ) / 2
        fig.add_trace(
            go.Scatter(
                x=np.round(mid_x, 4),
                y=np.round(mid_y, 4),
                mode="markers",
                marker={"size": 8, "opacity": 0},
                customdata=np.column_stack(
                    [
                        [label_of[s] for s in edges["source"]],
                        [label_of[t] for t in edges["target"]],
                        [f"{w:.3g}" for w in edges["weight"]],
                        edges["measure"].astype(str),
                    ]
                ),
                hovertemplate=(
                    "%{customdata[0]} – %{customdata[1]}<br>%{customdata[3]} %{customdata[2]}"
                    "<extra></extra>"
                ),
                showlegend=False,
                name="edges",
            )
        )
    module_names = nodes.loc[nodes["kind"] == "module", "label"].astype(str)
    colors = module_colors(
        [*modules, UNASSIGNED] if modules is not None else order_modules(module_names)
    )
    label_all = len(nodes) <= max_labels
    layer_size = nodes["kind"].value_counts().max()
    height = int(np.clip(18 * layer_size + 120, 400, 1400))
    for kind in KINDS:
        part = nodes[nodes["kind"] == kind]
        if part.empty:
            continue
        ids = part["id"].tolist()
        color = (
            [colors.get(name, NEUTRAL_COLOR) for name in part["label"].astype(str)]
            if kind == "module"
            else KIND_COLORS[kind]
        )
        show_text = label_all or kind == "module"
        # a layered column's markers stay apart (its rows are ~18 px apart)
        largest = (
            28.0 if layout == "force" else float(np.clip(0.8 * (height - 120) / len(part), 10, 28))
        )
        fig.add_trace(
            go.Scatter(
                x=positions.loc[ids, "x"].round(4).tolist(),
                y=positions.loc[ids, "y"].round(4).tolist(),
                mode="markers+text" if show_text else "markers",
                text=[_short(label) for label in part["label"].astype(str)],
                hovertext=part["label"].astype(str).tolist(),
                cliponaxis=False,
                textposition=TEXT_POSITIONS[kind],
                customdata=[[i, kind] for i in ids],
                marker={
                    "symbol": SYMBOLS[kind],
                    "size": _node_size(part["size"], largest),
                    "color": color,
                    "line": {"color": "white", "width": 1},
                },
                name=f"{kind}s",
                hovertemplate="<b>%{hovertext}</b><br>" + kind + " %{customdata[0]}<extra></extra>",
            )
        )
    hidden = {"visible": False}
    if layout == "layered":
        longest = {
            kind: nodes.loc[nodes["kind"] == kind, "label"].astype(str).str.len().max()
            for kind in ("feature", "pathway")
        }
        pads = [_label_pad(longest["feature"]), _label_pad(longest["pathway"])]
        x_range = [-pads[0], 2.0 + pads[1]]
    else:
        x_range = [-0.15, 1.15]
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        xaxis=hidden | {"range": x_range},
        yaxis=hidden | {"range": [-0.1, 1.1]},
        height=height,
        legend={"orientation": "h", "y": -0.02, "yanchor": "top"},
        hovermode="closest",
    )
    return fig
