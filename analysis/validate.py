"""Input validation: sample matching, feature type inference and actionable errors.

Everything here works on plain pandas objects so that every reader in :mod:`analysis.io`
and the pipeline share one definition of "the same patient" and of a feature's type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import CategoricalDtype, is_bool_dtype, is_numeric_dtype

from .bundle import FEATURE_TYPES


class InputError(ValueError):
    """Bad input that the user can fix; the message names the file, column or ID at fault."""


MAX_ORDINAL_LEVELS = 10
"""Most distinct values a small-integer numeric feature may have to be called ordinal."""

MAX_ORDINAL_INTEGER = 20
"""Largest absolute value of a small-integer numeric feature that may be called ordinal."""

ORDERED_VOCABULARIES: tuple[tuple[str, ...], ...] = (
    ("none", "minimal", "mild", "moderate", "marked", "severe"),
    ("very low", "low", "intermediate", "medium", "high", "very high"),
    ("small", "medium", "large"),
    (
        "low severity (1-25%)",
        "moderate severity (26-50%)",
        "moderately high severity (51-75%)",
        "high severity (greaterthan 75%)",
    ),
    ("0%", ">0 - 25%", "25 - 50%", "50 - 75%", "75 - < 100%", "100%"),
    (
        "well differentiated",
        "moderately differentiated",
        "poorly differentiated",
        "undifferentiated",
    ),
    ("tis", "t0", "t1", "t1mi", "t1a", "t1b", "t1c", "t2", "t2a", "t2b", "t3", "t4"),
    ("n0", "n1", "n2", "n3"),
    ("m0", "m1", "m1a", "m1b", "m1c"),
    ("g1", "g2", "g3", "g4"),
    ("0", "i", "ia", "ib", "ii", "iia", "iib", "iii", "iiia", "iiib", "iiic", "iv", "iva", "ivb"),
    # Nodule attenuation, by solid component (Fleischner Society 2017 / Lung-RADS: pure
    # ground-glass < part-solid < solid); AIM and common spellings.
    ("ground glass", "ground-glass", "non-solid", "partially solid", "part-solid", "solid"),
    # Nodule margin, from smooth to spiculated (rising probability of malignancy in the
    # Fleischner / Brock reading); "poorly defined" is not on this scale.
    ("smooth", "lobulated", "irregular", "spiculated"),
    # VASARI proportions (f5-f14 of the VASARI MR feature guide): of the tumour volume.
    ("minimal", "<1/3", "1/3-2/3", ">2/3"),
    ("none", "<5%", "6-33%", "34-67%", "68-95%", ">95%", "100%"),
)
"""Known ordered vocabularies (lower case, lowest first). A text feature whose distinct values
(case-insensitive, an optional leading ``"stage "`` ignored) all belong to one of these, with at
least three distinct values, is ordinal and its levels follow this order."""

BINARY_NEGATIVE_FIRST: tuple[tuple[str, str], ...] = (
    ("absent", "present"),
    ("no", "yes"),
    ("n", "y"),
    ("negative", "positive"),
    ("wildtype", "mutant"),
    ("false", "true"),
    ("0", "1"),
    ("unchecked", "checked"),
    ("alive", "dead"),
)
"""Two-level vocabularies with their reference level first, so that a binary contrast reads
"present vs absent" rather than the alphabetical accident."""


TCGA_BARCODE = re.compile(
    r"^(?P<patient>TCGA[-._ ][A-Z0-9]{2}[-._ ][A-Z0-9]{4})"
    r"(?:[-._ ](?P<type>\d{2})(?P<vial>[A-Z])?(?:[-._ ][-._ A-Z0-9]*)?)?$",
    re.IGNORECASE,
)
"""A TCGA barcode: patient ``TCGA-02-0003``, optionally followed by the sample type (``01``
primary tumour ... ``09``; ``10``-``19`` normal tissue; ``20``-``29`` controls), the vial
letter and the portion / analyte / plate / centre parts. Dots, underscores or spaces may
stand for the dashes and letters may be lower case (as R and spreadsheets write them)."""

TCGA_RULE = (
    "TCGA barcodes matched by patient (TCGA-XX-XXXX): sample and aliquot barcodes such as "
    "TCGA-02-0003-01A-01R map to their patient; normal-tissue samples (-10 to -19) and "
    "controls (-20 to -29) are left out"
)


def tcga_parts(value: object) -> tuple[str, int | None, str] | None:
    """Patient barcode, sample type code and vial letter of a TCGA barcode, else None.

    Examples
    --------
    >>> tcga_parts("tcga.02.0003.01a.01r")
    ('TCGA-02-0003', 1, 'A')
    >>> tcga_parts("TCGA-02-0003")
    ('TCGA-02-0003', None, '')
    """
    match = TCGA_BARCODE.match(" ".join(str(value).split()))
    if match is None:
        return None
    patient = re.sub(r"[-._ ]", "-", match["patient"]).upper()
    kind = int(match["type"]) if match["type"] else None
    return patient, kind, (match["vial"] or "").upper()


@dataclass
class SampleSelection:
    """Which rows of a source to keep when several sample barcodes map to one patient.

    Attributes
    ----------
    keep
        Boolean mask over the IDs given.
    messages
        What was done, for the user (empty when no TCGA barcode was seen).
    rule
        :data:`TCGA_RULE` when TCGA barcodes were matched by patient, else ``""``.
    """

    keep: np.ndarray
    messages: list[str] = field(default_factory=list)
    rule: str = ""


def select_tcga_samples(ids: Sequence[object], *, source: str = "") -> SampleSelection:
    """Keep one tumour sample per TCGA patient; leave out normal-tissue and control samples.

    Non-TCGA IDs are always kept. Among several tumour samples of one patient the primary
    tumour (``01``) is preferred, then the lowest sample type, then the first vial.

    Parameters
    ----------
    ids
        Raw IDs of one source, in row order.
    source
        Name used in the messages.

    Returns
    -------
    A :class:`SampleSelection`.
    """
    keep = np.ones(len(ids), dtype=bool)
    parsed = [tcga_parts(i) for i in ids]
    if not any(parsed):
        return SampleSelection(keep)
    prefix = f"{source}: " if source else ""
    messages: list[str] = []
    non_tumour = [
        position for position, p in enumerate(parsed) if p and p[1] is not None and p[1] >= 10
    ]
    if non_tumour:
        keep[non_tumour] = False
        normal = [str(ids[i]) for i in non_tumour if parsed[i][1] < 20]
        control = [str(ids[i]) for i in non_tumour if parsed[i][1] >= 20]
        parts = []
        if normal:
            parts.append(f"{len(normal)} normal-tissue samples (e.g. {_examples(normal)})")
        if control:
            parts.append(f"{len(control)} control samples (e.g. {_examples(control)})")
        messages.append(
            f"{prefix}left out {' and '.join(parts)}: TCGA sample types 10-29 are not tumour"
        )
    by_patient: dict[str, list[int]] = {}
    for position, p in enumerate(parsed):
        if p and keep[position]:
            by_patient.setdefault(p[0], []).append(position)
    repeated = {patient: rows for patient, rows in by_patient.items() if len(rows) > 1}
    for rows in repeated.values():
        best = min(rows, key=lambda r: (parsed[r][1] != 1, parsed[r][1] or 0, parsed[r][2], r))
        keep[[r for r in rows if r != best]] = False
    if repeated:
        messages.append(
            f"{prefix}{len(repeated)} patients have several tumour samples; kept the primary "
            f"tumour (-01), first vial, of each (e.g. {_examples(repeated)})"
        )
    n_samples = sum(1 for p in parsed if p and p[1] is not None)
    if n_samples:
        messages.insert(
            0, f"{prefix}{n_samples} TCGA sample barcodes matched to their patient barcode"
        )
    return SampleSelection(keep, messages, TCGA_RULE)


def normalise_id(value: object, *, pattern: str | None = None) -> str:
    """Normalise a patient or sample ID so the same patient compares equal across files.

    The value is converted to text (integral floats such as ``7.0`` become ``"7"``), stripped,
    runs of whitespace collapse to one space and letters are upper-cased. With ``pattern`` (a
    regular expression, matched case-insensitively with :func:`re.search`) only the match is
    kept: its first group when the pattern has groups, else the whole match. A value that does
    not match the pattern is returned normalised but otherwise unchanged, so it simply stays
    unmatched in :func:`match_samples`.

    Parameters
    ----------
    value
        The ID as read from a file.
    pattern
        Optional regular expression extracting the comparable part, e.g. ``r"(R01-\\d{3})"``
        to turn ``"R01-023v1"`` into ``"R01-023"``.

    Returns
    -------
    The normalised ID (``""`` for a missing value).

    Examples
    --------
    >>> normalise_id("  r01-023 ")
    'R01-023'
    >>> normalise_id("Sample R01-023 rep1", pattern=r"(R01-\\d+)")
    'R01-023'
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    text = " ".join(str(value).split())
    if pattern is None:
        tcga = tcga_parts(text)
        if tcga is not None:
            return tcga[0]
    if pattern is not None:
        try:
            match = re.search(pattern, text, flags=re.IGNORECASE)
        except re.error as exc:
            raise InputError(
                f"ID pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from exc
        if match is not None:
            text = match.group(1) if match.re.groups else match.group(0)
            text = " ".join(text.split())
    return text.upper()


@dataclass
class MatchReport:
    """Which patients are present in every required source, and what did not match.

    Attributes
    ----------
    matched
        Sorted normalised IDs present in every required source.
    table
        One row per source (required first, then optional): ``source``, ``n_ids``,
        ``n_matched``, ``n_unmatched``, ``unmatched`` (``|``-joined, first 50, sorted).
    warnings
        Messages for the user.
    mapping
        Per source, original ID -> normalised ID, so callers can relabel their tables.
    """

    matched: list[str]
    table: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)


def _normalised_ids(source: str, ids: Iterable[object], pattern: str | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for original in ids:
        normalised = normalise_id(original, pattern=pattern)
        if not normalised:
            continue
        if normalised in seen and seen[normalised] != str(original):
            raise InputError(
                f"{source}: IDs {seen[normalised]!r} and {original!r} both normalise to "
                f"{normalised!r}; make the IDs unique or change the ID pattern"
            )
        seen[normalised] = str(original)
        mapping[str(original)] = normalised
    return mapping


def _examples(ids: Iterable[str], k: int = 3) -> str:
    shown = sorted(ids)[:k]
    return ", ".join(repr(i) for i in shown) if shown else "(none)"


def match_samples(
    sources: Mapping[str, Sequence[str]],
    *,
    optional: Mapping[str, Sequence[str]] | None = None,
    pattern: str | None = None,
    min_overlap: int = 10,
) -> MatchReport:
    """Match patient IDs across data sources.

    IDs are compared after :func:`normalise_id` (with ``pattern``). The matched set is the
    intersection of the *required* sources (typically expression and imaging); *optional*
    sources (clinical) are reported but never shrink it.

    Parameters
    ----------
    sources
        Required sources: name -> IDs.
    optional
        Sources that need not cover every matched patient: name -> IDs.
    pattern
        Regular expression passed to :func:`normalise_id`.
    min_overlap
        Fewest matched patients accepted.

    Returns
    -------
    A :class:`MatchReport`.

    Raises
    ------
    InputError
        No required source, two IDs of one source normalise to the same ID, or fewer than
        ``min_overlap`` IDs are shared (the message shows IDs from every source so a format
        mismatch such as ``R01-001`` vs ``r01_001`` is visible).
    """
    if not sources:
        raise InputError("no data sources to match: give at least expression and imaging IDs")
    optional = dict(optional or {})
    mappings = {name: _normalised_ids(name, ids, pattern) for name, ids in sources.items()}
    optional_maps = {name: _normalised_ids(name, ids, pattern) for name, ids in optional.items()}
    id_sets = {name: set(mapping.values()) for name, mapping in mappings.items()}
    matched = sorted(set.intersection(*id_sets.values()))

    if len(matched) < min_overlap:
        names = ", ".join(id_sets)
        shown = "; ".join(f"{name}: {_examples(ids)}" for name, ids in id_sets.items())
        hint = "" if pattern else ", or pass --id-pattern REGEX"
        if matched:
            hint += f", or lower --min-overlap (now {min_overlap}) to analyse a small cohort"
        raise InputError(
            f"only {len(matched)} patient IDs are shared by {names} (need at least "
            f"{min_overlap}); example IDs - {shown}; make the ID formats agree, choose the ID "
            f"column with --id-column INPUT=COLUMN{hint}"
        )

    matched_set = set(matched)
    rows = []
    warnings: list[str] = []
    for name, ids in {**id_sets, **{n: set(m.values()) for n, m in optional_maps.items()}}.items():
        unmatched = sorted(ids - matched_set)
        n_matched = len(ids & matched_set)
        rows.append(
            {
                "source": name,
                "n_ids": len(ids),
                "n_matched": n_matched,
                "n_unmatched": len(unmatched),
                "unmatched": "|".join(unmatched[:50]),
            }
        )
        if unmatched and name in id_sets:
            warnings.append(
                f"{name}: {len(unmatched)} of {len(ids)} IDs are not in every required source "
                f"and are left out of the analyses that need both (e.g. {_examples(unmatched)})"
            )
        if name in optional_maps:
            missing = sorted(matched_set - ids)
            if missing:
                warnings.append(
                    f"{name}: no entry for {len(missing)} of {len(matched)} matched patients "
                    f"(e.g. {_examples(missing)}); their values are missing"
                )
    table = pd.DataFrame(rows, columns=["source", "n_ids", "n_matched", "n_unmatched", "unmatched"])
    return MatchReport(
        matched=matched, table=table, warnings=warnings, mapping={**mappings, **optional_maps}
    )


SANE_MIN_N = 5
"""Fewest patients per test accepted for ``min_n``: below it a p-value means little."""
EXPLORATORY_N = 20
"""Cohorts below this many patients get a warning that results are exploratory."""


def check_min_n(min_n: int) -> None:
    """Refuse a ``--min-n`` below :data:`SANE_MIN_N`."""
    if min_n < SANE_MIN_N:
        raise InputError(
            f"--min-n must be at least {SANE_MIN_N} (a test on fewer patients means little), "
            f"got {min_n}"
        )


def cohort_size_notes(n_patients: int, min_n: int) -> tuple[list[str], str]:
    """Warnings about a small cohort, and why the map is empty (``""`` when it is not).

    Parameters
    ----------
    n_patients
        Patients with expression and imaging.
    min_n
        Fewest patients a test uses (``--min-n``).

    Returns
    -------
    The warnings for the user, and the reason the association map will have no test
    (for the explorer's empty state).
    """
    if n_patients < min_n:
        reason = (
            f"only {n_patients} patients have expression and imaging, fewer than --min-n "
            f"{min_n} (the fewest patients a test uses): no module, gene, mutation or survival "
            f"test can be run, so the map is empty"
        )
        advice = (
            f"; modules are still built but are unreliable with so few patients. Add patients, "
            f"or lower --min-n (at least {SANE_MIN_N}) to test anyway"
        )
        return [reason + advice], reason
    if n_patients < EXPLORATORY_N:
        return [
            f"only {n_patients} patients have expression and imaging: associations have little "
            f"power and modules are unstable; treat the map as exploratory"
        ], ""
    return [], ""


def _text_key(value: object) -> str:
    return " ".join(str(value).split()).lower().removeprefix("stage ")


def _numeric_values(series: pd.Series) -> pd.Series | None:
    """Non-missing values as floats when every one of them is a number, else None."""
    values = series.dropna()
    if isinstance(values.dtype, CategoricalDtype):
        values = values.astype(object)
    if is_bool_dtype(values.dtype):
        return values.astype(float)
    if is_numeric_dtype(values.dtype):
        return values.astype(float)
    numbers = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    if len(values) and numbers.notna().all():
        return numbers.astype(float)
    return None


def ordinal_levels(values: Iterable[object]) -> list[str] | None:
    """The known order of a set of text values, or None when no vocabulary fits.

    Parameters
    ----------
    values
        Text values (missing values are ignored).

    Returns
    -------
    The distinct values in vocabulary order (original spellings, first seen kept), when they
    all belong to one of :data:`ORDERED_VOCABULARIES`; else None.
    """
    spelled: dict[str, str] = {}
    for value in values:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        spelled.setdefault(_text_key(value), str(value))
    if not spelled:
        return None
    for vocabulary in ORDERED_VOCABULARIES:
        if set(spelled) <= set(vocabulary):
            return [spelled[key] for key in vocabulary if key in spelled]
    return None


def category_levels(series: pd.Series, feature_type: str) -> list[str]:
    """Category order for a feature of a given type.

    Numbers sort numerically. Ordinal and binary text put the reference level of
    :data:`BINARY_NEGATIVE_FIRST` first (absent before present), else follow
    :data:`ORDERED_VOCABULARIES`, else alphabetical; categorical text is alphabetical.

    Parameters
    ----------
    series
        The feature's values (missing values ignored).
    feature_type
        One of ``ordinal``, ``binary``, ``categorical``.

    Returns
    -------
    The distinct values as strings, in order.
    """
    if isinstance(series.dtype, CategoricalDtype):
        observed = set(series.dropna().astype(str))
        return [str(c) for c in series.cat.categories if str(c) in observed]
    numbers = _numeric_values(series)
    if numbers is not None:
        return [_format_number(v) for v in sorted(set(numbers))]
    distinct = sorted({str(v) for v in series.dropna()})
    if feature_type in ("ordinal", "binary"):
        keys = {_text_key(v) for v in distinct}
        for negative, positive in BINARY_NEGATIVE_FIRST:
            if keys == {negative, positive}:
                return sorted(distinct, key=lambda v: _text_key(v) != negative)
        return ordinal_levels(distinct) or distinct
    return distinct


ORDER_SOURCES = ("declared", "numeric", "vocabulary", "reference first", "categories", "")
"""How a feature's level order was chosen (the features table's ``order`` column): given in
the config, numeric, a known vocabulary, the reference level of a binary pair first, the
order of an input pandas Categorical, or none (unordered categories, continuous features)."""


def level_order(
    series: pd.Series,
    feature_type: str,
    *,
    name: object = None,
    declared: Sequence[str] | None = None,
) -> tuple[list[str], str]:
    """Levels of a categorical feature in order, and how the order was chosen.

    Parameters
    ----------
    series
        The feature's values (missing values ignored).
    feature_type
        ``ordinal``, ``binary`` or ``categorical``.
    name
        The feature's name, for messages.
    declared
        An explicit level list (lowest first) from the configuration; it must name every
        value present.

    Returns
    -------
    ``(levels, how)`` with ``how`` one of :data:`ORDER_SOURCES`.

    Raises
    ------
    InputError
        A value is missing from the declared list, or an ordinal feature's text values fit
        no known ordered vocabulary and no order was declared: its order would be a guess.
    """
    observed = [str(v) for v in series.dropna().unique()]
    if declared is not None:
        declared = [str(level) for level in declared]
        if len(set(declared)) != len(declared):
            raise InputError(f"feature_levels for {name!r}: a level is listed twice: {declared}")
        unknown = sorted(set(observed) - set(declared))
        if unknown:
            raise InputError(
                f"feature_levels for {name!r}: values {_examples(unknown)} are not in the "
                f"declared order {declared}; add them to the list (spelled as in the data)"
            )
        present = set(observed)
        return [level for level in declared if level in present], "declared"
    if isinstance(series.dtype, CategoricalDtype):
        present = set(observed)
        levels = [str(c) for c in series.cat.categories if str(c) in present]
        if feature_type != "ordinal" or series.cat.ordered:
            return levels, "categories" if feature_type != "categorical" else ""
    if _numeric_values(series) is not None:
        return category_levels(series, feature_type), "numeric"
    levels = category_levels(series, feature_type)
    if feature_type == "categorical":
        return levels, ""
    keys = {_text_key(v) for v in levels}
    if any(keys == set(pair) for pair in BINARY_NEGATIVE_FIRST):
        return levels, "reference first"
    if ordinal_levels(levels) is not None:
        return levels, "vocabulary"
    if feature_type == "ordinal":
        raise InputError(
            f"feature {name!r} is declared ordinal but its values ({_examples(levels, 6)}) "
            "fit no known ordered scale: give their order, lowest first, in the config "
            f"(feature_levels = {{ {json_key(name)} = [...] }})"
        )
    return levels, ""


def json_key(name: object) -> str:
    """A TOML key for a feature name (quoted when it is not a bare key)."""
    text = str(name)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else '"' + text.replace('"', '\\"') + '"'


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def infer_feature_type(series: pd.Series) -> str:
    """Guess a feature's type from its values.

    Rules, on the non-missing values:

    - boolean, or two distinct values (numbers or text) -> ``binary``;
    - numbers (or text that all parses as numbers): integer-valued with at most
      :data:`MAX_ORDINAL_LEVELS` distinct values, all within ±:data:`MAX_ORDINAL_INTEGER`
      -> ``ordinal`` (e.g. a 1-5 score), otherwise ``continuous``;
    - an ordered pandas ``Categorical`` -> ``ordinal``;
    - text whose values all belong to a known ordered vocabulary
      (:data:`ORDERED_VOCABULARIES`, e.g. none < mild < moderate < severe, T stages) ->
      ``ordinal``; other text -> ``categorical``. Attenuation-like vocabularies
      (solid / part-solid / ground glass) are deliberately not treated as ordered.

    A single distinct value is reported as ``binary``; readers drop such constant features.

    Parameters
    ----------
    series
        The feature's values.

    Returns
    -------
    One of ``continuous``, ``ordinal``, ``binary``, ``categorical``.

    Raises
    ------
    InputError
        The series has no non-missing value.
    """
    values = series.dropna()
    if values.empty:
        raise InputError(f"feature {series.name!r} has no values; drop it or fill it in")
    if is_bool_dtype(values.dtype):
        return "binary"
    if isinstance(values.dtype, CategoricalDtype):
        n_distinct = values.nunique()
        if n_distinct <= 2:
            return "binary"
        if values.cat.ordered:
            return "ordinal"
    numbers = _numeric_values(values)
    n_distinct = values.astype(str).nunique() if numbers is None else numbers.nunique()
    if n_distinct <= 2:
        return "binary"
    if numbers is not None:
        is_integer = bool(np.all(np.equal(np.mod(numbers, 1), 0)))
        small = bool((numbers.abs() <= MAX_ORDINAL_INTEGER).all())
        if is_integer and small and n_distinct <= MAX_ORDINAL_LEVELS:
            return "ordinal"
        return "continuous"
    if ordinal_levels(values.astype(str)) is not None:
        return "ordinal"
    return "categorical"


def check_types(types: Mapping[str, str], columns: Iterable[str]) -> None:
    """Check user-declared feature types.

    Parameters
    ----------
    types
        Feature name -> type (one of ``continuous``, ``ordinal``, ``binary``, ``categorical``).
    columns
        The feature names available.

    Raises
    ------
    InputError
        An unknown type name or an unknown feature name (all of them are listed).
    """
    bad_types = {name: kind for name, kind in types.items() if kind not in FEATURE_TYPES}
    if bad_types:
        listed = ", ".join(f"{name!r}: {kind!r}" for name, kind in bad_types.items())
        raise InputError(f"unknown feature type in {listed}; use one of {', '.join(FEATURE_TYPES)}")
    available = set(columns)
    unknown = [name for name in types if name not in available]
    if unknown:
        raise InputError(
            f"types given for unknown features {', '.join(repr(n) for n in unknown)}; "
            f"available features include {_examples(available, 5)}"
        )
