"""The view state of the explorer and its URL form.

Every selection that defines a view (page, threshold, feature, module, gene, ...) lives in
the URL, so any view can be bookmarked, shared and restored exactly. This module is pure:
:func:`parse_url` turns a pathname and query string into a validated :class:`ViewState`
plus messages for the user (an unknown gene becomes a message, never an error), and
:func:`to_search` / :func:`to_url` write a state back in a canonical form (only the keys
that the page uses, defaults left out, fixed key order), so that
``parse_url(to_url(state)) == state``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from urllib.parse import parse_qsl, urlencode

from .subset import Column, parse_subset

PAGES = (
    "map",
    "network",
    "volcano",
    "gene",
    "module",
    "cohort",
    "patient",
    "predict",
    "replication",
    "hypotheses",
)
DEFAULT_PAGE = "map"
PAGE_TITLES = {
    "map": "Map",
    "network": "Network",
    "volcano": "Volcano",
    "gene": "Gene",
    "module": "Modules",
    "cohort": "Cohort",
    "patient": "Patient",
    "predict": "Predict",
    "replication": "Replication",
    "hypotheses": "Hypotheses",
}
STATISTICS = ("effect", "signed_log10_q")
ROW_MODES = ("auto", "features", "families", "top")
Y_AXES = ("q", "p")
Q_CHOICES = (0.001, 0.01, 0.05, 0.1, 0.25)
TOP_RANGE = (5, 500)
SPLITS = ("median", "tertiles", "quartiles", "cut")
"""Survival splits of a continuous variable (as :data:`analysis.survival.SPLITS`)."""
CUT_RANGE = (-1e15, 1e15)

PAGE_KEYS: dict[str, tuple[str, ...]] = {
    "map": (
        "q",
        "stat",
        "sources",
        "groups",
        "min_effect",
        "rows",
        "top",
        "feature",
        "module",
        "color",
        "subset",
        "compare",
    ),
    "network": ("q", "min_effect", "sources", "groups"),
    "volcano": ("q", "min_effect", "feature", "y", "gene", "subset"),
    "gene": ("q", "gene", "feature", "color", "split", "cut", "subset"),
    "module": ("q", "module", "order"),
    "cohort": ("q", "km", "split", "cut", "subset"),
    "patient": ("q", "patient"),
    "predict": ("q", "target"),
    "replication": ("q",),
    "hypotheses": ("q",),
}
"""URL keys that each page reads and writes, in canonical order."""

SHARED_KEYS = ("q", "subset")
"""Keys carried over when the user moves to another page through the navigation bar."""
_CHOICES = {"stat": STATISTICS, "rows": ROW_MODES, "y": Y_AXES, "split": SPLITS}


@dataclass(frozen=True)
class ViewState:
    """Everything that defines a view; ``None`` / empty means "not chosen"."""

    page: str = DEFAULT_PAGE
    q: float = 0.05
    stat: str = "effect"
    sources: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    min_effect: float = 0.0
    rows: str = "auto"
    top: int = 40
    feature: str | None = None
    module: str | None = None
    gene: str | None = None
    y: str = "q"
    color: str | None = None
    order: str | None = None
    km: str | None = None
    split: str = "median"
    cut: float | None = None
    target: str | None = None
    subset: str = ""
    compare: str = ""
    patient: str | None = None

    def for_page(self, page: str) -> ViewState:
        """This state moved to ``page``, keeping only the shared keys."""
        kept = {key: getattr(self, key) for key in SHARED_KEYS}
        return ViewState(page=page, **kept)

    def map_options(self) -> dict:
        """The map's parameters in this state, as the map's figure functions take them."""
        keys = ("q", "stat", "sources", "groups", "min_effect", "rows", "top")
        return {key: getattr(self, key) for key in keys}

    def to_dict(self) -> dict:
        """Plain dict (lists for tuples), e.g. for provenance."""
        return {
            f.name: list(getattr(self, f.name))
            if isinstance(getattr(self, f.name), tuple)
            else getattr(self, f.name)
            for f in fields(self)
        }


DEFAULTS = ViewState()


@dataclass(frozen=True)
class Vocabulary:
    """The names a bundle knows, used to validate a state read from a URL.

    ``genes`` maps upper-case symbols to their spelling in the bundle, so that a URL with
    ``gene=egfr`` finds ``EGFR``. ``survival`` holds ``kind:variable`` choices;
    ``subset_columns`` the columns a ``subset`` / ``compare`` may filter on.
    """

    features: Collection[str] = ()
    modules: Collection[str] = ()
    genes: Mapping[str, str] = field(default_factory=dict)
    mutations: Collection[str] = ()
    sources: Collection[str] = ()
    groups: Collection[str] = ()
    survival: Collection[str] = ()
    subset_columns: Mapping[str, Column] = field(default_factory=dict)
    patients: Collection[str] = ()


def page_from_path(pathname: str | None, *, base: str = "/") -> str | None:
    """The page name of a pathname under ``base``; ``None`` for an unknown path.

    ``base`` + ``""`` (the app root) is the map page.
    """
    path = pathname or base
    base = base if base.endswith("/") else base + "/"
    if path.rstrip("/") + "/" == base:
        return DEFAULT_PAGE
    if not path.startswith(base):
        return None
    name = path[len(base) :].strip("/")
    return name if name in PAGES else None


def path_for(page: str, *, base: str = "/") -> str:
    """The pathname of ``page`` under ``base``."""
    base = base if base.endswith("/") else base + "/"
    return base + page


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


def _parse_float(
    raw: str, key: str, default: float, low: float, high: float, messages: list[str]
) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        messages.append(
            f"'{key}={raw}' is not a number between {low:g} and {high:g}; using {default:g}."
        )
        return default
    return value


def _parse_choice(
    raw: str, key: str, choices: Collection[str], default, messages: list[str], what: str
):
    if raw in choices:
        return raw
    messages.append(f"Unknown {what} '{raw}' in the link; it was ignored.")
    return default


def parse_url(
    pathname: str | None,
    search: str | None,
    vocabulary: Vocabulary,
    *,
    base: str = "/",
) -> tuple[ViewState, list[str]]:
    """Read and validate the view state of a URL.

    Parameters
    ----------
    pathname
        URL path (e.g. ``/volcano``), under ``base``.
    search
        Query string, with or without the leading ``?``.
    vocabulary
        Names the bundle knows; unknown names are dropped with a message.
    base
        The app's ``url_base_pathname``.

    Returns
    -------
    The state (an unknown page gives ``page=""``) and messages for the user, one per value
    that could not be used.
    """
    messages: list[str] = []
    page = page_from_path(pathname, base=base)
    if page is None:
        return replace(DEFAULTS, page=""), [f"There is no page at '{pathname}'."]
    raw = dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=False))
    allowed = PAGE_KEYS[page]
    values: dict = {"page": page}
    for key, text in raw.items():
        if key not in allowed:
            continue
        if key == "q":
            values["q"] = _parse_float(text, key, DEFAULTS.q, 1e-12, 1.0, messages)
        elif key == "min_effect":
            values["min_effect"] = _parse_float(text, key, 0.0, 0.0, 1e6, messages)
        elif key == "top":
            low, high = TOP_RANGE
            values["top"] = int(_parse_float(text, key, DEFAULTS.top, low, high, messages))
        elif key == "stat":
            values["stat"] = _parse_choice(
                text, key, STATISTICS, DEFAULTS.stat, messages, "statistic"
            )
        elif key == "rows":
            values["rows"] = _parse_choice(
                text, key, ROW_MODES, DEFAULTS.rows, messages, "row mode"
            )
        elif key == "y":
            values["y"] = _parse_choice(text, key, Y_AXES, DEFAULTS.y, messages, "y axis")
        elif key == "split":
            values["split"] = _parse_choice(
                text, key, SPLITS, DEFAULTS.split, messages, "survival split"
            )
        elif key == "cut":
            try:
                cut = float(text)
            except ValueError:
                cut = math.nan
            if math.isfinite(cut) and CUT_RANGE[0] <= cut <= CUT_RANGE[1]:
                values["cut"] = cut
            else:
                messages.append(f"'cut={text}' is not a number; the survival cut was ignored.")
        elif key in ("feature", "order"):
            values[key] = _parse_choice(text, key, vocabulary.features, None, messages, "feature")
        elif key == "module":
            values[key] = _parse_choice(text, key, vocabulary.modules, None, messages, "module")
        elif key == "color":
            values[key] = _parse_choice(text, key, vocabulary.mutations, None, messages, "mutation")
        elif key == "km":
            values[key] = _parse_choice(
                text, key, vocabulary.survival, None, messages, "survival variable"
            )
        elif key in ("subset", "compare"):
            subset, problems = parse_subset(text, vocabulary.subset_columns)
            messages.extend(problems)
            values[key] = subset.key
        elif key == "patient":
            values[key] = _parse_choice(text, key, vocabulary.patients, None, messages, "patient")
        elif key == "target":
            # Prediction targets live in the results file; the Predict page checks the name.
            values[key] = text[:200]
        elif key == "gene":
            gene = vocabulary.genes.get(text.upper())
            if gene is None:
                messages.append(f"Gene '{text}' is not in this dataset; search for another one.")
            values["gene"] = gene
        elif key in ("sources", "groups"):
            known = vocabulary.sources if key == "sources" else vocabulary.groups
            chosen = _split_list(text)
            unknown = [name for name in chosen if name not in known]
            if unknown:
                messages.append(
                    f"Unknown {key[:-1]} {', '.join(repr(u) for u in unknown)} in the link; ignored."
                )
            values[key] = tuple(sorted(name for name in chosen if name in known))
    return ViewState(**values), messages


def _format_value(value) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_search(state: ViewState) -> str:
    """The canonical query string (with ``?``, or ``""``) of ``state`` on its page."""
    items = []
    for key in PAGE_KEYS.get(state.page, ()):
        value = getattr(state, key)
        if value is None or value == () or value == getattr(DEFAULTS, key):
            continue
        items.append((key, _format_value(value)))
    return "?" + urlencode(items) if items else ""


def to_url(state: ViewState, *, base: str = "/") -> str:
    """Pathname and query string of ``state``."""
    return path_for(state.page, base=base) + to_search(state)


def from_controls(page: str, values: Mapping[str, object]) -> ViewState:
    """A state from the values of a page's controls (``None`` / ``[]`` = not chosen).

    Values come from Dash components, so lists become tuples and numbers are coerced; a
    value that cannot be used falls back to the default (the URL stays canonical).
    """
    kwargs: dict = {"page": page}
    for key, value in values.items():
        if key not in PAGE_KEYS.get(page, ()) or value is None or value == "":
            continue
        if key in ("sources", "groups"):
            kwargs[key] = (
                tuple(sorted({str(v) for v in value})) if isinstance(value, list | tuple) else ()
            )
        elif key in ("q", "min_effect"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number) and number >= 0 and (key != "q" or 0 < number <= 1):
                kwargs[key] = number
        elif key == "cut":
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number) and CUT_RANGE[0] <= number <= CUT_RANGE[1]:
                kwargs[key] = number
        elif key == "top":
            try:
                kwargs[key] = int(min(max(int(value), TOP_RANGE[0]), TOP_RANGE[1]))
            except (TypeError, ValueError):
                continue
        elif key in _CHOICES:
            if value in _CHOICES[key]:
                kwargs[key] = value
        else:
            kwargs[key] = str(value)
    return ViewState(**kwargs)
