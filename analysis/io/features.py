"""Turning table columns into typed imaging features (shared by the imaging-table and AIM readers)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping

import numpy as np
import pandas as pd

from ..bundle import FEATURE_SOURCES
from ..validate import (
    InputError,
    check_types,
    infer_feature_type,
    level_order,
    normalise_id,
    select_tcga_samples,
    tcga_parts,
)
from .common import _DECIMAL_COMMA, _DECIMAL_COMMA_HINT, ID_COLUMN_KEYS, _examples, _Notes
from .tables import _parse_cells

_FEATURE_TABLE_COLUMNS = ["label", "type", "source", "group", "levels", "order", "parent"]


def feature_id(label: str) -> str:
    """The feature ID for a column label: whitespace collapsed, ``/`` replaced by ``_``."""
    return " ".join(str(label).split()).replace("/", "_")


class _Dropped(Exception):
    """A column that cannot be a feature; the message says why."""


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _column_values(
    raw: pd.Series,
    *,
    name: str,
    declared: str | None,
    notes: _Notes,
    cells: tuple[np.ndarray, np.ndarray] | None = None,
    drop_constant: bool = True,
    drop_free_text: bool = True,
    declared_levels: list[str] | None = None,
) -> tuple[pd.Series, str, str]:
    """One text column as a typed feature: float64 for continuous, else a Categorical.

    ``cells`` are the column's missing mask and numbers from :func:`_parse_cells` when
    already computed; ``declared_levels`` an explicit level order from the config. Returns
    the values, the type and how the level order was chosen
    (:data:`analysis.validate.ORDER_SOURCES`). Raises _Dropped for an empty, constant or
    free-text column.
    """
    missing, numbers = cells if cells is not None else _parse_cells(raw.to_frame())
    missing, numbers = missing.ravel(), numbers.ravel()
    n_present = int((~missing).sum())
    if n_present == 0:
        raise _Dropped("no values")
    is_number = ~np.isnan(numbers)
    n_numeric = int(is_number.sum())

    if n_numeric == n_present:
        infinite = np.isinf(numbers)
        if infinite.any():
            notes.warn(f"column {name!r}: {int(infinite.sum())} infinite values set to missing")
            numbers = np.where(infinite, np.nan, numbers)
        distinct = np.unique(numbers[np.isfinite(numbers)])
        if distinct.size == 0:
            raise _Dropped("no finite values")
        if drop_constant and distinct.size == 1:
            raise _Dropped("constant")
        kind = declared or "continuous"
        if kind == "continuous":
            return pd.Series(numbers, index=raw.index, dtype=np.float64), kind, ""
        labels = [_format_number(v) if np.isfinite(v) else None for v in numbers]
        levels, how = [_format_number(v) for v in distinct], "numeric"
        if declared_levels is not None:
            levels, how = level_order(
                pd.Series(labels).dropna(), kind, name=name, declared=declared_levels
            )
        _check_declared(kind, levels, name, notes)
        values = pd.Categorical(labels, categories=levels, ordered=kind == "ordinal")
        return pd.Series(values, index=raw.index), kind, how

    text = raw.astype(str).str.split().str.join(" ").mask(missing)
    present = text.dropna()
    decimal_comma = present.str.fullmatch(_DECIMAL_COMMA)
    if (
        declared in (None, "continuous")
        and decimal_comma.any()
        and n_numeric + decimal_comma.sum() >= 0.9 * n_present
    ):
        example = present[decimal_comma]
        raise InputError(
            f"{notes.name}: column {name!r} holds {example.iloc[0]!r} (patient "
            f"{example.index[0]!r}, {len(example)} such cells): {_DECIMAL_COMMA_HINT}"
        )
    if declared == "continuous" or (
        declared is None and n_numeric >= 10 and n_numeric >= 0.9 * n_present
    ):
        bad = text[~missing & ~is_number]
        problem = "is declared continuous but holds" if declared else "is numeric except"
        raise InputError(
            f"{notes.name}: column {name!r} {problem} {bad.iloc[0]!r} (patient "
            f"{bad.index[0]!r}, {len(bad)} such cells); fix or blank those cells, or declare the "
            f"column's type"
        )
    n_distinct = present.nunique()
    if drop_constant and n_distinct == 1:
        raise _Dropped(f"single category {present.iloc[0]!r}")
    if drop_free_text and declared is None and _is_free_text(n_distinct, n_present):
        raise _Dropped(f"free text or identifiers ({n_distinct} distinct values)")
    if drop_free_text and declared is None and _is_prose(present):
        raise _Dropped(f"prose ({n_distinct} distinct sentences)")
    kind = declared or infer_feature_type(present.rename(name))
    if declared_levels is not None and not declared:
        kind = "ordinal" if present.nunique() > 2 else "binary"
    levels, how = level_order(present, kind, name=name, declared=declared_levels)
    _check_declared(kind, levels, name, notes)
    values = pd.Categorical(text, categories=levels, ordered=kind == "ordinal")
    return pd.Series(values, index=raw.index), kind, how


MULTI_VALUE_SEPARATOR = "|"


def finding_indicators(
    label: str, values: list[list[str]], index: pd.Index
) -> dict[str, pd.Series]:
    """One ``absent`` / ``present`` text column per finding of a multi-valued field.

    ``values`` holds each patient's findings (an empty list = no value: missing in every
    indicator). Columns are named ``"<label>: <finding>"``, findings sorted.
    """
    annotated = pd.Series([bool(v) for v in values], index=index)
    columns = {}
    for finding in sorted({finding for v in values for finding in v}):
        present = pd.Series([finding in v for v in values], index=index)
        columns[f"{label}: {finding}"] = present.map({True: "present", False: "absent"}).where(
            annotated, ""
        )
    return columns


def _is_free_text(n_distinct: int, n_present: int) -> bool:
    """Text with too many distinct values to be categories: more than max(20, n/2), or a
    different value for each of at least 10 patients."""
    return n_distinct > max(20, n_present / 2) or (n_present >= 10 and n_distinct == n_present)


PROSE_MIN_WORDS = 5
"""Median words per value from which a text column is prose (comments, reports)."""
PROSE_MIN_DISTINCT = 5
PROSE_SENTENCE_WORDS = 8
"""Median words from which a text column is prose however often its values repeat."""
PROSE_MIN_DISTINCT_FRACTION = 0.3
"""Shorter texts are prose only when they rarely repeat: a label of five words shared by many
patients ("upper lobe of right lung") is a category, not a comment."""


def _is_prose(present: pd.Series) -> bool:
    """Long sentences rather than categories, such as a radiologist's comments: at least
    :data:`PROSE_MIN_DISTINCT` distinct values with a median of :data:`PROSE_SENTENCE_WORDS`
    words or more, or of :data:`PROSE_MIN_WORDS` or more when the values differ for at least
    30 % of the patients (``|``-separated lists count per item)."""
    n_distinct = present.nunique()
    if n_distinct < PROSE_MIN_DISTINCT:
        return False
    parts = present.astype(str).str.split("|").explode()  # multi-valued lists are not prose
    words = float(parts.str.split().str.len().median())
    rarely_repeated = n_distinct >= PROSE_MIN_DISTINCT_FRACTION * len(present)
    return words >= PROSE_SENTENCE_WORDS or (words >= PROSE_MIN_WORDS and rarely_repeated)


def _check_declared(kind: str, levels: list[str], name: str, notes: _Notes) -> None:
    if kind == "binary" and len(levels) > 2:
        raise InputError(
            f"{notes.name}: column {name!r} is declared binary but has {len(levels)} values "
            f"({_examples(levels)}); declare it categorical or ordinal"
        )


def _features_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["id", *_FEATURE_TABLE_COLUMNS]).set_index("id")
    table.index.name = None
    return table.astype(str)


def _levels_text(values: pd.Series) -> str:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "|".join(map(str, values.cat.categories))
    return ""


def _build_features(
    columns: Mapping[str, pd.Series],
    *,
    index: pd.Index,
    types: Mapping[str, str] | None,
    source_of: Callable[[str, bool], str],
    group_of: Callable[[str, bool], str],
    notes: _Notes,
    levels: Mapping[str, list[str]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Typed feature frame, features table and dropped columns (name -> reason).

    ``levels``: feature name (label or ID) -> explicit level order, lowest first; a text
    feature given one without a declared type is ordinal (binary with two values).
    """
    ids = {name: feature_id(name) for name in columns}
    clashes = pd.Series(list(ids.values()))
    if clashes.duplicated().any():
        clash = clashes[clashes.duplicated()].iloc[0]
        names = [n for n, i in ids.items() if i == clash]
        raise InputError(
            f"{notes.name}: columns {_examples(names)} all become feature ID {clash!r}; rename one"
        )
    known = {*ids, *ids.values()}
    types = {name: kind for name, kind in (types or {}).items() if name in known}
    check_types(types, known)
    declared_by_id = {ids.get(name, name): kind for name, kind in types.items()}
    levels_by_id = {
        ids.get(name, name): list(order) for name, order in (levels or {}).items() if name in known
    }

    values: dict[str, pd.Series] = {}
    rows: list[dict] = []
    dropped: dict[str, str] = {}
    missing, numbers = _parse_cells(pd.DataFrame(dict(enumerate(columns.values())), index=index))
    for position, (name, raw) in enumerate(columns.items()):
        fid = ids[name]
        try:
            series, kind, how = _column_values(
                raw,
                name=name,
                declared=declared_by_id.get(fid),
                notes=notes,
                cells=(missing[:, position], numbers[:, position]),
                declared_levels=levels_by_id.get(fid),
            )
        except _Dropped as reason:
            dropped[name] = str(reason)
            continue
        numeric = kind == "continuous" or not isinstance(series.dtype, pd.CategoricalDtype)
        values[fid] = series
        rows.append(
            {
                "id": fid,
                "label": name,
                "type": kind,
                "source": source_of(name, numeric),
                "group": group_of(name, numeric),
                "levels": _levels_text(series),
                "order": how if kind in ("ordinal", "binary") else "",
                "parent": "",
            }
        )
    by_reason: dict[str, list[str]] = {}
    for name, reason in dropped.items():
        key = reason.split(" ")[0] if reason.startswith(("single", "free", "prose")) else reason
        by_reason.setdefault(key, []).append(name)
    labels = {
        "constant": "constant",
        "no values": "all missing",
        "no finite values": "all missing or infinite",
        "single": "a single category",
        "free": "free text or identifiers (too many distinct values)",
        "prose": "free text (long sentences such as comments; give a type under "
        "[inputs.feature_types] in the config to keep one)",
    }
    for key, names in by_reason.items():
        notes.warn(f"dropped {len(names)} features that are {labels[key]}: {_examples(names, 10)}")
    frame = pd.DataFrame(values, index=index)
    return frame, _features_table(rows), dropped


def _find_id_column(
    header: list[str],
    id_column: str | None,
    name: str,
    body: pd.DataFrame | None = None,
    match_ids: Collection[str] | None = None,
    notes: _Notes | None = None,
) -> int:
    """Position of the patient ID column.

    ``id_column`` names it. Otherwise the candidates are the columns named like an ID
    (:data:`ID_COLUMN_KEYS`, in that order of preference), columns of TCGA barcodes and the
    first column; with ``match_ids`` (the IDs of the other sources) the candidate whose
    normalised values match most of them wins, and the choice is reported when there was one.
    """
    if id_column is not None:
        wanted = " ".join(str(id_column).split())
        for position, column in enumerate(header):
            if column == wanted:
                return position
        for position, column in enumerate(header):
            if column.lower() == wanted.lower():
                return position
        raise InputError(
            f"{name}: no ID column {id_column!r} (--id-column); columns are {_examples(header, 8)}"
        )
    keys = [re.sub(r"[^a-z0-9]", "", column.lower()) for column in header]
    candidates = [keys.index(wanted) for wanted in ID_COLUMN_KEYS if wanted in keys]
    if body is not None:
        for position in range(len(header)):
            values = body.iloc[:20, position]
            if position not in candidates and values.map(tcga_parts).notna().mean() >= 0.5:
                candidates.append(position)
    if 0 not in candidates:
        candidates.append(0)
    if match_ids is None or body is None or len(candidates) == 1:
        return candidates[0]
    wanted_ids = set(match_ids)
    scores = {
        position: len(set(body.iloc[:, position].map(normalise_id)) & wanted_ids)
        for position in candidates
    }
    best = max(candidates, key=lambda position: scores[position])
    contested = best != candidates[0] or sum(score > 0 for score in scores.values()) > 1
    if notes is not None and scores[best] and contested:
        others = ", ".join(f"{header[p]!r}: {scores[p]}" for p in candidates if p != best)
        notes.warn(
            f"ID column {header[best]!r} chosen: {scores[best]} of its IDs match the other "
            f"sources ({others}); pass --id-column to choose another"
        )
    return best


def _ids_met(raw_ids: pd.Series) -> dict[str, str]:
    """Every ID as written -> its patient ID, kept rows or not (for the pseudonymisation)."""
    return {str(raw): patient for raw in raw_ids if (patient := normalise_id(raw))}


def _patient_index(raw_ids: pd.Series, column: str, notes: _Notes) -> tuple[pd.Index, np.ndarray]:
    """Normalised patient IDs and the mask of rows kept; duplicates raise.

    Rows without an ID are dropped, and so are TCGA normal-tissue samples and extra tumour
    samples of one patient (:func:`analysis.validate.select_tcga_samples`).
    """
    ids = raw_ids.map(normalise_id)
    has_id = (ids != "").to_numpy()
    if not has_id.all():
        notes.warn(f"dropped {int((~has_id).sum())} rows without a patient ID in {column!r}")
    selection = select_tcga_samples(raw_ids.tolist())
    for message in selection.messages:
        notes.warn(message)
    has_id &= selection.keep
    ids = ids[has_id]
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise InputError(
            f"{notes.name}: duplicated patient ID {duplicated.iloc[0]!r} in column {column!r}; "
            f"each patient must have one row"
        )
    return pd.Index(ids.tolist()), has_id


def _check_source(source: str | None) -> None:
    if source is not None and source not in FEATURE_SOURCES:
        raise InputError(f"source must be one of {', '.join(FEATURE_SOURCES)}, not {source!r}")


def _check_unique_header(header: list[str], name: str) -> None:
    seen = pd.Index(header)
    if seen.duplicated().any():
        raise InputError(
            f"{name}: column name {seen[seen.duplicated()][0]!r} occurs more than once; "
            f"rename the columns"
        )
