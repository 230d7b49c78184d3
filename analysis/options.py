"""Type and range of every ``radmap analyze`` option, checked before any work starts.

A wrong value in a TOML config (``hub_count = -5``, ``seed = "one"``) must stop the run with
one line naming the option, not fail late with a traceback or silently give empty results.
The choices are spelled out here rather than imported, so that checking a config does not
load the analysis stages (scipy, scanpy); ``tests/analysis/test_options.py`` keeps them in
step with the stages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any

from .validate import SANE_MIN_N, InputError

ORIENTATIONS = ("auto", "genes_by_samples", "samples_by_genes")
SCALES = ("auto", "counts", "fpkm", "tpm", "log", "zscore")
MODULE_METHODS = ("wgcna", "leiden")
NETWORKS = ("signed", "unsigned")
CONTINUOUS_TESTS = ("spearman", "pearson")
BINARY_TESTS = ("welch", "student", "mannwhitney")
CATEGORICAL_TESTS = ("kruskal", "anova")
FEATURE_TYPES = ("continuous", "ordinal", "binary", "categorical")
FAMILIES = ("source", "analysis")
RESERVED_COLUMNS = ("_index",)
"""Column names AnnData cannot save (``obs``, ``obsm`` and ``uns`` tables)."""


@dataclass(frozen=True)
class Rule:
    """What one option may hold: ``kind`` and, for numbers, an inclusive range."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False


RULES: dict[str, Rule] = {
    "expression": Rule("path", optional=True),
    "imaging": Rule("paths"),
    "aim_dir": Rule("path", optional=True),
    "clinical": Rule("path", optional=True),
    "out": Rule("path", optional=True),
    "pseudonymise_key": Rule("path", optional=True),
    "name": Rule("text"),
    "orientation": Rule("choice", choices=ORIENTATIONS),
    "scale": Rule("choice", choices=SCALES),
    "max_missing": Rule("number", 0.0, 1.0),
    "id_pattern": Rule("regex", optional=True),
    "sheet": Rule("text", optional=True),
    "min_overlap": Rule("integer", 1),
    "feature_types": Rule("types"),
    "mutation_columns": Rule("texts_or_map", optional=True),
    "id_column": Rule("map"),
    "marker_values": Rule("map"),
    "survival_time": Rule("text", optional=True),
    "survival_event": Rule("text", optional=True),
    "derive_survival": Rule("bool", optional=True),
    "covariates": Rule("texts"),
    "keep_identifiers": Rule("bool"),
    "n_top_genes": Rule("integer", 2, choices=("all",)),
    "max_block_size": Rule("integer", 100, optional=True),
    "clip_mad": Rule("number"),
    "module_method": Rule("choice", choices=MODULE_METHODS),
    "power": Rule("integer", 1, 50, optional=True),
    "network": Rule("choice", choices=NETWORKS),
    "min_module_size": Rule("integer", 2),
    "deep_split": Rule("integer", 0, 4),
    "merge_cut_height": Rule("number", 0.0, 1.0),
    "hub_count": Rule("integer", 1),
    "leiden_resolution": Rule("number", 1e-6),
    "n_neighbors": Rule("integer", 2),
    "continuous_test": Rule("choice", choices=CONTINUOUS_TESTS),
    "binary_test": Rule("choice", choices=BINARY_TESTS),
    "categorical_test": Rule("choice", choices=CATEGORICAL_TESTS),
    "adjust_for": Rule("texts"),
    "min_n": Rule("integer", SANE_MIN_N),
    "min_group": Rule("integer", 1),
    "families": Rule("choice", choices=FAMILIES),
    "feature_levels": Rule("levels"),
    "gene_sets": Rule("texts"),
    "min_set_size": Rule("integer", 1),
    "max_set_size": Rule("integer", 1),
    "seed": Rule("integer", 0, 2**32 - 1),
    "permutations": Rule("integer", 0),
    "gene_permutations": Rule("integer", 0, choices=("auto",)),
    "size_feature": Rule("text", optional=True),
    "acquisition_covariates": Rule("texts"),
    "bootstraps": Rule("integer", 0, choices=("auto",)),
    "scheduler": Rule("text"),
    "workers": Rule("integer", 1),
    "viewer_url": Rule("text"),
}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range(rule: Rule) -> str:
    if rule.low is not None and rule.high is not None:
        return f"between {rule.low:g} and {rule.high:g}"
    if rule.low is not None:
        return f"at least {rule.low:g}"
    return f"at most {rule.high:g}"


def check_option(name: str, value: Any, *, origin: str = "options") -> None:
    """Raise an :class:`InputError` naming ``name`` if ``value`` breaks its :data:`RULES`."""
    rule = RULES.get(name)
    if rule is None:
        return
    where = (
        f"--{name.replace('_', '-')}" if origin == "command line" else f"{origin}: option {name!r}"
    )
    if value is None:
        if rule.optional:
            return
        raise InputError(f"{where} must be set")
    kind = rule.kind
    if kind in ("integer", "number") and rule.choices and value in rule.choices:
        return  # a word a number option also takes (n_top_genes = "all")
    if kind in ("integer", "number"):
        is_number = isinstance(value, int if kind == "integer" else int | float)
        is_number = is_number and not isinstance(value, bool)
        if not is_number or not math.isfinite(float(value)):
            wanted = "a whole number" if kind == "integer" else "a number"
            wanted += "".join(f" or {choice!r}" for choice in rule.choices)
            raise InputError(f"{where} must be {wanted}, not {_describe(value)}")
        too_low = rule.low is not None and value < rule.low
        too_high = rule.high is not None and value > rule.high
        if too_low or too_high:
            raise InputError(f"{where} must be {_range(rule)}, not {_describe(value)}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, not {_describe(value)}")
    elif kind in ("text", "regex"):
        if not isinstance(value, str):
            raise InputError(f"{where} must be text, not {_describe(value)}")
        if kind == "regex":
            try:
                re.compile(value)
            except re.error as error:
                raise InputError(f"{where} is not a valid regular expression ({error})") from None
    elif kind == "choice":
        if value not in rule.choices:
            raise InputError(
                f"{where} must be one of {', '.join(rule.choices)}, not {_describe(value)}"
            )
    elif kind == "path":
        if not isinstance(value, str | PathLike):
            raise InputError(f"{where} must be a file or folder path, not {_describe(value)}")
    elif kind == "texts_or_map" and isinstance(value, Mapping) or kind == "map":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise InputError(f"{where} must be a table of text = text, not {_describe(value)}")
    elif kind in ("paths", "texts", "texts_or_map"):
        wanted = str | PathLike if kind == "paths" else str
        if not isinstance(value, list | tuple) or not all(isinstance(v, wanted) for v in value):
            raise InputError(f"{where} must be a list of text, not {_describe(value)}")
    elif kind == "levels":
        if not isinstance(value, Mapping) or not all(
            isinstance(levels, list | tuple) and all(isinstance(v, str) for v in levels)
            for levels in value.values()
        ):
            raise InputError(
                f"{where} must be a table of feature = [levels, lowest first], not "
                f"{_describe(value)}"
            )
    elif kind == "types":
        if not isinstance(value, Mapping):
            raise InputError(f"{where} must be a table of feature = type, not {_describe(value)}")
        for feature, kind_of in value.items():
            if kind_of not in FEATURE_TYPES:
                raise InputError(
                    f"{where}: feature {feature!r} has type {_describe(kind_of)}; use one of "
                    + ", ".join(FEATURE_TYPES)
                )


def check_raw_text(name: str, value: Any, *, many: bool, origin: str = "options") -> None:
    """Before conversion: a path / name option holds text (``many``: or a list of texts)."""
    items = value if many and isinstance(value, list | tuple) else [value]
    if not all(isinstance(item, str | PathLike) for item in items):
        wanted = "text or a list of text" if many else "text"
        raise InputError(f"{origin}: option {name!r} must be {wanted}, not {_describe(value)}")


def check_config(config: Any, *, origin: str = "options") -> None:
    """Check every option of a :class:`~analysis.pipeline.Config` and how they go together."""
    for name in RULES:
        if hasattr(config, name):
            check_option(name, getattr(config, name), origin=origin)
    if config.max_set_size < config.min_set_size:
        raise InputError(
            f"{origin}: option 'max_set_size' ({config.max_set_size}) is below "
            f"'min_set_size' ({config.min_set_size})"
        )


def check_columns(columns: Iterable[object], source: str) -> None:
    """Refuse column names the bundle cannot hold (``_index``), naming the file."""
    for column in columns:
        if str(column) in RESERVED_COLUMNS:
            raise InputError(
                f"{source}: column {str(column)!r} is a name reserved by AnnData; rename it"
            )
