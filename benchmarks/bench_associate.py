"""Benchmark the gene x feature association stage (``analysis.associate.associate``).

Scenario: 500 patients x 20,000 genes (log2 of size-factor normalised negative-binomial
counts: ties at zero as in RNA-seq) against
200 imaging features: 170 continuous radiomic features without missing values, 20 binary and
10 categorical semantic features, each with its own ~5 % missing patients (every one of them
has a different set of patients, the worst case for the per-mask rank work).

Prints the time of :func:`associate` with default tests, its ratio to the physical floor (a
bare ``20000x500 @ 500x200`` float64 matrix product), and the speed-up over a per-pair
scipy.stats loop measured on a subset (200 genes x 20 features), whose results must agree
with ``associate`` to 1e-8 (relative).

Run: ``.venv/bin/python benchmarks/bench_associate.py [--seed 0] [--repeat 3]``.
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
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radmap.analysis.associate import associate  # noqa: E402

N_PATIENTS, N_GENES = 500, 20_000
N_CONTINUOUS, N_BINARY, N_CATEGORICAL = 170, 20, 10
MISSING_FRACTION = 0.05


def make_data(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Seeded expression, imaging features and feature types."""
    rng = np.random.default_rng(seed)
    patients = [f"P{i:04d}" for i in range(N_PATIENTS)]
    mean_counts = np.exp(rng.uniform(np.log(0.5), np.log(2000), N_GENES))
    size_factors = rng.lognormal(sigma=0.3, size=(N_PATIENTS, 1))
    mean = mean_counts * size_factors
    counts = rng.negative_binomial(5, 5 / (5 + mean))
    expression = pd.DataFrame(
        np.log2(counts / size_factors + 1.0),
        index=patients,
        columns=[f"G{j:05d}" for j in range(N_GENES)],
    )
    features = {}
    types = {}
    for j in range(N_CONTINUOUS):
        features[f"radiomic_{j:03d}"] = rng.lognormal(size=N_PATIENTS)
        types[f"radiomic_{j:03d}"] = "continuous"
    for j in range(N_BINARY):
        column = pd.Categorical(
            rng.choice(["absent", "present"], N_PATIENTS, p=[0.7, 0.3]),
            categories=["absent", "present"],
        )
        column[rng.random(N_PATIENTS) < MISSING_FRACTION] = np.nan
        features[f"binary_{j:02d}"] = column
        types[f"binary_{j:02d}"] = "binary"
    for j in range(N_CATEGORICAL):
        levels = ["a", "b", "c", "d"]
        column = pd.Categorical(
            rng.choice(levels, N_PATIENTS, p=[0.4, 0.3, 0.2, 0.1]), categories=levels
        )
        column[rng.random(N_PATIENTS) < MISSING_FRACTION] = np.nan
        features[f"categorical_{j:02d}"] = column
        types[f"categorical_{j:02d}"] = "categorical"
    return expression, pd.DataFrame(features, index=patients), types


def scipy_pair(y: np.ndarray, x: pd.Series, feature_type: str) -> tuple[float, float]:
    """The reference: one scipy.stats call for one gene x feature pair (complete cases)."""
    present = x.notna().to_numpy()
    y, x = y[present], x[present]
    if feature_type == "continuous":
        result = stats.spearmanr(x.to_numpy(dtype=float), y)
    elif feature_type == "binary":
        levels = x.cat.categories
        result = stats.ttest_ind(y[x == levels[1]], y[x == levels[0]], equal_var=False)
    else:
        result = stats.kruskal(*[y[x == level] for level in x.cat.categories])
    return float(result.statistic), float(result.pvalue)


def time_best(function, repeat: int) -> tuple[float, float, object]:
    """Best wall time, the CPU time of that run (all threads), and the result."""
    best, cpu, result = np.inf, np.nan, None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = function()
        elapsed = time.perf_counter() - started
        if elapsed < best:
            best, cpu = elapsed, time.process_time() - started_cpu
    return best, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    expression, features, types = make_data(args.seed)
    tied = float((expression.to_numpy() == 0).mean())
    print(
        f"data: {N_PATIENTS} patients x {N_GENES} genes ({tied:.0%} zeros), "
        f"{N_CONTINUOUS} continuous + {N_BINARY} binary + {N_CATEGORICAL} categorical features"
    )

    matrix = np.ascontiguousarray(expression.to_numpy().T)
    other = np.random.default_rng(args.seed).standard_normal((N_PATIENTS, features.shape[1]))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_before = os.getloadavg()[0]
    floor, _, _ = time_best(lambda: matrix @ other, args.repeat)
    elapsed, cpu, assoc = time_best(lambda: associate(expression, features, types), args.repeat)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rng = np.random.default_rng(args.seed + 1)
    genes = rng.choice(N_GENES, 200, replace=False)
    subset = (
        list(features.columns[:14])
        + list(features.columns[N_CONTINUOUS : N_CONTINUOUS + 3])
        + list(features.columns[N_CONTINUOUS + N_BINARY : N_CONTINUOUS + N_BINARY + 3])
    )
    values = expression.to_numpy()
    started = time.perf_counter()
    reference = {
        (g, f): scipy_pair(values[:, g], features[f], types[f]) for g in genes for f in subset
    }
    loop = time.perf_counter() - started
    worst = 0.0
    for (g, f), (ref_statistic, ref_p) in reference.items():
        got_statistic = assoc.statistic.iat[g, features.columns.get_loc(f)]
        got_p = assoc.p.iat[g, features.columns.get_loc(f)]
        for got, ref in ((got_statistic, ref_statistic), (got_p, ref_p)):
            worst = max(worst, abs(got - ref) / max(abs(ref), 1e-300))
    per_pair = loop / len(reference)
    loop_full = per_pair * N_GENES * features.shape[1]

    print(f"load average before timing: {load_before:.1f} on {os.cpu_count()} CPUs")
    print(f"matrix product floor (20000x500 @ 500x200): {floor:8.3f} s")
    print(f"associate (best of {args.repeat}):              {elapsed:8.3f} s (CPU {cpu:.2f} s)")
    print(f"  ratio to the matmul floor:                {elapsed / floor:8.1f} x")
    print(
        f"  peak resident memory: {rss_after:.0f} MB ({rss_before:.0f} MB before, input "
        f"{expression.memory_usage().sum() / 2**20:.0f} MB)"
    )
    print(
        f"scipy.stats loop: {len(reference)} pairs in {loop:.2f} s "
        f"({per_pair * 1e6:.0f} us/pair) -> {loop_full:.0f} s for all {N_GENES * features.shape[1]:,}"
    )
    print(f"  speed-up of associate over the scipy loop: {loop_full / elapsed:8.0f} x")
    print(f"  worst relative difference vs scipy (statistic and p): {worst:.2e}")
    if worst > 1e-8:
        raise SystemExit("associate disagrees with scipy beyond 1e-8")


if __name__ == "__main__":
    main()
