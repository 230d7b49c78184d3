"""Benchmark the trust layer on the M cohort (500 patients x 20,000 genes x 200 features).

Scenario: a seeded synthetic study of 1,000 patients (8 planted modules of 180 genes, a
size-driven link) is split into two M cohorts of 500 (same biology), each analysed with
``build_bundle`` (defaults; not timed). Then, in process on the discovery bundle:

1. the module-map permutation null, 1,000 permutations, serial (target < 10 s), next to one
   ``associate`` call of the module map (the map itself) as the baseline;
2. the size-partialled map (target < 2 s) and the leave-one-out influence;
3. the gene-map null, ``--gene-permutations`` (default 100) permutations of the 20,000 genes x
   200 features map, serial;
4. bootstraps: ``--bootstraps`` resamples (default 4) serially (BLAS on every core), on a
   1-worker and on a 2-worker Dask LocalCluster (one BLAS thread per worker; cluster start
   included); the per-resample time is extrapolated to 100 (target < 10 min on 2 cores) —
   the figures say that they are extrapolated;
5. ``radmap replicate DISCOVERY VALIDATION --out DIR`` as a subprocess on the two saved
   bundles, wall time (target < 60 s).

Run: ``.venv/bin/python benchmarks/bench_trust.py [--bootstraps 4] [--json out.json]
[--workdir DIR]`` (with ``--workdir`` the bundles are kept and reused by the next run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radmap.analysis import bundle, datasets  # noqa: E402
from radmap.analysis.associate import associate  # noqa: E402
from radmap.analysis.io import load_bundle, save_bundle  # noqa: E402
from radmap.analysis.null import add_gene_null, permutation_null  # noqa: E402
from radmap.analysis.pipeline import Config, build_bundle  # noqa: E402
from radmap.analysis.stability import bootstrap_stability  # noqa: E402
from radmap.analysis.trust import find_size_feature, influence, size_check  # noqa: E402

PATIENTS, GENES, FEATURES, MODULES, MODULE_SIZE = 500, 20_000, 200, 8, 180


def _bundle(cohort: datasets.SyntheticCohort, patients, folder: Path):
    part = datasets.SyntheticCohort(
        cohort.expression[patients],
        cohort.imaging.loc[patients],
        cohort.clinical.loc[patients],
        cohort.feature_types,
        cohort.truth,
        cohort.feature_sources,
    )
    files = datasets.write_cohort(part, folder)
    config = Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        permutations=0,
        gene_permutations=0,
        bootstraps=0,
    )
    return build_bundle(config, progress=lambda message: None)


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstraps", type=int, default=4, help="resamples actually run, each way"
    )
    parser.add_argument(
        "--gene-permutations", type=int, default=100, help="permutations of the gene-map null"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the two M bundles here and reuse them on the next run (default: temporary)",
    )
    args = parser.parse_args()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench_trust_") as scratch:
        tmp = args.workdir or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        first, second = tmp / "discovery.h5ad", tmp / "validation.h5ad"
        if first.is_file() and second.is_file():
            print(f"reusing the M bundles in {tmp}", flush=True)
            discovery, validation = load_bundle(first), load_bundle(second)
        else:
            print("generating and analysing two M cohorts (not timed) ...", flush=True)
            cohort = datasets.synthetic(
                n_patients=2 * PATIENTS,
                n_genes=GENES,
                n_features=FEATURES,
                n_modules=MODULES,
                module_size=MODULE_SIZE,
                size_driven=True,
            )
            patients = cohort.imaging.index
            discovery = _bundle(cohort, patients[:PATIENTS], tmp / "discovery")
            validation = _bundle(cohort, patients[PATIENTS:], tmp / "validation")
            save_bundle(discovery, first)
            save_bundle(validation, second)
        eigengenes = discovery.obsm[bundle.EIGENGENES_KEY]
        imaging = discovery.obsm[bundle.IMAGING_KEY]
        features = discovery.uns[bundle.UNS_KEY]["features"]
        types = features["type"].astype(str).to_dict()
        figures["map"] = f"{eigengenes.shape[1]} modules x {imaging.shape[1]} features"

        assoc, one_map = _timed(associate, eigengenes, imaging, types)
        null, null_seconds = _timed(permutation_null, eigengenes, imaging, types)
        figures["one_module_map_associate_s"] = round(one_map, 3)
        figures["null_1000_permutations_s"] = round(null_seconds, 2)
        figures["null_vs_one_map"] = round(null_seconds / one_map, 1)
        figures["null_badge"] = null.badge()

        size = imaging[find_size_feature(imaging)]
        q = assoc.q()
        size_table, size_seconds = _timed(size_check, eigengenes, imaging, types, size, q=q)
        figures["size_partialled_map_s"] = round(size_seconds, 3)
        figures["size_surrogates"] = int(size_table["size_surrogate"].sum())
        tests = features["test"].astype(str).to_dict()
        loo, loo_seconds = _timed(influence, eigengenes, imaging, types, tests, q=q)
        figures["leave_one_out_influence_s"] = round(loo_seconds, 3)
        figures["one_patient_links"] = int(loo["one_patient"].sum())

        genes, gene_seconds = _timed(
            add_gene_null, discovery.copy(), n_permutations=args.gene_permutations
        )
        figures["gene_null_permutations"] = args.gene_permutations
        figures["gene_null_s"] = round(gene_seconds, 1)
        figures["gene_null_badge"] = genes.badge()

        k = args.bootstraps
        _, serial = _timed(bootstrap_stability, discovery, n_bootstraps=k)
        figures["bootstraps_run_each_way"] = k
        figures["bootstrap_serial_s_each"] = round(serial / k, 2)
        figures["bootstrap_100_serial_s_extrapolated"] = round(100 * serial / k, 0)
        for workers in (1, 2):
            _, local = _timed(
                bootstrap_stability,
                discovery,
                n_bootstraps=k,
                scheduler="local",
                n_workers=workers,
            )
            figures[f"bootstrap_local{workers}_s_each_incl_cluster_start"] = round(local / k, 2)
            figures[f"bootstrap_100_local{workers}_s_extrapolated"] = round(100 * local / k, 0)
        figures["bootstrap_speedup_2_vs_1_workers"] = round(
            figures["bootstrap_local1_s_each_incl_cluster_start"]
            / figures["bootstrap_local2_s_each_incl_cluster_start"],
            2,
        )

        command = [sys.executable, "-m", "radmap", "replicate", str(first), str(second)]
        command += ["--out", str(tmp / "replication")]
        _, replicate_seconds = _timed(subprocess.run, command, check=True, capture_output=True)
        card = json.loads((tmp / "replication" / "replication.json").read_text())
        figures["radmap_replicate_wall_s"] = round(replicate_seconds, 2)
        figures["replication_scorecard"] = card["scorecard"]
    for name, value in figures.items():
        print(f"{name}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
