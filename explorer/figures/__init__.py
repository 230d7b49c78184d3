"""Figure factories: tidy pandas tables in, plotly figures out (no I/O, no Dash).

The same factory draws the figure on screen and for export; :mod:`explorer.export`
only changes its size and fonts (:func:`~explorer.figures.style.publication_layout`).
"""

from __future__ import annotations

from ..figures.cohort import (
    feature_types_figure,
    missingness_figure,
    mutation_imaging_figure,
    overlap_figure,
)
from ..figures.enrichment import enrichment_dotplot, gene_association_bar
from ..figures.heatmap import map_heatmap, summarise_families
from ..figures.module import module_expression_heatmap
from ..figures.network import network_figure
from ..figures.phenotype import phenotype_plot
from ..figures.style import (
    DIVERGING,
    PUBLICATION_SIZES,
    TEMPLATE,
    empty_figure,
    module_colors,
    publication_layout,
)
from ..figures.survival import km_figure, survival_view_figure
from ..figures.volcano import volcano

__all__ = [
    "DIVERGING",
    "PUBLICATION_SIZES",
    "TEMPLATE",
    "empty_figure",
    "enrichment_dotplot",
    "feature_types_figure",
    "gene_association_bar",
    "km_figure",
    "map_heatmap",
    "missingness_figure",
    "module_colors",
    "module_expression_heatmap",
    "mutation_imaging_figure",
    "network_figure",
    "overlap_figure",
    "phenotype_plot",
    "publication_layout",
    "summarise_families",
    "survival_view_figure",
    "volcano",
]
