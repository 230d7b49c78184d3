"""Export latency: first export (cold kaleido/Chromium start) against warm exports.

Run: ``.venv/bin/python benchmarks/bench_export.py [--repeat 5]``. Prints, per figure and
format, the cold time (first call of the process, includes starting Chromium), and the
median / max of warm calls. Target: warm exports under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radmap.explorer import export  # noqa: E402
from radmap.explorer.figures import km_figure, map_heatmap, volcano  # noqa: E402

CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
IMAGE_TYPES = ("original", "square", "squareroot", "logarithm", "exponential", "gradient")
IMAGE_TYPES += tuple(
    f"wavelet-{b}" for b in ("LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH", "LLL")
)
IMAGE_TYPES += tuple(f"log-sigma-{s}-0-mm-3D" for s in (1, 2, 3, 4, 5))


def map_figure(n_features: int = 1500, n_modules: int = 20, *, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"{t}_{c}_Feature{k:02d}" for t in IMAGE_TYPES for c in CLASSES for k in range(13)]
    ids = ids[:n_features]
    features = pd.DataFrame(
        {
            "label": ids,
            "type": "continuous",
            "source": "radiomic",
            "group": ["_".join(i.split("_")[:2]) for i in ids],
        },
        index=ids,
    )
    modules = [f"M{i}" for i in range(1, n_modules + 1)]
    feature, module = np.meshgrid(ids, modules, indexing="ij")
    p = rng.uniform(size=feature.size)
    planted = rng.random(feature.size) < 0.05
    p[planted] *= 1e-4
    assoc = pd.DataFrame(
        {
            "module": module.ravel(),
            "feature": feature.ravel(),
            "effect": rng.uniform(-0.6, 0.6, feature.size),
            "p": p,
            "q": stats.false_discovery_control(p),
            "n": 116,
        }
    )
    fig = map_heatmap(assoc, features, title="Radiogenomic map (1,500 features, families)")
    marks = next(trace for trace in fig.data if trace.name.startswith("q <"))
    print(f"map: {len(fig.data[1].y)} rows x {len(fig.data[1].x)} modules, {len(marks.x)} marked")
    return fig


def volcano_figure(n_genes: int = 20_000, *, seed: int = 0):
    rng = np.random.default_rng(seed)
    genes = pd.DataFrame(
        {
            "gene": [f"GENE{i}" for i in range(n_genes)],
            "effect": rng.normal(0, 0.2, n_genes),
            "p": rng.uniform(size=n_genes) ** 4,
            "q": rng.uniform(size=n_genes),
            "module": rng.choice(["M1", "M2", "M3", "unassigned"], n_genes),
        }
    )
    return volcano(genes, title="20,000 genes")


def km() -> object:
    curves = pd.DataFrame(
        {
            "group": ["high"] * 4 + ["low"] * 4,
            "time": [100, 400, 900, 1500, 200, 500, 1100, 1800],
            "survival": [0.9, 0.7, 0.5, 0.4, 0.95, 0.85, 0.7, 0.65],
            "ci_low": [0.8, 0.6, 0.4, 0.3, 0.9, 0.75, 0.6, 0.5],
            "ci_high": [1, 0.8, 0.6, 0.5, 1, 0.95, 0.8, 0.75],
            "at_risk": [40, 30, 20, 10, 42, 35, 25, 12],
        }
    )
    return km_figure(curves, p=0.03, title="Kaplan–Meier")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="warm exports per format")
    args = parser.parse_args()
    figures = {"km": km(), "map": map_figure(), "volcano": volcano_figure()}
    provenance = {"bundle_hash": "benchmark"}

    started = time.perf_counter()
    export.export_figure(figures["km"], "svg", provenance=provenance)
    cold = time.perf_counter() - started
    print(f"cold: first export (Chromium start + km svg): {cold:.2f} s")
    print(f"{'figure':<8} {'format':<6} {'width':<7} {'median s':>9} {'max s':>7} {'bytes':>10}")
    worst = 0.0
    for name, fig in figures.items():
        for fmt in export.FORMATS:
            width = "double" if name != "km" else "single"
            times, size = [], 0
            for _ in range(args.repeat):
                started = time.perf_counter()
                data, _ = export.export_figure(fig, fmt, width=width, provenance=provenance)
                times.append(time.perf_counter() - started)
                size = len(data)
            worst = max(worst, statistics.median(times))
            print(
                f"{name:<8} {fmt:<6} {width:<7} {statistics.median(times):>9.2f} "
                f"{max(times):>7.2f} {size:>10,}"
            )
    export.stop_server()
    print(f"slowest warm median: {worst:.2f} s (target < 1 s)")


if __name__ == "__main__":
    main()
