"""Reading clinical tables: mutation status, survival (given or derived from TCIA dates), covariates."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..bundle import (
    MUTANT,
    SURVIVAL_EVENT,
    SURVIVAL_TIME,
    WILDTYPE,
)
from ..validate import InputError, normalise_id
from .common import (
    _CENSORED_WORDS,
    _DATE_TEXT,
    _DECIMAL_COMMA,
    _DECIMAL_COMMA_HINT,
    _EVENT_WORDS,
    _IDENTIFIER_HEADER,
    _MARKER_WORDS,
    _MUTANT_WORDS,
    _MUTATION_HEADER,
    _NOT_SEQUENCED,
    _PROTEIN_CHANGE,
    _TCIA_DATE_OF_DEATH,
    _WILDTYPE_WORDS,
    CBIOPORTAL_SURVIVAL_COLUMNS,
    DAYS_PER_MONTH,
    KNOWN_DRIVER_GENES,
    MISSING_TOKENS,
    TCGA_SURVIVAL_COLUMNS,
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
    _ids_met,
    _is_free_text,
    _is_prose,
    _patient_index,
    feature_id,
)
from .tables import _read_table


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]", "", str(text).lower())


def marker_name(column: str) -> str:
    """Short name of a marker column: its gene (``"EGFR mutation status"`` -> ``"EGFR"``)."""
    tokens = re.split(r"[^A-Za-z0-9]+", column)
    for token in tokens:
        if token.upper() in KNOWN_DRIVER_GENES:
            return token.upper()
    for token in tokens:
        if re.fullmatch(r"[A-Z][A-Z0-9]{1,9}", token):
            return token
    words = re.sub(r"\b(mutation|mutational|translocation|status|fusion)\b", "", column, flags=re.I)
    return " ".join(words.split()) or column


_MISSING_KEYS = frozenset({_key(t) for t in MISSING_TOKENS} | _NOT_SEQUENCED | {"pending"})
_MARKER_STATES = {
    "mutant": MUTANT,
    "positive": MUTANT,
    "altered": MUTANT,
    "wildtype": WILDTYPE,
    "negative": WILDTYPE,
    "unaltered": WILDTYPE,
    "missing": None,
}
"""Names a user may give a marker value in ``marker_values`` -> the stored state."""


def _marker_vocabulary(marker_values: Mapping[str, str] | None) -> dict[str, str | None]:
    """User-given value -> state (``Mutant`` / ``Wildtype`` / None for missing), keyed by _key."""
    vocabulary: dict[str, str | None] = {}
    for value, state in (marker_values or {}).items():
        wanted = _key(state)
        if wanted not in _MARKER_STATES:
            raise InputError(
                f"--marker-value {value}={state}: the state must be one of "
                f"{', '.join(_MARKER_STATES)}"
            )
        vocabulary[_key(value)] = _MARKER_STATES[wanted]
    return vocabulary


def _marker_state(text: str, vocabulary: Mapping[str, str | None]) -> str | None | bool:
    """Mutant / Wildtype / None (missing) for one cell; False when the value is unknown."""
    key = _key(text)
    if key in vocabulary:
        return vocabulary[key]
    if key in _MISSING_KEYS or str(text).strip().upper() in MISSING_TOKENS:
        return None
    if key in _MUTANT_WORDS:
        return MUTANT
    if key in _WILDTYPE_WORDS:
        return WILDTYPE
    calls = [c for c in re.split(r"[\s,;/]+", str(text).strip().upper()) if c]
    if calls and all(_PROTEIN_CHANGE.match(c) for c in calls):
        return MUTANT
    return False


def _is_marker_by_values(raw: pd.Series, vocabulary: Mapping[str, str | None]) -> bool:
    """A column whose values all are marker states, at least one a marker-specific word
    (Methylated, Mutant, WT, Amplified, a protein change such as R132H, or a mapped value)."""
    present = raw[~raw.str.strip().str.upper().isin(MISSING_TOKENS)].unique()
    if len(present) == 0:
        return False
    specific = False
    for value in present:
        state = _marker_state(value, vocabulary)
        if state is False:
            return False
        key = _key(value)
        protein_change = state == MUTANT and key not in _MUTANT_WORDS
        if key in _MARKER_WORDS or key in vocabulary or protein_change:
            specific = True
    return specific


def _detect_mutation_columns(
    header: Sequence[str],
    columns: Mapping[str, pd.Series] | None = None,
    vocabulary: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    found = {}
    for column in header:
        tokens = {t.upper() for t in re.split(r"[^A-Za-z0-9]+", column)}
        named = bool(_MUTATION_HEADER.search(column) or tokens & set(KNOWN_DRIVER_GENES))
        by_values = columns is not None and _is_marker_by_values(columns[column], vocabulary or {})
        if named or by_values:
            found[column] = marker_name(column)
    return found


def _normalise_mutation(
    raw: pd.Series,
    column: str,
    notes: _Notes,
    vocabulary: Mapping[str, str | None] | None = None,
) -> pd.Series:
    states = {value: _marker_state(value, vocabulary or {}) for value in raw.unique()}
    values = raw.map(lambda value: states[value] or np.nan)
    unknown = [value for value, state in states.items() if state is False]
    if unknown:
        notes.warn(
            f"column {column!r}: unrecognised marker status {_examples(unknown)} treated as "
            f"missing (expected e.g. Mutant / Wildtype, Methylated / Unmethylated, Amplified, "
            f"Positive / Negative, 1 / 0 or a protein change such as R132H; map others with "
            f"--marker-value VALUE=mutant|wildtype|missing)"
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
    keys = raw.map(_key).str.replace(r"^[01]:", "", regex=True)
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
            f"{notes.name}: --derive-survival knows the TCGA/GDC columns (vital_status, "
            f"death_days_to or days_to_death, last_contact_days_to or days_to_last_followup), "
            f"cBioPortal's OS_STATUS and OS_MONTHS, and the TCIA NSCLC columns; the TCIA "
            f"columns {_examples(missing)} are not found; give --survival-time and "
            f"--survival-event instead"
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


def _first_column(header: Sequence[str], names: Sequence[str]) -> str | None:
    keys = {_key(column): column for column in reversed(header)}
    for name in names:
        if _key(name) in keys:
            return keys[_key(name)]
    return None


def _survival_layout(header: Sequence[str]) -> str | None:
    """``"tcga"`` or ``"cbioportal"`` when the table has that layout's survival columns."""
    if all(_first_column(header, names) for names in TCGA_SURVIVAL_COLUMNS.values()):
        return "tcga"
    if all(_first_column(header, names) for names in CBIOPORTAL_SURVIVAL_COLUMNS.values()):
        return "cbioportal"
    return None


def _derive_layout_survival(
    layout: str, columns: Mapping[str, pd.Series], header: Sequence[str], notes: _Notes
) -> tuple[pd.Series, pd.Series, list[str]]:
    """Survival from the TCGA/GDC or the cBioPortal layout (see :func:`read_clinical`)."""
    if layout == "cbioportal":
        status = _first_column(header, CBIOPORTAL_SURVIVAL_COLUMNS["status"])
        months = _first_column(header, CBIOPORTAL_SURVIVAL_COLUMNS["months"])
        event = _event(columns[status], status, notes)
        time = _to_float(columns[months], months, notes) * DAYS_PER_MONTH
        notes.warn(
            f"survival derived from cBioPortal columns {status!r} and {months!r} (months x "
            f"{DAYS_PER_MONTH:.2f} = days)"
        )
        return time, event, [status, months]
    status = _first_column(header, TCGA_SURVIVAL_COLUMNS["status"])
    event = _event(columns[status], status, notes)
    used = [status]
    death = pd.Series(np.nan, index=event.index, dtype=float)
    follow_up = pd.Series(np.nan, index=event.index, dtype=float)
    for target, key in ((death, "death"), (follow_up, "follow_up")):
        for name in TCGA_SURVIVAL_COLUMNS[key]:
            column = _first_column(header, [name])
            if column is not None:
                target.update(target.fillna(_to_float(columns[column], column, notes)))
                used.append(column)
    time = pd.Series(np.nan, index=event.index, dtype=float)
    time[event == 1] = death[event == 1]
    time[event == 0] = follow_up[event == 0]
    lost = int((event.notna() & time.isna()).sum())
    detail = f"; {lost} patients have no day count for their status" if lost else ""
    notes.warn(
        f"survival derived from TCGA columns {_examples(used, 6)}: days to death for the dead, "
        f"days to last contact for the living{detail}"
    )
    return time, event, used


def _collapse_repeated_rows(
    header: list[str], body: pd.DataFrame, id_position: int, notes: _Notes
) -> tuple[list[str], pd.DataFrame, int]:
    """One row per patient from a GDC-style table with one row per treatment or diagnosis.

    Applies only to a table with the TCGA/GDC or cBioPortal survival columns whose rows agree,
    per patient, on those columns; columns whose values differ within a patient are left out,
    then the first row of each patient is kept. Other tables are returned unchanged
    (duplicated IDs are refused later). Returns the header, body and ID column position.
    """
    ids = body.iloc[:, id_position].map(normalise_id)
    repeated = ids.duplicated(keep=False) & (ids != "")
    if not repeated.any():
        return header, body, id_position
    groups = body.loc[repeated].groupby(ids[repeated])
    varying = [
        position
        for position in range(len(header))
        if position != id_position and (groups[position].nunique(dropna=False) > 1).any()
    ]
    varying_names = {header[position] for position in varying}
    survival_names = {
        name.lower()
        for names in (*TCGA_SURVIVAL_COLUMNS.values(), *CBIOPORTAL_SURVIVAL_COLUMNS.values())
        for name in names
    }
    if not _survival_layout(header) or {n.lower() for n in varying_names} & survival_names:
        return header, body, id_position
    keep = [position for position in range(len(header)) if position not in varying]
    notes.warn(
        f"{int(ids[repeated].nunique())} patients have several rows (GDC layout: one per "
        f"treatment or diagnosis); kept their first row and left out the "
        f"{len(varying)} columns that differ between rows: {_examples(sorted(varying_names))}"
    )
    body = body.loc[~ids.duplicated(keep="first")].iloc[:, keep]
    body.columns = range(len(keep))
    return [header[position] for position in keep], body, keep.index(id_position)


def _check_censored_times(time: pd.Series, event: pd.Series, column: str, notes: _Notes) -> None:
    """Refuse a time column that holds death times only; warn when it lacks many censored."""
    censored = event == 0
    n_censored = int(censored.sum())
    if not n_censored:
        return
    lacking = int((censored & time.isna()).sum())
    dead_lacking = float((time[event == 1].isna()).mean()) if (event == 1).any() else 0.0
    if lacking == n_censored:
        raise InputError(
            f"{notes.name}: survival time column {column!r} has no value for any of the "
            f"{n_censored} censored (alive) patients: it holds death times only, so every "
            f"censored patient would be dropped and survival biased; use --derive-survival "
            f"(TCGA: days to death, else days to last contact) or a column with follow-up times"
        )
    if lacking / n_censored > max(0.2, 2 * dead_lacking):
        notes.warn(
            f"survival time column {column!r} is missing for {lacking} of {n_censored} "
            f"censored patients (they are left out of survival analyses); check that it holds "
            f"follow-up times for the living"
        )


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


_ID_HEADER = re.compile(r"(^|[\s_.-])(id|uuid|barcode)$", re.IGNORECASE)


def _looks_identifying(column: str, raw: pd.Series) -> str | None:
    if _IDENTIFIER_HEADER.search(column) or _ID_HEADER.search(column):
        return "identifier-like name"
    present = raw[~raw.str.upper().isin(MISSING_TOKENS)]
    if present.empty:
        return None
    if present.str.match(_DATE_TEXT).mean() >= 0.8:
        return "dates"
    numbers = pd.to_numeric(present, errors="coerce")
    n_distinct = present.nunique()
    if numbers.isna().any() and (_is_free_text(n_distinct, len(present)) or _is_prose(present)):
        return "free text"
    return None


def read_clinical(
    path: PathLike,
    *,
    id_column: str | None = None,
    mutation_columns: Sequence[str] | Mapping[str, str] | None = None,
    survival_time: str | None = None,
    survival_event: str | None = None,
    derive_survival: bool | None = None,
    covariates: Sequence[str] | None = None,
    keep_identifiers: bool = False,
    marker_values: Mapping[str, str] | None = None,
    match_ids: Collection[str] | None = None,
) -> ReadResult:
    """Read a clinical table, one row per patient.

    Marker columns (mutation, methylation, copy number, receptor status; given, or detected by
    a header mentioning mutation / translocation / fusion or a marker gene such as EGFR, IDH1,
    MGMT, or by their values: a column whose values all are marker states, one of them
    specific such as Methylated, WT or R132H) are named by their gene (``"EGFR mutation
    status"`` -> ``"EGFR"``) and normalised to a Categorical [``Wildtype``, ``Mutant``]
    (``Mutant`` standing for "altered"): Mutant / Mutation / Positive / Yes / 1 /
    Translocated / Methylated / Amplified / Deleted / Codeleted / a protein change such as
    ``R132H`` or ``p.G12D`` -> Mutant; Wildtype / WT / Negative / No / 0 / Unmethylated / Not
    amplified / Intact -> Wildtype; Not collected / Unknown / N/A / NS (not sequenced) / empty
    -> missing; ``marker_values`` maps any other value; anything else -> missing with a warning.

    Survival: ``survival_time`` (days, float) and ``survival_event`` (Dead / 1 -> 1.0,
    Alive / 0 -> 0.0) from the given columns (refused when the time column has no value for
    any censored patient: it then holds death times only); or derived from the TCGA/GDC
    layout (event = ``vital_status`` is Dead; time = ``death_days_to`` / ``days_to_death``
    for the dead, ``last_contact_days_to`` / ``days_to_last_followup`` for the living), from
    cBioPortal's ``OS_STATUS`` (``1:DECEASED``) and ``OS_MONTHS`` (x 30.44 = days), or, with
    ``derive_survival=True`` only, from the TCIA NSCLC Radiogenomics layout: event = Survival
    Status is Dead; time = Time to Death (days) for the dead (falling back to Date of Death −
    CT Date − Days between CT and surgery), else Date of Last Known Alive − CT Date − Days
    between CT and surgery (dates month/day/year). Negative times become missing with a
    warning.

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
        Patient ID column (default: detected as in :func:`read_imaging`, choosing by
        ``match_ids`` when given).
    mutation_columns
        Columns to treat as mutation status (a mapping gives their short names); ``[]`` for
        none; None to detect them.
    survival_time, survival_event
        Columns with survival time in days and the event indicator.
    derive_survival
        True: derive survival from the TCGA, cBioPortal or TCIA layout (exclusive with the two
        above); None (default): derive it when the TCGA or cBioPortal columns are present and
        no survival column is named; False: never.
    covariates
        Columns to keep as adjustment covariates (numeric where possible).
    keep_identifiers
        Keep identifier-like columns.
    marker_values
        Marker value -> ``mutant`` / ``wildtype`` / ``missing`` (also ``positive``,
        ``negative``, ``altered``, ``unaltered``), for vocabularies radmap does not know.
    match_ids
        Patient IDs of the other sources; without ``id_column``, the ID column is the
        candidate whose values match most of them (see :func:`read_imaging`).

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
            "give either --survival-time and --survival-event or --derive-survival, not both"
        )
    vocabulary = _marker_vocabulary(marker_values)
    with _reading(path.name):
        header, body = _read_table(path, notes)
        _check_unique_header(header, path.name)
        if bool(survival_time) != bool(survival_event):
            given = "--survival-time" if survival_time else "--survival-event"
            layout = _survival_layout(header)
            hint = (
                f"; this table has the {'TCGA' if layout == 'tcga' else 'cBioPortal'} survival "
                f"columns, which radmap derives by itself (drop {given} or pass "
                f"--derive-survival)"
                if layout
                else ""
            )
            raise InputError(
                f"{path.name}: --survival-time and --survival-event must be given together "
                f"(only {given} was){hint}"
            )
        id_position = _find_id_column(header, id_column, path.name, body, match_ids, notes)
        header, body, id_position = _collapse_repeated_rows(header, body, id_position, notes)
        index, has_id = _patient_index(body.iloc[:, id_position], header[id_position], notes)
        ids_met = _ids_met(body.iloc[:, id_position])
        body = body.loc[has_id]
        columns = {
            column: pd.Series(body.iloc[:, position].to_numpy(), index=index)
            for position, column in enumerate(header)
            if position != id_position
        }
        names = [c for c in header if c != header[id_position]]

        if mutation_columns is None:
            mutations = _detect_mutation_columns(names, columns, vocabulary)
        elif isinstance(mutation_columns, Mapping):
            mutations = {
                _find_column(names, c, path.name, "mutation"): short
                for c, short in mutation_columns.items()
            }
        else:
            mutations = {
                _find_column(names, c, path.name, "mutation"): marker_name(c)
                for c in mutation_columns
            }
        shorts = pd.Series(list(mutations.values()))
        if shorts.duplicated().any():
            clash = shorts[shorts.duplicated()].iloc[0]
            raise InputError(
                f"{path.name}: several mutation columns map to {clash!r} "
                f"({_examples([c for c, s in mutations.items() if s == clash])}); name them "
                f"with --mutation-column 'COLUMN=NAME' (or mutation_columns = {{COLUMN = NAME}} "
                f"in the config)"
            )

        out: dict[str, pd.Series] = {}
        for column, short in mutations.items():
            out[short] = _normalise_mutation(columns[column], column, notes, vocabulary)

        survival_sources: list[str] = []
        has_survival = False
        if survival_time:
            time_column = _find_column(names, survival_time, path.name, "survival time")
            event_column = _find_column(names, survival_event, path.name, "survival event")
            time = _to_float(columns[time_column], time_column, notes)
            event = _event(columns[event_column], event_column, notes)
            _check_censored_times(time, event, time_column, notes)
            survival_sources = [time_column, event_column]
            has_survival = True
        elif derive_survival is not False and _survival_layout(names):
            time, event, survival_sources = _derive_layout_survival(
                _survival_layout(names), columns, names, notes
            )
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
                f"dates, free text): {_examples(identifiers, 10)}; pass --keep-identifiers "
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
    return ReadResult(
        frame=frame, info=info, warnings=notes.messages, source=path.name, ids=ids_met
    )
