"""Stability under resampling: bootstrap the patients, re-detect modules, re-test the map.

Each bootstrap resample draws the patients with replacement (from its own seed,
``SeedSequence(seed, spawn_key=(b,))``), finds modules again with the bundle's parameters
(the soft-threshold power fixed at the full-data choice) and re-tests every module x feature
link with the rank map of :mod:`radmap.analysis.null` (Spearman / Kruskal–Wallis on ranks,
Benjamini–Hochberg over the map) on the resample's distinct patients (about 63 % of them;
duplicates would make the tests anti-conservative). Then:

- per full-data module, **reproducibility** = the best Jaccard index between its genes and a
  resample's modules (median, min, max over resamples), next to the same for a random set of
  as many network genes (``jaccard_background``: what chance alone gives);
- per link, **stability** = the fraction of resamples in which the best-matching module's
  link to the same feature passes q < ``alpha`` with the same sign (correlations; group
  tests have no sign).

Resamples are independent tasks, run serially or on Dask (:mod:`radmap.analysis.parallel`);
the result is the same either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd

from . import bundle
from .null import feature_families
from .parallel import SERIAL, check_scheduler, run_tasks, task_rng
from .validate import InputError

logger = logging.getLogger("radmap")

DEFAULT_BOOTSTRAPS = 100
MODULE_OPTIONS = ("method", "network", "min_module_size", "deep_split", "merge_cut_height")


def rank_map(
    eigengenes: pd.DataFrame,
    imaging: pd.DataFrame,
    types: Mapping[str, str],
    *,
    alpha: float,
    families: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Significance (q < alpha) and sign (+1 / -1; 0 for group tests) of the rank map. Both
    variables x features (features not tested: False / 0).

    q is BH within each family of ``families`` (feature -> family, as the map was
    corrected), or over the whole map without it."""
    from .associate import bh
    from .null import map_statistics, rank_design

    design, tested, all_features, _ = rank_design(eigengenes, imaging, types)
    statistic, p = map_statistics(design.ranks[None], design)
    statistic, p = statistic[0], p[0]
    sign = np.zeros_like(statistic)
    sign[:, design.correlation] = np.sign(statistic[:, design.correlation])
    family_of = np.array([(families or {}).get(str(f), "") for f in tested], dtype=object)
    q = np.ones_like(p)
    for family in np.unique(family_of):
        columns = family_of == family
        q[:, columns] = bh(p[:, columns])
    passes = np.nan_to_num(q, nan=1.0) < alpha
    index = eigengenes.columns
    significant = pd.DataFrame(passes, index=index, columns=tested).reindex(
        columns=all_features, fill_value=False
    )
    signs = pd.DataFrame(sign, index=index, columns=tested).reindex(
        columns=all_features, fill_value=0.0
    )
    return significant, signs


def _bootstrap_task(
    b: int,
    *,
    values: np.ndarray,
    genes: np.ndarray,
    imaging: pd.DataFrame,
    types: Mapping[str, str],
    options: Mapping[str, object],
    alpha: float,
    seed: int,
    families: Mapping[str, str] | None = None,
    blas_threads: int | None = None,
) -> dict:
    """Modules (gene index arrays) and the rank map of one bootstrap resample.

    ``blas_threads=1`` on Dask workers (one task per core), None (all) in this process.
    """
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    from .modules import find_modules

    rng = task_rng(seed, b)
    rows = rng.integers(0, values.shape[0], values.shape[0])
    names = pd.Index([f"b{i}" for i in range(len(rows))])
    sample = ad.AnnData(
        X=values[rows], obs=pd.DataFrame(index=names), var=pd.DataFrame(index=genes)
    )
    with threadpool_limits(limits=blas_threads) if blas_threads else nullcontext():
        find_modules(sample, **options, scan_powers=False)
    labels = sample.var["module"].astype(str).to_numpy()
    eigengenes = sample.obsm[bundle.EIGENGENES_KEY]
    modules = {m: np.flatnonzero(labels == m) for m in eigengenes.columns}
    if eigengenes.shape[1] == 0:
        return {"modules": modules, "significant": None, "sign": None}
    # The map is re-tested on the distinct patients of the resample: duplicated patients
    # would count as independent observations and make every test anti-conservative.
    distinct = np.unique(rows, return_index=True)[1]
    resampled = imaging.iloc[rows[distinct]].set_axis(names[distinct])
    significant, sign = rank_map(
        eigengenes.iloc[distinct], resampled, types, alpha=alpha, families=families
    )
    return {"modules": modules, "significant": significant, "sign": sign}


def _jaccard(members: np.ndarray, modules: Mapping[str, np.ndarray]) -> tuple[float, str | None]:
    best, match = 0.0, None
    for name, genes in modules.items():
        overlap = len(np.intersect1d(members, genes, assume_unique=True))
        score = overlap / (len(members) + len(genes) - overlap)
        if score > best:
            best, match = score, name
    return best, match


def bootstrap_stability(
    adata: ad.AnnData,
    *,
    n_bootstraps: int = DEFAULT_BOOTSTRAPS,
    alpha: float = 0.05,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int = 2,
) -> dict:
    """Module reproducibility and link stability over bootstrap resamples of the patients.

    Parameters
    ----------
    adata
        A bundle (``X``, ``var["module"]``, ``var["in_network"]``, ``obsm`` eigengenes and
        imaging, the ``features`` table, module parameters in ``uns``).
    n_bootstraps
        Resamples.
    alpha
        q threshold of a link.
    seed
        Seed of the resamples.
    scheduler, n_workers
        See :func:`radmap.analysis.parallel.run_tasks` (one task per resample).

    Returns
    -------
    ``{"modules": DataFrame (index = module; jaccard_median, jaccard_min, jaccard_max,
    jaccard_background),
    "links": DataFrame (module, feature, stability), "summary": dict}``.
    """
    if n_bootstraps < 1:
        raise InputError(f"stability: n_bootstraps must be at least 1, got {n_bootstraps}")
    started = time.perf_counter()
    uns = adata.uns[bundle.UNS_KEY]
    params = uns.get("params", {}).get("modules", {}) or {}
    options = {key: params[key] for key in MODULE_OPTIONS if key in params}
    if params.get("power") not in (None, "", "None"):
        options["power"] = int(params["power"])
    network = (
        adata.var["in_network"].to_numpy(dtype=bool)
        if "in_network" in adata.var
        else np.ones(adata.n_vars, dtype=bool)
    )
    genes = adata.var_names[network]
    values = np.asarray(adata[:, genes].X, dtype=np.float32)
    labels = adata.var["module"].astype(str).reindex(genes).to_numpy()
    eigengenes = adata.obsm[bundle.EIGENGENES_KEY]
    imaging = adata.obsm[bundle.IMAGING_KEY]
    types = uns["features"]["type"].astype(str).to_dict()
    full = {m: np.flatnonzero(labels == m) for m in eigengenes.columns}
    families = feature_families(uns.get("associations"))
    full_significant, full_sign = rank_map(
        eigengenes, imaging, types, alpha=alpha, families=families
    )

    on_dask = check_scheduler(scheduler) != SERIAL and n_bootstraps > 1
    results = run_tasks(
        _bootstrap_task,
        list(range(n_bootstraps)),
        shared={
            "values": values,
            "genes": np.asarray(genes),
            "imaging": imaging,
            "types": types,
            "options": options,
            "alpha": alpha,
            "seed": seed,
            "families": families,
            "blas_threads": 1 if on_dask else None,
        },
        scheduler=scheduler,
        n_workers=n_workers,
    )
    jaccard = np.zeros((len(full), n_bootstraps))
    background = np.zeros((len(full), n_bootstraps))
    passes = np.zeros((len(full), imaging.shape[1]))
    for b, result in enumerate(results):
        for i, (module, members) in enumerate(full.items()):
            jaccard[i, b], match = _jaccard(members, result["modules"])
            chance = task_rng(seed, b, 1, i).choice(len(genes), size=len(members), replace=False)
            background[i, b] = _jaccard(np.sort(chance), result["modules"])[0]
            if match is None or result["significant"] is None:
                continue
            same_sign = result["sign"].loc[match].to_numpy() == full_sign.loc[module].to_numpy()
            passes[i] += result["significant"].loc[match].to_numpy() & same_sign
    module_table = pd.DataFrame(
        {
            "jaccard_median": np.median(jaccard, axis=1),
            "jaccard_min": jaccard.min(axis=1),
            "jaccard_max": jaccard.max(axis=1),
            "jaccard_background": np.median(background, axis=1),
        },
        index=pd.Index(list(full), name="module"),
    )
    stability = pd.DataFrame(passes / n_bootstraps, index=list(full), columns=imaging.columns)
    links = stability.stack().rename("stability").reset_index()
    links.columns = ["module", "feature", "stability"]
    links["module"] = links["module"].astype(str)
    links["feature"] = links["feature"].astype(str)
    links["significant_full"] = full_significant.to_numpy().ravel()
    summary = {
        "n_bootstraps": int(n_bootstraps),
        "seed": int(seed),
        "alpha": float(alpha),
        "median_module_jaccard": float(np.median(module_table["jaccard_median"]))
        if len(module_table)
        else float("nan"),
    }
    logger.info(
        "stability: %d bootstraps, %d modules (%.1f s)",
        n_bootstraps,
        len(full),
        time.perf_counter() - started,
    )
    return {"modules": module_table, "links": links, "summary": summary}


def add_stability(
    adata: ad.AnnData,
    *,
    n_bootstraps: int = DEFAULT_BOOTSTRAPS,
    alpha: float = 0.05,
    seed: int = 0,
    scheduler: str | None = "auto",
    n_workers: int = 2,
) -> None:
    """Run :func:`bootstrap_stability` on a bundle and record it: ``stability`` column of
    the ``associations`` table, ``jaccard_*`` columns of the ``modules`` table and the
    summary in ``uns["radmap"]["stability"]``. ``scheduler="auto"`` uses a local Dask
    cluster."""
    from .parallel import resolve_scheduler

    result = bootstrap_stability(
        adata,
        n_bootstraps=n_bootstraps,
        alpha=alpha,
        seed=seed,
        scheduler=resolve_scheduler(scheduler, heavy=True),
        n_workers=n_workers,
    )
    uns = adata.uns[bundle.UNS_KEY]
    key = ["module", "feature"]
    table = uns["associations"].drop(columns=["stability"], errors="ignore")
    uns["associations"] = table.merge(result["links"][[*key, "stability"]], on=key, how="left")
    modules = uns["modules"].drop(columns=list(result["modules"].columns), errors="ignore")
    uns["modules"] = modules.join(result["modules"].set_axis(result["modules"].index.astype(str)))
    uns["stability"] = result["summary"]
