"""Reading clinical tables: mutation status, survival (given or derived from TCIA dates), covariates."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..bundle import (
    MUTANT,
    SURVIVAL_EVENT,
    SURVIVAL_TIME,
    WILDTYPE,
)
from ..validate import InputError
from .common import (
    _CENSORED_WORDS,
    _DATE_TEXT,
    _DECIMAL_COMMA,
    _DECIMAL_COMMA_HINT,
    _EVENT_WORDS,
    _IDENTIFIER_HEADER,
    _MUTANT_WORDS,
    _MUTATION_HEADER,
    _TCIA_DATE_OF_DEATH,
    _WILDTYPE_WORDS,
    KNOWN_DRIVER_GENES,
    MISSING_TOKENS,
    TCIA_SURVIVAL_COLUMNS,
    PathLike,
    ReadResult,
    _examples,
    _Notes,
    _reading,
)
from .features import (
    _check_unique_header,
    _column_values,
    _Dropped,
    _find_id_column,
    _is_free_text,
    _patient_index,
    feature_id,
)
from .tables import _read_table


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]", "", str(text).lower())


def _mutation_name(column: str) -> str:
    tokens = re.split(r"[^A-Za-z0-9]+", column)
    for token in tokens:
        if token.upper() in KNOWN_DRIVER_GENES:
            return token.upper()
    for token in tokens:
        if re.fullmatch(r"[A-Z][A-Z0-9]{1,9}", token):
            return token
    words = re.sub(r"\b(mutation|mutational|translocation|status|fusion)\b", "", column, flags=re.I)
    return " ".join(words.split()) or column


def _detect_mutation_columns(header: Sequence[str]) -> dict[str, str]:
    found = {}
    for column in header:
        tokens = {t.upper() for t in re.split(r"[^A-Za-z0-9]+", column)}
        if _MUTATION_HEADER.search(column) or tokens & set(KNOWN_DRIVER_GENES):
            found[column] = _mutation_name(column)
    return found


def _normalise_mutation(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    missing_keys = {_key(t) for t in MISSING_TOKENS} | {"notdone", "notperformed", "pending"}
    keys = raw.map(_key)
    values = pd.Series(np.nan, index=raw.index, dtype=object)
    values[keys.isin(_MUTANT_WORDS)] = MUTANT
    values[keys.isin(_WILDTYPE_WORDS)] = WILDTYPE
    unknown = ~keys.isin(_MUTANT_WORDS | _WILDTYPE_WORDS | missing_keys)
    if unknown.any():
        notes.warn(
            f"column {column!r}: unrecognised mutation status {_examples(raw[unknown].unique())} "
            f"treated as missing (expected Mutant / Wildtype)"
        )
    return pd.Series(
        pd.Categorical(values, categories=[WILDTYPE, MUTANT]), index=raw.index, name=column
    )


def _find_column(header: Sequence[str], wanted: str, name: str, what: str) -> str:
    for column in header:
        if column == wanted:
            return column
    for column in header:
        if _key(column) == _key(wanted):
            return column
    raise InputError(f"{name}: no {what} column {wanted!r}; columns are {_examples(header, 8)}")


def _to_float(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    missing = raw.str.upper().isin(MISSING_TOKENS)
    numbers = pd.to_numeric(raw.where(~missing), errors="coerce").astype(float)
    bad = numbers.isna() & ~missing
    if bad.any():
        hint = (
            f" ({_DECIMAL_COMMA_HINT})"
            if raw[bad].str.strip().str.fullmatch(_DECIMAL_COMMA).all()
            else ""
        )
        notes.warn(
            f"column {column!r}: non-numeric values {_examples(raw[bad].unique())} treated as "
            f"missing{hint}"
        )
    infinite = np.isinf(numbers)
    if infinite.any():
        notes.warn(f"column {column!r}: {int(infinite.sum())} infinite values set to missing")
        numbers[infinite] = np.nan
    return numbers


def _to_dates(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    missing = raw.str.upper().isin(MISSING_TOKENS)
    text = raw.where(~missing)
    dates = pd.to_datetime(text, format="%m/%d/%Y", errors="coerce")
    retry = dates.isna() & ~missing
    if retry.any():
        dates[retry] = pd.to_datetime(text[retry], format="ISO8601", errors="coerce")
    bad = dates.isna() & ~missing
    if bad.any():
        notes.warn(
            f"column {column!r}: unreadable dates {_examples(raw[bad].unique())} (expected "
            f"month/day/year) treated as missing"
        )
    return dates


def _event(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    keys = raw.map(_key)
    event = pd.Series(np.nan, index=raw.index, dtype=float)
    event[keys.isin(_EVENT_WORDS)] = 1.0
    event[keys.isin(_CENSORED_WORDS)] = 0.0
    missing = raw.str.upper().isin(MISSING_TOKENS)
    unknown = event.isna() & ~missing
    if unknown.any():
        notes.warn(
            f"column {column!r}: unrecognised survival status {_examples(raw[unknown].unique())} "
            f"treated as missing (expected e.g. Dead / Alive or 1 / 0)"
        )
    return event


def _derive_tcia_survival(
    columns: Mapping[str, pd.Series], header: Sequence[str], notes: _Notes
) -> tuple[pd.Series, pd.Series, list[str]]:
    found = {}
    missing = []
    for key, wanted in TCIA_SURVIVAL_COLUMNS.items():
        try:
            found[key] = _find_column(header, wanted, notes.name, "survival")
        except InputError:
            missing.append(wanted)
    if missing:
        raise InputError(
            f"{notes.name}: derive_survival needs the TCIA columns {_examples(missing)}, not "
            f"found; pass survival_time and survival_event instead"
        )
    event = _event(columns[found["status"]], found["status"], notes)
    ct_date = _to_dates(columns[found["ct_date"]], found["ct_date"], notes)
    ct_to_surgery = _to_float(columns[found["ct_to_surgery"]], found["ct_to_surgery"], notes)
    last_alive = _to_dates(columns[found["last_alive"]], found["last_alive"], notes)
    time_to_death = _to_float(columns[found["time_to_death"]], found["time_to_death"], notes)
    used = list(found.values())
    if _TCIA_DATE_OF_DEATH in columns:
        date_of_death = _to_dates(columns[_TCIA_DATE_OF_DEATH], _TCIA_DATE_OF_DEATH, notes)
        from_dates = (date_of_death - ct_date).dt.days - ct_to_surgery
        time_to_death = time_to_death.fillna(from_dates)
        used.append(_TCIA_DATE_OF_DEATH)
    censored_time = (last_alive - ct_date).dt.days.astype(float) - ct_to_surgery
    time = pd.Series(np.nan, index=event.index, dtype=float)
    time[event == 1] = time_to_death[event == 1]
    time[event == 0] = censored_time[event == 0]
    return time, event, used


def _clinical_column(raw: pd.Series, column: str, notes: _Notes) -> pd.Series:
    try:
        values, _kind, _order = _column_values(
            raw, name=column, declared=None, notes=notes, drop_constant=False, drop_free_text=False
        )
    except InputError:
        return _to_float(raw, column, notes)
    except _Dropped:
        return pd.Series(np.nan, index=raw.index, dtype=np.float64)
    return values


def _looks_identifying(column: str, raw: pd.Series) -> str | None:
    if _IDENTIFIER_HEADER.search(column):
        return "identifier-like name"
    present = raw[~raw.str.upper().isin(MISSING_TOKENS)]
    if present.empty:
        return None
    if present.str.match(_DATE_TEXT).mean() >= 0.8:
        return "dates"
    numbers = pd.to_numeric(present, errors="coerce")
    n_distinct = present.nunique()
    if numbers.isna().any() and _is_free_text(n_distinct, len(present)):
        return "free text"
    return None


def read_clinical(
    path: PathLike,
    *,
    id_column: str | None = None,
    mutation_columns: Sequence[str] | Mapping[str, str] | None = None,
    survival_time: str | None = None,
    survival_event: str | None = None,
    derive_survival: bool = False,
    covariates: Sequence[str] | None = None,
    keep_identifiers: bool = False,
) -> ReadResult:
    """Read a clinical table, one row per patient.

    Mutation columns (given, or detected by a header mentioning mutation / translocation /
    fusion or a driver gene such as EGFR, KRAS, ALK) are named by their gene (``"EGFR
    mutation status"`` -> ``"EGFR"``) and normalised to a Categorical [``Wildtype``,
    ``Mutant``]: Mutant / Mutation / Positive / Yes / 1 / Translocated -> Mutant; Wildtype /
    Wild type / WT / Negative / No / 0 -> Wildtype; Not collected / Unknown / N/A / Not
    Assessed / empty -> missing; anything else -> missing with a warning.

    Survival: ``survival_time`` (days, float) and ``survival_event`` (Dead / 1 -> 1.0,
    Alive / 0 -> 0.0) from the given columns; or, with ``derive_survival``, from the TCIA
    NSCLC Radiogenomics layout: event = Survival Status is Dead; time = Time to Death (days)
    for the dead (falling back to Date of Death − CT Date − Days between CT and surgery), else
    Date of Last Known Alive − CT Date − Days between CT and surgery (dates month/day/year).
    Negative times become missing with a warning.

    Columns that may identify a patient (names, record numbers, addresses, phone, e-mail,
    social security number, birth date, any ``Date`` column or column of dates, free text with
    many distinct values) are left out with a warning unless ``keep_identifiers``; explicitly
    requested columns are always kept. Every other column is kept: numeric columns as
    float64, the rest as Categorical (ordered when :func:`analysis.validate.infer_feature_type`
    finds an ordinal vocabulary, e.g. T stage). Column names are whitespace-collapsed with
    ``/`` replaced by ``_``.

    Parameters
    ----------
    path
        CSV / TSV / XLSX / Parquet.
    id_column
        Patient ID column (default: detected as in :func:`read_imaging`).
    mutation_columns
        Columns to treat as mutation status (a mapping gives their short names); ``[]`` for
        none; None to detect them.
    survival_time, survival_event
        Columns with survival time in days and the event indicator.
    derive_survival
        Derive survival from the TCIA layout (exclusive with the two above).
    covariates
        Columns to keep as adjustment covariates (numeric where possible).
    keep_identifiers
        Keep identifier-like columns.

    Returns
    -------
    :class:`ReadResult`: ``frame`` indexed by normalised patient ID; ``info``: ``mutations``
    (short names), ``covariates``, ``identifiers_dropped``, ``survival`` (bool),
    ``id_column``.

    Raises
    ------
    InputError
        Unreadable / empty file, duplicated patient IDs or column names, a named column that
        does not exist, incompatible survival options.
    """
    path = Path(path)
    notes = _Notes(path.name)
    if derive_survival and (survival_time or survival_event):
        raise InputError(
            "give either survival_time and survival_event or derive_survival=True, not both"
        )
    if bool(survival_time) != bool(survival_event):
        raise InputError("survival_time and survival_event must be given together")
    with _reading(path.name):
        header, body = _read_table(path, notes)
        _check_unique_header(header, path.name)
        id_position = _find_id_column(header, id_column, path.name)
        index, has_id = _patient_index(body.iloc[:, id_position], header[id_position], notes)
        body = body.loc[has_id]
        columns = {
            column: pd.Series(body.iloc[:, position].to_numpy(), index=index)
            for position, column in enumerate(header)
            if position != id_position
        }
        names = [c for c in header if c != header[id_position]]

        if mutation_columns is None:
            mutations = _detect_mutation_columns(names)
        elif isinstance(mutation_columns, Mapping):
            mutations = {
                _find_column(names, c, path.name, "mutation"): short
                for c, short in mutation_columns.items()
            }
        else:
            mutations = {
                _find_column(names, c, path.name, "mutation"): _mutation_name(c)
                for c in mutation_columns
            }
        shorts = pd.Series(list(mutations.values()))
        if shorts.duplicated().any():
            clash = shorts[shorts.duplicated()].iloc[0]
            raise InputError(
                f"{path.name}: several mutation columns map to {clash!r} "
                f"({_examples([c for c, s in mutations.items() if s == clash])}); pass "
                f"mutation_columns as a mapping column -> name"
            )

        out: dict[str, pd.Series] = {}
        for column, short in mutations.items():
            out[short] = _normalise_mutation(columns[column], column, notes)

        survival_sources: list[str] = []
        has_survival = False
        if survival_time:
            time_column = _find_column(names, survival_time, path.name, "survival time")
            event_column = _find_column(names, survival_event, path.name, "survival event")
            time = _to_float(columns[time_column], time_column, notes)
            event = _event(columns[event_column], event_column, notes)
            survival_sources = [time_column, event_column]
            has_survival = True
        elif derive_survival:
            time, event, survival_sources = _derive_tcia_survival(columns, names, notes)
            has_survival = True
        if has_survival:
            negative = time < 0
            if negative.any():
                notes.warn(
                    f"negative survival time for {int(negative.sum())} patients set to missing: "
                    f"{_examples(time.index[negative])}"
                )
                time[negative] = np.nan
            if time.isna().all():
                notes.warn("no patient has a usable survival time")
            out[SURVIVAL_TIME] = time.astype(float)
            out[SURVIVAL_EVENT] = event.astype(float)

        covariate_columns = [
            _find_column(names, c, path.name, "covariate") for c in (covariates or [])
        ]
        # Columns the user named are never second-guessed as identifiers (derived survival
        # reads date columns, which stay identifying).
        named_survival = survival_sources if survival_time else []
        requested = set(mutations) | set(covariate_columns) | set(named_survival)
        identifiers: list[str] = []
        for column in names:
            if column in requested:
                continue
            reason = _looks_identifying(column, columns[column])
            if reason and not keep_identifiers:
                identifiers.append(column)
        if identifiers:
            notes.warn(
                f"left out {len(identifiers)} columns that may identify patients (names, "
                f"dates, free text): {_examples(identifiers, 10)}; pass keep_identifiers=True "
                f"to keep them"
            )
        for column in covariate_columns:
            if _looks_identifying(column, columns[column]) and not keep_identifiers:
                notes.warn(f"covariate {column!r} may identify patients; kept as requested")

        covariate_names = [feature_id(column) for column in covariate_columns]
        empty: list[str] = []
        for column in [*covariate_columns, *names]:
            target = feature_id(column)
            if column in mutations or column in identifiers or target in out:
                if target in out and column not in mutations and column not in covariate_columns:
                    notes.warn(f"column {column!r} clashes with a derived column; left out")
                continue
            series = _clinical_column(columns[column], column, notes)
            if series.isna().all() and column not in covariate_columns:
                empty.append(column)
                continue
            out[target] = series
        if empty:
            notes.warn(f"left out {len(empty)} columns with no values: {_examples(empty)}")
    frame = pd.DataFrame(out, index=index)
    info = {
        "mutations": list(mutations.values()),
        "covariates": covariate_names,
        "identifiers_dropped": identifiers,
        "survival": has_survival,
        "survival_columns": survival_sources,
        "id_column": header[id_position],
    }
    return ReadResult(frame=frame, info=info, warnings=notes.messages, source=path.name)
