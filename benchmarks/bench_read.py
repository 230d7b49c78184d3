"""Benchmark reading the expression matrix against a plain pyarrow CSV read of the same file.

Writes the M cohort's expression CSV (500 patients x 20,000 genes, GEO layout: genes in
rows) unless ``--csv`` names one, then times, interleaved, ``pyarrow.csv.read_csv`` of the
file (the floor: parsing the text into columns, no checks) and
:func:`radmap.analysis.io.read_expression` (orientation, IDs, duplicates, missing values,
scale hint), and prints the best of each and their ratio.

    .venv/bin/python benchmarks/bench_read.py --repeat 3
    .venv/bin/python benchmarks/bench_read.py --csv path/to/expression.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from radmap.analysis import datasets  # noqa: E402
from radmap.analysis.io import read_expression  # noqa: E402


def best_times(path: Path, repeat: int) -> tuple[float, float]:
    """Best wall seconds of a plain pyarrow read and of ``read_expression``, interleaved."""
    from pyarrow import csv as arrow_csv

    plain, ours = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        arrow_csv.read_csv(path)
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        read_expression(path)
        ours.append(time.perf_counter() - started)
    return min(plain), min(ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="expression CSV to read (default: write M)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.csv
        if path is None:
            from run import SIZES, generate

            path = datasets.write_cohort(generate(SIZES["M"]), folder)["expression"]
        megabytes = Path(path).stat().st_size / 1e6
        plain, ours = best_times(Path(path), args.repeat)
    print(f"file: {Path(path).name}, {megabytes:.0f} MB")
    print(f"pyarrow.csv.read_csv     {plain:7.3f} s (best of {args.repeat})")
    print(f"read_expression          {ours:7.3f} s   ratio {ours / plain:.2f}x")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
