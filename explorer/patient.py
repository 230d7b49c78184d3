"""One patient against the cohort: the queries behind the Patient page.

Pure functions over a :class:`explorer.data.BundleData`. Every value of the patient comes
with where it sits in the cohort (percentile, cohort quartiles, share of the same
category). Only the patient ID of the bundle is shown (it came from the inputs).
"""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import pandas as pd

from ..analysis import bundle as B
from ..analysis.validate import InputError
from .data import BundleData

HUBS_PER_MODULE = 3
KEY_RADIOMIC = 12
MAX_OTHER = 40
VIEWER_PLACEHOLDER = "{patient}"
MEASURE_COLUMNS = (
    "section",
    "name",
    "key",
    "value",
    "percentile",
    "z",
    "mean",
    "sd",
    "q1",
    "median",
    "q3",
    "low",
    "high",
    "n",
)


def patient_ids(data: BundleData) -> list[str]:
    """The bundle's patient IDs, as given in the inputs."""
    return [str(patient) for patient in data.adata.obs_names]


def check_patient(data: BundleData, patient: str | None) -> str:
    """``patient`` if the bundle has it; an :class:`InputError` otherwise."""
    if patient is None or str(patient) not in data.adata.obs_names:
        raise InputError(f"patient {str(patient)[:60]!r} is not in this bundle")
    return str(patient)


def viewer_link(template: str | None, patient: str) -> str | None:
    """The image viewer URL of ``patient`` from a ``{patient}`` template (None: no template)."""
    if not template or VIEWER_PLACEHOLDER not in template:
        return None
    return template.replace(VIEWER_PLACEHOLDER, quote(str(patient), safe=""))


def percentile_of(cohort: np.ndarray, value: float) -> float:
    """Percent of the cohort below ``value``, ties counted half (mid-rank percentile)."""
    cohort = cohort[np.isfinite(cohort)]
    if not len(cohort) or not np.isfinite(value):
        return float("nan")
    below = np.count_nonzero(cohort < value)
    tied = np.count_nonzero(cohort == value)
    return 100.0 * (below + 0.5 * tied) / len(cohort)


def _measure_row(section: str, name: str, key: str, cohort: np.ndarray, value: float) -> dict:
    finite = cohort[np.isfinite(cohort)].astype(float)
    row = {"section": section, "name": name, "key": key, "value": float(value), "n": len(finite)}
    if not len(finite):
        return row | dict.fromkeys(MEASURE_COLUMNS[4:-1], float("nan"))
    mean, sd = float(finite.mean()), float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    return row | {
        "percentile": percentile_of(finite, value),
        "z": (value - mean) / sd if sd > 0 and np.isfinite(value) else float("nan"),
        "mean": mean,
        "sd": sd,
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "low": float(finite.min()),
        "high": float(finite.max()),
    }


def key_radiomic_features(data: BundleData, *, n: int = KEY_RADIOMIC) -> list[str]:
    """The ``n`` radiomic features with the strongest module links (lowest q)."""
    features = data.features
    candidates = features[(features["source"] == "radiomic") & (features["type"] == "continuous")]
    if candidates.empty:
        return []
    associations = data.associations()
    associations = associations[associations["feature"].isin(candidates.index)]
    if associations.empty:
        return list(candidates.index[:n])
    best = associations.groupby("feature")[["q", "p"]].min().sort_values(["q", "p"])
    return [str(feature) for feature in best.index[:n]]


def patient_measures(data: BundleData, patient: str) -> pd.DataFrame:
    """The patient's continuous values with the cohort's distribution of each.

    Rows: each module eigengene, the hub genes of each module (expression), the continuous
    non-radiomic features (semantic, clinical; up to :data:`MAX_OTHER`) and the key
    radiomic features (:func:`key_radiomic_features`).
    Columns :data:`MEASURE_COLUMNS`: ``value`` (the patient's), ``percentile`` (0-100,
    mid-rank), ``z`` (in cohort SDs), the cohort's ``mean``, ``sd``, quartiles, ``low`` /
    ``high`` (range) and ``n`` (patients with a value). The patient's value can be missing.
    """
    patient = check_patient(data, patient)
    key = {"patient": patient}
    return data.memo("patient-measures", key, lambda: _measures(data, patient)).copy()


def _measures(data: BundleData, patient: str) -> pd.DataFrame:
    position = data.adata.obs_names.get_loc(patient)
    rows = []
    for module in data.module_names:
        if module in data.eigengenes.columns:
            cohort = data.eigengenes[module].to_numpy(dtype=float)
            rows.append(_measure_row("Module eigengene", module, module, cohort, cohort[position]))
    hubs = [
        (module, canonical)
        for module in data.module_names
        for gene in data.hub_genes(module, n=HUBS_PER_MODULE)
        if (canonical := data.canonical_gene(gene)) is not None
    ]
    expression = data.expressions([gene for _, gene in hubs])
    for (module, gene), cohort in zip(hubs, expression.T, strict=True):
        name = f"{gene} ({module})"
        rows.append(_measure_row("Hub gene", name, gene, cohort, cohort[position]))
    features = data.features
    others = features[(features["source"] != "radiomic") & (features["type"] == "continuous")]
    chosen = [
        ("Semantic feature" if source == "semantic" else "Other imaging feature", feature)
        for feature, source in others["source"].iloc[:MAX_OTHER].items()
    ]
    chosen += [("Radiomic feature", feature) for feature in key_radiomic_features(data)]
    for section, feature in chosen:
        if feature not in data.imaging.columns:
            continue
        cohort = pd.to_numeric(data.imaging[feature], errors="coerce").to_numpy(dtype=float)
        rows.append(
            _measure_row(section, data.feature_label(feature), feature, cohort, cohort[position])
        )
    return pd.DataFrame(rows, columns=list(MEASURE_COLUMNS))


def patient_categories(data: BundleData, patient: str) -> pd.DataFrame:
    """The patient's categorical imaging features and marker statuses against the cohort.

    Columns ``kind`` (``mutation`` or ``imaging``), ``name``, ``key``, ``value`` (the
    patient's level, ``"missing"`` when absent), ``share`` (percent of the cohort's known
    values at the same level), ``n`` (patients with a known value) and ``levels`` (each
    level with its count, in order).
    """
    patient = check_patient(data, patient)
    key = {"patient": patient}
    return data.memo("patient-categories", key, lambda: _categories(data, patient)).copy()


def _category_columns(data: BundleData) -> list[tuple[str, str, str, pd.Series]]:
    columns = [
        ("mutation", f"{marker} status", marker, data.adata.obs[marker])
        for marker in data.mutations
    ]
    features = data.features
    categorical = features[(features["source"] == "semantic") & (features["type"] != "continuous")]
    columns += [
        ("imaging", data.feature_label(feature), feature, data.imaging[feature])
        for feature in categorical.index
        if feature in data.imaging.columns
    ]
    return columns


def _cohort_levels(data: BundleData) -> list[dict]:
    """Per categorical column: its level counts in order (the same for every patient)."""
    summaries = []
    for kind, name, key, column in _category_columns(data):
        known = column.dropna().astype(str)
        counts = known.value_counts()
        if isinstance(column.dtype, pd.CategoricalDtype):
            order = [str(level) for level in column.cat.categories if str(level) in counts.index]
        else:
            order = sorted(counts.index)
        summaries.append(
            {
                "kind": kind,
                "name": name,
                "key": key,
                "counts": counts.to_dict(),
                "n": len(known),
                "levels": ", ".join(f"{level} {counts[level]}" for level in order),
            }
        )
    return summaries


def _categories(data: BundleData, patient: str) -> pd.DataFrame:
    rows = []
    summaries = data.memo("patient-cohort-levels", {}, lambda: _cohort_levels(data))
    for summary, (_, _, _, column) in zip(summaries, _category_columns(data), strict=True):
        raw = column.loc[patient]
        value = "missing" if pd.isna(raw) else str(raw)
        count = summary["counts"].get(value, 0)
        known = value != "missing" and summary["n"]
        rows.append(
            {
                "kind": summary["kind"],
                "name": summary["name"],
                "key": summary["key"],
                "value": value,
                "share": 100.0 * count / summary["n"] if known else np.nan,
                "n": summary["n"],
                "levels": summary["levels"],
            }
        )
    return pd.DataFrame(rows, columns=["kind", "name", "key", "value", "share", "n", "levels"])


def patient_survival(data: BundleData, patient: str) -> dict | None:
    """The patient's follow-up against the cohort's Kaplan–Meier curve (None: no survival).

    Keys ``time`` and ``event`` (the patient's; NaN when unknown), ``curve`` (the whole
    cohort's Kaplan–Meier table), ``at_time`` (the cohort's survival at the patient's
    time), ``percentile`` (of the patient's follow-up time among all follow-up times) and
    ``median`` (the cohort's median survival time, NaN if not reached).
    """
    patient = check_patient(data, patient)
    if not data.has_survival:
        return None
    from ..analysis.survival import kaplan_meier

    obs = data.adata.obs
    time = pd.to_numeric(obs[B.SURVIVAL_TIME], errors="coerce")
    event = pd.to_numeric(obs[B.SURVIVAL_EVENT], errors="coerce")
    curve = data.memo("cohort-km", {}, lambda: kaplan_meier(time, event))
    own_time, own_event = float(time.loc[patient]), float(event.loc[patient])
    steps = curve.sort_values("time")
    at_time = (
        float(steps["survival"].to_numpy()[np.searchsorted(steps["time"], own_time, "right") - 1])
        if np.isfinite(own_time)
        else float("nan")
    )
    below_half = steps[steps["survival"] <= 0.5]
    return {
        "time": own_time,
        "event": own_event,
        "curve": curve,
        "at_time": at_time,
        "percentile": percentile_of(time.to_numpy(dtype=float), own_time),
        "median": float(below_half["time"].iloc[0]) if not below_half.empty else float("nan"),
    }
