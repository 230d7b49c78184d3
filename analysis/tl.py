"""Analysis tools in the scanpy style: AnnData in, results written into the bundle's slots.

Each tool reads the slots earlier steps filled (see :mod:`radmap.analysis.bundle`), writes its
own results and records the parameters that made them in ``uns["radmap"]["params"][name]``;
warnings for the user are appended to ``uns["radmap"]["warnings"]``. Options are keyword-only;
``copy=True`` returns a changed copy and leaves the input alone (otherwise ``None``).
:func:`radmap.run` chains the same tools, so a notebook and ``radmap analyze`` share one code
path::

    adata = radmap.read(expression="expr.csv", imaging=["radiomics.csv"], clinical="clin.csv")
    radmap.pp.preprocess(adata)
    radmap.tl.modules(adata)
    radmap.tl.associate(adata)
    radmap.tl.mutations(adata)
    radmap.tl.enrich(adata)
    radmap.tl.survival(adata)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from . import bundle
from .validate import InputError

__all__ = [
    "associate",
    "associate_genes",
    "enrich",
    "modules",
    "mutations",
    "stability",
    "survival",
    "trust",
]


def radmap_uns(adata: ad.AnnData) -> dict:
    """The ``uns["radmap"]`` dict of ``adata`` (created with empty params and warnings)."""
    uns = adata.uns.get(bundle.UNS_KEY)
    if not isinstance(uns, dict):
        uns = dict(uns or {})
        adata.uns[bundle.UNS_KEY] = uns
    uns.setdefault("format_version", bundle.FORMAT_VERSION)
    uns.setdefault("params", {})
    uns.setdefault("warnings", [])
    return uns


def record(adata: ad.AnnData, name: str, params: Mapping, warnings: Sequence[str] = ()) -> None:
    """Store a step's parameters (JSON-safe) and add its warnings, each once."""
    uns = radmap_uns(adata)
    uns["params"][name] = jsonable(dict(params))
    known = list(uns["warnings"])
    known.extend(w for w in dict.fromkeys(warnings) if w not in known)
    uns["warnings"] = known


def jsonable(value: object) -> object:
    """``value`` with numpy scalars and paths turned into plain JSON types."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def clean_table(table: pd.DataFrame) -> pd.DataFrame:
    """Make a table h5ad-safe: plain str/float/int/bool columns, str index."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
            out[column] = values.astype(object).where(values.notna(), "").astype(str)
    out.index = out.index.astype(str)
    out.columns = out.columns.astype(str)
    return out


def _maybe_copy(adata: ad.AnnData, copy: bool) -> ad.AnnData:
    return adata.copy() if copy else adata


def _require(adata: ad.AnnData, what: str, present: bool, remedy: str) -> None:
    if not present:
        raise InputError(f"{what} is missing from the AnnData; {remedy}")


def _imaging(adata: ad.AnnData) -> tuple[pd.DataFrame, pd.DataFrame]:
    uns = adata.uns.get(bundle.UNS_KEY, {})
    _require(
        adata,
        f'obsm["{bundle.IMAGING_KEY}"]',
        isinstance(adata.obsm.get(bundle.IMAGING_KEY), pd.DataFrame),
        "read the inputs with radmap.read(...) (it adds the imaging table)",
    )
    _require(
        adata,
        'uns["radmap"]["features"]',
        isinstance(uns.get("features"), pd.DataFrame),
        "read the inputs with radmap.read(...) (it describes every imaging feature)",
    )
    imaging = adata.obsm[bundle.IMAGING_KEY]
    features = uns["features"].reindex(imaging.columns)
    return imaging, features


def _eigengenes(adata: ad.AnnData) -> pd.DataFrame:
    _require(
        adata,
        f'obsm["{bundle.EIGENGENES_KEY}"]',
        bundle.EIGENGENES_KEY in adata.obsm,
        "run radmap.tl.modules(adata) first",
    )
    return pd.DataFrame(adata.obsm[bundle.EIGENGENES_KEY], index=adata.obs_names)


# --------------------------------------------------------------------------------- modules


def modules(
    adata: ad.AnnData,
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
    copy: bool = False,
) -> ad.AnnData | None:
    """Find co-expressed gene modules (WGCNA-style or Leiden).

    Writes ``var["module"]``, ``var["kME"]``, ``var["is_hub"]``, ``var["in_network"]``,
    ``obsm["eigengenes"]``, ``uns["radmap"]["modules"]`` (size, hubs, variance explained),
    ``uns["radmap"]["soft_threshold"]`` and ``params["modules"]`` (with the chosen power).
    The options are those of :func:`radmap.analysis.modules.find_modules`.
    """
    from .modules import find_modules

    adata = _maybe_copy(adata, copy)
    params = {
        "method": method,
        "power": power,
        "network": network,
        "min_module_size": min_module_size,
        "deep_split": deep_split,
        "merge_cut_height": merge_cut_height,
        "hub_count": hub_count,
        "n_neighbors": n_neighbors,
        "resolution": resolution,
        "seed": seed,
        "max_block_size": max_block_size,
    }
    result = find_modules(adata, **params)
    uns = radmap_uns(adata)
    table = result["modules"].copy()
    if "top_pathway" not in table:
        table["top_pathway"] = ""
    uns["modules"] = clean_table(table)
    uns["soft_threshold"] = clean_table(result["soft_threshold"])
    record(
        adata,
        "modules",
        result["params"] | {"power": result["power"]},
        result.get("warnings", []),
    )
    return adata if copy else None


# ----------------------------------------------------------------------------- associations


def _test_options(adata: ad.AnnData, options: Mapping) -> dict:
    adjust_for = list(options.get("adjust_for") or [])
    covariates = None
    if adjust_for:
        missing = [name for name in adjust_for if name not in adata.obs.columns]
        if missing:
            raise InputError(
                f"clinical: covariate column {missing[0]!r} not found; available: "
                + ", ".join(map(str, adata.obs.columns[:20]))
            )
        covariates = adata.obs[adjust_for]
    return {
        "continuous": options["continuous_test"],
        "binary": options["binary_test"],
        "categorical": options["categorical_test"],
        "covariates": covariates,
        "min_n": options["min_n"],
    }


def associate(
    adata: ad.AnnData,
    *,
    continuous_test: str = "spearman",
    binary_test: str = "welch",
    categorical_test: str = "kruskal",
    adjust_for: Sequence[str] = (),
    min_n: int = 10,
    genes: bool = True,
    copy: bool = False,
) -> ad.AnnData | None:
    """Associate every module eigengene (and every gene) with every imaging feature.

    The test follows the feature's type (``uns["radmap"]["features"]["type"]``). Writes
    ``uns["radmap"]["associations"]`` (module x feature, BH over the map), the test and
    contrast of each feature into ``uns["radmap"]["features"]``, and with ``genes=True`` the
    gene x feature arrays ``varm["radmap_effect"|"radmap_statistic"|"radmap_p"|"radmap_q"]``
    (q: BH per feature over genes) with ``uns["radmap"]["gene_features"]`` and ``gene_n``.

    Parameters
    ----------
    adata
        With ``obsm["eigengenes"]`` (:func:`modules`) and the imaging slots of
        :func:`radmap.read`.
    continuous_test, binary_test, categorical_test
        ``"spearman"``/``"pearson"``, ``"welch"``/``"mannwhitney"``,
        ``"kruskal"``/``"anova"``.
    adjust_for
        Clinical columns (``obs``) to adjust for, by linear models.
    min_n
        Fewest patients with a value for a test to run.
    genes
        Also test every gene (the volcano and gene views need it).
    copy
        Return a copy instead of writing into ``adata``.
    """
    from .associate import associate as run_tests
    from .associate import tidy

    adata = _maybe_copy(adata, copy)
    params = {
        "continuous_test": continuous_test,
        "binary_test": binary_test,
        "categorical_test": categorical_test,
        "adjust_for": list(adjust_for),
        "min_n": min_n,
        "genes": genes,
    }
    imaging, features = _imaging(adata)
    eigengenes = _eigengenes(adata)
    options = _test_options(adata, params)
    types = features["type"].to_dict()
    module_assoc = run_tests(eigengenes, imaging, types, **options)
    uns = radmap_uns(adata)
    uns["associations"] = clean_table(tidy(module_assoc, variable_name="module", q_scope="all"))
    features = features.copy()
    features["test"] = module_assoc.test.reindex(features.index).fillna("").astype(str)
    features["contrast"] = module_assoc.contrast.reindex(features.index).fillna("").astype(str)
    uns["features"] = clean_table(features)
    record(adata, "associate", params, module_assoc.notes)
    if genes:
        associate_genes(adata, **{k: v for k, v in params.items() if k != "genes"})
    return adata if copy else None


def associate_genes(
    adata: ad.AnnData,
    *,
    continuous_test: str = "spearman",
    binary_test: str = "welch",
    categorical_test: str = "kruskal",
    adjust_for: Sequence[str] = (),
    min_n: int = 10,
    copy: bool = False,
) -> ad.AnnData | None:
    """Associate every gene with every imaging feature (the volcano and gene views).

    Writes ``varm["radmap_effect"|"radmap_statistic"|"radmap_p"|"radmap_q"]`` (genes x
    features; q: BH per feature over genes), ``uns["radmap"]["gene_features"]`` (the column
    order) and ``uns["radmap"]["gene_n"]``. Options as in :func:`associate`.
    """
    from .associate import associate as run_tests

    adata = _maybe_copy(adata, copy)
    params = {
        "continuous_test": continuous_test,
        "binary_test": binary_test,
        "categorical_test": categorical_test,
        "adjust_for": list(adjust_for),
        "min_n": min_n,
    }
    imaging, features = _imaging(adata)
    values = pd.DataFrame(
        np.asarray(adata.X, dtype=np.float64), index=adata.obs_names, columns=adata.var_names
    )
    gene_assoc = run_tests(
        values, imaging, features["type"].to_dict(), **_test_options(adata, params)
    )
    del values
    q = gene_assoc.q("per_feature")
    for key, frame in (
        (bundle.GENE_EFFECT, gene_assoc.effect),
        (bundle.GENE_STATISTIC, gene_assoc.statistic),
        (bundle.GENE_P, gene_assoc.p),
        (bundle.GENE_Q, q),
    ):
        adata.varm[key] = frame.reindex(index=adata.var_names).to_numpy(dtype=np.float32)
    uns = radmap_uns(adata)
    uns["gene_features"] = list(gene_assoc.p.columns)
    uns["gene_n"] = [int(v) for v in gene_assoc.n.reindex(gene_assoc.p.columns).fillna(0)]
    record(adata, "associate_genes", params)

    return adata if copy else None


def _as_numeric(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.astype(float)
        return codes.where(codes >= 0)
    return pd.to_numeric(column, errors="coerce")


MUTATION_COLUMNS = ("mutation", "feature", "test", "statistic", "effect", "p", "q", "n")


def mutations(
    adata: ad.AnnData,
    *,
    columns: Sequence[str] | None = None,
    min_n: int = 10,
    copy: bool = False,
) -> ad.AnnData | None:
    """Relate mutation status to every imaging feature and to every module eigengene.

    Numeric features: Welch t between Mutant and Wildtype; categorical ones: Fisher / chi-square.
    Writes ``uns["radmap"]["mutation_imaging"]`` and ``uns["radmap"]["mutation_modules"]``.

    Parameters
    ----------
    columns
        Mutation columns of ``obs`` (Mutant / Wildtype / missing); default: those found by
        the clinical reader (``params["mutations"]``).
    min_n
        Fewest patients with a value for a test to run.
    """
    from .associate import associate as run_tests
    from .associate import associate_categorical, bh, tidy

    adata = _maybe_copy(adata, copy)
    uns = radmap_uns(adata)
    names = list(columns if columns is not None else uns["params"].get("mutations", []) or [])
    missing = [name for name in names if name not in adata.obs.columns]
    if missing:
        raise InputError(f"mutation column {missing[0]!r} is not in obs")
    imaging, features = _imaging(adata)
    eigengenes = _eigengenes(adata)
    empty_modules = ["mutation", "module", *MUTATION_COLUMNS[2:]]
    if not names:
        mutation_imaging = pd.DataFrame(columns=list(MUTATION_COLUMNS))
        mutation_modules = pd.DataFrame(columns=empty_modules)
    else:
        status = adata.obs[names]
        binary = dict.fromkeys(names, "binary")
        types = features["type"].to_dict()
        numeric = [f for f, t in types.items() if t in ("continuous", "ordinal")]
        categorical = [f for f, t in types.items() if t in ("binary", "categorical")]
        parts = []
        if numeric:
            numeric_values = imaging[numeric].apply(_as_numeric)
            assoc = run_tests(numeric_values, status, binary, min_n=min_n)
            table = tidy(assoc, variable_name="imaging_feature", q_scope="all")
            parts.append(
                table.rename(columns={"feature": "mutation", "imaging_feature": "feature"})
            )
        if categorical:
            table = associate_categorical(status, imaging[categorical])
            parts.append(table.rename(columns={"left": "mutation", "right": "feature"}))
        mutation_imaging = (
            pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MUTATION_COLUMNS)
        )
        if not mutation_imaging.empty:
            mutation_imaging["q"] = bh(mutation_imaging["p"].to_numpy(dtype=float))
        mutation_imaging = mutation_imaging.reindex(columns=list(MUTATION_COLUMNS))
        module_assoc = run_tests(eigengenes, status, binary, min_n=min_n)
        mutation_modules = tidy(module_assoc, variable_name="module", q_scope="all").rename(
            columns={"feature": "mutation"}
        )[empty_modules]
    uns["mutation_imaging"] = clean_table(mutation_imaging)
    uns["mutation_modules"] = clean_table(mutation_modules)
    uns["params"]["mutations"] = names
    record(adata, "mutation_tests", {"columns": names, "min_n": min_n})
    return adata if copy else None


# ------------------------------------------------------------------------------ enrichment


def enrich(
    adata: ad.AnnData,
    *,
    gene_sets: Sequence[str | Path] = ("hallmark", "go_bp"),
    min_set_size: int = 5,
    max_set_size: int = 500,
    copy: bool = False,
) -> ad.AnnData | None:
    """Over-representation of each module's genes in the gene sets, offline.

    The background is every gene of ``adata``. Writes ``uns["radmap"]["enrichment"]`` and the
    modules table's ``top_pathway``.

    Parameters
    ----------
    gene_sets
        Bundled collections (``"hallmark"``, ``"go_bp"``) or paths of GMT files.
    min_set_size, max_set_size
        Gene sets with fewer / more members among the analysed genes are skipped.
    """
    from . import enrich as enrichment_tools

    adata = _maybe_copy(adata, copy)
    _require(adata, 'var["module"]', "module" in adata.var, "run radmap.tl.modules(adata) first")
    uns = radmap_uns(adata)
    sets = enrichment_tools.load_gene_sets(list(gene_sets))
    table = enrichment_tools.module_enrichment(
        adata.var["module"].astype(str),
        background=list(adata.var_names),
        gene_sets=sets,
        min_size=min_set_size,
        max_size=max_set_size,
    )
    uns["enrichment"] = clean_table(table)
    modules_table = uns.get("modules")
    if isinstance(modules_table, pd.DataFrame):
        top: dict[str, str] = {}
        if not table.empty:
            best = table.sort_values("p").groupby("module", observed=True).head(1)
            top = dict(zip(best["module"], best["term"], strict=True))
        modules_table = modules_table.copy()
        modules_table["top_pathway"] = [top.get(m, "") for m in modules_table.index]
        uns["modules"] = clean_table(modules_table)
    record(
        adata,
        "enrich",
        {
            "gene_sets": [str(s) for s in gene_sets],
            "min_set_size": min_set_size,
            "max_set_size": max_set_size,
        },
    )
    return adata if copy else None


# -------------------------------------------------------------------------------- survival


def survival(
    adata: ad.AnnData,
    *,
    covariates: Sequence[str] = (),
    min_events: int = 5,
    copy: bool = False,
) -> ad.AnnData | None:
    """Survival associations of modules, imaging features and mutations.

    Needs ``obs["survival_time"]`` and ``obs["survival_event"]``; without them the table is
    empty and a warning says so. Writes ``uns["radmap"]["survival"]`` (see
    :func:`radmap.analysis.survival.survival_table`).
    """
    from . import survival as survival_tools

    adata = _maybe_copy(adata, copy)
    uns = radmap_uns(adata)
    warnings: list[str] = []
    if bundle.SURVIVAL_TIME in adata.obs and bundle.SURVIVAL_EVENT in adata.obs:
        imaging, features = _imaging(adata)
        table, warnings = survival_tools.survival_table(
            adata.obs,
            eigengenes=_eigengenes(adata),
            imaging=imaging,
            features=features,
            mutations=list(uns["params"].get("mutations", []) or []),
            covariates=list(covariates),
            min_events=min_events,
        )
    else:
        table = pd.DataFrame(columns=list(survival_tools.SURVIVAL_COLUMNS))
        warnings = ["no survival columns: survival analysis skipped"]
    uns["survival"] = clean_table(table)
    record(adata, "survival", {"covariates": list(covariates), "min_events": min_events}, warnings)
    return adata if copy else None


# ------------------------------------------------------------------------------ trust checks


def _require_map(adata: ad.AnnData) -> None:
    _eigengenes(adata)
    _imaging(adata)
    _require(
        adata,
        'uns["radmap"]["associations"]',
        isinstance(adata.uns.get(bundle.UNS_KEY, {}).get("associations"), pd.DataFrame),
        "run radmap.tl.associate(adata) first",
    )


def trust(
    adata: ad.AnnData,
    *,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    size_feature: str | None = None,
    acquisition: Sequence[str] = (),
    seed: int = 0,
    scheduler: str | None = "auto",
    n_workers: int = 2,
    copy: bool = False,
) -> ad.AnnData | None:
    """Permutation null, tumour-size check and leave-one-out influence of the module map
    (and the acquisition check when ``acquisition`` names covariates).

    Adds ``perm_p``, ``perm_q``, ``q_size_adjusted``, ``size_surrogate``, ``influence``,
    ``influential_patient``, ``p_without``, ``one_patient`` and ``flags`` to
    ``uns["radmap"]["associations"]`` and the summaries ``uns["radmap"]["null"]`` (with a
    one-line ``badge``), ``["size_check"]`` and ``["influence"]``; see
    :func:`radmap.analysis.trust.add_trust_checks`. ``n_permutations=0`` skips the null.
    """
    from .trust import add_trust_checks

    adata = _maybe_copy(adata, copy)
    _require_map(adata)
    warnings = add_trust_checks(
        adata,
        n_permutations=n_permutations,
        alpha=alpha,
        size_feature=size_feature,
        acquisition=list(acquisition),
        seed=seed,
        scheduler=scheduler,
        n_workers=n_workers,
    )
    uns = radmap_uns(adata)
    uns["associations"] = clean_table(uns["associations"])
    params = {
        "n_permutations": n_permutations,
        "alpha": alpha,
        "size_feature": size_feature,
        "acquisition": [str(a) for a in acquisition],
        "seed": seed,
    }
    record(adata, "trust", params, warnings)
    return adata if copy else None


def stability(
    adata: ad.AnnData,
    *,
    n_bootstraps: int = 100,
    alpha: float = 0.05,
    seed: int = 0,
    scheduler: str | None = "auto",
    n_workers: int = 2,
    copy: bool = False,
) -> ad.AnnData | None:
    """Bootstrap stability of modules and links (modules re-detected per resample).

    Adds ``stability`` to ``uns["radmap"]["associations"]``, ``jaccard_median``,
    ``jaccard_min``, ``jaccard_max`` and ``jaccard_background`` to ``uns["radmap"]["modules"]``
    and the summary ``uns["radmap"]["stability"]``; see
    :func:`radmap.analysis.stability.bootstrap_stability`. ``scheduler="auto"`` runs the
    resamples on a local Dask cluster of ``n_workers``.
    """
    from .stability import add_stability

    adata = _maybe_copy(adata, copy)
    _require_map(adata)
    add_stability(
        adata,
        n_bootstraps=n_bootstraps,
        alpha=alpha,
        seed=seed,
        scheduler=scheduler,
        n_workers=n_workers,
    )
    params = {"n_bootstraps": n_bootstraps, "alpha": alpha, "seed": seed}
    record(adata, "stability", params)
    return adata if copy else None
