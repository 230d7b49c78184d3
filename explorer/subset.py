"""Subsets of the cohort: which patients a view is recomputed on, and their URL form.

A subset is a conjunction of conditions on clinical (``obs``) or imaging columns: a
categorical column keeps the chosen levels (``histology`` in adenocarcinoma, squamous), a
numeric column a closed range (``age`` from 50 to 70; either end may be open). This module
is pure: :func:`parse_subset` reads and validates the URL form against the columns of a
bundle (:func:`subset_columns`), :func:`format_subset` writes it back canonically (columns
sorted, levels in the column's order), so ``parse_subset(format_subset(s)) == s``.

URL form: conditions joined by ``;``, each ``column:levels`` with levels joined by ``|``, or
``column:low~high`` for a range (``~70``: at most 70; ``50~``: at least 50). Names holding
one of ``:;|~%`` are percent-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

MAX_LEVELS = 30
"""A text column with more distinct values than this is an identifier, not a category."""
MIN_NUMERIC_VALUES = 6
"""A numeric column with fewer distinct values is offered as categories."""
_RESERVED = ":;|~%"
_SAFE = "".join(chr(c) for c in range(32, 127) if chr(c) not in _RESERVED)


@dataclass(frozen=True)
class Column:
    """A column patients can be filtered on.

    Attributes
    ----------
    name
        Column name in ``obs`` or the imaging table.
    label
        What the user reads.
    kind
        ``"categorical"`` (``levels`` are the choices) or ``"numeric"`` (a range within
        ``low`` .. ``high``).
    source
        ``"clinical"`` or ``"imaging"``.
    """

    name: str
    label: str
    kind: str
    source: str
    levels: tuple[str, ...] = ()
    low: float = math.nan
    high: float = math.nan


@dataclass(frozen=True)
class Condition:
    """Keep patients whose ``column`` is one of ``levels``, or within ``low`` .. ``high``."""

    column: str
    levels: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    @property
    def is_range(self) -> bool:
        return not self.levels

    def text(self) -> str:
        name = _escape(self.column)
        if self.levels:
            return name + ":" + "|".join(_escape(level) for level in self.levels)
        low = "" if self.low is None else _number_text(self.low)
        high = "" if self.high is None else _number_text(self.high)
        return f"{name}:{low}~{high}"

    def label(self, columns: Mapping[str, Column] | None = None) -> str:
        name = columns[self.column].label if columns and self.column in columns else self.column
        if self.levels:
            return f"{name} = {' or '.join(self.levels)}"
        if self.low is not None and self.high is not None:
            return f"{self.low:g} ≤ {name} ≤ {self.high:g}"
        if self.low is not None:
            return f"{name} ≥ {self.low:g}"
        return f"{name} ≤ {self.high:g}"

    def mask(self, values: pd.Series) -> np.ndarray:
        """Which of ``values`` pass (missing values never do)."""
        if self.levels:
            present = values.notna().to_numpy()
            text = values.astype(object).where(values.notna(), "").astype(str)
            return present & text.isin(self.levels).to_numpy()
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        keep = ~np.isnan(numbers)
        if self.low is not None:
            keep &= numbers >= self.low
        if self.high is not None:
            keep &= numbers <= self.high
        return keep


@dataclass(frozen=True)
class Subset:
    """Patients passing every condition (columns sorted: one canonical form per subset)."""

    conditions: tuple[Condition, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """The canonical URL form (``""`` for the whole cohort)."""
        return ";".join(condition.text() for condition in self.conditions)

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def label(self, columns: Mapping[str, Column] | None = None) -> str:
        return ", ".join(condition.label(columns) for condition in self.conditions)

    def with_condition(self, condition: Condition) -> Subset:
        """This subset with ``condition`` replacing any condition on the same column."""
        kept = [c for c in self.conditions if c.column != condition.column]
        return Subset(tuple(sorted([*kept, condition], key=lambda c: c.column)))

    def without(self, column: str) -> Subset:
        return Subset(tuple(c for c in self.conditions if c.column != column))

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of ``frame`` (holding every condition's column) are in the subset."""
        keep = np.ones(len(frame), dtype=bool)
        for condition in self.conditions:
            if condition.column not in frame.columns:
                return np.zeros(len(frame), dtype=bool)
            keep &= condition.mask(frame[condition.column])
        return keep


WHOLE_COHORT = Subset()


def _number_text(value: float) -> str:
    """A bound as typed, without float noise (12 significant digits)."""
    return f"{value:.12g}"


def _escape(text: str) -> str:
    return quote(str(text), safe=_SAFE)


def _level_text(values: pd.Series) -> tuple[str, ...]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().astype(str))
        return tuple(str(c) for c in values.cat.categories if str(c) in present)
    return tuple(sorted(set(values.dropna().astype(str))))


def describe_column(name: str, values: pd.Series, *, label: str, source: str) -> Column | None:
    """How ``values`` can be filtered, or ``None`` (no values, identifiers, a constant)."""
    present = values.dropna()
    if present.empty:
        return None
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and present.nunique() >= MIN_NUMERIC_VALUES:
        numbers = present.to_numpy(dtype=float)
        return Column(
            name, label, "numeric", source, low=float(numbers.min()), high=float(numbers.max())
        )
    levels = _level_text(values)
    if not 2 <= len(levels) <= MAX_LEVELS:
        return None
    return Column(name, label, "categorical", source, levels=levels)


def subset_columns(
    obs: pd.DataFrame, imaging: pd.DataFrame, labels: Mapping[str, str] | None = None
) -> dict[str, Column]:
    """Every clinical then imaging column patients can be filtered on, by name.

    A clinical column shadows an imaging feature of the same name.
    """
    labels = labels or {}
    columns: dict[str, Column] = {}
    for source, frame in (("clinical", obs), ("imaging", imaging)):
        for name in frame.columns:
            name = str(name)
            if name in columns:
                continue
            described = describe_column(
                name, frame[name], label=str(labels.get(name, name)), source=source
            )
            if described is not None:
                columns[name] = described
    return columns


def _parse_number(text: str) -> float | None:
    if text.strip() == "":
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse_condition(text: str, columns: Mapping[str, Column]) -> Condition:
    """One ``column:levels`` or ``column:low~high`` condition.

    Raises
    ------
    ValueError
        With a message for the user: unknown column or level, bad or empty range.
    """
    name, sep, rest = text.partition(":")
    name = unquote(name)
    if not sep or not name:
        raise ValueError(f"'{text}' is not 'column:levels' or 'column:low~high'")
    column = columns.get(name)
    if column is None:
        raise ValueError(f"there is no column '{name}' to filter patients on")
    if column.kind == "numeric":
        low_text, tilde, high_text = rest.partition("~")
        try:
            if not tilde:
                raise ValueError(rest)
            low, high = _parse_number(low_text), _parse_number(high_text)
        except ValueError:
            raise ValueError(
                f"'{rest}' is not a range for {column.label} (write low~high, e.g. "
                f"{column.low:g}~{column.high:g})"
            ) from None
        if low is None and high is None:
            raise ValueError(f"the range for {column.label} has no bounds")
        if low is not None and high is not None and low > high:
            raise ValueError(f"the range for {column.label} is empty ({low:g} > {high:g})")
        return Condition(column.name, low=low, high=high)
    chosen = {unquote(level) for level in rest.split("|") if level}
    unknown = sorted(chosen - set(column.levels))
    if unknown:
        raise ValueError(
            f"{column.label} has no level {', '.join(repr(u) for u in unknown)} "
            f"(levels: {', '.join(column.levels)})"
        )
    if not chosen:
        raise ValueError(f"no level of {column.label} chosen")
    return Condition(column.name, levels=tuple(level for level in column.levels if level in chosen))


def parse_subset(text: str | None, columns: Mapping[str, Column]) -> tuple[Subset, list[str]]:
    """Read a subset's URL form; conditions that cannot be used are dropped with a message."""
    conditions: dict[str, Condition] = {}
    messages: list[str] = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        try:
            condition = parse_condition(part.strip(), columns)
        except ValueError as error:
            messages.append(f"Subset: {error}; that condition was ignored.")
            continue
        conditions[condition.column] = condition
    return Subset(tuple(conditions[name] for name in sorted(conditions))), messages


def format_subset(subset: Subset) -> str:
    """The canonical URL form of ``subset`` (``""`` for the whole cohort)."""
    return subset.key
