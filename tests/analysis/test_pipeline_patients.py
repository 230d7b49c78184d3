"""Issue 10 end to end: each analysis on its own patients, multi-valued and sparse features,
families, named measures, module names, filtered genes and the bundle format."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from radmap.analysis import bundle, datasets, io
from radmap.analysis.associate import SIGNED_MEASURES
from radmap.analysis.pipeline import Config, build_bundle, write_outputs
from radmap.analysis.validate import InputError


@pytest.fixture(scope="module")
def cohort():
    return datasets.synthetic(
        n_patients=110, n_genes=400, n_features=26, n_modules=4, module_size=25, seed=5,
        n_imaging_only=40, annotations=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(cohort, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    files = datasets.write_cohort(cohort, folder)
    expression = pd.read_csv(files["expression"], index_col=0)
    expression.iloc[:3, :] = np.nan  # three genes with no values at all
    expression.to_csv(files["expression"])
    config = Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        clinical=files["clinical"],
        survival_time="Survival time (days)",
        survival_event="Event",
        gene_sets=["hallmark"],
        out=folder / "out",
    )
    adata = build_bundle(config, progress=lambda message: None)
    return adata, write_outputs(adata, folder / "out"), expression


def test_every_analysis_uses_every_patient_with_its_data(built, cohort):
    adata, _, _ = built
    uns = adata.uns[bundle.UNS_KEY]
    sequenced = set(cohort.expression.columns)
    assert set(adata.obs_names) == sequenced
    assert set(uns[bundle.NO_EXPRESSION_IMAGING].index) == set(cohort.truth["imaging_only"])
    used = uns["analysis_patients"].set_index("analysis")["n_patients"]
    assert used["module x feature"] <= 110 < used["mutation x imaging"]
    assert used["imaging x survival"] > 110 >= used["module x survival"]
    mutation = uns["mutation_imaging"]
    egfr = mutation[(mutation["mutation"] == "EGFR") & (mutation["feature"] == "attenuation")]
    status = cohort.clinical["EGFR"].isin(["Mutant", "Wildtype"])
    expected = (status & cohort.imaging["attenuation"].notna()).sum()
    assert int(egfr["n"].iloc[0]) == expected > 110
    survival = uns["survival"]
    assert int(survival.loc[survival["variable"] == "EGFR", "n"].iloc[0]) > 110
    assert (pd.to_numeric(uns["associations"]["n"]) <= 110).all()


def test_multi_valued_and_sparse_features(built, cohort):
    adata, _, _ = built
    uns = adata.uns[bundle.UNS_KEY]
    features = uns["features"]
    indicators = features[features["parent"] == datasets.FINDINGS_FEATURE]
    assert len(indicators) >= 3 and set(indicators["type"]) == {"binary"}
    assert datasets.FINDINGS_FEATURE not in adata.obsm[bundle.IMAGING_KEY].columns
    assert datasets.FINDINGS_FEATURE in uns[bundle.MULTI_VALUED].columns
    # the rare level of the sparse feature is left out, and the warnings say so
    rare = adata.obsm[bundle.IMAGING_KEY][datasets.SPARSE_FEATURE[0]].eq("polygonal").sum()
    assert 0 < rare < 5
    assert any(
        datasets.SPARSE_FEATURE[0] in w and "polygonal" in w and "left out" in w
        for w in uns["warnings"]
    )
    assert features.loc["attenuation", "order"] == "vocabulary"
    assert features.loc["attenuation", "type"] == "ordinal"


def test_families_measures_power_and_labels(built):
    adata, _, _ = built
    uns = adata.uns[bundle.UNS_KEY]
    associations = uns["associations"]
    assert set(associations["family"]) == {"module map: semantic", "module map: radiomic"}
    assert set(associations["effect_measure"]) <= {"rho", "hedges_g", "epsilon_squared"}
    for name in ("mutation_imaging", "mutation_modules", "survival"):
        assert (uns[name]["family"] != "").all(), name
    assert "effect_measure" in uns["mutation_imaging"] and "q_analysis" in uns["mutation_imaging"]
    assert {"module map: semantic", "module map: radiomic"} == set(uns["power"]["family"])
    assert (pd.to_numeric(uns["power"]["detectable_effect"]) > 0).all()
    assert adata.varm[bundle.GENE_Q_MAP].shape == adata.varm[bundle.GENE_Q].shape
    q_map = np.asarray(adata.varm[bundle.GENE_Q_MAP], dtype=float)
    q_feature = np.asarray(adata.varm[bundle.GENE_Q], dtype=float)
    assert np.nansum(q_map < 0.05) <= np.nansum(q_feature < 0.05)
    modules = uns["modules"]
    named = modules["top_pathway"] != ""
    assert (pd.to_numeric(modules.loc[named, "top_pathway_q"]) <= 0.05).all()
    assert modules.loc[~named, "label"].str.startswith("hubs: ").all()
    assert set(uns["features"]["effect_measure"].replace("", np.nan).dropna()) <= {
        "rho",
        "hedges_g",
        "epsilon_squared",
    }
    assert "rho" in SIGNED_MEASURES and "epsilon_squared" not in SIGNED_MEASURES


def test_filtered_genes_say_why(built):
    adata, _, expression = built
    filtered = adata.uns[bundle.UNS_KEY]["filtered_genes"].set_index("gene")["reason"]
    for gene in expression.index[:3]:
        assert gene not in adata.var_names
        assert "missing" in filtered[gene]


def test_bundle_round_trip_and_old_format_refused(built, tmp_path):
    adata, path, _ = built
    loaded = io.load_bundle(path)
    others = loaded.uns[bundle.UNS_KEY][bundle.NO_EXPRESSION_IMAGING]
    original = adata.uns[bundle.UNS_KEY][bundle.NO_EXPRESSION_IMAGING]
    pd.testing.assert_frame_equal(others, original, check_dtype=False)
    imaging, clinical = io.all_patients(loaded)
    assert len(imaging) == len(clinical) == 150
    assert isinstance(imaging["attenuation"].dtype, pd.CategoricalDtype)
    old = tmp_path / "old.h5ad"
    old.write_bytes(path.read_bytes())
    with h5py.File(old, "r+") as handle:
        del handle["uns/radmap/format_version"]
        handle["uns/radmap"].create_dataset("format_version", data="radmap-bundle/1")
    with pytest.raises(InputError, match="format radmap-bundle/1.*re-run"):
        io.load_bundle(old)
