"""Reading imaging feature tables (PyRadiomics output, semantic spreadsheets) and combining sources."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..validate import InputError
from .common import PYRADIOMICS_FEATURE, PathLike, ReadResult, _examples, _Notes, _reading, logger
from .features import (
    _FEATURE_TABLE_COLUMNS,
    MULTI_VALUE_SEPARATOR,
    _build_features,
    _check_source,
    _check_unique_header,
    _find_id_column,
    _ids_met,
    _patient_index,
    finding_indicators,
)
from .tables import _read_table


def read_imaging(
    path: PathLike,
    *,
    types: Mapping[str, str] | None = None,
    levels: Mapping[str, list[str]] | None = None,
    source: str | None = None,
    id_column: str | None = None,
    match_ids: Collection[str] | None = None,
) -> ReadResult:
    """Read a table of imaging features, one row per patient.

    PyRadiomics output is recognised by its feature names ``<imagetype>_<class>_<name>``
    (e.g. ``original_shape_Elongation``, ``wavelet-LLH_glcm_Idm``): ``diagnostics_*``
    columns are dropped and features are grouped as ``<imagetype>_<class>``. Otherwise
    numeric columns are continuous features (group and source ``radiomic``) and text columns
    semantic categorical features (group and source ``semantic``), typed by
    :func:`analysis.validate.infer_feature_type`. Features that are all missing, constant,
    single-category, or text with more than ``max(20, n/2)`` distinct values or a
    different value for each of at least 10 patients (free text, file paths) are dropped with a warning naming them.

    Parameters
    ----------
    path
        CSV / TSV / XLSX / Parquet.
    types
        Feature name (column label or feature ID) -> type, overriding inference. A numeric
        column declared ordinal / binary / categorical becomes a Categorical with its numbers,
        in numeric order, as categories. Names that are not columns of this table are ignored,
        so one mapping can serve several readers; check it against the combined table with
        :func:`analysis.validate.check_types`. Unknown type names raise.
    levels
        Feature name -> its levels in order, lowest first (``feature_levels`` in the config):
        overrides the shipped vocabularies; a text feature declared ordinal needs one unless
        its values fit a known ordered scale (see :func:`analysis.validate.level_order`).
    source
        Feature source for every column (``semantic``, ``radiomic`` or ``clinical``) instead of
        the rule above.
    id_column
        The patient ID column; default: a column named like ``ID``, ``Patient ID``, ``Case
        ID``, ``PatientID``, ``Subject``, ``bcr_patient_barcode``..., else the first column.
    match_ids
        Patient IDs of the other sources (normalised). Without ``id_column``, every candidate
        ID column (named like an ID, holding TCGA barcodes, or first) is scored by how many
        of its IDs are among these, the best one is used, and the choice is reported.

    Returns
    -------
    :class:`ReadResult`: ``frame`` patients x features (index = normalised patient IDs;
    Categorical columns for semantic features, ordered for ordinal ones; float64 for numeric);
    column names are feature IDs (:func:`feature_id`). ``info``: ``features`` (DataFrame
    indexed by feature ID: ``label``, ``type``, ``source``, ``group``, ``levels``),
    ``id_column``, ``pyradiomics`` (bool), ``diagnostics_dropped`` (int), ``dropped``
    (column -> reason), ``n_patients``, ``n_features``.

    Raises
    ------
    InputError
        Unreadable / empty file, duplicated column names or patient IDs, a numeric column with
        stray text, bad ``types``, no feature left.
    """
    path = Path(path)
    notes = _Notes(path.name)
    _check_source(source)
    with _reading(path.name):
        header, body = _read_table(path, notes)
        _check_unique_header(header, path.name)
        id_position = _find_id_column(header, id_column, path.name, body, match_ids, notes)
        index, has_id = _patient_index(body.iloc[:, id_position], header[id_position], notes)
        ids_met = _ids_met(body.iloc[:, id_position])
        body = body.loc[has_id]

        is_pyradiomics = any(PYRADIOMICS_FEATURE.match(column) for column in header)
        diagnostics = [c for c in header if c.lower().startswith("diagnostics_")]
        if diagnostics:
            notes.warn(f"dropped {len(diagnostics)} PyRadiomics diagnostics_* columns")
        columns = {
            column: pd.Series(body.iloc[:, position].to_numpy(), index=index)
            for position, column in enumerate(header)
            if position != id_position and column not in diagnostics
        }
        for position, column in enumerate(list(columns)):
            if not column:
                columns[f"column_{position + 1}"] = columns.pop(column)

        columns, multi_valued, parents = _expand_multi_valued(columns, index, notes)

        def source_of(column: str, numeric: bool) -> str:
            return source or ("radiomic" if numeric else "semantic")

        def group_of(column: str, numeric: bool) -> str:
            match = PYRADIOMICS_FEATURE.match(column)
            if match:
                return f"{match['image']}_{match['cls']}"
            return source_of(column, numeric)

        frame, features, dropped = _build_features(
            columns,
            index=index,
            types=types,
            levels=levels,
            source_of=source_of,
            group_of=group_of,
            notes=notes,
        )
        features["parent"] = [parents.get(label, "") for label in features["label"]]
    if frame.shape[1] == 0:
        raise InputError(
            f"{path.name}: no usable imaging feature (all dropped: {_examples(list(dropped))})"
        )
    info = {
        "features": features,
        "id_column": header[id_position],
        "pyradiomics": is_pyradiomics,
        "diagnostics_dropped": len(diagnostics),
        "dropped": dropped,
        "n_patients": int(frame.shape[0]),
        "n_features": int(frame.shape[1]),
        "multi_valued": pd.DataFrame(multi_valued, index=index),
    }
    return ReadResult(
        frame=frame, info=info, warnings=notes.messages, source=path.name, ids=ids_met
    )


def _expand_multi_valued(
    columns: dict[str, pd.Series], index: pd.Index, notes: _Notes
) -> tuple[dict[str, pd.Series], dict[str, pd.Series], dict[str, str]]:
    """Text columns with ``|``-joined values become one absent/present column per finding.

    Returns the new columns, the original multi-valued columns (for display) and the parent
    field of each indicator.
    """
    out: dict[str, pd.Series] = {}
    multi_valued: dict[str, pd.Series] = {}
    parents: dict[str, str] = {}
    for label, raw in columns.items():
        # a plain scan first: pandas' string methods cost ~1 ms per column and call
        if not any(MULTI_VALUE_SEPARATOR in str(cell) for cell in raw.dropna().to_numpy()):
            out[label] = raw
            continue
        text = raw.where(raw.notna(), "").astype(str).str.strip()
        values = [
            [v.strip() for v in cell.split(MULTI_VALUE_SEPARATOR) if v.strip()] for cell in text
        ]
        indicators = finding_indicators(label, values, index)
        out.update(indicators)
        parents.update(dict.fromkeys(indicators, label))
        multi_valued[label] = text.replace("", None)
    if multi_valued:
        notes.warn(
            f"{len(multi_valued)} multi-valued columns ({_examples(list(multi_valued), 5)}, "
            f"values joined by {MULTI_VALUE_SEPARATOR!r}) tested as one present/absent feature "
            f"per finding ({len(parents)} findings)"
        )
    return out, multi_valued, parents


def combine_imaging(results: Sequence[ReadResult]) -> ReadResult:
    """Outer-join imaging feature tables on patient ID.

    A feature ID present in more than one result is renamed ``<source>:<id>`` in every
    result that has it, ``<source>`` being the result's file name without extension.

    Parameters
    ----------
    results
        Results of :func:`read_imaging` / :func:`read_aim`.

    Returns
    -------
    :class:`ReadResult` with the joined frame (index sorted), the joined ``info["features"]``,
    ``info["sources"]``, and the warnings of the joining only (the inputs keep theirs).
    """
    results = list(results)
    if not results:
        raise InputError("no imaging tables to combine")
    counts = pd.Series([fid for r in results for fid in r.frame.columns]).value_counts()
    shared = set(counts[counts > 1].index)
    frames, tables, messages = [], [], []
    stems = [Path(r.source).name.split(".")[0] or f"source{i + 1}" for i, r in enumerate(results)]
    for result, stem in zip(results, stems):
        renames = {fid: f"{stem}:{fid}" for fid in result.frame.columns if fid in shared}
        frames.append(result.frame.rename(columns=renames))
        table = result.info.get("features", pd.DataFrame(columns=_FEATURE_TABLE_COLUMNS))
        tables.append(table.rename(index=renames))
    if shared:
        message = (
            f"{len(shared)} feature IDs occur in more than one imaging source and were prefixed "
            f"with the source name: {_examples(sorted(shared))}"
        )
        messages.append(message)
        logger.warning(message)
    renamed = pd.Series([fid for f in frames for fid in f.columns])
    if renamed.duplicated().any():
        raise InputError(
            f"feature ID {renamed[renamed.duplicated()].iloc[0]!r} is still duplicated after "
            f"prefixing; give the imaging files different names"
        )
    frame = pd.concat(frames, axis=1, join="outer", sort=True)
    features = pd.concat(tables).reindex(columns=_FEATURE_TABLE_COLUMNS).fillna("")
    multi = [r.info["multi_valued"] for r in results if len(r.info.get("multi_valued", ()))]
    info = {
        "features": features,
        "multi_valued": pd.concat(multi, axis=1, join="outer", sort=True) if multi else None,
        "sources": [r.source for r in results],
        "n_patients": int(frame.shape[0]),
        "n_features": int(frame.shape[1]),
    }
    return ReadResult(
        frame=frame,
        info=info,
        warnings=messages,
        source="+".join(r.source for r in results),
        ids={text: patient for r in results for text, patient in r.ids.items()},
    )
