"""Over-representation and pre-ranked enrichment against scipy references and planted truth."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import datasets, enrich
from radmap.analysis.validate import InputError
from scipy import stats


@pytest.fixture(scope="module")
def toy():
    """60-gene background, five sets of varied size, a query with two genes off-background."""
    rng = np.random.default_rng(11)
    background = [f"G{i:02d}" for i in range(60)]
    gene_sets = {
        "toy": {
            f"SET_{k}": sorted(rng.choice(background, size=size, replace=False).tolist())
            for k, size in enumerate((6, 9, 14, 20, 30))
        }
    }
    gene_sets["toy"]["SET_0"] += ["OFF_BACKGROUND_1", "OFF_BACKGROUND_2"]
    query = sorted(rng.choice(background, size=15, replace=False).tolist()) + ["NOT_MEASURED"]
    return background, gene_sets, query


def test_ora_p_values_equal_hypergeometric_and_fisher(toy):
    background, gene_sets, query = toy
    result = enrich.ora(query, background=background, gene_sets=gene_sets, min_size=5)
    universe, selected = set(background), set(query) & set(background)
    assert len(result) > 0
    for row in result.itertuples():
        members = set(gene_sets[row.collection][row.term]) & universe
        a = len(members & selected)
        b, c = len(members) - a, len(selected) - a
        d = len(universe) - a - b - c
        assert row.overlap == a
        assert row.set_size == len(members)
        expected = stats.hypergeom.sf(a - 1, len(universe), len(members), len(selected))
        assert row.p == pytest.approx(expected, rel=1e-10, abs=1e-300)
        fisher = stats.fisher_exact([[a, b], [c, d]], alternative="greater").pvalue
        assert row.p == pytest.approx(fisher, rel=1e-9)
        haldane = ((a + 0.5) * (d + 0.5)) / ((b + 0.5) * (c + 0.5))
        assert row.odds_ratio == pytest.approx(haldane)
        assert row.genes.split("|") == sorted(members & selected)
    assert result["p"].is_monotonic_increasing


def test_ora_q_is_bh_over_all_tested_terms_of_the_collection(toy):
    background, gene_sets, query = toy
    result = enrich.ora(query, background=background, gene_sets=gene_sets, min_size=5)
    universe, selected = set(background), set(query) & set(background)
    all_p = {}
    for term, genes in gene_sets["toy"].items():
        members = set(genes) & universe
        overlap = len(members & selected)
        all_p[term] = stats.hypergeom.sf(overlap - 1, len(universe), len(members), len(selected))
    q = dict(zip(all_p, stats.false_discovery_control(list(all_p.values()), method="bh")))
    for row in result.itertuples():
        assert row.q == pytest.approx(q[row.term], rel=1e-10)


def test_ora_ignores_genes_outside_the_background(toy):
    background, gene_sets, query = toy
    with_outsiders = enrich.ora(
        query + ["ZZZ1", "ZZZ2"], background=background, gene_sets=gene_sets, min_size=5
    )
    inside_only = enrich.ora(
        [g for g in query if g in background], background=background, gene_sets=gene_sets
    )
    pd.testing.assert_frame_equal(with_outsiders, inside_only)
    set_0 = with_outsiders[with_outsiders["term"] == "SET_0"]
    if len(set_0):
        assert set_0["set_size"].iloc[0] == 6, "off-background set members must not count"


def test_ora_size_bounds_apply_within_the_background(toy):
    background, gene_sets, query = toy
    result = enrich.ora(query, background=background, gene_sets=gene_sets, min_size=10, max_size=20)
    assert set(result["term"]) <= {"SET_2", "SET_3"}
    assert result["set_size"].between(10, 20).all()
    narrow = enrich.ora(background[:3], background=background, gene_sets=gene_sets, min_size=100)
    assert narrow.empty and list(narrow.columns) == list(enrich.ORA_COLUMNS)


def test_ora_with_no_query_gene_in_background_is_empty(toy):
    background, gene_sets, _ = toy
    result = enrich.ora(["NOPE"], background=background, gene_sets=gene_sets)
    assert result.empty
    with pytest.raises(InputError, match="single string"):
        enrich.ora("G01", background=background, gene_sets=gene_sets)


@pytest.fixture(scope="module")
def cohort():
    return datasets.synthetic(n_patients=20, n_genes=800, n_features=5, seed=5)


def test_ora_recovers_each_planted_module_term(cohort):
    hallmark = enrich.load_gene_sets(["hallmark"])
    truth = cohort.truth["gene_module"]
    for module, term in cohort.truth["module_terms"].items():
        result = enrich.ora(
            truth.index[truth == module], background=cohort.expression.index, gene_sets=hallmark
        )
        assert result["term"].iloc[0] == term
        assert result["q"].iloc[0] < 1e-10
        assert result["overlap"].iloc[0] == (truth == module).sum()


def test_module_enrichment_tables_every_module_but_unassigned(cohort):
    hallmark = enrich.load_gene_sets(["hallmark"])
    modules = cohort.truth["gene_module"].replace("none", "unassigned")
    table = enrich.module_enrichment(
        modules, background=cohort.expression.index, gene_sets=hallmark
    )
    assert list(table.columns) == ["module", *enrich.ORA_COLUMNS]
    assert set(table["module"]) == set(cohort.truth["module_terms"])
    best = table.sort_values("p").groupby("module").head(1).set_index("module")["term"]
    assert best.to_dict() == cohort.truth["module_terms"]


def test_ora_on_bundled_go_and_hallmark_is_fast_enough_for_a_lasso():
    gene_sets = enrich.load_gene_sets()
    background = sorted({g for sets in gene_sets.values() for m in sets.values() for g in m})
    selection = np.random.default_rng(0).choice(background, size=400, replace=False)
    enrich.ora(selection, background=background, gene_sets=gene_sets)
    start = time.process_time()  # CPU time: robust to other jobs sharing the machine
    result = enrich.ora(selection, background=background, gene_sets=gene_sets)
    elapsed = time.process_time() - start
    assert len(gene_sets["go_bp"]) > 5000
    assert set(result["collection"]) == {"hallmark", "go_bp"}
    assert elapsed < 0.8, f"ORA over {len(gene_sets['go_bp'])} GO terms took {elapsed:.2f} s"


def test_bundled_collections_are_found_and_complete():
    paths = enrich.bundled_gene_set_paths()
    assert set(paths) == {"hallmark", "go_bp"}
    assert all(path.is_file() for path in paths.values())
    hallmark = enrich.read_gmt(paths["hallmark"])
    assert len(hallmark) == 50
    assert "VEGFA" in hallmark["HALLMARK_HYPOXIA"]
    go = enrich.read_gmt(paths["go_bp"])
    assert all(genes and all(gene for gene in genes) for genes in go.values())


def test_read_gmt_accepts_enrichr_layout_and_dedupes(tmp_path):
    path = tmp_path / "mine.gmt"
    path.write_text("A (GO:1)\t\tX\tY\tX\t\nB\tdescription\tZ\r\n\nC\tna\tY\tZ\n")
    assert enrich.read_gmt(path) == {"A (GO:1)": ["X", "Y"], "B": ["Z"], "C": ["Y", "Z"]}
    loaded = enrich.load_gene_sets([path, "hallmark"])
    assert list(loaded) == ["mine", "hallmark"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no gene sets"),
        ("A\tdesc\tX\nB\tdesc\n", "line 2"),
        ("A\tdesc\tX\nA\tdesc\tY\n", "line 2.*twice"),
        ("\tdesc\tX\n", "line 1"),
    ],
)
def test_read_gmt_rejects_bad_files_naming_the_line(tmp_path, content, message):
    path = tmp_path / "bad.gmt"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        enrich.read_gmt(path)


def test_missing_gmt_and_unknown_library_names_fail_offline(tmp_path):
    with pytest.raises(InputError, match="not found"):
        enrich.read_gmt(tmp_path / "absent.gmt")
    with pytest.raises(InputError, match="neither a bundled collection"):
        enrich.load_gene_sets(["KEGG_2021_Human"])
    with pytest.raises(InputError, match="given twice"):
        enrich.load_gene_sets(["hallmark", "hallmark"])


@pytest.fixture(scope="module")
def ranked():
    rng = np.random.default_rng(4)
    genes = [f"GENE{i:04d}" for i in range(600)]
    gene_sets = {
        "toy": {f"RANDOM_{k}": rng.choice(genes, size=25, replace=False).tolist() for k in range(8)}
    }
    planted = rng.choice(genes, size=25, replace=False).tolist()
    gene_sets["toy"]["PLANTED"] = planted
    scores = pd.Series(rng.normal(size=len(genes)).round(1), index=genes)
    scores[planted] += 1.5
    scores.iloc[:5] = np.nan
    return scores, gene_sets, planted


def test_prerank_puts_the_planted_set_first(ranked):
    scores, gene_sets, planted = ranked
    result = enrich.prerank(scores, gene_sets=gene_sets, permutations=50, seed=1)
    assert list(result.columns) == list(enrich.PRERANK_COLUMNS)
    top = result.iloc[0]
    assert top["term"] == "PLANTED"
    assert top["nes"] > 0 and top["es"] > 0
    assert top["p"] == pytest.approx(1 / 50)
    lead = top["lead_genes"].split("|")
    assert lead and set(lead) <= set(planted)
    assert not set(lead) & set(scores.index[scores.isna()])
    assert result["q"].between(0, 1).all()


def test_prerank_is_reproducible_with_ties_and_nan(ranked):
    scores, gene_sets, _ = ranked
    first = enrich.prerank(scores, gene_sets=gene_sets, permutations=20, seed=3)
    shuffled = scores.sample(frac=1.0, random_state=0)
    second = enrich.prerank(shuffled, gene_sets=gene_sets, permutations=20, seed=3)
    pd.testing.assert_frame_equal(first, second)


def test_prerank_rejects_duplicate_genes(ranked):
    scores, gene_sets, _ = ranked
    doubled = pd.concat([scores, scores.iloc[[10]]])
    with pytest.raises(InputError, match="more than once"):
        enrich.prerank(doubled, gene_sets=gene_sets, permutations=5)
