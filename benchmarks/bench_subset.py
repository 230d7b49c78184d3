"""Time the explorer's subset recomputes on the M bundle (500 patients x 20,000 genes x 200
features): the module map, the volcano (one feature's gene map), the gene page (the whole
gene map) and the survival table, on a subset of about two thirds of the patients, and the
same views again from the subset cache.

Usage::

    .venv/bin/python benchmarks/bench_subset.py                  # build the M bundle
    .venv/bin/python benchmarks/bench_subset.py --bundle m.h5ad  # or take one
    .venv/bin/python benchmarks/bench_subset.py --patients 60 --genes 300 --features 13  # smoke

Targets (issue 12): module map under 300 ms, volcano under 1 s. Each figure is the best
of ``--repeat`` fresh recomputes (a new subset view each time, so nothing is cached).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"module map": 0.300, "volcano (one feature)": 1.0}


def best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--subset", default="stage:II|III")
    args = parser.parse_args(argv)

    from radmap.explorer.data import BundleData, SubsetData

    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle
        if bundle is None:
            from benchmarks.bench_app import build_bundle

            start = time.perf_counter()
            bundle = build_bundle(
                Path(tmp) / "m.h5ad",
                n_patients=args.patients,
                n_genes=args.genes,
                n_features=args.features,
                seed=0,
            )
            print(f"built {bundle.name} in {time.perf_counter() - start:.1f} s")
        data = BundleData(bundle)
        subset = data.subset_view(args.subset)
        feature = data.strongest_link()["feature"] or data.gene_features[0]
        gene = data.genes[0]
        print(
            f"bundle: {data.adata.n_obs} patients x {data.adata.n_vars} genes x "
            f"{len(data.features)} features; subset {subset.label}: n = {subset.n_patients}"
        )

        def fresh():
            return SubsetData(data, subset.subset)

        figures = {
            "module map": best(fresh, args.repeat),
            "volcano (one feature)": best(lambda: fresh().gene_table(feature), args.repeat),
            "gene page (whole gene map)": best(
                lambda: fresh().gene_associations(gene), max(1, args.repeat - 2)
            ),
            "survival table": best(lambda: fresh().survival_table(), max(1, args.repeat - 2)),
            "cached: switch back to the subset (map + volcano)": best(
                lambda: (
                    data.subset_view(args.subset).map_view(),
                    data.subset_view(args.subset).gene_table(feature),
                ),
                args.repeat,
            ),
        }
    print(f"{'recompute on the subset':<52}{'seconds':>10}  target")
    for name, seconds in figures.items():
        target = TARGETS.get(name)
        verdict = f"< {target:g} s {'PASS' if seconds < target else 'MISS'}" if target else ""
        print(f"{name:<52}{seconds:>10.3f}  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
