"""The generated corpus of hostile inputs (``corpus.py``) through the real ``radmap`` command.

The contract of issue 5. A bad input ends with exit code 2 and exactly one
``radmap: error:`` line, the last one, naming the file / column / ID at fault; no traceback;
and nothing at the ``--out`` path changes (no bundle, no tables, no temporary file; an
earlier bundle stays byte-identical). An input radmap accepts ends with exit code 0, a
bundle that loads, the warning reported both on stderr and in the bundle, and the right
content (decoded names, missing cells, features dropped rather than tested).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from radmap.analysis import bundle, io
from radmap.analysis.pipeline import BUNDLE_NAME, TABLES_DIR

from radmap import analysis
from tests.analysis import corpus

ERROR_PREFIX = "radmap: error:"
WARNING_PREFIX = "radmap: warning:"
REPOSITORY = Path(analysis.__file__).resolve().parent.parent


@dataclass
class Finished:
    """A finished ``radmap`` process."""

    returncode: int
    stderr: str
    stdout: str
    seconds: float
    max_rss_mb: float


# A small Python in between, so that the peak memory measured is radmap's own: a child
# forked straight from the test worker inherits the worker's memory high-water mark.
MEASURED = (
    "import resource, subprocess, sys; "
    "code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)


def radmap(args: list[str], *, cwd: Path, timeout: float) -> Finished:
    """Run ``python -m analysis.cli ARGS`` in ``cwd``, killing its whole process group if it
    outlives ``timeout`` (so no server is ever left running), and measure its peak memory."""
    pythonpath = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as scratch:
        rss_file = Path(scratch) / "max_rss_kb"
        command = [sys.executable, "-m", "radmap.cli", *args]
        start = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-S", "-c", MEASURED, str(rss_file), *command],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": pythonpath},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"radmap {' '.join(args[:2])} still running after {timeout:.0f} s")
        seconds = time.monotonic() - start
        max_rss_kb = int(rss_file.read_text())
    return Finished(
        returncode=process.returncode,
        stderr=stderr.decode("utf-8", errors="replace"),
        stdout=stdout.decode("utf-8", errors="replace"),
        seconds=seconds,
        max_rss_mb=max_rss_kb / 1024,
    )


def snapshot(path: Path) -> object:
    """Everything at ``path``: None when absent, the bytes of a file, or every file of a
    folder (hidden ones included) by relative path."""
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> corpus.Cohort:
    return corpus.Cohort.write(tmp_path_factory.mktemp("cohort"))


@pytest.mark.parametrize("case", corpus.CASES, ids=[case.id for case in corpus.CASES])
def test_hostile_input(case: corpus.Case, cohort: corpus.Cohort, tmp_path, record_property):
    args = case.build(cohort, tmp_path)
    out = tmp_path / corpus.OUT
    before = snapshot(out)
    result = radmap(args, cwd=tmp_path, timeout=case.timeout)

    assert "Traceback" not in result.stderr, result.stderr
    for text in case.forbidden:
        assert text.lower() not in (result.stderr + result.stdout).lower()
    fails = case.fails(tmp_path) if callable(case.fails) else case.fails
    if fails:
        check_clean_failure(case, result, out, before)
    else:
        check_success(case, result, out, cohort)
    if case.max_seconds is not None:
        record_property(f"figure:{case.id} seconds", f"{result.seconds:.1f}")
        assert result.seconds < case.max_seconds
    if case.max_rss_mb is not None:
        record_property(f"figure:{case.id} peak RSS MB", f"{result.max_rss_mb:.0f}")
        assert result.max_rss_mb < case.max_rss_mb


def check_clean_failure(case: corpus.Case, result: Finished, out: Path, before: object) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(ERROR_PREFIX)]
    assert errors == [lines[-1]], result.stderr
    for text in case.error:
        assert text.lower() in errors[0].lower(), errors[0]
    assert snapshot(out) == before
    if isinstance(before, dict) and BUNDLE_NAME in before:
        assert io.load_bundle(out / BUNDLE_NAME).n_obs > 0


def check_success(case: corpus.Case, result: Finished, out: Path, cohort: corpus.Cohort) -> None:
    assert result.returncode == 0, result.stderr
    assert ERROR_PREFIX not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [BUNDLE_NAME, TABLES_DIR]
    adata = io.load_bundle(out / BUNDLE_NAME)
    uns = adata.uns[bundle.UNS_KEY]
    assert sorted(adata.obs_names) == sorted(cohort.patients)

    reported = [
        line.removeprefix(WARNING_PREFIX).strip()
        for line in result.stderr.splitlines()
        if line.startswith(WARNING_PREFIX)
    ]
    for expected in case.warns:
        for where in (reported, list(uns["warnings"])):
            assert any(all(text in w for text in expected) for w in where), (expected, where)

    imaging = adata.obsm[bundle.IMAGING_KEY]
    features = uns["features"]
    for feature in case.features:
        assert feature in features.index and imaging[feature].notna().any()
    tested = set(uns["associations"]["feature"]) | set(uns["gene_features"])
    for feature in case.dropped:
        assert feature not in features.index and feature not in imaging.columns
        assert feature not in tested
    for column in case.obs_columns:
        assert column in adata.obs.columns and adata.obs[column].notna().any()
    for column, patient in case.nan_cells:
        values = imaging[column] if column in imaging.columns else adata.obs[column]
        assert pd.isna(values[patient]) and values.notna().sum() > len(values) // 2
    for feature, level in case.levels:
        assert level in list(imaging[feature].cat.categories)
    for gene in case.genes:
        assert gene in adata.var_names and adata.var_names.is_unique
    recorded = {entry["path"] for entry in json.loads(uns["provenance"]["inputs"]).values()}
    for name in case.inputs:
        assert name in recorded


@pytest.mark.parametrize("case", corpus.PRIVACY_CASES, ids=[c.id for c in corpus.PRIVACY_CASES])
def test_pseudonymised_outputs_hold_no_original_id(
    case: corpus.PrivacyCase, cohort: corpus.Cohort, tmp_path
):
    args = corpus.with_key(case.build(cohort, tmp_path), tmp_path)
    result = radmap(args, cwd=tmp_path, timeout=120.0)
    assert result.returncode == 0, result.stderr
    out = tmp_path / corpus.OUT
    outputs = {"stderr": result.stderr.encode(), "stdout": result.stdout.encode()}
    outputs |= {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert any(name.endswith(BUNDLE_NAME) for name in outputs)
    originals = [*cohort.patients, *case.ids]
    for name, data in outputs.items():
        text = data.decode("utf-8", errors="replace").lower()
        leaked = [patient for patient in originals if patient.lower() in text]
        assert not leaked, f"{name} holds original IDs {leaked[:5]}"
    warnings = list(io.load_bundle(out / BUNDLE_NAME).uns[bundle.UNS_KEY]["warnings"])
    reported = [line for line in result.stderr.splitlines() if line.startswith(WARNING_PREFIX)]
    for expected in case.warns:
        for where in (warnings, reported):
            assert any(all(text in w for text in expected) for w in where), (expected, where)


def test_no_table_cell_is_a_spreadsheet_formula(cohort: corpus.Cohort, tmp_path):
    import csv

    result = radmap(corpus.formula_named_features(cohort, tmp_path), cwd=tmp_path, timeout=120.0)
    assert result.returncode == 0, result.stderr
    tables = sorted((tmp_path / corpus.OUT / TABLES_DIR).glob("*.csv"))
    seen = set()
    for table in tables:
        with open(table, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    seen.update(name for name in corpus.FORMULA_NAMES if name[:5] in cell)
                    if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                        float(cell)  # only a number may start like a formula
    assert seen == set(corpus.FORMULA_NAMES), "the names reach the tables, escaped"
