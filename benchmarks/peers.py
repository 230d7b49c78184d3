"""Head-to-head benchmarks: radmap against WGCNA (R), PyWGCNA and a plain scipy.stats loop.

Module detection runs on one patients x genes matrix written to a TSV file that every
implementation reads, each in its own process (so start-up, reading and peak memory are
measured the same way), with the same parameters: signed network, the soft-threshold power
radmap picks by the scale-free fit, ``min_module_size``, ``merge_cut_height``, ``deep_split``
and one block. Each run reports the time spent inside its module-detection call and the wall
time of its process; labels come back per gene and are compared by adjusted Rand index (ARI),
with unassigned / grey genes as one label of their own.

- radmap: :func:`analysis.modules.find_modules` (this file run as ``radmap-modules``).
- WGCNA: ``blockwiseModules`` through ``benchmarks/wgcna_blockwise.R`` (Debian's
  ``r-cran-wgcna``, installed with apt-get when missing).
- PyWGCNA: ``PyWGCNA.WGCNA.findModules`` in a separate virtualenv
  (``benchmarks/.peers-venv``, created and filled with pip when missing) so that its pins
  never touch radmap's environment.

Associations are checked against one scipy.stats call per gene x feature pair on a subset,
and timed against the physical floor: a bare matrix product of the association's shape.

Run the peers alone: ``.venv/bin/python benchmarks/peers.py --patients 500 --genes 20000``
(``benchmarks/run.py`` calls :func:`head_to_head` and :func:`association_check`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from radmap.analysis import datasets, modules, pp  # noqa: E402
from radmap.analysis.associate import associate  # noqa: E402
from radmap.analysis.bundle import UNASSIGNED  # noqa: E402

PEERS_VENV = BENCH_DIR / ".peers-venv"
WGCNA_SCRIPT = BENCH_DIR / "wgcna_blockwise.R"
REFERENCE_BLAS = Path("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3")
GREY = "grey"
PLANTED_NONE = datasets.NO_MODULE
FEATURE_TYPES = ("continuous", "ordinal", "binary", "categorical")

# PyWGCNA driver, run by the peers virtualenv's Python: argv = input TSV, labels TSV,
# power, min_module_size, merge_cut_height, deep_split, output folder.
PYWGCNA_DRIVER = r"""
import sys, time, json, warnings
import importlib.metadata
warnings.filterwarnings("ignore")
import numpy as np
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import PyWGCNA
from PyWGCNA import WGCNA as wgcna_module

source, target, power, min_size, merge_cut, deep_split, workdir = sys.argv[1:8]
power, min_size, merge_cut, deep_split = int(power), int(min_size), float(merge_cut), int(deep_split)
expression = pd.read_csv(source, sep="\t", index_col=0)
started = time.perf_counter()
network = PyWGCNA.WGCNA(
    name="bench",
    geneExp=expression,
    outputPath=workdir + "/",
    save=False,
    networkType="signed",
    TOMType="signed",
    minModuleSize=min_size,
    MEDissThres=merge_cut,
    powers=[power],
)
# PyWGCNA.findModules without its preprocess step (the input is already filtered) and
# with the power fixed: pickSoftThreshold runs on the single candidate power only.
tree_cut = {"deepSplit": deep_split, "pamRespectsDendro": False, "cutHeight": 0.995}
network.findModules(kwargs_function={"cutreeHybrid": tree_cut})
seconds = time.perf_counter() - started
colors = network.datExpr.var["moduleColors"].astype(str)
pd.DataFrame({"gene": colors.index.astype(str), "label": colors.to_numpy()}).to_csv(
    target, sep="\t", index=False
)
print(json.dumps({
    "seconds": seconds,
    "power": int(network.power),
    "version": importlib.metadata.version("PyWGCNA"),
}))
"""


# ---------------------------------------------------------------------------------------
# child processes


@dataclass
class ChildRun:
    """A finished child process: exit code, wall time, peak memory and its output."""

    command: list[str]
    returncode: int
    wall_seconds: float
    peak_rss_mb: float
    stdout: str
    stderr_lines: list[tuple[float, str]] = field(default_factory=list)

    @property
    def stderr(self) -> str:
        return "".join(line for _, line in self.stderr_lines)

    def tail(self, lines: int = 15) -> str:
        return "".join(line for _, line in self.stderr_lines[-lines:]).strip()


def run_child(
    command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> ChildRun:
    """Run ``command``; stderr lines are stamped with the seconds since the start.

    Peak memory is the child's ``ru_maxrss`` from :func:`os.wait4` (the per-child figure
    that ``getrusage(RUSAGE_CHILDREN)`` folds into a running maximum).
    """
    command = [str(part) for part in command]
    with tempfile.TemporaryFile(mode="w+") as stdout:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=dict(env) if env is not None else None,
        )
        lines = [(time.perf_counter() - started, line) for line in process.stderr]
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stderr.close()
        stdout.seek(0)
        output = stdout.read()
    return ChildRun(command, process.returncode, wall, usage.ru_maxrss / 1024, output, lines)


# ---------------------------------------------------------------------------------------
# installing the peers


def wgcna_available(*, install: bool = True) -> dict:
    """Versions of R, WGCNA and R's BLAS.

    Installs Debian's ``r-cran-wgcna`` when missing, and ``libopenblas0-pthread`` when R
    runs on the reference BLAS (numpy runs on OpenBLAS, so both sides get the same kind).
    """
    info = _wgcna_info()
    packages = [] if info.get("wgcna") else ["r-cran-wgcna"]
    if not info.get("wgcna") or "/blas/" in (info.get("blas") or "/blas/"):
        # R on Debian defaults to the reference BLAS; numpy uses OpenBLAS.
        packages.append("libopenblas0-pthread")
    if not packages or not install:
        return info
    if shutil.which("apt-get") is None:
        return info | {"error": f"no apt-get to install {' '.join(packages)}"}
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {' '.join(packages)} with apt-get (takes minutes) ...", flush=True)
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        result = subprocess.run(sudo + command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            return info | {"error": f"{' '.join(command)} failed: {result.stderr.strip()[-300:]}"}
    return _wgcna_info()


def _wgcna_info() -> dict:
    if shutil.which("Rscript") is None:
        return {"wgcna": None}
    probe = (
        'v <- tryCatch(as.character(packageVersion("WGCNA")), error = function(e) "");'
        'cat(v, R.version.string, extSoftVersion()[["BLAS"]], La_library(), sep = "\\n")'
    )
    result = subprocess.run(["Rscript", "-e", probe], capture_output=True, text=True)
    lines = result.stdout.splitlines() + ["", "", "", ""]
    return {"wgcna": lines[0] or None, "r": lines[1], "blas": lines[2], "lapack": lines[3]}


def pywgcna_available(*, install: bool = True) -> dict:
    """Version of PyWGCNA in :data:`PEERS_VENV`; creates the venv and pip-installs it if needed."""
    python = PEERS_VENV / "bin" / "python"
    info = _pywgcna_info(python)
    if info.get("pywgcna") or not install:
        return info
    print(f"installing PyWGCNA into {PEERS_VENV} (takes a few minutes) ...", flush=True)
    commands = [[sys.executable, "-m", "venv", PEERS_VENV]] if not python.exists() else []
    commands.append([python, "-m", "pip", "install", "--quiet", "PyWGCNA"])
    for command in commands:
        result = subprocess.run([str(c) for c in command], capture_output=True, text=True)
        if result.returncode != 0:
            return {"pywgcna": None, "error": f"pip: {result.stderr.strip()[-300:]}"}
    return _pywgcna_info(python)


def _pywgcna_info(python: Path) -> dict:
    if not python.exists():
        return {"pywgcna": None}
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('PyWGCNA'))"],
        capture_output=True,
        text=True,
    )
    return {"pywgcna": result.stdout.strip() or None, "python": str(python)}


# ---------------------------------------------------------------------------------------
# module detection runs


@dataclass
class ModuleRun:
    """One implementation's module detection on the shared input."""

    name: str
    labels: pd.Series | None = None
    inner_seconds: float | None = None
    wall_seconds: float | None = None
    peak_rss_mb: float | None = None
    power: int | None = None
    n_modules: int | None = None
    n_unassigned: int | None = None
    version: str | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        out = asdict(self)
        out.pop("labels")
        return out


def network_matrix(cohort: datasets.SyntheticCohort, *, n_top_genes: int = 5000) -> pd.DataFrame:
    """The preprocessed patients x top-variance-genes matrix ``radmap analyze`` clusters."""
    adata, _, _ = pp.preprocess_expression(cohort.expression.T, n_top_genes=n_top_genes)
    network = adata[:, adata.var["highly_variable"].to_numpy()]
    return pd.DataFrame(
        np.asarray(network.X, dtype=np.float32), index=network.obs_names, columns=network.var_names
    )


def write_matrix(matrix: pd.DataFrame, path: Path) -> Path:
    """Patients x genes TSV: float32 values written exactly (9 significant digits)."""
    matrix.to_csv(path, sep="\t", float_format="%.9g", index_label="patient")
    return path


def run_radmap(
    source: Path,
    workdir: Path,
    *,
    power: int | None,
    min_module_size: int,
    merge_cut_height: float,
    deep_split: int,
) -> ModuleRun:
    """radmap's :func:`~analysis.modules.find_modules` in a fresh process on ``source``."""
    target = workdir / f"radmap_labels_{power or 'auto'}.tsv"
    command = [sys.executable, __file__, "radmap-modules", source, target]
    command += ["--min-module-size", min_module_size, "--merge-cut-height", merge_cut_height]
    command += ["--deep-split", deep_split]
    if power is not None:
        command += ["--power", power]
    child = run_child(command, cwd=ROOT)
    run = ModuleRun("radmap", wall_seconds=child.wall_seconds, peak_rss_mb=child.peak_rss_mb)
    if child.returncode != 0:
        run.error = f"exit {child.returncode}: {child.tail()}"
        return run
    report = json.loads(child.stdout.strip().splitlines()[-1])
    run.inner_seconds = report["seconds"]
    run.power = report["power"]
    run.version = report["version"]
    run.extra = {"steps": report["timings"]}
    _finish(run, _read_labels(target))
    return run


def run_wgcna(
    source: Path,
    workdir: Path,
    *,
    power: int,
    min_module_size: int,
    merge_cut_height: float,
    deep_split: int,
    threads: int,
    info: dict,
    mode: str = "blockwise",
    blas: str = "openblas",
) -> ModuleRun:
    """WGCNA (R) on ``source`` via :data:`WGCNA_SCRIPT`.

    ``mode="blockwise"`` runs ``blockwiseModules``; ``"stepwise"`` the tutorial's
    step-by-step route (TOMsimilarityFromExpr, hclust, cutreeDynamic, mergeCloseModules).
    ``blas="reference"`` preloads Debian's reference BLAS (R's default before OpenBLAS is
    installed) instead of the BLAS R is linked to.
    """
    name = "WGCNA (R) blockwiseModules" if mode == "blockwise" else "WGCNA (R) step by step"
    env = None
    if blas == "reference":
        name += ", reference BLAS"
        env = os.environ | {"LD_PRELOAD": str(REFERENCE_BLAS)}
    run = ModuleRun(name, power=power, version=info.get("wgcna"))
    if not info.get("wgcna"):
        run.error = info.get("error", "Rscript or the WGCNA package is not available")
        return run
    if blas == "reference" and not REFERENCE_BLAS.exists():
        run.error = f"Debian's reference BLAS ({REFERENCE_BLAS}) is not installed"
        return run
    target = workdir / f"wgcna_{mode}_{blas}_labels.tsv"
    command = ["Rscript", WGCNA_SCRIPT, source, target, power, min_module_size]
    command += [merge_cut_height, deep_split, threads, mode]
    child = run_child(command, env=env)
    run.wall_seconds, run.peak_rss_mb = child.wall_seconds, child.peak_rss_mb
    if child.returncode != 0:
        run.error = f"exit {child.returncode}: {child.tail()}"
        return run
    for line in child.stdout.splitlines():
        if line.endswith(tuple("0123456789")) and "_seconds " in line:
            run.inner_seconds = float(line.split()[1])
    labels = _read_labels(target)
    _finish(run, labels.where(labels != "0", GREY))
    used_blas = str(REFERENCE_BLAS) if blas == "reference" else info.get("blas") or "?"
    run.notes.append(f"{info.get('r', 'R')}; BLAS {used_blas}; WGCNA threads {threads}")
    if mode == "stepwise":
        run.notes.append(
            "TOMsimilarityFromExpr, fastcluster hclust, cutreeDynamic (pamRespectsDendro), "
            "mergeCloseModules: blockwiseModules without its kME check, gene reassignment "
            "and gc() calls between steps"
        )
    return run


def run_pywgcna(
    source: Path,
    workdir: Path,
    *,
    power: int,
    min_module_size: int,
    merge_cut_height: float,
    deep_split: int,
    info: dict,
) -> ModuleRun:
    """PyWGCNA's ``findModules`` on ``source`` in the peers virtualenv."""
    run = ModuleRun("PyWGCNA findModules", power=power, version=info.get("pywgcna"))
    if not info.get("pywgcna"):
        run.error = info.get("error", f"PyWGCNA is not installed in {PEERS_VENV}")
        return run
    target = workdir / "pywgcna_labels.tsv"
    output = workdir / "pywgcna_output"
    output.mkdir(exist_ok=True)
    child = run_child(
        [
            info["python"],
            "-c",
            PYWGCNA_DRIVER,
            source,
            target,
            power,
            min_module_size,
            merge_cut_height,
            deep_split,
            output,
        ],
        cwd=workdir,
        env=os.environ | {"MPLBACKEND": "Agg"},
    )
    run.wall_seconds, run.peak_rss_mb = child.wall_seconds, child.peak_rss_mb
    if child.returncode != 0:
        run.error = f"exit {child.returncode}: {child.tail()}"
        return run
    report = json.loads(child.stdout.strip().splitlines()[-1])
    run.inner_seconds, run.version = report["seconds"], report["version"]
    if report["power"] != power:
        run.notes.append(f"PyWGCNA used power {report['power']} instead of {power}")
    _finish(run, _read_labels(target))
    run.notes.extend(PYWGCNA_DIFFERENCES)
    return run


PYWGCNA_DIFFERENCES = (
    "its findModules always runs pickSoftThreshold (here over the one given power) and "
    "computes module eigengenes for every module before and after merging",
    "merging uses MEDissThres = merge_cut_height (same meaning as mergeCutHeight)",
    "its tree cut is PyWGCNA's own cutreeHybrid port with deepSplit and cutHeight=0.995 as "
    "blockwiseModules uses them, but pamRespectsDendro=False (its default): with True its "
    "cutreeHybrid fails (ValueError: operands could not be broadcast together)",
    "it has no kME-based module check or gene reassignment (blockwiseModules' minCoreKME, "
    "minKMEtoStay, reassignThreshold), and its PAM stage without pamRespectsDendro puts "
    "nearly every gene in a module; its module colours include dimgrey, darkgrey, silver and "
    "lightgrey (modules: only 'grey' means unassigned)",
    "its signed TOM takes |A @ A + A| / (min(k_i, k_j) + 1 - |A|) on the non-negative signed "
    "adjacency, the same values as the unsigned TOM formula",
)


def _read_labels(path: Path) -> pd.Series:
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return pd.Series(table["label"].to_numpy(), index=table["gene"].to_numpy(), name="label")


def _count_modules(labels: pd.Series) -> int:
    return int(labels[labels != GREY].nunique())


def _finish(run: ModuleRun, labels: pd.Series) -> None:
    run.labels = labels
    run.n_modules = _count_modules(labels)
    run.n_unassigned = int((labels == GREY).sum())


def adjusted_rand(first: pd.Series, second: pd.Series, genes: Sequence[str] | None = None) -> float:
    """ARI of two gene -> label assignments on ``genes`` (default: the genes they share)."""
    from sklearn.metrics import adjusted_rand_score

    shared = first.index.intersection(second.index) if genes is None else pd.Index(genes)
    return float(adjusted_rand_score(first.loc[shared], second.loc[shared]))


def head_to_head(
    matrix: pd.DataFrame,
    truth: pd.Series,
    workdir: Path,
    *,
    min_module_size: int = 30,
    merge_cut_height: float = 0.25,
    deep_split: int = 2,
    peers: Sequence[str] = ("wgcna", "wgcna_stepwise", "pywgcna"),
    install: bool = True,
    threads: int | None = None,
    repeat: int = 1,
) -> dict:
    """Module detection by radmap and its peers on ``matrix``, timed and compared.

    Parameters
    ----------
    matrix
        Patients x genes (the network genes), log scale.
    truth
        Gene -> planted module, :data:`PLANTED_NONE` for background genes.
    workdir
        Folder for the shared input and each run's labels.
    min_module_size, merge_cut_height, deep_split
        Module-detection parameters given to every implementation.
    peers
        Which peers to run: ``"wgcna"`` (blockwiseModules on R's default BLAS, OpenBLAS once
        :func:`wgcna_available` installed it), ``"wgcna_reference"`` (the same on Debian's
        reference BLAS, preloaded), ``"wgcna_stepwise"`` and ``"pywgcna"``.
    install
        Install a missing peer (apt-get / pip into :data:`PEERS_VENV`).
    threads
        Threads for WGCNA (default: the number of CPUs, as numpy's BLAS uses).
    repeat
        Runs of each implementation (interleaved); the fastest inside its call is kept,
        with the shortest process wall time and the largest peak memory of its runs.

    Returns
    -------
    JSON-ready dict: input shape, each run's summary, wall-time ratios and ARIs.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    threads = threads or os.cpu_count() or 1
    source = write_matrix(matrix, workdir / "network_matrix.tsv")
    options = {
        "min_module_size": min_module_size,
        "merge_cut_height": merge_cut_height,
        "deep_split": deep_split,
    }
    print(f"head to head on {matrix.shape[0]} patients x {matrix.shape[1]} genes", flush=True)
    auto = run_radmap(source, workdir, power=None, **options)
    if auto.error:
        raise RuntimeError(f"radmap find_modules failed: {auto.error}")
    power = auto.power
    print(f"  radmap (power picked: {power}): {auto.inner_seconds:.1f} s", flush=True)
    runners = {"radmap": lambda: run_radmap(source, workdir, power=power, **options)}
    wgcna_runs = {
        "wgcna": ("blockwise", "openblas"),
        "wgcna_reference": ("blockwise", "reference"),
        "wgcna_stepwise": ("stepwise", "openblas"),
    }
    if any(key in peers for key in wgcna_runs):
        info = wgcna_available(install=install)
        for key, (mode, blas) in wgcna_runs.items():
            if key not in peers:
                continue
            runners[key] = lambda mode=mode, blas=blas, info=info: run_wgcna(
                source,
                workdir,
                power=power,
                threads=threads,
                info=info,
                mode=mode,
                blas=blas,
                **options,
            )
    if "pywgcna" in peers:
        info = pywgcna_available(install=install)
        runners["pywgcna"] = lambda info=info: run_pywgcna(
            source, workdir, power=power, info=info, **options
        )
    # Rounds interleave the implementations so that a drifting machine load hits all alike.
    attempts: dict[str, list[ModuleRun]] = {key: [] for key in runners}
    for round_number in range(1, repeat + 1):
        for key, runner in runners.items():
            if attempts[key] and attempts[key][-1].error:
                continue
            attempts[key].append(runner())
            _say(attempts[key][-1], round_number)
    runs = {key: _best(tries) for key, tries in attempts.items()}

    planted = truth.reindex(matrix.columns)
    planted_genes = list(planted.index[planted.to_numpy() != PLANTED_NONE])
    truth_labels = planted.loc[planted_genes]
    radmap_labels = runs["radmap"].labels
    comparisons = {}
    for key, run in runs.items():
        if run.labels is None:
            continue
        entry = {"ari_vs_truth_planted": adjusted_rand(run.labels, truth_labels, planted_genes)}
        if key != "radmap":
            entry |= {
                "ari_vs_radmap_all": adjusted_rand(radmap_labels, run.labels),
                "ari_vs_radmap_planted": adjusted_rand(radmap_labels, run.labels, planted_genes),
                "wall_ratio": run.wall_seconds / runs["radmap"].wall_seconds,
                "inner_ratio": run.inner_seconds / runs["radmap"].inner_seconds
                if run.inner_seconds
                else None,
            }
        comparisons[key] = entry
    return {
        "input": {
            "patients": int(matrix.shape[0]),
            "genes": int(matrix.shape[1]),
            "planted_genes": len(planted_genes),
            "planted_modules": int(truth_labels.nunique()),
        },
        "params": options
        | {
            "power": power,
            "network": "signed",
            "tom": "signed",
            "threads": threads,
            "repeat": repeat,
        },
        "radmap_auto_power": auto.summary(),
        "runs": {key: run.summary() for key, run in runs.items()},
        "comparisons": comparisons,
    }


def _say(run: ModuleRun, round_number: int) -> None:
    if run.error:
        print(f"  {run.name}: FAILED ({run.error.splitlines()[0][:200]})", flush=True)
    else:
        print(
            f"  [{round_number}] {run.name}: {run.inner_seconds:.1f} s inside, "
            f"{run.wall_seconds:.1f} s wall",
            flush=True,
        )


def _best(tries: list[ModuleRun]) -> ModuleRun:
    """The fastest of repeated runs (inside the call), with every run's times attached."""
    finished = [run for run in tries if not run.error]
    if not finished:
        return tries[-1]
    best = min(finished, key=lambda run: run.inner_seconds)
    best.extra |= {
        "inner_seconds_all": [run.inner_seconds for run in finished],
        "wall_seconds_all": [run.wall_seconds for run in finished],
    }
    best.wall_seconds = min(run.wall_seconds for run in finished)
    best.peak_rss_mb = max(run.peak_rss_mb for run in finished)
    return best


def radmap_modules_main(argv: Sequence[str]) -> None:
    """``peers.py radmap-modules SOURCE TARGET [--power P ...]``: one timed find_modules."""
    import anndata
    from threadpoolctl import threadpool_info

    parser = argparse.ArgumentParser(prog="peers.py radmap-modules")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--power", type=int)
    parser.add_argument("--min-module-size", type=int, default=30)
    parser.add_argument("--merge-cut-height", type=float, default=0.25)
    parser.add_argument("--deep-split", type=int, default=2)
    args = parser.parse_args(argv)
    matrix = pd.read_csv(args.source, sep="\t", index_col=0)
    adata = anndata.AnnData(X=matrix.to_numpy(dtype=np.float32))
    adata.obs_names, adata.var_names = matrix.index.astype(str), matrix.columns.astype(str)
    started = time.perf_counter()
    result = modules.find_modules(
        adata,
        power=args.power,
        min_module_size=args.min_module_size,
        merge_cut_height=args.merge_cut_height,
        deep_split=args.deep_split,
    )
    seconds = time.perf_counter() - started
    labels = adata.var["module"].astype(str).replace(UNASSIGNED, GREY)
    pd.DataFrame({"gene": labels.index, "label": labels.to_numpy()}).to_csv(
        args.target, sep="\t", index=False
    )
    blas = [
        f"{pool['internal_api']} {pool.get('version')} ({pool['num_threads']} threads)"
        for pool in threadpool_info()
        if pool["user_api"] == "blas"
    ]
    report = {
        "seconds": seconds,
        "power": result["power"],
        "timings": result["timings"],
        "version": __import__("radmap").__version__,
        "blas": blas,
    }
    print(json.dumps(report))


# ---------------------------------------------------------------------------------------
# associations: scipy reference and the matrix-product floor


def scipy_pair(
    y: np.ndarray, x: pd.Series, feature_type: str, *, min_n: int = 10, min_group: int = 3
) -> tuple[float, float]:
    """One scipy.stats call for one gene x feature pair, as :func:`associate` defines it.

    Complete cases; continuous/ordinal -> Spearman (ordinal categories as their codes);
    binary -> Welch t of the second level against the first; categorical -> Kruskal-Wallis.
    Groups smaller than ``min_group`` are left out; fewer than ``min_n`` patients or two
    groups give NaN.
    """
    from scipy import stats

    categorical = isinstance(x.dtype, pd.CategoricalDtype)
    if feature_type in ("continuous", "ordinal"):
        values = x.cat.codes.to_numpy(float) if categorical else x.to_numpy(float)
        if categorical:
            values[x.cat.codes.to_numpy() < 0] = np.nan
        present = ~np.isnan(values)
        if present.sum() < min_n:
            return np.nan, np.nan
        result = stats.spearmanr(values[present], y[present])
        return float(result.statistic), float(result.pvalue)
    levels = list(x.cat.categories) if categorical else sorted(x.dropna().unique())
    groups = [y[(x == level).to_numpy()] for level in levels]
    groups = [group for group in groups if len(group) >= min_group]
    if len(groups) < 2 or sum(len(group) for group in groups) < min_n:
        return np.nan, np.nan
    if feature_type == "binary":
        result = stats.ttest_ind(groups[1], groups[0], equal_var=False)
    else:
        result = stats.kruskal(*groups)
    return float(result.statistic), float(result.pvalue)


def matmul_floor(n_genes: int, n_patients: int, n_features: int, *, repeat: int = 10) -> float:
    """Best time of one float64 ``(genes x patients) @ (patients x features)`` product."""
    rng = np.random.default_rng(0)
    genes = rng.standard_normal((n_genes, n_patients))
    features = rng.standard_normal((n_patients, n_features))
    best = np.inf
    for _ in range(repeat):
        started = time.perf_counter()
        genes @ features
        best = min(best, time.perf_counter() - started)
    return best


def other_floors(values: np.ndarray, n_features: int, *, repeat: int = 3) -> tuple[float, float]:
    """Best times of two more unavoidable steps of a rank-based association map.

    Ranking every gene once (one ``argsort`` of the genes x patients matrix) and one
    two-sided Student t p-value per gene x feature pair (``scipy.special.stdtr``, the
    incomplete beta function, single-threaded as scipy's ufuncs are).
    """
    from scipy import special

    genes_by_patients = np.ascontiguousarray(values.T)
    t = np.random.default_rng(0).standard_normal((genes_by_patients.shape[0], n_features))
    rank, pvalue = np.inf, np.inf
    for _ in range(repeat):
        started = time.perf_counter()
        genes_by_patients.argsort(axis=1)
        rank = min(rank, time.perf_counter() - started)
        started = time.perf_counter()
        special.stdtr(genes_by_patients.shape[1] - 2, -np.abs(t))
        pvalue = min(pvalue, time.perf_counter() - started)
    return rank, pvalue


def association_check(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    *,
    n_genes: int = 200,
    n_features: int = 20,
    repeat: int = 3,
    seed: int = 0,
) -> dict:
    """Time :func:`associate` on all of ``values`` x ``features``; check it against scipy.

    The scipy loop runs on ``n_genes`` random genes x ``n_features`` features that include
    every feature type present; its time per pair is extrapolated to the full matrix.

    Returns
    -------
    JSON-ready dict: associate time (best of ``repeat``), the matmul floor and the ratio,
    the scipy loop's time per pair and extrapolated speed-up, and the largest absolute
    differences of p-values and statistics (pairs where both are defined) plus the number
    of pairs where only one side is NaN.
    """
    n_total_genes, n_total_features = values.shape[1], features.shape[1]
    best = np.inf
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = associate(values, features, types)
        best = min(best, time.perf_counter() - started)
    floor = matmul_floor(n_total_genes, values.shape[0], n_total_features)
    rank_floor, pvalue_floor = other_floors(values.to_numpy(dtype=np.float64), n_total_features)

    rng = np.random.default_rng(seed)
    genes = np.sort(rng.choice(n_total_genes, min(n_genes, n_total_genes), replace=False))
    chosen: list[str] = []
    for kind in FEATURE_TYPES:
        chosen += [name for name in features.columns if types[name] == kind][:3]
    rest = [name for name in features.columns if name not in chosen]
    chosen += rest[: max(0, n_features - len(chosen))]
    chosen = chosen[:n_features] if len(chosen) > n_features else chosen
    matrix = values.to_numpy(dtype=np.float64)
    started = time.perf_counter()
    reference = {
        (gene, name): scipy_pair(matrix[:, gene], features[name], types[name])
        for gene in genes
        for name in chosen
    }
    loop_seconds = time.perf_counter() - started

    p_diff, statistic_diff, nan_mismatch = 0.0, 0.0, 0
    for (gene, name), (ref_statistic, ref_p) in reference.items():
        column = features.columns.get_loc(name)
        got_p, got_statistic = result.p.iat[gene, column], result.statistic.iat[gene, column]
        if np.isnan(got_p) != np.isnan(ref_p):
            nan_mismatch += 1
        elif not np.isnan(ref_p):
            p_diff = max(p_diff, abs(got_p - ref_p))
            statistic_diff = max(
                statistic_diff, abs(got_statistic - ref_statistic) / max(1.0, abs(ref_statistic))
            )
    per_pair = loop_seconds / len(reference)
    return {
        "shape": {
            "genes": n_total_genes,
            "patients": values.shape[0],
            "features": n_total_features,
        },
        "associate_seconds": best,
        "matmul_floor_seconds": floor,
        "associate_over_floor": best / floor,
        "rank_floor_seconds": rank_floor,
        "pvalue_floor_seconds": pvalue_floor,
        "associate_over_all_floors": best / (floor + rank_floor + pvalue_floor),
        "scipy_pairs": len(reference),
        "scipy_features_by_type": {
            kind: sum(types[name] == kind for name in chosen) for kind in FEATURE_TYPES
        },
        "scipy_loop_seconds": loop_seconds,
        "scipy_seconds_per_pair": per_pair,
        "scipy_full_extrapolated_seconds": per_pair * n_total_genes * n_total_features,
        "speedup_over_scipy": per_pair * n_total_genes * n_total_features / best,
        "max_abs_p_difference": p_diff,
        "max_rel_statistic_difference": statistic_diff,
        "nan_mismatches": nan_mismatch,
    }


def expression_values(cohort: datasets.SyntheticCohort) -> pd.DataFrame:
    """Patients x genes float64 log values, as the pipeline's gene x feature stage sees them."""
    adata, _, _ = pp.preprocess_expression(cohort.expression.T)
    return pd.DataFrame(
        np.asarray(adata.X, dtype=np.float64), index=adata.obs_names, columns=adata.var_names
    )


# ---------------------------------------------------------------------------------------
# command line


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["radmap-modules"]:
        radmap_modules_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--top-genes", type=int, default=5000)
    parser.add_argument("--modules", type=int, default=8)
    parser.add_argument("--module-size", type=int, default=180)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers", default="wgcna,wgcna_stepwise,pywgcna")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    cohort = datasets.synthetic(
        n_patients=args.patients,
        n_genes=args.genes,
        n_features=args.features,
        n_modules=args.modules,
        module_size=args.module_size,
        seed=args.seed,
    )
    matrix = network_matrix(cohort, n_top_genes=args.top_genes)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        result = head_to_head(
            matrix,
            cohort.truth["gene_module"],
            workdir,
            peers=[p for p in args.peers.split(",") if p],
            repeat=args.repeat,
        )
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
