"""A seeded toy radmap bundle that follows ``analysis/bundle.py`` exactly.

``make_toy_adata`` builds the AnnData in memory; ``write_toy_bundle`` saves it with
``anndata.write_h5ad``. Both scale (the benchmark builds 500 patients x 20,000 genes x
200 features with the same code), so every statistic is computed with vectorised numpy /
scipy rather than a loop over genes.
"""

from __future__ import annotations

import base64
from importlib.metadata import version
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from radmap.analysis import bundle as B
from radmap.analysis.io import load_bundle, save_bundle
from radmap.analysis.survival import SURVIVAL_COLUMNS
from scipy import stats

TOY_MODULES = ("M1", "M2", "M3", "M4")
TOY_GENE_SYMBOLS = (
    "EGFR",
    "KRAS",
    "TP53",
    "MKI67",
    "CDK1",
    "CCNB1",
    "TOP2A",
    "BUB1",
    "COL1A1",
    "COL3A1",
    "FN1",
    "VIM",
    "CD3E",
    "CD8A",
    "GZMB",
    "PTPRC",
    "SFTPC",
    "NKX2-1",
    "NAPSA",
    "KRT5",
)

SEMANTIC_SPECS = {
    # id: (label, type, levels, group)
    "nodule_attenuation": (
        "Nodule attenuation",
        "categorical",
        ("solid", "part-solid", "ground-glass"),
    ),
    "margin_spiculated": ("Spiculated margin", "binary", ("No", "Yes")),
    "pleural_attachment": ("Pleural attachment", "binary", ("No", "Yes")),
    "nodule_size_class": ("Nodule size class", "ordinal", ("small", "medium", "large")),
    "lobe_location": ("Lobe location", "categorical", ("upper", "middle", "lower")),
}
CLINICAL_SPECS = {"pack_years": "Pack years"}
RADIOMIC_NAMES = (
    "original_shape_Sphericity",
    "original_shape_Elongation",
    "original_shape_MeshVolume",
    "original_firstorder_Mean",
    "original_firstorder_Entropy",
    "wavelet-LLH_glcm_Contrast",
    "wavelet-LLH_glcm_Correlation",
)
RADIOMIC_GROUPS = (
    "original_shape",
    "original_firstorder",
    "original_glcm",
    "wavelet-LLH_glcm",
    "wavelet-HLH_glrlm",
    "log-sigma-2-0-mm-3D_firstorder",
)


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg along axis 0, NaN-safe (independent of the analysis code)."""
    p = np.asarray(p, dtype=float)
    flat = p.reshape(p.shape[0], -1)
    out = np.full(flat.shape, np.nan)
    for column in range(flat.shape[1]):
        values = flat[:, column]
        ok = np.isfinite(values)
        m = ok.sum()
        if m == 0:
            continue
        order = np.argsort(values[ok])
        ranked = values[ok][order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        q = np.empty(m)
        q[order] = np.minimum(ranked, 1.0)
        out[ok, column] = q
    return out.reshape(p.shape)


def _rank_columns(matrix: np.ndarray) -> np.ndarray:
    return stats.rankdata(matrix, axis=0)


def _spearman_block(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rho and two-sided p between columns of x (n x a) and y (n x b), no NaN."""
    n = x.shape[0]
    rx = _rank_columns(x)
    ry = _rank_columns(y)
    rx = (rx - rx.mean(0)) / np.maximum(rx.std(0), 1e-12)
    ry = (ry - ry.mean(0)) / np.maximum(ry.std(0), 1e-12)
    rho = np.clip(rx.T @ ry / n, -1.0, 1.0)
    t = rho * np.sqrt((n - 2) / np.maximum(1.0 - rho**2, 1e-12))
    p = 2.0 * stats.t.sf(np.abs(t), n - 2)
    return rho, p


def _feature_numeric(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy().astype(float)
        codes[codes < 0] = np.nan
        return codes
    return column.to_numpy(dtype=float)


def _module_feature_test(
    values: np.ndarray, feature: pd.Series, ftype: str
) -> tuple[str, float, float, float, int]:
    ok = np.isfinite(values) & feature.notna().to_numpy()
    y = values[ok]
    if ftype in ("continuous", "ordinal"):
        x = _feature_numeric(feature)[ok]
        rho, p = stats.spearmanr(x, y)
        return "spearman", float(rho), float(rho), float(p), int(ok.sum())
    levels = list(feature.cat.categories)
    groups = [y[(feature[ok] == level).to_numpy()] for level in levels]
    groups = [g for g in groups if len(g)]
    if ftype == "binary":
        a, b = groups[0], groups[-1]
        u, p = stats.mannwhitneyu(b, a, alternative="two-sided")
        effect = float(np.mean(b) - np.mean(a))
        return "mannwhitney", float(u), effect, float(p), int(ok.sum())
    h, p = stats.kruskal(*groups)
    effect = float(max(h - len(groups) + 1, 0) / max(ok.sum() - len(groups), 1))
    return "kruskal", float(h), effect, float(p), int(ok.sum())


def make_toy_adata(
    *,
    n_patients: int = 60,
    n_genes: int = 300,
    n_radiomic: int = 7,
    n_modules: int = 4,
    seed: int = 0,
) -> ad.AnnData:
    """A small radmap bundle with planted module-feature links.

    Parameters
    ----------
    n_patients, n_genes, n_radiomic, n_modules
        Sizes; 5 semantic and 1 clinical feature are always added to the radiomic ones.
    seed
        Seed of the single random generator used for everything.
    """
    rng = np.random.default_rng(seed)
    patients = [f"P{i:03d}" for i in range(1, n_patients + 1)]
    genes = list(TOY_GENE_SYMBOLS[:n_genes]) + [
        f"GENE{i:05d}" for i in range(n_genes - min(n_genes, len(TOY_GENE_SYMBOLS)))
    ]
    modules = [f"M{i}" for i in range(1, n_modules + 1)]

    # Expression: a latent factor per module plus noise; 20% of genes unassigned.
    latent = rng.normal(size=(n_patients, n_modules))
    n_assigned = int(n_genes * 0.8)
    gene_module = np.array(
        [modules[i % n_modules] for i in range(n_assigned)]
        + [B.UNASSIGNED] * (n_genes - n_assigned)
    )
    loadings = rng.uniform(0.6, 1.4, size=n_genes)
    expression = rng.normal(scale=0.8, size=(n_patients, n_genes)) + 6.0
    for m_index, module in enumerate(modules):
        members = gene_module == module
        expression[:, members] += latent[:, [m_index]] * loadings[members]
    expression = expression.astype(np.float32)

    z = (expression - expression.mean(0)) / expression.std(0)
    eigengenes = pd.DataFrame(index=patients, columns=modules, dtype=float)
    kme = np.full(n_genes, np.nan)
    for module in modules:
        members = gene_module == module
        eigen = z[:, members].mean(1)
        eigen = (eigen - eigen.mean()) / eigen.std()
        eigengenes[module] = eigen
        kme[members] = [np.corrcoef(eigen, z[:, j])[0, 1] for j in np.flatnonzero(members)]
    is_hub = np.zeros(n_genes, dtype=bool)
    for module in modules:
        members = np.flatnonzero(gene_module == module)
        is_hub[members[np.argsort(-kme[members])[:3]]] = True

    # Imaging features with planted links: Sphericity ~ M1, attenuation ~ M2, spiculation ~ M3.
    imaging = pd.DataFrame(index=patients)
    e = eigengenes.to_numpy()
    attenuation_score = e[:, 1 % n_modules] + rng.normal(scale=0.5, size=n_patients)
    imaging["nodule_attenuation"] = pd.Categorical.from_codes(
        np.digitize(attenuation_score, np.quantile(attenuation_score, [1 / 3, 2 / 3])),
        categories=list(SEMANTIC_SPECS["nodule_attenuation"][2]),
    )
    spic = (e[:, 2 % n_modules] + rng.normal(scale=0.7, size=n_patients)) > 0
    imaging["margin_spiculated"] = pd.Categorical.from_codes(
        spic.astype(int), categories=["No", "Yes"]
    )
    imaging["pleural_attachment"] = pd.Categorical.from_codes(
        rng.integers(0, 2, n_patients), categories=["No", "Yes"]
    )
    imaging["nodule_size_class"] = pd.Categorical.from_codes(
        rng.integers(0, 3, n_patients),
        categories=list(SEMANTIC_SPECS["nodule_size_class"][2]),
        ordered=True,
    )
    imaging["lobe_location"] = pd.Categorical.from_codes(
        rng.integers(0, 3, n_patients), categories=list(SEMANTIC_SPECS["lobe_location"][2])
    )
    imaging["pack_years"] = np.round(rng.gamma(3.0, 10.0, size=n_patients), 1)
    radiomic_names = list(RADIOMIC_NAMES[:n_radiomic])
    for i in range(n_radiomic - len(radiomic_names)):
        group = RADIOMIC_GROUPS[i % len(RADIOMIC_GROUPS)]
        radiomic_names.append(f"{group}_Feature{i:04d}")
    radiomic = rng.normal(size=(n_patients, n_radiomic))
    radiomic[:, 0] += 1.5 * e[:, 0]
    for i, name in enumerate(radiomic_names):
        imaging[name] = radiomic[:, i]
    # Missing values: a few patients without semantic annotation, one without a radiomic value.
    missing_semantic = rng.choice(n_patients, size=max(1, n_patients // 12), replace=False)
    for name in SEMANTIC_SPECS:
        imaging.iloc[missing_semantic, imaging.columns.get_loc(name)] = np.nan
    imaging.iloc[0, imaging.columns.get_loc(radiomic_names[1])] = np.nan

    feature_rows = []
    for fid in imaging.columns:
        column = imaging[fid]
        if fid in SEMANTIC_SPECS:
            label, ftype, levels = SEMANTIC_SPECS[fid]
            source, group = "semantic", "semantic"
            contrast = f"{levels[-1]} vs {levels[0]}" if ftype == "binary" else ""
            level_str = "|".join(levels)
        elif fid in CLINICAL_SPECS:
            label, ftype, source, group, contrast, level_str = (
                CLINICAL_SPECS[fid],
                "continuous",
                "clinical",
                "clinical",
                "",
                "",
            )
        else:
            group = next((g for g in RADIOMIC_GROUPS if fid.startswith(g + "_")), "original")
            label = fid[len(group) + 1 :] if fid.startswith(group + "_") else fid
            ftype, source, contrast, level_str = "continuous", "radiomic", "", ""
        test = {"continuous": "spearman", "ordinal": "spearman", "binary": "mannwhitney"}.get(
            ftype, "kruskal"
        )
        feature_rows.append(
            {
                "feature": fid,
                "label": label,
                "type": ftype,
                "source": source,
                "group": group,
                "levels": level_str,
                "contrast": contrast,
                "test": test,
                "n": int(column.notna().sum()),
            }
        )
    features = pd.DataFrame(feature_rows).set_index("feature")
    features.index.name = None

    # Module x feature associations (real tests on the toy data), BH over the whole map.
    rows = []
    for fid in features.index:
        for module in modules:
            test, statistic, effect, p, n = _module_feature_test(
                eigengenes[module].to_numpy(), imaging[fid], features.loc[fid, "type"]
            )
            rows.append(
                {
                    "module": module,
                    "feature": fid,
                    "test": test,
                    "statistic": statistic,
                    "effect": effect,
                    "p": p,
                    "n": n,
                }
            )
    associations = pd.DataFrame(rows)
    associations["q"] = _bh(associations["p"].to_numpy())
    associations = associations[["module", "feature", "test", "statistic", "effect", "p", "q", "n"]]

    # Gene x feature arrays: Spearman on numeric codes (median-imputed), BH per feature.
    numeric = np.column_stack([_feature_numeric(imaging[f]) for f in features.index])
    medians = np.nanmedian(numeric, axis=0)
    numeric = np.where(np.isnan(numeric), medians, numeric)
    rho, p_gene = _spearman_block(expression.astype(float), numeric)
    q_gene = _bh(p_gene)
    gene_n = [int(n) for n in features["n"]]

    # Mutations and survival, loosely tied to modules.
    egfr = np.where(e[:, 0] + rng.normal(size=n_patients) > 0.8, B.MUTANT, B.WILDTYPE).astype(
        object
    )
    kras = np.where(rng.random(n_patients) < 0.25, B.MUTANT, B.WILDTYPE).astype(object)
    egfr[rng.choice(n_patients, size=3, replace=False)] = np.nan
    hazard = np.exp(0.6 * e[:, 1 % n_modules])
    time = np.round(rng.exponential(900.0 / hazard), 0) + 30.0
    event = (rng.random(n_patients) < 0.6).astype(float)
    event[rng.choice(n_patients, size=2, replace=False)] = np.nan
    obs = pd.DataFrame(
        {
            "EGFR": pd.Categorical(egfr, categories=[B.MUTANT, B.WILDTYPE]),
            "KRAS": pd.Categorical(kras, categories=[B.MUTANT, B.WILDTYPE]),
            B.SURVIVAL_TIME: time,
            B.SURVIVAL_EVENT: event,
            "age": np.round(rng.normal(68, 8, size=n_patients), 0),
            "stage": pd.Categorical(rng.choice(["I", "II", "III"], n_patients)),
        },
        index=patients,
    )

    var = pd.DataFrame(
        {
            "module": pd.Categorical(gene_module, categories=[*modules, B.UNASSIGNED]),
            "in_network": np.arange(n_genes) < int(n_genes * 0.9),
            "kME": kme,
            "is_hub": is_hub,
            "highly_variable": np.arange(n_genes) < int(n_genes * 0.9),
            "mean": expression.mean(0).astype(float),
            "variance": expression.var(0).astype(float),
        },
        index=genes,
    )

    module_rows = []
    for module in modules:
        members = np.flatnonzero(gene_module == module)
        hubs = [genes[j] for j in members[np.argsort(-kme[members])[:5]]]
        module_rows.append(
            {
                "module": module,
                "size": int(len(members)),
                "hub_genes": "|".join(hubs),
                "variance_explained": float(rng.uniform(0.2, 0.6)),
                "top_pathway": f"HALLMARK_TOY_{module}",
            }
        )
    modules_table = pd.DataFrame(module_rows).set_index("module")
    modules_table.index.name = None

    enrichment_rows = []
    for module in modules:
        members = [genes[j] for j in np.flatnonzero(gene_module == module)]
        for k, collection in enumerate(("hallmark", "hallmark", "go_bp", "go_bp")):
            overlap = max(2, len(members) // (k + 3))
            p = float(10.0 ** -(6 - k) * rng.uniform(0.5, 1.0))
            enrichment_rows.append(
                {
                    "module": module,
                    "collection": collection,
                    "term": f"HALLMARK_TOY_{module}" if k == 0 else f"TERM_{module}_{k}",
                    "overlap": int(overlap),
                    "set_size": int(overlap * 3),
                    "p": p,
                    "q": min(1.0, p * 20),
                    "odds_ratio": float(rng.uniform(2, 10)),
                    "genes": "|".join(members[:overlap]),
                }
            )
    enrichment = pd.DataFrame(enrichment_rows)

    def _stats_table(left_name: str, left: dict[str, pd.Series], right: pd.DataFrame, types):
        out = []
        for lname, lvalues in left.items():
            codes = (lvalues == B.MUTANT).astype(float).where(lvalues.notna())
            for rname in right.columns:
                column = right[rname]
                rtype = types.get(rname, "continuous")
                if rtype in ("binary", "categorical") or isinstance(
                    column.dtype, pd.CategoricalDtype
                ):
                    table = pd.crosstab(lvalues, column)
                    chi2, p, _, _ = stats.chi2_contingency(table)
                    out.append((lname, rname, "chi2", chi2, float(chi2 / table.values.sum()), p))
                else:
                    ok = codes.notna() & column.notna()
                    rho, p = stats.spearmanr(codes[ok], column[ok])
                    out.append((lname, rname, "spearman", rho, rho, p))
        frame = pd.DataFrame(out, columns=[left_name, "x", "test", "statistic", "effect", "p"])
        frame["q"] = _bh(frame["p"].to_numpy())
        frame["n"] = len(patients)
        return frame

    mutations = {"EGFR": obs["EGFR"], "KRAS": obs["KRAS"]}
    mutation_imaging = _stats_table(
        "mutation", mutations, imaging, features["type"].to_dict()
    ).rename(columns={"x": "feature"})
    mutation_modules = _stats_table("mutation", mutations, eigengenes, {}).rename(
        columns={"x": "module"}
    )

    survival_rows = []
    for kind, variable in [("module", m) for m in modules] + [
        ("feature", "margin_spiculated"),
        ("mutation", "EGFR"),
    ]:
        p = float(rng.uniform(0.001, 0.9))
        hr = float(rng.uniform(0.5, 2.0))
        survival_rows.append(
            {
                "kind": kind,
                "variable": variable,
                "test": "logrank",
                "statistic": float(stats.chi2.isf(p, 1)),
                "hr": hr,
                "ci_low": hr * 0.7,
                "ci_high": hr * 1.4,
                "effect_measure": "hazard ratio",
                "p": p,
                "family": f"{kind} (logrank)",
                "n": n_patients - 2,
                "events": int(np.nansum(event)),
            }
        )
    survival = pd.DataFrame(survival_rows)
    survival["q"] = _bh(survival["p"].to_numpy())
    survival["effect_measure"] = np.where(survival["test"] == "cox", "hr_per_sd", "")
    survival["family"] = survival["kind"] + " (" + survival["test"] + ")"
    survival = survival[list(SURVIVAL_COLUMNS)]

    matching = pd.DataFrame(
        {
            "source": ["expression", "semantic", "radiomic", "clinical"],
            "n_ids": [n_patients, n_patients + 4, n_patients, n_patients + 10],
            "n_matched": [n_patients, n_patients, n_patients, n_patients],
            "n_unmatched": [0, 4, 0, 10],
            "unmatched": ["", "X001|X002|X003|X004", "", "|".join(f"C{i}" for i in range(10))],
        }
    )
    soft_threshold = pd.DataFrame(
        {
            "power": np.arange(1, 11),
            "sft_r2": np.linspace(0.1, 0.9, 10),
            "slope": np.linspace(-0.2, -1.8, 10),
            "mean_k": np.geomspace(100, 2, 10),
        }
    )

    adata = ad.AnnData(X=expression, obs=obs, var=var)
    adata.obsm[B.IMAGING_KEY] = imaging
    adata.obsm[B.EIGENGENES_KEY] = eigengenes.astype(float)
    effects = rho.astype(np.float32)
    adata.varm[B.GENE_EFFECT] = effects
    adata.varm[B.GENE_STATISTIC] = (
        rho * np.sqrt((n_patients - 2) / np.maximum(1 - rho**2, 1e-12))
    ).astype(np.float32)
    adata.varm[B.GENE_P] = p_gene.astype(np.float32)
    adata.varm[B.GENE_Q] = q_gene.astype(np.float32)
    adata.uns[B.UNS_KEY] = {
        "format_version": B.FORMAT_VERSION,
        "params": {
            "dataset": "toy-radmap",
            "seed": seed,
            "modules": {"method": "toy", "power": 6},
            "associate": {"q_threshold": 0.05},
        },
        "provenance": {
            "inputs": {"expression.csv": "0" * 64},
            "packages": {"anndata": version("anndata")},
            "seed": seed,
            "created": "2024-01-01T00:00:00",
            "command": "toy",
        },
        "features": features,
        "modules": modules_table,
        "soft_threshold": soft_threshold,
        "associations": associations,
        "mutation_imaging": mutation_imaging,
        "mutation_modules": mutation_modules,
        "enrichment": enrichment,
        "survival": survival,
        "matching": matching,
        "gene_features": list(features.index),
        "gene_n": gene_n,
        "warnings": ["toy warning: 4 imaging IDs had no expression"],
    }
    return adata


def decoded(array) -> np.ndarray:
    """A plotly data array as numpy, whether plain list or base64 typed array."""
    if isinstance(array, dict) and "bdata" in array:
        values = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        shape = array.get("shape")
        if isinstance(shape, str):
            shape = [int(part) for part in shape.split(",")]
        return values.reshape(shape) if shape is not None else values
    return np.asarray(array)


def as_figure(figure) -> go.Figure:
    """A callback's figure output as a ``go.Figure``: memoised figures come as the JSON-ready
    dict Dash sends, with numeric arrays packed as typed ``bdata`` (unpacked here)."""
    if isinstance(figure, go.Figure):
        return figure

    def unpack(value):
        if isinstance(value, dict):
            if "bdata" in value and "dtype" in value:
                return decoded(value)
            return {key: unpack(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [unpack(item) for item in value]
        return value

    return go.Figure(unpack(figure))


def find_component(component, wanted_id):
    """The component with id ``wanted_id`` in a Dash layout tree (``None`` when absent)."""
    if getattr(component, "id", None) == wanted_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = find_component(child, wanted_id)
            if found is not None:
                return found
    return None


def toy_gene_sets(adata: ad.AnnData) -> dict[str, dict[str, list[str]]]:
    """Gene sets over the toy genes: one term per module (its members) and two mixed terms."""
    module = adata.var["module"].astype(str)
    sets = {
        f"TOY_{m}_PROGRAM": list(module.index[module == m][:40])
        for m in sorted(set(module) - {B.UNASSIGNED})
    }
    genes = list(adata.var_names)
    return {
        "hallmark": sets,
        "go_bp": {"TOY_EVERY_THIRD": genes[::3], "TOY_FIRST_FIFTY": genes[:50]},
    }


def write_toy_bundle(path: Path, **kwargs) -> Path:
    """Write :func:`make_toy_adata` to ``path`` with the one bundle writer; return the path."""
    return save_bundle(make_toy_adata(**kwargs), Path(path))


@pytest.fixture(scope="session")
def toy_bundle_path(tmp_path_factory) -> Path:
    return write_toy_bundle(tmp_path_factory.mktemp("bundle") / "toy.h5ad")


@pytest.fixture(scope="session")
def toy_adata(toy_bundle_path) -> ad.AnnData:
    return load_bundle(toy_bundle_path)


@pytest.fixture(scope="session")
def toy_data(toy_bundle_path, toy_adata):
    from radmap.explorer.data import BundleData

    return BundleData(toy_bundle_path, gene_sets=toy_gene_sets(toy_adata))
