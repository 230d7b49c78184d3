"""Whole `radmap analyze` on a seeded synthetic cohort: time per stage and peak memory.

Usage: python benchmarks/bench_pipeline.py [--patients 500 --genes 20000 --features 200]
       [--modes default,checks,analysis] [--repeat N] [--baseline OTHER/.venv/bin/python]

Prints each stage's time (parsed from the CLI's progress lines), the whole process's wall
and CPU time, its peak resident memory, and a same-run baseline: one bare matrix product of
the gene x feature association's shape, so figures can be compared across noisy machines.

Modes (each a separate `radmap analyze` run on the same files; all three by default,
``--modes checks,analysis`` skips the minutes of bootstraps):

- ``default``: no option, what a user gets (trust checks and, up to 5,000 network genes,
  100 bootstrap resamples: minutes);
- ``checks``: ``--bootstraps 0`` (the trust checks on: module-map and gene-map permutation
  nulls, tumour size, one patient);
- ``analysis``: ``--bootstraps 0 --permutations 0 --gene-permutations 0`` (the analysis
  without the trust checks).

``--baseline PYTHON`` runs another installation's radmap (e.g. main's ``.venv/bin/python``)
on the same files, alternating with this one run by run, and prints the two stage tables
side by side with their ratio: on a shared machine only such same-run ratios compare.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from radmap.analysis import datasets

MODES = {
    "default": [],
    "checks": ["--bootstraps", "0"],
    "analysis": ["--bootstraps", "0", "--permutations", "0", "--gene-permutations", "0"],
}
_FINISHED = re.compile(r"\] (.+) finished \(([\d.]+) s\)")


def bare_matmul_seconds(n_patients: int, n_genes: int, n_features: int, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    genes = rng.standard_normal((n_genes, n_patients))
    features = rng.standard_normal((n_patients, n_features))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        genes @ features
        best = min(best, time.perf_counter() - start)
    return best


def analyze(python: str, files: dict, out: Path, n_top_genes: int, mode: str) -> dict:
    """One ``radmap analyze`` run in its own process: stages, wall, CPU and peak memory."""
    command = [
        python, "-m", "radmap.cli", "analyze",
        "--expression", str(files["expression"]),
        "--imaging", str(files["imaging"]),
        "--clinical", str(files["clinical"]),
        "--survival-time", "Survival time (days)", "--survival-event", "Event",
        "--n-top-genes", str(n_top_genes),
        *MODES[mode],
        "--out", str(out),
    ]  # fmt: skip
    log = out.with_name(out.name + ".log")
    with open(log, "w") as stderr_file:
        start = time.perf_counter()
        child = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"},
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = log.read_text()
    if child.returncode:
        sys.exit(stderr)
    return {
        "stages": [(name, float(seconds)) for name, seconds in _FINISHED.findall(stderr)],
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_gb": usage.ru_maxrss / 1024**2,
        "badges": [line.split("] ", 1)[1] for line in stderr.splitlines() if "links at" in line],
    }


def best(runs: list[dict]) -> dict:
    return min(runs, key=lambda run: run["wall"])


def print_table(mode: str, this: dict, baseline: dict | None) -> None:
    print(f"\nmode {mode!r} ({' '.join(MODES[mode]) or 'no options'}), best of the runs:")
    names = list(dict.fromkeys([n for n, _ in this["stages"]]))
    header = f"  {'stage':<58} {'this':>8}"
    if baseline:
        header += f" {'baseline':>9} {'this/base':>9}"
    print(header)
    base_stages = dict(baseline["stages"]) if baseline else {}
    rows = [(name, dict(this["stages"])[name], base_stages.get(name)) for name in names]
    rows += [
        ("whole process, wall (s)", this["wall"], baseline and baseline["wall"]),
        ("whole process, CPU user + system (s)", this["cpu"], baseline and baseline["cpu"]),
        ("peak memory (GB)", this["peak_gb"], baseline and baseline["peak_gb"]),
    ]
    for name, value, base in rows:
        line = f"  {name:<58} {value:8.2f}"
        if baseline:
            ratio = f"{value / base:9.2f}" if base else f"{'-':>9}"
            line += f" {base:9.2f} {ratio}" if base is not None else f" {'-':>9} {'-':>9}"
        print(line)
    for badge in this["badges"]:
        print(f"  this:     {badge}")
    for badge in baseline["badges"] if baseline else []:
        print(f"  baseline: {badge}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--n-top-genes", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--modes", default="default,checks,analysis", help=f"any of {', '.join(MODES)}"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", help="Python of another radmap installation")
    args = parser.parse_args()
    modes = [mode for mode in args.modes.split(",") if mode]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}; use {', '.join(MODES)}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        cohort = datasets.synthetic(
            n_patients=args.patients, n_genes=args.genes, n_features=args.features, seed=args.seed
        )
        files = datasets.write_cohort(cohort, tmp / "cohort")
        print(f"generate + write cohort: {time.perf_counter() - start:.1f} s")
        print(f"load average at start: {os.getloadavg()}")
        pythons = {"this": sys.executable} | ({"baseline": args.baseline} if args.baseline else {})
        runs: dict = {(who, mode): [] for who in pythons for mode in modes}
        for _ in range(args.repeat):
            for mode in modes:
                for who, python in pythons.items():
                    runs[who, mode].append(
                        analyze(python, files, tmp / f"out_{who}", args.n_top_genes, mode)
                    )
        print(f"load average at end: {os.getloadavg()}")
    floor = bare_matmul_seconds(args.patients, args.genes, args.features)
    print(f"cohort: {args.patients} patients x {args.genes} genes x {args.features} features")
    for mode in modes:
        baseline = best(runs["baseline", mode]) if args.baseline else None
        print_table(mode, best(runs["this", mode]), baseline)
        walls = ", ".join(f"{run['wall']:.1f}" for run in runs["this", mode])
        print(f"  all walls (this): {walls} s   (target < 10 s end to end)")
    print(f"bare matmul floor of the gene x feature product: {floor * 1000:.1f} ms")


if __name__ == "__main__":
    main()
