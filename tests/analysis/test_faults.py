"""Killing `radmap analyze` while it writes never leaves a half bundle; a rerun succeeds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from radmap.analysis import datasets, io


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    cohort = datasets.synthetic(n_patients=150, n_genes=2000, n_features=100, seed=3)
    return datasets.write_cohort(cohort, tmp_path_factory.mktemp("cohort"))


def _command(files, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "radmap.cli", "analyze",
        "--expression", str(files["expression"]), "--imaging", str(files["imaging"]),
        "--clinical", str(files["clinical"]), "--survival-time", "Survival time (days)",
        "--survival-event", "Event", "--gene-sets", "hallmark", "--out", str(out),
    ]  # fmt: skip


def _kill_while_writing(files, out: Path, signum: int) -> int:
    """Start analyze and kill it once its temporary bundle file exists (mid-write)."""
    process = subprocess.Popen(_command(files, out), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and any(out.glob(".results-*/.bundle.h5ad.*")):
            process.send_signal(signum)
            break
        time.sleep(0.002)
    else:
        process.kill()
        pytest.fail("analyze ended before it started writing the bundle")
    return process.wait(timeout=60)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_killed_while_writing_leaves_no_half_bundle_and_rerun_succeeds(files, tmp_path, signum):
    out = tmp_path / "out"
    code = _kill_while_writing(files, out, signum)
    assert code != 0
    assert not (out / "bundle.h5ad").exists()
    if signum == signal.SIGTERM:  # cleaned up on the way out; SIGKILL cannot be caught
        assert not out.exists(), "the folder the run created is removed with what it held"
    rerun = subprocess.run(_command(files, out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert io.load_bundle(out / "bundle.h5ad").n_obs == 150
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert len(hidden) == 2 and hidden[0] == ".current", f"leftovers {hidden}"
    assert sorted(p.name for p in out.iterdir() if p.name not in hidden) == [
        "bundle.h5ad",
        "tables",
    ]
