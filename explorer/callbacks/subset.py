"""Subset panel callbacks: edit the subset (or the comparison subset); the banner naming it
comes with the URL's new query string (``_write_state`` in callbacks/core.py).

:func:`resolve` is what the page callbacks use: the bundle restricted to the URL's subset
(recomputed, cached per subset by :meth:`explorer.data.BundleData.subset_view`), or the
whole cohort when the subset cannot be tested (the banner says why).
"""

from __future__ import annotations

from dash import MATCH, Input, Output, State, callback_context
from dash.exceptions import PreventUpdate

from ...analysis.validate import InputError
from ..callbacks.common import AppContext, register_option_search, stays_hidden
from ..data import BundleData
from ..pages.common import HIDDEN_AT_WIDTH, graph_id, sid, store_id
from ..pages.map import COMPARE_REQUEST
from ..pages.subset import banner as banner
from ..pages.subset import column_options, panel_id
from ..subset import Condition, parse_subset


def resolve(data: BundleData, subset: str | None) -> BundleData:
    """``data`` restricted to ``subset``; the whole cohort if the subset cannot be tested."""
    try:
        return data.subset_view(subset)
    except InputError:
        return data


def edited(
    data: BundleData,
    current: str | None,
    column: str | None,
    levels: list | None,
    low,
    high,
) -> str:
    """The subset ``current`` with the condition on ``column`` set (or dropped when empty)."""
    columns = data.subset_columns()
    subset, _ = parse_subset(current, columns)
    if not column or column not in columns:
        return subset.key
    if columns[column].kind == "numeric":
        low = None if low in (None, "") else float(low)
        high = None if high in (None, "") else float(high)
        if low is None and high is None:
            return subset.without(column).key
        if low is not None and high is not None and low > high:
            low, high = high, low
        return subset.with_condition(Condition(column, low=low, high=high)).key
    chosen = tuple(level for level in columns[column].levels if level in set(levels or ()))
    if not chosen:
        return subset.without(column).key
    return subset.with_condition(Condition(column, levels=chosen)).key


def column_editor(data: BundleData, column: str | None, current: str | None):
    """Level options, current levels / range and which editor shows for ``column``."""
    hidden, shown = {"display": "none"}, {"display": "flex"}
    columns = data.subset_columns()
    if not column or column not in columns:
        return [], [], None, None, hidden, hidden
    info = columns[column]
    subset, _ = parse_subset(current, columns)
    condition = next((c for c in subset.conditions if c.column == column), None)
    if info.kind == "numeric":
        low = condition.low if condition else None
        high = condition.high if condition else None
        return [], [], low, high, hidden, shown
    options = [{"label": level, "value": level} for level in info.levels]
    chosen = list(condition.levels) if condition else []
    return options, chosen, None, None, {"display": "block"}, hidden


def compare_view(data: BundleData, subset: str | None, compare: str | None, **options):
    """The comparison subset's map and the difference B - A (figures), or hidden."""
    from ..callbacks.map import map_figure
    from ..figures.compare import map_difference
    from ..figures.style import empty_figure

    if not compare:
        return HIDDEN_AT_WIDTH, empty_figure(""), empty_figure("")
    first, second = resolve(data, subset), resolve(data, compare)
    if second is data and compare:
        message = "The comparison subset cannot be tested (see the banner)."
        return {"display": "block"}, empty_figure(message), empty_figure(message)
    figure = map_figure(second, **options)[0]
    view_options = {key: options[key] for key in ("sources", "groups", "rows", "top")}
    a = first.map_view(**view_options)
    b = second.map_view(**view_options)
    difference = map_difference(
        a.assoc,
        b.assoc,
        data.features,
        q_threshold=options["q"],
        label_a=getattr(first, "label", "whole cohort"),
        label_b=second.label,
    )
    return {"display": "block"}, figure, difference


def register(app, ctx: AppContext) -> None:
    data = ctx.data
    register_option_search(app, panel_id("column", MATCH), lambda: column_options(data))

    @app.callback(
        # The panel shows before the figures arrive (the browser applies outputs in this
        # order) and each card takes its figure's height as it is drawn (``fitBox`` in
        # assets/radmap.js): each figure is drawn once, at its size.
        Output("map-compare-panel", "style"),
        Output(graph_id("map-compare"), "figure"),
        Output(graph_id("map-difference"), "figure"),
        Input(store_id("map", "compare"), "data"),
        Input(COMPARE_REQUEST, "data"),  # a new map (its subset or options) with a comparison
        State(store_id("map", "subset"), "data"),
        State(sid("map", "q"), "value"),
        State(sid("map", "stat"), "value"),
        State(sid("map", "sources"), "value"),
        State(sid("map", "groups"), "value"),
        State(sid("map", "min_effect"), "value"),
        State(sid("map", "rows"), "value"),
        State(sid("map", "top"), "value"),
        prevent_initial_call=True,  # the map layout draws the comparison of the URL
    )
    def _compare(compare, _request, subset, q, stat, sources, groups, min_effect, rows, top):
        if stays_hidden(bool(compare), store_id("map", "compare")):
            raise PreventUpdate  # no comparison before or now
        style, compared, difference = compare_view(
            data,
            subset,
            compare,
            q=float(q),
            stat=stat,
            sources=tuple(sources or ()),
            groups=tuple(groups or ()),
            min_effect=min_effect,
            rows=rows,
            top=int(top or 40),
        )
        return style, compared, difference

    @app.callback(
        Output(panel_id("levels", MATCH), "options"),
        Output(panel_id("levels", MATCH), "value"),
        Output(panel_id("low", MATCH), "value"),
        Output(panel_id("high", MATCH), "value"),
        Output(panel_id("levels", MATCH), "style"),
        Output(panel_id("range", MATCH), "style"),
        Input(panel_id("column", MATCH), "value"),
        Input(panel_id("target", MATCH), "value"),
        State(store_id(MATCH, "subset"), "data"),
        State(store_id(MATCH, "compare"), "data"),
        prevent_initial_call=True,
    )
    def _column(column, target, subset, compare):
        # the editor shows the levels of the subset it edits (B's when comparing)
        return column_editor(data, column, compare if target == "compare" else subset)

    @app.callback(
        Output(store_id(MATCH, "subset"), "data"),
        Output(store_id(MATCH, "compare"), "data"),
        Input(panel_id("apply", MATCH), "n_clicks"),
        Input(panel_id("clear", MATCH), "n_clicks"),
        State(panel_id("target", MATCH), "value"),
        State(panel_id("column", MATCH), "value"),
        State(panel_id("levels", MATCH), "value"),
        State(panel_id("low", MATCH), "value"),
        State(panel_id("high", MATCH), "value"),
        State(store_id(MATCH, "subset"), "data"),
        State(store_id(MATCH, "compare"), "data"),
        prevent_initial_call=True,
    )
    def _apply(_apply_clicks, _clear_clicks, target, column, levels, low, high, subset, compare):
        trigger = callback_context.triggered_id
        if not isinstance(trigger, dict):
            raise PreventUpdate
        if trigger["role"] == "subset-clear":
            return "", ""
        if target == "compare":
            return subset or "", edited(data, compare, column, levels, low, high)
        return edited(data, subset, column, levels, low, high), compare or ""
