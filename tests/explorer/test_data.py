"""BundleData queries against the toy bundle, each checked against an independent computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import multivariate_logrank_test
from radmap.analysis import bundle as B
from radmap.analysis.validate import InputError
from radmap.explorer.data import BundleData
from scipy import stats

from tests.explorer.conftest import as_figure, toy_gene_sets, write_toy_bundle


def _uns(adata, key):
    return adata.uns[B.UNS_KEY][key]


def test_summary_and_vocabulary(toy_data, toy_adata):
    summary = toy_data.summary()
    assert summary["dataset"] == "toy-radmap"
    assert summary["n_patients"] == toy_adata.n_obs
    assert summary["n_genes"] == toy_adata.n_vars
    assert summary["n_features"] == len(_uns(toy_adata, "features"))
    assert summary["n_modules"] == 4
    assert summary["format_version"] == B.FORMAT_VERSION
    import hashlib

    assert summary["bundle_id"] == hashlib.sha256(toy_data.path.read_bytes()).hexdigest()
    vocabulary = toy_data.vocabulary()
    assert set(vocabulary.modules) == {"M1", "M2", "M3", "M4"}
    assert vocabulary.genes["EGFR"] == "EGFR"
    assert set(vocabulary.mutations) == {"EGFR", "KRAS"}
    assert "module:M1" in vocabulary.survival


def test_missing_bundle_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        BundleData(tmp_path / "absent.h5ad")


def test_features_table_filters(toy_data, toy_adata):
    features = _uns(toy_adata, "features")
    radiomic = toy_data.features_table(sources=["radiomic"])
    assert list(radiomic.index) == list(features.index[features["source"] == "radiomic"])
    shape = toy_data.features_table(groups=("original_shape",))
    assert set(shape.index) == {
        "original_shape_Sphericity",
        "original_shape_Elongation",
        "original_shape_MeshVolume",
    }


def test_associations_filtered_and_labelled(toy_data, toy_adata):
    raw = _uns(toy_adata, "associations")
    features = _uns(toy_adata, "features")
    semantic = set(features.index[features["source"] == "semantic"])
    table = toy_data.associations(sources=("semantic",), modules=("M2", "M3"))
    expected = raw[raw["feature"].isin(semantic) & raw["module"].isin(["M2", "M3"])]
    assert len(table) == len(expected) == len(semantic) * 2
    merged = table.merge(expected, on=["module", "feature"], suffixes=("", "_raw"))
    np.testing.assert_allclose(merged["q"], merged["q_raw"])
    assert (table["label"] == features.loc[table["feature"], "label"].to_numpy()).all()


def test_significant_applies_threshold_and_min_effect(toy_data, toy_adata):
    raw = _uns(toy_adata, "associations")
    table = toy_data.significant(q_threshold=0.05, min_effect=0.8)
    expected = raw[(raw["q"] < 0.05) & (raw["effect"].abs() >= 0.8)]
    assert set(zip(table["feature"], table["module"])) == set(
        zip(expected["feature"], expected["module"])
    )
    assert table["q"].is_monotonic_increasing
    assert len(table) >= 1


def test_map_view_modes(toy_data, toy_adata):
    raw = _uns(toy_adata, "associations")
    assert toy_data.map_view().mode == "features"
    top = toy_data.map_view(rows="top", top=5)
    best = raw.assign(a=raw["effect"].abs()).sort_values(
        ["q", "a", "feature"], ascending=[True, False, True]
    )
    expected = list(dict.fromkeys(best["feature"]))[:5]
    assert set(top.assoc["feature"]) == set(expected)
    assert "5 of 13" in top.note
    families = toy_data.map_view(rows="families")
    assert families.families and families.mode == "families"


def test_map_view_auto_summarises_many_radiomic_features(tmp_path):
    path = write_toy_bundle(tmp_path / "wide.h5ad", n_patients=30, n_genes=40, n_radiomic=90)
    view = BundleData(path).map_view()
    assert view.n_features == 96
    assert view.mode == "families" and view.families
    assert "summarised per family" in view.note


def test_gene_table_matches_varm(toy_data, toy_adata):
    feature = "original_shape_Sphericity"
    column = list(_uns(toy_adata, "gene_features")).index(feature)
    table = toy_data.gene_table(feature)
    assert list(table["gene"]) == list(toy_adata.var_names)
    np.testing.assert_allclose(table["effect"], toy_adata.varm[B.GENE_EFFECT][:, column])
    np.testing.assert_allclose(table["q"], toy_adata.varm[B.GENE_Q][:, column])
    assert (table["module"] == toy_adata.var["module"].astype(str).to_numpy()).all()
    top = toy_data.top_genes(feature, n=10)
    assert list(top["gene"]) == list(table.sort_values("p")["gene"].head(10))
    assert toy_data.gene_table("not_a_feature").empty


def test_the_volcano_names_its_effect_measure(toy_data):
    """The volcano's x axis said "effect" without its measure (the gene table had no test)."""
    from radmap.explorer.callbacks.volcano import volcano_view
    from radmap.explorer.figures.style import TEST_MEASURES

    titles = {}
    for feature in toy_data.gene_features:
        test = toy_data.features.at[feature, "test"]
        assert set(toy_data.gene_table(feature)["test"]) == {test}
        figure = as_figure(volcano_view(toy_data, feature)[0])
        titles[test] = figure.layout.xaxis.title.text
    assert len(titles) > 1, titles  # continuous and group tests
    assert titles == {test: f"effect ({TEST_MEASURES[test]})" for test in titles}, titles
    subset = toy_data.subset_view("stage:II")
    feature = next(
        f for f in toy_data.gene_features if toy_data.features.at[f, "test"] == "spearman"
    )
    figure = as_figure(volcano_view(subset, feature)[0])
    assert figure.layout.xaxis.title.text == "effect (Spearman ρ)"


def test_gene_associations_one_gene_across_features(toy_data, toy_adata):
    row = list(toy_adata.var_names).index("EGFR")
    table = toy_data.gene_associations("egfr")
    features = list(_uns(toy_adata, "gene_features"))
    assert len(table) == len(features)
    p = pd.Series(toy_adata.varm[B.GENE_P][row], index=features)
    np.testing.assert_allclose(table["p"], p[table["feature"]].to_numpy(), rtol=1e-6)
    assert table["p"].is_monotonic_increasing
    n = pd.Series(list(_uns(toy_adata, "gene_n")), index=features)
    assert (table["n"].to_numpy() == n[table["feature"]].to_numpy()).all()
    stats_row = toy_data.gene_association("EGFR", "pack_years")
    column = features.index("pack_years")
    assert stats_row["q"] == pytest.approx(float(toy_adata.varm[B.GENE_Q][row, column]))
    assert stats_row["test"] == "spearman"
    assert toy_data.gene_associations("NOTAGENE").empty


def test_phenotype_module_and_gene(toy_data, toy_adata):
    frame = toy_data.phenotype("nodule_attenuation", module="M2", color="EGFR")
    imaging = toy_adata.obsm[B.IMAGING_KEY]
    keep = imaging["nodule_attenuation"].notna()
    assert len(frame) == int(keep.sum())
    eigen = toy_adata.obsm[B.EIGENGENES_KEY]["M2"][keep]
    np.testing.assert_allclose(frame["value"], eigen.to_numpy())
    assert list(frame["feature"].cat.categories) == ["solid", "part-solid", "ground-glass"]
    expected_color = toy_adata.obs["EGFR"][keep].astype(object).fillna("Unknown")
    assert list(frame["color"]) == list(expected_color)
    gene = toy_data.phenotype("pack_years", gene="KRAS")
    column = toy_adata[:, "KRAS"].X.ravel()
    np.testing.assert_allclose(gene["value"], column, rtol=1e-6)
    with pytest.raises(InputError):
        toy_data.phenotype("no_such_feature", module="M1")


def test_module_members_and_table(toy_data, toy_adata):
    var = toy_adata.var
    members = toy_data.module_members("M3")
    assert set(members["gene"]) == set(var.index[var["module"] == "M3"])
    assert members["kME"].is_monotonic_decreasing
    raw = _uns(toy_adata, "associations")
    table = toy_data.modules_table(q_threshold=0.05).set_index("module")
    for module in ("M1", "M2", "M3", "M4"):
        links = raw[raw["module"] == module]
        best = links.loc[links["q"].idxmin()]
        assert table.at[module, "strongest_feature_id"] == best["feature"]
        assert table.at[module, "n_links"] == int((links["q"] < 0.05).sum())
    assert (
        toy_data.hub_genes("M1", n=2)
        == (_uns(toy_adata, "modules").at["M1", "hub_genes"].split("|")[:2])
    )


def test_enrichment_of_a_module(toy_data, toy_adata):
    raw = _uns(toy_adata, "enrichment")
    table = toy_data.enrichment("M4")
    assert len(table) == int((raw["module"] == "M4").sum())
    assert table["q"].is_monotonic_increasing


def test_network_edges_are_the_significant_links(toy_data, toy_adata):
    raw = _uns(toy_adata, "associations")
    nodes, edges = toy_data.network(q_threshold=0.05, pathways_per_module=2)
    significant = raw[raw["q"] < 0.05]
    feature_edges = edges[edges["source"].str.startswith("feature:")]
    assert set(zip(feature_edges["source"], feature_edges["target"])) == {
        (f"feature:{f}", f"module:{m}")
        for f, m in zip(significant["feature"], significant["module"])
    }
    assert nodes["id"].is_unique
    enrichment = _uns(toy_adata, "enrichment")
    expected_terms = set()
    for _, part in enrichment[enrichment["q"] < 0.05].groupby("module"):
        expected_terms |= set(part.sort_values("q")["term"].head(2))
    assert set(nodes.loc[nodes["kind"] == "pathway", "label"]) == expected_terms
    pathway_edges = edges[edges["target"].str.startswith("pathway:")]
    assert (pathway_edges["weight"] > 0).all()


def test_missingness_and_mutation_tables(toy_data, toy_adata):
    missing = toy_data.missingness()
    expected = toy_adata.obsm[B.IMAGING_KEY].isna().mean()
    np.testing.assert_allclose(missing["fraction"], expected[missing.index].to_numpy())
    mutation = toy_data.mutation_imaging()
    assert len(mutation) == len(_uns(toy_adata, "mutation_imaging"))
    assert mutation["q"].is_monotonic_increasing
    assert set(toy_data.matching()["source"]) == {"expression", "semantic", "radiomic", "clinical"}


def test_survival_needs_a_patient_with_both_a_time_and_an_event(toy_adata):
    adata = toy_adata.copy()
    assert BundleData(adata).has_survival
    obs = adata.obs
    even = np.arange(adata.n_obs) % 2 == 0
    obs[B.SURVIVAL_TIME] = np.where(even, obs[B.SURVIVAL_TIME], np.nan)
    obs[B.SURVIVAL_EVENT] = np.where(even, np.nan, obs[B.SURVIVAL_EVENT])
    assert not BundleData(adata).has_survival, "no patient has both"
    obs.loc[obs.index[0], B.SURVIVAL_EVENT] = 1.0
    assert BundleData(adata).has_survival
    del obs[B.SURVIVAL_EVENT]
    assert not BundleData(adata).has_survival, "no event column"


def test_survival_row_is_the_tables_first_row_of_its_test(toy_data):
    table = toy_data.survival_table()
    assert len(table) > 3
    for _, expected in table.drop_duplicates(["kind", "variable", "test"]).iterrows():
        row = toy_data.survival_row(expected["kind"], expected["variable"], expected["test"])
        assert row["p"] == pytest.approx(expected["p"]) and row["n"] == expected["n"]
    row["p"] = -1.0  # a caller's copy
    assert toy_data.survival_row(row["kind"], row["variable"], row["test"])["p"] >= 0
    assert toy_data.survival_row("gene", "NOT-A-GENE", "logrank") is None


def test_km_module_median_split_matches_lifelines(toy_data, toy_adata):
    view = toy_data.km("module", "M2")
    curves, p, description = view.curves, view.p, view.description
    eigen = toy_adata.obsm[B.EIGENGENES_KEY]["M2"]
    groups = np.where(eigen > eigen.median(), "high", "low")
    obs = toy_adata.obs
    ok = obs[B.SURVIVAL_TIME].notna() & obs[B.SURVIVAL_EVENT].notna()
    reference = multivariate_logrank_test(
        obs.loc[ok, B.SURVIVAL_TIME], groups[ok.to_numpy()], obs.loc[ok, B.SURVIVAL_EVENT]
    )
    assert p == pytest.approx(reference.p_value, rel=1e-6)
    assert set(curves["group"]) == {"low", "high"}
    assert "median" in description


def test_km_feature_categories_and_gene(toy_data, toy_adata):
    view = toy_data.km("feature", "nodule_attenuation")
    assert set(view.curves["group"]) == {"solid", "part-solid", "ground-glass"}
    assert 0 <= view.p <= 1
    view = toy_data.km("gene", "egfr")
    curves, description = view.curves, view.description
    assert "EGFR" in description and set(curves["group"]) == {"low", "high"}
    with pytest.raises(InputError):
        toy_data.km("gene", "NOTAGENE")


def test_gene_search_prefix_first_case_insensitive(toy_data):
    assert toy_data.gene_search("kr")[:2] == ["KRAS", "KRT5"]
    assert toy_data.gene_search("") == []
    hits = toy_data.gene_search("CD")
    assert hits[:3] == ["CD3E", "CD8A", "CDK1"]
    assert len(toy_data.gene_search("GENE", limit=7)) == 7


def test_ora_against_the_hypergeometric_test(toy_data, toy_adata):
    selected = list(toy_data.module_members("M1")["gene"].head(30))
    table = toy_data.ora(selected)
    row = table[table["term"] == "TOY_M1_PROGRAM"].iloc[0]
    term = set(toy_gene_sets(toy_adata)["hallmark"]["TOY_M1_PROGRAM"])
    background = len(toy_adata.var_names)
    overlap = len(term & set(selected))
    expected = stats.hypergeom.sf(overlap - 1, background, len(term), len(selected))
    assert row["overlap"] == overlap
    assert row["p"] == pytest.approx(expected, rel=1e-9)


def test_prerank_runs_on_the_feature_ranking(toy_data):
    table = toy_data.prerank("original_shape_Sphericity", permutations=50, seed=1)
    assert {"term", "nes", "p", "q"} <= set(table.columns)
    # Sphericity is planted on M1: its genes lead the ranking.
    top = table.loc[table["es"].idxmax()]
    assert top["term"] == "TOY_M1_PROGRAM"
    assert top["es"] > 0.5
    with pytest.raises(InputError):
        toy_data.prerank("no_such_feature")
    # an unordered categorical feature has no direction: genes are not ranked on it
    with pytest.raises(InputError, match="signed statistic"):
        toy_data.prerank("lobe_location", permutations=50)


def test_module_expression_is_z_scored_and_ordered(toy_data, toy_adata):
    matrix, order = toy_data.module_expression("M1", order_feature="nodule_attenuation", n_genes=8)
    assert matrix.shape == (
        8,
        int(toy_adata.obsm[B.IMAGING_KEY]["nodule_attenuation"].notna().sum()),
    )
    assert list(matrix.columns) == list(order.index)
    genes = list(toy_data.module_members("M1")["gene"].head(8))
    assert list(matrix.index) == genes
    full = toy_adata[:, genes].X.astype(float)
    z = (full - full.mean(0)) / full.std(0)
    expected = pd.DataFrame(z.T, index=genes, columns=toy_adata.obs_names)[matrix.columns]
    np.testing.assert_allclose(matrix.to_numpy(), expected.to_numpy(), atol=1e-6)


def test_memoised_results_are_copies_and_bounded(toy_bundle_path):
    data = BundleData(toy_bundle_path, cache_size=3)
    first = data.gene_table("pack_years")
    first.loc[:, "effect"] = 99.0
    again = data.gene_table("pack_years")
    assert not (again["effect"] == 99.0).any()
    for feature in ("margin_spiculated", "lobe_location", "pack_years", "nodule_size_class"):
        data.gene_table(feature)
    assert len(data._cache) == 3
    assert all(key[0] == data.bundle_id for key in data._cache)
    # list and tuple arguments share an entry
    data.associations(sources=["semantic"])
    size = len(data._cache)
    data.associations(sources=("semantic",))
    assert len(data._cache) == size


def test_strongest_link_is_the_smallest_p_with_gene_level(toy_data):
    link = toy_data.strongest_link()
    assoc = toy_data.associations()
    assoc = assoc[assoc["feature"].map(toy_data.has_gene_level)]
    best = assoc.loc[assoc["p"].idxmin()]
    assert (link["feature"], link["module"]) == (best["feature"], best["module"])
    assert link["gene"] == toy_data.hub_genes(best["module"], n=1)[0]


def test_memo_keys_on_name_and_parameters_and_drops_least_recent(toy_bundle_path):
    data = BundleData(toy_bundle_path, cache_size=2)
    calls = []

    def build(value):
        calls.append(value)
        return [value]

    first = data.memo("view", {"a": 1, "b": ["x", "y"]}, lambda: build(1))
    assert data.memo("view", {"b": ("x", "y"), "a": 1}, lambda: build(2)) is first
    assert data.memo("other", {"a": 1, "b": ["x", "y"]}, lambda: build(3)) == [3]
    assert data.memo("view", {"a": 2}, lambda: build(4)) == [4]
    assert data.memo("view", {"a": 1, "b": ["x", "y"]}, lambda: build(5)) == [5], "evicted"
    assert calls == [1, 3, 4, 5]


def test_map_page_shows_the_null_badge_only_when_the_bundle_has_one(toy_data, tmp_path):
    from radmap.explorer.data import BundleData
    from radmap.explorer.pages import map as map_page
    from radmap.explorer.state import ViewState

    def badge_text(data):
        found = []

        def walk(node):
            if getattr(node, "id", None) == "map-null-badge":
                found.append(str(node.children) if node.children is not None else "")
            children = getattr(node, "children", None)
            for child in children if isinstance(children, list) else [children]:
                if hasattr(child, "children"):
                    walk(child)

        walk(map_page.layout(data, ViewState()))
        return found

    assert badge_text(toy_data) == [""]
    adata = toy_data.adata.copy()
    adata.uns["radmap"]["null"] = {"badge": "3 links at q < 0.05; 0.2 expected by chance"}
    path = tmp_path / "with_null.h5ad"
    from radmap.analysis.io import save_bundle

    save_bundle(adata, path)
    shown = badge_text(BundleData(path))
    assert len(shown) == 1 and "0.2 expected by chance" in shown[0]


def with_nulls(toy_data, feature: str, path, *, map_null: bool = False):
    """The toy bundle saved at ``path`` with a gene-map null (and a map null)."""
    import pandas as pd
    from radmap.analysis.io import save_bundle

    adata = toy_data.adata.copy()
    if map_null:
        adata.uns["radmap"]["null"] = {"badge": "3 links at q < 0.05; 0.2 expected by chance"}
    adata.uns["radmap"]["gene_null"] = {
        "badge": "40 gene links at map q < 0.05; 1.5 expected by chance (100 permutations)",
        "alpha": 0.05,
        "n_permutations": 100,
    }
    adata.uns["radmap"]["gene_null_features"] = pd.DataFrame(
        {"feature": [feature], "observed": [12], "expected": [0.34], "n_genes": [50]}
    )
    save_bundle(adata, path)
    return path


def test_volcano_shows_the_gene_null_for_the_map_and_the_feature(toy_data, tmp_path):
    from radmap.explorer.callbacks.volcano import volcano_view
    from radmap.explorer.data import BundleData
    from radmap.explorer.pages import volcano as volcano_page
    from radmap.explorer.state import ViewState

    feature = next(
        o["value"] for o in toy_data.feature_options() if toy_data.has_gene_level(o["value"])
    )
    assert toy_data.gene_null_badge() == "" and toy_data.gene_null_line(feature) == ""
    data = BundleData(with_nulls(toy_data, feature, tmp_path / "with_gene_null.h5ad"))
    layout = str(volcano_page.layout(data, ViewState()))
    assert "1.5 expected by chance" in layout and "volcano-null-badge" in layout
    _, message, _, _ = volcano_view(data, feature)
    assert "12 genes at q < 0.05 for this feature; 0.3 expected by chance" in str(message)


def test_replication_page_says_how_to_make_a_result_and_shows_one(toy_bundle_path, tmp_path):
    import shutil

    from radmap.analysis.io import file_sha256, load_bundle
    from radmap.analysis.replicate import replicate, sidecar_dir, write_replication
    from radmap.explorer.callbacks.replication import replication_view
    from radmap.explorer.data import BundleData
    from radmap.explorer.pages import replication as replication_page
    from radmap.explorer.state import ViewState

    from tests.explorer.conftest import make_toy_adata

    bundle = tmp_path / "toy.h5ad"
    shutil.copy(toy_bundle_path, bundle)
    data = BundleData(bundle)
    assert replication_view(data) == {}
    assert "radmap replicate toy.h5ad VALIDATION.h5ad" in str(
        replication_page.layout(data, ViewState(page="replication"))
    )
    result = replicate(load_bundle(bundle), make_toy_adata(seed=1), n_permutations=5, links="all")
    result["params"]["discovery_bundle_sha256"] = "an older bundle"
    write_replication(result, sidecar_dir(bundle))
    view = replication_view(BundleData(bundle), "replicated")
    card = result["scorecard"]
    assert view["verdict"].startswith(f"{card['discovery_links']} discovery links")
    assert len(view["link_rows"]) == card["replicated"]
    assert {row["status"] for row in view["link_rows"]} <= {"replicated"}
    assert list(view["scorecard"].data[0].x) == [
        card["replicated"],
        card["opposite_sign"],
        card["not_replicated"],
        card["not_testable"],
    ]
    assert "another version of toy.h5ad" in str(
        replication_page.layout(BundleData(bundle), ViewState(page="replication"))
    )
    result["params"]["discovery_bundle_sha256"] = file_sha256(bundle)
    write_replication(result, sidecar_dir(bundle))
    assert "another version" not in str(
        replication_page.layout(BundleData(bundle), ViewState(page="replication"))
    )


def test_a_subset_shows_no_permutation_null_of_the_whole_cohort(toy_data, tmp_path):
    """The nulls of the map and of the gene map were computed on the whole cohort: a subset's
    map and volcano (in their layouts and after a live subset change) show neither."""
    from radmap.explorer.data import BundleData
    from radmap.explorer.pages import map as map_page
    from radmap.explorer.pages import volcano as volcano_page
    from radmap.explorer.state import ViewState

    feature = next(
        o["value"] for o in toy_data.feature_options() if toy_data.has_gene_level(o["value"])
    )
    data = BundleData(with_nulls(toy_data, feature, tmp_path / "with_nulls.h5ad", map_null=True))
    whole = str(map_page.layout(data, ViewState())) + str(
        volcano_page.layout(data, ViewState(page="volcano", feature=feature))
    )
    assert "0.2 expected by chance" in whole and "1.5 expected by chance" in whole
    subset = "stage:II"
    shown = str(map_page.layout(data, ViewState(subset=subset))) + str(
        volcano_page.layout(data, ViewState(page="volcano", feature=feature, subset=subset))
    )
    assert "expected by chance" not in shown
    view = data.subset_view(subset)
    assert view.null_badge() == view.gene_null_badge() == view.gene_null_line(feature) == ""
