"""Figure factories: traces, orders, marks, hover and payload checked on fig.to_dict()."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.colors import hex_to_rgb, unlabel_rgb
from plotly.io.json import to_json_plotly
from radmap.analysis.validate import InputError
from radmap.explorer.figures import (
    DIVERGING,
    PUBLICATION_SIZES,
    empty_figure,
    enrichment_dotplot,
    feature_types_figure,
    gene_association_bar,
    km_figure,
    map_heatmap,
    missingness_figure,
    module_colors,
    module_expression_heatmap,
    mutation_imaging_figure,
    network_figure,
    overlap_figure,
    phenotype_plot,
    publication_layout,
    summarise_families,
    volcano,
)
from radmap.explorer.figures.margins import min_width
from radmap.explorer.figures.style import (
    OKABE_ITO,
    UNASSIGNED_COLOR,
    UNSIGNED,
    FrozenArray,
    figure_json,
    format_p,
    pt_to_px,
)
from radmap.explorer.figures.survival import at_risk_at, time_ticks
from scipy import stats

from tests.explorer.conftest import decoded

IMAGE_TYPES = ["original", "square", "squareroot", "logarithm", "exponential", "gradient"]
IMAGE_TYPES += [
    f"wavelet-{band}" for band in ("LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH", "LLL")
]
IMAGE_TYPES += [f"log-sigma-{s}-0-mm-3D" for s in (1, 2, 3, 4, 5)]
CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


def radiomic_features(n: int) -> pd.DataFrame:
    """PyRadiomics-like feature table: ``n`` features in (image type x class) groups."""
    ids, groups = [], []
    per_group = -(-n // (len(IMAGE_TYPES) * len(CLASSES)))
    for image_type in IMAGE_TYPES:
        for klass in CLASSES:
            for k in range(per_group):
                ids.append(f"{image_type}_{klass}_FeatureNumber{k:02d}LongName")
                groups.append(f"{image_type}_{klass}")
    ids, groups = ids[:n], groups[:n]
    return pd.DataFrame(
        {"label": ids, "type": "continuous", "source": "radiomic", "group": groups},
        index=pd.Index(ids),
    )


def semantic_features() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": ["Nodule margin", "Attenuation", "Pleural attachment"],
            "type": ["categorical", "ordinal", "binary"],
            "source": "semantic",
            "group": "semantic",
        },
        index=pd.Index(["margin", "attenuation", "pleural"]),
    )


def associations(features: pd.DataFrame, modules: list[str], *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    feature, module = np.meshgrid(features.index, modules, indexing="ij")
    n = feature.size
    effect = rng.uniform(-0.6, 0.6, n)
    p = rng.uniform(0, 1, n) ** 3
    return pd.DataFrame(
        {
            "module": module.ravel(),
            "feature": feature.ravel(),
            "test": "spearman",
            "statistic": effect * 10,
            "effect": effect,
            "p": p,
            "q": np.minimum(p * 4, 1.0),
            "n": rng.integers(80, 120, n),
        }
    )


def main_heatmap(fig) -> dict:
    heatmaps = [t for t in fig.to_dict()["data"] if t["type"] == "heatmap"]
    return heatmaps[1]


@pytest.fixture
def small_map() -> tuple[pd.DataFrame, pd.DataFrame]:
    features = pd.concat([semantic_features(), radiomic_features(5)])
    return associations(features, ["M10", "M2", "M1"], seed=1), features


# ---------------------------------------------------------------------------- style


def test_module_colors_okabe_ito_first_and_unassigned_grey():
    colors = module_colors(["M1", "unassigned", "M2", "M1", "M3"])
    assert list(colors) == ["M1", "unassigned", "M2", "M3"]
    assert [colors[m] for m in ("M1", "M2", "M3")] == list(OKABE_ITO[:3])
    assert colors["unassigned"] == UNASSIGNED_COLOR
    many = module_colors([f"M{i}" for i in range(40)])
    assert len(set(many.values())) > 10 and all(c.startswith("#") for c in many.values())


def _font_sizes(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("font") and isinstance(value, dict) and "size" in value:
                found.append(value["size"])
            _font_sizes(value, found)
    elif isinstance(node, list):
        for item in node:
            _font_sizes(item, found)
    return found


@pytest.mark.parametrize("width", ["single", "double"])
def test_publication_layout_sizes_and_fonts(small_map, width):
    fig = map_heatmap(*small_map, title="map")
    fig.update_layout(font_size=6, xaxis2_tickfont_size=5)
    published = publication_layout(fig, width)
    assert published.layout.width == PUBLICATION_SIZES[width][0]
    assert published.layout.width == round({"single": 89, "double": 183}[width] / 25.4 * 96)
    sizes = _font_sizes(published.to_dict()["layout"], [])
    assert sizes and min(sizes) >= pt_to_px(8) - 0.01
    assert published.layout.title.font.size >= pt_to_px(9) - 0.01
    assert fig.layout.width is None and fig.layout.font.size == 6, "input must not change"
    with pytest.raises(InputError):
        publication_layout(fig, "triple")


def test_empty_figure_has_centred_message():
    fig = empty_figure("Pick a module.")
    annotation = fig.layout.annotations[0]
    assert annotation.text == "Pick a module."
    assert (annotation.x, annotation.y) == (0.5, 0.5)


@pytest.mark.parametrize(
    "figure",
    [
        lambda: map_heatmap(pd.DataFrame(), None),
        lambda: phenotype_plot(
            pd.DataFrame(), feature_type="continuous", value_label="v", feature_label="f"
        ),
        lambda: volcano(pd.DataFrame()),
        lambda: network_figure(pd.DataFrame(), pd.DataFrame()),
        lambda: km_figure(pd.DataFrame()),
        lambda: enrichment_dotplot(pd.DataFrame()),
        lambda: gene_association_bar(pd.DataFrame()),
        lambda: module_expression_heatmap(
            pd.DataFrame(), pd.Series(dtype=float), feature_label="f"
        ),
        lambda: overlap_figure(pd.DataFrame()),
        lambda: missingness_figure(pd.DataFrame()),
        lambda: feature_types_figure(pd.DataFrame()),
        lambda: mutation_imaging_figure(pd.DataFrame()),
    ],
)
def test_empty_input_gives_annotation_not_error(figure):
    fig = figure()
    assert len(fig.data) == 0
    assert len(fig.layout.annotations) == 1 and len(fig.layout.annotations[0].text) > 10


# ---------------------------------------------------------------------------- map heatmap


def test_map_heatmap_orders_values_and_customdata(small_map):
    assoc, features = small_map
    fig = map_heatmap(assoc, features, cluster=False, families=False)
    trace = main_heatmap(fig)
    assert trace["x"] == ["M1", "M2", "M10"], "natural module order"
    assert list(trace["y"]) == list(features["label"]), "rows follow the features table"
    z = decoded(trace["z"])
    customdata = trace["customdata"]
    by_pair = assoc.set_index(["feature", "module"])
    for i, feature in enumerate(features.index):
        for j, module in enumerate(trace["x"]):
            cell = customdata[i][j]
            row = by_pair.loc[(feature, module)]
            assert cell[0] == feature and cell[1] == module
            assert z[i, j] == pytest.approx(row["effect"], abs=1e-6)
            assert cell[2] == pytest.approx(row["statistic"], rel=1e-3)
            assert cell[3] == pytest.approx(row["effect"], rel=1e-2)
            assert cell[4] == format_p(row["p"])  # one p / q text everywhere
            assert cell[5] == format_p(row["q"])
            assert cell[6] == row["n"]
    for token in (
        "%{y}",
        "%{x}",
        "customdata[2]",
        "customdata[4]",
        "customdata[5]",
        "customdata[6]",
    ):
        assert token in trace["hovertemplate"]
    assert trace["zmin"] == -trace["zmax"] and trace["zmax"] == pytest.approx(
        np.abs(z).max(), rel=1e-5
    )
    assert trace["colorscale"][0][1] == DIVERGING[0][1]


@pytest.mark.parametrize(("q_threshold", "min_effect"), [(0.05, 0.0), (0.2, 0.3)])
def test_map_heatmap_marks_exactly_the_significant_cells(small_map, q_threshold, min_effect):
    assoc, features = small_map
    fig = map_heatmap(
        assoc, features, q_threshold=q_threshold, min_effect=min_effect, families=False
    )
    marks = next(t for t in fig.to_dict()["data"] if t.get("name", "").startswith("q <"))
    label_to_id = dict(zip(features["label"], features.index))
    marked = {(label_to_id[y], x) for x, y in zip(marks["x"], marks["y"])}
    expected = assoc[(assoc["q"] < q_threshold) & (assoc["effect"].abs() >= min_effect)]
    assert marked == set(zip(expected["feature"], expected["module"]))
    assert len(expected) > 0


def test_map_heatmap_signed_log10_q(small_map):
    assoc, features = small_map
    trace = main_heatmap(map_heatmap(assoc, features, value="signed_log10_q", cluster=False))
    expected = (
        (np.sign(assoc["effect"]) * -np.log10(assoc["q"]))
        .set_axis(pd.MultiIndex.from_frame(assoc[["feature", "module"]]))
        .unstack()
        .loc[features.index, trace["x"]]
        .to_numpy()
    )
    np.testing.assert_allclose(decoded(trace["z"]), expected, rtol=1e-5)
    assert "customdata[3]" in trace["hovertemplate"], "effect still shown on hover"


def test_map_heatmap_clustering_groups_similar_rows_and_is_deterministic():
    features = radiomic_features(12)
    modules = ["M1", "M2", "M3", "M4"]
    rng = np.random.default_rng(3)
    profile = np.array([0.5, -0.5, 0.4, -0.4])
    block = np.where(np.arange(12)[:, None] % 2 == 0, profile, -profile)
    effect = block + rng.normal(0, 0.05, block.shape)
    assoc = pd.DataFrame(
        {
            "module": np.tile(modules, 12),
            "feature": np.repeat(features.index, 4),
            "effect": effect.ravel(),
            "q": 0.5,
        }
    )
    rows = list(main_heatmap(map_heatmap(assoc, features))["y"])
    position = {label: k for k, label in enumerate(rows)}
    even = sorted(position[features.index[i]] for i in range(0, 12, 2))
    assert even == list(range(even[0], even[0] + 6)), "the two planted blocks stay contiguous"
    shuffled = assoc.sample(frac=1.0, random_state=7)
    again = main_heatmap(map_heatmap(shuffled, features))
    assert list(again["y"]) == rows
    assert again["x"] == main_heatmap(map_heatmap(assoc, features))["x"]


def test_map_heatmap_group_strip_and_unknown_features(small_map):
    assoc, features = small_map
    extra = assoc[assoc["feature"] == "margin"].assign(feature="not_in_table")
    fig = map_heatmap(pd.concat([assoc, extra]), features, cluster=False, families=False)
    strip = fig.to_dict()["data"][0]
    groups = [row[0] for row in strip["customdata"]]
    assert groups == [*features["group"], "other"]
    assert main_heatmap(fig)["y"][-1] == "not_in_table"


def test_map_heatmap_rejects_duplicate_pairs_and_bad_value(small_map):
    assoc, features = small_map
    with pytest.raises(InputError, match="several rows"):
        map_heatmap(pd.concat([assoc, assoc.iloc[:1]]), features)
    with pytest.raises(InputError, match="value"):
        map_heatmap(assoc, features, value="rho")


def test_summarise_families_keeps_strongest_feature_per_group():
    features = radiomic_features(6)
    features["group"] = ["g1", "g1", "g1", "g2", "g2", "g2"]
    assoc = pd.DataFrame(
        {
            "module": "M1",
            "feature": features.index,
            "test": "spearman",
            "statistic": [1, 2, 3, 4, 5, 6],
            "effect": [0.1, -0.5, 0.3, 0.2, 0.2, -0.2],
            "p": [0.01, 0.001, 0.02, 0.03, 0.03, 0.03],
            "q": [0.04, 0.01, 0.06, 0.2, 0.2, 0.2],
            "n": 100,
        }
    )
    table = summarise_families(assoc, features, q_threshold=0.05).set_index("family")
    assert table.loc["g1", "feature"] == features.index[1]
    assert table.loc["g1", "effect"] == -0.5
    assert table.loc["g1", "n_features"] == 3 and table.loc["g1", "n_significant"] == 2
    assert table.loc["g2", "feature"] == min(features.index[3:]), "ties: |effect| then ID"
    assert table.loc["g2", "n_significant"] == 0
    kept = summarise_families(
        pd.concat([assoc, assoc.iloc[:1].assign(feature="margin")]),
        pd.concat([features, semantic_features()]),
        sources=["radiomic"],
    )
    assert "margin" in set(kept["family"]), "non-radiomic features stay as their own row"


def test_summarise_families_ranks_missing_q_and_effect_last():
    features = radiomic_features(4)
    features["group"] = ["g1", "g1", "g2", "g2"]
    assoc = pd.DataFrame(
        {
            "module": "M1",
            "feature": features.index,
            "effect": [0.9, 0.1, np.nan, 0.1],
            "q": [np.nan, 0.5, 0.3, 0.3],
        }
    )
    table = summarise_families(assoc, features).set_index("family")
    assert table.loc["g1", "feature"] == features.index[1], "a missing q comes last"
    assert table.loc["g2", "feature"] == features.index[3], "then a missing effect"
    assert table["n_features"].tolist() == [2, 2] and table["n_significant"].tolist() == [0, 0]


def test_map_heatmap_1500_features_stays_under_2mb_and_summarises():
    features = pd.concat([semantic_features(), radiomic_features(1500)])
    modules = [f"M{i}" for i in range(1, 21)]
    assoc = associations(features, modules, seed=5)
    fig = map_heatmap(assoc, features)
    payload = len(fig.to_json())
    assert payload < 2_000_000, f"map payload {payload / 1e6:.2f} MB"
    trace = main_heatmap(fig)
    n_groups = features.loc[features["source"] == "radiomic", "group"].nunique()
    assert len(trace["y"]) == n_groups + 3
    assert decoded(trace["z"]).shape == (n_groups + 3, 20)
    family_row = next(i for i, label in enumerate(trace["y"]) if label.endswith("]"))
    cell = trace["customdata"][family_row][0]
    assert cell[0] in features.index and cell[1] in modules
    assert "significant %{customdata[8]} of %{customdata[7]}" in trace["hovertemplate"]


# ---------------------------------------------------------------------------- volcano


def gene_table(n: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n) ** 4
    order = np.argsort(p)
    q = np.empty(n)
    q[order] = np.minimum.accumulate((p[order] * n / np.arange(1, n + 1))[::-1])[::-1]
    return pd.DataFrame(
        {
            "gene": [f"GENE{i}" for i in range(n)],
            "effect": rng.normal(0, 0.2, n),
            "p": p,
            "q": np.minimum(q, 1),
            "module": rng.choice(["M1", "M2", "M3", "unassigned"], n),
        }
    )


def test_volcano_20000_genes_scattergl_customdata_and_payload():
    genes = gene_table(20_000)
    fig = volcano(genes, q_threshold=0.05, highlight=["GENE1", "GENE2"])
    payload = len(fig.to_json())
    assert payload < 2_000_000, f"volcano payload {payload / 1e6:.2f} MB"
    spec = fig.to_dict()
    points = [t for t in spec["data"] if t["name"] != "highlighted"]
    assert all(t["type"] == "scattergl" for t in points)
    assert sum(len(t["customdata"]) for t in points) == 20_000
    assert spec["layout"]["dragmode"] == "lasso"
    first = points[0]
    gene = first["customdata"][5]
    row = genes.set_index("gene").loc[gene]
    assert decoded(first["x"])[5] == pytest.approx(row["effect"], rel=1e-5)
    assert decoded(first["y"])[5] == pytest.approx(-np.log10(row["p"]), rel=1e-5)
    assert "%{customdata}" in first["hovertemplate"] and "%{text}" in first["hovertemplate"]
    line = spec["layout"]["shapes"][0]
    cut = genes.loc[genes["q"] < 0.05, "p"].max()
    assert line["y0"] == pytest.approx(-np.log10(cut))
    assert {a["text"] for a in spec["layout"]["annotations"]} >= {"GENE1", "GENE2"}


def test_volcano_colours_follow_bundle_modules():
    genes = gene_table(200)
    colors = module_colors(["M3", "M1", "M2", "unassigned"])
    fig = volcano(genes, modules=["M3", "M1", "M2", "unassigned"])
    for trace in fig.data:
        module = trace.name.split(" ")[0]
        assert trace.marker.color == colors[module]
    without_unassigned = volcano(genes, modules=["M1", "M2", "M3"])
    grey = next(t for t in without_unassigned.data if t.name.startswith("unassigned"))
    assert grey.marker.color == UNASSIGNED_COLOR


# ---------------------------------------------------------------------------- phenotype


def test_phenotype_categories_in_level_order_with_colour_groups():
    rng = np.random.default_rng(2)
    levels = ["smooth", "lobulated", "spiculated"]
    df = pd.DataFrame(
        {
            "patient": [f"R01-{i:03d}" for i in range(60)],
            "value": rng.normal(size=60),
            "feature": pd.Categorical(rng.choice(levels, 60), categories=levels, ordered=True),
            "EGFR": rng.choice(["Mutant", "Wildtype"], 60),
        }
    )
    fig = phenotype_plot(
        df, feature_type="ordinal", value_label="M1", feature_label="margin", color="EGFR"
    )
    spec = fig.to_dict()
    assert spec["layout"]["xaxis"]["categoryarray"] == levels
    assert [t["name"] for t in spec["data"]] == ["Mutant", "Wildtype"]
    assert sum(len(t["y"]) for t in spec["data"]) == 60
    mutant = spec["data"][0]
    assert set(mutant["customdata"]) == set(df.loc[df["EGFR"] == "Mutant", "patient"])


def test_phenotype_continuous_fit_and_spearman():
    rng = np.random.default_rng(4)
    x = rng.normal(size=50)
    y = 0.6 * x + rng.normal(0, 0.5, 50)
    df = pd.DataFrame({"patient": [f"P{i}" for i in range(50)], "value": y, "feature": x})
    fig = phenotype_plot(df, feature_type="continuous", value_label="M1", feature_label="size")
    rho = stats.spearmanr(x, y).statistic
    assert f"ρ = {rho:.2f}" in fig.layout.title.text
    fit = stats.linregress(x, y)
    line = next(t for t in fig.data if t.name == "OLS fit")
    assert line.y[0] == pytest.approx(fit.intercept + fit.slope * x.min())
    assert line.y[1] == pytest.approx(fit.intercept + fit.slope * x.max())
    with pytest.raises(InputError):
        phenotype_plot(df, feature_type="text", value_label="M1", feature_label="size")


# ---------------------------------------------------------------------------- network


def network_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    nodes = pd.DataFrame(
        {
            "id": ["margin", "sphericity", "M1", "M2", "HYPOXIA"],
            "label": ["Margin", "Sphericity", "M1", "M2", "Hypoxia"],
            "kind": ["feature", "feature", "module", "module", "pathway"],
            "size": [1, 1, 40, 20, 15],
        }
    )
    edges = pd.DataFrame(
        {
            "source": ["margin", "sphericity", "margin", "M1", "ghost"],
            "target": ["M1", "M2", "M2", "HYPOXIA", "M1"],
            "weight": [0.5, -0.4, 0.1, 4.0, 0.9],
        }
    )
    return nodes, edges


def test_network_layered_layout_customdata_and_edges():
    nodes, edges = network_tables()
    spec = network_figure(nodes, edges).to_dict()
    node_traces = {
        t["name"]: t for t in spec["data"] if t["name"] in ("features", "modules", "pathways")
    }
    assert {t: set(decoded(tr["x"])) for t, tr in node_traces.items()} == {
        "features": {0.0},
        "modules": {1.0},
        "pathways": {2.0},
    }
    assert node_traces["modules"]["customdata"] == [["M1", "module"], ["M2", "module"]]
    modules_y = dict(zip(["M1", "M2"], decoded(node_traces["modules"]["y"])))
    features_y = dict(zip(["margin", "sphericity"], decoded(node_traces["features"]["y"])))
    assert modules_y["M1"] > modules_y["M2"] and features_y["margin"] > features_y["sphericity"]
    edge_hover = next(t for t in spec["data"] if t["name"] == "edges")
    assert len(edge_hover["customdata"]) == 4, "edge to an unknown node is dropped"
    colors = {t["name"]: t["line"]["color"] for t in spec["data"] if t.get("mode") == "lines"}
    assert "positive association" in colors and "negative association" in colors
    assert network_figure(nodes, edges).to_json() == network_figure(nodes, edges).to_json()


def test_network_modules_take_their_colours_from_the_other_views():
    nodes, edges = network_tables()
    prefixed = {"M1": "module:M1", "M2": "module:M2"}  # the IDs the explorer's data gives
    nodes["id"] = nodes["id"].replace(prefixed)
    edges[["source", "target"]] = edges[["source", "target"]].replace(prefixed)
    spec = network_figure(nodes, edges, modules=["M1", "M2", "M3"]).to_dict()
    drawn = next(t for t in spec["data"] if t["name"] == "modules")["marker"]["color"]
    colors = module_colors(["M1", "M2", "M3", "unassigned"])
    assert list(drawn) == [colors["M1"], colors["M2"]]


def test_network_markers_of_a_long_column_do_not_overlap():
    features = [f"feature{k:02d}" for k in range(40)]
    nodes = pd.DataFrame(
        {
            "id": features + ["M1"],
            "label": features + ["M1"],
            "kind": ["feature"] * 40 + ["module"],
            "size": list(range(1, 41)) + [100],
        }
    )
    edges = pd.DataFrame({"source": features, "target": "M1", "weight": 0.5})
    fig = network_figure(nodes, edges)
    column = next(t for t in fig.data if t.name == "features")
    row_px = (fig.layout.height - 120) / 40  # the plot's height shared by 40 rows
    assert max(column.marker.size) < row_px


def test_network_force_layout_is_deterministic_per_seed():
    nodes, edges = network_tables()
    first = network_figure(nodes, edges, layout="force", seed=1).to_json()
    again = network_figure(nodes, edges, layout="force", seed=1).to_json()
    assert first == again
    with pytest.raises(InputError):
        network_figure(nodes.assign(kind="gene"), edges)


# ---------------------------------------------------------------------------- survival


def curves() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": ["high"] * 3 + ["low"] * 3,
            "time": [100.0, 400.0, 900.0, 200.0, 500.0, 1100.0],
            "survival": [0.9, 0.7, 0.5, 0.95, 0.85, 0.7],
            "ci_low": [0.8, 0.6, 0.4, 0.9, 0.75, 0.6],
            "ci_high": [1.0, 0.8, 0.6, 1.0, 0.95, 0.8],
            "at_risk": [40, 30, 20, 42, 35, 25],
        }
    )


def test_at_risk_counts_step_function():
    curve = curves().query("group == 'high'")
    counts = at_risk_at(curve, np.array([0.0, 100.0, 101.0, 400.0, 899.0, 901.0]))
    assert counts.tolist() == [40, 40, 30, 30, 20, 0]


def test_km_figure_steps_bands_and_p():
    fig = km_figure(curves(), p=0.0123)
    survival = [t for t in fig.data if t.name in ("high", "low")]
    assert [t.line.shape for t in survival] == ["hv", "hv"]
    assert survival[0].x[0] == 0 and survival[0].y[0] == 1.0, "curves start at (0, 1)"
    bands = [t for t in fig.data if t.fill == "tonexty"]
    assert len(bands) == 2
    assert any("p = 0.012" in a.text for a in fig.layout.annotations)
    at_risk = next(t for t in fig.data if t.name == "high at risk")
    expected = at_risk_at(curves().query("group == 'high'"), np.asarray(at_risk.x))
    assert [int(t) for t in at_risk.text] == expected.tolist()


def test_km_time_axis_and_at_risk_table_use_round_times_printed_in_full():
    """Times spread evenly to the last follow-up printed as 2325, 4649, ... and 11.623k."""
    long = curves().assign(time=lambda frame: frame["time"] * 10.567)  # to 11,624 days
    fig = km_figure(long)
    assert list(fig.layout.xaxis2.tickvals) == [0, 2500, 5000, 7500, 10000]
    assert list(fig.layout.xaxis.tickvals) == list(fig.layout.xaxis2.tickvals)
    assert fig.layout.xaxis2.tickformat == ",~g"  # "10,000", not plotly's "10k"
    at_risk = next(t for t in fig.data if t.name == "high at risk")
    assert list(at_risk.x) == [0, 2500, 5000, 7500, 10000]


@pytest.mark.parametrize(
    ("end", "ticks"),
    [
        (1100, [0, 250, 500, 750, 1000]),
        (1.7, [0, 0.5, 1, 1.5]),  # years
        (5000, [0, 1000, 2000, 3000, 4000, 5000]),
        (0, [0]),
        (float("nan"), [0]),
    ],
)
def test_time_ticks_are_round_steps_from_zero(end, ticks):
    assert time_ticks(end).tolist() == ticks


# ---------------------------------------------------------------------------- enrichment


def test_enrichment_dotplot_top_terms_by_q():
    df = pd.DataFrame(
        {
            "term": [f"HALLMARK_TERM_{i}" for i in range(20)],
            "collection": "hallmark",
            "overlap": np.arange(1, 21),
            "set_size": 100,
            "p": np.linspace(1e-5, 0.5, 20)[::-1],
            "q": np.linspace(1e-4, 0.9, 20)[::-1],
            "odds_ratio": 2.0,
        }
    )
    trace = enrichment_dotplot(df, top=5).to_dict()["data"][0]
    names = [row[0] for row in trace["customdata"]]
    assert names == [f"HALLMARK_TERM_{i}" for i in (15, 16, 17, 18, 19)], "best term on top"
    np.testing.assert_allclose(decoded(trace["x"]), np.arange(16, 21) / 100)


@pytest.mark.parametrize(("q", "top"), [(1.0, 1.301), (1e-4, 4.0)])
def test_enrichment_colour_scale_runs_from_0_to_the_threshold_at_least(q, top):
    """Nothing enriched (every q = 1, -log10 q = 0): plotly centred its scale on 0 and the
    colour bar read -0.4 ... 0.4 for -log10 q."""
    df = pd.DataFrame(
        {
            "term": [f"GO_TERM_{i}" for i in range(4)],
            "collection": "go_bp",
            "overlap": [2, 3, 4, 5],
            "set_size": 20,
            "p": q,
            "q": q,
            "odds_ratio": 1.0,
        }
    )
    marker = enrichment_dotplot(df, q_threshold=0.05).to_dict()["data"][0]["marker"]
    assert marker["cmin"] == 0 and marker["cmax"] == pytest.approx(top, abs=1e-3)


def test_gene_association_bar_sorted_and_faded():
    df = pd.DataFrame(
        {
            "feature": ["a", "b", "c", "d"],
            "label": ["A", "B", "C", "D"],
            "effect": [0.4, -0.3, 0.1, 0.05],
            "q": [0.01, 0.02, 0.5, 0.9],
            "test": "spearman",
        }
    )
    trace = gene_association_bar(df, top=3).to_dict()["data"][0]
    assert trace["y"] == ["B", "C", "A"]
    assert decoded(trace["marker"]["opacity"]).tolist() == [1.0, 0.4, 1.0]
    assert [row[0] for row in trace["customdata"]] == ["b", "c", "a"]
    # Colours as plotly.js draws them without warning: strings, the largest |effect| at the
    # scale's end, negative effects blue, positive red.
    colors = [unlabel_rgb(color) for color in trace["marker"]["color"]]
    assert colors[2] == hex_to_rgb(DIVERGING[-1][1])
    assert colors[0][2] > colors[0][0] and colors[1][0] > colors[1][2]
    assert "colorscale" not in trace["marker"]


# ---------------------------------------------------------------------------- module heatmap


def test_module_expression_heatmap_sorts_patients():
    rng = np.random.default_rng(8)
    patients = [f"P{i}" for i in range(12)]
    matrix = pd.DataFrame(
        rng.normal(size=(5, 12)), index=[f"G{i}" for i in range(5)], columns=patients
    )
    values = pd.Series(rng.normal(size=12), index=patients)
    values.iloc[3] = np.nan
    spec = module_expression_heatmap(matrix, values, feature_label="size").to_dict()
    strip, expression = spec["data"]
    expected = [*values.drop("P3").sort_values().index, "P3"]
    assert list(strip["x"]) == expected and list(expression["x"]) == expected
    z = decoded(expression["z"])
    gene = expression["y"][0]
    np.testing.assert_allclose(z[0], matrix.loc[gene, expected].to_numpy(), rtol=1e-6)
    categorical = pd.Series(pd.Categorical(["b", "a"] * 6, categories=["b", "a"]), index=patients)
    spec = module_expression_heatmap(matrix, categorical, feature_label="margin").to_dict()
    assert spec["data"][0]["customdata"][0][:6] == ["b"] * 6


# ---------------------------------------------------------------------------- cohort


def test_cohort_figures():
    matching = pd.DataFrame(
        {
            "source": ["expression", "imaging"],
            "n_ids": [130, 190],
            "n_matched": [120, 120],
            "n_unmatched": [10, 70],
            "unmatched": ["R01-001|R01-002", ""],
        }
    )
    bars = overlap_figure(matching).to_dict()["data"]
    assert bars[0]["x"] == [120, 120] and bars[1]["x"] == [70, 10]
    assert list(bars[1]["customdata"][1]) == ["expression", "R01-001, R01-002"]
    long_name = "imaging (radiomics_pyradiomics_n116.csv+aim_xml)"
    labelled = overlap_figure(matching.assign(source=["expression", long_name]))
    label = labelled.to_dict()["data"][0]["y"][0]
    assert label.startswith("imaging<br>") and "…" in label, "file name under the source"
    assert labelled.to_dict()["data"][0]["customdata"][0] == long_name, "whole name on hover"

    data = pd.DataFrame(
        {"a": [1.0, np.nan, np.nan, 4.0], "b": [1.0, 2.0, 3.0, 4.0], "c": [np.nan, 1, 2, 3]}
    )
    fig = missingness_figure(data)
    assert list(fig.data[0].y) == ["c", "a"] and list(fig.data[0].x) == [0.25, 0.5]
    assert "1 of 3 features complete" in fig.layout.title.text

    features = pd.concat([semantic_features(), radiomic_features(30)])
    types = feature_types_figure(features).to_dict()["data"]
    counts = {t["name"]: dict(zip(t["x"], t["y"])) for t in types}
    assert counts["continuous"]["radiomic"] == 30 and counts["categorical"]["semantic"] == 1


def test_mutation_imaging_accepts_left_right_columns():
    table = pd.DataFrame(
        {
            "left": ["EGFR", "KRAS", "EGFR", "KRAS"],
            "right": ["margin", "margin", "attenuation", "attenuation"],
            "effect": [0.3, -0.1, 0.2, 0.4],
            "q": [0.01, 0.5, 0.2, 0.04],
        }
    )
    fig = mutation_imaging_figure(table, semantic_features())
    trace = main_heatmap(fig)
    assert sorted(trace["x"]) == ["EGFR", "KRAS"]
    assert fig.layout.xaxis2.title.text == "mutation"
    cells = {tuple(c[:2]) for row in trace["customdata"] for c in row}
    assert ("margin", "EGFR") in cells
    marks = next(t for t in fig.data if t.name.startswith("q <"))
    assert sorted(zip(marks.x, marks.y)) == [("EGFR", "Nodule margin"), ("KRAS", "Attenuation")]


def test_mutation_imaging_with_three_measures_fits_a_half_width_card():
    """Three stacked colour bars (one per effect measure) are measured from their titles and
    labels: the Cohort page's card at 1600 px (735 px) holds the figure without scrolling
    (260 px per colour-bar column made it need 746 px on the demo)."""
    features = pd.concat([semantic_features(), radiomic_features(12)])
    measures = {"categorical": "cramers_v", "ordinal": "rank_biserial"}
    rows = [
        {
            "mutation": mutation,
            "feature": name,
            "effect": 0.2 if measures.get(kind) == "cramers_v" else -0.3,
            "effect_measure": measures.get(kind, "hedges_g"),
            "p": 0.01,
            "q": 0.04,
        }
        for name, kind in features["type"].items()
        for mutation in ("EGFR", "KRAS", "ALK")
    ]
    fig = mutation_imaging_figure(pd.DataFrame(rows), features)
    scales = [t for t in fig.data if t.type == "heatmap" and t.showscale is not False]
    assert len(scales) == 3
    assert fig.layout.margin.l > 240  # long radiomic labels
    assert min_width(fig) <= 735


def test_figures_are_json_serialisable(small_map):
    fig = map_heatmap(*small_map)
    assert json.loads(fig.to_json())["layout"]["template"]["layout"]["font"]["family"].startswith(
        "Arial"
    )


def test_frozen_arrays_are_shared_by_copies_and_serialise_as_lists():
    genes = FrozenArray(["EGFR", "KRAS"])
    assert copy.deepcopy(genes) is genes and genes == ("EGFR", "KRAS")
    fig = volcano(gene_table(50), highlight=["GENE3"])
    assert json.loads(go.Figure(fig.to_plotly_json()).to_json()) == json.loads(fig.to_json())
    first = json.loads(fig.to_json())["data"][0]
    assert isinstance(first["customdata"], list) and isinstance(first["text"], list)
    assert len(first["customdata"]) == len(first["text"]) == len(decoded(first["x"]))


def test_figure_json_is_what_plotly_sends_of_the_figure(small_map):
    nodes, edges = network_tables()
    figures = [
        volcano(gene_table(400), highlight=["GENE3"], min_effect=0.1),
        map_heatmap(*small_map),  # cells of nested frozen arrays, a strip, typed z
        network_figure(nodes, edges),
        phenotype_plot(
            pd.DataFrame(
                {"patient": list("abcdef"), "value": np.arange(6.0), "feature": 6 - np.arange(6.0)}
            ),
            feature_type="continuous",
            value_label="M1",
            feature_label="size",
        ),
    ]
    for fig in figures:
        sent = figure_json(fig)
        assert to_json_plotly(sent) == to_json_plotly(fig.to_plotly_json())
        assert "bdata" in to_json_plotly(sent)  # numpy arrays packed as plotly packs them
    assert figure_json(figures[0])["data"][0]["customdata"] is figures[0]._data[0]["customdata"]


def test_map_heatmap_marks_flagged_cells_distinctly(small_map):
    assoc, features = small_map
    plain = map_heatmap(assoc, features, cluster=False)
    assert not any("trust flag" in str(t.name) for t in plain.data)
    flagged = assoc.copy()
    flagged["flags"] = ""
    chosen = flagged.index[:2]
    flagged.loc[chosen, "flags"] = ["size surrogate", "size surrogate|driven by one patient"]
    figure = map_heatmap(flagged, features, cluster=False)
    marks = [t for t in figure.data if "trust flag" in str(t.name)]
    assert len(marks) == 1
    assert sorted(marks[0].x) == sorted(flagged.loc[chosen, "module"])
    assert "size surrogate, driven by one patient" in marks[0].text


def test_network_draws_unsigned_effects_without_a_sign():
    nodes, edges = network_tables()
    edges["measure"] = ["epsilon_squared", "rho", "rho", "-log10 q", "rho"]
    spec = network_figure(nodes, edges).to_dict()
    names = {t["name"] for t in spec["data"] if t.get("mode") == "lines"}
    assert "ε²: association without direction (unordered categories)" in names
    assert "Spearman ρ: negative association" in names  # the rho of -0.4
    hover = next(t for t in spec["data"] if t["name"] == "edges")
    assert ["Margin", "M1", "0.5", "ε²"] in hover["customdata"]


def test_network_scales_edge_widths_within_each_measure():
    nodes, edges = network_tables()
    edges = edges.iloc[:3].assign(measure=["hedges_g", "rho", "rho"], weight=[2.0, -0.4, 0.1])
    spec = network_figure(nodes, edges).to_dict()
    lines = [t for t in spec["data"] if t.get("mode") == "lines"]
    widths = {t["name"]: t["line"]["width"] for t in lines}
    # g = 2.0 and ρ = -0.4 are each their measure's strongest edge: equally wide.
    assert widths["Hedges' g: positive association"] == widths["Spearman ρ: negative association"]
    assert widths["Spearman ρ: positive association"] < widths["Spearman ρ: negative association"]
    dashes = {t["name"].split(":")[0]: t["line"]["dash"] for t in lines}
    assert dashes["Hedges' g"] != dashes["Spearman ρ"]


def test_volcano_draws_one_trace_per_module_and_significance_with_scalar_markers():
    genes = gene_table(2_000)
    fig = volcano(genes, q_threshold=0.05)
    points = [trace for trace in fig.to_dict()["data"] if trace["name"] != "highlighted"]
    modules = genes["module"].nunique()
    assert modules < len(points) <= 2 * modules
    for trace in points:
        assert np.isscalar(trace["marker"]["size"]) and np.isscalar(trace["marker"]["opacity"])
    significant = genes.set_index("gene")["q"] < 0.05
    for trace in points:
        flags = significant.loc[list(trace["customdata"])]
        assert flags.all() or not flags.any()
        assert trace["marker"]["size"] == (7 if flags.all() else 4)
    assert sum(len(t["customdata"]) for t in points) == len(genes)
    shown = [t["legendgroup"] for t in points if t.get("showlegend", True)]
    assert sorted(shown) == sorted(genes["module"].unique())


def mixed_measure_map() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Continuous (Spearman ρ), binary (Hedges' g) and categorical (ε²) features."""
    features = pd.concat([radiomic_features(4), semantic_features()])
    assoc = associations(features, ["M1", "M2", "M3"], seed=4)
    measure = {"margin": "epsilon_squared", "pleural": "hedges_g", "attenuation": "rho"}
    assoc["effect_measure"] = assoc["feature"].map(measure).fillna("rho")
    unsigned = assoc["effect_measure"] == "epsilon_squared"
    assoc.loc[unsigned, "effect"] = assoc.loc[unsigned, "effect"].abs() / 4
    hedges = assoc["effect_measure"] == "hedges_g"
    assoc.loc[hedges, "effect"] *= 3  # g runs on another range than ρ
    return assoc, features


def test_map_heatmap_gives_each_effect_measure_its_own_colour_scale():
    assoc, features = mixed_measure_map()
    spec = map_heatmap(assoc, features, cluster=False).to_dict()
    cells = [t for t in spec["data"] if t["type"] == "heatmap"][1:]
    titles = [t["colorbar"]["title"]["text"] for t in cells]
    assert titles == ["Spearman ρ", "Hedges' g", "ε² (no direction)"]
    z = np.stack([decoded(t["z"]) for t in cells])
    assert (np.isfinite(z).sum(axis=0) == 1).all(), "each cell is drawn by exactly one scale"
    label_to_id = dict(zip(features["label"], features.index))
    by_pair = assoc.set_index(["feature", "module"])
    for trace, grid in zip(cells, z):
        measures = set()
        for i, label in enumerate(cells[0]["y"]):
            for j, module in enumerate(trace["x"]):
                if np.isfinite(grid[i, j]):
                    row = by_pair.loc[(label_to_id[label], module)]
                    assert grid[i, j] == pytest.approx(row["effect"], abs=1e-6)
                    measures.add(row["effect_measure"])
                    assert trace["customdata"][i][j][0] == label_to_id[label]
                else:
                    assert trace["customdata"][i][j] is None
        assert len(measures) == 1
        top = np.nanmax(np.abs(grid))
        if trace["meta"]["signed"]:
            assert trace["zmin"] == -trace["zmax"] == pytest.approx(-top, rel=1e-5)
            assert trace["colorscale"][0][1] == DIVERGING[0][1]
        else:
            assert trace["zmin"] == 0 and trace["zmax"] == pytest.approx(top, rel=1e-5)
            assert np.nanmin(grid) >= 0 and trace["colorscale"] == UNSIGNED
    bars = sorted((t["colorbar"]["y"], t["colorbar"]["len"]) for t in cells)
    for (low_y, _), (high_y, high_len) in zip(bars, bars[1:]):
        assert high_y - high_len >= low_y, "colour bars do not overlap"
    hover = cells[2]["customdata"][[*cells[0]["y"]].index("Nodule margin")][0]
    assert hover[-1] == "ε² (no direction)", "hover names the measure"
    signed_q = map_heatmap(assoc, features, value="signed_log10_q").to_dict()["data"]
    assert [t["colorbar"]["title"]["text"] for t in signed_q if "colorbar" in t] == [
        "signed −log10 q",
        "−log10 q (no direction)",
    ]


def test_map_heatmap_outlines_stable_links_only_when_the_bundle_has_stability(small_map):
    assoc, features = small_map
    plain = map_heatmap(assoc, features, cluster=False).to_dict()["data"]
    assert not any("stable" in str(t.get("name")) for t in plain)
    assert "stability" not in main_heatmap(map_heatmap(assoc, features))["hovertemplate"]
    rng = np.random.default_rng(1)
    with_stability = assoc.assign(stability=rng.uniform(0, 1, len(assoc)).round(2))
    spec = map_heatmap(with_stability, features, cluster=False, bootstraps=200).to_dict()
    marks = [t for t in spec["data"] if str(t.get("name", "")).startswith("stable")]
    assert len(marks) == 1 and "200 bootstraps" in marks[0]["name"]
    label_to_id = dict(zip(features["label"], features.index))
    outlined = {(label_to_id[y], x) for x, y in zip(marks[0]["x"], marks[0]["y"])}
    expected = with_stability[with_stability["stability"] >= 0.8]
    assert outlined == set(zip(expected["feature"], expected["module"])) and outlined
    cells = main_heatmap(map_heatmap(with_stability, features, cluster=False))
    assert "stability %{customdata[8]}" in cells["hovertemplate"]
    first = with_stability.set_index(["feature", "module"]).loc[
        (features.index[0], cells["x"][0]), "stability"
    ]
    assert cells["customdata"][0][0][8] == f"{first:.0%}"


def test_a_small_volcano_is_drawn_in_svg_a_large_one_in_webgl():
    small = volcano(gene_table(1_000), q_threshold=0.05, highlight=["GENE1"])
    large = volcano(gene_table(6_000), q_threshold=0.05, highlight=["GENE1"])
    assert {t.type for t in small.data} == {"scatter"}
    assert {t.type for t in large.data} == {"scattergl"}


def test_feature_info_fills_defaults_and_orders_unknown_features_last():
    from radmap.explorer.figures.heatmap import feature_info

    features = pd.DataFrame(
        {
            "label": ["Sphericity", None, "", "Second row of f1"],
            "group": ["shape", "", "glcm", "texture"],
            "source": ["radiomic", "radiomic", "semantic", "radiomic"],
        },
        index=["f1", "f2", "f3", "f1"],
    )
    info = feature_info(["x10", "f3", "f1", "x2", "f2", "f1"], features)
    assert list(info.index) == ["x10", "f3", "f1", "x2", "f2"]
    # a missing or empty label is the ID, an empty group "other"; a duplicated ID takes its
    # first row; a column the table lacks is empty
    assert info.loc["f1", "label"] == "Sphericity" and info.loc["f1", "group"] == "shape"
    assert list(info.loc[["f2", "f3"], "label"]) == ["f2", "f3"]
    assert info.loc["f2", "group"] == "other" and info.loc["f3", "group"] == "glcm"
    assert list(info.loc[["x10", "x2"], "label"]) == ["x10", "x2"]
    assert set(info.loc[["x10", "x2"], "group"]) == {"other"}
    assert set(info["type"]) == {""}
    # order: the position in the table, unknown features after it in natural order
    assert info["order"].to_dict() == {"f1": 0, "f2": 1, "f3": 2, "x2": 4, "x10": 5}


def test_replication_figures_have_the_explorer_look_and_keep_their_counts_on_the_plot():
    from radmap.explorer.figures.margins import MIN_PLOT_PX, text_width
    from radmap.explorer.figures.replication import preservation_figure, scorecard_figure
    from radmap.explorer.figures.style import SCREEN_FONT_PX

    card = {"discovery_links": 52, "tested": 52, "replicated": 4, "opposite_sign": 2}
    card["not_replicated"] = 46
    scorecard = scorecard_figure(card)
    preserved = pd.DataFrame({"Z_summary": [15.8, 11.4, 1.2]}, index=["M1", "M2", "M3"])
    for fig in (scorecard, preservation_figure(preserved)):
        assert fig.layout.template.layout.plot_bgcolor == "white"
    # each count beside its bar ends inside the x range, at the narrowest plot
    (bars,) = scorecard.data
    low, high = scorecard.layout.xaxis.range
    per_px = (high - low) / MIN_PLOT_PX
    for count, text in zip(bars.x, bars.text, strict=True):
        assert count + text_width(text, SCREEN_FONT_PX) * per_px < high, text
