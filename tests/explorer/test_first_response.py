"""Pages carry their main figure in the layout: one response, no URL -> page -> figure chain."""

from __future__ import annotations

import pytest
from radmap.explorer.callbacks import cohort, core, gene, map, module, volcano
from radmap.explorer.pages import page_layout
from radmap.explorer.state import ViewState

from tests.explorer.conftest import as_figure, find_component


def _graph(layout, name: str):
    graph = find_component(layout, {"role": "graph", "fig": name})
    assert graph is not None, name
    return getattr(graph, "figure", None)


MAIN = {
    "map": ["map-heatmap"],
    "volcano": ["volcano"],
    "gene": ["gene-bar"],
    "module": ["module-heatmap", "module-enrichment"],
    "cohort": ["cohort-overlap", "cohort-types", "cohort-missing"],
    "patient": ["patient-profile", "patient-survival"],
}


@pytest.mark.parametrize("page", sorted(MAIN))
def test_the_page_layout_carries_its_main_figures(toy_data, page):
    layout = page_layout(toy_data, ViewState(page=page))
    for name in MAIN[page]:
        figure = _graph(layout, name)
        assert figure is not None and as_figure(figure).data, f"{name} is left to a callback"


def test_layout_figures_are_those_the_callbacks_would_draw(toy_data):
    state = ViewState(page="volcano", feature="original_shape_Sphericity", y="p", q=0.01)
    layout = page_layout(toy_data, state)
    expected, _, rows, _ = volcano.volcano_view(
        toy_data, state.feature, y="p", q=0.01, min_effect=0.0, gene=None
    )
    assert _graph(layout, "volcano") == expected
    grid = find_component(layout, {"role": "table", "table": "volcano-top"})
    assert grid.rowData == rows

    state = ViewState(page="map", q=0.1, rows="features")
    heatmap, style, _ = map.map_figure(toy_data, q=0.1, stat="effect", rows="features")
    layout = page_layout(toy_data, state)
    assert _graph(layout, "map-heatmap") == heatmap
    assert find_component(layout, "map-heatmap-box").style == style

    view = gene.gene_view(toy_data, "EGFR", q=0.05, base="/radmap/")
    layout = page_layout(toy_data, ViewState(page="gene", gene="EGFR"), base="/radmap/")
    assert _graph(layout, "gene-bar") == view["bar"]
    assert "/radmap/" in str(find_component(layout, "gene-info").children)

    view = module.module_view(toy_data, "M2", q=0.05)
    layout = page_layout(toy_data, ViewState(page="module", module="M2"))
    assert _graph(layout, "module-heatmap") == view["heatmap"]


def test_route_renders_the_figure_in_the_same_response(toy_data):
    layout, _ = core.route(toy_data, "/cohort", "", base="/")
    assert as_figure(_graph(layout, "cohort-missing")).data
    assert _graph(layout, "cohort-missing") == cohort.missing_part(toy_data, 0.05)["missing"]
