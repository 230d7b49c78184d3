"""Replication of a discovery map in a second cohort.

- **Module preservation** (Langfelder et al., PLoS Comput Biol 2011, WGCNA's
  ``modulePreservation``): for each discovery module, seven density and connectivity
  statistics of its genes in the validation cohort are compared with those of random sets
  of as many discovery network genes (``n_permutations`` draws; the module's discovery
  statistics are kept, as when WGCNA permutes the test network's labels):
  ``Z = (observed - mean) / sd``,
  ``Z_density`` = median Z of mean correlation, mean adjacency, proportion of variance
  explained and mean sign-aware kME; ``Z_connectivity`` = median Z of cor.kIM, cor.kME and
  cor.cor; ``Z_summary`` = their mean (> 10 strong, 2–10 moderate, < 2 no evidence). Modules
  larger than ``max_genes`` use their ``max_genes`` genes of highest discovery kME.
- **Projected eigengenes**: each module's validation eigengene is the validation data
  (genes standardised in the validation cohort) times the discovery loadings (first principal
  component of the module's standardised genes in the discovery cohort).
- **Re-test**: every discovery link (q < ``alpha``) is tested again in the validation cohort
  (same feature, projected eigengene, the discovery's test for that feature type), one-sided
  in the discovery direction for signed effects; a replication q is Benjamini–Hochberg over
  the links tested.
- **Scorecard**: links tested / replicated / opposite sign / not replicated / not testable
  (feature or most of the module's genes missing in the validation cohort).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from . import bundle
from .parallel import run_tasks, task_rng
from .validate import InputError

logger = logging.getLogger("radmap")

DENSITY_STATS = ("mean_cor", "mean_adj", "prop_var_explained", "mean_kme")
CONNECTIVITY_STATS = ("cor_kim", "cor_kme", "cor_cor")
SIGNED_TESTS = frozenset(
    {
        "spearman",
        "pearson",
        "welch",
        "student",
        "mannwhitney",
        "partial_spearman",
        "partial_pearson",
    }
)
STATUSES = ("replicated", "opposite sign", "not replicated", "not testable")
MIN_GENE_FRACTION = 0.5


def _standardise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=0)
    sd = x.std(axis=0, ddof=1)
    sd[sd == 0] = np.nan
    return x / sd


def _first_component(cor: np.ndarray) -> tuple[np.ndarray, float]:
    """Leading eigenvector (sign: positive mean) and eigenvalue of a correlation matrix."""
    values, vectors = np.linalg.eigh(cor)
    vector = vectors[:, -1]
    return (vector if vector.sum() >= 0 else -vector), float(values[-1])


def _reference_stats(reference: np.ndarray, power: float) -> dict[str, np.ndarray]:
    """What the preservation statistics need from the reference cohort (computed once)."""
    cor_ref = np.nan_to_num(reference.T @ reference / (len(reference) - 1))
    upper = np.triu_indices(reference.shape[1], 1)
    vector, value = _first_component(cor_ref)
    kme = np.sqrt(max(value, 0)) * vector
    return {
        "upper": upper,
        "cor_upper": cor_ref[upper],
        "sign_upper": np.sign(cor_ref[upper]),
        "kme": kme,
        "sign_kme": np.sign(kme),
        "kim": (((1 + cor_ref) / 2) ** power).sum(axis=0) - 1,
    }


def _pair_stats(reference: Mapping[str, np.ndarray], test: np.ndarray, power: float) -> np.ndarray:
    """The seven preservation statistics of one gene set (reference statistics from
    :func:`_reference_stats`, standardised test data patients x genes), in the order
    DENSITY_STATS + CONNECTIVITY_STATS."""
    n_genes = test.shape[1]
    cor_test = np.nan_to_num(test.T @ test / (len(test) - 1))
    upper = reference["upper"]
    adj_test = ((1 + cor_test) / 2) ** power
    vec_test, val_test = _first_component(cor_test)
    kme_test = np.sqrt(max(val_test, 0)) * vec_test
    # The test eigengene's sign follows the reference: agreeing kME on average.
    if np.sum(kme_test * reference["sign_kme"]) < 0:
        kme_test = -kme_test
    kim_test = adj_test.sum(axis=0) - 1
    cor_upper = cor_test[upper]
    return np.array(
        [
            np.mean(reference["sign_upper"] * cor_upper),
            np.mean(adj_test[upper]),
            val_test / n_genes,
            np.mean(reference["sign_kme"] * kme_test),
            _cor(reference["kim"], kim_test),
            _cor(reference["kme"], kme_test),
            _cor(reference["cor_upper"], cor_upper),
        ]
    )


def _cor(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return np.nan
    return float(np.corrcoef(a, b)[0, 1])


def _preservation_task(
    task: tuple[int, np.ndarray],
    *,
    reference: np.ndarray,
    test: np.ndarray,
    power: float,
    n_permutations: int,
    seed: int,
) -> np.ndarray:
    """Observed (row 0) and permuted statistics of one module (rows 1..n_permutations).

    As in WGCNA, a permutation keeps the module's genes in the reference cohort and pairs
    them with a random gene set of the same size in the test cohort.
    """
    from threadpoolctl import threadpool_limits

    position, genes = task
    with threadpool_limits(limits=1):  # many small eigenproblems: BLAS threads only add waits
        return _preservation_draws(position, genes, reference, test, power, n_permutations, seed)


def _preservation_draws(
    position: int,
    genes: np.ndarray,
    reference: np.ndarray,
    test: np.ndarray,
    power: float,
    n_permutations: int,
    seed: int,
) -> np.ndarray:
    out = np.empty((n_permutations + 1, len(DENSITY_STATS) + len(CONNECTIVITY_STATS)))
    module_reference = _reference_stats(reference[:, genes], power)
    out[0] = _pair_stats(module_reference, test[:, genes], power)
    n_all = reference.shape[1]
    for b in range(n_permutations):
        draw = task_rng(seed, position, b).choice(n_all, size=len(genes), replace=False)
        out[b + 1] = _pair_stats(module_reference, test[:, draw], power)
    return out


def module_preservation(
    discovery: ad.AnnData,
    validation: ad.AnnData,
    *,
    n_permutations: int = 100,
    max_genes: int = 100,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int = 2,
) -> pd.DataFrame:
    """Permutation Z-summary of every discovery module in the validation cohort.

    Parameters
    ----------
    discovery, validation
        Bundles (``var["module"]``, ``X``); genes are matched by symbol.
    n_permutations
        Random gene sets per module.
    max_genes
        Largest gene set per module (highest discovery kME first).
    seed
        Seed of the random gene sets.
    scheduler, n_workers
        See :func:`radmap.analysis.parallel.run_tasks` (one task per module).

    Returns
    -------
    Index = module; ``size``, ``genes_used``, ``Z_summary``, ``Z_density``,
    ``Z_connectivity``, one ``Z_<statistic>`` and one observed value per statistic,
    ``preservation`` (strong / moderate / none).
    """
    network = (
        discovery.var_names[discovery.var["in_network"].to_numpy(dtype=bool)]
        if "in_network" in discovery.var
        else discovery.var_names
    )
    common = network.intersection(validation.var_names, sort=False)
    modules = _modules(discovery)
    if len(common) < 10:
        raise InputError(
            f"replicate: the cohorts share {len(common)} genes; gene symbols must match"
        )
    reference = _standardise(_dense(discovery[:, common].X))
    test = _standardise(_dense(validation[:, common].X))
    usable = np.isfinite(reference).all(axis=0) & np.isfinite(test).all(axis=0)
    common, reference, test = common[usable], reference[:, usable], test[:, usable]
    position = pd.Series(np.arange(len(common)), index=common)
    kme = discovery.var["kME"] if "kME" in discovery.var else pd.Series(1.0, discovery.var_names)
    tasks, rows = [], []
    for number, (module, genes) in enumerate(modules.items()):
        present = [g for g in genes if g in position.index]
        present = sorted(present, key=lambda g: -abs(float(kme.get(g, 0.0))))[:max_genes]
        rows.append({"module": module, "size": len(genes), "genes_used": len(present)})
        if len(present) >= 3 and len(present) >= MIN_GENE_FRACTION * min(len(genes), max_genes):
            tasks.append((number, position[present].to_numpy()))
    power = float(_discovery_power(discovery))
    results = run_tasks(
        _preservation_task,
        tasks,
        shared={
            "reference": reference,
            "test": test,
            "power": power,
            "n_permutations": n_permutations,
            "seed": seed,
        },
        scheduler=scheduler,
        n_workers=n_workers,
    )
    names = DENSITY_STATS + CONNECTIVITY_STATS
    table = pd.DataFrame(rows).set_index("module")
    for (number, _), values in zip(tasks, results):
        observed, null = values[0], values[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (observed - np.nanmean(null, axis=0)) / np.nanstd(null, axis=0, ddof=1)
        module = table.index[number]
        for name, value, z_value in zip(names, observed, z):
            table.loc[module, name] = value
            table.loc[module, f"Z_{name}"] = z_value
    for name in names:
        for column in (name, f"Z_{name}"):
            if column not in table:
                table[column] = np.nan
    table["Z_density"] = table[[f"Z_{n}" for n in DENSITY_STATS]].median(axis=1, skipna=False)
    table["Z_connectivity"] = table[[f"Z_{n}" for n in CONNECTIVITY_STATS]].median(
        axis=1, skipna=False
    )
    table["Z_summary"] = (table["Z_density"] + table["Z_connectivity"]) / 2
    table["preservation"] = np.select(
        [table["Z_summary"] > 10, table["Z_summary"] > 2, table["Z_summary"].notna()],
        ["strong", "moderate", "none"],
        default="not testable",
    )
    first = ["size", "genes_used", "Z_summary", "Z_density", "Z_connectivity", "preservation"]
    return table[first + [c for c in table.columns if c not in first]]


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _modules(adata: ad.AnnData) -> dict[str, list[str]]:
    if "module" not in adata.var:
        raise InputError("replicate: the discovery bundle has no var['module']")
    labels = adata.var["module"].astype(str)
    eigengenes = adata.obsm.get(bundle.EIGENGENES_KEY)
    order = list(eigengenes.columns) if eigengenes is not None else sorted(set(labels))
    return {
        str(m): list(labels.index[labels == str(m)])
        for m in order
        if str(m) != bundle.UNASSIGNED and (labels == str(m)).any()
    }


def _discovery_power(adata: ad.AnnData) -> float:
    params = adata.uns.get(bundle.UNS_KEY, {}).get("params", {})
    power = params.get("modules", {}).get("power") if isinstance(params, Mapping) else None
    return float(power) if power not in (None, "", "None") else 6.0


def projected_eigengenes(
    discovery: ad.AnnData, validation: ad.AnnData
) -> tuple[pd.DataFrame, pd.Series]:
    """Validation eigengenes from the discovery loadings.

    Returns
    -------
    Patients (validation) x modules, each unit-variance and signed as in the discovery
    cohort (NaN columns for modules with fewer than half their genes in the validation
    cohort), and the fraction of each module's genes found.
    """
    modules = _modules(discovery)
    columns, fractions = {}, {}
    for module, genes in modules.items():
        present = [g for g in genes if g in validation.var_names]
        fractions[module] = len(present) / len(genes)
        if len(present) < max(2, MIN_GENE_FRACTION * len(genes)):
            columns[module] = np.full(validation.n_obs, np.nan)
            continue
        z_disc = np.nan_to_num(_standardise(_dense(discovery[:, present].X)))
        _, _, vt = np.linalg.svd(z_disc, full_matrices=False)
        loadings = vt[0]
        score = z_disc @ loadings
        stored = discovery.obsm.get(bundle.EIGENGENES_KEY)
        reference = stored[module].to_numpy() if stored is not None else z_disc.mean(axis=1)
        if np.corrcoef(score, reference)[0, 1] < 0:
            loadings = -loadings
        projected = np.nan_to_num(_standardise(_dense(validation[:, present].X))) @ loadings
        columns[module] = (projected - projected.mean()) / projected.std(ddof=1)
    return (
        pd.DataFrame(columns, index=validation.obs_names),
        pd.Series(fractions, name="gene_fraction"),
    )


def retest_links(
    discovery: ad.AnnData,
    validation: ad.AnnData,
    *,
    alpha: float = 0.05,
    links: str = "significant",
) -> pd.DataFrame:
    """Re-test discovery links in the validation cohort (see the module docstring).

    Parameters
    ----------
    discovery, validation
        Bundles.
    alpha
        Threshold on the discovery q (which links to re-test) and on the replication q.
    links
        ``"significant"`` (discovery q < alpha) or ``"all"`` map cells.

    Returns
    -------
    One row per discovery link: ``module``, ``feature``, ``test``, ``effect_discovery``,
    ``q_discovery``, ``effect_validation``, ``p_validation`` (two-sided),
    ``p_replication`` (one-sided in the discovery direction for signed effects),
    ``q_replication``, ``n_validation``, ``status``, ``reason``.
    """
    from .associate import associate, bh

    if links not in ("significant", "all"):
        raise InputError(f"replicate: links must be 'significant' or 'all', not {links!r}")
    uns = discovery.uns[bundle.UNS_KEY]
    table = uns["associations"].copy()
    table = table[table["p"].notna()]
    if links == "significant":
        table = table[table["q"] < alpha]
    table = table.reset_index(drop=True)
    eigengenes, fractions = projected_eigengenes(discovery, validation)
    imaging = validation.obsm[bundle.IMAGING_KEY]
    disc_types = uns["features"]["type"].astype(str).to_dict()
    val_types = validation.uns[bundle.UNS_KEY]["features"]["type"].astype(str).to_dict()
    out = table[["module", "feature", "test", "effect", "q"]].rename(
        columns={"effect": "effect_discovery", "q": "q_discovery"}
    )
    out["effect_validation"] = np.nan
    out["p_validation"] = np.nan
    out["n_validation"] = 0
    out["reason"] = ""
    testable_features = [
        f
        for f in out["feature"].unique()
        if f in imaging.columns and val_types.get(f) == disc_types.get(f)
    ]
    testable_modules = [m for m in eigengenes.columns if eigengenes[m].notna().all()]
    for name in set(out["feature"]) - set(testable_features):
        reason = "feature missing" if name not in imaging.columns else "feature type differs"
        out.loc[out["feature"] == name, "reason"] = reason
    for module in set(out["module"]) - set(testable_modules):
        out.loc[out["module"] == module, "reason"] = (
            f"genes missing ({fractions.get(module, 0):.0%} found)"
        )
    if testable_features and testable_modules:
        tests = {
            "continuous": _option(out, disc_types, ("continuous", "ordinal"), "spearman"),
            "binary": _option(out, disc_types, ("binary",), "welch"),
            "categorical": _option(out, disc_types, ("categorical",), "kruskal"),
        }
        assoc = associate(
            eigengenes[testable_modules],
            imaging[testable_features],
            {f: disc_types[f] for f in testable_features},
            **tests,
        )
        ok = out["reason"] == ""
        rows = out.index[ok]
        modules, features = out.loc[ok, "module"], out.loc[ok, "feature"]
        out.loc[rows, "effect_validation"] = [
            assoc.effect.at[m, f] for m, f in zip(modules, features)
        ]
        out.loc[rows, "p_validation"] = [assoc.p.at[m, f] for m, f in zip(modules, features)]
        out.loc[rows, "n_validation"] = [int(assoc.n[f]) for f in features]
    signed = out["test"].isin(SIGNED_TESTS).to_numpy()
    same = np.sign(out["effect_validation"]) == np.sign(out["effect_discovery"])
    p_two = out["p_validation"].to_numpy(dtype=float)
    out["p_replication"] = np.where(signed, np.where(same, p_two / 2, 1 - p_two / 2), p_two)
    out["q_replication"] = bh(out["p_replication"].to_numpy(dtype=float))
    tested = out["p_validation"].notna()
    out.loc[~tested & (out["reason"] == ""), "reason"] = "not testable in validation"
    replicated = tested & (out["q_replication"] < alpha)
    opposite = tested & signed & ~same & (out["p_validation"] < alpha)
    out["status"] = np.select(
        [~tested, replicated, opposite],
        ["not testable", "replicated", "opposite sign"],
        default="not replicated",
    )
    columns = [
        "module",
        "feature",
        "test",
        "effect_discovery",
        "q_discovery",
        "effect_validation",
        "p_validation",
        "p_replication",
        "q_replication",
        "n_validation",
        "status",
        "reason",
    ]
    return out[columns]


def _option(table: pd.DataFrame, types: Mapping[str, str], kinds: tuple, default: str) -> str:
    """The discovery test used for features of these kinds (the map records it per row)."""
    used = table.loc[table["feature"].map(types).isin(kinds), "test"]
    used = used[~used.str.startswith("partial") & (used != "ols")]
    return str(used.iloc[0]) if len(used) else default


def scorecard(links: pd.DataFrame) -> dict[str, int]:
    """Counts per status, plus ``tested`` (links with a validation p-value)."""
    counts = links["status"].value_counts()
    card = {"discovery_links": int(len(links))}
    card["tested"] = int(len(links) - counts.get("not testable", 0))
    for status in STATUSES:
        card[status.replace(" ", "_")] = int(counts.get(status, 0))
    return card


def replicate(
    discovery: ad.AnnData,
    validation: ad.AnnData,
    *,
    alpha: float = 0.05,
    links: str = "significant",
    n_permutations: int = 100,
    max_genes: int = 100,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int = 2,
) -> dict:
    """Module preservation, link re-tests and the scorecard (see the module docstring).

    Returns
    -------
    ``{"preservation": DataFrame, "links": DataFrame, "scorecard": dict, "params": dict}``.
    """
    started = time.perf_counter()
    preservation = module_preservation(
        discovery,
        validation,
        n_permutations=n_permutations,
        max_genes=max_genes,
        seed=seed,
        scheduler=scheduler,
        n_workers=n_workers,
    )
    retested = retest_links(discovery, validation, alpha=alpha, links=links)
    card = scorecard(retested)
    logger.info("replicate: %s (%.1f s)", card, time.perf_counter() - started)
    return {
        "preservation": preservation,
        "links": retested,
        "scorecard": card,
        "params": {
            "alpha": alpha,
            "links": links,
            "n_permutations": n_permutations,
            "max_genes": max_genes,
            "seed": seed,
            "discovery_patients": int(discovery.n_obs),
            "validation_patients": int(validation.n_obs),
        },
    }


def write_replication(result: dict, out: Path | str) -> dict[str, Path]:
    """Write ``preservation.csv``, ``replication_links.csv`` and ``replication.json``
    (scorecard and parameters) to ``out``, each file atomically."""
    import json

    from .io import atomic_write_text

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create the output folder ({err.strerror})") from None
    paths = {
        "preservation": out / "preservation.csv",
        "links": out / "replication_links.csv",
        "summary": out / "replication.json",
        "methods": out / "replication_methods.txt",
    }
    atomic_write_text(paths["methods"], replication_methods(result) + "\n")
    atomic_write_text(paths["preservation"], result["preservation"].to_csv())
    atomic_write_text(paths["links"], result["links"].to_csv(index=False))
    summary = {"scorecard": result["scorecard"], "params": result["params"]}
    atomic_write_text(paths["summary"], json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return paths


def scorecard_text(card: Mapping[str, int]) -> str:
    """The scorecard in one line for people."""
    return (
        f"{card['discovery_links']} discovery links: {card['tested']} tested, "
        f"{card['replicated']} replicated, {card['opposite_sign']} opposite sign, "
        f"{card['not_replicated']} not replicated, {card['not_testable']} not testable"
    )


def replication_methods(result: Mapping) -> str:
    """A Methods paragraph for the replication, every number from ``result``."""
    params, card = result["params"], result["scorecard"]
    preservation = result["preservation"]["preservation"].value_counts()
    return (
        f"Replication used a validation cohort of {params['validation_patients']} patients "
        f"(discovery: {params['discovery_patients']}). Module preservation was assessed with "
        "the Z-summary of WGCNA's modulePreservation statistics against "
        f"{params['n_permutations']} random gene sets per module (modules capped at their "
        f"{params['max_genes']} genes of highest kME; seed {params['seed']}): "
        f"{int(preservation.get('strong', 0))} modules strongly preserved (Z > 10), "
        f"{int(preservation.get('moderate', 0))} moderately (2 < Z <= 10), "
        f"{int(preservation.get('none', 0))} not preserved. Validation eigengenes were "
        "projected with the discovery loadings, and each of the "
        f"{card['discovery_links']} discovery links (q < {params['alpha']:g}) was re-tested "
        "one-sided in the discovery direction with Benjamini-Hochberg correction over the "
        f"links: {card['tested']} tested, {card['replicated']} replicated, "
        f"{card['opposite_sign']} with the opposite sign, {card['not_replicated']} not "
        f"replicated, {card['not_testable']} not testable."
    )


SIDECAR_SUFFIX = ".replication"


def sidecar_dir(bundle_path: Path | str) -> Path:
    """Where ``radmap replicate`` writes by default, and where the explorer looks, for a
    discovery bundle: the folder ``<bundle>.replication`` next to it."""
    bundle_path = Path(bundle_path)
    return bundle_path.with_name(bundle_path.stem + SIDECAR_SUFFIX)


def read_replication(folder: Path | str) -> dict:
    """Read what :func:`write_replication` wrote to ``folder``.

    Returns
    -------
    ``{"scorecard": dict, "params": dict, "preservation": DataFrame (index = module),
    "links": DataFrame}``.

    Raises
    ------
    InputError
        A file is missing or unreadable.
    """
    import json

    folder = Path(folder)
    paths = {
        "summary": folder / "replication.json",
        "preservation": folder / "preservation.csv",
        "links": folder / "replication_links.csv",
    }
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise InputError(
            f"{folder}: no replication result ({missing[0]} missing); run `radmap replicate`"
        )
    try:
        summary = json.loads(paths["summary"].read_text(encoding="utf-8"))
        preservation = pd.read_csv(paths["preservation"], index_col=0)
        links = pd.read_csv(paths["links"], keep_default_na=True)
        card, params = dict(summary["scorecard"]), dict(summary.get("params", {}))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{folder}: cannot read the replication result ({err})") from None
    for column in ("module", "feature", "status"):
        if column not in links.columns:
            raise InputError(f"{paths['links']}: column {column!r} is missing")
    preservation.index = preservation.index.astype(str)
    return {"scorecard": card, "params": params, "preservation": preservation, "links": links}
