"""The `radmap` command end to end: the real demo data, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from radmap.analysis import bundle, datasets, io


def radmap(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radmap.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    data = datasets.demo_data_dir()
    out = tmp_path_factory.mktemp("demo") / "results"
    result = radmap(
        "analyze",
        "--expression", data / "expression_top1000_log10fpkm_zscore.csv",
        "--imaging", data / "radiomics_pyradiomics_n116.csv",
        "--aim-dir", data / "aim_xml",
        "--clinical", data / "clinical_tcia.csv",
        "--derive-survival",
        "--scale", "zscore",
        "--min-module-size", "20",
        "--out", out,
    )  # fmt: skip
    return result, out


def test_analyze_demo_end_to_end(demo_run):
    result, out = demo_run
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stderr and "done in" in result.stderr
    adata = io.load_bundle(out / "bundle.h5ad")
    uns = adata.uns[bundle.UNS_KEY]
    assert adata.n_obs >= 100  # RNA-seq with AIM or radiomics
    assert adata.n_vars > 900
    imaging = adata.obsm[bundle.IMAGING_KEY]
    assert "Nodule Attenuation" in imaging.columns
    assert any(c.startswith("original_shape_") for c in imaging.columns)
    assert set(uns["features"]["source"]) >= {"semantic", "radiomic"}
    assert adata.obsm[bundle.EIGENGENES_KEY].shape[1] >= 2
    assert {"EGFR", "KRAS"} <= set(adata.obs.columns)
    assert not any("Date" in c for c in adata.obs.columns)  # identifiers left out
    assert len(uns["survival"]) > 0
    assert len(uns["enrichment"]) > 0
    assert (out / "tables" / "matching.csv").is_file()


def test_help_documents_every_option():
    result = radmap("analyze", "--help")
    assert result.returncode == 0
    for option in ("--expression", "--imaging", "--aim-dir", "--clinical", "--config", "--out"):
        assert option in result.stdout


def test_n_top_genes_takes_a_number_or_all():
    from radmap.cli import build_parser

    def parsed(*options: str):
        return build_parser().parse_args(["analyze", "--expression", "e.csv", *options])

    assert parsed("--n-top-genes", "all").n_top_genes == "all"
    assert parsed("--n-top-genes", "800", "--max-block-size", "9000").n_top_genes == 800
    with pytest.raises(SystemExit):
        parsed("--n-top-genes", "many")


def test_missing_file_is_exit_2_with_one_line(tmp_path):
    result = radmap(
        "analyze", "--expression", tmp_path / "nope.csv", "--imaging", tmp_path / "x.csv",
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("radmap: error:")]
    assert errors == [lines[-1]] and "nope.csv" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "bundle.h5ad").exists()


def test_bad_config_key_names_the_key(tmp_path):
    config = tmp_path / "radmap.toml"
    config.write_text('[inputs]\nexpresion = "x.csv"\n')
    result = radmap("analyze", "--config", config)
    assert result.returncode == 2
    assert "expresion" in result.stderr


def test_config_file_paths_are_relative_to_it(tmp_path, demo_run):
    _, out = demo_run
    data = datasets.demo_data_dir()
    config = tmp_path / "radmap.toml"
    config.write_text(
        f'[inputs]\nexpression = "{data / "expression_top1000_log10fpkm_zscore.csv"}"\n'
        f'aim_dir = "{data / "aim_xml"}"\nout = "res"\n[modules]\nmin_module_size = 20\n'
        'gene_sets = ["hallmark"]\n'
    )
    result = radmap("analyze", "--config", config)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "res" / "bundle.h5ad").is_file()


def test_serve_rejects_a_foreign_file(tmp_path):
    fake = tmp_path / "bundle.h5ad"
    fake.write_text("not hdf5")
    result = radmap("serve", fake)
    assert result.returncode == 2
    assert "bundle.h5ad" in result.stderr and "Traceback" not in result.stderr
