"""Serve a large bundle with gunicorn and measure the explorer's main callbacks under load.

Usage::

    .venv/bin/python benchmarks/bench_app.py                 # build 500 x 20,000 x 200
    .venv/bin/python benchmarks/bench_app.py --bundle big.h5ad --requests 200 --concurrency 8

Steps: build (or take) a bundle of 500 patients x 20,000 genes x 200 imaging features,
start ``gunicorn -w 2 -b 127.0.0.1:PORT "radmap.explorer.app:make_server()"``, time how long it
takes to answer ``/``, then from a second process send a bounded number of concurrent
``POST /_dash-update-component`` requests (the payloads the browser sends) for the map
heatmap, the volcano and the gene view, and print p50 / p95 latency and response sizes.
Only 127.0.0.1 is contacted; the load is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_SECONDS = 600

sys.path.insert(0, str(ROOT))
from tests.explorer.dash_client import (  # noqa: E402
    callback_body,
    free_port,
    gunicorn_command,
    gunicorn_env,
    id_text,
    percentile,
    stop,
    wait_ready,
)


def build_bundle(path: Path, *, n_patients: int, n_genes: int, n_features: int, seed: int) -> Path:
    """A bundle of the requested size in the radmap format (the tests' toy generator)."""
    from tests.explorer.conftest import write_toy_bundle

    return write_toy_bundle(
        path,
        n_patients=n_patients,
        n_genes=n_genes,
        n_radiomic=n_features - 6,
        n_modules=12,
        seed=seed,
    )


def state_id(page: str, key: str) -> dict:
    return {"key": key, "page": page, "role": "state"}


def scenario_payloads(dependencies: list[dict], feature: str, gene: str) -> dict[str, dict]:
    """The request bodies of the three main views, as the renderer sends them: each view's
    callback found in the server's ``/_dash-dependencies`` by the figure it draws and the
    control it answers, with the page's default control values."""
    values = {
        "map": {
            "q": 0.05,
            "stat": "effect",
            "sources": [],
            "groups": [],
            "min_effect": 0,
            "rows": "auto",
            "top": 40,
        },
        "volcano": {"feature": feature, "y": "q", "q": 0.05, "min_effect": 0},
        "gene": {"gene": gene, "q": 0.05},
    }
    # view: (the figure its callback draws, the control it answers)
    views = {
        "map": ("map-heatmap", "q"),
        "volcano": ("volcano", "feature"),
        "gene": ("gene-bar", "gene"),
    }
    bodies = {}
    for view, (figure, key) in views.items():
        control = id_text(state_id(view, key))
        drawn = id_text({"fig": figure, "role": "graph"}) + ".figure"
        found = [
            spec
            for spec in dependencies
            if drawn in spec["output"] and any(item["id"] == control for item in spec["inputs"])
        ]
        if len(found) != 1:
            raise SystemExit(
                f"{len(found)} callbacks draw {figure} from {control}: update the bench"
            )
        bodies[view] = callback_body(
            found[0],
            found[0]["output"],
            {
                f"{id_text(state_id(view, name))}.value": value
                for name, value in values[view].items()
            },
            changed=[f"{control}.value"],
        )
    return bodies


def _post(url: str, body: bytes) -> tuple[float, int, int]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        data = response.read()
        status = response.status
    return time.perf_counter() - started, len(data), status


def load_worker(url: str, body: bytes, n_requests: int, concurrency: int) -> list[tuple]:
    """Runs in a second process: ``n_requests`` POSTs, ``concurrency`` at a time."""
    deadline = time.monotonic() + MAX_SECONDS
    results = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(_post, url, body) for _ in range(n_requests)]
        for future in futures:
            remaining = max(1.0, deadline - time.monotonic())
            results.append(future.result(timeout=remaining))
    return results


def readiness(env: dict, *, workers: int, preload: bool) -> float:
    """Seconds from starting gunicorn until it answers the first page (then stopped)."""
    port = free_port()
    command = gunicorn_command(port, workers=workers, preload=preload)
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return wait_ready(f"http://127.0.0.1:{port}/", process, timeout=300)
    finally:
        stop(process)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="existing bundle (default: build one)")
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--requests", type=int, default=60, help="requests per view")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--no-preload", action="store_true", help="serve without gunicorn --preload"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="radmap-bench-"))
    bundle = args.bundle
    if bundle is None:
        started = time.perf_counter()
        bundle = build_bundle(
            workdir / "bench.h5ad",
            n_patients=args.patients,
            n_genes=args.genes,
            n_features=args.features,
            seed=args.seed,
        )
        print(
            f"built {bundle} ({args.patients} patients x {args.genes} genes x "
            f"{args.features} features) in {time.perf_counter() - started:.1f} s"
        )
    print(f"bundle size {bundle.stat().st_size / 2**20:.1f} MiB")

    from radmap.explorer.data import BundleData

    data = BundleData(bundle)
    feature = data.gene_features[0] if data.gene_features else str(data.features.index[0])
    gene = str(data.genes[0])
    del data

    env = gunicorn_env(bundle, workdir)
    preload = not args.no_preload
    other = readiness(env, workers=args.workers, preload=not preload)
    port = free_port()
    command = gunicorn_command(port, workers=args.workers, preload=preload)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(base + "/", process, timeout=300)
        mode = "with --preload" if preload else "without --preload"
        print(
            f"gunicorn ({args.workers} workers, {mode}) ready in "
            f"{time.perf_counter() - started:.1f} s (first page answered {ready:.1f} s after "
            f"start; {other:.1f} s {'without' if preload else 'with'} --preload in this run)"
        )
        with urllib.request.urlopen(base + "/_dash-dependencies", timeout=60) as response:
            dependencies = json.loads(response.read())
        bodies = {
            name: json.dumps(body).encode()
            for name, body in scenario_payloads(dependencies, feature, gene).items()
        }
        url = base + "/_dash-update-component"
        print(f"\n{'view':<9}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'KiB':>10}")
        with ProcessPoolExecutor(max_workers=1) as loader:
            for name, body in bodies.items():
                warm = _post(url, body)  # first call fills each worker's memo
                _post(url, body)
                results = loader.submit(
                    load_worker, url, body, args.requests, args.concurrency
                ).result(timeout=MAX_SECONDS)
                failed = [status for _, _, status in results if status != 200]
                times = [seconds * 1000 for seconds, _, _ in results]
                size = statistics.mean(size for _, size, _ in results) / 1024
                print(
                    f"{name:<9}{len(results):>5}{percentile(times, 50):>10.1f}"
                    f"{percentile(times, 95):>10.1f}{max(times):>10.1f}{size:>10.1f}"
                    + (f"  ({len(failed)} failed)" if failed else "")
                    + f"   cold {warm[0] * 1000:.0f} ms"
                )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
