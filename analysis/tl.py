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

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from . import bundle
from .validate import InputError

if TYPE_CHECKING:
    from .analyses import GeneMap

__all__ = [
    "associate",
    "associate_genes",
    "enrich",
    "modules",
    "mutations",
    "predict",
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
        "min_group": options["min_group"],
    }


def _record_patients(adata: ad.AnnData, analysis: str, needs: str, n: int) -> None:
    """Say in the matching report which analysis used how many patients."""
    uns = radmap_uns(adata)
    rows = uns.get("analysis_patients")
    table = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame()
    row = pd.DataFrame([{"analysis": analysis, "needs": needs, "n_patients": int(n)}])
    if len(table):
        table = table[table["analysis"] != analysis]
    uns["analysis_patients"] = pd.concat([table, row], ignore_index=True)


def _store_power(adata: ad.AnnData, analysis: str, summary: pd.DataFrame) -> None:
    uns = radmap_uns(adata)
    previous = uns.get("power")
    table = previous.copy() if isinstance(previous, pd.DataFrame) else pd.DataFrame()
    if len(table):
        table = table[table["analysis"] != analysis]
    uns["power"] = clean_table(pd.concat([table, summary], ignore_index=True))


def associate(
    adata: ad.AnnData,
    *,
    continuous_test: str = "spearman",
    binary_test: str = "student",
    categorical_test: str = "kruskal",
    adjust_for: Sequence[str] = (),
    min_n: int = 10,
    min_group: int = 5,
    families: str = "source",
    genes: bool = True,
    copy: bool = False,
) -> ad.AnnData | None:
    """Associate every module eigengene (and every gene) with every imaging feature.

    The test follows the feature's type (``uns["radmap"]["features"]["type"]``), on the
    patients with expression and the feature. Writes ``uns["radmap"]["associations"]``
    (module x feature: ``effect_measure``, ``q`` within its ``family``, ``q_analysis`` across
    families, ``n``; see :func:`radmap.analysis.analyses.module_map`), the test, contrast and
    smallest detectable effect (``detectable_effect``, 80 % power) of each feature into
    ``uns["radmap"]["features"]``, the power summary into ``uns["radmap"]["power"]``, and with
    ``genes=True`` the gene map (:func:`associate_genes`).

    Parameters
    ----------
    adata
        With ``obsm["eigengenes"]`` (:func:`modules`) and the imaging slots of
        :func:`radmap.read`.
    continuous_test, binary_test, categorical_test
        ``"spearman"``/``"pearson"``, ``"student"``/``"welch"``/``"mannwhitney"``,
        ``"kruskal"``/``"anova"``.
    adjust_for
        Clinical columns (``obs``) to adjust for, by linear models.
    min_n
        Fewest patients with a value for a test to run.
    min_group
        Groups of a binary / categorical feature with fewer patients are left out (and the
        warnings say which).
    families
        ``"source"``: one correction family per imaging source; ``"analysis"``: one family.
    genes
        Also test every gene (the volcano and gene views need it).
    copy
        Return a copy instead of writing into ``adata``.
    """
    from .analyses import module_map, power_summary

    adata = _maybe_copy(adata, copy)
    params = {
        "continuous_test": continuous_test,
        "binary_test": binary_test,
        "categorical_test": categorical_test,
        "adjust_for": list(adjust_for),
        "min_n": min_n,
        "min_group": min_group,
        "families": families,
    }
    imaging, features = _imaging(adata)
    eigengenes = _eigengenes(adata)
    options = _test_options(adata, params)
    table, module_assoc = module_map(eigengenes, imaging, features, families=families, **options)
    uns = radmap_uns(adata)
    uns["associations"] = clean_table(table)
    summary, detectable = power_summary("module map", table, features, imaging)
    _store_power(adata, "module map", summary)
    features = features.copy()
    features["test"] = module_assoc.test.reindex(features.index).fillna("").astype(str)
    features["contrast"] = module_assoc.contrast.reindex(features.index).fillna("").astype(str)
    if module_assoc.measure is not None:
        features["effect_measure"] = (
            module_assoc.measure.reindex(features.index).fillna("").astype(str)
        )
    features["detectable_effect"] = detectable.reindex(features.index).astype(float)
    uns["features"] = clean_table(features)
    used = imaging.notna().any(axis=1).sum()
    _record_patients(adata, "module x feature", "expression and imaging", used)
    record(adata, "associate", params, module_assoc.notes)
    if genes:
        associate_genes(adata, **params)
    return adata if copy else None


def associate_genes(
    adata: ad.AnnData,
    *,
    continuous_test: str = "spearman",
    binary_test: str = "student",
    categorical_test: str = "kruskal",
    adjust_for: Sequence[str] = (),
    min_n: int = 10,
    min_group: int = 5,
    families: str = "source",
    alpha: float = 0.05,
    copy: bool = False,
) -> ad.AnnData | None:
    """Associate every gene with every imaging feature (the volcano and gene views).

    Writes ``varm["radmap_effect"|"radmap_statistic"|"radmap_p"]``, ``varm["radmap_q"]``
    (BH over genes within each feature: "q within feature") and ``varm["radmap_q_map"]``
    (map-level q of the hierarchical procedure over the whole genes x features map, at
    ``alpha``: use it to rank or count pairs across features),
    ``uns["radmap"]["gene_features"]`` (the column order), ``uns["radmap"]["gene_n"]`` and
    ``uns["radmap"]["gene_map"]`` (per feature: family, Simes p, its q, selected). Options
    as in :func:`associate` (``families`` is not used: the gene map is one hierarchy).
    """
    adata = _maybe_copy(adata, copy)
    compute, params = gene_map_of(
        adata,
        continuous_test=continuous_test,
        binary_test=binary_test,
        categorical_test=categorical_test,
        adjust_for=adjust_for,
        min_n=min_n,
        min_group=min_group,
        alpha=alpha,
    )
    store_gene_map(adata, compute(), params)
    return adata if copy else None


def gene_map_of(
    adata: ad.AnnData,
    *,
    continuous_test: str = "spearman",
    binary_test: str = "student",
    categorical_test: str = "kruskal",
    adjust_for: Sequence[str] = (),
    min_n: int = 10,
    min_group: int = 5,
    families: str = "source",
    alpha: float = 0.05,
) -> tuple[Callable[[], GeneMap], dict]:
    """The computation of :func:`associate_genes` and the parameters it records.

    The computation is a function of nothing: it holds its inputs (expression, imaging,
    feature table, covariates), taken from ``adata`` now, and writes nothing, so it can run
    while other stages change ``adata`` (:func:`radmap.analysis.parallel.alongside`);
    :func:`store_gene_map` writes its result. Options as in :func:`associate_genes`.
    """
    from .analyses import gene_map

    params = {
        "continuous_test": continuous_test,
        "binary_test": binary_test,
        "categorical_test": categorical_test,
        "adjust_for": list(adjust_for),
        "min_n": min_n,
        "min_group": min_group,
        "alpha": alpha,
    }
    imaging, features = _imaging(adata)
    values = pd.DataFrame(
        np.asarray(adata.X, dtype=np.float64), index=adata.obs_names, columns=adata.var_names
    )
    tests = _test_options(adata, params)
    return functools.partial(gene_map, values, imaging, features, alpha=alpha, **tests), params


def store_gene_map(adata: ad.AnnData, result: GeneMap, params: Mapping) -> None:
    """Write a gene map (:func:`gene_map_of`) into the slots :func:`associate_genes` fills."""
    alpha = params["alpha"]
    gene_assoc = result.assoc
    for key, frame in (
        (bundle.GENE_EFFECT, gene_assoc.effect),
        (bundle.GENE_STATISTIC, gene_assoc.statistic),
        (bundle.GENE_P, gene_assoc.p),
        (bundle.GENE_Q, result.q_feature),
        (bundle.GENE_Q_MAP, result.q_map),
    ):
        adata.varm[key] = frame.reindex(index=adata.var_names).to_numpy(dtype=np.float32)
    uns = radmap_uns(adata)
    uns["gene_features"] = list(gene_assoc.p.columns)
    uns["gene_n"] = [int(v) for v in gene_assoc.n.reindex(gene_assoc.p.columns).fillna(0)]
    hierarchy = next(iter(result.per_family.values()), None)
    uns["gene_map"] = clean_table(
        pd.DataFrame(
            {
                "family": result.family.astype(str),
                "simes_p": hierarchy.family_p if hierarchy is not None else np.nan,
                "simes_q": hierarchy.family_q if hierarchy is not None else np.nan,
                "selected": result.selected.astype(bool),
                "discoveries": (result.q_map <= alpha).sum(axis=0).astype(int),
            },
            index=pd.Index(gene_assoc.p.columns.astype(str)),
        )
    )
    record(adata, "associate_genes", params, gene_assoc.notes)


def mutations(
    adata: ad.AnnData,
    *,
    columns: Sequence[str] | None = None,
    min_n: int = 10,
    min_group: int = 5,
    families: str = "source",
    seed: int = 0,
    copy: bool = False,
) -> ad.AnnData | None:
    """Relate mutation status to every imaging feature and to every module eigengene.

    Mutation x imaging uses every patient with a known status and the feature, with or
    without expression (:func:`radmap.analysis.io.all_patients`); mutation x module the
    patients with expression. Tests: :func:`radmap.analysis.analyses.mutation_imaging` and
    :func:`~radmap.analysis.analyses.mutation_modules`. Writes
    ``uns["radmap"]["mutation_imaging"]`` and ``uns["radmap"]["mutation_modules"]``.

    Parameters
    ----------
    columns
        Mutation columns of ``obs`` (Mutant / Wildtype / missing); default: those found by
        the clinical reader (``params["mutations"]``).
    min_n
        Fewest patients with a value for a test to run.
    min_group
        Smallest level kept in a contingency table / group comparison.
    families
        ``"source"``: one family per mutation (and imaging source); ``"analysis"``: one.
    """
    from .analyses import MUTATION_COLUMNS, mutation_imaging, mutation_modules
    from .io.bundle_io import all_patients

    adata = _maybe_copy(adata, copy)
    uns = radmap_uns(adata)
    names = list(columns if columns is not None else uns["params"].get("mutations", []) or [])
    missing = [name for name in names if name not in adata.obs.columns]
    if missing:
        raise InputError(f"mutation column {missing[0]!r} is not in obs")
    _, features = _imaging(adata)
    eigengenes = _eigengenes(adata)
    notes: list[str] = []
    if not names:
        imaging_table = pd.DataFrame(columns=list(MUTATION_COLUMNS))
        module_table = pd.DataFrame(columns=["mutation", "module", *MUTATION_COLUMNS[2:]])
    else:
        imaging, clinical = all_patients(adata)
        status = clinical[names]
        imaging_table = mutation_imaging(
            status, imaging, features, families=families, min_n=min_n, min_group=min_group,
            notes=notes, seed=seed,
        )  # fmt: skip
        module_table = mutation_modules(
            adata.obs[names], eigengenes, families=families, min_n=min_n, min_group=min_group
        )
        with_status = status.notna().any(axis=1)
        _record_patients(
            adata,
            "mutation x imaging",
            "imaging and mutation status",
            int((with_status & imaging.notna().any(axis=1)).sum()),
        )
        _record_patients(
            adata,
            "mutation x module",
            "expression and mutation status",
            int(adata.obs[names].notna().any(axis=1).sum()),
        )
    uns["mutation_imaging"] = clean_table(imaging_table)
    uns["mutation_modules"] = clean_table(module_table)
    uns["params"]["mutations"] = names
    record(
        adata,
        "mutation_tests",
        {"columns": names, "min_n": min_n, "min_group": min_group, "families": families},
        notes,
    )
    return adata if copy else None


# ------------------------------------------------------------------------------ enrichment


def enrich(
    adata: ad.AnnData,
    *,
    gene_sets: Sequence[str | Path] = ("hallmark", "go_bp"),
    min_set_size: int = 5,
    max_set_size: int = 500,
    q_threshold: float = 0.05,
    copy: bool = False,
) -> ad.AnnData | None:
    """Over-representation of each module's genes in the gene sets, offline.

    The background is every gene of ``adata``. Writes ``uns["radmap"]["enrichment"]`` and the
    modules table's ``top_pathway`` / ``top_pathway_q`` / ``label`` (see
    :func:`module_labels`: a pathway names a module only when its q passes ``q_threshold``).

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
        uns["modules"] = clean_table(module_labels(modules_table, table, q_threshold=q_threshold))
    record(
        adata,
        "enrich",
        {
            "gene_sets": [str(s) for s in gene_sets],
            "min_set_size": min_set_size,
            "max_set_size": max_set_size,
            "q_threshold": q_threshold,
        },
    )
    return adata if copy else None


def module_labels(
    modules_table: pd.DataFrame, enrichment: pd.DataFrame, *, q_threshold: float = 0.05
) -> pd.DataFrame:
    """Name each module by its best pathway only when that pathway's q passes the threshold.

    Adds ``top_pathway`` (the smallest-q term with ``q <= q_threshold``, else ``""``),
    ``top_pathway_q`` (its q, NaN when none passes) and ``label``: ``"<term> (q = ...)"`` or,
    when no term passes, ``"hubs: A, B, C"`` from the module's first hub genes.
    """
    table = modules_table.copy()
    best: dict[str, tuple[str, float]] = {}
    if not enrichment.empty:
        passing = enrichment[pd.to_numeric(enrichment["q"], errors="coerce") <= q_threshold]
        for module, rows in passing.sort_values(["q", "p"]).groupby("module", observed=True):
            best[str(module)] = (str(rows["term"].iloc[0]), float(rows["q"].iloc[0]))
    hubs = table["hub_genes"] if "hub_genes" in table.columns else pd.Series("", index=table.index)
    table["top_pathway"] = [best.get(str(m), ("", np.nan))[0] for m in table.index]
    table["top_pathway_q"] = [best.get(str(m), ("", np.nan))[1] for m in table.index]
    labels = []
    for module in table.index:
        if str(module) in best:
            term, q = best[str(module)]
            labels.append(f"{term} (q = {q:.2g})")
        else:
            genes = [g for g in str(hubs.get(module, "")).split("|") if g][:3]
            labels.append("hubs: " + ", ".join(genes) if genes else "")
    table["label"] = labels
    return table


# -------------------------------------------------------------------------------- survival


def survival(
    adata: ad.AnnData,
    *,
    covariates: Sequence[str] = (),
    min_events: int = 5,
    min_group: int = 5,
    copy: bool = False,
) -> ad.AnnData | None:
    """Survival associations of modules, imaging features and mutations.

    Needs ``obs["survival_time"]`` and ``obs["survival_event"]``; without them the table is
    empty and a warning says so. Modules use the patients with expression; imaging features
    and mutations every patient with survival data (:func:`radmap.analysis.io.all_patients`). Writes ``uns["radmap"]["survival"]`` (see
    :func:`radmap.analysis.survival.survival_table`).
    """
    from . import survival as survival_tools

    adata = _maybe_copy(adata, copy)
    uns = radmap_uns(adata)
    warnings: list[str] = []
    if bundle.SURVIVAL_TIME in adata.obs and bundle.SURVIVAL_EVENT in adata.obs:
        from .io.bundle_io import all_patients

        imaging, features = _imaging(adata)
        imaging, clinical = all_patients(adata)
        table, warnings = survival_tools.survival_table(
            clinical,
            eigengenes=_eigengenes(adata),
            imaging=imaging,
            features=features,
            mutations=list(uns["params"].get("mutations", []) or []),
            covariates=list(covariates),
            min_events=min_events,
            min_group=min_group,
        )
        known = clinical[[bundle.SURVIVAL_TIME, bundle.SURVIVAL_EVENT]].notna().all(axis=1)
        _record_patients(
            adata, "imaging x survival", "imaging and survival",
            int((known & imaging.notna().any(axis=1)).sum()),
        )  # fmt: skip
        _record_patients(
            adata, "module x survival", "expression and survival",
            int(known.reindex(adata.obs_names).sum()),
        )  # fmt: skip
    else:
        table = pd.DataFrame(columns=list(survival_tools.SURVIVAL_COLUMNS))
        warnings = ["no survival columns: survival analysis skipped"]
    uns["survival"] = clean_table(table)
    record(
        adata,
        "survival",
        {"covariates": list(covariates), "min_events": min_events, "min_group": min_group},
        warnings,
    )
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
    gene_permutations: int = 0,
    alpha: float = 0.05,
    size_feature: str | None = None,
    acquisition: Sequence[str] = (),
    seed: int = 0,
    scheduler: str | None = "auto",
    n_workers: int = 2,
    gene_null: Callable | None = None,
    copy: bool = False,
) -> ad.AnnData | None:
    """Permutation nulls, tumour-size check and leave-one-out influence of the module map
    (and the acquisition check when ``acquisition`` names covariates).

    Adds ``perm_p``, ``perm_q``, ``q_size_adjusted``, ``size_surrogate``, ``influence``,
    ``influential_patient``, ``p_without``, ``one_patient`` and ``flags`` to
    ``uns["radmap"]["associations"]`` and the summaries ``uns["radmap"]["null"]`` (with a
    one-line ``badge``), ``["size_check"]`` and ``["influence"]``; see
    :func:`radmap.analysis.trust.add_trust_checks` and
    :func:`radmap.analysis.null.add_module_null`. ``n_permutations=0`` skips the null.
    Both nulls test the map's covariate-adjusted statistics when :func:`associate` was run
    with ``adjust_for``.

    ``gene_permutations`` > 0 also runs the gene map's null
    (:func:`radmap.analysis.null.add_gene_null`: ``uns["radmap"]["gene_null"]`` and
    ``["gene_null_features"]``); ``gene_null`` is that null prepared by
    :func:`radmap.analysis.null.gene_null_of` with the same options (e.g. computed on
    another core meanwhile), recorded instead of running it here.
    """
    from .null import add_gene_null, add_null_or_warn
    from .trust import add_trust_checks

    adata = _maybe_copy(adata, copy)
    _require_map(adata)
    if n_permutations < 0 or gene_permutations < 0:
        raise InputError("trust: permutations must be 0 (off) or more")
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
    warnings += add_null_or_warn(
        add_gene_null,
        adata,
        n_permutations=gene_permutations,
        alpha=alpha,
        seed=seed,
        scheduler=scheduler,
        n_workers=n_workers,
        computed=gene_null,
    )
    uns = radmap_uns(adata)
    uns["associations"] = clean_table(uns["associations"])
    params = {
        "n_permutations": n_permutations,
        "gene_permutations": gene_permutations,
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


# ------------------------------------------------------------------------------ virtual biopsy


def predict(
    adata: ad.AnnData,
    *,
    target: str | Sequence[str] | None = None,
    feature_sets: Sequence[str] | None = None,
    model: str = "elasticnet",
    outer_splits: int = 5,
    outer_repeats: int = 5,
    inner_splits: int = 3,
    n_permutations: int = 200,
    max_features: int = 50,
    threshold: str | float = "prevalence",
    cut: float | None = None,
    size_feature: str | None = None,
    clinical_columns: Sequence[str] | None = None,
    batch: str | None = None,
    validate: ad.AnnData | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    copy: bool = False,
) -> ad.AnnData | None:
    """Virtual biopsy: predict ``target`` from imaging by repeated nested CV, against the
    size, clinical and constant baselines, with a permutation test of the whole procedure.

    What ``radmap predict`` does (see :func:`radmap.analysis.predict.predict` for the
    protocol and the tables), with the results in ``uns["radmap"]["predict"]``, the slot
    the explorer's Predict page reads when the bundle has no ``.predict.json`` next to it;
    ``radmap.pl.predict(adata)`` draws them. ``target`` is a mutation column, a module name
    or a clinical column (several allowed; default every mutation column); ``batch`` an
    ``obs`` column of scanners or sites whose radiomic features are harmonised inside the
    folds; ``validate`` an external bundle the frozen model is applied to.
    """
    from . import predict as prediction

    adata = _maybe_copy(adata, copy)
    targets = [target] if isinstance(target, str) else (list(target) if target else None)
    params = prediction.PredictParams(
        model=model,
        outer_splits=outer_splits,
        outer_repeats=outer_repeats,
        inner_splits=inner_splits,
        n_permutations=n_permutations,
        max_features=max_features,
        threshold=threshold,
        cut=cut,
        seed=seed,
        n_jobs=max(1, n_jobs),
        batch=batch,
    )
    result = prediction.predict(
        adata,
        targets=targets,
        feature_sets_=tuple(feature_sets) if feature_sets else prediction.FEATURE_SETS,
        params=params,
        size_feature=size_feature,
        clinical_columns=clinical_columns,
        validate=validate,
        key_added=prediction.PREDICT_KEY,
    )
    record(adata, "predict", result.params, result.warnings)
    return adata if copy else None
