"""Methods text and checklist generated from a bundle (radmap.analysis.methods)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from radmap.analysis import datasets
from radmap.analysis.io import file_sha256, load_bundle, save_bundle
from radmap.analysis.methods import methods_text
from radmap.analysis.pipeline import Config, build_bundle
from radmap.analysis.trust import add_trust_checks

from radmap.cli import main


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("methods")
    cohort = datasets.synthetic(
        n_patients=120, n_genes=400, n_features=20, n_modules=3, module_size=30, size_driven=True
    )
    files = datasets.write_cohort(cohort, folder)
    config = Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        clinical=files["clinical"],
        survival_time="Survival time (days)",
        survival_event="Event",
        min_module_size=20,
        gene_sets=["hallmark"],
    )
    adata = build_bundle(config, progress=lambda message: None)
    add_trust_checks(adata, n_permutations=50, seed=4)
    return save_bundle(adata, folder / "bundle.h5ad")


def _formatted(value) -> set[str]:
    value = float(value)
    if value.is_integer():
        return {str(int(value))}
    return {f"{value:.3g}"}


def test_every_number_in_the_methods_round_trips_from_the_bundle(bundle_path):
    adata = load_bundle(bundle_path)
    digest = file_sha256(bundle_path)
    text = methods_text(adata, bundle_hash=digest)
    paragraph = text.split("\n\n")[1]
    uns = adata.uns["radmap"]
    provenance, params = uns["provenance"], uns["params"]
    table = uns["associations"]

    body, software = paragraph.split(" Software: ")
    packages = ", ".join(f"{k} {v}" for k, v in sorted(provenance["packages"].items()))
    assert software == f"{packages}. Bundle SHA-256: {digest}."
    head = f"radmap {provenance['radmap_version']} (Python {provenance['python']})"
    assert head in body
    body = body.replace(head, "")

    features = uns["features"]
    expected = {
        adata.n_obs,
        adata.n_vars,
        params["preprocess"]["n_genes_in"],
        params["modules"]["n_network_genes"],
        params["modules"]["power"],
        params["modules"]["deep_split"],
        params["modules"]["min_module_size"],
        params["modules"]["merge_cut_height"],
        adata.obsm["eigengenes"].shape[1],
        int((adata.var["module"].astype(str) == "unassigned").sum()),
        len(features),
        *features["type"].value_counts().tolist(),
        int(table["p"].notna().sum()),
        int(table["n"].min()),
        int(table["n"].max()),
        int((table["q"] < 0.05).sum()),
        0.05,
        provenance["seed"],
        *[uns["null"][k] for k in ("n_permutations", "seed", "observed_links", "alpha")],
        uns["null"]["expected_false_links"],
        uns["null"]["empirical_fdr"],
        *[uns["gene_null"][k] for k in ("n_permutations", "observed_links", "alpha")],
        uns["gene_null"]["expected_false_links"],
        int(table["size_surrogate"].sum()),
        int(table["one_patient"].sum()),
        len(uns["gene_n"]),
        min(uns["gene_n"]),
        max(uns["gene_n"]),
        2014,  # Benjamini & Bogomolov (2014)
        *table[table["p"].notna()].groupby("family").size().tolist(),
    }
    survival = uns["survival"][uns["survival"]["p"].notna()]
    if len(survival):
        expected |= {
            len(survival),
            int(survival["n"].min()),
            int(survival["n"].max()),
            int(survival["events"].max()),
        }
    allowed = set().union(*(_formatted(v) for v in expected if np.isfinite(float(v))))
    numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?", body)
    assert numbers
    assert set(numbers) <= allowed, set(numbers) - allowed
    # and the key facts are stated, not just allowed
    assert f"of {adata.n_obs} patients" in body
    assert "log-rank tests and Cox models" in body
    for family, count in table[table["p"].notna()].groupby("family").size().items():
        assert f"{family} ({count} tests)" in body
    assert f"permuted against expression {uns['null']['n_permutations']} times" in body
    assert f"gene map was permuted {uns['gene_null']['n_permutations']} times" in body
    assert f"(size surrogates): {int(table['size_surrogate'].sum())}" in body
    assert "original_shape_VoxelVolume" in body


def test_checklist_says_what_was_and_was_not_done(bundle_path):
    text = methods_text(load_bundle(bundle_path))
    assert "[x] Permutation null of the module map" in text
    assert "[x] Tumour-size check of every link" in text
    assert "[ ] Replication in an independent cohort" in text
    assert "[ ] Covariates adjusted for" in text


def test_cli_prints_the_methods_with_the_bundle_hash(bundle_path, capsys):
    assert main(["methods", str(bundle_path)]) == 0
    out = capsys.readouterr().out
    assert file_sha256(bundle_path) in out and out.startswith("Methods")
    assert main(["methods", str(bundle_path.parent / "missing.h5ad")]) == 2
