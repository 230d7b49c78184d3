"""A Methods paragraph and a CLEAR-style checklist, generated from a bundle.

Everything printed comes from the bundle (:func:`methods_facts`), so the text cannot drift
from what was run: patients and genes per analysis, preprocessing, module detection and its
parameters, the test per feature type, multiple-testing families, the trust checks that ran
(permutation null, size check, leave-one-out influence, bootstrap stability, replication),
seed, software versions and the bundle's SHA-256.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd

from . import bundle

ALPHA = 0.05
TRUST_KEYS = {
    "null": "permutation null of the module map",
    "gene_null": "permutation null of the gene map",
    "size_check": "tumour-size check of every link",
    "influence": "leave-one-out influence of every link",
    "stability": "bootstrap stability of modules and links",
    "replication": "replication in an independent cohort",
}


def _number(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        return str(int(value)) if value.is_integer() else f"{value:.3g}"
    return str(value)


def methods_facts(adata: ad.AnnData, *, bundle_hash: str | None = None) -> dict[str, object]:
    """The facts the Methods text states, read from the bundle.

    Returns
    -------
    A flat dict (numbers and strings); trust checks that did not run are absent.
    """
    uns = adata.uns[bundle.UNS_KEY]
    params = uns.get("params", {})
    config = json.loads(params.get("config", "{}") or "{}")
    preprocess = params.get("preprocess", {}) or {}
    modules = params.get("modules", {}) or {}
    provenance = uns.get("provenance", {}) or {}
    features = uns.get("features", pd.DataFrame())
    associations = uns.get("associations", pd.DataFrame())
    eigengenes = adata.obsm.get(bundle.EIGENGENES_KEY)
    facts: dict[str, object] = {
        "patients": int(adata.n_obs),
        "genes_in": int(preprocess.get("n_genes_in", adata.n_vars)),
        "genes": int(adata.n_vars),
        "scale": str(preprocess.get("scale", "")),
        "network_genes": int(modules.get("n_network_genes", adata.n_vars)),
        "module_method": str(modules.get("method", "")),
        "network": str(modules.get("network", "")),
        "min_module_size": modules.get("min_module_size"),
        "merge_cut_height": modules.get("merge_cut_height"),
        "modules": int(eigengenes.shape[1]) if eigengenes is not None else 0,
        "features": int(len(features)),
        "seed": provenance.get("seed", config.get("seed")),
        "radmap_version": provenance.get("radmap_version", ""),
        "python": provenance.get("python", ""),
        "alpha": ALPHA,
    }
    if facts["module_method"] == "wgcna":
        facts["power"] = modules.get("power")
        facts["deep_split"] = modules.get("deep_split")
    else:
        facts["resolution"] = modules.get("resolution")
        facts["n_neighbors"] = modules.get("n_neighbors")
    if "module" in adata.var:
        facts["unassigned_genes"] = int(
            (adata.var["module"].astype(str) == bundle.UNASSIGNED).sum()
        )
    if len(features) and "type" in features:
        for kind, count in features["type"].astype(str).value_counts().sort_index().items():
            facts[f"features_{kind}"] = int(count)
            if "test" in features:
                tests = sorted(set(features.loc[features["type"] == kind, "test"].astype(str)))
                facts[f"test_{kind}"] = ", ".join(t for t in tests if t) or "not tested"
    if len(associations):
        n = associations["n"].to_numpy(dtype=float)
        facts["map_tests"] = int(associations["p"].notna().sum())
        facts["map_n_min"], facts["map_n_max"] = int(np.nanmin(n)), int(np.nanmax(n))
        facts["map_links"] = int((associations["q"] < ALPHA).sum())
        if "family" in associations:
            tested = associations[associations["p"].notna()]
            facts["map_families"] = "; ".join(
                f"{family} ({count} tests)"
                for family, count in tested.groupby("family").size().items()
            )
    gene_n = [int(v) for v in uns.get("gene_n", []) or []]
    if gene_n:
        facts["gene_features"] = len(gene_n)
        facts["gene_n_min"], facts["gene_n_max"] = min(gene_n), max(gene_n)
    survival = uns.get("survival", pd.DataFrame())
    if isinstance(survival, pd.DataFrame) and len(survival) and "n" in survival:
        tested = survival[pd.to_numeric(survival["p"], errors="coerce").notna()]
        if len(tested):
            facts["survival_tests"] = int(len(tested))
            facts["survival_n_min"] = int(tested["n"].min())
            facts["survival_n_max"] = int(tested["n"].max())
            facts["survival_events_max"] = int(tested["events"].max())
    adjust = config.get("adjust_for") or []
    facts["covariates"] = ", ".join(adjust) if adjust else "none"
    packages = provenance.get("packages", {}) or {}
    facts["packages"] = ", ".join(f"{k} {v}" for k, v in sorted(packages.items()))
    if bundle_hash:
        facts["bundle_sha256"] = bundle_hash
    for key in TRUST_KEYS:
        summary = uns.get(key)
        if isinstance(summary, Mapping):
            for name, value in summary.items():
                if isinstance(value, int | float | str | np.integer | np.floating):
                    facts[f"{key}_{name}"] = value
    return facts


def methods_text(adata: ad.AnnData, *, bundle_hash: str | None = None) -> str:
    """The Methods paragraph and the checklist, as plain text."""
    f = {k: _number(v) for k, v in methods_facts(adata, bundle_hash=bundle_hash).items()}
    parts = [
        f"Gene expression and imaging features of {f['patients']} patients were analysed with "
        f"radmap {f['radmap_version']} (Python {f['python']}). Expression was read on "
        f"{f['scale']} scale; {f['genes']} of {f['genes_in']} genes passed filtering and the "
        f"{f['network_genes']} most variable formed the co-expression network."
    ]
    if f["module_method"] == "wgcna":
        parts.append(
            f"Modules were found by WGCNA ({f['network']} network, soft-threshold power "
            f"{f['power']}, dynamic hybrid tree cut with deepSplit {f['deep_split']}, minimum "
            f"module size {f['min_module_size']}, modules merged below eigengene dissimilarity "
            f"{f['merge_cut_height']}): {f['modules']} modules, with "
            f"{f.get('unassigned_genes', '0')} genes unassigned."
        )
    else:
        parts.append(
            f"Modules were found by Leiden clustering of a gene kNN graph ({f['n_neighbors']} "
            f"neighbours, resolution {f['resolution']}, minimum module size "
            f"{f['min_module_size']}): {f['modules']} modules."
        )
    kinds = [k.removeprefix("features_") for k in f if k.startswith("features_")]
    described = "; ".join(
        f"{f[f'features_{kind}']} {kind} ({f.get(f'test_{kind}', 'not tested')})" for kind in kinds
    )
    parts.append(
        f"Each module eigengene was tested against each of the {f['features']} imaging "
        f"features with the test for its type: {described}. Each test used every patient "
        f"with both values (n = {f.get('map_n_min', '0')} to {f.get('map_n_max', '0')}); "
        + (
            f"Benjamini-Hochberg q-values were computed within declared families "
            f"({f['map_families']}), and across them by the two-level procedure of Benjamini "
            f"and Bogomolov (2014); {f.get('map_links', '0')} links had q < {f['alpha']}. "
            if f.get("map_families")
            else f"Benjamini-Hochberg q-values were computed over the {f.get('map_tests', '0')} "
            f"tests of the map, and {f.get('map_links', '0')} links had q < {f['alpha']}. "
        )
        + f"Covariates: {f['covariates']}."
    )
    if "gene_features" in f:
        parts.append(
            f"Each of the {f['genes']} genes was tested against each of {f['gene_features']} "
            f"features the same way (n = {f['gene_n_min']} to {f['gene_n_max']}), with "
            "Benjamini-Hochberg q-values over the genes of each feature."
        )
    if "survival_tests" in f:
        parts.append(
            f"Survival was related to modules and imaging features by log-rank tests and Cox "
            f"models ({f['survival_tests']} tests; n = {f['survival_n_min']} to "
            f"{f['survival_n_max']}, up to {f['survival_events_max']} events)."
        )
    if "null_n_permutations" in f:
        parts.append(
            f"Patients' imaging rows were permuted against expression {f['null_n_permutations']} "
            f"times (seed {f['null_seed']}): {f['null_expected_false_links']} links were "
            f"expected by chance at q < {f['null_alpha']} against {f['null_observed_links']} "
            f"observed on the permutation statistics (empirical FDR {f['null_empirical_fdr']})."
        )
    if "gene_null_n_permutations" in f:
        parts.append(
            f"The gene map was permuted {f['gene_null_n_permutations']} times the same way: "
            f"{f['gene_null_expected_false_links']} gene links were expected by chance at "
            f"map-level q < {f['gene_null_alpha']} against {f['gene_null_observed_links']} "
            "observed."
        )
    if "size_check_size_feature" in f:
        parts.append(
            f"Every link was re-tested with tumour size ({f['size_check_size_feature']}) "
            f"partialled out; links that lost significance (size surrogates): "
            f"{f['size_check_surrogates']}."
        )
    if "influence_one_patient" in f:
        parts.append(
            "Leave-one-out influence was computed for every link; links no longer nominally "
            f"significant without a single patient: {f['influence_one_patient']}."
        )
    if "stability_n_bootstraps" in f:
        parts.append(
            f"Patients were resampled {f['stability_n_bootstraps']} times with replacement "
            f"(seed {f['stability_seed']}) to re-detect modules and re-test the map."
        )
    parts.append(
        f"Random steps used seed {f['seed']}. Software: {f['packages']}."
        + (f" Bundle SHA-256: {f['bundle_sha256']}." if "bundle_sha256" in f else "")
    )
    lines = ["Methods", "", " ".join(parts), "", "Checklist (CLEAR-style)", ""]
    for item, done in checklist(adata):
        lines.append(f"[{'x' if done else ' '}] {item}")
    return "\n".join(lines) + "\n"


def checklist(adata: ad.AnnData) -> list[tuple[str, bool]]:
    """(item, done) pairs: what the analysis did and did not do."""
    uns = adata.uns[bundle.UNS_KEY]
    config = json.loads(uns.get("params", {}).get("config", "{}") or "{}")
    associations = uns.get("associations", pd.DataFrame())
    items = [
        ("Patients per analysis reported (n per result row)", "n" in associations),
        ("Feature types declared and the test chosen by type", "features" in uns),
        ("Multiple testing corrected (Benjamini-Hochberg)", "q" in associations),
        ("Covariates adjusted for", bool(config.get("adjust_for"))),
    ]
    items += [(label.capitalize(), key in uns) for key, label in TRUST_KEYS.items()]
    items += [
        ("Input files identified by SHA-256", bool(uns.get("provenance", {}).get("inputs"))),
        ("Seed and software versions recorded", "seed" in uns.get("provenance", {})),
        ("Prediction evaluated by nested cross-validation against baselines", False),
    ]
    return items
