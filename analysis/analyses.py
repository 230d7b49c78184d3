"""The map's analyses as pure functions over data frames, each on the patients it needs, with
declared correction families and the smallest detectable effect.

Each function takes the frames of the patients that have the data its tests need (the
caller passes every such patient, not the intersection of every input) and returns a tidy
table whose rows carry ``n``, ``effect_measure``, ``p``, ``q`` and ``family``: the name of
the set of tests the q was corrected against.

Default families (``families="source"``):

- module map: one family per imaging source (semantic / radiomic / clinical): 1,400
  radiomic features do not dilute 30 semantic ones, and the semantic map is still corrected
  over all its modules x features;
- gene map: the whole genes x features map controlled by the hierarchical procedure of
  :func:`analysis.multitest.hierarchical`, each feature a family of genes (the per-feature q
  is kept beside it);
- mutation x imaging: one family per mutation and imaging source;
- mutation x module: one family per mutation.

``families="analysis"`` makes each analysis one family (the old behaviour).

Besides ``q`` (within its family), each row has ``q_analysis``: the analysis-level q of
:func:`analysis.multitest.across_families` (families selected by a Simes test, then BH
within the selected ones at the adjusted level). Counting or ranking findings across the
families of an analysis uses ``q_analysis``; on a full null the chance that an analysis
reports anything at ``q_analysis < 0.05`` stays near 5 % (tested on seeded synthetic nulls).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from . import power
from .associate import (
    MONTE_CARLO_DRAWS,
    Associations,
    associate,
    associate_categorical,
    is_plain_number,
    tidy,
)
from .multitest import Hierarchical, across_families, family_q, hierarchical
from .validate import InputError

Families = Literal["source", "analysis"]
FAMILY_CHOICES = ("source", "analysis")
ALPHA = 0.05


def _check_families(families: str) -> None:
    if families not in FAMILY_CHOICES:
        raise InputError(f"families must be one of {FAMILY_CHOICES}, not {families!r}")


def _sources(features: pd.DataFrame, names) -> pd.Series:
    source = features["source"].to_dict() if "source" in features.columns else {}
    return pd.Series(
        [str(source.get(name, "") or "imaging") for name in names], index=pd.Index(names)
    )


def module_map(
    eigengenes: pd.DataFrame,
    imaging: pd.DataFrame,
    features: pd.DataFrame,
    *,
    families: Families = "source",
    **options,
) -> tuple[pd.DataFrame, Associations]:
    """Modules x imaging features, q within each family.

    Parameters
    ----------
    eigengenes
        Patients (with expression) x modules.
    imaging
        Patients x features; the tests use the patients present in both.
    features
        Feature table: ``type`` and ``source`` per feature.
    families
        ``"source"`` (one family per imaging source) or ``"analysis"`` (one family).
    options
        Passed to :func:`analysis.associate.associate` (tests, covariates, min_n, min_group);
        binary features default to Student's t (see its ``binary`` option for why).

    Returns
    -------
    The tidy table (``module``, ``feature``, ``test``, ``statistic``, ``effect``,
    ``effect_measure``, ``p``, ``q``, ``family``, ``n``) and the raw associations.
    """
    _check_families(families)
    options.setdefault("binary", "student")
    assoc = associate(eigengenes, imaging, features["type"].to_dict(), **options)
    table = tidy(assoc, variable_name="module")
    sources = _sources(features, table["feature"].unique())
    table["family"] = (
        "module map: " + table["feature"].map(sources) if families == "source" else "module map"
    )
    _add_q(table)
    return _ordered(table, "module"), assoc


@dataclass
class GeneMap:
    """Genes x features: the associations, the per-feature q and the map-level q.

    Attributes
    ----------
    assoc
        The associations (genes x features).
    q_feature
        BH q over genes within each feature (genes x features): valid for one feature at a
        time, labelled "q within feature".
    q_map
        Map-level q (genes x features) from the hierarchical procedure run within each family
        of features: a pair is a discovery of the map at ``alpha`` when ``q_map <= alpha``.
        Use it for anything that ranks or counts pairs across features.
    family
        Family of each feature.
    selected
        Features selected by the family-level (Simes) step.
    alpha
        Level of the hierarchical selection.
    """

    assoc: Associations
    q_feature: pd.DataFrame
    q_map: pd.DataFrame
    family: pd.Series
    selected: pd.Series
    alpha: float = ALPHA
    per_family: dict[str, Hierarchical] = field(default_factory=dict)

    def discoveries(self) -> pd.Series:
        """Number of map-level discoveries per family."""
        counts = {name: result.n_discoveries for name, result in sorted(self.per_family.items())}
        return pd.Series(counts, name="discoveries", dtype=np.int64)


def gene_map(
    values: pd.DataFrame,
    imaging: pd.DataFrame,
    features: pd.DataFrame,
    *,
    families: Families = "analysis",
    alpha: float = ALPHA,
    **options,
) -> GeneMap:
    """Genes x imaging features with per-feature and map-level (hierarchical) q-values.

    By default (``families="analysis"``) the whole map is one hierarchy: every feature is a
    family of genes and features are selected across all sources; ``"source"`` runs one
    hierarchy per imaging source.
    """
    _check_families(families)
    options.setdefault("binary", "student")
    assoc = associate(values, imaging, features["type"].to_dict(), **options)
    names = list(assoc.p.columns)
    family = (
        "gene map: " + _sources(features, names)
        if families == "source"
        else pd.Series("gene map", index=pd.Index(names))
    )
    p = assoc.p.to_numpy(dtype=np.float64)
    q_map = np.full(p.shape, np.nan)
    selected = np.zeros(len(names), dtype=bool)
    per_family = {}
    for name in family.unique():
        columns = np.flatnonzero(family.to_numpy() == name)
        result = hierarchical(p[:, columns], alpha=alpha)
        q_map[:, columns] = result.q
        selected[columns] = result.selected
        per_family[str(name)] = result
    return GeneMap(
        assoc=assoc,
        q_feature=assoc.q("per_feature"),
        q_map=pd.DataFrame(q_map, index=assoc.p.index, columns=assoc.p.columns),
        family=family,
        selected=pd.Series(selected, index=pd.Index(names)),
        alpha=alpha,
        per_family=per_family,
    )


MUTATION_COLUMNS = [
    "mutation",
    "feature",
    "test",
    "statistic",
    "effect",
    "effect_measure",
    "p",
    "q",
    "family",
    "q_analysis",
    "n",
]


def mutation_imaging(
    status: pd.DataFrame,
    imaging: pd.DataFrame,
    features: pd.DataFrame,
    *,
    families: Families = "source",
    min_n: int = 10,
    min_group: int = 5,
    notes: list[str] | None = None,
    seed: int = 0,
    draws: int = MONTE_CARLO_DRAWS,
) -> pd.DataFrame:
    """Every mutation x every imaging feature, on the patients with both.

    Continuous features: Student's t of the feature between Mutant and Wildtype (Hedges' g,
    positive = higher in mutants); ordinal features: Mann–Whitney U on the scale (rank-biserial
    correlation, positive = higher on the scale in mutants); binary and categorical features:
    :func:`analysis.associate.associate_categorical` (Fisher, chi-square or Monte-Carlo exact;
    Cramér's V), levels with fewer than ``min_group`` patients left out.

    Parameters
    ----------
    status
        Patients x mutations (Categorical ``Wildtype`` / ``Mutant``; other values missing).
    imaging
        Patients x features; aligned with ``status`` on the index.
    features
        Feature table with ``type`` and ``source``.
    families
        ``"source"``: one family per mutation and imaging source; ``"analysis"``: one family.
    """
    _check_families(families)
    types = features["type"].to_dict()
    if status.shape[1] == 0 or imaging.shape[1] == 0:
        return pd.DataFrame(columns=MUTATION_COLUMNS)
    binary = dict.fromkeys(status.columns, "binary")
    parts = []
    for kind, test in (("continuous", "student"), ("ordinal", "mannwhitney")):
        names = [f for f in imaging.columns if types.get(f) == kind]
        if not names:
            continue
        numeric = _numeric_frame(imaging[names])
        assoc = associate(numeric, status, binary, binary=test, min_n=min_n, min_group=min_group)
        if notes is not None:
            notes.extend(dict.fromkeys(assoc.notes))
        table = tidy(assoc, variable_name="imaging_feature")
        parts.append(table.rename(columns={"feature": "mutation", "imaging_feature": "feature"}))
    categorical = [f for f in imaging.columns if types.get(f) in ("binary", "categorical")]
    if categorical:
        table = associate_categorical(
            status, imaging[categorical], min_group=min_group, notes=notes, seed=seed, draws=draws
        )
        parts.append(table.rename(columns={"left": "mutation", "right": "feature"}))
    table = pd.concat(parts, ignore_index=True)
    sources = _sources(features, table["feature"].unique())
    table["family"] = (
        table["mutation"].astype(str) + " x imaging: " + table["feature"].map(sources)
        if families == "source"
        else "mutation x imaging"
    )
    _add_q(table)
    return table.reindex(columns=MUTATION_COLUMNS)


def mutation_modules(
    status: pd.DataFrame,
    eigengenes: pd.DataFrame,
    *,
    families: Families = "source",
    min_n: int = 10,
    min_group: int = 5,
) -> pd.DataFrame:
    """Student's t of every module eigengene between Mutant and Wildtype, on the patients with
    expression and a known status; one family per mutation (``families="source"``)."""
    _check_families(families)
    columns = ["mutation", "module", *MUTATION_COLUMNS[2:]]
    if status.shape[1] == 0:
        return pd.DataFrame(columns=columns)
    binary = dict.fromkeys(status.columns, "binary")
    assoc = associate(
        eigengenes, status, binary, binary="student", min_n=min_n, min_group=min_group
    )
    table = tidy(assoc, variable_name="module").rename(columns={"feature": "mutation"})
    table["family"] = (
        table["mutation"].astype(str) + " x module" if families == "source" else "mutation x module"
    )
    _add_q(table)
    return table.reindex(columns=columns)


def _add_q(table: pd.DataFrame, alpha: float = ALPHA) -> None:
    """``q`` within each row's family and ``q_analysis`` across the analysis's families."""
    p, families = table["p"].to_numpy(dtype=float), table["family"].to_numpy()
    table["q"] = family_q(p, families)
    table["q_analysis"] = across_families(p, families, alpha=alpha)


def _numeric_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns as numbers (:func:`_as_numeric`); columns of plain numbers are kept."""
    plain = {dtype: is_plain_number(dtype) for dtype in set(frame.dtypes)}
    convert = [position for position, dtype in enumerate(frame.dtypes) if not plain[dtype]]
    if not convert:
        return frame
    frame = frame.copy()
    for position in convert:
        frame.isetitem(position, _as_numeric(frame.iloc[:, position]))
    return frame


def _as_numeric(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.astype(float)
        return codes.where(codes >= 0)
    return pd.to_numeric(column, errors="coerce")


def _ordered(table: pd.DataFrame, variable: str) -> pd.DataFrame:
    columns = [variable, "feature", "test", "statistic", "effect", "effect_measure", "p", "q"]
    return table[[*columns, "family", "q_analysis", "n"]]


def detectable_effects(
    imaging: pd.DataFrame,
    features: pd.DataFrame,
    family_sizes: Mapping[str, int],
    family_of: Mapping[str, str],
    *,
    alpha: float = ALPHA,
) -> pd.Series:
    """Smallest effect each feature's test detects with 80 % power, in its own measure.

    ``imaging`` holds the patients the analysis used; each feature's family size is the
    number of tests in its family (for the map: modules x features of that source).
    Correlations give |rho|, binary features Hedges' g, categorical features eta-squared.
    """
    out = {}
    types = features["type"].to_dict()
    present = imaging.notna().sum().to_dict()
    for name in imaging.columns:
        size = int(family_sizes.get(family_of.get(name, ""), 1)) or 1
        kind = types.get(name)
        if kind in ("continuous", "ordinal"):
            out[name] = power.correlation(int(present[name]), size, alpha=alpha)
            continue
        counts = _group_sizes(imaging[name])
        if kind == "binary":
            out[name] = (
                power.two_groups(int(counts[0]), int(counts[1]), size, alpha=alpha)
                if len(counts) == 2
                else np.nan
            )
        else:
            out[name] = power.k_groups(int(counts.sum()), len(counts), size, alpha=alpha)
    return pd.Series(out, dtype=np.float64, name="detectable_effect")


def _group_sizes(column: pd.Series) -> np.ndarray:
    """Patients per value present in the column (missing values left out), largest first."""
    codes, _ = pd.factorize(column)
    counts = np.bincount(codes[codes >= 0])
    return np.sort(counts[counts > 0])[::-1]


POWER_MEASURES = {"continuous": "rho", "ordinal": "rho", "binary": "hedges_g"}


def power_summary(
    analysis: str,
    table: pd.DataFrame,
    features: pd.DataFrame,
    imaging: pd.DataFrame,
    *,
    alpha: float = ALPHA,
) -> tuple[pd.DataFrame, pd.Series]:
    """Per family and feature type: the median n and the smallest effect detectable with 80 %
    power at that n and the family's size (see :mod:`analysis.power`).

    ``imaging`` must hold the patients the analysis used (their group sizes set the power of
    the binary and categorical tests).

    Returns the summary table (``analysis``, ``family``, ``feature_type``, ``measure``, ``n``,
    ``family_size``, ``detectable_effect``) and the per-feature detectable effects.
    """
    tested = table[table["p"].notna()]
    family_sizes = tested.groupby("family").size().to_dict()
    family_of = tested.drop_duplicates("feature").set_index("feature")["family"].to_dict()
    used = imaging[[f for f in imaging.columns if f in family_of]]
    effects = detectable_effects(used, features, family_sizes, family_of, alpha=alpha)
    per_feature = pd.DataFrame(
        {
            "family": [family_of[f] for f in effects.index],
            "feature_type": features["type"].reindex(effects.index).to_numpy(),
            "n": tested.groupby("feature")["n"].median().reindex(effects.index).to_numpy(),
            "detectable_effect": effects.to_numpy(),
        }
    )
    rows = [
        {
            "analysis": analysis,
            "family": family,
            "feature_type": kind,
            "measure": POWER_MEASURES.get(kind, "eta_squared"),
            "n": int(medians["n"]),
            "family_size": int(family_sizes[family]),
            "detectable_effect": float(medians["detectable_effect"]),
        }
        for (family, kind), medians in per_feature.groupby(["family", "feature_type"])[
            ["n", "detectable_effect"]
        ]
        .median()
        .iterrows()
    ]
    columns = ["analysis", "family", "feature_type", "measure", "n", "family_size"]
    return pd.DataFrame(rows, columns=[*columns, "detectable_effect"]), effects
