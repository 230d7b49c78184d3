"""The radiogenomic map: imaging features (rows) x gene modules (columns)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy.cluster.hierarchy import leaves_list, linkage

from ...analysis.validate import InputError
from ..figures.margins import fits_screen
from ..figures.style import (
    DIVERGING,
    MEASURE_NAMES,
    QUALITATIVE,
    UNSIGNED,
    FrozenArray,
    effect_title,
    empty_figure,
    figure_from_spec,
    format_p_values,
    labelled_categories,
    natural_key,
    order_modules,
    rows_height,
    scatter_type,
)

VALUES = ("effect", "signed_log10_q", "statistic")
VALUE_LABELS = {"effect": "effect", "signed_log10_q": "signed −log10 q", "statistic": "statistic"}
FAMILY_COLUMNS = (
    "effect_measure",
    "family",
    "module",
    "feature",
    "label",
    "test",
    "statistic",
    "effect",
    "p",
    "q",
    "n",
    "n_features",
    "n_significant",
)
OTHER_GROUP = "other"
_MIN_Q = 1e-300
_OPTIMAL_ORDERING_MAX = 500


def _check_columns(table: pd.DataFrame, required: Sequence[str], name: str) -> None:
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise InputError(f"{name} table lacks column(s) {missing}; pass the bundle's tidy table")


def feature_info(feature_ids: Sequence[str], features: pd.DataFrame | None) -> pd.DataFrame:
    """Label, group, source and type per feature ID, with defaults for unknown features.

    The result is indexed by feature ID; ``order`` gives the position in the features table
    (unknown features after the known ones, in natural order).
    """
    ids = pd.Index(pd.unique(pd.Series(list(feature_ids), dtype=str)))
    table = features if features is not None else pd.DataFrame()
    known = pd.Index(table.index.astype(str))
    first = np.flatnonzero(~known.duplicated())  # a duplicated ID takes its first row
    where = pd.Index(known[first]).get_indexer(ids)
    found = where >= 0
    row = np.zeros(len(ids), dtype=np.intp)
    row[found] = first[where[found]]
    info = pd.DataFrame(index=ids)
    for column, default in (("label", None), ("group", OTHER_GROUP), ("source", ""), ("type", "")):
        fallback = ids.to_numpy(dtype=object) if default is None else np.full(len(ids), default)
        if column in table and len(table):
            values = table[column].to_numpy(dtype=object)[row]
            given = found & pd.notna(values)
            given[given] = values[given].astype(str) != ""
            values = np.where(given, values, fallback)
        else:
            values = fallback
        info[column] = values.astype(str)
    position = pd.Series(np.where(found, row, -1), index=ids)
    unknown = sorted(ids[~found], key=natural_key)
    position[unknown] = len(known) + np.arange(len(unknown))
    info["order"] = position.astype(int)
    return info


def summarise_families(
    assoc: pd.DataFrame,
    features: pd.DataFrame | None,
    *,
    by: str = "group",
    q_threshold: float = 0.05,
    sources: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per feature family x module carrying the family's strongest association.

    Parameters
    ----------
    assoc
        Module x feature associations (bundle ``associations``).
    features
        Bundle ``features`` table (index feature ID), used for labels and families.
    by
        Column of ``features`` that defines a family (``group``, ``source``, ``type``).
    q_threshold
        Threshold used to count significant features per family and module.
    sources
        Only summarise features whose ``source`` is in this list (e.g. ``["radiomic"]``);
        other features stay as their own one-member family named by their ID.
        ``None`` summarises every feature.

    Returns
    -------
    Columns ``family``, ``module``, ``feature`` (ID of the feature with the smallest q in the
    family, ties broken by larger ``|effect|`` then ID), ``label``, ``test``, ``statistic``,
    ``effect``, ``p``, ``q``, ``n``, ``n_features`` (features of the family tested against
    the module) and ``n_significant`` (of those with ``q < q_threshold``).
    """
    if assoc is None or assoc.empty:
        return pd.DataFrame(columns=list(FAMILY_COLUMNS))
    _check_columns(assoc, ["module", "feature", "effect", "q"], "associations")
    info = feature_info(assoc["feature"].astype(str), features)
    if by not in info.columns:
        if features is None or by not in features.columns:
            raise InputError(f"features table has no column {by!r} to define families")
        info[by] = features[by].astype(str).reindex(info.index).fillna(OTHER_GROUP)
    table = assoc.copy()
    table["feature"] = table["feature"].astype(str)
    table["module"] = table["module"].astype(str)
    for column in ("test", "statistic", "p", "n"):
        if column not in table:
            table[column] = np.nan
    if "effect_measure" not in table:
        table["effect_measure"] = ""
    family = info[by].reindex(table["feature"]).to_numpy()
    if sources is not None:
        keep = ~info["source"].reindex(table["feature"]).isin(list(sources)).to_numpy()
        family = np.where(keep, table["feature"].to_numpy(), family)
    table["family"] = family
    table["label"] = info["label"].reindex(table["feature"]).to_numpy()
    family_codes, _ = pd.factorize(table["family"])
    module_codes, modules = pd.factorize(table["module"])
    pair = family_codes * len(modules) + module_codes
    q = table["q"].to_numpy(dtype=float)
    strength = -np.abs(table["effect"].to_numpy(dtype=float))
    # smallest q first, then largest |effect|, then feature ID; missing values last
    order = np.lexsort(
        (
            pd.factorize(table["feature"], sort=True)[0],
            np.nan_to_num(strength),
            np.isnan(strength),
            np.nan_to_num(q),
            np.isnan(q),
        )
    )
    first = np.sort(np.unique(pair[order], return_index=True)[1])
    strongest = order[first]
    result = table.iloc[strongest].copy()
    result["n_features"] = np.bincount(pair)[pair[strongest]]
    result["n_significant"] = np.bincount(pair, weights=q < q_threshold)[pair[strongest]]
    result = result.sort_values(["family", "module"], key=_natural_rank, kind="mergesort")
    result["n_significant"] = result["n_significant"].astype(int)
    extra = [column for column in ("stability",) if column in result]
    return result[[*FAMILY_COLUMNS, *extra]].reset_index(drop=True)


def _natural_rank(values: pd.Series) -> pd.Series:
    """Rank of each value in natural order (equal natural keys share a rank)."""
    keys = {value: natural_key(value) for value in pd.unique(values)}
    rank = {key: k for k, key in enumerate(sorted(set(keys.values())))}
    return values.map({value: rank[key] for value, key in keys.items()})


def leaf_order(matrix: np.ndarray) -> np.ndarray:
    """Row order of an average-linkage dendrogram (NaN treated as 0), deterministic."""
    n_rows = matrix.shape[0]
    if n_rows < 3:
        return np.arange(n_rows)
    filled = np.nan_to_num(np.asarray(matrix, dtype=float), nan=0.0)
    tree = linkage(
        filled,
        method="average",
        metric="euclidean",
        optimal_ordering=n_rows <= _OPTIMAL_ORDERING_MAX,
    )
    return leaves_list(tree)


def _cell_values(table: pd.DataFrame, value: str) -> pd.Series:
    """Cell colours; an unsigned effect measure (epsilon-squared, Cramér's V, ...) has no
    direction, so its cells stay at the neutral middle of the diverging scale (the hover
    gives the value and names the measure)."""
    signed = _is_signed(table)
    if value == "signed_log10_q":
        q = table["q"].clip(lower=_MIN_Q)
        return (np.sign(table["effect"]) * -np.log10(q)).where(signed, 0.0)
    return table[value].astype(float).where(signed | table[value].isna(), 0.0)


def _measure_scales(table: pd.DataFrame, value: str) -> tuple[pd.Series, pd.Series, dict]:
    """The colour scale of each cell: one per effect measure (a Spearman ρ and a Hedges' g
    mean different things), signed measures on a diverging scale, unsigned ones (ε²,
    Cramér's V, ...) on a sequential one. For ``signed_log10_q`` the scale is shared by the
    signed measures (−log10 q means the same for all) and by the unsigned ones (no sign).

    Returns the scale key and the value drawn per table row, and per key its title and
    whether it is signed, in drawing order (signed first, then by number of cells).
    """
    signed = _is_signed(table)
    measure = (
        table["effect_measure"].fillna("").astype(str)
        if "effect_measure" in table.columns
        else pd.Series("", index=table.index)
    )
    names = measure.map(lambda m: MEASURE_NAMES.get(m, m) if m else "")
    if not names.astype(bool).any():
        names = pd.Series(effect_title(table), index=table.index)
    names = names.where(names != "", "effect")
    if value == "signed_log10_q":
        minus_log_q = -np.log10(table["q"].clip(lower=_MIN_Q))
        drawn = minus_log_q.where(~signed, np.sign(table["effect"]) * minus_log_q)
        key = pd.Series(np.where(signed, "signed", "unsigned"), index=table.index)
        titles = {"signed": "signed −log10 q", "unsigned": "−log10 q (no direction)"}
    else:
        drawn = table[value].astype(float)
        key = names + np.where(signed, "", " (no direction)")
        prefix = "statistic, " if value == "statistic" else ""
        titles = {k: prefix + k for k in pd.unique(key)}
    present = key[drawn.notna()] if drawn.notna().any() else key
    counts = present.value_counts()
    is_signed = signed.groupby(key).all()
    order = sorted(pd.unique(key), key=lambda k: (not is_signed[k], -counts.get(k, 0), k))
    return key, drawn, {k: (titles[k], bool(is_signed[k])) for k in order}


def _colorbar_places(n_scales: int) -> list[tuple[float, float]]:
    """(y, len) of each colour bar, stacked down the top of the figure's right side (the
    legend keeps the bottom)."""
    if n_scales <= 1:
        return [(1.0, 0.45)]
    gap = 0.06
    length = (0.64 - gap * (n_scales - 1)) / n_scales
    return [(1.0 - k * (length + gap), length) for k in range(n_scales)]


def _is_signed(table: pd.DataFrame) -> pd.Series:
    from radmap.analysis.associate import SIGNED_MEASURES

    if "effect_measure" not in table.columns:
        return pd.Series(True, index=table.index)
    measure = table["effect_measure"].astype(str)
    return measure.isin(SIGNED_MEASURES) | (measure == "")


def _significant(table: pd.DataFrame, q_threshold: float, min_effect: float) -> pd.Series:
    return (table["q"] < q_threshold) & (table["effect"].abs() >= min_effect)


def _round_sig(values: np.ndarray, digits: int) -> list:
    """Values rounded to ``digits`` significant digits (short in JSON), NaN as None."""
    return [
        float(f"{v:.{digits}g}") if math.isfinite(v) else None
        for v in np.asarray(values, dtype=float).tolist()
    ]


def _as_int(values: np.ndarray) -> list:
    return [int(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


def _unique_labels(labels: pd.Series, ids: pd.Index) -> list[str]:
    duplicated = labels.duplicated(keep=False).to_numpy()
    return [
        f"{label} ({id_})" if dup else label for label, id_, dup in zip(labels, ids, duplicated)
    ]


def _discrete_colorscale(n_colors: int) -> list:
    scale = []
    for k in range(n_colors):
        color = QUALITATIVE[k % len(QUALITATIVE)]
        scale += [[k / n_colors, color], [(k + 1) / n_colors, color]]
    return scale


def _family_rows(
    table: pd.DataFrame, info: pd.DataFrame, family_sources: Sequence[str] | None
) -> pd.DataFrame:
    """Label, strip category and table order of each row of a family-summarised map."""
    first = table.drop_duplicates("row").set_index("row")
    is_family = ~first.index.isin(info.index)
    carrier = info.reindex(first["feature"])
    family_size = table.groupby("row")["n_features"].max()
    summarised = info["source"].isin(list(family_sources or info["source"]))
    member_family = info["group"].where(summarised, info.index.to_series())
    family_order = info["order"].groupby(member_family).min()
    return pd.DataFrame(
        {
            "label": [
                f"{name} [{family_size[name]}]" if grouped else label
                for name, grouped, label in zip(first.index, is_family, carrier["label"])
            ],
            "strip": np.where(is_family, carrier["source"], carrier["group"]),
            "order": family_order.reindex(first.index).to_numpy(),
        },
        index=first.index,
    )


def _grid_positions(
    table: pd.DataFrame, rows: list[str], modules: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each table row in a ``rows`` x ``modules`` grid (-1: not shown)."""
    return (
        pd.Index(rows).get_indexer(table["row"]),
        pd.Index(modules).get_indexer(table["module"]),
    )


def _grid(
    values: np.ndarray, positions: tuple[np.ndarray, np.ndarray], shape: tuple[int, int], fill
) -> np.ndarray:
    """``values`` placed on a grid at ``positions`` (rows / columns -1 are dropped)."""
    row, column = positions
    shown = (row >= 0) & (column >= 0)
    dtype = object if fill is None else float
    grid = np.full(shape, fill, dtype=dtype)
    grid[row[shown], column[shown]] = np.asarray(values, dtype=dtype)[shown]
    return grid


def _cell_customdata(
    table: pd.DataFrame,
    positions: tuple[np.ndarray, np.ndarray],
    shape: tuple[int, int],
    modules: list[str],
    *,
    families: bool,
) -> list[list[list]]:
    """Per cell (rows x modules, ``shape``) ``[feature_id, module, statistic, effect, p, q,
    n(, n_features, n_significant), measure(, stability)]``; ``positions`` places the
    table's rows in the grid (:func:`_grid_positions`).

    Numbers are rounded to a few significant digits to keep the JSON small; p and q are
    text as everywhere in the explorer (:func:`format_p`).
    """

    def grid(column: str) -> np.ndarray:
        return _grid(table[column].to_numpy(dtype=float), positions, shape, np.nan)

    feature = _grid(table["feature"].to_numpy(dtype=object), positions, shape, None)
    columns = [
        feature,
        np.broadcast_to(np.array(modules, dtype=object), shape),
    ]
    for column, digits in (("statistic", 4), ("effect", 3)):
        columns.append(_round_sig(grid(column).ravel(), digits))
    columns += [format_p_values(grid(column).ravel(), missing="—") for column in ("p", "q")]
    counts = ("n", "n_features", "n_significant") if families else ("n",)
    columns += [_as_int(grid(column).ravel()) for column in counts]
    measure = (
        table["effect_measure"].fillna("").astype(str).map(lambda m: MEASURE_NAMES.get(m, m))
        if "effect_measure" in table.columns
        else pd.Series("effect", index=table.index)
    ).replace("", "effect")
    measure = measure.where(_is_signed(table), measure + " (no direction)")
    measures = _grid(measure.to_numpy(dtype=object), positions, shape, None).ravel()
    columns.append([m if m is not None else "effect" for m in measures])
    if "stability" in table:
        stability = grid("stability").ravel()
        columns.append([f"{v:.0%}" if math.isfinite(v) else "—" for v in stability])
    cells = np.stack([np.asarray(c, dtype=object).reshape(shape) for c in columns], axis=-1)
    return cells.tolist()


def _kept_cells(cells: list[list[list]], keep: np.ndarray) -> FrozenArray:
    """``cells`` (rows x modules) with those outside ``keep`` as ``None`` (another trace
    shows them)."""
    return FrozenArray(
        FrozenArray(FrozenArray(cell) if kept else None for cell, kept in zip(row, kept_row))
        for row, kept_row in zip(cells, keep.tolist())
    )


def _strip_trace(labels: list[str], categories: pd.Series, title: str) -> dict:
    """One-column heatmap colouring each row by its category (feature group or source)."""
    levels = sorted(pd.unique(categories), key=natural_key)
    code = {name: k for k, name in enumerate(levels)}
    return {
        "type": "heatmap",
        "x": [title],
        "y": labels,
        "z": np.array([[code[c]] for c in categories], dtype=np.float32),
        "customdata": FrozenArray(FrozenArray([c]) for c in categories),
        "colorscale": _discrete_colorscale(len(levels)),
        "zmin": -0.5,
        "zmax": len(levels) - 0.5,
        "showscale": False,
        "hovertemplate": f"<b>%{{y}}</b><br>{title} %{{customdata}}<extra></extra>",
        "name": title,
        "xaxis": "x",
        "yaxis": "y",
    }


def _strip_legend(categories: pd.Series, title: str) -> list[dict]:
    """Legend entries for the strip colours (empty above 12 categories: hover names them)."""
    levels = sorted(pd.unique(categories), key=natural_key)
    if len(levels) > 12:
        return []
    return [
        {
            "type": "scatter",
            "x": [None],
            "y": [None],
            "mode": "markers",
            "marker": {"symbol": "square", "size": 10, "color": QUALITATIVE[k % len(QUALITATIVE)]},
            "name": name,
            "legendgroup": title,
            "legendgrouptitle": {"text": title},
            "hoverinfo": "skip",
            "xaxis": "x2",
            "yaxis": "y2",
        }
        for k, name in enumerate(levels)
    ]


def _flag_marks(table: pd.DataFrame, label_of: dict, show_labels: bool) -> list[dict]:
    """A distinct mark on cells with trust flags (size surrogate, driven by one patient...),
    hovering the flags; none when the table has no ``flags`` column or no flagged cell."""
    if "flags" not in table:
        return []
    flagged = table[table["flags"].fillna("").astype(str) != ""]
    flagged = flagged[flagged["row"].isin(list(label_of))]
    if flagged.empty:
        return []
    return [
        {
            "type": "scatter",
            "x": flagged["module"].tolist(),
            "y": [label_of[row] for row in flagged["row"]],
            "mode": "markers",
            "marker": {
                "symbol": "x-thin-open",
                "size": 11 if show_labels else 7,
                "color": "#d95f02",
                "line": {"color": "#d95f02", "width": 2},
            },
            "text": flagged["flags"].astype(str).str.replace("|", ", ", regex=False).tolist(),
            "hovertemplate": "%{text}<extra></extra>",
            "name": "trust flag (size surrogate, one patient)",
            "showlegend": True,
            "xaxis": "x2",
            "yaxis": "y2",
        }
    ]


STABLE_FRACTION = 0.8
"""A link is drawn as stable when it passes in at least this fraction of the bootstraps."""


def _stability_marks(
    table: pd.DataFrame, label_of: dict, show_labels: bool, bootstraps: int | None
) -> list[dict]:
    """A square outline on the links that pass in at least :data:`STABLE_FRACTION` of the
    bootstrap resamples (bundle ``stability``), hovering the fraction; none without it."""
    if "stability" not in table or not table["stability"].notna().any():
        return []
    stable = table[(table["stability"] >= STABLE_FRACTION) & table["row"].isin(list(label_of))]
    runs = f" of {bootstraps:,} bootstraps" if bootstraps else " of the bootstraps"
    return [
        {
            "type": "scatter",
            "x": stable["module"].tolist(),
            "y": [label_of[row] for row in stable["row"]],
            "mode": "markers",
            "marker": {
                "symbol": "square-open",
                "size": 16 if show_labels else 9,
                "color": "black",
                "line": {"color": "black", "width": 1.5},
            },
            "text": [f"stable: passes in {v:.0%}{runs}" for v in stable["stability"]],
            "hovertemplate": "%{text}<extra></extra>",
            "name": f"stable (≥ {STABLE_FRACTION:.0%}{runs})",
            "showlegend": True,
            "xaxis": "x2",
            "yaxis": "y2",
        }
    ]


@fits_screen
def map_heatmap(
    assoc: pd.DataFrame,
    features: pd.DataFrame | None,
    *,
    value: Literal["effect", "signed_log10_q", "statistic"] = "effect",
    q_threshold: float = 0.05,
    min_effect: float = 0.0,
    cluster: bool = True,
    families: bool | Literal["auto"] = "auto",
    family_sources: Sequence[str] | None = ("radiomic",),
    max_rows: int = 150,
    max_labels: int | None = None,
    column_title: str = "module",
    bootstraps: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Heatmap of module x imaging-feature associations with significant cells marked.

    Parameters
    ----------
    assoc
        Bundle ``associations`` (``module``, ``feature``, ``test``, ``statistic``,
        ``effect``, ``p``, ``q``, ``n``).
    features
        Bundle ``features`` table (index feature ID; ``label``, ``type``, ``source``,
        ``group``); features missing from it are shown by ID in group ``"other"``.
    value
        Cell colour: ``effect``, ``signed_log10_q`` (sign of effect x -log10 q) or
        ``statistic``. Each effect measure gets its own heatmap trace and titled colour
        bar (:func:`_measure_scales`): signed measures on a diverging scale centred at 0,
        unsigned ones (ε², Cramér's V) on a sequential scale from 0.
    q_threshold, min_effect
        A cell is marked significant when ``q < q_threshold`` and ``|effect| >= min_effect``.
    cluster
        Order rows and columns by average-linkage clustering of the values (NaN as 0);
        otherwise rows follow the features table and modules their natural order.
    families
        Summarise feature families (:func:`summarise_families` by ``group``) into one row
        each: ``True``, ``False`` or ``"auto"`` (when there are more than ``max_rows``
        features). Only features whose source is in ``family_sources`` are summarised.
    max_rows
        Row count above which ``families="auto"`` summarises.
    max_labels
        Row labels are hidden above this many rows (hover still names every row);
        ``None`` labels every row, and the figure grows to give each row a legible line.
    column_title
        Title of the column axis (``"mutation"`` when reused for mutations).
    bootstraps
        Number of bootstrap resamples behind a ``stability`` column of ``assoc`` (for the
        legend). With that column, links passing in at least :data:`STABLE_FRACTION` of the
        resamples get a square outline and every cell's hover gives its stability; without
        it nothing changes.
    title
        Figure title.

    Returns
    -------
    The figure: a group strip, then one heatmap per colour scale (its other cells empty).
    Heatmap ``customdata`` per cell is ``[feature_id, module, statistic,
    effect, p, q, n]`` (family rows add ``n_features, n_significant``; ``feature_id`` is the
    feature carrying the family's strongest association).
    """
    if value not in VALUES:
        raise InputError(f"value must be one of {VALUES}, got {value!r}")
    if assoc is None or assoc.empty:
        return empty_figure(
            "No associations to show: build the map with `radmap analyze` or relax the filters.",
            title=title,
        )
    _check_columns(assoc, ["module", "feature", "effect", "q"], "associations")
    table = assoc.copy()
    table["feature"] = table["feature"].astype(str)
    table["module"] = table["module"].astype(str)
    for column in ("statistic", "p", "n"):
        if column not in table:
            table[column] = np.nan
    duplicated = table.duplicated(["feature", "module"])
    if duplicated.any():
        first = table.loc[duplicated].iloc[0]
        raise InputError(
            f"associations has several rows for feature {first['feature']!r} x module "
            f"{first['module']!r}; pass one test per pair"
        )
    info = feature_info(table["feature"], features)
    summarise = families is True or (families == "auto" and table["feature"].nunique() > max_rows)
    if summarise:
        table = summarise_families(
            table, features, by="group", q_threshold=q_threshold, sources=family_sources
        )
        table["row"] = table["family"]
        rows = _family_rows(table, info, family_sources)
        strip_title = "source / group"
    else:
        table["row"] = table["feature"]
        rows = info.reindex(pd.unique(table["row"]))[["label", "group", "order"]]
        rows = rows.rename(columns={"group": "strip"})
        strip_title = "group"

    table["value"] = _cell_values(table, value)
    row_ids = sorted(rows.index, key=natural_key)
    modules = order_modules(table["module"])
    matrix = _grid(
        table["value"].to_numpy(dtype=float),
        _grid_positions(table, row_ids, modules),
        (len(row_ids), len(modules)),
        np.nan,
    )
    if cluster:
        row_order = [row_ids[i] for i in leaf_order(matrix)]
        module_order = [modules[i] for i in leaf_order(matrix.T)]
    else:
        row_order = list(rows.loc[row_ids].sort_values("order", kind="mergesort").index)
        module_order = modules
    rows = rows.loc[row_order]
    labels = _unique_labels(rows["label"].astype(str), rows.index)
    label_of = dict(zip(row_order, labels))
    measure_index = 9 if summarise else 7
    hover = (
        "<b>%{y}</b><br>"
        f"{column_title} %{{x}}<br>"
        f"statistic %{{customdata[2]}}<br>%{{customdata[{measure_index}]}} %{{customdata[3]}}<br>"
        "p %{customdata[4]}<br>q %{customdata[5]}<br>n %{customdata[6]}"
    )
    if summarise:
        hover += (
            "<br>strongest feature %{customdata[0]}"
            "<br>significant %{customdata[8]} of %{customdata[7]} features"
        )
    if "stability" in table and table["stability"].notna().any():
        hover += f"<br>stability %{{customdata[{measure_index + 1}]}} of bootstraps"
    strip = rows["strip"].astype(str)
    scale_key, drawn, scales = _measure_scales(table, value)
    positions = _grid_positions(table, row_order, module_order)
    shape = (len(row_order), len(module_order))
    key_grid = _grid(scale_key.to_numpy(dtype=object), positions, shape, None)
    drawn_grid = _grid(drawn.to_numpy(dtype=float), positions, shape, np.nan)
    cells = _cell_customdata(table, positions, shape, module_order, families=summarise)
    cell_traces = []
    for (key, (scale_title, signed)), (bar_y, bar_len) in zip(
        scales.items(), _colorbar_places(len(scales))
    ):
        mine = key_grid == key
        values = np.where(mine, drawn_grid, np.nan)
        finite = values[np.isfinite(values)]
        top = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
        scale = (
            {"colorscale": DIVERGING, "zmin": -top, "zmax": top, "zmid": 0.0}
            if signed
            else {"colorscale": UNSIGNED, "zmin": 0.0, "zmax": top}
        )
        cell_traces.append(
            {
                "type": "heatmap",
                "x": module_order,
                "y": labels,
                "z": values.astype(np.float32),
                "customdata": _kept_cells(cells, mine),
                **scale,
                "colorbar": {
                    "title": {"text": scale_title, "side": "right"},
                    "len": bar_len,
                    "y": bar_y,
                    "yanchor": "top",
                },
                "hovertemplate": hover + "<extra></extra>",
                "hoverongaps": False,
                "name": scale_title,
                "meta": {"scale": key, "signed": signed},
                "xaxis": "x2",
                "yaxis": "y2",
            }
        )
    marked = table.loc[_significant(table, q_threshold, min_effect), ["row", "module"]]
    marker_name = f"q < {q_threshold:g}" + (f", |effect| ≥ {min_effect:g}" if min_effect else "")
    show_labels = max_labels is None or len(row_order) <= max_labels
    marks = {
        "type": scatter_type(len(marked)),
        "x": marked["module"].tolist(),
        "y": [label_of[row] for row in marked["row"]],
        "mode": "markers",
        "marker": {
            "symbol": "circle",
            "size": 5 if show_labels else 3,
            "color": "white",
            "line": {"color": "black", "width": 1},
        },
        "hoverinfo": "skip",
        "name": marker_name,
        "showlegend": True,
        "xaxis": "x2",
        "yaxis": "y2",
    }
    traces = [_strip_trace(labels, strip, strip_title), *cell_traces, marks]
    traces += _flag_marks(table, label_of, show_labels)
    traces += _stability_marks(table, label_of, show_labels, bootstraps)
    traces += _strip_legend(strip, strip_title)

    height = rows_height(len(row_order), chrome=170, minimum=380) if show_labels else 380
    row_axis = {
        "type": "category",
        "categoryorder": "array",
        "categoryarray": labels,
        "autorange": "reversed",
        "ticks": "",
        "showline": False,
        "domain": [0.0, 1.0],
    }
    column_axis = {"type": "category", "ticks": "", "showline": False}
    layout = {
        "xaxis": column_axis | {"anchor": "y", "domain": [0.0, 0.02485], "showticklabels": False},
        "xaxis2": column_axis
        | {
            "anchor": "y2",
            "domain": [0.03085, 1.0],
            "title": {"text": column_title},
            "categoryorder": "array",
            "categoryarray": module_order,
            "tickangle": -45
            if len(module_order) > 8
            else None,  # None: plotly turns crowded labels
        }
        | labelled_categories(module_order),
        "yaxis": row_axis
        | {"anchor": "x", "showticklabels": show_labels}
        | (labelled_categories(labels) if show_labels else {}),
        "yaxis2": row_axis | {"anchor": "x2", "matches": "y", "showticklabels": False},
        "height": int(height),
        "legend": {"x": 1.02, "xanchor": "left", "y": 0.0, "yanchor": "bottom"},
        "meta": {"value": value, "q_threshold": q_threshold, "min_effect": min_effect},
    }
    if not show_labels:
        layout["yaxis"]["title"] = {"text": f"{len(row_order)} rows (hover for names)"}
    if title:
        layout["title"] = {"text": title}
    return figure_from_spec(traces, layout)
