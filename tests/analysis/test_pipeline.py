"""The whole pipeline against planted truth from the seeded synthetic generator."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import bundle, datasets, io
from radmap.analysis.pipeline import Config, build_bundle, run, write_outputs
from radmap.analysis.validate import InputError
from sklearn.metrics import adjusted_rand_score


@pytest.fixture(scope="module")
def cohort():
    return datasets.synthetic(n_patients=130, n_genes=1000, n_features=30, seed=7)


@pytest.fixture(scope="module")
def files(cohort, tmp_path_factory):
    return datasets.write_cohort(cohort, tmp_path_factory.mktemp("cohort"))


def _config(files, out, **options) -> Config:
    return Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        clinical=files["clinical"],
        survival_time="Survival time (days)",
        survival_event="Event",
        out=out,
        min_module_size=20,
        gene_sets=["hallmark"],
        **options,
    )


VIEWER = "https://viewer.example.org/series?patient={patient}"


@pytest.fixture(scope="module")
def adata(files, tmp_path_factory):
    config = _config(files, tmp_path_factory.mktemp("out"), viewer_url=VIEWER)
    return build_bundle(config, progress=lambda m: None)


def test_the_viewer_url_template_is_kept_in_the_bundle(adata):
    assert adata.uns[bundle.UNS_KEY]["viewer_url"] == VIEWER


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://viewer.example.org/{patient}",
        "https://viewer.example.org/series",
        "https://viewer.example.org/{patient}/{study}",
        "https://viewer.example.org/ {patient}",
        42,
    ],
)
def test_a_viewer_url_without_one_patient_placeholder_is_refused(bad):
    with pytest.raises(InputError, match="viewer_url"):
        Config().updated({"viewer_url": bad}, origin="radmap.toml")


def _module_of_planted(adata, truth) -> pd.Series:
    planted = truth["gene_module"]
    planted = planted[planted != "none"]
    genes = planted.index.intersection(adata.var_names)
    return planted[genes], adata.var.loc[genes, "module"].astype(str)


def test_modules_recover_planted_truth(adata, cohort):
    planted, found = _module_of_planted(adata, cohort.truth)
    assert len(planted) > 100
    assert adjusted_rand_score(planted, found) >= 0.8


def _found_module(adata, truth, planted_module: str) -> str:
    planted, found = _module_of_planted(adata, truth)
    return found[planted == planted_module].mode().iloc[0]


def test_planted_links_found_and_null_features_at_nominal_rate(adata, cohort):
    table = adata.uns[bundle.UNS_KEY]["associations"]
    links = cohort.truth["links"]
    for row in links.itertuples():
        module = _found_module(adata, cohort.truth, row.module)
        hit = table[(table["module"] == module) & (table["feature"] == row.feature)]
        assert len(hit) == 1
        assert hit["q"].iloc[0] < 0.05, (row.module, row.feature, hit)
    null = table[table["feature"].isin(cohort.truth["null_features"])]
    assert len(null) > 0
    assert (null["p"] < 0.05).mean() <= 0.10


def test_enrichment_names_the_planted_gene_set(adata, cohort):
    enrichment = adata.uns[bundle.UNS_KEY]["enrichment"]
    for planted_module, term in cohort.truth["module_terms"].items():
        module = _found_module(adata, cohort.truth, planted_module)
        top = enrichment[enrichment["module"] == module].sort_values("p")
        assert top["term"].iloc[0] == term


def test_planted_mutation_link_and_survival_effect(adata, cohort):
    uns = adata.uns[bundle.UNS_KEY]
    mutation, feature = cohort.truth["mutation_link"]
    mi = uns["mutation_imaging"]
    hit = mi[(mi["mutation"] == mutation) & (mi["feature"] == feature)]
    assert hit["q"].iloc[0] < 0.05
    survival = uns["survival"]
    module = _found_module(adata, cohort.truth, cohort.truth["survival_module"])
    cox = survival[(survival["variable"] == module) & (survival["test"] == "cox")]
    assert cox["q"].iloc[0] < 0.05


def test_gene_level_arrays_follow_the_contract(adata):
    uns = adata.uns[bundle.UNS_KEY]
    n_features = len(uns["gene_features"])
    for key in bundle.GENE_STAT_KEYS:
        assert adata.varm[key].shape == (adata.n_vars, n_features)
    q = adata.varm[bundle.GENE_Q]
    p = adata.varm[bundle.GENE_P]
    finite = np.isfinite(p)
    assert (q[finite] >= p[finite] - 1e-6).all()
    assert set(uns["features"].index) == set(uns["gene_features"])


def test_same_seed_gives_identical_bundle_tables(files, tmp_path):
    first = build_bundle(_config(files, tmp_path / "a"), progress=lambda m: None)
    second = build_bundle(_config(files, tmp_path / "b"), progress=lambda m: None)
    for name in ("associations", "enrichment", "modules", "survival"):
        pd.testing.assert_frame_equal(first.uns["radmap"][name], second.uns["radmap"][name])
    assert (first.var["module"] == second.var["module"]).all()


def test_run_writes_bundle_and_tables_with_provenance(files, tmp_path):
    path = run(_config(files, tmp_path / "out"), progress=lambda m: None)
    loaded = io.load_bundle(path)
    provenance = loaded.uns["radmap"]["provenance"]
    assert provenance["format_version"] == bundle.FORMAT_VERSION
    assert io.file_sha256(files["expression"]) in provenance["inputs"]
    tables = sorted(p.name for p in (tmp_path / "out" / "tables").iterdir())
    assert "associations.csv" in tables and "gene_top_hits.csv" in tables
    hits = pd.read_csv(tmp_path / "out" / "tables" / "gene_top_hits.csv")
    assert {"feature", "gene", "p", "q"} <= set(hits.columns)
    hidden = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("."))
    assert len(hidden) == 2 and hidden[0] == ".current", "only the current results, no leftovers"


def _snapshot(folder) -> dict[str, bytes]:
    """Every visible file under ``folder`` (through the links), by relative path."""
    found = {}
    for root, folders, files in os.walk(folder, followlinks=True):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            if not name.startswith("."):
                path = Path(root) / name
                found[str(path.relative_to(folder))] = path.read_bytes()
    return found


def test_outputs_are_replaced_together_or_not_at_all(adata, tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_outputs(adata, out)
    before = _snapshot(out)
    assert "tables/associations.csv" in before and "bundle.h5ad" in before

    changed = adata.copy()
    changed.uns["radmap"]["warnings"] = [*changed.uns["radmap"]["warnings"], "second run"]

    def disk_full(*args, **kwargs):
        raise InputError("cannot write bundle.h5ad: No space left on device")

    monkeypatch.setattr(io, "save_bundle", disk_full)
    with pytest.raises(InputError, match="No space left"):
        write_outputs(changed, out)
    assert _snapshot(out) == before, "a failed write changed the earlier results"

    monkeypatch.undo()
    write_outputs(changed, out)
    after = _snapshot(out)
    assert after["tables/warnings.txt"].decode().rstrip().endswith("second run")
    assert sorted(after) == sorted(before)
    assert len([p for p in out.iterdir() if p.name.startswith(".")]) == 2, "old results gone"


def test_a_stop_whose_signal_was_swallowed_still_keeps_the_results_unpublished(
    adata, tmp_path, monkeypatch
):
    """SIGTERM's KeyboardInterrupt can be lost inside a finaliser; the recorded request is not."""
    out = tmp_path / "out"
    write_outputs(adata, out)
    before = _snapshot(out)
    monkeypatch.setattr(io.files, "_stop", type(io.files._stop)())
    io.files.request_stop()
    with pytest.raises(KeyboardInterrupt):
        write_outputs(adata[:, : adata.n_vars // 2].copy(), out)
    assert _snapshot(out) == before, "a stopped run replaced the earlier results"
    with pytest.raises(KeyboardInterrupt):
        io.files.atomic_write_text(tmp_path / "note.txt", "late")
    assert not any(tmp_path.glob("*note.txt*")), "no file, not even a temporary one"


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write(adata, tmp_path):
    out = tmp_path / "out"
    stale = [out / ".tables-k1ll3d" / "associations.csv", out / ".bundle.h5ad.x1y2.tmp.h5ad"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half written")
    (out / ".notes-of-the-user").write_text("not ours")
    write_outputs(adata, out)
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith(".results-"))
    assert names == [".current", ".notes-of-the-user", "bundle.h5ad", "tables"]


def test_too_little_overlap_is_a_clear_error(files, tmp_path):
    imaging = pd.read_csv(files["imaging"])
    imaging.iloc[:, 0] = [f"OTHER-{i}" for i in range(len(imaging))]
    other = tmp_path / "other_imaging.csv"
    imaging.to_csv(other, index=False)
    config = _config(files, tmp_path / "out")
    config.imaging = [other]
    with pytest.raises(
        InputError, match=r"only 0 patient IDs are shared by expression \(expression.csv\)"
    ):
        build_bundle(config, progress=lambda m: None)
    assert not (tmp_path / "out").exists()


def test_pseudonymised_bundle_carries_no_patient_id_and_no_key(files, tmp_path):
    key = tmp_path / "key.txt"
    key.write_text("0123456789abcdef-secret-study-key\n")
    original = set(pd.read_csv(files["imaging"]).iloc[:, 0].astype(str).str.upper())
    config = _config(files, tmp_path / "out", pseudonymise_key=key, viewer_url=VIEWER)
    path = run(config, progress=lambda m: None)
    adata = io.load_bundle(path)
    assert "viewer_url" not in adata.uns[bundle.UNS_KEY]  # pseudonyms mean nothing to a viewer
    assert all(name.startswith("P") and len(name) == 13 for name in adata.obs_names)
    assert not original & set(adata.obs_names)
    raw = path.read_bytes()
    assert b"secret-study-key" not in raw
    for patient in list(original)[:20]:
        assert patient.encode() not in raw
    for table in (tmp_path / "out" / "tables").iterdir():
        text = table.read_text()
        assert not any(patient in text for patient in original), table.name
    again = build_bundle(
        _config(files, tmp_path / "again", pseudonymise_key=key), progress=lambda m: None
    )
    assert list(again.obs_names) == list(adata.obs_names)


def test_short_pseudonymisation_key_is_refused(files, tmp_path):
    key = tmp_path / "key.txt"
    key.write_text("short")
    with pytest.raises(InputError, match="at least 16 bytes"):
        build_bundle(_config(files, tmp_path / "out", pseudonymise_key=key), progress=print)
