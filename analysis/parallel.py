"""Run independent tasks (permutation blocks, bootstrap resamples) serially or on Dask,
and independent pipeline stages side by side.

One function, :func:`run_tasks`, is used by every resampling stage. Tasks are pure
functions of their inputs and of seeds derived from the task's own index (never from the
order in which workers pick them up), so the results are identical whether the tasks run
in this process, on a local Dask cluster or on a remote scheduler. :func:`alongside` runs
one function on a second core while the caller goes on with another stage.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import numpy as np

from .validate import InputError

logger = logging.getLogger("radmap")

SERIAL = "serial"
LOCAL = "local"
AUTO = "auto"


def n_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@functools.cache
def blas_controller():
    """The process's BLAS / OpenMP pools, found once (each ``threadpool_limits`` call scans the
    loaded libraries again: ~40 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def task_rng(seed: int, *key: int) -> np.random.Generator:
    """The random generator of one task: a child of ``seed`` named by ``key``.

    ``numpy.random.SeedSequence(seed, spawn_key=key)`` gives the same stream for the same
    (seed, key) whatever else is drawn, so a permutation or resample does not depend on how
    the work is split into blocks or workers.
    """
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(key)))


def blocks(count: int, size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(count)`` in blocks of at most ``size``."""
    size = max(1, int(size))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def resolve_scheduler(scheduler: str | None, *, heavy: bool) -> str:
    """``auto`` -> a local Dask cluster for heavy work (bootstraps), this process for light
    work (permutation blocks take milliseconds, a cluster seconds to start)."""
    if scheduler == AUTO:
        return LOCAL if heavy else SERIAL
    return check_scheduler(scheduler)


def check_scheduler(scheduler: str | None) -> str:
    """Normalise a scheduler option: ``serial``, ``local`` or a scheduler address."""
    value = SERIAL if scheduler in (None, "", SERIAL, AUTO) else str(scheduler)
    if value not in (SERIAL, LOCAL) and "://" not in value and ":" not in value:
        raise InputError(
            f"scheduler {value!r}: use 'serial', 'local' (a Dask LocalCluster) or a Dask "
            "scheduler address such as tcp://10.0.0.5:8786"
        )
    return value


@contextmanager
def _client(scheduler: str, n_workers: int):
    from dask.distributed import Client, LocalCluster

    if scheduler == LOCAL:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # Shutdown races on a busy machine (a worker outliving the grace period, a
            # heartbeat to a closed scheduler) log tracebacks that tell a user nothing.
            silence_logs=logging.CRITICAL,
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as err:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
        with client:
            yield client


def run_tasks(
    function: Callable[..., Any],
    tasks: Sequence[Any],
    *,
    shared: Mapping[str, Any] | None = None,
    scheduler: str | None = None,
    n_workers: int = 2,
    threads: int = 1,
) -> list[Any]:
    """``[function(task, **shared) for task in tasks]``, serially or on Dask.

    Parameters
    ----------
    function
        A module-level (picklable) function.
    tasks
        One argument per task (e.g. a block of permutation indices).
    shared
        Keyword arguments common to every task (arrays); sent once to every worker.
    scheduler
        ``"serial"`` / None (in this process), ``"local"`` (a Dask ``LocalCluster`` with
        ``n_workers`` single-threaded worker processes, started and closed here) or the
        address of a running Dask scheduler.
    n_workers
        Workers of the local cluster.
    threads
        In this process (``serial``): threads running the tasks, each with one BLAS thread
        (for functions whose numpy work releases the GIL; at most one per core).

    Returns
    -------
    The results in the order of ``tasks``.
    """
    shared = dict(shared or {})
    scheduler = check_scheduler(scheduler)
    if scheduler == SERIAL or len(tasks) <= 1:
        threads = min(int(threads), len(tasks), n_cores())
        if threads <= 1:
            return [function(task, **shared) for task in tasks]
        with (
            blas_controller().limit(limits=1, user_api="blas"),
            ThreadPoolExecutor(max_workers=threads) as pool,
        ):
            return list(pool.map(functools.partial(function, **shared), tasks))
    with _client(scheduler, n_workers) as client:
        logger.info("running %d tasks on Dask (%s)", len(tasks), client.scheduler.address)
        # One future per shared value: scattering a dict directly would scatter each of its
        # items under its own key, and a feature named like another task key breaks Dask.
        scattered = {
            key: client.scatter([value], broadcast=True)[0] for key, value in shared.items()
        }
        futures = client.map(function, list(tasks), pure=False, **scattered)
        return client.gather(futures)


T = TypeVar("T")


class Branch(Generic[T]):
    """A function run by :func:`alongside`: :meth:`result` waits for it and returns its value."""

    def __init__(self, function: Callable[[], T], *, run_when_asked: bool) -> None:
        self._function = function
        self._run_when_asked = run_when_asked
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self.seconds = 0.0
        """Wall time of the function itself (not of the wait for it)."""

    def run(self) -> None:
        """Run the function, keeping its value or its exception for :meth:`result`."""
        start = time.perf_counter()
        try:
            self._value = self._function()
        except BaseException as err:  # handed to the caller by result()
            self._error = err
        finally:
            self.seconds = time.perf_counter() - start
            self._done.set()

    @property
    def done(self) -> bool:
        """Whether the function has finished."""
        return self._done.is_set()

    def wait(self) -> None:
        """Let the function finish (run it here, if no other thread runs it)."""
        if self._run_when_asked and not self._done.is_set():
            self.run()
        self._done.wait()

    def result(self) -> T:
        """The function's value; its exception (the same object) if it raised one."""
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@contextmanager
def alongside(*functions: Callable[[], Any]) -> Iterator[tuple[Branch, ...]]:
    """Run ``functions`` one after another on a second thread while the ``with`` block runs
    on this one; yields one :class:`Branch` per function.

    For stages that do not depend on each other (e.g. the gene x feature map next to module
    detection): their numpy, BLAS and fastcluster work releases the GIL, so on two cores they
    overlap. While the block runs, BLAS uses one thread per caller (two stages each asking
    for every core would make the BLAS threads wait on each other). With one core each
    function is run by its :meth:`Branch.result` on the caller's thread, in the order of the
    code that asks for it. The functions must not write what the block reads (give them
    their inputs).

    Leaving the block waits for every function; an exception raised in the block wins over
    theirs, which :meth:`Branch.result` raises as it was raised.
    """
    threaded = n_cores() > 1
    branches = tuple(Branch(function, run_when_asked=not threaded) for function in functions)
    if not threaded:
        yield branches
        return

    def run_all() -> None:
        for branch in branches:
            branch.run()

    with blas_controller().limit(limits=1, user_api="blas"):
        worker = threading.Thread(target=run_all, name="radmap-alongside", daemon=True)
        worker.start()
        try:
            yield branches
        finally:
            worker.join()
