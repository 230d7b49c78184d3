"""Whole `radmap analyze` on a seeded synthetic cohort: time per stage and peak memory.

Usage: python benchmarks/bench_pipeline.py [--patients 500 --genes 20000 --features 200]

Prints each stage's time (parsed from the CLI's progress lines), the total, the peak
resident memory of the analyze process, and a same-run baseline: one bare matrix product of
the gene x feature association's shape, so figures can be compared across noisy machines.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from radmap.analysis import datasets


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--n-top-genes", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        cohort = datasets.synthetic(
            n_patients=args.patients, n_genes=args.genes, n_features=args.features, seed=args.seed
        )
        files = datasets.write_cohort(cohort, tmp / "cohort")
        print(f"generate + write cohort: {time.perf_counter() - start:.1f} s")
        command = [
            sys.executable, "-m", "radmap.cli", "analyze",
            "--expression", str(files["expression"]),
            "--imaging", str(files["imaging"]),
            "--clinical", str(files["clinical"]),
            "--survival-time", "Survival time (days)", "--survival-event", "Event",
            "--n-top-genes", str(args.n_top_genes),
            "--bootstraps", "0",  # timed by bench_trust.py
            "--out", str(tmp / "out"),
        ]  # fmt: skip
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        total = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(result.stderr)
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    stages = re.findall(r"\] (.+) finished \(([\d.]+) s\)", result.stderr)
    floor = bare_matmul_seconds(args.patients, args.genes, args.features)
    print(f"cohort: {args.patients} patients x {args.genes} genes x {args.features} features")
    for name, seconds in stages:
        print(f"  {name:<34} {float(seconds):7.1f} s")
    print(f"  {'whole radmap analyze (wall)':<34} {total:7.1f} s   (target < 60 s)")
    print(f"  {'peak memory':<34} {peak_gb:7.2f} GB  (target < 4 GB)")
    gene_stage = dict(stages).get("gene x feature associations")
    print(f"  bare matmul floor {floor * 1000:.1f} ms", end="")
    if gene_stage:
        print(f"; gene x feature stage = {float(gene_stage) / floor:.0f}x the floor (target < 5 s)")
    else:
        print()


if __name__ == "__main__":
    main()
