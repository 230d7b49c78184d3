"""The explorer's figures for a notebook (``radmap.pl.*``): AnnData in, plotly figure out.

Each function draws exactly what the explorer's page draws for the same choices (the same
queries of :class:`radmap.explorer.data.BundleData` and the same figure factories), so a
figure made here matches the app's and exports the same way (``fig.write_image``).
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import plotly.graph_objects as go

from .data import BundleData
from .figures import (
    enrichment_dotplot,
    gene_association_bar,
    map_heatmap,
    module_expression_heatmap,
    network_figure,
    phenotype_plot,
    survival_view_figure,
)
from .figures import volcano as volcano_figure

__all__ = [
    "enrichment",
    "gene",
    "km",
    "map",
    "module",
    "network",
    "phenotype",
    "predict",
    "volcano",
]


def _data(adata: ad.AnnData | BundleData) -> BundleData:
    return adata if isinstance(adata, BundleData) else BundleData(adata)


def map(  # noqa: A001 - scanpy-style name, radmap.pl.map
    adata: ad.AnnData,
    *,
    value: str = "effect",
    q: float = 0.05,
    sources: Sequence[str] = (),
    groups: Sequence[str] = (),
    rows: str = "auto",
    top: int = 40,
    min_effect: float = 0.0,
) -> go.Figure:
    """The radiogenomic map: imaging features x modules, dots where q < ``q``; each effect
    measure on its own colour scale, stable links (bootstrap stability) outlined."""
    data = _data(adata)
    view = data.map_view(sources=sources, groups=groups, rows=rows, top=top)
    return map_heatmap(
        view.assoc,
        view.features,
        value=value,
        q_threshold=q,
        min_effect=min_effect,
        families=view.families,
        bootstraps=data.stability_runs(),
    )


def volcano(adata: ad.AnnData, feature: str, *, q: float = 0.05, y: str = "p") -> go.Figure:
    """Every gene against one imaging feature, coloured by module."""
    data = _data(adata)
    return volcano_figure(
        data.gene_table(feature),
        y=y,
        q_threshold=q,
        modules=data.module_names,
        title=data.feature_label(feature),
    )


def phenotype(
    adata: ad.AnnData,
    feature: str,
    *,
    module: str | None = None,
    gene: str | None = None,
    color: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """A module eigengene or a gene's expression against one imaging feature, per patient;
    with ``color`` (a mutation), patients coloured by its status. ``title`` defaults to
    "module (or gene) x feature"."""
    data = _data(adata)
    frame = data.phenotype(feature, module=module, gene=gene, color=color)
    labels = data.phenotype_labels(feature, module=module, gene=gene)
    return phenotype_plot(
        frame,
        feature_type=labels["feature_type"],
        value_label=labels["value_label"],
        feature_label=labels["feature_label"],
        color="color" if color and "color" in frame else None,
        color_title=f"{color} status" if color else None,
        title=title or f"{module or gene} x {labels['feature_label']}",
    )


def gene(adata: ad.AnnData, symbol: str, *, q: float = 0.05) -> go.Figure:
    """One gene's associations with every imaging feature."""
    data = _data(adata)
    return gene_association_bar(
        data.gene_associations(symbol), q_threshold=q, title=f"{symbol} x imaging features"
    )


def km(
    adata: ad.AnnData,
    kind: str,
    variable: str,
    *,
    split: str = "median",
    cut: float | None = None,
) -> go.Figure:
    """Kaplan-Meier curves: ``kind`` is ``module``, ``gene``, ``feature`` or ``mutation``.

    Continuous variables are split by ``split`` (``median``, ``tertiles``, ``quartiles``
    or ``cut`` at ``cut``). The patients and the test are the analysis' (see
    :meth:`explorer.data.BundleData.km`); the figure shows n and events.
    """
    return survival_view_figure(_data(adata).km(kind, variable, split=split, cut=cut))


def network(adata: ad.AnnData, *, q: float = 0.05, min_effect: float = 0.0) -> go.Figure:
    """Imaging features - modules - pathways, edges where q < ``q``."""
    data = _data(adata)
    nodes, edges = data.network(q_threshold=q, min_effect=min_effect)
    return network_figure(nodes, edges, modules=data.module_names)


def module(adata: ad.AnnData, name: str, *, order_feature: str | None = None) -> go.Figure:
    """A module's top genes by kME across patients, ordered by a feature or the eigengene."""
    data = _data(adata)
    matrix, order_values = data.module_expression(name, order_feature=order_feature)
    label = data.feature_label(order_feature) if order_feature else f"{name} eigengene"
    return module_expression_heatmap(
        matrix, order_values, feature_label=label, title=f"{name}: top genes by kME"
    )


def enrichment(adata: ad.AnnData, module: str, *, q: float = 0.05) -> go.Figure:
    """The pathways enriched in one module."""
    return enrichment_dotplot(
        _data(adata).enrichment(module), q_threshold=q, title=f"{module} pathways"
    )


PREDICT_FIGURES = ("roc", "calibration", "performance")


def predict(adata: ad.AnnData, target: str | None = None, *, kind: str = "roc") -> go.Figure:
    """The Predict page's figure for ``target`` (default: the first target predicted).

    ``kind`` is ``roc`` (ROC curves of the feature sets against the baselines, bootstrap
    bands), ``calibration`` or ``performance`` (AUC / R² per feature set with CIs). Reads
    the results :func:`radmap.tl.predict` stored in the bundle.
    """
    from ..analysis.validate import InputError
    from .callbacks.predict import predict_view

    if kind not in PREDICT_FIGURES:
        raise InputError(f"kind must be one of {', '.join(PREDICT_FIGURES)}, got {kind!r}")
    view = predict_view(_data(adata), target)
    if not view:
        raise InputError("no prediction results in this bundle: run radmap.tl.predict(adata)")
    if target is not None and view["target"] != target:
        raise InputError(f"no prediction results for {target!r}; predicted: {view['targets']}")
    return view[kind]
