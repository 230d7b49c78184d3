"""Co-expressed gene modules ("metagenes"): WGCNA-style by default, Leiden as an alternative.

:func:`find_modules` clusters the highly variable genes of a preprocessed AnnData into
modules and writes ``var["in_network"]``, ``var["module"]``, ``var["kME"]``,
``var["is_hub"]`` and ``obsm["eigengenes"]`` (see :mod:`analysis.bundle`).

WGCNA method (Langfelder & Horvath 2008, following ``blockwiseModules`` in one block):

1. Pearson correlation of the network genes.
2. Adjacency ``((1 + cor) / 2) ** power`` (signed) or ``|cor| ** power`` (unsigned). Unless
   given, the power is the lowest of :data:`POWERS` whose scale-free fit (signed R^2, as
   ``pickSoftThreshold``: ``-sign(slope) * R^2`` of ``log10 p(k)`` on ``log10 k`` over 10
   bins) reaches 0.85, else the power with the best fit (with a warning).
3. Topological overlap ``TOM = (A @ A + A) / (min(k_i, k_j) + 1 - A)`` with a zero-diagonal
   adjacency ``A`` and connectivity ``k`` (WGCNA's TOM of a non-negative adjacency), its
   diagonal set to 1; dissimilarity ``1 - TOM``, built straight into condensed form in row
   blocks of the upper triangle (:func:`tom_distance`): at most the adjacency, the
   condensed float32 dissimilarity and one row block are held, and the numerator's product
   costs what a symmetric product (syrk) does.
4. Average-linkage hierarchical clustering (fastcluster, in place on a float64 copy of the
   condensed dissimilarity, after the adjacency is freed; :func:`average_linkage`). A
   dissimilarity over :data:`SPILL_BYTES` waits in a temporary file meanwhile, so the peak
   holds the float64 copy alone (8 bytes per gene pair, not 12).
5. Dynamic tree cut, hybrid method (:func:`cutree_hybrid`, a port of ``cutreeHybrid`` from
   the R package dynamicTreeCut 1.63 with its PAM stage), ``cutHeight = 0.995``.
6. WGCNA's module check: a module needs ``min_module_size / 3`` genes with kME > 0.5, genes
   with kME < 0.3 leave their module, modules left smaller than ``min_module_size`` are
   dissolved; genes whose kME to another module is significantly higher (ratio of Fisher
   p-values < 1e-6) move there.
7. Modules whose eigengenes correlate above ``1 - merge_cut_height`` are merged, iterating
   average linkage on eigengene dissimilarity (``mergeCloseModules``).

Networks larger than ``max_block_size`` genes (by default what fits in the available memory,
about 4 bytes per gene pair) run blockwise as ``blockwiseModules`` does: the soft-threshold
scan streams row blocks of the correlation over all genes, k-means preclustering
(:func:`gene_blocks`) splits the genes into blocks of correlated genes, steps 1-5 run per
block, and steps 6-7 over all genes.

Leiden method: a kNN graph of the genes on correlation distance
(:func:`scanpy.pp.neighbors` with the genes as observations, exact neighbours from
scikit-learn on ``sqrt(2 (1 - r))``, Gaussian-kernel weights: the default UMAP weights cost
a ~20 s numba compile in every new process) partitioned by :func:`scanpy.tl.leiden` (igraph); communities smaller
than ``min_module_size`` are unassigned, then the same module check (6) and merging (7) as
WGCNA.

Modules are named ``M1``, ``M2``, ... by decreasing size. The eigengene of a module is the
first principal component of its standardised genes, scaled to unit variance and signed to
correlate positively with the module's mean z-score (its metagene).
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import anndata
import fastcluster
import numpy as np
import pandas as pd
from scipy import linalg, stats
from scipy.cluster.hierarchy import fcluster, linkage, to_tree
from scipy.spatial.distance import squareform

from .bundle import EIGENGENES_KEY, UNASSIGNED
from .parallel import blas_controller, n_cores
from .validate import InputError

logger = logging.getLogger("radmap")

POWERS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20)
SCALE_FREE_R2 = 0.85
N_BREAKS = 10
DETECT_CUT_HEIGHT = 0.995
MIN_CORE_KME = 0.5
MIN_KME_TO_STAY = 0.3
REASSIGN_THRESHOLD = 1e-6
METHODS = ("wgcna", "leiden")
NETWORKS = ("signed", "unsigned")
BYTES_PER_GENE_PAIR = 4
HIGH_MEAN_CONNECTIVITY = 100


def find_modules(
    adata: anndata.AnnData,
    *,
    method: str = "wgcna",
    power: int | None = None,
    network: str = "signed",
    min_module_size: int = 30,
    deep_split: int = 2,
    merge_cut_height: float = 0.25,
    hub_count: int = 10,
    n_neighbors: int = 15,
    resolution: float = 1.0,
    seed: int = 0,
    max_block_size: int | None = None,
    scan_powers: bool = True,
) -> dict:
    """Find co-expressed gene modules and write them into ``adata``.

    Parameters
    ----------
    adata
        Patients x genes, ``X`` on log scale (from :func:`radmap.pp.preprocess`). Genes
        with ``var["highly_variable"]`` form the network (all genes when the column is
        absent).
    method
        ``"wgcna"`` (hierarchical clustering of topological overlap + dynamic tree cut) or
        ``"leiden"`` (community detection on a gene kNN graph).
    power
        Soft-threshold power (WGCNA); ``None`` picks it by the scale-free fit criterion.
    network
        ``"signed"`` (anti-correlated genes are not neighbours) or ``"unsigned"``.
    min_module_size
        Smallest module kept.
    deep_split
        Tree-cut sensitivity 0-4 (WGCNA ``deepSplit``; higher splits more).
    merge_cut_height
        Merge modules whose eigengenes correlate above ``1 - merge_cut_height``; ``0``
        switches merging off.
    hub_count
        Number of hub genes (highest kME) flagged per module.
    n_neighbors
        Neighbours per gene in the kNN graph (Leiden).
    resolution
        Leiden resolution (higher gives more, smaller communities).
    seed
        Random seed (Leiden, and the k-means preclustering of blockwise WGCNA).
    max_block_size
        WGCNA: largest network detected in one block; a larger one is split into blocks of
        correlated genes first (k-means preclustering, as WGCNA's ``blockwiseModules``), each
        block's modules are found apart, then the module check, reassignment and merging
        run over all genes. ``None`` takes what fits in the available memory
        (:func:`max_genes_in_memory`: ~37,000 genes per 8 GB), so a whole transcriptome is
        one block wherever it fits. ``params["detection"]`` says which was used.
    scan_powers
        WGCNA with a given ``power``: ``False`` skips the scale-free scan of every candidate
        power (the ``soft_threshold`` table is then empty); bootstrap resamples, which reuse
        the full data's power, need no table.

    Returns
    -------
    ``{"modules": DataFrame (index = module; size, hub_genes, variance_explained),
    "soft_threshold": DataFrame (power, sft_r2, slope, mean_k, median_k, max_k; empty for
    Leiden), "power": chosen power or None, "params": every parameter used,
    "warnings": list of str, "timings": seconds per step}``.
    """
    _check_options(method, network, power, min_module_size, deep_split, merge_cut_height)
    if max_block_size is not None and int(max_block_size) < 100:
        raise InputError(f"max_block_size must be at least 100 genes, got {max_block_size}")
    begun = time.perf_counter()
    warnings: list[str] = []
    timings: dict[str, float] = {}
    values, network_mask = _network_values(adata, warnings)
    n_network = values.shape[1]
    logger.info("finding %s modules in %d genes x %d patients", method, n_network, adata.n_obs)
    min_module_size = int(min_module_size)
    params: dict = {
        "method": method,
        "network": network,
        "min_module_size": min_module_size,
        "merge_cut_height": float(merge_cut_height),
        "hub_count": int(hub_count),
        "n_network_genes": int(n_network),
        "correlation": "pearson",
        "min_core_kme": MIN_CORE_KME,
        "min_core_kme_size": min_module_size / 3,
        "min_kme_to_stay": MIN_KME_TO_STAY,
    }
    soft_table = pd.DataFrame(columns=["power", "sft_r2", "slope", "mean_k", "median_k", "max_k"])
    chosen_power = None
    labels = np.zeros(n_network, dtype=int)
    if n_network < max(min_module_size, 3):
        _warn(
            warnings,
            f"modules: only {n_network} network genes, fewer than min_module_size="
            f"{min_module_size}; no modules",
        )
    elif method == "wgcna":
        block_limit = int(max_block_size) if max_block_size else max_genes_in_memory()
        labels, chosen_power, soft_table, block_sizes = _wgcna_labels(
            values,
            power=power,
            network=network,
            min_module_size=min_module_size,
            deep_split=deep_split,
            max_block_size=block_limit,
            seed=seed,
            warnings=warnings,
            timings=timings,
            scan_powers=scan_powers or power is None,
        )
        if len(block_sizes) == 1:
            detection = f"one block of {n_network} genes"
        else:
            detection = (
                f"blockwise: {len(block_sizes)} blocks of {', '.join(map(str, block_sizes))} "
                f"genes (at most {block_limit}; "
                + ("given" if max_block_size else "what fits in the available memory")
                + ")"
            )
        logger.info("modules: %s", detection)
        params |= {
            "power": chosen_power,
            "detection": detection,
            # the automatic limit depends on the machine: recorded only through "detection"
            "max_block_size": int(max_block_size) if max_block_size else "auto",
            "max_block_size_chosen_by": "user" if max_block_size else "available memory",
            "block_sizes": block_sizes,
            "power_chosen_by": "user" if power is not None else "scale-free fit",
            "powers_tried": list(POWERS),
            "sft_r2_cut": SCALE_FREE_R2,
            "n_breaks": N_BREAKS,
            "tom": "WGCNA TOM, min denominator",
            "linkage": "average",
            "tree_cut": "dynamicTreeCut hybrid (pamStage, pamRespectsDendro)",
            "deep_split": int(deep_split),
            "detect_cut_height": DETECT_CUT_HEIGHT,
            "reassign_threshold": REASSIGN_THRESHOLD,
        }
    else:
        started = time.perf_counter()
        labels = _leiden_labels(
            values,
            min_module_size=min_module_size,
            n_neighbors=n_neighbors,
            resolution=resolution,
            seed=seed,
        )
        timings["leiden"] = time.perf_counter() - started
        params |= {
            "n_neighbors": int(min(n_neighbors, n_network - 1)),
            "neighbor_metric": "correlation (euclidean on centred unit-norm genes)",
            "neighbor_weights": "gauss",
            "resolution": float(resolution),
            "leiden_flavor": "igraph",
            "leiden_n_iterations": 2,
            "seed": int(seed),
        }

    started = time.perf_counter()
    labels = check_modules(values, labels, min_module_size=min_module_size, network=network)
    if method == "wgcna":
        labels = reassign_genes(values, labels, min_module_size=min_module_size, network=network)
    timings["module_check"] = time.perf_counter() - started
    started = time.perf_counter()
    labels = merge_close_modules(values, labels, cut_height=merge_cut_height)
    timings["merge"] = time.perf_counter() - started

    started = time.perf_counter()
    names = _names_by_size(labels)
    module_table = _write_modules(adata, values, network_mask, names, hub_count, network)
    timings["eigengenes"] = time.perf_counter() - started
    if module_table.empty and n_network >= max(min_module_size, 3):
        _warn(warnings, "modules: no co-expression module found")
    logger.info("finished: %d modules (%.1f s)", len(module_table), time.perf_counter() - begun)
    return {
        "modules": module_table,
        "soft_threshold": soft_table,
        "power": chosen_power,
        "params": params,
        "warnings": warnings,
        "timings": timings,
    }


# ---------------------------------------------------------------------------------------
# eigengenes, metagenes, kME


def eigengenes(
    X: np.ndarray, labels: Sequence[str], *, index: Sequence[str] | None = None
) -> pd.DataFrame:
    """Module eigengenes: first principal component of each module's standardised genes.

    Parameters
    ----------
    X
        Samples x genes.
    labels
        Module of each gene; :data:`analysis.bundle.UNASSIGNED` genes are ignored.
    index
        Sample names for the result.

    Returns
    -------
    Samples x modules (modules in natural order: ``M2`` before ``M10``), each column with
    mean 0 and SD 1, signed to correlate positively with the module's mean z-score.
    """
    modules = _module_order(labels)
    X, labels = _checked_labels(X, labels)
    frame, _ = _eigengenes(X, labels, modules=modules)
    if index is not None:
        frame.index = pd.Index(index)
    return frame


def metagenes(
    X: np.ndarray, labels: Sequence[str], *, index: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean z-score of each module's genes (samples x modules, same order as eigengenes)."""
    modules = _module_order(labels)
    X, labels = _checked_labels(X, labels)
    z = _standardize(X)
    frame = pd.DataFrame(
        {module: np.nanmean(z[:, labels == module], axis=1) for module in modules},
        columns=modules,
    )
    if index is not None:
        frame.index = pd.Index(index)
    return frame


def module_kme(X: np.ndarray, eigengenes: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Pearson correlation of every gene (columns of ``X``) with every eigengene.

    Returns
    -------
    Genes x modules; NaN for a constant gene.
    """
    X = np.asarray(X, dtype=float)
    E = np.asarray(eigengenes, dtype=float)
    if E.ndim == 1:
        E = E[:, None]
    if E.shape[0] != X.shape[0]:
        raise InputError(f"module_kme: X has {X.shape[0]} samples but eigengenes have {E.shape[0]}")
    return _correlate(X, E)


# ---------------------------------------------------------------------------------------
# WGCNA kernels


def gene_correlation(X: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of ``X`` (float32, diagonal 1)."""
    z = _standardize(np.asarray(X, dtype=np.float32), ddof=0).astype(np.float32, copy=False)
    constant = ~np.isfinite(z).all(axis=0)
    if constant.any():
        z[:, constant] = 0.0  # a constant gene correlates with nothing
    cor = z.T @ z  # symmetric product: BLAS syrk
    scale = np.float32(z.shape[0])

    def finish(rows: slice) -> None:
        block = cor[rows]
        block /= scale
        np.clip(block, -1.0, 1.0, out=block)

    _in_row_blocks(finish, len(cor), len(cor))
    np.fill_diagonal(cor, 1.0)
    return cor


def adjacency(cor: np.ndarray, power: float, *, network: str = "signed") -> np.ndarray:
    """WGCNA adjacency: ``((1 + cor) / 2) ** power`` (signed) or ``|cor| ** power``."""
    base = _adjacency_base(cor, network)
    np.power(base, np.float32(power), out=base)
    return base


def soft_threshold(
    cor: np.ndarray,
    *,
    powers: Sequence[int] = POWERS,
    network: str = "signed",
    n_breaks: int = N_BREAKS,
) -> pd.DataFrame:
    """Scale-free topology fit for each candidate power (WGCNA ``pickSoftThreshold``).

    Connectivity ``k_i = sum_j a_ij - 1`` (self excluded). ``sft_r2`` is
    ``-sign(slope) * R^2`` of the fit of ``log10 p(k)`` on ``log10 k`` (see
    :func:`scale_free_fit`).

    Returns
    -------
    Columns ``power``, ``sft_r2``, ``slope``, ``mean_k``, ``median_k``, ``max_k``.
    """
    powers = sorted({int(p) for p in powers})
    if not powers or powers[0] < 1:
        raise InputError(f"soft-threshold powers must be positive integers, got {powers}")
    if network not in NETWORKS:
        raise InputError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
    cor = np.asarray(cor, dtype=np.float32)
    return _soft_table(powers, _connectivity(cor, powers, network), n_breaks)


def _connectivity(cor: np.ndarray, powers: list[int], network: str) -> np.ndarray:
    """``k_i = sum_j a_ij - 1`` of the rows of ``cor`` at each power (powers x rows)."""
    column = {p: i for i, p in enumerate(powers)}
    connectivity = np.empty((len(powers), len(cor)))

    def scan(rows: slice) -> None:
        # one cache-sized row block through every power: cor is read once, not per power
        base = _adjacency_base(cor[rows], network)
        running = base.copy()
        for p in range(1, powers[-1] + 1):
            if p > 1:
                running *= base
            if p in column:
                connectivity[column[p], rows] = running.sum(axis=1, dtype=np.float64) - 1.0

    _in_row_blocks(scan, len(cor), cor.shape[1], elements=1 << 19)
    return connectivity


def _soft_table(powers: list[int], connectivity: np.ndarray, n_breaks: int) -> pd.DataFrame:
    rows = []
    for p, k in zip(powers, connectivity, strict=True):
        r2, slope = scale_free_fit(k, n_breaks=n_breaks)
        rows.append(
            {
                "power": p,
                "sft_r2": -np.sign(slope) * r2,
                "slope": slope,
                "mean_k": float(k.mean()),
                "median_k": float(np.median(k)),
                "max_k": float(k.max()),
            }
        )
    return pd.DataFrame(rows)


def scale_free_fit(k: np.ndarray, *, n_breaks: int = N_BREAKS) -> tuple[float, float]:
    """R^2 and slope of ``log10 p(k) ~ log10 k`` as WGCNA's ``scaleFreeFitIndex``.

    ``k`` is cut into ``n_breaks`` equal-width right-closed bins (R ``cut``: the outer
    limits pushed out by 0.1% of the range); each bin contributes its mean ``k`` (the bin
    midpoint when empty) and its frequency, with ``log10(p + 1e-9)``.
    """
    k = np.asarray(k, dtype=float)
    low, high = k.min(), k.max()
    span = high - low
    if span == 0:
        return float("nan"), float("nan")
    breaks = np.linspace(low, high, n_breaks + 1)
    mids = (breaks[:-1] + breaks[1:]) / 2
    edges = breaks.copy()
    edges[0], edges[-1] = low - span / 1000, high + span / 1000
    bins = np.clip(np.searchsorted(edges, k, side="left") - 1, 0, n_breaks - 1)
    counts = np.bincount(bins, minlength=n_breaks)
    sums = np.bincount(bins, weights=k, minlength=n_breaks)
    with np.errstate(invalid="ignore", divide="ignore"):
        dk = sums / counts
    dk = np.where((counts == 0) | (dk == 0), mids, dk)
    if np.any(dk <= 0):
        return float("nan"), float("nan")
    log_k = np.log10(dk)
    log_p = np.log10(counts / len(k) + 1e-9)
    fit = stats.linregress(log_k, log_p)
    return float(fit.rvalue**2), float(fit.slope)


def pick_power(
    table: pd.DataFrame,
    *,
    r2_cut: float = SCALE_FREE_R2,
    max_mean_k: float = HIGH_MEAN_CONNECTIVITY,
) -> tuple[int, bool]:
    """Lowest power whose ``sft_r2`` reaches ``r2_cut`` at a sparse connectivity.

    ``sft_r2`` is the signed fit (a scale-free network needs a negative slope); WGCNA's own
    ``powerEstimate`` thresholds the unsigned R^2, its tutorial plots the signed one. A fit
    reached while the mean connectivity is still above ``max_mean_k`` is usually spurious (a
    steep slope from one global driver) and hides small modules, so such powers are passed
    over. Without a qualifying power, the best fit among sparse powers is taken (among all
    powers when none is sparse).

    Returns
    -------
    The power and whether the cut was reached.
    """
    sparse = (
        table["mean_k"] <= max_mean_k if "mean_k" in table else pd.Series(True, index=table.index)
    )
    reached = table.loc[(table["sft_r2"] >= r2_cut) & sparse, "power"]
    if len(reached):
        return int(reached.min()), True
    candidates = table[sparse] if sparse.any() else table
    fits = candidates["sft_r2"].fillna(-np.inf)
    return int(candidates.loc[fits.idxmax(), "power"]), False


def tom_similarity(adj: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """Topological overlap of a non-negative symmetric adjacency (WGCNA, ``TOMDenom="min"``).

    ``TOM_ij = (sum_u a_iu a_uj + a_ij) / (min(k_i, k_j) + 1 - a_ij)`` with ``a_ii = 0`` and
    ``k_i = sum_u a_iu``; the diagonal is 1. Computed in float32; with ``overwrite`` the
    input is used as scratch space.
    """
    A = np.asarray(adj, dtype=np.float32)
    if A is adj and (not overwrite or not A.flags.writeable):
        A = A.copy()
    np.fill_diagonal(A, 0.0)
    k = A.sum(axis=1, dtype=np.float64).astype(np.float32)
    shared = A @ A.T  # A is symmetric: BLAS syrk, half the work of A @ A

    def finish(rows: slice) -> None:
        _tom_from_shared(shared[rows], A[rows], k[rows], k)

    _in_row_blocks(finish, len(A), len(A))
    np.fill_diagonal(shared, 1.0)
    return shared


def tom_distance(adj: np.ndarray) -> np.ndarray:
    """Condensed TOM dissimilarity ``1 - TOM`` of an adjacency, overwriting nothing but it.

    The same values as ``1 - tom_similarity(adj)`` in the order of
    :func:`scipy.spatial.distance.squareform` (float32, half the memory of the square
    matrix), built in row blocks of the upper triangle: the numerator's product costs what
    a symmetric product (syrk) does, and no second square matrix is ever held. ``adj`` is
    used as scratch (its diagonal is set to 0).
    """
    n = len(adj)
    condensed = np.empty(n * (n - 1) // 2, dtype=np.float32)
    for position, segment in _tom_distance_segments(adj):
        condensed[position : position + len(segment)] = segment
    return condensed


def _tom_distance_segments(adj: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`tom_distance` as consecutive segments ``(position, values)`` of the condensed
    vector, one per row block (each segment is valid until the next one is produced)."""
    A = np.asarray(adj, dtype=np.float32)
    n = len(A)
    np.fill_diagonal(A, 0.0)
    k = A.sum(axis=1, dtype=np.float64).astype(np.float32)
    offsets = _condensed_offsets(n)
    # thin blocks waste little of the triangle; thick ones keep sgemm at full speed
    blocks = _row_blocks(n, n, elements=n * min(max(n // 4, 256), 1024))
    buffer = np.empty((blocks[0].stop - blocks[0].start) * n, dtype=np.float32)
    segment_buffer = np.empty_like(buffer)
    for rows in blocks:
        start, stop = rows.start, rows.stop
        shared = buffer[: (stop - start) * (n - start)].reshape(stop - start, n - start)
        np.matmul(A[rows], A[start:].T, out=shared)
        first = int(offsets[start])
        segment = segment_buffer[: _condensed_end(offsets, n, stop) - first]

        def finish(part: slice, shared=shared, start=start, segment=segment, first=first) -> None:
            lines = slice(start + part.start, start + part.stop)
            block = shared[part]
            _tom_from_shared(block, A[lines, start:], k[lines], k[start:])
            np.subtract(np.float32(1.0), block, out=block)
            for row in range(part.start, part.stop):
                i = start + row
                at = int(offsets[i]) - first
                segment[at : at + n - i - 1] = block[row - part.start, row + 1 :]

        _in_row_blocks(finish, stop - start, n - start, elements=1 << 22)
        yield first, segment


def _condensed_end(offsets: np.ndarray, n: int, stop: int) -> int:
    """Position just after the pairs of rows ``< stop`` in a condensed vector of ``n``."""
    return int(offsets[stop]) if stop < n else n * (n - 1) // 2


def _spilled_tom_distance(adj: np.ndarray, spill: BinaryIO) -> int:
    """:func:`tom_distance` written to ``spill`` block by block instead of held in memory;
    returns its length."""
    length = 0
    for _, segment in _tom_distance_segments(adj):
        segment.tofile(spill)
        length += len(segment)
    spill.flush()
    return length


def average_linkage(condensed: np.ndarray) -> np.ndarray:
    """Average-linkage tree of a condensed dissimilarity (SciPy linkage matrix).

    fastcluster (the library R's WGCNA uses) run in place on one float64 copy of
    ``condensed``: SciPy's ``linkage`` copies its input once more, and so does
    ``fastcluster.linkage`` even with ``preserve_input=False`` (it starts with
    ``numpy.array(X)``), which would hold a third n x n float32's worth of memory at the peak.
    """
    return _linkage_in_place(np.array(condensed, dtype=np.float64, order="C"))


def _linkage_in_place(distances: np.ndarray) -> np.ndarray:
    """fastcluster's average linkage on a float64 condensed dissimilarity it overwrites."""
    n = int(round((1 + np.sqrt(1 + 8 * len(distances))) / 2))
    if n * (n - 1) // 2 != len(distances) or n < 2:
        raise InputError(f"average_linkage: {len(distances)} is not a condensed distance length")
    if not all(np.isfinite(part).all() for part in np.array_split(distances, 64)):
        raise InputError("average_linkage: distances must be finite")
    tree = np.empty((n - 1, 4))
    fastcluster.linkage_wrap(n, distances, tree, fastcluster.mthidx["average"])
    return tree


SPILL_BYTES = 256 * 2**20
"""A condensed float32 dissimilarity larger than this is written to a temporary file as it
is built and read back after the linkage (at 20,000 genes: 0.8 GB held neither next to the
1.6 GB adjacency nor next to fastcluster's 1.6 GB float64 copy)."""
_SPILL_CHUNK = 1 << 24


def _tom_and_linkage(
    holder: list[np.ndarray], lap: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray]:
    """TOM dissimilarity and its average-linkage tree from the adjacency in ``holder``.

    ``holder`` holds the only reference to the adjacency (used as scratch), taken out so that
    it is freed once the TOM is built. A condensed dissimilarity over :data:`SPILL_BYTES` goes
    to a temporary file as it is built and is read back after fastcluster has clustered its
    float64 copy, so the peak holds the adjacency or that copy, never both with it.

    Returns the tree and the condensed float32 dissimilarity.
    """
    adj = holder.pop()
    n = len(adj)
    if n * (n - 1) // 2 * 4 <= SPILL_BYTES:
        condensed = tom_distance(adj)
        del adj
        lap("tom")
        tree = average_linkage(condensed)
        lap("linkage")
        return tree, condensed
    with tempfile.TemporaryFile(prefix="radmap-dissimilarity-") as spill:
        size = _spilled_tom_distance(adj, spill)
        del adj
        lap("tom")
        distances = np.empty(size, dtype=np.float64)
        spill.seek(0)
        for start in range(0, size, _SPILL_CHUNK):
            count = min(_SPILL_CHUNK, size - start)
            distances[start : start + count] = np.fromfile(spill, dtype=np.float32, count=count)
        tree = _linkage_in_place(distances)
        del distances
        lap("linkage")
        spill.seek(0)
        condensed = np.fromfile(spill, dtype=np.float32, count=size)
    return tree, condensed


def cutree_hybrid(
    link: np.ndarray,
    dist: np.ndarray,
    *,
    min_cluster_size: int = 20,
    deep_split: int | bool = 1,
    cut_height: float | None = None,
    max_core_scatter: float | None = None,
    min_gap: float | None = None,
    max_abs_core_scatter: float | None = None,
    min_abs_gap: float | None = None,
    min_split_height: float | None = None,
    min_abs_split_height: float | None = None,
    pam_stage: bool = True,
    pam_respects_dendro: bool = True,
    max_pam_dist: float | None = None,
    respect_small_clusters: bool = True,
) -> np.ndarray:
    """Dynamic tree cut, hybrid method (``cutreeHybrid`` of the R package dynamicTreeCut).

    A faithful port of the R function (version 1.63, ``useMedoids = FALSE``, no external
    split functions): branches of the dendrogram are merged bottom-up unless both are big
    enough (``min_cluster_size``), tight enough (core scatter) and separated by a large
    enough gap; the basic branches left are the clusters. The PAM stage then assigns the
    unlabelled objects to the cluster of smallest average distance on their own branch.

    Parameters
    ----------
    link
        SciPy linkage matrix (monotone, e.g. average linkage) of the objects.
    dist
        Dissimilarity used to build ``link``: a square matrix (diagonal treated as 0) or
        its condensed upper triangle (:func:`scipy.spatial.distance.squareform` order).
    min_cluster_size, deep_split, cut_height, max_core_scatter, min_gap,
    max_abs_core_scatter, min_abs_gap, min_split_height, min_abs_split_height,
    pam_stage, pam_respects_dendro, max_pam_dist, respect_small_clusters
        As in R (``cut_height=None`` is 99% of the height range above the 5% quantile).

    Returns
    -------
    Integer labels per object: 0 = unassigned, 1 = largest cluster, 2 = next, ...
    """
    link = np.asarray(link, dtype=float)
    n_merge = link.shape[0]
    n_points = n_merge + 1
    if n_merge < 1:
        raise InputError("cutree_hybrid: the tree has no merges")
    dist = np.asarray(dist)
    if dist.ndim == 1:
        if len(dist) != n_points * (n_points - 1) // 2:
            raise InputError(
                f"cutree_hybrid: a condensed dist must have {n_points * (n_points - 1) // 2} "
                f"entries for {n_points} objects, got {len(dist)}"
            )
    elif dist.shape != (n_points, n_points):
        raise InputError(f"cutree_hybrid: dist must be {n_points} x {n_points}")
    elif np.any(np.diagonal(dist) != 0):
        dist = dist.copy()
        np.fill_diagonal(dist, 0)
    height = link[:, 2]
    children = link[:, :2].astype(np.int64)

    ref_merge = max(round(n_merge * 0.05), 1)
    ref_height = height[ref_merge - 1]
    if cut_height is None:
        cut_height = 0.99 * (height.max() - ref_height) + ref_height
    else:
        cut_height = min(cut_height, height.max())
    if max_pam_dist is None:
        max_pam_dist = cut_height
    if np.sum(height <= cut_height) < min_cluster_size:
        return np.zeros(n_points, dtype=int)

    default_mcs = np.array([0.64, 0.73, 0.82, 0.91, 0.95])
    default_mg = (1 - default_mcs) * 3 / 4
    if isinstance(deep_split, bool):
        deep_split = int(deep_split) * (len(default_mcs) - 2)
    index = deep_split + 1
    if not 1 <= index <= len(default_mcs):
        raise InputError(f"deep_split must be 0-{len(default_mcs) - 1}, got {deep_split}")
    if max_core_scatter is None:
        max_core_scatter = _interpolate(default_mcs, index)
    if min_gap is None:
        min_gap = _interpolate(default_mg, index)
    if max_abs_core_scatter is None:
        max_abs_core_scatter = ref_height + max_core_scatter * (cut_height - ref_height)
    if min_abs_gap is None:
        min_abs_gap = min_gap * (cut_height - ref_height)
    if min_split_height is None:
        min_split_height = 0.0
    if min_abs_split_height is None:
        min_abs_split_height = ref_height + min_split_height * (cut_height - ref_height)

    def core_scatter(branch: int) -> float:
        members = singletons[branch]
        n_core = _core_size(len(members), min_cluster_size)
        core = np.asarray(members[:n_core])
        block = _distance_block(dist, core)
        return float(np.mean(block.sum(axis=0, dtype=np.float64) / (n_core - 1)))

    is_basic: list[bool] = []
    is_top_basic: list[bool] = []
    fail_size: list[bool] = []
    size: list[int] = []
    attach_height: list[float] = []
    singletons: list[list[int]] = []
    basic_clusters: list[list[int]] = []
    merge_branch = np.full(n_merge, -1, dtype=np.int64)
    on_branch = np.full(n_points, -1, dtype=np.int64)

    def new_branch(basic: bool, members: list[int], basics: list[int], n: int) -> int:
        is_basic.append(basic)
        is_top_basic.append(basic)
        fail_size.append(False)
        size.append(n)
        attach_height.append(np.nan)
        singletons.append(members)
        basic_clusters.append(basics)
        return len(size) - 1

    def fails(branch: int, scatter: float, h: float) -> tuple[bool, bool]:
        """Whether a basic branch merging at height h must be merged; and if only by size."""
        diffuse = scatter > max_abs_core_scatter or h - scatter < min_abs_gap
        failing = is_basic[branch] and (
            size[branch] < min_cluster_size or diffuse or h < min_abs_split_height
        )
        return failing, not diffuse

    for merge in range(n_merge):
        h = height[merge]
        if h > cut_height:
            continue
        left, right = children[merge]
        left_single, right_single = left < n_points, right < n_points
        if left_single and right_single:
            merge_branch[merge] = new_branch(True, [int(left), int(right)], [], 2)
        elif left_single or right_single:
            gene, sub = (left, right) if left_single else (right, left)
            branch = merge_branch[sub - n_points]
            if branch < 0:
                raise RuntimeError("cutree_hybrid: a merge below the cut has no branch")
            if is_basic[branch]:
                singletons[branch].append(int(gene))
            else:
                on_branch[gene] = branch
            size[branch] += 1
            merge_branch[merge] = branch
        else:
            first, second = merge_branch[left - n_points], merge_branch[right - n_points]
            small, large = (first, second) if size[first] <= size[second] else (second, first)
            small_scatter = core_scatter(small) if is_basic[small] else 0.0
            large_scatter = core_scatter(large) if is_basic[large] else 0.0

            do_merge, small_fails_size = fails(small, small_scatter, h)
            if not do_merge:
                do_merge, small_fails_size = fails(large, large_scatter, h)
                if do_merge:
                    small, large = large, small
            if do_merge:
                fail_size[small] = small_fails_size
                attach_height[small] = h
                is_top_basic[small] = False
                if is_basic[large]:
                    singletons[large].extend(singletons[small])
                else:
                    on_branch[singletons[small]] = large
                size[large] += size[small]
                merge_branch[merge] = large
            else:
                if is_basic[large] and not is_basic[small]:
                    small, large = large, small
                small_basics = [small] if is_basic[small] else basic_clusters[small]
                large_basics = [large] if is_basic[large] else basic_clusters[large]
                if is_basic[large] or (pam_stage and pam_respects_dendro):
                    attach_height[large] = attach_height[small] = h
                    merge_branch[merge] = new_branch(
                        False, [], small_basics + large_basics, size[small] + size[large]
                    )
                else:
                    basic_clusters[large] = basic_clusters[large] + small_basics
                    size[large] += size[small]
                    attach_height[small] = h
                    merge_branch[merge] = large

    n_branches = len(size)
    is_cluster = np.zeros(n_branches, dtype=bool)
    small_labels = np.zeros(n_points, dtype=np.int64)
    for branch in range(n_branches):
        if np.isnan(attach_height[branch]):
            attach_height[branch] = cut_height
        if is_top_basic[branch]:
            scatter = core_scatter(branch)
            is_cluster[branch] = (
                size[branch] >= min_cluster_size
                and scatter < max_abs_core_scatter
                and attach_height[branch] - scatter > min_abs_gap
            )
        if fail_size[branch]:
            small_labels[singletons[branch]] = branch + 1
    if not respect_small_clusters:
        small_labels[:] = 0

    colors = np.zeros(n_points, dtype=np.int64)
    branch_labels = np.zeros(n_branches, dtype=np.int64)
    for color, branch in enumerate(np.flatnonzero(is_cluster), start=1):
        colors[singletons[branch]] = color
        small_labels[singletons[branch]] = 0
        branch_labels[branch] = color
    n_clusters = int(is_cluster.sum())

    if pam_stage and n_clusters > 0 and np.any(colors == 0):
        colors = _pam_stage(
            dist,
            colors,
            small_labels,
            on_branch,
            [np.unique(branch_labels[b]) for b in basic_clusters],
            n_clusters,
            max_pam_dist=max_pam_dist,
            respect_dendro=pam_respects_dendro,
            respect_small=respect_small_clusters,
        )
    colors[colors < 0] = 0
    return _relabel_by_size(colors)


def merge_close_modules(
    X: np.ndarray, labels: np.ndarray, *, cut_height: float = 0.25
) -> np.ndarray:
    """Merge modules whose eigengenes are close (WGCNA ``mergeCloseModules``, iterated).

    Eigengene dissimilarity is ``1 - cor``; modules joined below ``cut_height`` by average
    linkage are merged and the eigengenes recomputed until nothing changes.

    Parameters
    ----------
    X
        Samples x genes.
    labels
        Integer module per gene, 0 = unassigned.

    Returns
    -------
    Integer labels, 0 = unassigned, renumbered 1, 2, ... by decreasing size.
    """
    labels = np.asarray(labels).copy()
    if cut_height <= 0:
        return _relabel_by_size(labels)
    while True:
        modules = np.unique(labels[labels > 0])
        if len(modules) < 2:
            break
        frame, _ = _eigengenes(np.asarray(X, dtype=float), labels, modules=list(modules))
        dissimilarity = 1.0 - np.corrcoef(frame.to_numpy().T)
        np.fill_diagonal(dissimilarity, 0.0)
        tree = linkage(squareform(dissimilarity, checks=False), method="average")
        groups = fcluster(tree, t=cut_height, criterion="distance")
        if len(np.unique(groups)) == len(modules):
            break
        target = {g: modules[groups == g].min() for g in np.unique(groups)}
        mapping = dict(zip(modules, (target[g] for g in groups)))
        labels = np.array([mapping.get(label, 0) for label in labels])
    return _relabel_by_size(labels)


def check_modules(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    min_module_size: int,
    network: str = "signed",
    min_core_kme: float = MIN_CORE_KME,
    min_core_kme_size: float | None = None,
    min_kme_to_stay: float = MIN_KME_TO_STAY,
) -> np.ndarray:
    """WGCNA's module check (``blockwiseModules``).

    A module is dissolved unless at least ``min_core_kme_size`` (default
    ``min_module_size / 3``) of its genes have kME above ``min_core_kme``; genes with kME
    below ``min_kme_to_stay`` become unassigned, and a module left with fewer than
    ``min_module_size`` genes is dissolved. kME is taken in absolute value for unsigned
    networks.
    """
    X = np.asarray(X, dtype=float)
    labels = np.asarray(labels).copy()
    if min_core_kme_size is None:
        min_core_kme_size = min_module_size / 3
    modules = np.unique(labels[labels > 0])
    if len(modules) == 0:
        return labels
    frame, _ = _eigengenes(np.asarray(X, dtype=float), labels, modules=list(modules))
    for column, module in enumerate(modules):
        members = np.flatnonzero(labels == module)
        kme = _correlate(X[:, members], frame.to_numpy()[:, [column]])[:, 0]
        if network == "unsigned":
            kme = np.abs(kme)
        kme = np.nan_to_num(kme, nan=-np.inf)
        if np.sum(kme > min_core_kme) < min_core_kme_size:
            labels[members] = 0
            continue
        labels[members[kme < min_kme_to_stay]] = 0
        if np.sum(labels == module) < min_module_size:
            labels[labels == module] = 0
    return labels


def reassign_genes(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    min_module_size: int,
    network: str = "signed",
    threshold: float = REASSIGN_THRESHOLD,
) -> np.ndarray:
    """Move genes to the module whose eigengene they correlate with clearly best.

    As ``blockwiseModules`` (``reassignThreshold``): a module gene whose best kME is in
    another module moves there when the ratio of Fisher-transform p-values
    ``p(best kME) / p(own kME)`` is below ``threshold``; a module left smaller than
    ``min_module_size`` is dissolved.
    """
    X = np.asarray(X, dtype=float)
    labels = np.asarray(labels).copy()
    modules = np.unique(labels[labels > 0])
    if len(modules) < 2:
        return labels
    assigned = np.flatnonzero(labels > 0)
    frame, _ = _eigengenes(np.asarray(X, dtype=float), labels, modules=list(modules))
    kme = _correlate(X[:, assigned], frame.to_numpy())
    if network == "unsigned":
        kme = np.abs(kme)
    kme = np.nan_to_num(kme, nan=-1.0)
    own_column = np.searchsorted(modules, labels[assigned])
    own = kme[np.arange(len(assigned)), own_column]
    best_column = np.argmax(kme, axis=1)
    best = kme[np.arange(len(assigned)), best_column]
    candidate = best > own
    if candidate.any():
        n = X.shape[0]
        log_ratio = _log_fisher_p(best[candidate], n) - _log_fisher_p(own[candidate], n)
        move = np.flatnonzero(candidate)[log_ratio < np.log(threshold)]
        labels[assigned[move]] = modules[best_column[move]]
    for module in modules:
        if 0 < np.sum(labels == module) < min_module_size:
            labels[labels == module] = 0
    return labels


# ---------------------------------------------------------------------------------------
# internals


def _wgcna_labels(
    values: np.ndarray,
    *,
    power: int | None,
    network: str,
    min_module_size: int,
    deep_split: int,
    max_block_size: int,
    seed: int,
    warnings: list[str],
    timings: dict[str, float],
    scan_powers: bool = True,
) -> tuple[np.ndarray, int, pd.DataFrame, list[int]]:
    """Tree-cut labels in one block, or blockwise beyond ``max_block_size`` genes.

    Returns the labels (0 = unassigned), the power, the soft-threshold table and the block
    sizes.
    """
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = timings.get(step, 0.0) + now - clock
        clock = now

    n_genes = values.shape[1]
    if n_genes <= max_block_size:
        cor = gene_correlation(values)
        lap("correlation")
        table = soft_threshold(cor, network=network) if scan_powers else _unscanned()
        power = _chosen_power(table, power, warnings)
        lap("soft_threshold")
        holder = [_adjacency_in_place(cor, power, network)]
        del cor  # the holder keeps the only reference: freed once the TOM is built
        labels = _cut_tree(*_tom_and_linkage(holder, lap), min_module_size, deep_split, lap)
        return labels, power, table, [n_genes]

    table = _streamed_soft_threshold(values, network=network) if scan_powers else _unscanned()
    power = _chosen_power(table, power, warnings)
    lap("soft_threshold")
    blocks = gene_blocks(values, max_block_size=max_block_size, seed=seed)
    lap("preclustering")
    labels = np.zeros(n_genes, dtype=int)
    for block in blocks:
        cor = gene_correlation(values[:, block])
        lap("correlation")
        holder = [_adjacency_in_place(cor, power, network)]
        del cor
        block_labels = _cut_tree(*_tom_and_linkage(holder, lap), min_module_size, deep_split, lap)
        assigned = block_labels > 0
        labels[block[assigned]] = block_labels[assigned] + labels.max()
    return labels, power, table, [len(block) for block in blocks]


def _unscanned() -> pd.DataFrame:
    """The soft-threshold table of a run that was given its power and asked not to scan."""
    return pd.DataFrame(columns=["power", "sft_r2", "slope", "mean_k", "median_k", "max_k"])


def _chosen_power(table: pd.DataFrame, power: int | None, warnings: list[str]) -> int:
    if power is None:
        power, reached = pick_power(table)
        if not reached:
            best = table.loc[table["power"] == power, "sft_r2"].iloc[0]
            _warn(
                warnings,
                f"modules: no soft-threshold power reaches scale-free fit R^2 >= "
                f"{SCALE_FREE_R2}; using power {power}, the best fit (R^2 = {best:.2f})",
            )
    mean_k = table.loc[table["power"] == power, "mean_k"]
    if len(mean_k) and mean_k.iloc[0] > HIGH_MEAN_CONNECTIVITY:
        _warn(
            warnings,
            f"modules: mean connectivity at power {power} is {mean_k.iloc[0]:.0f}; values in "
            "the hundreds suggest a strong global driver (batch, tumour purity) or a spurious "
            "scale-free fit and can hide small modules (WGCNA FAQ: consider power 12 for "
            "signed networks of 40+ samples)",
        )
    return int(power)


def _cut_tree(
    tree: np.ndarray,
    dissimilarity: np.ndarray,
    min_module_size: int,
    deep_split: int,
    lap: Callable[[str], None],
) -> np.ndarray:
    labels = cutree_hybrid(
        tree,
        dissimilarity,
        min_cluster_size=min_module_size,
        deep_split=deep_split,
        cut_height=DETECT_CUT_HEIGHT,
    )
    lap("tree_cut")
    return labels


def _streamed_soft_threshold(
    values: np.ndarray, *, network: str, powers: Sequence[int] = POWERS
) -> pd.DataFrame:
    """:func:`soft_threshold` of the genes of ``values`` without their n x n correlation.

    The correlation is made one block of rows at a time from the standardised values (as
    WGCNA's ``pickSoftThreshold`` does with ``blockSize``).
    """
    z = _standardize(np.asarray(values, dtype=np.float32), ddof=0).astype(np.float32, copy=False)
    z[:, ~np.isfinite(z).all(axis=0)] = 0.0
    n_genes = z.shape[1]
    powers = sorted({int(p) for p in powers})
    connectivity = np.empty((len(powers), n_genes))
    scale = np.float32(z.shape[0])
    for rows in _row_blocks(n_genes, n_genes, elements=1 << 24):
        cor = z[:, rows].T @ z
        cor /= scale
        np.clip(cor, -1.0, 1.0, out=cor)
        lines = np.arange(rows.stop - rows.start)
        cor[lines, rows.start + lines] = 1.0
        connectivity[:, rows] = _connectivity(cor, powers, network)
    return _soft_table(powers, connectivity, N_BREAKS)


def gene_blocks(values: np.ndarray, *, max_block_size: int, seed: int = 0) -> list[np.ndarray]:
    """Split genes into blocks of correlated genes, none above ``max_block_size``.

    As WGCNA's ``blockwiseModules`` (``projectiveKMeans``): k-means on the standardised
    genes (:class:`sklearn.cluster.KMeans`; on unit vectors Euclidean distance is
    ``sqrt(2 (1 - r))``) into ``min(n / 20, 100 n / max_block_size)`` clusters; the
    largest subtrees of the average-linkage tree of their centres that fit in a block are
    packed into blocks in tree order, so that correlated clusters share a block.

    Returns
    -------
    Sorted gene positions of each block.
    """
    from sklearn.cluster import KMeans

    n_obs, n_genes = values.shape
    max_block_size = int(max_block_size)
    if n_genes <= max_block_size:
        return [np.arange(n_genes)]
    n_clusters = int(max(2, min(n_genes // 20, 100 * n_genes // max_block_size)))
    unit = np.nan_to_num(_standardize(values, ddof=0).T / np.sqrt(n_obs)).astype(np.float32)
    kmeans = KMeans(n_clusters=n_clusters, n_init=1, max_iter=50, random_state=seed)
    clusters = kmeans.fit_predict(unit)
    sizes = np.bincount(clusters, minlength=n_clusters)
    tree = to_tree(linkage(kmeans.cluster_centers_.astype(float), "average", metric="correlation"))
    # the largest subtrees of the centres' tree that fit, in tree order, packed greedily
    groups: list[list[int]] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        members = node.pre_order()
        if sizes[members].sum() <= max_block_size or node.is_leaf():
            groups.append(members)
        else:
            pending.extend([node.get_right(), node.get_left()])
    blocks: list[list[np.ndarray]] = [[]]
    filled = 0
    for group in groups:
        genes = np.flatnonzero(np.isin(clusters, group))
        for start in range(0, len(genes), max_block_size):
            part = genes[start : start + max_block_size]
            if filled + len(part) > max_block_size:
                blocks.append([])
                filled = 0
            blocks[-1].append(part)
            filled += len(part)
    return [np.sort(np.concatenate(parts)) for parts in blocks if parts]


def max_genes_in_memory(available_bytes: float | None = None) -> int:
    """Largest one-block WGCNA network that fits in (70 % of) the available memory.

    One block holds the n x n float32 correlation / adjacency (4 n^2 bytes), then
    fastcluster's float64 copy of the condensed dissimilarity (4 n^2 bytes) while the float32
    one waits on disk (:func:`_tom_and_linkage`; below :data:`SPILL_BYTES` both stay in
    memory, at most 6 n^2 bytes of a small network).
    """
    if available_bytes is None:
        import psutil

        available_bytes = psutil.virtual_memory().available
    genes = int(np.sqrt(0.7 * available_bytes / BYTES_PER_GENE_PAIR))
    return max(genes // 1000 * 1000, 1000)


def _leiden_labels(
    values: np.ndarray, *, min_module_size: int, n_neighbors: int, resolution: float, seed: int
) -> np.ndarray:
    import scanpy as sc

    # Euclidean distance between centred unit-norm genes is sqrt(2 (1 - r)): the same
    # neighbours as correlation distance, but computed by BLAS (4x faster than "correlation")
    unit = _standardize(values, ddof=0).T / np.sqrt(values.shape[0])
    genes = anndata.AnnData(X=unit.astype(np.float32))
    sc.pp.neighbors(
        genes,
        n_neighbors=int(min(n_neighbors, genes.n_obs - 1)),
        use_rep="X",
        metric="euclidean",
        transformer="sklearn",
        method="gauss",
        random_state=seed,
    )
    sc.tl.leiden(
        genes,
        resolution=resolution,
        flavor="igraph",
        n_iterations=2,
        directed=False,
        random_state=seed,
    )
    communities = genes.obs["leiden"].astype(int).to_numpy() + 1
    sizes = np.bincount(communities)
    communities[sizes[communities] < min_module_size] = 0
    return _relabel_by_size(communities)


def _pam_stage(
    dist: np.ndarray,
    colors: np.ndarray,
    small_labels: np.ndarray,
    on_branch: np.ndarray,
    labels_on_branch: list[np.ndarray],
    n_clusters: int,
    *,
    max_pam_dist: float,
    respect_dendro: bool,
    respect_small: bool,
) -> np.ndarray:
    colors = colors.copy()
    tree_colors = colors.copy()
    labelled = np.flatnonzero(tree_colors > 0)
    counts = np.bincount(tree_colors[labelled], minlength=n_clusters + 1)[1:]
    weights = np.zeros((len(colors), n_clusters), dtype=dist.dtype)
    weights[labelled, tree_colors[labelled] - 1] = 1.0 / counts[tree_colors[labelled] - 1]
    # mean distance of every object to every tree-cut cluster
    mean_dist = _distance_product(dist, weights)
    diameter = np.zeros(n_clusters)
    for cluster in range(n_clusters):
        members = tree_colors == cluster + 1
        if counts[cluster] > 1:
            average = mean_dist[members, cluster] * counts[cluster] / (counts[cluster] - 1)
            diameter[cluster] = average.max()
    everything = np.ones(n_clusters, dtype=bool)

    def allowed(branch: int) -> np.ndarray:
        if not respect_dendro:
            return everything
        mask = np.zeros(n_clusters, dtype=bool)
        on = labels_on_branch[branch]
        mask[on[on > 0] - 1] = True
        return mask

    def nearest(distances: np.ndarray, mask: np.ndarray) -> tuple[int, float]:
        masked = np.where(mask, distances, np.inf)
        best = int(np.argmin(masked))
        return best + 1, float(masked[best])

    if respect_small:
        for small in np.unique(small_labels[small_labels > 0]):
            members = np.flatnonzero(small_labels == small)
            branches = np.unique(on_branch[members])
            if len(branches) > 1:
                raise RuntimeError("cutree_hybrid: a small cluster lies on several branches")
            if respect_dendro and branches[0] < 0:
                continue
            mask = allowed(branches[0])
            if not mask.any():
                continue
            label, distance = nearest(mean_dist[members].mean(axis=0), mask)
            if distance < diameter[label - 1] or distance < max_pam_dist:
                colors[members] = label
            else:
                colors[members] = -1

    unlabelled = np.flatnonzero(colors == 0)
    if respect_dendro:
        unlabelled = unlabelled[on_branch[unlabelled] >= 0]
    for obj in unlabelled:
        mask = allowed(on_branch[obj])
        if not mask.any():
            continue
        label, distance = nearest(mean_dist[obj], mask)
        if distance < diameter[label - 1] or distance < max_pam_dist:
            colors[obj] = label
    return colors


def _distance_block(dist: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``dist[members][:, members]`` of a square or condensed dissimilarity."""
    if dist.ndim == 2:
        return dist[np.ix_(members, members)]
    n = int(round((1 + np.sqrt(1 + 8 * len(dist))) / 2))
    low = np.minimum(members[:, None], members[None, :]).astype(np.int64)
    high = np.maximum(members[:, None], members[None, :]).astype(np.int64)
    same = low == high
    index = np.where(same, 0, low * n - low * (low + 1) // 2 + high - low - 1)
    return np.where(same, 0, dist[index]).astype(dist.dtype, copy=False)


def _distance_product(dist: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``dist @ weights`` (float64) of a square or condensed dissimilarity.

    A condensed ``dist`` is expanded one block of rows of its upper triangle ``U`` at a time:
    ``dist = U + U.T``, so each block adds ``U_block @ weights`` to its own rows and
    ``U_block.T @ weights_block`` to the rows at and after it.
    """
    if dist.ndim == 2:
        return np.asarray(dist @ weights, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n = len(weights)
    product = np.zeros((n, weights.shape[1]))
    offsets = _condensed_offsets(n)
    for rows in _row_blocks(n, n):
        start, stop = rows.start, rows.stop
        upper = np.zeros((stop - start, n - start))
        for i in range(start, stop):
            upper[i - start, i - start + 1 :] = dist[offsets[i] : offsets[i] + n - i - 1]
        product[rows] += upper @ weights[start:]
        product[start:] += upper.T @ weights[rows]
    return product


def _interpolate(data: np.ndarray, index: float) -> float:
    i = round(index)
    if i < 1:
        return float(data[0])
    if i >= len(data):
        return float(data[-1])
    r = index - i
    return float(data[i - 1] * (1 - r) + data[i] * r)


def _core_size(branch_size: int, min_cluster_size: int) -> int:
    base = min_cluster_size / 2 + 1
    if base < branch_size:
        return int(base + np.sqrt(branch_size - base))
    return int(branch_size)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    modules, counts = np.unique(labels[labels > 0], return_counts=True)
    order = modules[np.argsort(-counts, kind="stable")]
    mapping = np.zeros(labels.max() + 1 if labels.size else 1, dtype=int)
    mapping[order] = np.arange(1, len(order) + 1)
    result = np.zeros(labels.shape, dtype=int)
    positive = labels > 0
    result[positive] = mapping[labels[positive]]
    return result


def _names_by_size(labels: np.ndarray) -> np.ndarray:
    labels = _relabel_by_size(labels)
    return np.array([f"M{label}" if label > 0 else UNASSIGNED for label in labels], dtype=object)


def _write_modules(
    adata: anndata.AnnData,
    values: np.ndarray,
    network_mask: np.ndarray,
    names: np.ndarray,
    hub_count: int,
    network: str,
) -> pd.DataFrame:
    frame, explained = _eigengenes(values, names)
    frame.index = adata.obs_names.copy()
    modules = list(frame.columns)
    kme_network = np.full(len(names), np.nan)
    hubs_network = np.zeros(len(names), dtype=bool)
    rows = []
    gene_names = np.asarray(adata.var_names)[network_mask]
    for column, module in enumerate(modules):
        members = np.flatnonzero(names == module)
        kme = _correlate(values[:, members], frame.to_numpy()[:, [column]])[:, 0]
        kme_network[members] = kme
        strength = np.abs(kme) if network == "unsigned" else kme
        ranked = members[np.argsort(-np.nan_to_num(strength, nan=-np.inf), kind="stable")]
        hubs = ranked[: max(int(hub_count), 0)]
        hubs_network[hubs] = True
        rows.append(
            {
                "module": module,
                "size": len(members),
                "hub_genes": "|".join(gene_names[hubs]),
                "variance_explained": explained[module],
            }
        )
    table = pd.DataFrame(rows, columns=["module", "size", "hub_genes", "variance_explained"])
    table = table.set_index("module")

    n_genes = adata.n_vars
    module_all = np.full(n_genes, UNASSIGNED, dtype=object)
    module_all[network_mask] = names
    kme_all = np.full(n_genes, np.nan)
    kme_all[network_mask] = kme_network
    hub_all = np.zeros(n_genes, dtype=bool)
    hub_all[network_mask] = hubs_network
    adata.var["in_network"] = network_mask
    adata.var["module"] = pd.Categorical(module_all, categories=[*modules, UNASSIGNED])
    adata.var["kME"] = kme_all
    adata.var["is_hub"] = hub_all
    adata.obsm[EIGENGENES_KEY] = frame
    return table


def _eigengenes(
    X: np.ndarray, labels: np.ndarray, *, modules: list | None = None
) -> tuple[pd.DataFrame, dict]:
    if modules is None:
        modules = _module_order(labels)
    columns, explained = {}, {}
    # small LAPACK problems: extra BLAS threads only add contention (60x slower under load)
    with blas_controller().limit(limits=1, user_api="blas"):
        for module in modules:
            columns[module], explained[module] = _eigengene(X[:, labels == module])
    return pd.DataFrame(columns, columns=modules), explained


def _eigengene(module_values: np.ndarray) -> tuple[np.ndarray, float]:
    z = _standardize(module_values)
    z = z[:, np.all(np.isfinite(z), axis=0)]
    if z.shape[1] == 0:
        return np.full(module_values.shape[0], np.nan), float("nan")
    pc, explained = _first_component(z)
    if np.dot(pc - pc.mean(), z.mean(axis=1)) < 0:
        pc = -pc
    sd = pc.std(ddof=1)
    return ((pc - pc.mean()) / sd if sd > 0 else pc - pc.mean()), explained


def _first_component(z: np.ndarray) -> tuple[np.ndarray, float]:
    """Scores on the first principal axis of centred ``z`` and its share of the variance.

    Taken from the top eigenpair of the smaller Gram matrix (much faster than a full SVD
    of a wide module, same result up to sign).
    """
    n_samples, n_genes = z.shape
    total = float(np.sum(z * z))
    if total == 0:
        return np.zeros(n_samples), float("nan")
    if n_genes <= n_samples:
        value, vector = linalg.eigh(z.T @ z, subset_by_index=[n_genes - 1, n_genes - 1])
        scores = z @ vector[:, 0]
    else:
        value, vector = linalg.eigh(z @ z.T, subset_by_index=[n_samples - 1, n_samples - 1])
        scores = vector[:, 0] * np.sqrt(max(value[0], 0.0))
    return scores, float(value[0] / total)


def _checked_labels(X: np.ndarray, labels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    labels = np.asarray(labels, dtype=object)
    if X.ndim != 2 or labels.shape != (X.shape[1],):
        raise InputError(
            f"expected one module label per gene: X has {X.shape[-1]} genes, "
            f"{labels.size} labels given"
        )
    return X, labels


def _module_order(labels: Sequence) -> list:
    if isinstance(labels, pd.Series) and isinstance(labels.dtype, pd.CategoricalDtype):
        labels = labels.array
    if isinstance(labels, pd.Categorical):
        present = set(labels)
        return [c for c in labels.categories if c in present and c != UNASSIGNED]
    modules = {label for label in labels if label != UNASSIGNED and label != 0}
    return sorted(modules, key=_natural_key)


def _natural_key(label: object) -> list:
    parts = re.split(r"(\d+)", str(label))
    return [int(part) if part.isdigit() else part for part in parts]


def _standardize(X: np.ndarray, ddof: int = 1) -> np.ndarray:
    X = np.asarray(X)
    centred = X - X.mean(axis=0)
    sd = X.std(axis=0, ddof=ddof)
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / np.where(sd > 0, sd, np.nan)


def _correlate(X: np.ndarray, E: np.ndarray) -> np.ndarray:
    zx = _standardize(np.asarray(X, dtype=float), ddof=0)
    ze = _standardize(np.asarray(E, dtype=float), ddof=0)
    return np.clip(zx.T @ ze / X.shape[0], -1.0, 1.0)


def _log_fisher_p(r: np.ndarray, n: int) -> np.ndarray:
    r = np.clip(r, -1 + 1e-15, 1 - 1e-15)
    z = np.arctanh(r) * np.sqrt(max(n - 3, 1))
    return np.log(2.0) + stats.norm.logsf(np.abs(z))


def _tom_from_shared(
    shared: np.ndarray, adj: np.ndarray, k_rows: np.ndarray, k_columns: np.ndarray
) -> None:
    """``shared`` (rows of ``A @ A``) becomes TOM in place; the denominator one block at a time."""
    shared += adj
    denominator = np.minimum(k_rows[:, None], k_columns[None, :])
    denominator += np.float32(1.0)
    denominator -= adj
    shared /= denominator
    np.clip(shared, 0.0, 1.0, out=shared)


def _adjacency_in_place(cor: np.ndarray, power: float, network: str) -> np.ndarray:
    """:func:`adjacency` written over ``cor`` (float32), in row blocks on every core."""

    def transform(rows: slice) -> None:
        block = cor[rows]
        if network == "signed":
            block += np.float32(1.0)
            block *= np.float32(0.5)
        else:
            np.abs(block, out=block)
        np.power(block, np.float32(power), out=block)

    _in_row_blocks(transform, len(cor), cor.shape[1])
    return cor


def _condensed_offsets(n: int) -> np.ndarray:
    """Position of ``(i, i + 1)`` in a condensed distance vector of ``n`` objects."""
    i = np.arange(n, dtype=np.int64)
    return i * n - i * (i + 1) // 2


def _row_blocks(n_rows: int, n_columns: int, *, elements: int = 1 << 22) -> list[slice]:
    size = int(np.clip(elements // max(n_columns, 1), 16, 8192))
    return [slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def _in_row_blocks(
    work: Callable[[slice], None], n_rows: int, n_columns: int, *, elements: int = 1 << 22
) -> None:
    """Run ``work`` on row blocks of an ``n_rows x n_columns`` array, one thread per core.

    numpy's elementwise loops release the GIL, so blocks of large matrices run in parallel;
    blocks also keep temporaries small and in cache.
    """
    blocks = _row_blocks(n_rows, n_columns, elements=elements)
    workers = min(len(blocks), n_cores())
    if workers <= 1:
        for rows in blocks:
            work(rows)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(work, blocks):
            pass


def _adjacency_base(cor: np.ndarray, network: str) -> np.ndarray:
    cor = np.asarray(cor, dtype=np.float32)
    if network == "signed":
        base = cor + np.float32(1.0)
        base *= np.float32(0.5)
    elif network == "unsigned":
        base = np.abs(cor)
    else:
        raise InputError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
    return base


def _network_values(adata: anndata.AnnData, warnings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if adata.n_obs < 3:
        raise InputError(f"modules: need at least 3 patients, got {adata.n_obs}")
    if "highly_variable" in adata.var:
        mask = adata.var["highly_variable"].to_numpy(dtype=bool).copy()
    else:
        mask = np.ones(adata.n_vars, dtype=bool)
    X = adata.X
    values = np.asarray(X[:, mask].toarray() if hasattr(X, "toarray") else X[:, mask], dtype=float)
    if not np.all(np.isfinite(values)):
        raise InputError("modules: expression has missing or infinite values; run preprocess first")
    constant = values.std(axis=0) == 0
    if constant.any():
        _warn(warnings, f"modules: {int(constant.sum())} constant genes left out of the network")
        positions = np.flatnonzero(mask)
        mask[positions[constant]] = False
        values = values[:, ~constant]
    return values, mask


def _check_options(
    method: str,
    network: str,
    power: int | None,
    min_module_size: int,
    deep_split: int,
    merge_cut_height: float,
) -> None:
    if method not in METHODS:
        raise InputError(f"module method must be one of {', '.join(METHODS)}, got {method!r}")
    if network not in NETWORKS:
        raise InputError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
    if power is not None and not 1 <= power <= 30:
        raise InputError(f"soft-threshold power must be between 1 and 30, got {power}")
    if min_module_size < 2:
        raise InputError(f"min_module_size must be at least 2, got {min_module_size}")
    if deep_split not in (0, 1, 2, 3, 4):
        raise InputError(f"deep_split must be 0, 1, 2, 3 or 4, got {deep_split}")
    if not 0 <= merge_cut_height < 2:
        raise InputError(f"merge_cut_height must be in [0, 2), got {merge_cut_height}")


def _warn(warnings: list[str], message: str) -> None:
    warnings.append(message)
    logger.warning(message)
