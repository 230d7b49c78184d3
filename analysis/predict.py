"""Virtual biopsy: predict mutation status or module activity from imaging, without leakage.

The protocol is the one a reviewer asks for:

- **Targets**: a mutation column (binary, ``Mutant`` = positive), a module eigengene
  (continuous, or high / low by a declared quantile cut) or any clinical column (binary or
  numeric).
- **Feature sets**, each evaluated on the same patients and the same folds: ``semantic``,
  ``radiomic``, ``imaging`` (both), and the baselines ``size`` (tumour size only),
  ``clinical`` (smoking, sex, histology, age when present, or named columns) and
  ``constant`` (the training prevalence / mean).
- **Models** (scikit-learn pipelines): median / most-frequent imputation, standardised
  numeric features, one-hot categorical features, a univariate filter keeping the
  ``max_features`` best columns, then elastic-net logistic / linear regression (default) or
  a random forest.
- **Nested cross-validation**: repeated stratified outer folds estimate performance; inside
  every outer training fold, inner folds choose the penalty (or the forest's leaf size). Every
  fitted step -- imputation, scaling, encoding, filtering, the model -- is fitted on training
  patients only, at both levels.
- **Permutation test of the whole procedure**: labels are permuted and the complete nested
  procedure is re-run; p = (1 + #null >= observed) / (1 + permutations).
- **Reports**: AUC (mean over repeats of the pooled out-of-fold AUC) with a stratified
  bootstrap CI over patients, balanced accuracy, sensitivity and specificity at a stated
  threshold (default: the training folds' prevalence), Brier score and a calibration curve;
  R² and Spearman for continuous targets; the paired bootstrap difference between the best
  imaging set and the best baseline; coefficient stability across the outer folds.
- **External validation**: the procedure is re-run once on the whole development cohort
  (inner CV chooses the hyperparameters), frozen, and applied to another bundle.

:func:`predict` is the entry point; :func:`write_predictions` / :func:`read_predictions`
store the result as JSON next to the bundle (the bundle itself is left untouched, so its
hash, and the pins and caches keyed by it, stay valid).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import ElasticNet, enet_path
from sklearn.model_selection import KFold, RepeatedKFold, RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from .bundle import EIGENGENES_KEY, IMAGING_KEY, MUTANT, SURVIVAL_EVENT, SURVIVAL_TIME, UNS_KEY
from .io import atomic_write_text, file_sha256
from .validate import InputError

logger = logging.getLogger("radmap")

PREDICT_KEY = "predict"
FORMAT = "radmap-predict/1"
SIDECAR_SUFFIX = ".predict.json"

IMAGING_SETS = ("semantic", "radiomic", "imaging")
BASELINE_SETS = ("size", "clinical", "constant")
FEATURE_SETS = IMAGING_SETS + BASELINE_SETS
FEATURE_SET_LABELS = {
    "semantic": "Semantic",
    "radiomic": "Radiomic",
    "imaging": "Semantic + radiomic",
    "size": "Tumour size (baseline)",
    "clinical": "Clinical (baseline)",
    "constant": "Constant (baseline)",
}
MODELS = ("elasticnet", "forest")
SIZE_CANDIDATES = (
    "original_shape_VoxelVolume",
    "original_shape_MeshVolume",
    "original_shape_Maximum3DDiameter",
    "original_shape_MajorAxisLength",
)
SIZE_PATTERN = re.compile(r"volume|diameter|size", re.IGNORECASE)
CLINICAL_PATTERNS = (
    re.compile(r"smok", re.IGNORECASE),
    re.compile(r"\b(sex|gender)\b", re.IGNORECASE),
    re.compile(r"histolog(y|ic)\b", re.IGNORECASE),
    re.compile(r"^age\b", re.IGNORECASE),
)
"""Clinical baseline columns found by name when none are named: smoking, sex, histology, age."""

L1_RATIO = 0.5
LOGISTIC_C = (0.02, 0.05, 0.2, 1.0)
"""Inverse penalties tried by the inner folds (fitted together, :func:`logistic_enet_path`)."""
ELASTICNET_ALPHA = (0.5, 0.2, 0.05, 0.01)
"""Penalties tried for continuous targets (one ``enet_path`` call per inner fold)."""
SOLVER_TOL = 1e-5
"""Stop the logistic solver when the gradient mapping per patient is below this."""
SOLVER_MAX_ITER = 5000
FOREST_LEAF = (1, 5, 10)
FOREST_TREES = 200
CALIBRATION_BINS = 5
ROC_GRID = np.linspace(0.0, 1.0, 51)
BAND_BOOTSTRAP = 200


@dataclass(frozen=True)
class PredictParams:
    """Settings of :func:`predict` (stored with the result)."""

    model: str = "elasticnet"
    outer_splits: int = 5
    outer_repeats: int = 5
    inner_splits: int = 3
    n_permutations: int = 200
    permutation_repeats: int = 1
    max_features: int = 50
    threshold: str | float = "prevalence"
    cut: float | None = None
    n_bootstrap: int = 1000
    seed: int = 0
    n_jobs: int = 1
    batch: str | None = None
    """An ``obs`` column naming each patient's batch (scanner, site): radiomic features are
    then harmonised per batch inside the folds (:class:`BatchHarmoniser`)."""


@dataclass
class Target:
    """A prediction target: values on the patients that have one."""

    name: str
    kind: str  # "binary" or "continuous"
    values: pd.Series
    description: str


@dataclass
class FeatureSet:
    """One feature set as a numeric matrix (patients x encoded columns, NaN = missing).

    ``features`` names the source features in order; ``columns`` the encoded columns
    (``feature`` or ``feature = level``); ``levels`` the one-hot levels of each categorical
    feature (the others are numeric).
    """

    name: str
    matrix: np.ndarray
    columns: list[str]
    features: list[str]
    levels: dict[str, list[str]]
    batch: np.ndarray | None = None
    """Batch code of each patient (NaN = unknown) when harmonisation is declared."""
    harmonised: np.ndarray | None = None
    """Which columns the in-fold harmonisation adjusts (the numeric radiomic ones)."""

    @property
    def design(self) -> np.ndarray:
        """What the folds split: the batch code column first (if any), then ``matrix``."""
        if self.batch is None:
            return self.matrix
        return np.column_stack([self.batch, self.matrix])


@dataclass
class PredictionResult:
    """Tidy tables of one :func:`predict` run (see :func:`predict`)."""

    summary: pd.DataFrame
    roc: pd.DataFrame
    calibration: pd.DataFrame
    importance: pd.DataFrame
    permutations: pd.DataFrame
    params: dict
    warnings: list[str] = field(default_factory=list)

    TABLES = ("summary", "roc", "calibration", "importance", "permutations")

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in self.TABLES}


# ---------------------------------------------------------------------------------------------
# Targets and feature sets


def _is_mutation(column: pd.Series) -> bool:
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return False
    levels = {str(level) for level in column.cat.categories}
    return MUTANT in levels and levels <= {MUTANT, "Wildtype"}


def available_targets(adata) -> dict[str, list[str]]:
    """Names :func:`predict` accepts as targets, by kind (mutations, modules, clinical)."""
    obs = adata.obs
    mutations = [str(c) for c in obs.columns if _is_mutation(obs[c])]
    eigengenes = adata.obsm.get(EIGENGENES_KEY)
    modules = [str(c) for c in eigengenes.columns] if isinstance(eigengenes, pd.DataFrame) else []
    clinical = [
        str(c)
        for c in obs.columns
        if str(c) not in mutations and str(c) not in (SURVIVAL_TIME, SURVIVAL_EVENT)
    ]
    return {"mutations": mutations, "modules": modules, "clinical": clinical}


def _cut_high_low(values: pd.Series, cut: float, name: str) -> pd.Series:
    threshold = float(values.quantile(cut))
    high = (values > threshold).astype(float).where(values.notna())
    if high.nunique() < 2:
        raise InputError(f"target {name}: the cut at quantile {cut:g} leaves one class only")
    return high


def resolve_target(adata, name: str, *, cut: float | None = None) -> Target:
    """The target ``name``: a mutation column, a module eigengene or a clinical column.

    Binary targets are 0/1 floats (1 = ``Mutant``, or the last category); continuous targets
    become high (1) / low (0) when ``cut`` (a quantile in (0, 1), e.g. 0.5 for the median)
    is given. Patients without a value are left out.
    """
    if cut is not None and not 0.0 < cut < 1.0:
        raise InputError(f"cut must be a quantile between 0 and 1 (e.g. 0.5), got {cut}")
    obs = adata.obs
    eigengenes = adata.obsm.get(EIGENGENES_KEY)
    if name in obs.columns and _is_mutation(obs[name]):
        values = (obs[name].astype(object) == MUTANT).astype(float).where(obs[name].notna())
        target = Target(name, "binary", values, f"{name} {MUTANT} vs Wildtype")
    elif isinstance(eigengenes, pd.DataFrame) and name in eigengenes.columns:
        values = pd.Series(eigengenes[name].to_numpy(float), index=obs.index)
        target = Target(name, "continuous", values, f"eigengene of module {name}")
    elif name in obs.columns and name not in (SURVIVAL_TIME, SURVIVAL_EVENT):
        column = obs[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object:
            levels = sorted(str(v) for v in column.dropna().unique())
            if len(levels) != 2:
                raise InputError(
                    f"target {name} has {len(levels)} categories; a clinical target must be "
                    "binary or numeric"
                )
            values = (column.astype(object).astype(str) == levels[1]).astype(float)
            values = values.where(column.notna())
            target = Target(name, "binary", values, f"{name}: {levels[1]} vs {levels[0]}")
        else:
            values = pd.to_numeric(column, errors="coerce").astype(float)
            target = Target(name, "continuous", values, f"clinical {name}")
    else:
        known = available_targets(adata)
        raise InputError(
            f"unknown target {name!r}; choose a mutation ({', '.join(known['mutations']) or 'none'}), "
            f"a module ({', '.join(known['modules'][:8]) or 'none'}) or a clinical column"
        )
    values = target.values.dropna()
    if cut is not None and target.kind == "continuous":
        values = _cut_high_low(values, cut, name)
        target.kind = "binary"
        target.description += f", high vs low at quantile {cut:g}"
    target.values = values
    if target.kind == "binary":
        counts = values.value_counts()
        if len(counts) < 2:
            raise InputError(f"target {name}: every patient is in the same class")
    return target


def _levels(column: pd.Series) -> list[str]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(level) for level in column.cat.categories]
    return sorted({str(value) for value in column.dropna()})


def _numeric_values(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy(dtype=float)
        return np.where(codes < 0, np.nan, codes)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


def _is_numeric(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return bool(column.cat.ordered)
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _encode(frame: pd.DataFrame, like: FeatureSet | None = None) -> FeatureSet:
    """Numeric matrix of a table: numbers as they are, ordinal categories as their codes,
    other categories one-hot over their declared levels (NaN where the value is missing).

    The levels come from the bundle's declared categories, not from the patients, so the
    encoding learns nothing from the data and is done once, outside the folds. ``like``
    applies the encoding of another feature set (a frozen model's): its features in its
    order, absent ones all missing, unseen levels without an indicator (as
    ``OneHotEncoder(handle_unknown="ignore")``).
    """
    if like is None:
        features = [str(c) for c in frame.columns if frame[c].notna().any()]
        levels = {f: _levels(frame[f]) for f in features if not _is_numeric(frame[f])}
    else:
        features = [f for f in like.features]
        levels = like.levels
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for name in features:
        column = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
        if name not in levels:
            blocks.append(_numeric_values(column)[:, None])
            names.append(name)
            continue
        text = (
            column.astype(object)
            .where(column.notna(), None)
            .map(lambda value: None if value is None else str(value))
        )
        dummies = np.zeros((len(frame), len(levels[name])))
        for j, level in enumerate(levels[name]):
            dummies[:, j] = (text == level).to_numpy(dtype=float)
        dummies[text.isna().to_numpy()] = np.nan
        blocks.append(dummies)
        names.extend(f"{name} = {level}" for level in levels[name])
    matrix = np.hstack(blocks) if blocks else np.empty((len(frame), 0))
    return FeatureSet(
        name=like.name if like is not None else "",
        matrix=matrix,
        columns=names,
        features=features,
        levels=levels,
    )


def _features_table(adata) -> pd.DataFrame:
    features = adata.uns.get(UNS_KEY, {}).get("features")
    if isinstance(features, pd.DataFrame):
        return features
    return pd.DataFrame(columns=["source"])


def find_size_feature(adata) -> str | None:
    """The imaging column that measures tumour size (volume, else a diameter), if any."""
    imaging = adata.obsm.get(IMAGING_KEY)
    if not isinstance(imaging, pd.DataFrame):
        return None
    for name in SIZE_CANDIDATES:
        if name in imaging.columns:
            return name
    for name in imaging.columns:
        if SIZE_PATTERN.search(str(name)) and pd.api.types.is_numeric_dtype(imaging[name]):
            return str(name)
    return None


def find_clinical_columns(adata, *, exclude: Sequence[str] = ()) -> list[str]:
    """Clinical baseline columns found by name (smoking, sex, histology, age)."""
    mutations = set(available_targets(adata)["mutations"])
    found = []
    for name in adata.obs.columns:
        name = str(name)
        if name in exclude or name in mutations or name in (SURVIVAL_TIME, SURVIVAL_EVENT):
            continue
        if any(pattern.search(name) for pattern in CLINICAL_PATTERNS):
            found.append(name)
    return found


def feature_sets(
    adata,
    patients: pd.Index,
    *,
    names: Sequence[str] = FEATURE_SETS,
    size_feature: str | None = None,
    clinical_columns: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    like: dict[str, FeatureSet] | None = None,
) -> tuple[dict[str, FeatureSet], list[str]]:
    """The requested feature sets on ``patients``, and warnings for sets left out.

    With ``like`` (the sets of a development cohort), each set gets exactly the columns and
    encoding of ``like[name]``; columns this bundle lacks are all missing (and reported).
    """
    unknown = [n for n in names if n not in FEATURE_SETS]
    if unknown:
        raise InputError(
            f"unknown feature set {', '.join(unknown)}; choose from {', '.join(FEATURE_SETS)}"
        )
    imaging = adata.obsm.get(IMAGING_KEY)
    if not isinstance(imaging, pd.DataFrame):
        imaging = pd.DataFrame(index=adata.obs_names)
    sources = _features_table(adata).get("source", pd.Series(dtype=object))
    by_source = {
        source: [c for c in imaging.columns if sources.get(c) == source]
        for source in ("semantic", "radiomic")
    }
    sets: dict[str, FeatureSet] = {}
    notes: list[str] = []
    for name in names:
        if like is not None:
            wanted = like[name].features
            table = pd.concat(
                [imaging, adata.obs.drop(columns=imaging.columns, errors="ignore")], axis=1
            )
            absent = [c for c in wanted if c not in table.columns]
            if absent and len(absent) == len(wanted):
                notes.append(f"feature set {name!r}: none of its {len(wanted)} columns exist")
                continue
            if absent:
                notes.append(
                    f"feature set {name!r}: {len(absent)} of {len(wanted)} columns are absent "
                    "and imputed with the development means"
                )
            columns = table.loc[patients, [c for c in wanted if c in table.columns]]
            sets[name] = _encode(columns, like=like[name])
            continue
        if name == "constant":
            columns = pd.DataFrame(index=patients)
        elif name in ("semantic", "radiomic"):
            columns = imaging.loc[patients, by_source[name]]
        elif name == "imaging":
            columns = imaging.loc[patients, by_source["semantic"] + by_source["radiomic"]]
        elif name == "size":
            size = size_feature or find_size_feature(adata)
            if size is not None and size not in imaging.columns:
                raise InputError(f"size feature {size!r} is not an imaging feature of the bundle")
            columns = imaging.loc[patients, [size]] if size else pd.DataFrame(index=patients)
        else:
            chosen = (
                list(clinical_columns)
                if clinical_columns
                else find_clinical_columns(adata, exclude=exclude)
            )
            missing = [c for c in chosen if c not in adata.obs.columns]
            if missing:
                raise InputError(f"clinical column {', '.join(missing)} is not in the bundle")
            chosen = [c for c in chosen if c not in exclude]
            columns = adata.obs.loc[patients, chosen]
        encoded = _encode(columns)
        if name != "constant" and not encoded.columns:
            notes.append(f"feature set {name!r} left out: the bundle has no such columns")
            continue
        encoded.name = name
        sets[name] = encoded
    return sets, notes


def declare_batch(
    sets: dict[str, FeatureSet],
    adata,
    patients: pd.Index,
    column: str | None,
    *,
    levels: list[str] | None = None,
) -> list[str]:
    """Attach the batch codes of ``column`` to every set with numeric radiomic columns, which
    the in-fold :class:`BatchHarmoniser` then adjusts; the batch levels (for an external
    cohort, pass the development ``levels``: its other batches count as unseen).
    """
    if column is None:
        return []
    if column not in adata.obs.columns:
        raise InputError(f"batch column {column!r} is not a clinical column of the bundle")
    values = adata.obs.loc[patients, column]
    text = values.astype(object).where(values.notna(), None)
    if levels is None:
        levels = sorted({str(v) for v in text.dropna()})
    codes = {level: float(position) for position, level in enumerate(levels)}
    batch = np.array([np.nan if v is None else codes.get(str(v), np.nan) for v in text])
    sources = _features_table(adata).get("source", pd.Series(dtype=object))
    for fset in sets.values():
        mask = np.array(
            [
                sources.get(column_name) == "radiomic" and column_name not in fset.levels
                for column_name in fset.columns
            ],
            dtype=bool,
        )
        if mask.any():
            fset.batch = batch
            fset.harmonised = mask
    return levels


# ---------------------------------------------------------------------------------------------
# Pipelines


class MeanImputeScale(TransformerMixin, BaseEstimator):
    """Mean imputation then standardisation, column by column, in one pass.

    The same result as ``SimpleImputer(strategy="mean")`` followed by ``StandardScaler()``
    (imputed values become 0; constant and empty columns become 0), several times faster on
    the wide radiomic tables, which matters when the whole procedure is re-run for every
    permutation.
    """

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(X, axis=0)
            mean = np.where(np.isnan(mean), 0.0, mean)
            filled = np.where(np.isnan(X), mean, X)
            scale = filled.std(axis=0)
        self.mean_ = mean
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        filled = np.where(np.isnan(X), self.mean_, X)
        return (filled - self.mean_) / self.scale_


def abs_correlation(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|Pearson r| of each column with ``y``: the filter score (ranks as the F test does)."""
    X = np.asarray(X, dtype=float)
    centred = X - X.mean(axis=0)
    target = np.asarray(y, dtype=float) - np.mean(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = centred.T @ target / np.sqrt((centred**2).sum(axis=0) * (target**2).sum())
    return np.nan_to_num(np.abs(r))


class BatchHarmoniser(TransformerMixin, BaseEstimator):
    """Location / scale harmonisation per batch (ComBat without its empirical-Bayes
    shrinkage), learnt from the training patients only.

    The first column of ``X`` holds the batch codes (NaN = unknown), the others are
    features, of which ``columns`` (a boolean mask; default all) are harmonised. ``fit``
    stores the pooled mean and standard deviation of each feature and those of every batch
    with at least ``min_batch`` training patients; ``transform`` maps a patient of such a
    batch to ``(x - batch mean) / batch sd * pooled sd + pooled mean`` (a shift only where
    the batch sd is 0) and leaves the others (batches unseen or too small in training,
    unknown batch) as they are. It returns the features without the batch column. The
    outcome is never used, so nothing about the test patients' labels can leak in.
    """

    def __init__(self, columns=None, min_batch: int = 3):
        self.columns = columns
        self.min_batch = min_batch

    def _split(self, X):
        X = np.asarray(X, dtype=float)
        mask = (
            np.ones(X.shape[1] - 1, dtype=bool)
            if self.columns is None
            else np.asarray(self.columns, dtype=bool)
        )
        return X[:, 0], X[:, 1:], mask

    def fit(self, X, y=None):
        batch, features, mask = self._split(X)
        values = features[:, mask]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.mean_ = np.nan_to_num(np.nanmean(values, axis=0))
            self.scale_ = np.nan_to_num(np.nanstd(values, axis=0))
            self.batches_ = {}
            for code in np.unique(batch[~np.isnan(batch)]):
                rows = batch == code
                if rows.sum() < self.min_batch:
                    continue
                mean = np.nanmean(values[rows], axis=0)
                scale = np.nanstd(values[rows], axis=0)
                mean = np.where(np.isnan(mean), self.mean_, mean)
                ratio = np.where(scale > 0, self.scale_ / np.where(scale > 0, scale, 1.0), 1.0)
                self.batches_[float(code)] = (mean, ratio)
        self.n_features_in_ = features.shape[1] + 1
        return self

    def transform(self, X):
        batch, features, mask = self._split(X)
        features = features.copy()
        values = features[:, mask]
        for code, (mean, ratio) in self.batches_.items():
            rows = batch == code
            values[rows] = (values[rows] - mean) * ratio + self.mean_
        features[:, mask] = values
        return features


class CorrelationFilter(TransformerMixin, BaseEstimator):
    """Keep the ``k`` columns most correlated with ``y`` (:func:`abs_correlation`).

    ``SelectKBest(abs_correlation, k=k)`` with the same choice of columns (ties broken the
    same way), without its input checks, which cost more than the filter on the small
    matrices of the inner folds.
    """

    def __init__(self, k: int = 50):
        self.k = k

    def fit(self, X, y):
        scores = abs_correlation(X, y)
        self.support_ = np.zeros(len(scores), dtype=bool)
        self.support_[np.argsort(scores, kind="mergesort")[-self.k :]] = True
        self.n_features_in_ = len(scores)
        return self

    def get_support(self) -> np.ndarray:
        return self.support_

    def transform(self, X):
        return np.asarray(X, dtype=float)[:, self.support_]


def _preprocessor(max_features: int, fset: FeatureSet | None = None) -> Pipeline:
    """The in-fold feature steps: harmonisation (when a batch is declared), imputation and
    standardisation, the univariate filter."""
    steps = []
    if fset is not None and fset.batch is not None:
        steps.append(("harmonise", BatchHarmoniser(fset.harmonised)))
    steps += [("standardise", MeanImputeScale()), ("filter", CorrelationFilter(max_features))]
    return Pipeline(steps)


def _fit_transform(pipeline: Pipeline, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fit the steps of ``pipeline`` one after the other on (X, y); the transformed X.

    What ``Pipeline.fit_transform`` does, without its per-call checks (the inner folds call
    this thousands of times); ``pipeline`` is a fitted Pipeline afterwards.
    """
    for _, step in pipeline.steps:
        X = step.fit(X, y).transform(X)
    return X


def _transform(pipeline: Pipeline, X: np.ndarray) -> np.ndarray:
    for _, step in pipeline.steps:
        X = step.transform(X)
    return X


def logistic_enet_path(
    X: np.ndarray,
    y: np.ndarray,
    Cs: Sequence[float],
    *,
    l1_ratio: float = L1_RATIO,
    tol: float = SOLVER_TOL,
    max_iter: int = SOLVER_MAX_ITER,
) -> tuple[np.ndarray, np.ndarray]:
    """Elastic-net logistic regression at every ``C`` of a grid, solved together.

    For each ``C`` this minimises scikit-learn's ``LogisticRegression(penalty="elasticnet")``
    objective, ``C * sum(log-loss) + (1 - l1_ratio) / 2 * ||w||² + l1_ratio * ||w||₁`` with
    an unpenalised intercept, by accelerated proximal gradient (FISTA with adaptive restart,
    step 1 / Lipschitz constant), all penalties of the grid in one batch of matrix products.
    It stops when the gradient mapping, per patient, is below ``tol`` for every ``C``.

    scikit-learn offers this objective only through ``saga``, one penalty per call with its
    input checks each time; on the small matrices of the inner folds those checks cost more
    than the fit, and saga's intercept is far from converged when the penalty is strong. The
    solution is deterministic (no random order), so it does not depend on the worker.

    Returns
    -------
    ``coef`` (len(Cs) x features) and ``intercept`` (len(Cs)).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    Cs = np.asarray(Cs, dtype=float)
    design = np.hstack([X, np.ones((n, 1))])
    transposed = np.ascontiguousarray(design.T)
    lam2 = (1.0 - l1_ratio) / Cs
    lipschitz = np.linalg.norm(design, 2) ** 2 / 4.0 + lam2
    step = 1.0 / lipschitz
    penalised = np.ones((p + 1, 1))
    penalised[-1] = 0.0
    shrink = penalised * (step * l1_ratio / Cs)
    decay = 1.0 - penalised * (step * lam2)  # the ridge part of the gradient step
    target = y[:, None] * step
    stop = tol * n * step  # gradient mapping below tol per patient, in coefficient units
    current = np.zeros((p + 1, len(Cs)))
    current[-1] = special.logit(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    point = current.copy()
    momentum = np.ones(len(Cs))
    for _ in range(max_iter):
        residual = special.expit(design @ point) * step
        residual -= target
        moved = point * decay
        moved -= transposed @ residual
        new = moved - np.minimum(np.maximum(moved, -shrink), shrink)
        change = point - new
        if np.all(np.maximum.reduce(np.abs(change), axis=0) < stop):
            current = new
            break
        advance = new - current
        restart = np.add.reduce(change * advance, axis=0) > 0
        following = (1.0 + np.sqrt(1.0 + 4.0 * momentum * momentum)) / 2.0
        beta = np.where(restart, 0.0, (momentum - 1.0) / following)
        momentum = np.where(restart, 1.0, following)
        point = new + beta * advance
        current = new
    return current[:-1].T.copy(), current[-1].copy()


def linear_enet_path(
    X: np.ndarray, y: np.ndarray, alphas: Sequence[float], *, l1_ratio: float = L1_RATIO
) -> tuple[np.ndarray, np.ndarray]:
    """Elastic-net linear regression at every ``alpha`` (scikit-learn's ``enet_path``).

    The objective of ``ElasticNet(alpha, l1_ratio)`` with an intercept: the columns of ``X``
    are centred here (they already are after :class:`MeanImputeScale`) and the intercept
    restores the means. Returns ``coef`` (len(alphas) x features) and ``intercept``.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    x_mean, y_mean = X.mean(axis=0), y.mean()
    order = np.argsort(alphas)[::-1]
    _, coefs, _ = enet_path(
        X - x_mean, y - y_mean, l1_ratio=l1_ratio, alphas=np.asarray(alphas, float)[order]
    )
    coef = np.empty((len(alphas), X.shape[1]))
    coef[order] = coefs.T
    return coef, y_mean - coef @ x_mean


class ElasticNetLogistic(ClassifierMixin, BaseEstimator):
    """Elastic-net logistic regression fitted by :func:`logistic_enet_path` (binary 0/1 ``y``).

    The same objective and parameters as ``LogisticRegression(penalty="elasticnet",
    C=C, l1_ratio=l1_ratio)``; ``coef_`` (1 x features), ``intercept_`` (1,) and
    ``predict_proba`` as there.
    """

    def __init__(
        self,
        C: float = 1.0,
        l1_ratio: float = L1_RATIO,
        tol: float = SOLVER_TOL,
        max_iter: int = SOLVER_MAX_ITER,
    ):
        self.C = C
        self.l1_ratio = l1_ratio
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X, y):
        y = np.asarray(y, dtype=float)
        self.classes_ = np.array([0.0, 1.0])
        coef, intercept = logistic_enet_path(
            X, y, [self.C], l1_ratio=self.l1_ratio, tol=self.tol, max_iter=self.max_iter
        )
        self.coef_ = coef
        self.intercept_ = intercept
        self.n_features_in_ = coef.shape[1]
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=float) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        positive = special.expit(self.decision_function(X))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X):
        return (self.decision_function(X) > 0).astype(float)


def _model(kind: str, model: str, seed: int) -> tuple[object, str, tuple]:
    """An unfitted model, the hyperparameter the inner folds tune, and its grid."""
    if model == "forest":
        cls = RandomForestClassifier if kind == "binary" else RandomForestRegressor
        estimator = cls(n_estimators=FOREST_TREES, max_features="sqrt", random_state=seed, n_jobs=1)
        return estimator, "min_samples_leaf", FOREST_LEAF
    if kind == "binary":
        return ElasticNetLogistic(l1_ratio=L1_RATIO), "C", LOGISTIC_C
    estimator = ElasticNet(l1_ratio=L1_RATIO, max_iter=5000)
    return estimator, "alpha", ELASTICNET_ALPHA


def _penalty_path(kind: str, X: np.ndarray, y: np.ndarray, grid) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and intercepts of the elastic net at every penalty of ``grid``."""
    if kind == "binary":
        return logistic_enet_path(X, y, grid)
    return linear_enet_path(X, y, grid)


def _predict(estimator, X, kind: str) -> np.ndarray:
    coef = getattr(estimator, "coef_", None)
    if coef is not None:
        # The linear predictor by hand: predict_proba's input checks cost more than the
        # product on these small matrices, and the inner folds call it thousands of times.
        linear = np.asarray(X, dtype=float) @ np.ravel(coef) + np.ravel(estimator.intercept_)[0]
        return special.expit(linear) if kind == "binary" else linear
    if kind == "binary":
        return estimator.predict_proba(X)[:, 1]
    return estimator.predict(X)


def _loss(y: np.ndarray, predicted: np.ndarray, kind: str) -> float:
    if kind == "binary":
        p = np.clip(predicted, 1e-6, 1 - 1e-6)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(np.mean((y - predicted) ** 2))


@dataclass
class _Procedure:
    """One feature set's modelling procedure: tune by inner CV, then fit (all in-fold)."""

    fset: FeatureSet
    kind: str
    params: PredictParams

    def inner_cv(self, seed: int):
        cls = StratifiedKFold if self.kind == "binary" else KFold
        return cls(n_splits=self.params.inner_splits, shuffle=True, random_state=seed)

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int):
        """Choose the hyperparameter by inner CV on (X, y), then fit on all of (X, y)."""
        if self.fset.name == "constant":
            return float(np.mean(y))
        estimator, key, grid = _model(self.kind, self.params.model, seed)
        losses = np.zeros(len(grid))
        for train, val in self.inner_cv(seed).split(X, y):
            pre = _preprocessor(self.params.max_features, self.fset)
            Z_train = _fit_transform(pre, X[train], y[train])
            Z_val = _transform(pre, X[val])
            if self.params.model == "forest":
                model = clone(estimator)
                for position, value in enumerate(grid):
                    model.set_params(**{key: value}).fit(Z_train, y[train])
                    predicted = _predict(model, Z_val, self.kind)
                    losses[position] += _loss(y[val], predicted, self.kind)
                continue
            coef, intercept = _penalty_path(self.kind, Z_train, y[train], grid)
            linear = Z_val @ coef.T + intercept
            for position in range(len(grid)):
                predicted = (
                    special.expit(linear[:, position])
                    if self.kind == "binary"
                    else linear[:, position]
                )
                losses[position] += _loss(y[val], predicted, self.kind)
        best = grid[int(np.argmin(losses))]
        features = _preprocessor(self.params.max_features, self.fset)
        model = clone(estimator).set_params(**{key: best})
        model.fit(_fit_transform(features, X, y), y)
        return Pipeline([("features", features), ("model", model)])

    def predict(self, fitted, X: np.ndarray) -> np.ndarray:
        if self.fset.name == "constant":
            return np.full(len(X), fitted)
        features = _transform(fitted.named_steps["features"], X)
        return _predict(fitted.named_steps["model"], features, self.kind)


def _outer_splits(kind: str, params: PredictParams, repeats: int, y: np.ndarray, seed: int):
    if kind == "binary":
        cv = RepeatedStratifiedKFold(
            n_splits=params.outer_splits, n_repeats=repeats, random_state=seed
        )
    else:
        cv = RepeatedKFold(n_splits=params.outer_splits, n_repeats=repeats, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y))


def _coefficients(fitted, fset: FeatureSet) -> pd.Series:
    """Per encoded column (``feature`` or ``feature = level``): coefficient or importance."""
    support = fitted.named_steps["features"].named_steps["filter"].get_support()
    model = fitted.named_steps["model"]
    values = (
        np.ravel(model.coef_)
        if hasattr(model, "coef_")
        else np.asarray(model.feature_importances_, dtype=float)
    )
    full = np.zeros(len(fset.columns))
    full[support] = values
    return pd.Series(full, index=fset.columns)


def _cross_validate(
    procedure: _Procedure,
    y: np.ndarray,
    splits: list,
    seed: int,
    *,
    keep_models: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[pd.Series]]:
    """Out-of-fold predictions (repeats x patients), training thresholds, fold coefficients."""
    n_splits = procedure.params.outer_splits
    repeats = len(splits) // n_splits
    predictions = np.full((repeats, len(y)), np.nan)
    thresholds = np.full((repeats, len(y)), np.nan)
    coefficients: list[pd.Series] = []
    X = procedure.fset.design
    for fold, (train, test) in enumerate(splits):
        fitted = procedure.fit(X[train], y[train], seed + fold)
        repeat = fold // n_splits
        predictions[repeat, test] = procedure.predict(fitted, X[test])
        thresholds[repeat, test] = np.mean(y[train])
        if keep_models and procedure.fset.name != "constant":
            coefficients.append(_coefficients(fitted, procedure.fset))
    return predictions, thresholds, coefficients


# ---------------------------------------------------------------------------------------------
# Metrics


def _rank_auc(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUC (Mann-Whitney, ties count 1/2) along the last axis; ``y`` is 0/1 of that length."""
    ranks = stats.rankdata(scores, axis=-1)
    positives = y.sum(axis=-1)
    negatives = y.shape[-1] - positives
    rank_sum = (ranks * y).sum(axis=-1)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _bootstrap_indices(y: np.ndarray, kind: str, n: int, seed: int) -> np.ndarray:
    """Patient resamples (n x patients), stratified by class for binary targets."""
    rng = np.random.default_rng(seed)
    if kind != "binary":
        return rng.integers(0, len(y), size=(n, len(y)))
    parts = []
    for label in (0.0, 1.0):
        members = np.flatnonzero(y == label)
        parts.append(members[rng.integers(0, len(members), size=(n, len(members)))])
    return np.hstack(parts)


def _threshold_metrics(y: np.ndarray, predicted: np.ndarray, cutoff: np.ndarray) -> dict:
    called = predicted >= cutoff
    positive = y == 1
    sensitivity = called[:, positive].mean(axis=1)
    specificity = (~called[:, ~positive]).mean(axis=1)
    return {
        "sensitivity": float(np.mean(sensitivity)),
        "specificity": float(np.mean(specificity)),
        "balanced_accuracy": float(np.mean((sensitivity + specificity) / 2)),
    }


def _r2(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    residual = ((y - predicted) ** 2).sum(axis=-1)
    total = ((y - y.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    return 1.0 - residual / total


def _spearman(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    a = stats.rankdata(y, axis=-1)
    b = stats.rankdata(predicted, axis=-1)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=-1) / np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))


def headline(y: np.ndarray, predictions: np.ndarray, kind: str) -> float:
    """The statistic that is reported, bootstrapped and permuted: mean AUC (or R²) over repeats."""
    if kind == "binary":
        return float(np.mean(_rank_auc(predictions, np.broadcast_to(y, predictions.shape))))
    return float(np.mean(_r2(y, predictions)))


def _boot_statistic(y: np.ndarray, predictions: np.ndarray, kind: str, idx: np.ndarray):
    """The headline statistic on each resample (rows of ``idx``): array of len(idx)."""
    resampled = predictions[:, idx]  # repeats x boot x patients
    labels = y[idx]
    if kind == "binary":
        return _rank_auc(resampled, np.broadcast_to(labels, resampled.shape)).mean(axis=0)
    return _r2(np.broadcast_to(labels, resampled.shape), resampled).mean(axis=0)


def _roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of scikit-learn's ``roc_curve(labels, scores)`` (with
    its ``drop_intermediate``), without its input checks: the bootstrap band draws ~1,000
    curves per feature set, and the checks cost 2 ms each where the curve costs 0.05."""
    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    ends = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]
    tps = np.cumsum(labels[order], dtype=np.float64)[ends]
    fps = 1 + ends - tps
    if len(fps) > 2:
        corners = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps = fps[corners], tps[corners]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = fps / fps[-1] if fps[-1] > 0 else np.full(len(fps), np.nan)
        tpr = tps / tps[-1] if tps[-1] > 0 else np.full(len(tps), np.nan)
    return fpr, tpr


def _roc_curves(y, predictions, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertically averaged ROC over repeats on a fixed FPR grid, with a bootstrap band."""

    def mean_curve(labels, scores):
        curves = []
        for repeat in scores:
            fpr, tpr = _roc_points(labels, repeat)
            curves.append(np.interp(ROC_GRID, fpr, tpr))
        curve = np.mean(curves, axis=0)
        curve[0] = 0.0
        return curve

    curve = mean_curve(y, predictions)
    boots = np.array([mean_curve(y[rows], predictions[:, rows]) for rows in idx])
    low, high = np.percentile(boots, [2.5, 97.5], axis=0)
    return curve, low, high


def _calibration(y: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    """Observed event rate against mean predicted probability in quantile bins."""
    bins = pd.qcut(probability, CALIBRATION_BINS, labels=False, duplicates="drop")
    frame = pd.DataFrame({"bin": bins, "predicted": probability, "observed": y})
    table = frame.groupby("bin").agg(
        predicted=("predicted", "mean"), observed=("observed", "mean"), n=("observed", "size")
    )
    return table.reset_index()


def _metrics(
    y: np.ndarray,
    predictions: np.ndarray,
    cutoffs: np.ndarray,
    kind: str,
    idx: np.ndarray,
    scores: np.ndarray | None = None,
) -> tuple[dict, np.ndarray]:
    """The summary row (without the permutation p) and the bootstrap distribution.

    ``scores`` rank the patients for the AUC when they differ from the predicted
    probabilities: the constant predictor's probabilities vary a little between folds (the
    training prevalence), which must not rank patients across folds.
    """
    scores = predictions if scores is None else scores
    boot = _boot_statistic(y, scores, kind, idx)
    low, high = np.percentile(boot, [2.5, 97.5])
    row: dict = {"n": int(len(y))}
    if kind == "binary":
        row |= {
            "n_positive": int(y.sum()),
            "auc": headline(y, scores, kind),
            "auc_low": float(low),
            "auc_high": float(high),
            "brier": float(np.mean((predictions - y) ** 2)),
            **_threshold_metrics(y, predictions, cutoffs),
        }
    else:
        row |= {
            "r2": headline(y, predictions, kind),
            "r2_low": float(low),
            "r2_high": float(high),
            "spearman": float(np.nanmean(_spearman(y, predictions))),
        }
    return row, boot


def _cutoffs(params: PredictParams, training_prevalence: np.ndarray) -> np.ndarray:
    if params.threshold == "prevalence":
        return training_prevalence
    return np.full_like(training_prevalence, float(params.threshold))


# ---------------------------------------------------------------------------------------------
# The runner


def _permutation_null(
    procedure: _Procedure, y: np.ndarray, params: PredictParams, seeds: Sequence[int]
) -> np.ndarray:
    """The statistic of the whole procedure on permuted labels, one per seed."""
    null = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # worker processes do not inherit the caller's filter
        for seed in seeds:
            permuted = np.random.default_rng(seed).permutation(y)
            splits = _outer_splits(
                procedure.kind, params, params.permutation_repeats, permuted, seed
            )
            predictions, _, _ = _cross_validate(procedure, permuted, splits, params.seed)
            null.append(headline(permuted, predictions, procedure.kind))
    return np.asarray(null)


def _run_permutations(procedure, y, params: PredictParams) -> np.ndarray:
    seeds = [params.seed * 100_003 + 1 + b for b in range(params.n_permutations)]
    if params.n_jobs <= 1 or len(seeds) < 2:
        return _permutation_null(procedure, y, params, seeds)
    from joblib import Parallel, delayed

    chunks = [list(c) for c in np.array_split(seeds, params.n_jobs * 4) if len(c)]
    parts = Parallel(n_jobs=params.n_jobs)(
        delayed(_permutation_null)(procedure, y, params, [int(s) for s in chunk])
        for chunk in chunks
    )
    return np.concatenate(parts)


def _importance(coefficients: list[pd.Series], target: str, name: str) -> pd.DataFrame:
    if not coefficients:
        return pd.DataFrame()
    matrix = pd.concat(coefficients, axis=1).fillna(0.0)
    nonzero = matrix.ne(0.0)
    positive = (matrix > 0).sum(axis=1)
    negative = (matrix < 0).sum(axis=1)
    chosen = nonzero.sum(axis=1).replace(0, np.nan)
    table = pd.DataFrame(
        {
            "target": target,
            "feature_set": name,
            "feature": matrix.index.astype(str),
            "mean_coefficient": matrix.mean(axis=1).to_numpy(),
            "mean_abs": matrix.abs().mean(axis=1).to_numpy(),
            "selected_fraction": nonzero.mean(axis=1).to_numpy(),
            "sign_agreement": (np.maximum(positive, negative) / chosen).fillna(0.0).to_numpy(),
            "n_folds": matrix.shape[1],
        }
    )
    table = table[table["selected_fraction"] > 0].sort_values(
        ["mean_abs", "feature"], ascending=[False, True]
    )
    table["rank"] = np.arange(1, len(table) + 1)
    return table.head(30).reset_index(drop=True)


def _check_params(params: PredictParams, kind: str, y: np.ndarray) -> None:
    if params.model not in MODELS:
        raise InputError(f"model must be one of {', '.join(MODELS)}, got {params.model!r}")
    for name, minimum in (
        ("outer_splits", 2),
        ("inner_splits", 2),
        ("outer_repeats", 1),
        ("permutation_repeats", 1),
        ("max_features", 1),
        ("n_bootstrap", 100),
    ):
        if getattr(params, name) < minimum:
            raise InputError(f"{name} must be at least {minimum}, got {getattr(params, name)}")
    if params.n_permutations < 0:
        raise InputError(f"n_permutations must be 0 or more, got {params.n_permutations}")
    if params.permutation_repeats > params.outer_repeats:
        raise InputError("permutation_repeats cannot exceed outer_repeats")
    if params.threshold != "prevalence":
        try:
            threshold = float(params.threshold)
        except (TypeError, ValueError):
            threshold = math.nan
        if not 0.0 < threshold < 1.0:
            raise InputError(
                f"threshold must be 'prevalence' or a probability in (0, 1), got {params.threshold}"
            )
    smallest = (
        int(min(y.sum(), len(y) - y.sum())) if kind == "binary" else len(y) // params.outer_splits
    )
    needed = params.outer_splits * params.inner_splits if kind == "binary" else 2
    if smallest < needed:
        raise InputError(
            f"too few patients for {params.outer_splits} x {params.inner_splits} nested folds: "
            f"the smaller class has {smallest}, at least {needed} are needed; lower the folds"
        )


def _external_rows(
    procedure: _Procedure,
    fitted,
    y_dev: np.ndarray,
    external: tuple[dict[str, FeatureSet], Target],
    params: PredictParams,
) -> tuple[dict | None, pd.DataFrame | None, tuple | None]:
    """Metrics of the frozen development model on the external cohort."""
    ext_sets, ext_target = external
    fset = ext_sets.get(procedure.fset.name)
    if fset is None:
        return None, None, None
    y = ext_target.values.to_numpy(float)
    predictions = procedure.predict(fitted, fset.design)[None, :]
    cutoff = _cutoffs(params, np.full((1, len(y)), float(np.mean(y_dev))))
    idx = _bootstrap_indices(y, procedure.kind, params.n_bootstrap, params.seed + 7)
    row, _ = _metrics(y, predictions, cutoff, procedure.kind, idx)
    if procedure.kind != "binary":
        return row, None, None
    curves = _roc_curves(y, predictions, idx[:BAND_BOOTSTRAP])
    return row, _calibration(y, predictions[0]), curves


def predict(
    adata,
    *,
    targets: Sequence[str] | None = None,
    feature_sets_: Sequence[str] = FEATURE_SETS,
    params: PredictParams | None = None,
    size_feature: str | None = None,
    clinical_columns: Sequence[str] | None = None,
    validate=None,
    progress: Callable[[str], None] | None = None,
    key_added: str | None = PREDICT_KEY,
) -> PredictionResult:
    """Predict each target from each feature set by nested CV, against the baselines.

    Parameters
    ----------
    adata
        The bundle (development cohort).
    targets
        Target names (mutation columns, module names, clinical columns); default every
        mutation column.
    feature_sets_
        Feature sets to compare (:data:`FEATURE_SETS`); sets the bundle lacks are left out
        with a warning.
    params
        Cross-validation, model, permutation and threshold settings.
    size_feature
        Imaging column of the size baseline (default: found by name, see
        :func:`find_size_feature`).
    clinical_columns
        ``obs`` columns of the clinical baseline (default: found by name).
    validate
        An external bundle: the procedure fitted on all of ``adata`` is frozen and applied to
        it (rows with ``cohort == "external"``).
    progress
        Called with a line per finished feature set.
    key_added
        ``adata.uns["radmap"][key_added]`` receives the result's tables and params
        (:func:`store_result`; ``None``: leave ``adata`` unchanged).

    Returns
    -------
    The tables: ``summary`` (one row per target x feature set x cohort: n, AUC with its
    bootstrap CI, balanced accuracy, sensitivity, specificity, threshold rule, Brier, or
    R² with CI and Spearman; permutation p; difference to the best baseline with its paired
    bootstrap CI), ``roc`` (FPR grid, mean TPR and band), ``calibration``, ``importance``
    (top 30 coefficients per set with their stability across the outer folds) and
    ``permutations`` (the null statistics).
    """
    params = params or PredictParams()
    unknown = [n for n in feature_sets_ if n not in FEATURE_SETS]
    if unknown:
        raise InputError(
            f"unknown feature set {', '.join(unknown)}; choose from {', '.join(FEATURE_SETS)}"
        )
    say = progress or (lambda message: None)
    started = time.perf_counter()
    if targets is None:
        targets = available_targets(adata)["mutations"]
        if not targets:
            raise InputError("the bundle has no mutation column; name a target (--target)")
    summary_rows, roc_rows, calibration_rows = [], [], []
    importance_tables, permutation_rows = [], []
    notes: list[str] = []
    for name in targets:
        target = resolve_target(adata, name, cut=params.cut)
        y = target.values.to_numpy(float)
        _check_params(params, target.kind, y)
        patients = target.values.index
        exclude = [name]
        sets, set_notes = feature_sets(
            adata,
            patients,
            names=feature_sets_,
            size_feature=size_feature,
            clinical_columns=clinical_columns,
            exclude=exclude,
        )
        notes.extend(f"{name}: {note}" for note in set_notes)
        batch_levels = declare_batch(sets, adata, patients, params.batch)
        if params.batch is not None and len(batch_levels) < 2:
            notes.append(
                f"{name}: batch column {params.batch!r} has one batch; nothing to harmonise"
            )
        external = None
        if validate is not None:
            ext_target = resolve_target(validate, name, cut=params.cut)
            ext_sets, ext_notes = feature_sets(
                validate, ext_target.values.index, names=list(sets), like=sets
            )
            declare_batch(
                ext_sets, validate, ext_target.values.index, params.batch, levels=batch_levels
            )
            notes.extend(f"{name} (external): {note}" for note in ext_notes)
            external = (ext_sets, ext_target)
        splits = _outer_splits(target.kind, params, params.outer_repeats, y, params.seed)
        idx = _bootstrap_indices(y, target.kind, params.n_bootstrap, params.seed + 1)
        boots: dict[str, np.ndarray] = {}
        rows: dict[str, dict] = {}
        for fset in sets.values():
            t0 = time.perf_counter()
            procedure = _Procedure(fset, target.kind, params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                predictions, prevalence, coefficients = _cross_validate(
                    procedure, y, splits, params.seed, keep_models=True
                )
                observed = headline(y, predictions[: params.permutation_repeats], target.kind)
                null = (
                    _run_permutations(procedure, y, params)
                    if params.n_permutations and fset.name != "constant"
                    else np.array([])
                )
            scores = np.zeros_like(predictions) if fset.name == "constant" else predictions
            row, boots[fset.name] = _metrics(
                y, predictions, _cutoffs(params, prevalence), target.kind, idx, scores
            )
            p = (1 + np.sum(null >= observed - 1e-12)) / (1 + len(null)) if len(null) else np.nan
            if fset.name == "constant":
                p = 1.0
            rows[fset.name] = {
                "target": name,
                "kind": target.kind,
                "feature_set": fset.name,
                "cohort": "development",
                "n_features": len(fset.features),
                **row,
                "threshold": str(params.threshold),
                "permutation_statistic": observed,
                "permutation_p": float(p),
                "n_permutations": int(len(null)),
            }
            permutation_rows.extend(
                {"target": name, "feature_set": fset.name, "statistic": float(v)} for v in null
            )
            importance_tables.append(_importance(coefficients, name, fset.name))
            if target.kind == "binary":
                curve, low, high = _roc_curves(y, scores, idx[:BAND_BOOTSTRAP])
                roc_rows.extend(_roc_records(name, fset.name, "development", curve, low, high))
                calibration = _calibration(y, predictions.mean(axis=0))
                calibration_rows.extend(
                    {"target": name, "feature_set": fset.name, "cohort": "development", **r}
                    for r in calibration.to_dict("records")
                )
            if external is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitted = procedure.fit(fset.design, y, params.seed)
                    ext_row, ext_calibration, ext_curves = _external_rows(
                        procedure, fitted, y, external, params
                    )
                if ext_row is not None:
                    summary_rows.append(
                        {
                            "target": name,
                            "kind": target.kind,
                            "feature_set": fset.name,
                            "cohort": "external",
                            "n_features": rows[fset.name]["n_features"],
                            **ext_row,
                            "threshold": str(params.threshold),
                        }
                    )
                    if ext_curves is not None:
                        roc_rows.extend(_roc_records(name, fset.name, "external", *ext_curves))
                        calibration_rows.extend(
                            {"target": name, "feature_set": fset.name, "cohort": "external", **r}
                            for r in ext_calibration.to_dict("records")
                        )
            say(
                f"{name} ~ {fset.name}: "
                + _format_row(rows[fset.name])
                + f" ({time.perf_counter() - t0:.1f} s)"
            )
        _add_baseline_differences(rows, boots)
        summary_rows.extend(rows.values())
    summary = pd.DataFrame(summary_rows)
    order = {name: position for position, name in enumerate(FEATURE_SETS)}
    if not summary.empty:
        summary = summary.sort_values(
            ["target", "cohort", "feature_set"],
            key=lambda c: c.map(order) if c.name == "feature_set" else c,
        ).reset_index(drop=True)
    importance = [t for t in importance_tables if not t.empty]
    result = PredictionResult(
        summary=summary,
        roc=pd.DataFrame(roc_rows),
        calibration=pd.DataFrame(calibration_rows),
        importance=pd.concat(importance, ignore_index=True) if importance else pd.DataFrame(),
        permutations=pd.DataFrame(permutation_rows),
        params={
            **asdict(params),
            "threshold": str(params.threshold),
            "targets": list(targets),
            "feature_sets": list(feature_sets_),
            "size_feature": size_feature or find_size_feature(adata),
            "clinical_columns": list(clinical_columns) if clinical_columns else None,
            "validated": validate is not None,
            "seconds": round(time.perf_counter() - started, 1),
        },
        warnings=notes,
    )
    for note in notes:
        logger.warning(note)
    if key_added:
        store_result(adata, result, key=key_added)
    return result


def _roc_records(target, name, cohort, curve, low, high) -> list[dict]:
    return [
        {
            "target": target,
            "feature_set": name,
            "cohort": cohort,
            "fpr": float(f),
            "tpr": float(t),
            "tpr_low": float(lo),
            "tpr_high": float(hi),
        }
        for f, t, lo, hi in zip(ROC_GRID, curve, low, high, strict=True)
    ]


def _add_baseline_differences(rows: dict[str, dict], boots: dict[str, np.ndarray]) -> None:
    """Paired bootstrap difference of every set to the best non-constant baseline."""
    metric = "auc" if "auc" in next(iter(rows.values())) else "r2"
    baselines = [n for n in BASELINE_SETS if n in rows and n != "constant"] or [
        n for n in BASELINE_SETS if n in rows
    ]
    if not baselines:
        return
    best = max(baselines, key=lambda n: rows[n][metric])
    for name, row in rows.items():
        difference = boots[name] - boots[best]
        low, high = np.percentile(difference, [2.5, 97.5])
        row |= {
            "best_baseline": best,
            "difference": row[metric] - rows[best][metric],
            "difference_low": float(low),
            "difference_high": float(high),
        }


def _format_row(row: dict) -> str:
    if "auc" in row:
        return (
            f"AUC {row['auc']:.3f} [{row['auc_low']:.3f}, {row['auc_high']:.3f}], "
            f"permutation p {row['permutation_p']:.3g}"
        )
    return (
        f"R² {row['r2']:.3f} [{row['r2_low']:.3f}, {row['r2_high']:.3f}], "
        f"permutation p {row['permutation_p']:.3g}"
    )


# ---------------------------------------------------------------------------------------------
# Plain-language verdict and storage


def verdict(summary: pd.DataFrame, target: str, *, cohort: str = "development") -> str:
    """One sentence: does imaging beat the baselines for ``target``, and by how much."""
    rows = summary[(summary["target"] == target) & (summary["cohort"] == cohort)]
    if rows.empty:
        return f"No {cohort} results for {target}."
    metric = "auc" if "auc" in rows.columns and rows["auc"].notna().any() else "r2"
    label = "AUC" if metric == "auc" else "R²"
    imaging = rows[rows["feature_set"].isin(IMAGING_SETS)]
    baselines = rows[rows["feature_set"].isin(BASELINE_SETS)]
    if imaging.empty or baselines.empty:
        return f"{target}: imaging and baselines are not both available."
    best = imaging.loc[imaging[metric].idxmax()]
    non_constant = baselines[baselines["feature_set"] != "constant"]
    reference = non_constant if not non_constant.empty else baselines
    base = reference.loc[reference[metric].idxmax()]
    text = (
        f"For {target}, the best imaging set ({FEATURE_SET_LABELS[best['feature_set']].lower()}) "
        f"reaches {label} {best[metric]:.2f} (95% CI {best[metric + '_low']:.2f}–"
        f"{best[metric + '_high']:.2f}"
    )
    if "permutation_p" in best and pd.notna(best.get("permutation_p")):
        text += f", permutation p = {best['permutation_p']:.2g}"
    text += f") against {base[metric]:.2f} for {FEATURE_SET_LABELS[base['feature_set']].lower()}"
    difference = best[metric] - base[metric]
    if pd.notna(best.get("difference_low")) and best.get("best_baseline") == base["feature_set"]:
        low, high = best["difference_low"], best["difference_high"]
        text += f": a difference of {difference:+.2f} (95% CI {low:+.2f} to {high:+.2f}). "
        if low > 0:
            text += "Imaging beats the baselines."
        elif high < 0:
            text += "The baseline does better than imaging."
        else:
            text += "Imaging does not clearly beat the baselines (the CI includes 0)."
    else:
        text += f": a difference of {difference:+.2f}."
    return text


def store_result(adata, result: PredictionResult, *, key: str = PREDICT_KEY) -> None:
    """Put ``result`` into ``adata.uns["radmap"][key]`` (tables, params, warnings), h5ad-safe.

    The Predict page reads this slot when the bundle has no ``.predict.json`` next to it
    (:func:`stored_result`).
    """
    adata.uns.setdefault(UNS_KEY, {})[key] = {
        **{name: _h5ad_table(table) for name, table in result.tables().items()},
        "params": json.dumps(result.params, default=str),
        "warnings": [str(w) for w in result.warnings],
    }


def _h5ad_table(table: pd.DataFrame) -> pd.DataFrame:
    table = table.reset_index(drop=True)
    table.index = table.index.astype(str)
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].astype(str)
    return table


def stored_result(adata, *, key: str = PREDICT_KEY) -> PredictionResult | None:
    """The result :func:`store_result` put into the bundle, or ``None`` when there is none."""
    slot = adata.uns.get(UNS_KEY, {}).get(key)
    if not isinstance(slot, dict) or not isinstance(slot.get("summary"), pd.DataFrame):
        return None
    params = slot.get("params")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError:
            params = {}
    tables = {
        name: (
            slot[name].reset_index(drop=True)
            if isinstance(slot.get(name), pd.DataFrame)
            else pd.DataFrame()
        )
        for name in PredictionResult.TABLES
    }
    return PredictionResult(
        **tables,
        params=params if isinstance(params, dict) else {},
        warnings=[str(w) for w in slot.get("warnings", [])],
    )


def sidecar_path(bundle_path: str | Path) -> Path:
    """Where ``radmap predict`` writes its result for a bundle: ``<bundle>.predict.json``."""
    bundle_path = Path(bundle_path)
    return bundle_path.with_name(bundle_path.stem + SIDECAR_SUFFIX)


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_value(value.item())
    return value


def write_predictions(
    result: PredictionResult, path: str | Path, *, bundle_path: str | Path | None = None
) -> Path:
    """Write the result as JSON (atomically), with the SHA-256 of the bundle it came from."""
    document = {
        "format": FORMAT,
        "bundle": Path(bundle_path).name if bundle_path else None,
        "bundle_sha256": file_sha256(bundle_path) if bundle_path else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": result.params,
        "warnings": result.warnings,
        "tables": {
            name: [
                {key: _json_value(value) for key, value in record.items()}
                for record in table.to_dict("records")
            ]
            for name, table in result.tables().items()
        },
    }
    return atomic_write_text(path, json.dumps(document, indent=1, allow_nan=False))


def read_predictions(path: str | Path) -> tuple[PredictionResult, dict]:
    """Read a result written by :func:`write_predictions`: the tables and the file's header."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"prediction results not found: {path}; run `radmap predict` first")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path.name}: not a radmap prediction file ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(f"{path.name}: not a {FORMAT} file; run `radmap predict` again")
    tables = {
        name: pd.DataFrame(document.get("tables", {}).get(name) or [])
        for name in PredictionResult.TABLES
    }
    result = PredictionResult(
        **tables, params=document.get("params", {}), warnings=document.get("warnings", [])
    )
    header = {key: document.get(key) for key in ("bundle", "bundle_sha256", "created")}
    return result, header


def run_predict(args, *, progress: Callable[[str], None]) -> int:
    """``radmap predict``: read the bundle(s), predict, write the JSON, print the summary."""
    from .io import load_bundle

    threshold: str | float = args.threshold
    if threshold != "prevalence":
        try:
            threshold = float(threshold)
        except ValueError as exc:
            raise InputError(
                f"--threshold must be 'prevalence' or a number in (0, 1), got {args.threshold}"
            ) from exc
    params = PredictParams(
        model=args.model,
        outer_splits=args.outer_splits,
        outer_repeats=args.outer_repeats,
        inner_splits=args.inner_splits,
        n_permutations=args.permutations,
        permutation_repeats=args.permutation_repeats,
        max_features=args.max_features,
        threshold=threshold,
        cut=args.cut,
        seed=args.seed,
        n_jobs=max(1, args.jobs),
        batch=getattr(args, "batch", None),
    )
    adata = load_bundle(args.bundle)
    external = load_bundle(args.validate) if args.validate else None
    out = args.out or sidecar_path(args.bundle)
    if not out.parent.is_dir():
        raise InputError(f"cannot write {out}: folder {out.parent} does not exist")
    progress(f"predict: {args.bundle.name}, {params.outer_splits}x{params.outer_repeats} nested CV")
    result = predict(
        adata,
        targets=args.targets,
        feature_sets_=args.feature_sets or FEATURE_SETS,
        params=params,
        size_feature=args.size_feature,
        clinical_columns=args.clinical_columns,
        validate=external,
        progress=progress,
        key_added=None,
    )
    result.params["validation_bundle"] = args.validate.name if args.validate else None
    write_predictions(result, out, bundle_path=args.bundle)
    progress(f"wrote {out} ({result.params['seconds']} s)")
    columns = [
        c
        for c in (
            "target",
            "cohort",
            "feature_set",
            "n",
            "auc",
            "auc_low",
            "auc_high",
            "r2",
            "r2_low",
            "r2_high",
            "permutation_p",
            "balanced_accuracy",
            "brier",
        )
        if c in result.summary.columns
    ]
    print(result.summary[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for target in dict.fromkeys(result.summary["target"]):
        print(verdict(result.summary, target))
    return 0
