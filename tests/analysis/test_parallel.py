"""``parallel.alongside``: a stage on the second core while the caller runs another."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import datasets, parallel
from radmap.analysis.pipeline import Config, build_bundle
from radmap.analysis.validate import InputError


def _product(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((300, 200))
    return values.T @ values


@pytest.fixture(params=[2, 1], ids=["two cores", "one core"])
def cores(request, monkeypatch):
    monkeypatch.setattr(parallel, "n_cores", lambda: request.param)
    return request.param


def test_alongside_gives_the_serial_results(cores):
    serial = _product(1), _product(2)
    with parallel.alongside(lambda: _product(2)) as (branch,):
        mine = _product(1)
        theirs = branch.result()
    np.testing.assert_array_equal(mine, serial[0])
    np.testing.assert_array_equal(theirs, serial[1])
    assert branch.seconds > 0


def test_several_functions_run_in_order_each_with_its_own_result(cores):
    order: list[str] = []
    error = InputError("gene null: too few patients")

    def first() -> str:
        order.append("first")
        return "map"

    def second() -> None:
        order.append("second")
        raise error

    with parallel.alongside(first, second) as (mapped, null):
        assert mapped.result() == "map"
    with pytest.raises(InputError) as raised:
        null.result()
    assert raised.value is error
    assert order == ["first", "second"]
    assert mapped.done and null.done


def test_the_branch_runs_on_another_thread_only_with_two_cores(cores):
    with parallel.alongside(threading.current_thread) as (branch,):
        ran_on = branch.result()
    assert (ran_on is threading.current_thread()) == (cores == 1)


def test_an_error_of_the_branch_is_raised_as_it_was_raised(cores):
    error = InputError("gene map: no feature has enough patients")

    def fail() -> None:
        raise error

    with pytest.raises(InputError) as raised, parallel.alongside(fail) as (branch,):
        branch.result()
    assert raised.value is error


def test_an_error_of_the_block_wins_and_waits_for_the_branch(cores):
    finished = threading.Event()

    def slow() -> None:
        finished.wait(0.2)
        finished.set()

    with pytest.raises(InputError, match="modules"), parallel.alongside(slow):
        raise InputError("modules: need at least 3 patients")
    assert finished.is_set() or cores == 1  # with one core the branch was never asked for


def test_blas_threads_are_restored_after_the_block(cores):
    before = parallel.blas_controller().info()
    with parallel.alongside(lambda: None) as (branch,):
        branch.result()
    assert parallel.blas_controller().info() == before


def _small_run(tmp_path, *, seed: int, permutations: int, gene_permutations: int) -> Config:
    """A seeded 60-patient cohort written to files, and the analysis of it (no bootstraps)."""
    cohort = datasets.synthetic(n_patients=60, n_genes=300, n_features=8, seed=seed)
    files = datasets.write_cohort(cohort, tmp_path / "cohort")
    return Config(
        expression=files["expression"],
        imaging=[files["imaging"]],
        clinical=files["clinical"],
        out=tmp_path / "out",
        min_module_size=10,
        gene_sets=["hallmark"],
        permutations=permutations,
        gene_permutations=gene_permutations,
        bootstraps=0,
    )


def test_the_pipeline_gives_the_same_bundle_on_one_core_and_on_two(tmp_path, monkeypatch):
    config = _small_run(tmp_path, seed=5, permutations=50, gene_permutations=5)
    bundles = {}
    for cores in (2, 1):
        monkeypatch.setattr(parallel, "n_cores", lambda cores=cores: cores)
        bundles[cores] = build_bundle(config, progress=lambda m: None)
    two, one = (bundles[c].uns["radmap"] for c in (2, 1))
    assert list(bundles[2].var["module"]) == list(bundles[1].var["module"])
    for key in ("radmap_p", "radmap_q_map"):
        np.testing.assert_array_equal(bundles[2].varm[key], bundles[1].varm[key])
    assert two["gene_null"] == one["gene_null"]
    assert two["warnings"] == one["warnings"]
    pd.testing.assert_frame_equal(two["associations"], one["associations"])
    pd.testing.assert_frame_equal(two["gene_map"], one["gene_map"])


def test_the_pipeline_reports_the_gene_stage_after_the_module_map(tmp_path):
    lines: list[str] = []
    build_bundle(
        _small_run(tmp_path, seed=3, permutations=0, gene_permutations=0),
        progress=lines.append,
    )
    stages = [line for line in lines if not line.startswith("  ")]
    started = stages.index("gene x feature associations ... (alongside the modules)")
    finished = next(
        i for i, s in enumerate(stages) if s.startswith("gene x feature associations finished (")
    )
    module_map = stages.index(
        next(s for s in stages if s.startswith("module x feature associations finished"))
    )
    assert started < stages.index("finding co-expressed modules ...") < module_map < finished
    assert stages[finished + 1] == "mutations x imaging and modules ..."
