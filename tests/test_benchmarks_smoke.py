"""The benchmark suite's smoke run: S cohort, no peers, JSON and Markdown written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("read", "preprocess", "modules", "associations", "enrichment", "survival", "write")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    out = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--sizes", "S", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    reports = sorted(out.glob("*.json"))
    assert len(reports) == 1, [p.name for p in out.iterdir()]
    return json.loads(reports[0].read_text()), (out / "latest.md").read_text(), completed.stdout


@pytest.mark.slow
def test_json_has_every_stage_with_positive_time(smoke_run):
    results, _, _ = smoke_run
    small = results["sizes"]["S"]
    assert (small["patients"], small["genes"], small["features"]) == (130, 1000, 30)
    for stage in STAGES:
        assert small["stages"][stage] > 0, stage
    assert small["cli_stages"], "no stage lines parsed from radmap analyze"
    for stage in small["cli_stages"]:
        assert stage["seconds"] > 0, stage
        assert stage["reported"] >= 0, stage
    assert sum(small["stages"].values()) <= small["analyze_wall_seconds"]
    assert small["analyze_reported_seconds"] <= small["analyze_wall_seconds"]
    assert 50 < small["peak_rss_mb"] < 8000
    assert small["matmul_floor_seconds"] > 0
    assert small["gene_stage_over_floor"] > 1


@pytest.mark.slow
def test_smoke_skips_peers_and_checks_associations(smoke_run):
    results, _, _ = smoke_run
    assert results["options"] == {
        "sizes": ["S"],
        "smoke": True,
        "peers": False,
        "repeat": 1,
        "peer_genes": [5000, 10000, 20000],
        "whole": False,
    }
    assert "head_to_head" not in results
    check = results["associations"]
    assert check["max_abs_p_difference"] < 1e-8
    assert check["nan_mismatches"] == 0
    assert all(count > 0 for count in check["scipy_features_by_type"].values())
    assert check["associate_seconds"] > 0 and check["speedup_over_scipy"] > 1
    statuses = [t["status"] for t in results["targets"]]
    # the association check runs in a smoke run: its exact-p floor ratio is the one figure
    assert statuses == ["not measured"] * 3 + [statuses[3]] + ["not measured"] * 4
    assert statuses[3] in ("PASS", "MISS")
    assert "exact-p floor" in results["targets"][3]["target"]
    machine = results["machine"]
    assert machine["nproc"] >= 1 and machine["ram_gb"] > 0


@pytest.mark.slow
def test_markdown_lists_every_stage_with_positive_time(smoke_run):
    results, report, printed = smoke_run
    assert report.strip() in printed
    for stage in STAGES:
        row = re.search(rf"^\| {stage} \| ([\d.,]+) \|$", report, flags=re.MULTILINE)
        assert row, f"no row for {stage}"
        value = float(row[1].replace(",", ""))
        assert value > 0
        assert value == pytest.approx(results["sizes"]["S"]["stages"][stage], abs=0.006)
    assert "S (130 x 1,000 x 30)" in report
    assert re.search(r"^\| peak memory \(MB\) \| [\d,]+ \|$", report, flags=re.MULTILINE)
    assert "## Targets" in report


@pytest.mark.slow
def test_module_benchmark_prints_the_floor_ratio():
    completed = subprocess.run(
        [sys.executable, "benchmarks/bench_modules.py", "--patients", "60", "--genes", "2700",
         "--top-genes", "600", "--floor", "--max-block-size", "400"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    ratio = re.search(r"find_modules / floor: ([\d.]+)x wall, ([\d.]+)x CPU", completed.stdout)
    assert ratio and float(ratio[1]) > 0 and float(ratio[2]) > 0, completed.stdout
    assert re.search(r"^detection: blockwise: \d+ blocks", completed.stdout, flags=re.MULTILINE)


@pytest.mark.slow
def test_pipeline_benchmark_prints_both_modes_against_a_baseline():
    completed = subprocess.run(
        [sys.executable, "benchmarks/bench_pipeline.py", "--patients", "60", "--genes", "400",
         "--features", "8", "--n-top-genes", "200", "--modes", "checks,analysis",
         "--baseline", sys.executable],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    assert "mode 'checks' (--bootstraps 0)" in out and "mode 'analysis'" in out, out
    walls = re.findall(r"whole process, wall \(s\)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
    assert len(walls) == 2, out
    for this, baseline, ratio in walls:
        assert float(this) > 0 and float(baseline) > 0
        assert float(ratio) == pytest.approx(float(this) / float(baseline), abs=0.01)
    assert "this:     " in out and "baseline: " in out  # the null badges of both


@pytest.mark.slow
def test_read_benchmark_prints_the_pyarrow_ratio(tmp_path):
    rows = [",S-1,S-2,S-3"] + [f"G{i},{i},{i + 0.5},{2 * i}" for i in range(200)]
    (tmp_path / "e.csv").write_text("\n".join(rows) + "\n")
    completed = subprocess.run(
        [sys.executable, "benchmarks/bench_read.py", "--csv", str(tmp_path / "e.csv"),
         "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    ratio = re.search(r"read_expression\s+[\d.]+ s\s+ratio ([\d.]+)x", completed.stdout)
    assert ratio and float(ratio[1]) > 0, completed.stdout


@pytest.mark.slow
def test_subset_benchmark_prints_each_recompute_against_the_whole_cohort():
    completed = subprocess.run(
        [sys.executable, "benchmarks/bench_subset.py", "--patients", "60", "--genes", "300",
         "--features", "13", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    for name in ("module map", "volcano \\(one feature\\)", "gene page \\(whole gene map\\)"):
        row = re.search(rf"^{name}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", completed.stdout, re.M)
        assert row and float(row[1]) > 0 and float(row[3]) > 0, completed.stdout
