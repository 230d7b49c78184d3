"""Benchmark preprocessing and module detection on a seeded planted cohort.

Generates patients x genes FPKM-like values in which groups of genes follow latent factors
(planted modules) and the rest is noise, then times :func:`radmap.pp.preprocess` and each
step of :func:`analysis.modules.find_modules`, and scores the modules against the planted
truth (adjusted Rand index on the planted genes in the network).

    .venv/bin/python benchmarks/bench_modules.py                 # 500 x 20,000 -> 5,000 HVG
    .venv/bin/python benchmarks/bench_modules.py --genes 5000 --method leiden
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radmap.analysis import modules, pp  # noqa: E402

MODULE_SIZES = (500, 400, 350, 300, 250, 200, 150, 120, 100, 80, 60, 50, 40)


def planted_cohort(
    n_patients: int, n_genes: int, *, seed: int = 0, sizes: tuple[int, ...] = MODULE_SIZES
) -> tuple[pd.DataFrame, np.ndarray]:
    """Linear-scale expression with planted modules; truth = module number, 0 = noise."""
    rng = np.random.default_rng(seed)
    n_planted = sum(sizes)
    if n_planted > n_genes:
        raise SystemExit(f"--genes must be at least {n_planted}")
    factors = rng.standard_normal((n_patients, len(sizes)))
    log_values = rng.standard_normal((n_patients, n_genes))
    truth = np.zeros(n_genes, dtype=int)
    start = 0
    for module, size in enumerate(sizes, start=1):
        genes = np.arange(start, start + size)
        loading = rng.uniform(0.5, 0.9, size)
        noise = rng.standard_normal((n_patients, size))
        log_values[:, genes] = loading * factors[:, [module - 1]] + np.sqrt(1 - loading**2) * noise
        truth[genes] = module
        start += size
    spread = np.where(truth > 0, rng.uniform(0.8, 1.5, n_genes), rng.uniform(0.2, 1.2, n_genes))
    level = rng.uniform(1, 10, n_genes)
    log_values = log_values * spread + level
    order = rng.permutation(n_genes)
    fpkm = np.exp2(log_values[:, order]) - 1
    frame = pd.DataFrame(
        np.clip(fpkm, 0, None),
        index=[f"P{i:04d}" for i in range(n_patients)],
        columns=[f"G{i:05d}" for i in range(n_genes)],
    )
    return frame, truth[order]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--top-genes", type=int, default=5_000)
    parser.add_argument("--method", choices=modules.METHODS, default="wgcna")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--power", type=int, default=None, help="soft threshold (WGCNA)")
    args = parser.parse_args()

    expression, truth = planted_cohort(args.patients, args.genes, seed=args.seed)
    print(
        f"cohort: {args.patients} patients x {args.genes} genes, {len(MODULE_SIZES)} planted "
        f"modules ({int((truth > 0).sum())} genes), seed {args.seed}"
    )
    baseline = peak_rss_mb()

    import scanpy  # noqa: F401  (imported once up front: its import is not a module step)

    started, cpu = time.perf_counter(), time.process_time()
    adata, report, _ = pp.preprocess_expression(expression, n_top_genes=args.top_genes)
    print(
        f"preprocess            {time.perf_counter() - started:7.2f} s wall "
        f"{time.process_time() - cpu:7.2f} s CPU   scale={report['scale']}"
    )

    started, cpu = time.perf_counter(), time.process_time()
    result = modules.find_modules(adata, method=args.method, power=args.power, seed=args.seed)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    for step, seconds in result["timings"].items():
        print(f"  {step:20s}{seconds:7.2f} s wall")
    print(
        f"find_modules ({args.method}) {wall:7.2f} s wall {cpu:7.2f} s CPU   "
        f"power={result['power']}"
    )
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"peak RSS above the generated data: {peak_rss_mb() - baseline:.0f} MB")

    in_network = adata.var["in_network"].to_numpy()
    planted = truth[in_network] > 0
    found = adata.var["module"].astype(str).to_numpy()[in_network]
    print(
        f"network genes: {int(in_network.sum())} ({int(planted.sum())} planted); "
        f"modules found: {len(result['modules'])}; "
        f"unassigned planted genes: {int((found[planted] == 'unassigned').sum())}"
    )
    ari = adjusted_rand_score(truth[in_network][planted], found[planted])
    print(f"ARI vs planted truth (planted network genes): {ari:.3f}")
    print(
        f"ARI vs truth (all network genes, noise = one class): "
        f"{adjusted_rand_score(truth[in_network], found):.3f}"
    )
    for message in result["warnings"]:
        print(f"warning: {message}")


if __name__ == "__main__":
    main()
