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
from radmap.analysis.pipeline import BUNDLE_NAME, CURRENT, RESULTS_PREFIX, TABLES_DIR

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


def results_layout(out: Path) -> list[str]:
    """The visible entries of an output folder, after checking the hidden ones: the link
    ``.current`` and the one results folder it points at, nothing else."""
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert len(hidden) == 2 and hidden[0] == CURRENT, hidden
    assert hidden[1].startswith(RESULTS_PREFIX) and os.readlink(out / CURRENT) == hidden[1]
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


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
    assert results_layout(out) == [BUNDLE_NAME, TABLES_DIR]
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


def test_results_folders_are_not_private_to_the_writer(cohort: corpus.Cohort):
    umask = os.umask(0o022)
    os.umask(umask)
    tables = cohort.baseline / TABLES_DIR
    assert tables.stat().st_mode & 0o777 == 0o777 & ~umask, "not 0700 unlike the folder above"


def test_a_failed_write_leaves_no_empty_out_folder(cohort: corpus.Cohort, tmp_path, monkeypatch):
    from radmap.analysis import pipeline
    from radmap.analysis.validate import InputError

    adata = io.load_bundle(cohort.baseline / BUNDLE_NAME)

    def disk_full(*args, **kwargs):
        raise InputError("cannot write bundle.h5ad: No space left on device")

    monkeypatch.setattr(io, "save_bundle", disk_full)
    out = tmp_path / "new" / "results"
    with pytest.raises(InputError, match="No space left"):
        pipeline.write_outputs(adata, out)
    assert not (tmp_path / "new").exists(), "the folders it created are gone"
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(InputError):
        pipeline.write_outputs(adata, existing)
    assert existing.is_dir(), "a folder the user made is kept"


def test_bundle_and_tables_are_replaced_as_one_unit(cohort: corpus.Cohort, tmp_path, monkeypatch):
    """At every rename a new run makes, the bundle and the tables beside it belong together."""
    from radmap.analysis import pipeline

    old = io.load_bundle(cohort.baseline / BUNDLE_NAME)
    new = old.copy()
    new.uns[bundle.UNS_KEY]["warnings"] = [*old.uns[bundle.UNS_KEY]["warnings"], "second run"]
    out = tmp_path / "out"
    pipeline.write_outputs(old, out)

    def matched_pair() -> str:
        warnings = list(io.load_bundle(out / BUNDLE_NAME).uns[bundle.UNS_KEY]["warnings"])
        tables = (out / TABLES_DIR / "warnings.txt").read_text().splitlines()
        assert tables == warnings, "a bundle with tables of another run"
        assert (out / TABLES_DIR / "associations.csv").exists()
        return "new" if warnings[-1:] == ["second run"] else "old"

    seen = []
    real_replace, real_rename = os.replace, os.rename

    def checked(real):
        def call(*args, **kwargs):
            seen.append(matched_pair())
            result = real(*args, **kwargs)
            seen.append(matched_pair())
            return result

        return call

    monkeypatch.setattr(os, "replace", checked(real_replace))
    monkeypatch.setattr(os, "rename", checked(real_rename))
    pipeline.write_outputs(new, out)
    monkeypatch.undo()
    assert seen[0] == "old" and seen[-1] == "new" and len(seen) > 10
    assert seen == sorted(seen, key=["old", "new"].index), "switched once, never back"
    assert results_layout(out) == [BUNDLE_NAME, TABLES_DIR], "the old results are gone"
