"""Benchmark preprocessing and module detection on a seeded planted cohort.

Generates patients x genes FPKM-like values in which groups of genes follow latent factors
(planted modules) and the rest is noise, then times :func:`radmap.pp.preprocess` and each
step of :func:`analysis.modules.find_modules`, and scores the modules against the planted
truth (adjusted Rand index on the planted genes in the network).

    .venv/bin/python benchmarks/bench_modules.py                 # 500 x 20,000 -> 5,000 HVG
    .venv/bin/python benchmarks/bench_modules.py --genes 5000 --method leiden
    .venv/bin/python benchmarks/bench_modules.py --top-genes 20000 --floor   # whole transcriptome

``--floor`` then times the hardware floor of the WGCNA method in the same process: one
gene-gene correlation product (``z.T @ z``) plus one TOM numerator product (``A @ A.T``,
syrk) on the same network, and prints ``find_modules`` as a multiple of it (wall and CPU).
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


def method_floor(network: np.ndarray) -> tuple[float, float]:
    """Wall and CPU seconds of one correlation product and one TOM numerator product."""
    z = network - network.mean(axis=0)
    z /= np.where(z.std(axis=0) > 0, z.std(axis=0), 1)
    started, cpu = time.perf_counter(), time.process_time()
    adjacency = z.T @ z
    adjacency /= np.float32(len(z))
    middle_wall, middle_cpu = time.perf_counter(), time.process_time()
    adjacency += 1.0  # the signed adjacency at power 1: the product costs the same at any power
    adjacency *= 0.5
    resumed_wall, resumed_cpu = time.perf_counter(), time.process_time()
    shared = adjacency @ adjacency.T
    wall = middle_wall - started + time.perf_counter() - resumed_wall
    cpu = middle_cpu - cpu + time.process_time() - resumed_cpu
    del shared
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--top-genes", type=int, default=5_000)
    parser.add_argument("--method", choices=modules.METHODS, default="wgcna")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--power", type=int, default=None, help="soft threshold (WGCNA)")
    parser.add_argument(
        "--floor", action="store_true", help="time correlation + TOM products, print the ratio"
    )
    parser.add_argument("--max-block-size", type=int, default=None, help="WGCNA block limit")
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
    result = modules.find_modules(
        adata,
        method=args.method,
        power=args.power,
        seed=args.seed,
        max_block_size=args.max_block_size,
    )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    for step, seconds in result["timings"].items():
        print(f"  {step:20s}{seconds:7.2f} s wall")
    print(
        f"find_modules ({args.method}) {wall:7.2f} s wall {cpu:7.2f} s CPU   "
        f"power={result['power']}"
    )
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"peak RSS above the generated data: {peak_rss_mb() - baseline:.0f} MB")
    print(f"detection: {result['params'].get('detection', args.method)}")
    if args.floor:
        network = np.asarray(adata.X[:, adata.var["in_network"].to_numpy()], dtype=np.float32)
        floor_wall, floor_cpu = method_floor(network)
        print(
            f"floor (z.T @ z + A @ A.T)  {floor_wall:7.2f} s wall {floor_cpu:7.2f} s CPU   "
            f"find_modules / floor: {wall / floor_wall:.2f}x wall, {cpu / floor_cpu:.2f}x CPU"
        )

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
