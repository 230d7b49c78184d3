"""What every callback module shares: the app context, id patterns and small helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dash import ALL, Input, Output, State, callback_context, html

from ..data import BundleData
from ..figures.style import empty_figure, figure_json
from ..pages.common import column_defs, searched_options, widest_text_px
from ..state import ViewState, from_controls, page_from_path

STATE_VALUES = {"role": "state", "page": ALL, "key": ALL}
STATE_STORES = {"role": "state-store", "page": ALL, "key": ALL}


@dataclass(frozen=True)
class AppContext:
    """Everything a callback may read; built once per app, never mutated.

    Attributes
    ----------
    data
        The bundle.
    pins
        The :class:`explorer.hypotheses.PinStore` of this bundle.
    results
        Disk cache (``diskcache.Cache``) for slow results such as pre-ranked enrichment.
    base
        The app's ``url_base_pathname``.
    """

    data: BundleData
    pins: Any
    results: Any
    base: str = "/"


def register_option_search(app, component_id: dict, options: Callable[[], Sequence[dict]]):
    """Answer what the user types into the :func:`pages.common.long_dropdown` ``component_id``
    from its whole option list ``options()``, keeping the chosen value among the options.

    A callback that sets the dropdown's value itself must also set its options
    (``searched_options(options, None, value)``), as the value may not be among them.
    """

    @app.callback(
        Output(component_id, "options"),
        Input(component_id, "search_value"),
        State(component_id, "value"),
        prevent_initial_call=True,
    )
    def _search(search, value):
        return searched_options(options(), search, value)


def cut_value(cut) -> float | None:
    """The survival cut box's value as a number (``None`` while empty or not a number)."""
    return float(cut) if isinstance(cut, int | float) else None


def register_km(
    app,
    data: BundleData,
    page: str,
    chooser: str,
    km_figure: Callable[..., Any],
    *,
    drawn_with_page: bool,
    after: str | None = None,
    split_only: bool = False,
) -> None:
    """The Kaplan–Meier callback of ``page``: curves of what the control ``chooser`` names,
    split by the page's ``split`` / ``cut`` controls, on the page's subset;
    ``km_figure(data, choice, split=, cut=)`` draws them. The cut box is enabled only for a
    cut at a value. ``after``: a store whose data the first drawing waits for (see
    ``radmap.afterDrawn`` in ``assets/radmap.js``). ``split_only``: the page's own callback
    redraws the curves for a new choice or subset (with the rest of the page, in one
    response); this one answers the split and the cut."""
    from ..pages.common import graph_id, sid, store_id
    from .subset import resolve  # the subset callbacks import this module

    chosen = State if split_only else Input

    @app.callback(
        Output(graph_id(f"{page}-km"), "figure", allow_duplicate=split_only),
        Output(sid(page, "cut"), "disabled"),
        chosen(sid(page, chooser), "value"),
        Input(sid(page, "split"), "value"),
        Input(sid(page, "cut"), "value"),
        chosen(store_id(page, "subset"), "data"),
        *([Input(after, "data")] if after else []),
        prevent_initial_call=drawn_with_page,
    )
    def _km(choice, split, cut, subset, *_after):
        view = resolve(data, subset)
        return km_figure(view, choice, split=split or "median", cut=cut_value(cut)), split != "cut"


_CONTROLS_ONLY: ContextVar[bool] = ContextVar("radmap_controls_only", default=False)


@contextmanager
def controls_only() -> Iterator[None]:
    """Build page layouts only for their controls' values: memoised figures are left blank
    and tables empty.

    The router reads a page's controls for another URL of the page shown, and the page's
    own callbacks then draw its figures and tables (building them here would be work thrown
    away).
    """
    token = _CONTROLS_ONLY.set(True)
    try:
        yield
    finally:
        _CONTROLS_ONLY.reset(token)


def memoised_figure(data: BundleData, view: str, params: Mapping, build: Callable[[], Any]):
    """The figure ``build()`` makes, memoised per bundle, view and parameters, as the
    JSON-ready dict Dash sends.

    The dict is plotly's own JSON form of the figure (:func:`figures.style.figure_json`:
    numeric arrays packed as typed ``bdata``), made once. Dash encodes it in ~1/3 of the
    time it takes to turn a ``go.Figure`` into JSON (~11 vs ~30 ms for a 20,000-gene
    volcano). Every call returns the same dict, so it is read only: ``go.Figure(...)`` of it
    gives a figure to change. Inside :func:`controls_only`, a blank figure.
    """
    if _CONTROLS_ONLY.get():
        return empty_figure("")
    return data.memo(f"figure:{view}", params, lambda: figure_json(build()))


def records(frame: pd.DataFrame | None) -> list[dict]:
    """Rows of a DataFrame as JSON-friendly dicts (NaN -> None, numpy scalars -> Python)."""
    if frame is None or frame.empty:
        return []
    columns = [_json_values(frame.iloc[:, k]) for k in range(frame.shape[1])]
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _json_values(column: pd.Series) -> list:
    """A column's values as Python objects, missing ones as ``None``."""
    values = column.tolist()  # numpy scalars of numeric columns become Python numbers
    missing = column.isna().to_numpy()
    if missing.any():
        values = [None if gone else value for value, gone in zip(values, missing, strict=True)]
    if column.dtype == object:
        values = [value.item() if isinstance(value, np.generic) else value for value in values]
    return values


def grid(
    frame: pd.DataFrame | None, columns: Sequence[str], *, numeric: Sequence[str] = ()
) -> tuple[list[dict], list[dict]]:
    """``rowData`` and ``columnDefs`` of an AG Grid for ``frame[columns]``.

    Float columns other than counts are formatted as numbers even when not in ``numeric``
    (no raw floats such as ``0.000213456``). Inside :func:`controls_only`, no rows and
    no columns.
    """
    if _CONTROLS_ONLY.get():
        return [], []
    if frame is None:
        frame = pd.DataFrame(columns=list(columns))
    present = [c for c in columns if c in frame.columns]
    measured = [c for c in present if pd.api.types.is_float_dtype(frame[c]) and not _is_count(c)]
    text_px = {column: widest_text_px(map(str, frame[column].tolist())) for column in present}
    return records(frame[present]), column_defs(
        present, numeric=[*numeric, *measured], text_px=text_px
    )


GRID_MAX_ROWS = 500
"""Rows a table of tests sends to the browser; its CSV button gives them all."""


def top_rows(
    frame: pd.DataFrame, *, by: str = "p", limit: int | None = None
) -> tuple[pd.DataFrame, str]:
    """The ``limit`` (default :data:`GRID_MAX_ROWS`) rows of ``frame`` with the smallest
    ``by``, and a note when some are left out (the browser spent most of the Cohort page's
    load on the 7,353 rows of two grids). A table without ``by`` is returned whole."""
    limit = GRID_MAX_ROWS if limit is None else limit
    if len(frame) <= limit or by not in frame:
        return frame, ""
    shown = frame.sort_values(by, kind="stable", na_position="last").head(limit)
    return shown, (
        f"Showing the {limit:,} tests with the smallest {by} of {len(frame):,}; "
        "CSV downloads them all."
    )


def _is_count(column: str) -> bool:
    return column in ("n", "events") or column.startswith("n_")


def collect_state(entries: Iterable[dict]) -> dict[str, dict[str, Any]]:
    """Values of the state controls / stores per page, from ``ctx.inputs_list`` entries."""
    collected: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if isinstance(entry, list):
            for item in entry:
                _collect_one(item, collected)
        else:
            _collect_one(entry, collected)
    return collected


def _collect_one(entry: dict, collected: dict) -> None:
    component = entry.get("id")
    if not isinstance(component, dict) or "page" not in component:
        return
    value = entry.get("value", entry.get("data"))
    collected.setdefault(component["page"], {})[component["key"]] = value


def state_from_entries(
    pathname: str | None, entries: Iterable[dict], *, base: str = "/"
) -> ViewState | None:
    """The state that the controls on the current page show, or ``None`` if none are shown."""
    page = page_from_path(pathname, base=base)
    values = collect_state(entries).get(page or "")
    if not page or values is None:
        return None
    return from_controls(page, values)


def alert_list(messages: Sequence[str], *, color: str = "warning") -> list:
    """Dismissable alerts, one per message (``[]`` for none)."""
    import dash_bootstrap_components as dbc

    return [
        dbc.Alert(message, color=color, dismissable=True, className="rm-alert")
        for message in messages
    ]


def stays_hidden(shown: bool, *toggles: str | dict) -> bool:
    """Whether a panel has nothing to show and was hidden already: none of ``toggles`` (the
    inputs that open or close it) changed in this request. Its callback then sends nothing,
    and the browser redraws nothing, when only the other views' inputs changed."""
    changed = list(callback_context.triggered_prop_ids.values())
    return not shown and not any(toggle in changed for toggle in toggles)


def note(message: str | None, *, color: str = "info") -> list:
    """A single inline notice, or nothing."""
    import dash_bootstrap_components as dbc

    if not message:
        return []
    return [dbc.Alert(message, color=color, className="rm-alert py-2")]


STAT_FIELDS = ("test", "effect", "statistic", "p", "q", "n")


def stat_line(
    stats: dict | None, *, fields: tuple[str, ...] = STAT_FIELDS, class_name: str = "rm-stat-line"
) -> html.Div:
    """The ``fields`` of one association's statistics (test, effect, p, q, n) as a line."""
    from ..pages.common import format_number, format_p

    if not stats:
        return html.Div("No statistics for this combination.", className="text-muted")
    formats = {
        "test": lambda value: str(value or "—"),
        "effect": format_number,
        "statistic": format_number,
        "p": format_p,
        "q": format_p,
        "n": lambda value: "—" if value is None else str(value),
    }
    return html.Div(
        [
            html.Span([html.B(f"{name} "), formats[name](stats.get(name))], className="rm-stat")
            for name in fields
        ],
        className=class_name,
    )
