"""radmap benchmark suite: ``radmap analyze`` at three cohort sizes, plus head-to-head runs.

Scale suite: for each size a seeded synthetic cohort (:func:`analysis.datasets.synthetic`)
is written as CSV files (:func:`analysis.datasets.write_cohort`) and ``radmap analyze`` runs
on them in a subprocess; every stage's time comes from its progress lines, the peak memory
from the child's ``ru_maxrss``.

======  ========  =======  ========  ==========================
size    patients  genes    features  planted modules x genes
======  ========  =======  ========  ==========================
S       130       1,000    30        5 x 40
M       500       20,000   200       8 x 180
L       1,000     20,000   1,500     8 x 180
======  ========  =======  ========  ==========================

Head to head (:mod:`peers`, on the M cohort, or S with ``--smoke --peers``): module detection
by radmap, WGCNA ``blockwiseModules`` (R) and PyWGCNA on the same preprocessed top-5,000-gene
matrix; associations against a per-pair scipy.stats loop and against the bare matrix
product of the association's shape; the app's latency through ``benchmarks/bench_app.py``.

Results go to ``OUT/<timestamp>.json`` and ``OUT/latest.md`` (also printed), with PASS/MISS
for each target. ``OUT`` defaults to ``benchmarks/results``.

    .venv/bin/python benchmarks/run.py                       # S, M, L and the peers
    .venv/bin/python benchmarks/run.py --sizes S --smoke     # seconds: no peers, S only
    .venv/bin/python benchmarks/run.py --sizes M --no-peers
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (ROOT, BENCH_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402
import peers  # noqa: E402
from radmap.analysis import datasets  # noqa: E402
from radmap.analysis.bundle import SURVIVAL_EVENT, SURVIVAL_TIME  # noqa: E402


@dataclass(frozen=True)
class CohortSize:
    """One synthetic cohort shape of the scale suite."""

    name: str
    patients: int
    genes: int
    features: int
    n_modules: int
    module_size: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.patients:,} x {self.genes:,} x {self.features:,})"


SIZES = {
    "S": CohortSize("S", 130, 1_000, 30, 5, 40),
    "M": CohortSize("M", 500, 20_000, 200, 8, 180),
    "L": CohortSize("L", 1_000, 20_000, 1_500, 8, 180),
}
HEAD_TO_HEAD_SIZE = "M"
N_TOP_GENES = 5000
SEED = 0

STAGES = {
    "read": ("reading inputs", "matching samples"),
    "preprocess": ("preprocessing expression",),
    "modules": ("finding co-expressed modules",),
    "associations": (
        "module x feature associations",
        "gene x feature associations",
        "mutations x imaging and modules",
    ),
    "enrichment": ("pathway enrichment of modules",),
    "survival": ("survival",),
    "write": ("writing bundle",),
}
"""The suite's stages and the ``radmap analyze`` progress stages each one adds up."""
GENE_STAGE = "gene x feature associations"
_STAGE_KEYWORDS = (
    ("read", "read"),
    ("match", "read"),
    ("preprocess", "preprocess"),
    ("module", "modules"),
    ("associat", "associations"),
    ("enrich", "enrichment"),
    ("surviv", "survival"),
    ("writ", "write"),
)

TARGET_MODULE_SPEEDUP = 3.0
TARGET_MODULE_ARI = 0.7
TARGET_ASSOCIATION_FLOOR_MULTIPLE = 10.0
TARGET_ANALYZE_SECONDS = 60.0
TARGET_ANALYZE_BYTES = 4e9
# issue 14: each as a multiple of a baseline measured in the same run
TARGET_GENE_STAGE_OVER_EXACT_FLOOR = 1.5
TARGET_M_SECONDS = 10.0
TARGET_WHOLE_TRANSCRIPTOME_BYTES = 3.2e9
TARGET_MODULES_OVER_FLOOR = 1.5
TARGET_READ_OVER_PYARROW = 2.0
PEER_GENES = (5000, 10000, 20000)
"""Network sizes of the head-to-head module detection (top-variance genes of the M cohort)."""


def peers_at(genes: int) -> tuple[str, ...]:
    """Peers run at one network size: WGCNA blockwiseModules (R on OpenBLAS) and PyWGCNA up
    to 10,000 genes, WGCNA alone beyond (PyWGCNA's dense pandas matrices need tens of GB
    there). ``peers.py --peers wgcna_reference,wgcna_stepwise`` runs the other variants."""
    return ("wgcna", "pywgcna") if genes <= 10_000 else ("wgcna",)


_START = re.compile(r"^\[radmap [\d:]+\] (?P<name>.+?) \.\.\.\s*$")
_FINISH = re.compile(r"^\[radmap [\d:]+\] (?P<name>.+?) finished \((?P<seconds>[\d.]+) s\)\s*$")
_DONE = re.compile(r"^\[radmap [\d:]+\] done in (?P<seconds>[\d.]+) s")


# ---------------------------------------------------------------------------------------
# machine


def machine_info() -> dict:
    """CPU count and model, RAM, load, Python / numpy / BLAS versions, git commit."""
    import numpy as np
    from threadpoolctl import threadpool_info

    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    ram_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = int(line.split()[1]) / 1024**2
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    blas = [
        f"{pool['internal_api']} {pool.get('version')} ({pool['num_threads']} threads)"
        for pool in threadpool_info()
        if pool["user_api"] == "blas"
    ]
    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_model": cpu_model or platform.processor(),
        "ram_gb": round(ram_gb, 1) if ram_gb else None,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "platform": platform.platform(),
        "git_commit": commit or None,
    }


# ---------------------------------------------------------------------------------------
# scale suite


def analyze_command(
    files: dict[str, Path], out: Path, *, n_top_genes: int | str = N_TOP_GENES
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "radmap.cli",
        "analyze",
        "--expression",
        str(files["expression"]),
        "--imaging",
        str(files["imaging"]),
        "--clinical",
        str(files["clinical"]),
        "--survival-time",
        datasets.CLINICAL_FILE_COLUMNS[SURVIVAL_TIME],
        "--survival-event",
        datasets.CLINICAL_FILE_COLUMNS[SURVIVAL_EVENT],
        "--n-top-genes",
        str(n_top_genes),
        "--seed",
        str(SEED),
        # Bootstrap stability (on by default up to 5,000 genes) is timed by bench_trust.py.
        "--bootstraps",
        "0",
        "--out",
        str(out),
    ]


def parse_stages(lines: Sequence[tuple[float, str]]) -> list[dict]:
    """Stages from ``radmap analyze`` progress lines stamped by :func:`peers.run_child`.

    ``reported`` is the CLI's own figure (0.1 s resolution); ``seconds`` is the time between
    the stage's start and finish lines as seen by this process (millisecond resolution).
    """
    started: dict[str, float] = {}
    stages = []
    for stamp, line in lines:
        if match := _FINISH.match(line):
            name = match["name"]
            reported = float(match["seconds"])
            seconds = stamp - started[name] if name in started else reported
            stages.append({"name": name, "reported": reported, "seconds": seconds})
        elif match := _START.match(line):
            started[match["name"]] = stamp
    return stages


def stage_group(name: str) -> str:
    for group, names in STAGES.items():
        if name in names:
            return group
    for keyword, group in _STAGE_KEYWORDS:
        if keyword in name.lower():
            return group
    return "other"


def generate(size: CohortSize) -> datasets.SyntheticCohort:
    """The seeded synthetic cohort of one benchmark size."""
    return datasets.synthetic(
        n_patients=size.patients,
        n_genes=size.genes,
        n_features=size.features,
        n_modules=size.n_modules,
        module_size=size.module_size,
        seed=SEED,
    )


def run_size(
    size: CohortSize, workdir: Path, *, repeat: int = 1
) -> tuple[dict, datasets.SyntheticCohort]:
    """Generate, write and analyze one cohort; return its figures and the cohort.

    With ``repeat`` > 1 the fastest analyze run (wall time) gives the stage times; every
    run's wall time is kept and the peak memory is the largest of them.
    """
    print(f"[{size.name}] generating {size.label} ...", flush=True)
    started = time.perf_counter()
    cohort = generate(size)
    generate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    files = datasets.write_cohort(cohort, workdir / f"cohort_{size.name}")
    write_seconds = time.perf_counter() - started
    input_mb = sum(path.stat().st_size for path in files.values()) / 1e6
    children = []
    for attempt in range(1, repeat + 1):
        print(f"[{size.name}] running radmap analyze ({attempt}/{repeat}) ...", flush=True)
        child = peers.run_child(analyze_command(files, workdir / f"out_{size.name}"), cwd=ROOT)
        if child.returncode != 0:
            raise SystemExit(
                f"radmap analyze failed on size {size.name} (exit {child.returncode}):\n"
                f"{child.tail(30)}"
            )
        children.append(child)
    child = min(children, key=lambda run: run.wall_seconds)
    peak_rss_mb = max(run.peak_rss_mb for run in children)
    cli_stages = parse_stages(child.stderr_lines)
    grouped = dict.fromkeys(STAGES, 0.0)
    for stage in cli_stages:
        group = stage_group(stage["name"])
        grouped[group] = grouped.get(group, 0.0) + stage["seconds"]
    done = [float(m["seconds"]) for _, line in child.stderr_lines if (m := _DONE.match(line))]
    gene_stage = next((s["seconds"] for s in cli_stages if s["name"] == GENE_STAGE), None)
    n_genes = cohort.expression.shape[0]
    floor = peers.matmul_floor(n_genes, size.patients, cohort.imaging.shape[1])
    result = {
        "patients": size.patients,
        "genes": size.genes,
        "features": size.features,
        "planted_modules": size.n_modules,
        "planted_module_size": size.module_size,
        "generate_seconds": generate_seconds,
        "write_cohort_seconds": write_seconds,
        "input_mb": input_mb,
        "stages": grouped,
        "cli_stages": cli_stages,
        "analyze_reported_seconds": done[0] if done else None,
        "analyze_wall_seconds": child.wall_seconds,
        "analyze_wall_seconds_all": [run.wall_seconds for run in children],
        "peak_rss_mb": peak_rss_mb,
        "gene_stage_seconds": gene_stage,
        "matmul_floor_seconds": floor,
        "gene_stage_over_floor": gene_stage / floor if gene_stage else None,
    }
    print(
        f"[{size.name}] analyze {child.wall_seconds:.1f} s wall, peak {peak_rss_mb:.0f} MB",
        flush=True,
    )
    return result, cohort


def cohort_for(size: CohortSize, cohorts: dict) -> datasets.SyntheticCohort:
    if size.name not in cohorts:
        cohorts[size.name] = generate(size)
    return cohorts[size.name]


# ---------------------------------------------------------------------------------------
# whole transcriptome and reading (issue 14)


def whole_transcriptome(size: CohortSize, cohort: datasets.SyntheticCohort, workdir: Path) -> dict:
    """``radmap analyze --n-top-genes all`` on one cohort, then the method's floor in this
    process: one gene-gene correlation product plus one TOM numerator product
    (``A @ A.T``) on the same network (:func:`bench_modules.method_floor`)."""
    from bench_modules import method_floor

    files = _cohort_files(size, cohort, workdir)
    print(f"[{size.name}] radmap analyze --n-top-genes all ...", flush=True)
    child = peers.run_child(
        analyze_command(files, workdir / f"out_{size.name}_all", n_top_genes="all"), cwd=ROOT
    )
    if child.returncode != 0:
        return {"error": f"exit {child.returncode}: {child.tail(5)}"}
    stages = {stage["name"]: stage["seconds"] for stage in parse_stages(child.stderr_lines)}
    modules_seconds = stages.get("finding co-expressed modules")
    blocks = [line.strip() for _, line in child.stderr_lines if "block" in line.lower()]
    network = peers.network_matrix(cohort, n_top_genes=size.genes).to_numpy(dtype=np.float32)
    print(f"[{size.name}] floor: correlation + A @ A.T on {network.shape[1]} genes ...", flush=True)
    floor_wall, floor_cpu = method_floor(network)
    return {
        "genes": int(network.shape[1]),
        "analyze_wall_seconds": child.wall_seconds,
        "peak_rss_mb": child.peak_rss_mb,
        "modules_seconds": modules_seconds,
        "floor_seconds": floor_wall,
        "floor_cpu_seconds": floor_cpu,
        "modules_over_floor": modules_seconds / floor_wall if modules_seconds else None,
        "blocks": blocks[-1][:200] if blocks else "",
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def reading(size: CohortSize, cohort: datasets.SyntheticCohort, workdir: Path) -> dict:
    """``read_expression`` against a plain pyarrow CSV read of the same file, interleaved."""
    from bench_read import best_times

    path = _cohort_files(size, cohort, workdir)["expression"]
    plain, ours = best_times(path, 3)
    return {
        "megabytes": path.stat().st_size / 1e6,
        "pyarrow_seconds": plain,
        "read_expression_seconds": ours,
        "ratio": ours / plain,
    }


def _cohort_files(
    size: CohortSize, cohort: datasets.SyntheticCohort, workdir: Path
) -> dict[str, Path]:
    folder = workdir / f"cohort_{size.name}"
    paths = {name: folder / f"{name}.csv" for name in ("expression", "imaging", "clinical")}
    if not all(path.exists() for path in paths.values()):
        paths = datasets.write_cohort(cohort, folder)
    return paths


# ---------------------------------------------------------------------------------------
# app latency


def app_latency(bundle: Path | None) -> dict:
    """Run ``benchmarks/bench_app.py`` on ``bundle`` if that script exists; keep its output."""
    script = BENCH_DIR / "bench_app.py"
    if not script.exists():
        return {"status": "not run", "note": "benchmarks/bench_app.py does not exist yet"}
    help_text = subprocess.run(
        [sys.executable, script, "--help"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    command = [sys.executable, str(script)]
    if bundle is not None and "--bundle" in help_text:
        command += ["--bundle", str(bundle)]
    child = peers.run_child(command, cwd=ROOT)
    if child.returncode != 0:
        return {
            "status": "failed",
            "note": f"bench_app.py exit {child.returncode}: {child.tail(5)}",
            "stdout": child.stdout[-4000:],
        }
    return {
        "status": "ok",
        "command": " ".join(
            Path(part).name if i == 1 else part for i, part in enumerate(command[1:], 1)
        ),
        "bundle": "the M bundle of this run" if "--bundle" in command else "built by bench_app.py",
        "wall_seconds": child.wall_seconds,
        "views": parse_app_table(child.stdout),
        "stdout": child.stdout[-4000:],
    }


_APP_ROW = re.compile(
    r"^(?P<view>\S+)\s+(?P<n>\d+)\s+(?P<p50>[\d.]+)\s+(?P<p95>[\d.]+)\s+(?P<max>[\d.]+)"
    r"\s+(?P<kib>[\d.]+)(?:\s+cold (?P<cold>[\d.]+) ms)?"
)


def parse_app_table(text: str) -> dict[str, dict[str, float]]:
    """Rows of bench_app.py's latency table: view -> n, p50, p95, max (ms), KiB, cold (ms)."""
    views: dict[str, dict[str, float]] = {}
    in_table = False
    for line in text.splitlines():
        if "p50" in line and "p95" in line:
            in_table = True
            continue
        if in_table and (match := _APP_ROW.match(line.strip())):
            views[match["view"]] = {
                key: float(value)
                for key, value in match.groupdict().items()
                if key != "view" and value is not None
            }
    return views


# ---------------------------------------------------------------------------------------
# targets and report


def targets(results: dict) -> list[dict]:
    """Each target: what was measured, the threshold and PASS / MISS / not measured."""
    out = []

    def add(name: str, measured: str, passed: bool | None) -> None:
        status = "not measured" if passed is None else "PASS" if passed else "MISS"
        out.append({"target": name, "measured": measured, "status": status})

    head = results.get("head_to_head") or {}
    runs = head.get("runs", {})
    radmap, wgcna = runs.get("radmap"), runs.get("wgcna")
    comparison = head.get("comparisons", {}).get("wgcna")
    name = (
        f"module detection ({head.get('input', {}).get('genes', '?')} genes x "
        f"{head.get('input', {}).get('patients', '?')} patients) >= {TARGET_MODULE_SPEEDUP:g}x "
        f"faster than WGCNA blockwiseModules, ARI >= {TARGET_MODULE_ARI:g} against it"
    )
    if radmap and wgcna and comparison and wgcna.get("inner_seconds"):
        speedup = comparison["inner_ratio"]
        ari = comparison["ari_vs_radmap_all"]
        add(
            name,
            f"{speedup:.2f}x inside the call ({comparison['wall_ratio']:.2f}x process wall), "
            f"ARI {ari:.3f}",
            speedup >= TARGET_MODULE_SPEEDUP and ari >= TARGET_MODULE_ARI,
        )
    else:
        reason = (wgcna or {}).get("error") or "peers not run"
        add(name, f"not measured ({reason[:120]})", None)

    medium = results["sizes"].get("M")
    name = f"association stage (M) within {TARGET_ASSOCIATION_FLOOR_MULTIPLE:g}x the bare matrix product"
    if medium and medium.get("gene_stage_over_floor"):
        multiple = medium["gene_stage_over_floor"]
        add(
            name,
            f"{multiple:.1f}x ({medium['gene_stage_seconds']:.2f} s vs "
            f"{medium['matmul_floor_seconds'] * 1000:.0f} ms)",
            multiple <= TARGET_ASSOCIATION_FLOOR_MULTIPLE,
        )
    else:
        add(name, "not measured (size M not run)", None)

    name = (
        f"M-size analyze under {TARGET_ANALYZE_SECONDS:g} s and {TARGET_ANALYZE_BYTES / 1e9:g} GB"
    )
    if medium:
        peak_bytes = medium["peak_rss_mb"] * 1024**2
        add(
            name,
            f"{medium['analyze_wall_seconds']:.1f} s, {peak_bytes / 1e9:.2f} GB",
            medium["analyze_wall_seconds"] < TARGET_ANALYZE_SECONDS
            and peak_bytes < TARGET_ANALYZE_BYTES,
        )
    else:
        add(name, "not measured (size M not run)", None)

    # issue 14
    assoc = results.get("associations") or {}
    name = (
        f"gene x feature associations within {TARGET_GENE_STAGE_OVER_EXACT_FLOOR:g}x their "
        "exact-p floor (argsort + matmul + p-values, same run)"
    )
    if assoc.get("associate_over_all_floors"):
        floor = (
            assoc["matmul_floor_seconds"]
            + assoc["rank_floor_seconds"]
            + assoc["pvalue_floor_seconds"]
        )
        add(
            name,
            f"{assoc['associate_over_all_floors']:.2f}x ({assoc['associate_seconds']:.2f} s vs "
            f"{floor:.2f} s)",
            assoc["associate_over_all_floors"] <= TARGET_GENE_STAGE_OVER_EXACT_FLOOR,
        )
    else:
        add(name, "not measured", None)
    name = f"M-size analyze end to end under {TARGET_M_SECONDS:g} s"
    if medium:
        add(
            name,
            f"{medium['analyze_wall_seconds']:.1f} s "
            f"(load average at start {results['machine']['load_average'][0]})",
            medium["analyze_wall_seconds"] < TARGET_M_SECONDS,
        )
    else:
        add(name, "not measured (size M not run)", None)
    whole = results.get("whole_transcriptome") or {}
    name = (
        f"radmap analyze --n-top-genes all (M) peak memory under "
        f"{TARGET_WHOLE_TRANSCRIPTOME_BYTES / 1e9:g} GB"
    )
    if whole.get("peak_rss_mb"):
        peak = whole["peak_rss_mb"] * 1024**2
        add(name, f"{peak / 1e9:.2f} GB", peak < TARGET_WHOLE_TRANSCRIPTOME_BYTES)
    else:
        add(name, f"not measured ({whole.get('error', 'not run')[:120]})", None)
    name = (
        f"modules at {whole.get('genes', 20000):,} genes within {TARGET_MODULES_OVER_FLOOR:g}x "
        "the floor (correlation + A @ A.T, same run)"
    )
    if whole.get("modules_over_floor"):
        add(
            name,
            f"{whole['modules_over_floor']:.2f}x ({whole['modules_seconds']:.1f} s vs "
            f"{whole['floor_seconds']:.1f} s)",
            whole["modules_over_floor"] <= TARGET_MODULES_OVER_FLOOR,
        )
    else:
        add(name, "not measured", None)
    read = results.get("reading") or {}
    name = f"reading the expression within {TARGET_READ_OVER_PYARROW:g}x a plain pyarrow read"
    if read.get("ratio"):
        add(
            name,
            f"{read['ratio']:.2f}x ({read['read_expression_seconds']:.2f} s vs "
            f"{read['pyarrow_seconds']:.2f} s, {read['megabytes']:.0f} MB)",
            read["ratio"] <= TARGET_READ_OVER_PYARROW,
        )
    else:
        add(name, "not measured", None)
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def markdown(results: dict) -> str:
    machine = results["machine"]
    lines = [
        f"# radmap benchmarks, {results['timestamp']}",
        "",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['ram_gb']} GB RAM, load average at start {machine['load_average']}; "
        f"Python {machine['python']}, numpy {machine['numpy']} "
        f"({'; '.join(machine['blas']) or 'BLAS unknown'}); commit {machine['git_commit']}.",
        f"Options: {results['options']}.",
        "",
    ]
    sizes = results["sizes"]
    if sizes:
        names = list(sizes)
        header = "| stage (s) | " + " | ".join(SIZES[n].label for n in names) + " |"
        lines += [
            "## Scale suite: `radmap analyze`",
            "",
            header,
            "|" + "---|" * (len(names) + 1),
        ]
        for stage in STAGES:
            row = [_fmt(sizes[n]["stages"].get(stage), 3) for n in names]
            lines.append(f"| {stage} | " + " | ".join(row) + " |")
        rows = (
            ("analyze, whole process (wall)", "analyze_wall_seconds", 1, 1),
            ("peak memory (MB)", "peak_rss_mb", 0, 1),
            ("gene x feature stage", "gene_stage_seconds", 2, 1),
            ("bare matmul floor (ms)", "matmul_floor_seconds", 1, 1000),
            ("gene x feature stage / floor", "gene_stage_over_floor", 1, 1),
            ("generate cohort", "generate_seconds", 1, 1),
            ("write cohort CSVs", "write_cohort_seconds", 1, 1),
        )
        for label, key, digits, scale in rows:
            cells = [
                _fmt(sizes[n][key] * scale if sizes[n][key] is not None else None, digits)
                for n in names
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Stages add up the CLI's progress stages: read = reading inputs + matching samples; "
            "associations = module x feature + gene x feature + mutations.",
            "",
        ]

    assoc = results.get("associations")
    if assoc:
        shape = assoc["shape"]
        kinds = ", ".join(f"{v} {k}" for k, v in assoc["scipy_features_by_type"].items())
        lines += [
            "## Associations against scipy.stats and the matrix-product floor",
            "",
            f"`associate` on {shape['genes']:,} genes x {shape['patients']} patients x "
            f"{shape['features']} features (default tests, in process):",
            "",
            "| figure | value |",
            "|---|---|",
            f"| associate, best of runs | {assoc['associate_seconds']:.3f} s |",
            f"| bare matmul floor | {assoc['matmul_floor_seconds'] * 1000:.1f} ms |",
            f"| associate / floor | {assoc['associate_over_floor']:.1f}x |",
            f"| ranking every gene once (argsort) | {assoc['rank_floor_seconds'] * 1000:.0f} ms |",
            f"| one t p-value per pair (scipy.special.stdtr) | "
            f"{assoc['pvalue_floor_seconds'] * 1000:.0f} ms |",
            f"| associate / (matmul + ranking + p-values) | "
            f"{assoc['associate_over_all_floors']:.1f}x |",
            f"| scipy.stats loop | {assoc['scipy_seconds_per_pair'] * 1e6:.0f} us per pair "
            f"({assoc['scipy_pairs']} pairs: {kinds}) |",
            f"| scipy loop extrapolated to every pair | "
            f"{assoc['scipy_full_extrapolated_seconds']:,.0f} s |",
            f"| speed-up over the scipy loop | {assoc['speedup_over_scipy']:,.0f}x |",
            f"| max abs p difference vs scipy | {assoc['max_abs_p_difference']:.1e} |",
            f"| max rel statistic difference vs scipy | "
            f"{assoc['max_rel_statistic_difference']:.1e} |",
            f"| pairs NaN on one side only | {assoc['nan_mismatches']} |",
            "",
        ]

    head = results.get("head_to_head")
    if head:
        runs, comparisons = head["runs"], head["comparisons"]
        keys = list(runs)
        params = head["params"]
        lines += [
            "## Module detection head to head",
            "",
            f"Input: {head['input']['genes']:,} genes x {head['input']['patients']} patients "
            f"(the preprocessed top-variance genes), {head['input']['planted_genes']} of them "
            f"planted in {head['input']['planted_modules']} modules. Parameters: signed network "
            f"and TOM, power {params['power']} (radmap's scale-free pick), min module size "
            f"{params['min_module_size']}, merge cut height {params['merge_cut_height']}, "
            f"deep split {params['deep_split']}, one block, {params['threads']} threads.",
            "",
            "| | " + " | ".join(runs[k]["name"] for k in keys) + " |",
            "|" + "---|" * (len(keys) + 1),
        ]

        def row(label: str, values: list[str]) -> None:
            lines.append(f"| {label} | " + " | ".join(values) + " |")

        row("version", [str(runs[k]["version"] or "—") for k in keys])
        row("inside the call (s)", [_fmt(runs[k]["inner_seconds"], 1) for k in keys])
        row("process wall (s)", [_fmt(runs[k]["wall_seconds"], 1) for k in keys])
        row("peak memory (MB)", [_fmt(runs[k]["peak_rss_mb"], 0) for k in keys])
        row("modules", [str(runs[k]["n_modules"] or "—") for k in keys])
        row("unassigned genes", [_fmt(runs[k]["n_unassigned"], 0) for k in keys])
        row(
            "ARI vs planted truth (planted genes)",
            [_fmt(comparisons.get(k, {}).get("ari_vs_truth_planted"), 3) for k in keys],
        )
        row(
            "ARI vs radmap (all genes)",
            ["—"] + [_fmt(comparisons.get(k, {}).get("ari_vs_radmap_all"), 3) for k in keys[1:]],
        )
        row(
            "ARI vs radmap (planted genes)",
            ["—"]
            + [_fmt(comparisons.get(k, {}).get("ari_vs_radmap_planted"), 3) for k in keys[1:]],
        )
        row(
            "time / radmap, inside the call",
            ["1"] + [_fmt(comparisons.get(k, {}).get("inner_ratio"), 2) for k in keys[1:]],
        )
        row(
            "time / radmap, process wall",
            ["1"] + [_fmt(comparisons.get(k, {}).get("wall_ratio"), 2) for k in keys[1:]],
        )
        auto = head["radmap_auto_power"]
        lines += [
            "",
            f"radmap picking the power itself: {auto['inner_seconds']:.1f} s inside "
            f"find_modules, {auto['wall_seconds']:.1f} s process wall. radmap steps (power "
            "given): "
            + ", ".join(
                f"{step} {seconds:.1f} s"
                for step, seconds in (runs["radmap"].get("extra", {}).get("steps") or {}).items()
            )
            + ".",
        ]
        for key in keys:
            run = runs[key]
            if run["error"]:
                lines.append(f"- {run['name']}: not run: {run['error'][:300]}")
            for note in run["notes"]:
                lines.append(f"- {run['name']}: {note}")
        lines.append("")

    sized = results.get("head_to_head_sizes") or {}
    if sized:
        lines += [
            "## Module detection head to head by network size",
            "",
            "| genes | implementation | inside the call (s) | process wall (s) | peak memory (MB) "
            "| modules | ARI vs radmap (all genes) | ARI vs planted truth | time / radmap "
            "(inside) | load average after |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for genes, head in sized.items():
            for key, run in head["runs"].items():
                comparison = head["comparisons"].get(key, {})
                cells = [
                    f"{int(genes):,}",
                    run["name"],
                    _fmt(run["inner_seconds"], 1),
                    _fmt(run["wall_seconds"], 1),
                    _fmt(run["peak_rss_mb"], 0),
                    str(run["n_modules"] or "—"),
                    "—" if key == "radmap" else _fmt(comparison.get("ari_vs_radmap_all"), 3),
                    _fmt(comparison.get("ari_vs_truth_planted"), 3),
                    "1" if key == "radmap" else _fmt(comparison.get("inner_ratio"), 2),
                    str(head.get("load_average", "")),
                ]
                if run["error"]:
                    cells[2] = f"not run: {run['error'][:80]}"
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")

    whole = results.get("whole_transcriptome")
    read = results.get("reading")
    if whole or read:
        lines += ["## Whole transcriptome and reading", ""]
        if whole and not whole.get("error"):
            lines.append(
                f"`radmap analyze --n-top-genes all` on M ({whole['genes']:,} network genes): "
                f"{whole['analyze_wall_seconds']:.1f} s wall, peak {whole['peak_rss_mb']:,.0f} "
                f"MB; modules stage {_fmt(whole['modules_seconds'], 1)} s against the floor "
                f"(correlation + `A @ A.T` in this process) {whole['floor_seconds']:.1f} s wall "
                f"/ {whole['floor_cpu_seconds']:.1f} s CPU = "
                f"{_fmt(whole['modules_over_floor'], 2)}x; {whole['blocks']}; load average "
                f"after {whole['load_average']}."
            )
        elif whole:
            lines.append(f"`radmap analyze --n-top-genes all` failed: {whole['error']}")
        if read:
            lines.append(
                f"Reading the M expression CSV ({read['megabytes']:.0f} MB): read_expression "
                f"{read['read_expression_seconds']:.2f} s vs pyarrow.csv.read_csv "
                f"{read['pyarrow_seconds']:.2f} s = {read['ratio']:.2f}x (best of 3, "
                "interleaved)."
            )
        lines.append("")

    app = results.get("app")
    if app:
        lines += ["## App latency", ""]
        if app["status"] == "ok":
            lines += [
                f"`{app['command']}` ({app['bundle']}): gunicorn serving the explorer, "
                "concurrent POST /_dash-update-component requests per view.",
                "",
            ]
            views = app.get("views") or parse_app_table(app.get("stdout", ""))
            if views:
                lines += [
                    "| view | requests | p50 (ms) | p95 (ms) | max (ms) | response (KiB) | cold (ms) |",
                    "|---|---|---|---|---|---|---|",
                ]
                for view, figures in views.items():
                    cells = [
                        _fmt(figures.get(key), digits)
                        for key, digits in (
                            ("n", 0),
                            ("p50", 0),
                            ("p95", 0),
                            ("max", 0),
                            ("kib", 1),
                            ("cold", 0),
                        )
                    ]
                    lines.append(f"| {view} | " + " | ".join(cells) + " |")
                lines.append("")
            else:
                lines += ["```", app.get("stdout", "")[-1500:], "```", ""]
        else:
            lines += [f"{app['status']}: {app['note']}", ""]

    lines += ["## Targets", "", "| target | measured | status |", "|---|---|---|"]
    for target in results["targets"]:
        lines.append(f"| {target['target']} | {target['measured']} | {target['status']} |")
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="S,M,L",
        help="comma-separated cohort sizes among S, M, L (default S,M,L)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny and fast: small association check, no peers unless --peers, no app run",
    )
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the head-to-head module detection (default: on, off with --smoke)",
    )
    parser.add_argument(
        "--peer-genes",
        default=",".join(map(str, PEER_GENES)),
        help="network sizes (top-variance genes) of the head to head (default 5000,10000,20000)",
    )
    parser.add_argument(
        "--whole",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="radmap analyze --n-top-genes all on M and the modules floor (default: on, off "
        "with --smoke)",
    )
    parser.add_argument(
        "--app",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="app latency through bench_app.py (default: on, off with --smoke)",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="results folder")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each analyze and each module detection; the fastest is reported",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only rewrite OUT/latest.md (and print it) from a results JSON of an earlier run",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not apt-get / pip install missing peers (they are then reported as not run)",
    )
    args = parser.parse_args(argv)
    names = [name.strip().upper() for name in args.sizes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        parser.error(f"--sizes takes names among {', '.join(SIZES)}, got {args.sizes!r}")
    args.sizes = names
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.peers is None:
        args.peers = not args.smoke
    if args.whole is None:
        args.whole = not args.smoke
    if args.app is None:
        args.app = not args.smoke
    try:
        args.peer_genes = [int(g) for g in args.peer_genes.split(",") if g.strip()]
    except ValueError:
        parser.error(f"--peer-genes takes comma-separated gene counts, got {args.peer_genes!r}")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text())
        results["targets"] = targets(results)
        return _report(results, args.out, json_path=args.render)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results: dict = {
        "timestamp": stamp,
        "options": {
            "sizes": args.sizes,
            "smoke": args.smoke,
            "peers": args.peers,
            "repeat": args.repeat,
            "peer_genes": args.peer_genes,
            "whole": args.whole,
        },
        "machine": machine_info(),
        "sizes": {},
    }
    cohorts: dict[str, datasets.SyntheticCohort] = {}
    bundles: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="radmap-bench-") as scratch:
        workdir = Path(scratch)
        for name in args.sizes:
            results["sizes"][name], cohort = run_size(SIZES[name], workdir, repeat=args.repeat)
            bundles[name] = workdir / f"out_{name}" / "bundle.h5ad"
            if name in ("S", HEAD_TO_HEAD_SIZE):
                cohorts[name] = cohort

        check_size = SIZES["S" if args.smoke else HEAD_TO_HEAD_SIZE]
        cohort = cohort_for(check_size, cohorts)
        print(f"associations vs scipy.stats on {check_size.label} ...", flush=True)
        results["associations"] = peers.association_check(
            peers.expression_values(cohort),
            cohort.imaging,
            cohort.feature_types,
            n_genes=50 if args.smoke else 200,
            n_features=12 if args.smoke else 20,
            repeat=1 if args.smoke else max(3, args.repeat),
            seed=SEED,
        )

        if not args.smoke:
            results["reading"] = reading(check_size, cohort, workdir)
            if args.whole:
                results["whole_transcriptome"] = whole_transcriptome(check_size, cohort, workdir)

        if args.peers:
            results["head_to_head_sizes"] = {}
            for genes in args.peer_genes:
                matrix = peers.network_matrix(cohort, n_top_genes=genes)
                head = peers.head_to_head(
                    matrix,
                    cohort.truth["gene_module"],
                    workdir / f"peers_{genes}",
                    peers=peers_at(genes),
                    install=not args.no_install,
                    repeat=args.repeat,
                )
                head["load_average"] = [round(v, 2) for v in os.getloadavg()]
                results["head_to_head_sizes"][str(genes)] = head
                results.setdefault("head_to_head", head)
        if args.app:
            bundle = bundles.get(HEAD_TO_HEAD_SIZE) or next(iter(bundles.values()), None)
            print("app latency ...", flush=True)
            results["app"] = app_latency(bundle)

    results["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    results["targets"] = targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{stamp}.json"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return _report(results, args.out, json_path=json_path)


def _report(results: dict, out: Path, *, json_path: Path) -> dict:
    report = markdown(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(report)
    print()
    print(report)
    print(f"results: {json_path} and {out / 'latest.md'}")
    return results


if __name__ == "__main__":
    main()
