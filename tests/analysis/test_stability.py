"""Bootstrap stability of modules and links (radmap.analysis.stability)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import datasets
from radmap.analysis.pipeline import Config, build_bundle
from radmap.analysis.stability import bootstrap_stability
from radmap.analysis.validate import InputError
from scipy import stats


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    cohort = datasets.synthetic(
        n_patients=120, n_genes=400, n_features=20, n_modules=3, module_size=30, seed=5
    )
    files = datasets.write_cohort(cohort, tmp_path_factory.mktemp("stability"))
    config = Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        min_module_size=20,
        gene_sets=["hallmark"],
    )
    return cohort, build_bundle(config, progress=lambda message: None)


def test_planted_modules_and_links_are_stable_and_background_is_not(study):
    cohort, adata = study
    result = bootstrap_stability(adata, n_bootstraps=8, seed=1)
    modules = result["modules"]
    planted = cohort.truth["gene_module"].reindex(adata.var_names)
    found = adata.var["module"].astype(str)
    planted_modules = [m for m in modules.index if (planted[found == m] != "none").mean() > 0.8]
    assert len(planted_modules) == 3
    assert (modules.loc[planted_modules, "jaccard_median"] > 0.8).all()
    assert (modules["jaccard_background"] < 0.2).all()
    assert (modules["jaccard_min"] <= modules["jaccard_median"]).all()
    links = result["links"]
    significant = links[links["significant_full"]]
    null = links[links["feature"].isin(cohort.truth["null_features"])]
    assert len(significant) >= 2
    assert significant["stability"].median() >= 0.6
    assert null["stability"].mean() < 0.1
    assert result["summary"]["n_bootstraps"] == 8


def test_bad_count_is_reported(study):
    with pytest.raises(InputError, match="n_bootstraps"):
        bootstrap_stability(study[1], n_bootstraps=0)


@pytest.mark.slow
def test_same_result_serially_and_on_a_two_worker_local_cluster(study):
    _, adata = study
    serial = bootstrap_stability(adata, n_bootstraps=4, seed=2)
    dask = bootstrap_stability(adata, n_bootstraps=4, seed=2, scheduler="local", n_workers=2)
    pd.testing.assert_frame_equal(serial["modules"], dask["modules"])
    pd.testing.assert_frame_equal(serial["links"], dask["links"])


def test_resamples_skip_the_power_scan_and_find_the_same_modules(study):
    """Bootstraps reuse the full data's power: without the scale-free scan the modules are
    the same, and the soft-threshold table is empty."""
    from radmap.analysis.modules import find_modules

    _, adata = study
    power = int(adata.uns["radmap"]["params"]["modules"]["power"])
    scanned, unscanned = adata.copy(), adata.copy()
    with_scan = find_modules(scanned, power=power, min_module_size=20)
    without = find_modules(unscanned, power=power, min_module_size=20, scan_powers=False)
    assert len(with_scan["soft_threshold"]) > 0 and without["soft_threshold"].empty
    pd.testing.assert_series_equal(scanned.var["module"], unscanned.var["module"])
    assert without["power"] == power


def test_resampled_map_is_corrected_within_the_maps_families():
    from radmap.analysis.stability import rank_map

    rng = np.random.default_rng(4)
    n = 60
    eigengenes = pd.DataFrame({"M1": rng.normal(size=n)}, index=[f"p{i}" for i in range(n)])
    noise = rng.normal(size=(n, 200))
    imaging = pd.DataFrame(noise, index=eigengenes.index, columns=[f"r{i}" for i in range(200)])
    imaging["semantic"] = 0.35 * eigengenes["M1"] + rng.normal(size=n)
    types = dict.fromkeys(imaging.columns, "continuous")
    rho, p = stats.spearmanr(imaging["semantic"], eigengenes["M1"])
    assert 0.05 / 201 < p < 0.05  # passes alone, not among 201 tests

    whole, _ = rank_map(eigengenes, imaging, types, alpha=0.05)
    families = {f: "radiomic" for f in imaging.columns} | {"semantic": "semantic"}
    by_family, sign = rank_map(eigengenes, imaging, types, alpha=0.05, families=families)
    assert not whole.loc["M1", "semantic"]
    assert by_family.loc["M1", "semantic"] and sign.loc["M1", "semantic"] == np.sign(rho)
