"""The trust checks inside `radmap analyze` (build_bundle) and in its outputs."""

from __future__ import annotations

import pandas as pd
import pytest
from radmap.analysis import datasets
from radmap.analysis.pipeline import Config, build_bundle, run
from radmap.analysis.validate import InputError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    cohort = datasets.synthetic(
        n_patients=120, n_genes=400, n_features=20, n_modules=3, module_size=30, size_driven=True
    )
    return cohort, datasets.write_cohort(cohort, tmp_path_factory.mktemp("trust"))


def _config(files, **options) -> Config:
    return Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        min_module_size=20,
        gene_sets=["hallmark"],
        **options,
    )


def test_analyze_runs_the_checks_by_default_and_writes_them(files, tmp_path):
    cohort, paths = files
    messages = []
    path = run(_config(paths, out=tmp_path, permutations=99), progress=messages.append)
    assert any("expected by chance (99 permutations" in m for m in messages)
    table = pd.read_csv(tmp_path / "tables" / "associations.csv", keep_default_na=False)
    for column in ("perm_p", "perm_q", "q_size_adjusted", "size_surrogate", "influence"):
        assert column in table.columns
    assert (table["perm_p"].astype(float) >= 1 / 100).all()
    methods = (tmp_path / "tables" / "methods.txt").read_text()
    assert "permuted against expression 99 times" in methods
    link = cohort.truth["size_link"]
    flagged = table[table["flags"].str.contains("size surrogate")]
    assert link["feature"] in set(flagged["feature"])
    from radmap.analysis.io import load_bundle

    uns = load_bundle(path).uns["radmap"]
    assert uns["null"]["n_permutations"] == 99
    assert uns["size_check"]["size_feature"] == datasets.SIZE_FEATURE
    assert "stability" not in uns


def test_checks_can_be_switched_off_and_bootstraps_on(files):
    _, paths = files
    adata = build_bundle(
        _config(paths, permutations=0, bootstraps=3, scheduler="serial"),
        progress=lambda message: None,
    )
    uns = adata.uns["radmap"]
    assert "null" not in uns and "perm_p" not in uns["associations"]
    assert uns["stability"]["n_bootstraps"] == 3
    stability = uns["associations"]["stability"]
    assert stability.between(0, 1).all()
    assert (uns["modules"]["jaccard_median"] > uns["modules"]["jaccard_background"]).all()


def test_bad_trust_options_fail_before_any_work(files):
    _, paths = files
    for options, message in (
        ({"permutations": -1}, "permutations"),
        ({"workers": 0}, "workers"),
        ({"scheduler": "somewhere"}, "scheduler"),
    ):
        with pytest.raises(InputError, match=message):
            build_bundle(_config(paths, **options), progress=lambda m: None)


def test_notebook_tools_trust_and_stability(files):
    import radmap

    _, paths = files
    adata = build_bundle(_config(paths, permutations=0), progress=lambda message: None)
    assert "null" not in adata.uns["radmap"]
    checked = radmap.tl.trust(adata, n_permutations=30, seed=2, copy=True)
    assert "null" not in adata.uns["radmap"]  # copy=True leaves the input alone
    uns = checked.uns["radmap"]
    assert uns["null"]["n_permutations"] == 30 and uns["params"]["trust"]["seed"] == 2
    assert "perm_p" in uns["associations"] and "flags" in uns["associations"]
    assert radmap.tl.stability(checked, n_bootstraps=2, scheduler="serial") is None
    radmap.tl.trust(checked, n_permutations=0, acquisition=["nodule_shape"])
    assert uns["acquisition_check"]["covariates"] == "nodule_shape"
    assert "acquisition_confounded" in uns["associations"]
    with pytest.raises(InputError, match="acquisition covariate 'scanner'"):
        radmap.tl.trust(checked, n_permutations=0, acquisition=["scanner"])
    assert uns["stability"]["n_bootstraps"] == 2
    bare = radmap.read(expression=paths["expression"], imaging=[paths["imaging"]])
    with pytest.raises(InputError, match="radmap.tl.modules"):
        radmap.tl.trust(bare)


def test_analyze_runs_the_gene_null_and_adjusted_nulls_follow_adjust_for(files):
    _, paths = files
    messages: list[str] = []
    config = _config(paths, permutations=40, gene_permutations=20, adjust_for=["Age"])
    config.clinical = paths["clinical"]
    adata = build_bundle(config, progress=messages.append)
    uns = adata.uns["radmap"]
    assert any("gene links at map q < 0.05" in m for m in messages)
    assert uns["gene_null"]["n_permutations"] == 20 and uns["gene_null"]["adjusted"]
    assert uns["null"]["adjusted_for"] == "Age"
    table = uns["gene_null_features"]
    assert list(table.columns) == ["feature", "observed", "expected", "n_genes"]
    assert set(table["feature"]) <= set(adata.obsm["imaging"].columns)
    assert (
        "gene_null"
        not in build_bundle(
            _config(paths, permutations=0, gene_permutations=0), progress=lambda m: None
        ).uns["radmap"]
    )


def test_stability_runs_by_default_on_networks_it_can_afford(files, monkeypatch):
    from radmap.analysis.pipeline import AUTO_BOOTSTRAP_MAX_GENES, bootstrap_count

    _, paths = files
    monkeypatch.setenv("RADMAP_AUTO_BOOTSTRAPS", "3")
    messages: list[str] = []
    adata = build_bundle(
        _config(paths, permutations=0, gene_permutations=0, scheduler="serial"),
        progress=messages.append,
    )
    assert adata.uns["radmap"]["stability"]["n_bootstraps"] == 3
    assert any("3 resamples of the 400-gene network" in m for m in messages)
    assert "stability" in adata.uns["radmap"]["associations"]
    large = adata.copy()
    large.uns["radmap"]["params"]["modules"]["n_network_genes"] = AUTO_BOOTSTRAP_MAX_GENES + 1
    count, reason = bootstrap_count("auto", large)
    assert count == 0 and "--bootstraps 100 runs it" in reason
    assert bootstrap_count(7, large) == (7, "")
    from radmap.analysis.pipeline import gene_permutation_count

    n_cells = adata.n_vars * adata.obsm["imaging"].shape[1]
    assert n_cells < 1_000_000 and gene_permutation_count("auto", adata) == 100
    monkeypatch.setattr("radmap.analysis.pipeline.AUTO_GENE_CELLS", 25 * n_cells)
    assert gene_permutation_count("auto", adata) == 25  # a budget of 25 maps of this size
    monkeypatch.setattr("radmap.analysis.pipeline.AUTO_GENE_CELLS", n_cells)
    assert gene_permutation_count("auto", adata) == 20  # never fewer
    assert gene_permutation_count(5, adata) == 5
    with pytest.raises(InputError, match="bootstraps"):
        build_bundle(_config(paths, bootstraps="many"), progress=lambda m: None)
