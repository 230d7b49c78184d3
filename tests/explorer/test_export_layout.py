"""Exports at journal column width lay out: nothing clipped at the page edge, the plot keeps
its room, labels do not run into each other.

Each figure is rendered to PNG the way the Export button does (kaleido, 300 dpi) and the
pixels are read back.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image
from radmap.explorer.export import export_figure
from radmap.explorer.figures import gene_association_bar, map_heatmap
from radmap.explorer.figures.style import publication_layout

from tests.explorer.test_figures import associations, radiomic_features, semantic_features

pytestmark = pytest.mark.slow

MODULES = [f"M{k}" for k in range(1, 11)]


@pytest.fixture(scope="module")
def long_map():
    features = pd.concat([semantic_features(), radiomic_features(36)])
    return map_heatmap(associations(features, MODULES, seed=2), features)


@pytest.fixture(scope="module")
def mixed_map():
    """A map with three effect measures, so three colour bars beside the legend."""
    features = pd.concat([semantic_features(), radiomic_features(36)])
    assoc = associations(features, MODULES, seed=2)
    measure = {"margin": "epsilon_squared", "pleural": "hedges_g"}
    assoc["effect_measure"] = assoc["feature"].map(measure).fillna("rho")
    unsigned = assoc["effect_measure"] == "epsilon_squared"
    assoc.loc[unsigned, "effect"] = assoc.loc[unsigned, "effect"].abs()
    return map_heatmap(assoc, features)


@pytest.fixture(scope="module")
def gene_bars():
    features = radiomic_features(24)
    table = pd.DataFrame(
        {
            "feature": features.index,
            "label": features["label"],
            "effect": np.linspace(-0.8, 0.8, len(features)),
            "q": np.linspace(0.001, 0.5, len(features)),
            "test": "spearman",
        }
    )
    return gene_association_bar(table)


@pytest.fixture(scope="module")
def titled_legend():
    """A volcano-like legend: a title and eight items that need three rows in one column."""
    import plotly.graph_objects as go

    names = [f"M{k} ({k * 17}/{k * 31})" for k in range(1, 8)] + ["unassigned (69/449)"]
    return go.Figure(
        [
            go.Scatter(x=[0, 1], y=[k, k + 1], mode="markers", name=name)
            for k, name in enumerate(names)
        ],
        layout={
            "title": {"text": "Nodule Attenuation"},
            "legend": {"title": {"text": "module (significant/all)"}},
        },
    )


@pytest.fixture(scope="module")
def pathways():
    """The module page's dot plot of enriched terms: long, wrapped Hallmark and GO names."""
    from radmap.explorer.figures import enrichment_dotplot

    terms = [
        "HALLMARK_COAGULATION",
        "HALLMARK_IL2_STAT5_SIGNALING",
        "HALLMARK_COMPLEMENT",
        "HALLMARK_HEME_METABOLISM",
        "HALLMARK_ANDROGEN_RESPONSE",
        "Proteolysis (GO:0006508)",
        "HALLMARK_ESTROGEN_RESPONSE_EARLY",
        "HALLMARK_ESTROGEN_RESPONSE_LATE",
        "Sphingolipid Biosynthetic Process (GO:0030148)",
        "Regulation Of Cellular Catabolic Process (GO:0031329)",
        "Organonitrogen Compound Biosynthetic Process (GO:1901566)",
        "Membrane Lipid Biosynthetic Process (GO:0046467)",
        "Positive Regulation Of Glucose Transmembrane Transport (GO:0010828)",
        "Regulation Of Cell Death (GO:0010941)",
        "Regulation Of Immune Effector Process (GO:0002697)",
    ]
    table = pd.DataFrame(
        {
            "term": terms,
            "collection": "hallmark",
            "overlap": np.arange(3, 3 + len(terms)),
            "set_size": 200,
            "p": np.geomspace(1e-6, 1e-2, len(terms)),
            "q": np.geomspace(0.4, 0.9, len(terms)),
            "odds_ratio": 3.0,
        }
    )
    return enrichment_dotplot(table, title="M4 pathways")


@pytest.fixture(scope="module")
def network():
    """The network page's layered graph: long radiomic names on the left, long pathway
    names on the right (cut at the page's edges before this was fitted)."""
    from radmap.explorer.figures import network_figure

    features = radiomic_features(25).index.tolist()
    modules = [f"M{k}" for k in range(1, 8)]
    pathways = [
        "Antigen Receptor-Mediated Signaling Pathway (GO:0050851)",
        "HALLMARK_INTERFERON_GAMMA_RESPONSE",
        "Cellular Response To Chemokine (GO:1990869)",
    ]
    nodes = pd.DataFrame(
        {
            "id": features + [f"module:{m}" for m in modules] + pathways,
            "label": features + modules + pathways,
            "kind": ["feature"] * 25 + ["module"] * 7 + ["pathway"] * 3,
            "size": [1 + k % 4 for k in range(25)] + [200, 100, 60, 50, 40, 30, 20] + [5, 9, 3],
        }
    )
    edges = pd.DataFrame(
        {
            "source": features + ["module:M1", "module:M2", "module:M6"],
            "target": [f"module:{modules[k % 7]}" for k in range(25)] + pathways,
            "weight": [(-1) ** k * 0.3 for k in range(25)] + [4.0, 3.0, 2.0],
        }
    )
    return network_figure(nodes, edges, modules=modules)


TITLE = "EGFR x exponential_glcm_Idmn (q = 4.92e-4) (Spearman ρ = 0.31, n = 116, subset A)"


@pytest.fixture(scope="module")
def long_title():
    """A phenotype plot's title: gene, feature, q and the correlation in one line."""
    import plotly.graph_objects as go

    return go.Figure(
        [
            go.Scatter(x=[0.95, 1.0], y=[-2, 5], mode="markers", name="patients"),
            go.Scatter(x=[0.95, 1.0], y=[-1, 1], mode="lines", name="OLS fit"),
        ],
        layout={"title": TITLE},
    )


@pytest.fixture(scope="module")
def drill_phenotype():
    """The map drill-down's phenotype plot, its title placed under the screen's toolbar, with
    a long semantic feature name on the x axis."""
    from radmap.explorer.figures.phenotype import phenotype_plot

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "patient": [f"R01-{k:03d}" for k in range(60)],
            "feature": rng.normal(size=60),
            "value": rng.normal(size=60),
        }
    )
    name = "Nodule Associated Findings: attachment to bronchus (fraction of the margin)"
    return phenotype_plot(
        frame,
        feature_type="continuous",
        value_label="M2 eigengene",
        feature_label=name,
        title=f"M2 x {name}",
    )


@pytest.fixture(scope="module")
def side_labels_and_long_x_title():
    """Long category labels left of the plot and an x axis title wider than the plot (the
    patient page's profile): plotly centres the title under the plot, not the page."""
    rng = np.random.default_rng(4)
    names = [f"wav-LLL_glcm_Autocorr{k:02d}" for k in range(12)]
    fig = go.Figure([go.Box(x=rng.normal(size=50), name=name, orientation="h") for name in names])
    fig.update_layout(
        xaxis_title="cohort standard deviations from the cohort mean (z)", showlegend=False
    )
    return fig


@pytest.fixture(scope="module")
def long_message():
    from radmap.explorer.figures import empty_figure

    return empty_figure(
        "Choose an imaging feature to see every gene's association with it (its volcano)."
    )


def rendered(fig, width: str) -> np.ndarray:
    content, _ = export_figure(fig, "png", width=width)
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"), dtype=int)


def ink(pixels: np.ndarray) -> np.ndarray:
    """Where something is drawn (not white paper)."""
    return (pixels < 235).any(axis=-1)


def colour(pixels: np.ndarray) -> np.ndarray:
    """Where a saturated colour is drawn (heatmap cells, bars), not black text or grey."""
    return (pixels.max(axis=-1) - pixels.min(axis=-1)) > 60


@pytest.mark.parametrize("width", ["single", "double"])
@pytest.mark.parametrize(
    "name",
    [
        "long_map",
        "mixed_map",
        "gene_bars",
        "titled_legend",
        "long_message",
        "pathways",
        "long_title",
        "network",
        "drill_phenotype",
        "side_labels_and_long_x_title",
    ],
)
def test_exports_keep_everything_on_the_page(request, name, width):
    pixels = rendered(request.getfixturevalue(name), width)
    drawn = ink(pixels)
    edge = 3
    assert not drawn[:, :edge].any(), "something is cut at the left edge"
    assert not drawn[:, -edge:].any(), "something is cut at the right edge"
    assert not drawn[:edge].any() and not drawn[-edge:].any(), "cut at the top or bottom"


def _ink_box(drawn: np.ndarray) -> np.ndarray:
    rows, columns = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    return np.array([columns[0], rows[0], columns[-1], rows[-1]]) / drawn.shape[1]


@pytest.mark.parametrize("name", ["long_map", "pathways"])
def test_pdf_exports_put_the_figure_where_the_png_does(request, name):
    """kaleido printed PDFs with 0.1 inch page margins on a page the figure's size: the
    figure sat 0.1 inch right and down, its right and bottom edges cut off."""
    import pypdfium2

    fig = request.getfixturevalue(name)
    png = rendered(fig, "single")
    content, _ = export_figure(fig, "pdf", width="single")
    page = pypdfium2.PdfDocument(content)[0]
    pdf = np.asarray(
        page.render(scale=png.shape[1] / page.get_width()).to_pil().convert("RGB"), dtype=int
    )
    drawn = ink(pdf)
    edge = 2  # the PNG test's 3 px less one: rasterised vector text is antialiased wider
    assert not drawn[:, :edge].any() and not drawn[:, -edge:].any(), "cut at the left or right"
    assert not drawn[:edge].any() and not drawn[-edge:].any(), "cut at the top or bottom"
    # the same drawing on the same page: ink starts and ends where the PNG's does (1 %)
    np.testing.assert_allclose(_ink_box(drawn), _ink_box(ink(png)), atol=0.01)


@pytest.mark.parametrize("width", ["single", "double"])
@pytest.mark.parametrize("name", ["long_map", "mixed_map"])
def test_map_export_keeps_room_for_the_heatmap(request, name, width):
    pixels = rendered(request.getfixturevalue(name), width)
    cells = colour(pixels)
    # rows below the colour bar (top half): the coloured span is the strip plus the cells
    band = cells[int(cells.shape[0] * 0.55) : int(cells.shape[0] * 0.8) : 10]
    widest = max(np.flatnonzero(row)[-1] - np.flatnonzero(row)[0] for row in band if row.any())
    assert widest >= 0.35 * pixels.shape[1], f"heatmap squeezed to {widest} of {pixels.shape[1]} px"


def test_narrow_column_labels_do_not_collide(long_map):
    published = publication_layout(long_map, "single").to_dict()["layout"]
    columns = published["xaxis2"]
    assert columns.get("tickangle") == -90 or max(map(len, columns["ticktext"])) <= 3
    rows = published["yaxis"]
    assert rows["showticklabels"] is not False
    assert len(rows["ticktext"]) == len(set(rows["ticktext"])) == 39
    assert max(len(text) for text in rows["ticktext"]) <= 26


def _first_ink_band(pixels: np.ndarray) -> int:
    """Height of the topmost run of rows with ink (the title, when nothing touches it)."""
    rows = ink(pixels).any(axis=1)
    start = int(np.argmax(rows))
    blank_after = np.flatnonzero(~rows[start:])
    return int(blank_after[0]) if len(blank_after) else len(rows) - start


@pytest.mark.parametrize("legend_title", ["module (significant/all)", None])
def test_single_column_legend_rows_stay_clear_of_the_title(legend_title):
    import plotly.graph_objects as go

    fig = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[k, k + 1], mode="markers", name=f"M{k} ({k * 7}/{k * 31})")
            for k in range(1, 8)
        ],
        layout={
            "title": {"text": "Nodule Attenuation"},
            "legend": {"title": {"text": legend_title}},
        },
    )
    alone = fig.update_layout(showlegend=False)
    with_legend = go.Figure(fig).update_layout(showlegend=True)
    title_only = _first_ink_band(rendered(alone, "single"))
    assert _first_ink_band(rendered(with_legend, "single")) <= title_only * 1.2


@pytest.mark.parametrize("width", ["single", "double"])
def test_a_legend_above_the_plot_stays_clear_of_the_title(width):
    """The Cohort page's matching bars carry their legend above the plot; at double-column
    width the export kept it there, in a top margin of the title's height, over the title."""
    from radmap.explorer.figures.cohort import overlap_figure

    matching = pd.DataFrame(
        {
            "source": ["expression", "semantic", "radiomic", "clinical"],
            "n_matched": [500, 500, 500, 500],
            "n_unmatched": [0, 5, 0, 10],
        }
    )
    fig = overlap_figure(matching, title="Patients matched per source")
    alone = go.Figure(fig).update_layout(showlegend=False)
    title_only = _first_ink_band(rendered(alone, width))
    assert _first_ink_band(rendered(fig, width)) <= title_only * 1.2


def test_a_long_title_is_broken_into_lines_that_fit_the_column(long_title):
    from radmap.explorer.figures.margins import text_width

    for width, page_px in (("single", 336), ("double", 692)):
        layout = publication_layout(long_title, width).to_dict()["layout"]
        size = layout["title"]["font"]["size"]
        lines = layout["title"]["text"].split("<br>")
        assert max(text_width(line, size) for line in lines) <= layout["width"] - 8
        assert layout["width"] == pytest.approx(page_px, abs=2)
        assert layout["margin"]["t"] >= 30 + (len(lines) - 1) * size
    assert len(publication_layout(long_title, "single").layout.title.text.split("<br>")) >= 2


def test_a_colour_bar_of_its_own_takes_the_plots_height_in_print():
    """A short figure's only colour bar (the comparison's difference map) got half the plot's
    height, title included: one tick label was left on it."""
    import plotly.graph_objects as go

    alone = go.Figure(
        go.Heatmap(z=[[-1.0, 0.5], [1.0, 0.2]], colorbar={"title": {"text": "effect<br>B − A"}})
    )
    for width in ("single", "double"):
        assert publication_layout(alone, width).data[0].colorbar.len == 1.0
    with_legend = go.Figure(
        [
            go.Heatmap(z=[[-1.0, 0.5], [1.0, 0.2]], colorscale="RdBu"),
            *(go.Scatter(x=[0], y=[0], name=name) for name in ("q < 0.05", "stable")),
        ]
    )
    assert publication_layout(with_legend, "double").data[0].colorbar.len == 0.5
    assert publication_layout(with_legend, "single").data[0].colorbar.len == 1.0  # legend on top
    stacked = go.Figure(
        [go.Heatmap(z=[[0.0, 1.0]], colorbar={"len": 0.29, "y": y}) for y in (1.0, 0.6)]
    )
    assert [t.colorbar.len for t in publication_layout(stacked, "single").data] == [0.29, 0.29]


def test_a_title_placed_for_the_screens_toolbar_is_placed_for_the_page(drill_phenotype):
    """On screen the phenotype's two-line title sits under plotly's toolbar (a pad of its
    height); printed, it starts at the top of the page and every line fits the column."""
    from radmap.explorer.figures.margins import text_width

    screen = drill_phenotype.layout.title
    assert "<br>" in screen.text and screen.pad.t >= 30
    for width in ("single", "double"):
        layout = publication_layout(drill_phenotype, width).to_dict()["layout"]
        title = layout["title"]
        lines = title["text"].split("<br>")
        # the pad holds the lines above the last one (see publication_layout), no toolbar
        assert title["pad"]["t"] <= 5 + (len(lines) - 1) * title["font"]["size"] * 1.3, title
        assert max(text_width(line, title["font"]["size"]) for line in lines) <= layout["width"] - 8
        axis_title = layout["xaxis"]["title"]["text"]
        assert axis_title.replace("<br>", " ").startswith("Nodule Associated Findings")
        size = max(
            layout["xaxis"]["title"].get("font", {}).get("size") or 0, layout["font"]["size"]
        )
        widest = max(text_width(line, size) for line in axis_title.split("<br>"))
        assert widest <= layout["width"] - 8, axis_title
    assert "<br>" in publication_layout(drill_phenotype, "single").layout.xaxis.title.text


def test_titles_wrap_as_textwrap_does_and_huge_words_in_line_long_pieces():
    """A 20 MB title took ~8 minutes to wrap (textwrap copies the rest of a long word for
    each line it cuts) before the export's size check refused it."""
    import textwrap

    from radmap.explorer.figures.style import _wrapped_line

    title = "Nodule Associated Findings: attachment to bronchus x wavelet-HLL_glszm_GLNUN (q 0.01)"
    for width in (12, 30, 45):
        assert _wrapped_line(title, width) == textwrap.wrap(title, width)
    word = "x" * 50_000
    pieces = _wrapped_line(f"a {word} b", 40)
    assert "".join(pieces) == f"a{word}b" and max(len(piece) for piece in pieces) == 40
    assert _wrapped_line("", 40) == [""]
