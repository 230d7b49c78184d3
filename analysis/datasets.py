"""Datasets: a synthetic cohort with planted truth (and the embedded real demo).

:func:`synthetic` draws a radiogenomic study whose answers are known: co-expressed gene
modules made of real Hallmark gene-set members, module–imaging links of set strength for
each feature type, a mutation–imaging link and a survival effect of one module. It feeds
the tests, the benchmarks and anyone who wants to see what the map should find.
:func:`write_cohort` writes it in the layout labs have (GEO-style expression matrix,
imaging table, TCIA-style clinical table).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from . import __version__
from .bundle import FORMAT_VERSION, MUTANT, SURVIVAL_EVENT, SURVIVAL_TIME, WILDTYPE
from .enrich import load_gene_sets
from .io import load_bundle
from .io.bundle_io import bundle_format
from .pipeline import BUNDLE_NAME, Config, Progress, run
from .validate import InputError

logger = logging.getLogger("radmap")

NOT_COLLECTED = "Not Collected"
NO_MODULE = "none"
PATIENT_ID = "patient_id"
CLINICAL_FILE_COLUMNS = {
    "EGFR": "EGFR mutation status",
    "KRAS": "KRAS mutation status",
    "age": "Age",
    "stage": "Stage",
    SURVIVAL_TIME: "Survival time (days)",
    SURVIVAL_EVENT: "Event",
}
"""Clinical columns of :class:`SyntheticCohort` -> their headers in ``clinical.csv``."""

LINK_STRENGTH = 0.5
"""Correlation between a linked module's latent factor and the feature's latent liability."""
SURVIVAL_HAZARD_RATIO = 1.8
"""Hazard ratio per 1 SD of the survival module's latent factor."""
BASELINE_MEDIAN_SURVIVAL_DAYS = 1200.0
SIZE_FEATURE = "original_shape_VoxelVolume"
SIZE_SURROGATE_FEATURE = "original_glszm_LargeAreaEmphasis"
"""With ``synthetic(size_driven=True)``: a texture feature that is tumour volume plus noise."""

# name, type, levels; linked features are listed in the order modules are linked to them.
LINKED_FEATURES = (
    ("original_firstorder_Entropy", "continuous", ()),
    ("spiculation", "binary", ("absent", "present")),
    ("emphysema", "ordinal", ("none", "mild", "moderate", "severe")),
    ("nodule_shape", "categorical", ("round", "lobulated", "irregular")),
)
MUTATION_FEATURE = ("attenuation", "ordinal", ("solid", "part-solid", "ground-glass"))
ATTENUATION_PROBABILITY = (0.6, 0.25, 0.15)
ATTENUATION_ORDER = ("ground-glass", "part-solid", "solid")
"""Attenuation is an ordered scale (ground glass < part-solid < solid by solid component)."""
EGFR_MUTANT_PROBABILITY = {"solid": 0.12, "part-solid": 0.45, "ground-glass": 0.6}
NULL_SEMANTIC_FEATURES = (
    ("air_bronchogram", "binary", ("absent", "present")),
    ("calcification", "binary", ("absent", "present")),
    ("pleural_attachment", "binary", ("absent", "present")),
    ("cavitation", "binary", ("absent", "present")),
    ("margin_definition", "categorical", ("well-defined", "ill-defined", "mixed")),
    ("lobe", "categorical", ("RUL", "RML", "RLL", "LUL", "LLL")),
    ("vascular_convergence", "ordinal", ("none", "mild", "marked")),
)
FINDINGS_FEATURE = "associated_findings"
FINDINGS = ("pleural attachment", "vascular convergence", "pleural retraction", "septal thickening")
FINDING_PROBABILITY = (0.6, 0.35, 0.3, 0.03)
"""Findings of the multi-valued annotation (several per patient, joined by ``|``); the last
is rare. None of them is linked to anything."""
SPARSE_FEATURE = ("nodule_shape_detail", "categorical", ("round", "oval", "complex", "polygonal"))
SPARSE_PROBABILITY = (0.45, 0.33, 0.22)
SPARSE_RARE_COUNT = 3
"""A categorical null feature: the first levels drawn with these probabilities, the last
given to exactly :data:`SPARSE_RARE_COUNT` random patients (below any minimum group)."""
STAGES = ("I", "II", "III", "IV")
STAGE_PROBABILITY = (0.45, 0.25, 0.2, 0.1)

_IMAGE_TYPES = (
    "original",
    *(f"wavelet-{band}" for band in ("LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH", "LLL")),
    *(f"log-sigma-{sigma}-0-mm-3D" for sigma in (1, 2, 3, 4, 5)),
)
_TEXTURE_FEATURES = {
    "firstorder": (
        "10Percentile 90Percentile Energy Entropy InterquartileRange Kurtosis Maximum "
        "MeanAbsoluteDeviation Mean Median Minimum Range RobustMeanAbsoluteDeviation "
        "RootMeanSquared Skewness TotalEnergy Uniformity Variance"
    ),
    "glcm": (
        "Autocorrelation ClusterProminence ClusterShade ClusterTendency Contrast Correlation "
        "DifferenceAverage DifferenceEntropy DifferenceVariance Id Idm Idmn Idn Imc1 Imc2 "
        "InverseVariance JointAverage JointEnergy JointEntropy MCC MaximumProbability "
        "SumAverage SumEntropy SumSquares"
    ),
    "glrlm": (
        "GrayLevelNonUniformity GrayLevelNonUniformityNormalized GrayLevelVariance "
        "HighGrayLevelRunEmphasis LongRunEmphasis LongRunHighGrayLevelEmphasis "
        "LongRunLowGrayLevelEmphasis LowGrayLevelRunEmphasis RunEntropy RunLengthNonUniformity "
        "RunLengthNonUniformityNormalized RunPercentage RunVariance ShortRunEmphasis "
        "ShortRunHighGrayLevelEmphasis ShortRunLowGrayLevelEmphasis"
    ),
    "glszm": (
        "GrayLevelNonUniformity GrayLevelNonUniformityNormalized GrayLevelVariance "
        "HighGrayLevelZoneEmphasis LargeAreaEmphasis LargeAreaHighGrayLevelEmphasis "
        "LargeAreaLowGrayLevelEmphasis LowGrayLevelZoneEmphasis SizeZoneNonUniformity "
        "SizeZoneNonUniformityNormalized SmallAreaEmphasis SmallAreaHighGrayLevelEmphasis "
        "SmallAreaLowGrayLevelEmphasis ZoneEntropy ZonePercentage ZoneVariance"
    ),
    "gldm": (
        "DependenceEntropy DependenceNonUniformity DependenceNonUniformityNormalized "
        "DependenceVariance GrayLevelNonUniformity GrayLevelVariance HighGrayLevelEmphasis "
        "LargeDependenceEmphasis LargeDependenceHighGrayLevelEmphasis "
        "LargeDependenceLowGrayLevelEmphasis LowGrayLevelEmphasis SmallDependenceEmphasis "
        "SmallDependenceHighGrayLevelEmphasis SmallDependenceLowGrayLevelEmphasis"
    ),
    "ngtdm": "Busyness Coarseness Complexity Contrast Strength",
}
_SHAPE_FEATURES = (
    "Elongation Flatness LeastAxisLength MajorAxisLength Maximum2DDiameterColumn "
    "Maximum2DDiameterRow Maximum2DDiameterSlice Maximum3DDiameter MeshVolume "
    "MinorAxisLength Sphericity SurfaceArea SurfaceVolumeRatio VoxelVolume"
)


@dataclass
class SyntheticCohort:
    """A synthetic radiogenomic study and the truth planted in it.

    Attributes
    ----------
    expression
        Genes x patients, log2-scale expression (index = gene symbols, columns = patient
        IDs), the layout of a GEO series matrix.
    imaging
        Patients x imaging features: radiomic features as floats, semantic features as
        pandas ``Categorical`` (ordered for ordinal features). Some values are missing.
    clinical
        Patients x ``EGFR`` / ``KRAS`` (``"Mutant"`` / ``"Wildtype"`` / ``"Not Collected"``),
        ``age``, ``stage``, ``survival_time`` (days) and ``survival_event`` (1 = death,
        0 = censored); some values are missing. See :data:`CLINICAL_FILE_COLUMNS` for the
        headers written by :func:`write_cohort`.
    feature_types
        Feature -> ``continuous`` / ``ordinal`` / ``binary`` / ``categorical``.
    feature_sources
        Feature -> ``semantic`` / ``radiomic``.
    truth
        ``gene_module`` (Series gene -> planted module or ``"none"``), ``links``
        (DataFrame ``module``, ``feature``, ``type``, ``strength``: the correlation between
        the module's latent factor and the feature's latent liability, which is the
        feature itself for a continuous one and is cut into categories otherwise),
        ``null_features`` (features independent of everything), ``mutation_link``
        (``("EGFR", "attenuation")``), ``survival_module``, ``survival_hr`` (hazard ratio
        per SD of its latent factor), ``module_terms`` (module -> Hallmark term its genes
        were drawn from) and ``latent`` (DataFrame patients x modules of the latent factors).
    """

    expression: pd.DataFrame
    imaging: pd.DataFrame
    clinical: pd.DataFrame
    feature_types: dict[str, str]
    truth: dict
    feature_sources: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _bundled_gene_sets() -> dict:
    """The bundled Hallmark and GO gene sets, read once per process (read-only use)."""
    return load_gene_sets(("hallmark", "go_bp"))


def _radiomic_names() -> list[str]:
    names = [f"original_shape_{name}" for name in _SHAPE_FEATURES.split()]
    for image_type in _IMAGE_TYPES:
        for feature_class, features in _TEXTURE_FEATURES.items():
            names.extend(f"{image_type}_{feature_class}_{name}" for name in features.split())
    return names


def _plant_modules(
    rng: np.random.Generator, hallmark: dict[str, list[str]], n_modules: int, size: int
) -> list[tuple[str, list[str]]]:
    """Draw each module's genes from a different Hallmark set, disjoint from earlier sets."""
    terms = sorted(hallmark)
    claimed: set[str] = set()
    planted = []
    for position in rng.permutation(len(terms)):
        term = terms[position]
        available = [gene for gene in hallmark[term] if gene not in claimed]
        if len(available) < size:
            continue
        genes = sorted(rng.choice(available, size=size, replace=False).tolist())
        planted.append((term, genes))
        claimed.update(hallmark[term])
        if len(planted) == n_modules:
            return planted
    raise InputError(
        f"synthetic: cannot draw {n_modules} disjoint modules of {size} genes from the "
        "Hallmark sets; lower n_modules or module_size"
    )


def _background_genes(
    rng: np.random.Generator, gene_sets: dict, excluded: set[str], count: int
) -> list[str]:
    pool = sorted(
        {gene for terms in gene_sets.values() for genes in terms.values() for gene in genes}
        - excluded
    )
    real = rng.choice(pool, size=min(count, len(pool)), replace=False).tolist()
    made_up = [f"GENE{number:05d}" for number in range(1, count - len(real) + 1)]
    return real + made_up


def _liability(
    rng: np.random.Generator, n: int, factor: np.ndarray | None, strength: float
) -> np.ndarray:
    """Standard-normal liability correlated ``strength`` with ``factor`` (or pure noise)."""
    noise = rng.standard_normal(n)
    if factor is None:
        return noise
    return strength * factor + np.sqrt(1.0 - strength**2) * noise


def _cut(liability: np.ndarray, levels: tuple[str, ...], probabilities) -> pd.Categorical:
    """Cut a standard-normal liability into categories with the given probabilities."""
    from scipy import stats

    bounds = stats.norm.ppf(np.cumsum(probabilities)[:-1])
    codes = np.searchsorted(bounds, liability)
    return pd.Categorical.from_codes(codes, categories=list(levels))


def _category_probabilities(rng: np.random.Generator, n_levels: int) -> np.ndarray:
    return rng.dirichlet(np.full(n_levels, 4.0))


def synthetic(
    *,
    n_patients: int = 130,
    n_genes: int = 1000,
    n_features: int = 30,
    n_modules: int = 5,
    module_size: int = 40,
    seed: int = 0,
    null: bool = False,
    n_imaging_only: int = 0,
    annotations: bool = False,
    size_driven: bool = False,
) -> SyntheticCohort:
    """Draw a synthetic radiogenomic cohort with planted, known structure.

    Expression is log2-scale: each gene has its own mean (3-11) and SD (0.3-1.5). The genes
    of planted module k load on a latent factor z_k with a loading between 0.6 and 0.9
    (the rest is noise); the other genes carry noise plus weak loadings on three nuisance
    factors. Module genes are real members of one Hallmark set each (drawn from different
    sets, none a member of another module's set), so enrichment can recover the set;
    background genes are other real symbols (never members of the planted sets), then
    made-up ``GENE00001``-style names when the real ones run out.

    Planted links (strength :data:`LINK_STRENGTH`): module 1 -> a continuous radiomic
    feature, module 2 -> a binary, module 3 -> an ordinal and module 4 -> a 3-category
    semantic feature. EGFR mutation is more frequent with part-solid and ground-glass
    attenuation. Survival times are exponential with a hazard ratio of
    :data:`SURVIVAL_HAZARD_RATIO` per SD of the survival module's factor (module 5, or the
    last module), censored uniformly between 1 and 10 years. All other features are
    independent of everything. About 3 % of semantic values, the radiomic features of
    4 % of patients, 8 % of mutation statuses and 2 % of ages and survival records are
    missing.

    With ``null=True`` nothing is linked at all (a full null): imaging, mutations and survival
    are independent of the modules and of each other (the modules stay co-expressed), which is
    what a multiple-testing procedure is calibrated on. ``n_imaging_only`` extra patients have
    imaging and clinical data but no expression (they are left out of ``expression``), as in
    TCIA collections where not every scanned patient was sequenced. ``annotations=True`` adds
    two null semantic features in front of the radiomic ones: :data:`FINDINGS_FEATURE`, a
    multi-valued annotation (``|``-joined findings, one of them rare) and the sparse
    categorical :data:`SPARSE_FEATURE`.

    Parameters
    ----------
    n_patients
        Number of patients.
    n_genes
        Number of genes (planted plus background).
    n_features
        Number of imaging features; the linked ones come first, then the mutation-linked
        attenuation, the null semantic features and null radiomic features.
    n_modules
        Number of planted modules.
    module_size
        Genes per planted module (reduced to ``n_genes // (2 * n_modules)`` if larger).
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical data.
    null
        Plant no link (modules are still co-expressed).
    n_imaging_only
        Patients with imaging and clinical data but no expression, added after the others.
    annotations
        Add the multi-valued and the sparse semantic features.
    size_driven
        Add two radiomic features (beyond ``n_features``): tumour volume
        (``original_shape_VoxelVolume``, log-normal, its log correlated
        :data:`LINK_STRENGTH` with the last module's factor) and a texture feature that is
        volume plus a little noise (:data:`SIZE_SURROGATE_FEATURE`): linked to the module
        only through size; a null feature of the same name is replaced. ``truth["size_link"]``
        names them. Drawn after everything else,
        so the other data are those of ``size_driven=False``.

    Returns
    -------
    The cohort, with the planted truth in ``cohort.truth``.
    """
    for name, value, minimum in (
        ("n_patients", n_patients, 10),
        ("n_genes", n_genes, 10),
        ("n_features", n_features, 1),
        ("n_modules", n_modules, 1),
        ("module_size", module_size, 5),
    ):
        if value < minimum:
            raise InputError(f"synthetic: {name} must be at least {minimum}, got {value}")
    size = min(module_size, n_genes // (2 * n_modules))
    if size < 5:
        raise InputError(
            f"synthetic: {n_genes} genes are too few for {n_modules} modules of at least "
            "5 genes; raise n_genes or lower n_modules"
        )
    rng = np.random.default_rng(seed)
    gene_sets = _bundled_gene_sets()
    n_sequenced = n_patients
    n_patients = n_patients + n_imaging_only
    patients = pd.Index([f"SYN-{number:04d}" for number in range(1, n_patients + 1)])
    patients.name = PATIENT_ID
    module_names = [f"planted_{number}" for number in range(1, n_modules + 1)]

    # Genes and expression.
    planted = _plant_modules(rng, gene_sets["hallmark"], n_modules, size)
    excluded = {gene for term, _ in planted for gene in gene_sets["hallmark"][term]}
    background = _background_genes(rng, gene_sets, excluded, n_genes - n_modules * size)
    genes = [gene for _, module_genes in planted for gene in module_genes] + background
    gene_module = np.repeat(
        np.array([*module_names, NO_MODULE], dtype=object), [*([size] * n_modules), len(background)]
    )
    latent = rng.standard_normal((n_patients, n_modules))
    nuisance = rng.standard_normal((n_patients, 3))

    loadings = np.zeros((n_modules + 3, len(genes)))
    for module in range(n_modules):
        loadings[module, module * size : (module + 1) * size] = rng.uniform(0.6, 0.9, size)
    weak = np.clip(rng.normal(0.0, 0.2, (3, len(background))), -0.4, 0.4)
    loadings[n_modules:, n_modules * size :] = weak
    noise_sd = np.sqrt(1.0 - (loadings**2).sum(axis=0))
    signal = np.hstack([latent, nuisance]) @ loadings
    signal += rng.standard_normal((n_patients, len(genes))) * noise_sd
    gene_mean = rng.uniform(3.0, 11.0, len(genes))
    gene_sd = rng.uniform(0.3, 1.5, len(genes))
    values = np.clip(gene_mean + gene_sd * signal, 0.0, None)
    order = rng.permutation(len(genes))
    expression = pd.DataFrame(
        values[:n_sequenced, order].T,
        index=pd.Index(np.asarray(genes, dtype=object)[order]),
        columns=patients[:n_sequenced].rename(None),
    )
    gene_truth = pd.Series(gene_module[order], index=expression.index, name="module")

    # Imaging features: linked, mutation-linked, null semantic, null radiomic (in priority).
    imaging: dict[str, object] = {}
    feature_types: dict[str, str] = {}
    feature_sources: dict[str, str] = {}
    links = []
    null_features = []
    radiomic_names = [
        name for name in _radiomic_names() if name not in {f[0] for f in LINKED_FEATURES}
    ]

    def add(name: str, kind: str, source: str, values) -> None:
        imaging[name] = values
        feature_types[name] = kind
        feature_sources[name] = source

    for module, (name, kind, levels) in enumerate(LINKED_FEATURES):
        if len(imaging) == n_features:
            break
        factor = latent[:, module] if module < n_modules and not null else None
        liability = _liability(rng, n_patients, factor, LINK_STRENGTH)
        if factor is None:
            null_features.append(name)
        else:
            links.append(
                {
                    "module": module_names[module],
                    "feature": name,
                    "type": kind,
                    "strength": LINK_STRENGTH,
                }
            )
        if kind == "continuous":
            add(name, kind, "radiomic", 4.0 + 0.6 * liability)
            continue
        probabilities = {"binary": (0.6, 0.4), "ordinal": (0.35, 0.35, 0.2, 0.1)}.get(
            kind, (0.4, 0.35, 0.25)
        )
        categories = _cut(liability, levels, probabilities)
        add(name, kind, "semantic", categories.as_ordered() if kind == "ordinal" else categories)

    attenuation = None
    if len(imaging) < n_features:
        name, kind, levels = MUTATION_FEATURE
        attenuation = pd.Categorical.from_codes(
            rng.choice(len(levels), size=n_patients, p=ATTENUATION_PROBABILITY),
            categories=list(levels),
        )
        add(
            name,
            kind,
            "semantic",
            attenuation.reorder_categories(list(ATTENUATION_ORDER), ordered=True),
        )
        if null:
            null_features.append(name)
    for name, kind, levels in NULL_SEMANTIC_FEATURES:
        if len(imaging) == n_features:
            break
        codes = rng.choice(
            len(levels), size=n_patients, p=_category_probabilities(rng, len(levels))
        )
        categories = pd.Categorical.from_codes(codes, categories=list(levels))
        add(name, kind, "semantic", categories.as_ordered() if kind == "ordinal" else categories)
        null_features.append(name)
    if annotations:
        present = rng.random((n_patients, len(FINDINGS))) < np.array(FINDING_PROBABILITY)
        findings = ["|".join(f for f, has in zip(FINDINGS, row) if has) for row in present]
        add(FINDINGS_FEATURE, "multi", "semantic", pd.Series(findings, dtype=object).to_numpy())
        null_features.extend(f"{FINDINGS_FEATURE}: {finding}" for finding in FINDINGS)
        name, kind, levels = SPARSE_FEATURE
        codes = rng.choice(len(SPARSE_PROBABILITY), size=n_patients, p=SPARSE_PROBABILITY)
        codes[rng.choice(n_patients, size=SPARSE_RARE_COUNT, replace=False)] = len(levels) - 1
        add(name, kind, "semantic", pd.Categorical.from_codes(codes, categories=list(levels)))
        null_features.append(name)
    n_radiomic = max(n_features - len(imaging), 0)
    if n_radiomic > len(radiomic_names):
        radiomic_names += [f"original_custom_Feature{i}" for i in range(n_radiomic)]
    chosen = np.sort(rng.choice(len(radiomic_names), size=n_radiomic, replace=False))
    scale = rng.lognormal(0.0, 1.5, n_radiomic)
    location = rng.normal(0.0, 3.0, n_radiomic) * scale
    skewed = rng.random(n_radiomic) < 0.4
    draws = rng.standard_normal((n_patients, n_radiomic))
    draws[:, skewed] = np.exp(0.6 * draws[:, skewed])
    radiomic_values = location + scale * draws
    for column, position in enumerate(chosen):
        add(radiomic_names[position], "continuous", "radiomic", radiomic_values[:, column])
        null_features.append(radiomic_names[position])

    size_link = None
    if size_driven:
        size_rng = np.random.default_rng([seed, 1])
        size_module = n_modules - 1
        log_volume = _liability(size_rng, n_patients, latent[:, size_module], LINK_STRENGTH)
        surrogate = log_volume + 0.3 * size_rng.standard_normal(n_patients)
        for name in (SIZE_FEATURE, SIZE_SURROGATE_FEATURE):  # replace a null namesake
            if imaging.pop(name, None) is not None:
                null_features.remove(name)
        add(SIZE_FEATURE, "continuous", "radiomic", np.exp(8.0 + log_volume))
        add(SIZE_SURROGATE_FEATURE, "continuous", "radiomic", 1e3 * np.exp(surrogate))
        size_link = {
            "module": module_names[size_module],
            "feature": SIZE_SURROGATE_FEATURE,
            "size_feature": SIZE_FEATURE,
        }

    imaging_frame = pd.DataFrame(imaging, index=patients)
    radiomic = [name for name, source in feature_sources.items() if source == "radiomic"]
    semantic = [name for name, source in feature_sources.items() if source == "semantic"]
    no_scan = rng.random(n_patients) < 0.04
    imaging_frame.loc[no_scan, radiomic] = np.nan
    for name in semantic:
        missing = rng.random(n_patients) < 0.03
        imaging_frame.loc[missing, name] = np.nan
    imaging_frame = imaging_frame[semantic + radiomic]

    # Clinical: mutations, covariates, survival.
    if attenuation is not None and not null:
        per_level = np.array([EGFR_MUTANT_PROBABILITY[level] for level in attenuation.categories])
        egfr_probability = per_level[attenuation.codes]
    else:
        egfr_probability = np.full(n_patients, 0.25)
    egfr_mutant = rng.random(n_patients) < egfr_probability
    kras_mutant = rng.random(n_patients) < np.where(egfr_mutant, 0.02, 0.3)
    survival_module = min(4, n_modules - 1)
    hazard = (np.log(2.0) / BASELINE_MEDIAN_SURVIVAL_DAYS) * np.exp(
        (0.0 if null else np.log(SURVIVAL_HAZARD_RATIO)) * latent[:, survival_module]
    )
    death = rng.exponential(1.0 / hazard)
    censoring = rng.uniform(365.0, 3650.0, n_patients)
    clinical = pd.DataFrame(
        {
            "EGFR": np.where(egfr_mutant, MUTANT, WILDTYPE).astype(object),
            "KRAS": np.where(kras_mutant, MUTANT, WILDTYPE).astype(object),
            "age": np.clip(np.round(rng.normal(68.0, 9.0, n_patients)), 35, 90),
            "stage": pd.Categorical.from_codes(
                rng.choice(len(STAGES), size=n_patients, p=STAGE_PROBABILITY),
                categories=list(STAGES),
                ordered=True,
            ),
            SURVIVAL_TIME: np.ceil(np.minimum(death, censoring)),
            SURVIVAL_EVENT: (death <= censoring).astype(float),
        },
        index=patients,
    )
    for column in ("EGFR", "KRAS"):
        clinical.loc[rng.random(n_patients) < 0.08, column] = NOT_COLLECTED
    clinical.loc[rng.random(n_patients) < 0.02, "age"] = np.nan
    clinical.loc[rng.random(n_patients) < 0.02, [SURVIVAL_TIME, SURVIVAL_EVENT]] = np.nan

    truth = {
        "gene_module": gene_truth,
        "links": pd.DataFrame(links, columns=["module", "feature", "type", "strength"]),
        "null_features": null_features,
        "mutation_link": (
            ("EGFR", MUTATION_FEATURE[0]) if attenuation is not None and not null else None
        ),
        "survival_module": None if null else module_names[survival_module],
        "survival_hr": 1.0 if null else SURVIVAL_HAZARD_RATIO,
        "imaging_only": list(patients[n_sequenced:]),
        "module_terms": {name: term for name, (term, _) in zip(module_names, planted)},
        "latent": pd.DataFrame(latent, index=patients, columns=module_names),
    }
    if size_link is not None:
        truth["size_link"] = size_link
    logger.info(
        "synthetic cohort: %d patients, %d genes, %d features, %d modules of %d genes (seed %d)",
        n_patients,
        n_genes,
        n_features,
        n_modules,
        size,
        seed,
    )
    return SyntheticCohort(
        expression=expression,
        imaging=imaging_frame,
        clinical=clinical,
        feature_types=feature_types,
        truth=truth,
        feature_sources=feature_sources,
    )


def write_cohort(cohort: SyntheticCohort, directory: str | Path) -> dict[str, Path]:
    """Write a cohort as a lab would hand it over: three CSV files.

    - ``expression.csv``: genes x patients, first column the gene symbols under an empty
      header cell (as in GEO matrices).
    - ``imaging.csv``: first column ``patient_id``, then one column per feature
      (categories as text, missing values empty).
    - ``clinical.csv``: first column ``Patient ID``, then the columns of
      :data:`CLINICAL_FILE_COLUMNS` (mutation status as ``Mutant`` / ``Wildtype`` /
      ``Not Collected``, ``Survival time (days)``, ``Event`` as 1/0).

    Parameters
    ----------
    cohort
        The cohort to write.
    directory
        Destination folder (created if needed).

    Returns
    -------
    ``{"expression": ..., "imaging": ..., "clinical": ...}`` paths of the written files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.csv" for name in ("expression", "imaging", "clinical")}
    cohort.expression.to_csv(paths["expression"], index_label="", float_format="%.4f")
    cohort.imaging.to_csv(paths["imaging"], index_label=PATIENT_ID, float_format="%.6g")
    clinical = cohort.clinical.copy()
    for column in ("age", SURVIVAL_TIME, SURVIVAL_EVENT):
        if column in clinical.columns:
            clinical[column] = clinical[column].astype("Int64")
    clinical = clinical.rename(columns=CLINICAL_FILE_COLUMNS)
    clinical.to_csv(paths["clinical"], index_label="Patient ID")
    return paths


# ---------------------------------------------------------------------------------------------
# A synthetic glioblastoma-like cohort in the TCGA layout (clearly synthetic)

SYNTHETIC_LABEL = "SYNTHETIC DATA - generated by radmap.analysis.datasets, not real patients"
GBM_FEATURES = {
    "original_firstorder_Entropy": ("enhancing_volume_cm3", None),
    "spiculation": ("f13_definition_of_enhancing_margin", ("Well-defined", "Poorly-defined")),
    "emphysema": ("f14_proportion_of_edema", ("1", "2", "3", "4")),
    "nodule_shape": ("f2_side_of_tumor_epicenter", ("Right", "Left", "Center")),
    "attenuation": ("f1_tumor_location", ("Frontal", "Temporal", "Parietal")),
    "air_bronchogram": ("f8_cysts", ("Absent", "Present")),
    "calcification": ("f16_hemorrhage", ("Absent", "Present")),
    "pleural_attachment": ("f19_ependymal_extension", ("Absent", "Present")),
    "cavitation": ("f20_cortical_involvement", ("Absent", "Present")),
    "margin_definition": ("f11_thickness_of_enhancing_margin", ("Thin", "Thick", "Nodular")),
    "lobe": ("f3_eloquent_brain", ("Speech motor", "Speech receptive", "Motor", "Vision", "None")),
    "vascular_convergence": ("f17_diffusion", ("1", "2", "3")),
}
"""Lung feature of :func:`synthetic` -> VASARI-style MRI feature (name, levels in order); the
ordinal ones are written as VASARI grade codes."""
GBM_MARKERS = {"EGFR": "IDH1", "KRAS": "MGMT"}
"""Planted lung markers -> glioma markers (the EGFR link becomes IDH1 <-> tumour location)."""
_COMMENT_TEMPLATES = (
    "Heterogeneously enhancing mass centred in the {side} {lobe} lobe with surrounding oedema",
    "Ring enhancing lesion of the {side} {lobe} lobe, necrotic core, mass effect on ventricle",
    "Infiltrative non-enhancing signal abnormality {side} {lobe} lobe, consider low grade",
    "Multifocal enhancement in the {side} {lobe} lobe; compare with prior study of {year}",
)


def synthetic_gbm(*, n_patients: int = 120, n_genes: int = 800, seed: int = 0) -> SyntheticCohort:
    """A synthetic glioblastoma-like cohort: VASARI-style MRI features, IDH1 and MGMT status.

    The same planted truth as :func:`synthetic` (with ``n_features=16``), relabelled for
    glioma: the lung features become VASARI-style MRI features (:data:`GBM_FEATURES`; the
    ordinal ones as grade codes 1-4), EGFR becomes IDH1 (linked to tumour location) and KRAS
    becomes MGMT promoter methylation, and patients get TCGA-style barcodes
    (``TCGA-S1-0001``; the ``S1`` tissue-source code marks them synthetic). The data are
    synthetic: :data:`SYNTHETIC_LABEL`.

    Parameters
    ----------
    n_patients, n_genes, seed
        As for :func:`synthetic`.

    Returns
    -------
    The cohort; ``truth["links"]``, ``truth["null_features"]`` and ``truth["mutation_link"]``
    use the glioma names.
    """
    cohort = synthetic(
        n_patients=n_patients, n_genes=n_genes, n_features=16, n_modules=5, seed=seed
    )
    patients = pd.Index([f"TCGA-S1-{number:04d}" for number in range(1, n_patients + 1)])
    renames = {old: new for old, (new, _) in GBM_FEATURES.items()}
    imaging = cohort.imaging.copy()
    for old, (_, levels) in GBM_FEATURES.items():
        if old not in imaging or levels is None:
            continue
        column = imaging[old]
        imaging[old] = column.cat.rename_categories(list(levels[: len(column.cat.categories)]))
    imaging = imaging.rename(columns=renames)
    imaging.index = patients
    clinical = cohort.clinical.drop(columns=["stage"]).rename(columns=GBM_MARKERS)
    clinical.index = patients
    expression = cohort.expression.copy()
    expression.columns = patients
    truth = dict(cohort.truth)
    truth["links"] = truth["links"].replace({"feature": renames})
    truth["null_features"] = [renames.get(f, f) for f in truth["null_features"]]
    truth["mutation_link"] = ("IDH1", renames["attenuation"])
    truth["latent"] = truth["latent"].set_axis(patients)
    return SyntheticCohort(
        expression=expression,
        imaging=imaging,
        clinical=clinical,
        feature_types={renames.get(f, f): t for f, t in cohort.feature_types.items()},
        truth=truth,
        feature_sources={renames.get(f, f): s for f, s in cohort.feature_sources.items()},
    )


def write_clean_cohort(cohort: SyntheticCohort, directory: str | Path) -> dict[str, Path]:
    """Write a :func:`synthetic_gbm` cohort in radmap's clean layout.

    ``expression.csv`` (genes x patients), ``imaging.csv`` (``patient_id`` + features) and
    ``clinical.csv`` (``Patient ID``, ``IDH1``, ``MGMT`` as Mutant / Wildtype / Not Collected,
    ``Age``, ``Survival time (days)``, ``Event`` 1/0): analyse it with
    ``--survival-time "Survival time (days)" --survival-event Event``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.csv" for name in ("expression", "imaging", "clinical")}
    cohort.expression.to_csv(paths["expression"], index_label="", float_format="%.4f")
    cohort.imaging.to_csv(paths["imaging"], index_label=PATIENT_ID, float_format="%.6g")
    clinical = cohort.clinical.copy()
    for column in ("age", SURVIVAL_TIME, SURVIVAL_EVENT):
        clinical[column] = clinical[column].astype("Int64")
    clinical = clinical.rename(columns=CLINICAL_FILE_COLUMNS)
    clinical.to_csv(paths["clinical"], index_label="Patient ID")
    return paths


def _tcga_sample(patient: str, sample_type: str, vial: str, rng: np.random.Generator) -> str:
    portion = f"{rng.integers(1, 40):02d}R"
    plate = f"{rng.integers(1000, 9999)}"
    return f"{patient}-{sample_type}{vial}-{portion}-{plate}-01"


def _tcga_marker(status: object, mutant: tuple[str, ...], wildtype: str, rng) -> str:
    if status == MUTANT:
        return str(rng.choice(mutant))
    if status == WILDTYPE:
        return wildtype
    return "[Not Available]"


def write_tcga_cohort(
    cohort: SyntheticCohort, directory: str | Path, *, seed: int = 0
) -> dict[str, Path]:
    """Write a :func:`synthetic_gbm` cohort as TCGA / TCIA hand it over.

    - ``expression.txt``: tab-separated genes x samples, sample barcodes such as
      ``TCGA-S1-0001-01A-11R-1849-01``, plus normal-tissue samples (``-11A``) of a few
      patients and a second tumour vial (``-01B``) of one, which radmap must leave out.
    - ``vasari.csv``: the VASARI-style features, ``ID`` holding patient barcodes (some in lower
      case with dots, as R writes them) and a free-text ``comments`` column.
    - ``clinical_patient_gbm.txt``: the TCGA Biotab clinical layout: ``bcr_patient_uuid``,
      ``bcr_patient_barcode``, ``patient_id`` (``0001``), two extra header rows
      (alternative names, ``CDE_ID:`` codes), bracketed missing tokens (``[Not Available]``,
      ``[Not Applicable]``, ``[Not Evaluated]``), ``vital_status`` with ``death_days_to``
      and ``last_contact_days_to``, ``idh1_status`` (``R132H`` / ``R132C`` / ``WT``) and
      ``mgmt_promoter_status`` (``Methylated`` / ``Unmethylated``).
    - ``README.txt``: :data:`SYNTHETIC_LABEL`.

    Parameters
    ----------
    cohort
        A cohort from :func:`synthetic_gbm`.
    directory
        Destination folder (created if needed).
    seed
        Seed for the barcode details, the extra samples and the comments.

    Returns
    -------
    ``{"expression", "imaging", "clinical", "readme"}`` paths.
    """
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "expression": directory / "expression.txt",
        "imaging": directory / "vasari.csv",
        "clinical": directory / "clinical_patient_gbm.txt",
        "readme": directory / "README.txt",
    }
    patients = list(cohort.expression.columns)

    expression = cohort.expression.copy()
    expression.columns = [_tcga_sample(p, "01", "A", rng) for p in patients]
    extra = {}
    for patient in rng.choice(patients, size=3, replace=False):
        extra[_tcga_sample(patient, "11", "A", rng)] = rng.permutation(cohort.expression[patient])
    extra[_tcga_sample(patients[0], "01", "B", rng)] = rng.permutation(
        cohort.expression[patients[0]]
    )
    expression = pd.concat([expression, pd.DataFrame(extra, index=expression.index)], axis=1)
    expression.to_csv(paths["expression"], sep="\t", index_label="gene_symbol", float_format="%.4f")

    imaging = cohort.imaging.copy()
    ids = pd.Series(patients, index=imaging.index)
    dotted = rng.random(len(ids)) < 0.2
    ids[dotted] = ids[dotted].str.lower().str.replace("-", ".")
    comments = []
    for _ in patients:
        if rng.random() < 0.4:
            comments.append("")
            continue
        template = _COMMENT_TEMPLATES[rng.integers(len(_COMMENT_TEMPLATES))]
        comments.append(
            template.format(
                side=rng.choice(["left", "right"]),
                lobe=rng.choice(["frontal", "temporal"]),
                year=rng.choice([2008, 2009]),
            )
        )
    imaging.insert(0, "comments", comments)
    imaging.insert(0, "ID", ids.to_numpy())
    imaging.to_csv(paths["imaging"], index=False, float_format="%.6g")

    clinical = cohort.clinical
    dead = clinical[SURVIVAL_EVENT] == 1
    alive = clinical[SURVIVAL_EVENT] == 0
    days = clinical[SURVIVAL_TIME].map(lambda v: "[Not Available]" if pd.isna(v) else str(int(v)))
    age = clinical["age"].map(lambda v: "[Not Available]" if pd.isna(v) else str(int(v)))
    table = pd.DataFrame(
        {
            "bcr_patient_uuid": [str(uuid.UUID(bytes=rng.bytes(16))) for _ in patients],
            "bcr_patient_barcode": patients,
            "patient_id": [p.rsplit("-", 1)[1] for p in patients],
            "form_completion_date": [
                f"2011-{rng.integers(1, 13)}-{rng.integers(1, 28)}" for _ in patients
            ],
            "gender": rng.choice(["MALE", "FEMALE"], size=len(patients)),
            "vital_status": np.where(dead, "Dead", np.where(alive, "Alive", "[Not Available]")),
            "death_days_to": np.where(dead, days, "[Not Applicable]"),
            "last_contact_days_to": np.where(alive, days, "[Not Applicable]"),
            "age_at_initial_pathologic_diagnosis": age,
            "karnofsky_performance_score": rng.choice(
                ["60", "70", "80", "90", "[Not Evaluated]", "[Unknown]"], size=len(patients)
            ),
            "idh1_status": [
                _tcga_marker(v, ("R132H", "R132H", "R132C"), "WT", rng) for v in clinical["IDH1"]
            ],
            "mgmt_promoter_status": [
                _tcga_marker(v, ("Methylated",), "Unmethylated", rng) for v in clinical["MGMT"]
            ],
        }
    )
    alternative = {
        "death_days_to": "days_to_death",
        "last_contact_days_to": "days_to_last_followup",
        "age_at_initial_pathologic_diagnosis": "age_at_diagnosis",
    }
    second = [alternative.get(c, c) for c in table.columns]
    third = ["CDE_ID:"] + [f"CDE_ID:{2003000 + i * 37}" for i in range(1, len(table.columns))]
    lines = ["\t".join(row) for row in (list(table.columns), second, third)]
    lines += ["\t".join(map(str, row)) for row in table.itertuples(index=False)]
    paths["clinical"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths["readme"].write_text(SYNTHETIC_LABEL + "\n", encoding="utf-8")
    return paths


def _tcga_gbm_config(out: Path | None, cache: Path) -> Config:
    data = cache / f"demo-tcga-gbm-data-{__version__}"
    if not (data / "README.txt").is_file():
        write_tcga_cohort(synthetic_gbm(), data)
    return Config(
        name="SYNTHETIC glioblastoma-like cohort, TCGA layout (not real patients)",
        expression=data / "expression.txt",
        imaging=[data / "vasari.csv"],
        clinical=data / "clinical_patient_gbm.txt",
        min_module_size=20,
        out=out,
    )


DEMO_DATASETS = {
    "nsclc": "real NSCLC Radiogenomics subset (TCIA / GEO GSE103584)",
    "tcga-gbm": "synthetic glioblastoma-like cohort in the TCGA layout",
}
"""Names accepted by ``radmap demo --dataset``."""


# ---------------------------------------------------------------------------------------------
# The embedded real NSCLC demo (demo_data/, see its DATA_CARD.md for attribution)


def demo_data_dir() -> Path:
    """Folder of the embedded NSCLC Radiogenomics demo files (installed package or checkout)."""
    spec = importlib.util.find_spec(f"{__package__}.demo_data")
    folder = Path(next(iter(spec.submodule_search_locations))) if spec else None
    if folder is None or not folder.joinpath("DATA_CARD.md").is_file():
        raise FileNotFoundError("radmap's demo data is missing from this installation")
    return folder.resolve()


def demo_config(out: Path | None = None) -> Config:
    """The analysis settings of the demo: the real NSCLC subset, all sources combined, with
    the defaults of ``radmap analyze`` (only the TCIA survival dates need ``derive_survival``,
    which the clinical file's layout calls for)."""
    data = demo_data_dir()
    return Config(
        name="NSCLC Radiogenomics (GSE103584 / TCIA), 1,000 genes",
        expression=data / "expression_top1000_log10fpkm_zscore.csv",
        imaging=[data / "radiomics_pyradiomics_n116.csv"],
        aim_dir=data / "aim_xml",
        clinical=data / "clinical_tcia.csv",
        derive_survival=True,
        out=out,
    )


def demo_bundle_path(
    *,
    rebuild: bool = False,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    dataset: str = "nsclc",
) -> Path:
    """Path of a demo bundle, built first if missing, of an older format, or when ``rebuild``.

    The bundle lives in ``$RADMAP_CACHE/demo-<version>`` (default ``~/.cache/radmap``), or
    ``demo-<dataset>-<version>`` for a ``dataset`` other than ``"nsclc"`` (see
    :data:`DEMO_DATASETS`).
    """
    if dataset not in DEMO_DATASETS:
        known = ", ".join(f"{name!r} ({text})" for name, text in DEMO_DATASETS.items())
        raise InputError(f"--dataset {dataset!r} is not a demo; choose one of {known}")
    root = Path(cache_dir or os.environ.get("RADMAP_CACHE", Path.home() / ".cache" / "radmap"))
    suffix = "" if dataset == "nsclc" else f"-{dataset}"
    out = root / f"demo{suffix}-{__version__}"
    path = out / BUNDLE_NAME
    progress = progress or (lambda message: None)
    if rebuild or bundle_format(path) != FORMAT_VERSION:
        config = demo_config(out) if dataset == "nsclc" else _tcga_gbm_config(out, root)
        run(config, progress=progress)
        if dataset == "nsclc":
            _demo_predictions(path, progress)
    return path


DEMO_PREDICT_ENV = "RADMAP_DEMO_PREDICT"
"""Permutations of the demo's EGFR prediction (``0``: the demo has no Predict results)."""


def _demo_predictions(path: Path, progress: Progress) -> None:
    """``radmap predict BUNDLE --targets EGFR`` for the demo, so its Predict page has results
    (the default protocol, with 100 instead of 200 permutations to halve the wait)."""
    from .predict import PredictParams, predict, sidecar_path, write_predictions

    permutations = int(os.environ.get(DEMO_PREDICT_ENV, "100"))
    if permutations <= 0:
        return
    progress(f"predicting EGFR from imaging (nested CV, {permutations} permutations) ...")
    try:
        result = predict(
            load_bundle(path),
            targets=["EGFR"],
            params=PredictParams(n_permutations=permutations, n_jobs=2),
            key_added=None,
        )
    except InputError as err:
        progress(f"  demo prediction skipped: {err}")
        return
    write_predictions(result, sidecar_path(path), bundle_path=path)


def demo() -> ad.AnnData:
    """The demo bundle (real NSCLC subset), built on first use."""
    return load_bundle(demo_bundle_path())
