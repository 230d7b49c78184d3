"""Replication in a second cohort (radmap.analysis.replicate)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from radmap.analysis import bundle, datasets
from radmap.analysis.pipeline import Config, build_bundle
from radmap.analysis.replicate import projected_eigengenes, replicate


def _bundle(cohort, patients, folder):
    part = datasets.SyntheticCohort(
        cohort.expression[patients],
        cohort.imaging.loc[patients],
        cohort.clinical.loc[patients],
        cohort.feature_types,
        cohort.truth,
        cohort.feature_sources,
    )
    files = datasets.write_cohort(part, folder)
    config = Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        min_module_size=20,
        gene_sets=["hallmark"],
    )
    return build_bundle(config, progress=lambda message: None)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """Two cohorts drawn from one synthetic population (same planted biology)."""
    cohort = datasets.synthetic(
        n_patients=300, n_genes=500, n_features=25, n_modules=4, module_size=35, seed=3
    )
    patients = cohort.imaging.index
    discovery = _bundle(cohort, patients[:150], tmp_path_factory.mktemp("discovery"))
    validation = _bundle(cohort, patients[150:], tmp_path_factory.mktemp("validation"))
    return cohort, discovery, validation


def _planted_of(adata, truth) -> dict[str, str]:
    """Found module -> the planted module most of its genes come from."""
    planted = truth["gene_module"].reindex(adata.var_names)
    found = adata.var["module"].astype(str)
    table = planted.groupby(found).agg(lambda s: s.value_counts().index[0])
    return table.drop(bundle.UNASSIGNED, errors="ignore").to_dict()


def test_planted_links_replicate_and_null_links_do_not(cohorts):
    cohort, discovery, validation = cohorts
    result = replicate(discovery, validation, n_permutations=30)
    links = result["links"]
    planted_of = _planted_of(discovery, cohort.truth)
    links["planted"] = links["module"].map(planted_of)
    truth = cohort.truth["links"]
    is_planted = links.set_index(["planted", "feature"]).index.isin(
        truth.set_index(["module", "feature"]).index
    )
    assert is_planted.sum() >= 3
    assert (links.loc[is_planted, "status"] == "replicated").all()
    card = result["scorecard"]
    assert card["tested"] == len(links) and card["not_testable"] == 0
    assert card["replicated"] == int((links["status"] == "replicated").sum())
    # Every map cell re-tested: links of null features replicate at the chance rate.
    every = replicate(discovery, validation, n_permutations=5, links="all")["links"]
    null = every[every["feature"].isin(cohort.truth["null_features"])]
    assert len(null) > 50
    assert (null["status"] == "replicated").mean() < 0.05
    assert (null["p_replication"] < 0.05).mean() < 0.1


def test_planted_modules_are_preserved_and_shuffled_genes_are_not(cohorts):
    _, discovery, validation = cohorts
    preserved = replicate(discovery, validation, n_permutations=30)["preservation"]
    assert (preserved["Z_summary"] > 10).all()
    assert (preserved["preservation"] == "strong").all()
    rng = np.random.default_rng(0)
    shuffled = ad.AnnData(
        X=np.asarray(validation.X),
        obs=validation.obs,
        var=validation.var.set_index(rng.permutation(validation.var_names)),
    )
    shuffled.uns = validation.uns
    shuffled.obsm[bundle.IMAGING_KEY] = validation.obsm[bundle.IMAGING_KEY]
    broken = replicate(discovery, shuffled, n_permutations=30)
    assert (broken["preservation"]["Z_summary"] < 2).all()
    assert broken["scorecard"]["replicated"] == 0


def test_missing_features_and_genes_are_not_testable(cohorts):
    _, discovery, validation = cohorts
    links = replicate(discovery, validation, n_permutations=5)["links"]
    feature = links["feature"].iloc[0]
    module = links["module"].iloc[-1]
    module_genes = discovery.var_names[discovery.var["module"].astype(str) == module]
    keep = ~validation.var_names.isin(module_genes[: len(module_genes) * 3 // 4])
    reduced = validation[:, keep].copy()
    reduced.obsm[bundle.IMAGING_KEY] = validation.obsm[bundle.IMAGING_KEY].drop(columns=feature)
    result = replicate(discovery, reduced, n_permutations=5)
    table = result["links"]
    assert (table.loc[table["feature"] == feature, "status"] == "not testable").all()
    assert (table.loc[table["feature"] == feature, "reason"] == "feature missing").all()
    by_module = table[(table["module"] == module) & (table["feature"] != feature)]
    assert (by_module["reason"].str.startswith("genes missing")).all()
    card = result["scorecard"]
    assert card["not_testable"] == int((table["status"] == "not testable").sum()) > 0
    eigengenes, fractions = projected_eigengenes(discovery, reduced)
    assert eigengenes[module].isna().all() and fractions[module] < 0.5


def test_cli_writes_the_scorecard_and_reports_bad_input(cohorts, tmp_path, capsys):
    import json

    from radmap.analysis.io import save_bundle

    from radmap.cli import main

    _, discovery, validation = cohorts
    first = save_bundle(discovery, tmp_path / "discovery.h5ad")
    second = save_bundle(validation, tmp_path / "validation.h5ad")
    out = tmp_path / "replication"
    code = main(["replicate", str(first), str(second), "--out", str(out), "--permutations", "5"])
    assert code == 0
    summary = json.loads((out / "replication.json").read_text())
    links = (out / "replication_links.csv").read_text().splitlines()
    assert summary["scorecard"]["discovery_links"] == len(links) - 1 > 0
    assert "replicated" in capsys.readouterr().err
    methods = (out / "replication_methods.txt").read_text()
    card = summary["scorecard"]
    assert f"each of the {card['discovery_links']} discovery links" in methods
    assert f"{card['replicated']} replicated" in methods
    code = main(["replicate", str(first), str(tmp_path / "nope.h5ad"), "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_default_output_is_the_sidecar_the_explorer_reads(cohorts, tmp_path, capsys):
    from radmap.analysis.io import file_sha256, save_bundle
    from radmap.analysis.replicate import read_replication, sidecar_dir
    from radmap.analysis.validate import InputError

    from radmap.cli import main

    _, discovery, validation = cohorts
    first = save_bundle(discovery, tmp_path / "discovery.h5ad")
    second = save_bundle(validation, tmp_path / "validation.h5ad")
    assert main(["replicate", str(first), str(second), "--permutations", "3"]) == 0
    folder = sidecar_dir(first)
    assert folder == tmp_path / "discovery.replication"
    result = read_replication(folder)
    assert result["params"]["discovery_bundle_sha256"] == file_sha256(first)
    assert result["scorecard"]["tested"] == int(result["links"]["status"].ne("not testable").sum())
    assert result["preservation"].index.tolist() == discovery.obsm["eigengenes"].columns.tolist()
    (folder / "replication_links.csv").write_text("module,feature\nM1,f\n")
    with pytest.raises(InputError, match="column 'status' is missing"):
        read_replication(folder)
    with pytest.raises(InputError, match="run `radmap replicate`"):
        read_replication(tmp_path / "elsewhere")
