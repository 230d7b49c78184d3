"""Building blocks shared by the page layouts: ids, figure and table cards, empty states.

Component ids are dicts so that one pattern-matching callback serves every figure export,
every table download and the URL state:

- ``{"role": "state", "page": page, "key": key}``: a control whose ``value`` is part of the
  URL state (see :mod:`explorer.state`);
- ``{"role": "state-store", "page": page, "key": key}``: a ``dcc.Store`` whose ``data`` is
  part of the URL state (e.g. the map cell chosen by a click);
- ``{"role": "graph", "fig": name}`` and its export controls;
- ``{"role": "table", "table": name}`` and its CSV button.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Sequence

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from ..figures.margins import layout_setting, min_width, text_width
from ..figures.style import NUMBER_FORMAT_JS, P_FORMAT_JS
from ..figures.style import format_p as format_p  # pages and callbacks format p / q here
from ..pages.help import info_icon
from ..state import Q_CHOICES

EXPORT_FORMATS = (("SVG", "svg"), ("PDF", "pdf"), ("PNG", "png"))
EXPORT_WIDTHS = (("Single column", "single"), ("Double column", "double"))

FIT_CLASS = "rm-fit"
HIDDEN_AT_WIDTH = {
    "height": 0,
    "overflow": "hidden",
    "visibility": "hidden",
    "--rm-hidden-panel": "1",
}
"""Style of a panel of figures shown later (the map's drill-down and comparison): laid out
at its width but not shown. Hidden with ``display: none`` its figures are drawn at plotly's
default 700 px and drawn again at their card's size once shown. The CSS variable, inherited
by everything in the panel, tells the browser's draw order (``assets/radmap.js``) that its
graphs are not shown (``visibility`` alone is also what a loading spinner sets)."""
GRAPH_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["sendDataToCloud", "toImage"],
}


def iter_components(layout) -> Iterator[Component]:
    """Every Dash component in ``layout`` (a component or a list of them), parents first."""
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(reversed(node))
        elif isinstance(node, Component):
            yield node
            children = [getattr(node, name, None) for name in node._prop_names]
            stack.extend(
                reversed(
                    [child for child in children if isinstance(child, Component | list | tuple)]
                )
            )


def sid(page: str, key: str) -> dict:
    """Id of a control that holds part of the URL state."""
    return {"role": "state", "page": page, "key": key}


def store_id(page: str, key: str) -> dict:
    """Id of a ``dcc.Store`` that holds part of the URL state."""
    return {"role": "state-store", "page": page, "key": key}


def graph_id(name: str) -> dict:
    return {"role": "graph", "fig": name}


def graph_box_id(name: str) -> dict:
    """Id of the box around a graph; with ``fit=True`` it takes each figure's height."""
    return {"role": "graph-box", "fig": name}


def fit_style(figure) -> dict | None:
    """Style of a ``fit=True`` graph box for ``figure``: its height and the width below which
    it scrolls sideways, for the first layout (the browser sets it for later figures, before
    drawing each: ``fitBox`` in ``assets/radmap.js``). ``None`` without a height."""
    height = layout_setting(figure, "height") if figure is not None else None
    if not height:
        return None
    scroll_from = min_width(figure)
    return {
        "height": f"{int(height)}px",
        "--rm-min-width": f"{int(scroll_from)}px" if scroll_from else "0px",
    }


def table_id(name: str) -> dict:
    return {"role": "table", "table": name}


def pin_id(view: str) -> dict:
    return {"role": "pin", "view": view}


def state_store(page: str, key: str, value) -> dcc.Store:
    """A store of URL state; empty is ``""``, never ``None``.

    A ``dcc.Store`` created without data sets its data on mount, which fires every callback
    that reads it: the volcano was computed and drawn a second time on every page load.
    """
    return dcc.Store(id=store_id(page, key), data="" if value is None else value)


def help_text(text: str) -> html.Small:
    return html.Small(text, className="text-muted d-block mt-1")


def control(label: str, component, *, help: str | None = None) -> html.Div:
    """A labelled form control."""
    children = [dbc.Label(label, className="rm-control-label"), component]
    if help:
        children.append(help_text(help))
    return html.Div(children, className="mb-3")


SHOWN_OPTIONS = 25
"""Options a long dropdown shows at a time; the rest stay on the server (:func:`long_dropdown`).

Dash's dropdown indexes every substring of each option's label and value when it is drawn:
60 radiomic feature names took ~45 ms of the Volcano, Gene and Cohort pages' loads.
"""


def searched_options(
    options: Sequence[dict], search: str | None, value, *, limit: int = SHOWN_OPTIONS
) -> list[dict]:
    """The options of a long list a dropdown shows for the typed ``search``.

    Every word typed must appear in the option's label or value (case ignored); at most
    ``limit`` are shown, the chosen ``value`` first, and a last, disabled line says how many
    more match. A list no longer than ``limit`` is returned whole.
    """
    if len(options) <= limit and not search:
        return list(options)
    words = (search or "").casefold().split()
    chosen = [option for option in options if value is not None and option["value"] == value]
    matching = [
        option
        for option in options
        if option not in chosen
        and all(word in f"{option['label']} {option['value']}".casefold() for word in words)
    ]
    shown = chosen + matching[: max(limit - len(chosen), 0)]
    left = len(matching) - (len(shown) - len(chosen))
    if left > 0:
        what = "match" if words else "more"
        shown.append({"label": f"… {left:,} {what}: type to narrow", "value": "", "disabled": True})
    elif words and not matching:
        shown.append({"label": f"nothing matches “{search}”", "value": "", "disabled": True})
    return shown


def long_dropdown(component_id: dict, options: Sequence[dict], value, **props) -> dcc.Dropdown:
    """A dropdown over a long option list (features, clinical columns) that stays responsive.

    The browser gets the chosen option and the first :data:`SHOWN_OPTIONS`; what the user
    types is searched on the server (``callbacks.common.register_option_search``). Chromium
    spent 1.2 s building the search index of one 1,476-feature dropdown on the demo.
    """
    return dcc.Dropdown(
        id=component_id, options=searched_options(options, None, value), value=value, **props
    )


def q_control(page: str, value: float) -> html.Div:
    """Dropdown of the FDR threshold (the current value is always offered)."""
    choices = sorted({*Q_CHOICES, float(value)})
    return control(
        "FDR threshold (q <)",
        dcc.Dropdown(
            id=sid(page, "q"),
            options=[{"label": f"{q:g}", "value": q} for q in choices],
            value=float(value),
            clearable=False,
            searchable=False,
        ),
    )


def min_effect_control(page: str, value: float) -> html.Div:
    return control(
        "Minimum |effect|",
        dbc.Input(
            id=sid(page, "min_effect"),
            type="number",
            min=0,
            step=0.05,
            value=value,
            debounce=True,
        ),
        help="Cells and genes below it are not marked significant.",
    )


def feature_filter_controls(page: str, data, state) -> list[html.Div]:
    """Feature-source checklist and feature-group dropdown, shared by map and network."""
    sources = sorted(data.features["source"].dropna().astype(str).unique())
    groups = sorted(data.features["group"].dropna().astype(str).unique())
    return [
        control(
            "Feature sources",
            dbc.Checklist(
                id=sid(page, "sources"),
                options=[{"label": s.capitalize(), "value": s} for s in sources],
                value=list(state.sources),
            ),
            help="None ticked = all sources.",
        ),
        control(
            "Feature groups",
            dcc.Dropdown(
                id=sid(page, "groups"),
                options=[{"label": g, "value": g} for g in groups],
                value=list(state.groups),
                multi=True,
                placeholder="All groups",
            ),
        ),
    ]


def controls_card(children: Sequence, *, title: str = "Controls") -> dbc.Card:
    return dbc.Card(
        [dbc.CardHeader(title, className="rm-card-header"), dbc.CardBody(list(children))],
        className="rm-card mb-3",
    )


def export_controls(name: str) -> html.Div:
    """Format / width choice and download buttons for the figure ``name``."""
    return html.Div(
        [
            dbc.Select(
                id={"role": "export-format", "fig": name},
                options=[{"label": label, "value": value} for label, value in EXPORT_FORMATS],
                value="svg",
                size="sm",
                className="rm-export-select",
            ),
            dbc.Select(
                id={"role": "export-width", "fig": name},
                options=[{"label": label, "value": value} for label, value in EXPORT_WIDTHS],
                value="single",
                size="sm",
                className="rm-export-select",
            ),
            dbc.Button(
                "Export",
                id={"role": "export-button", "fig": name},
                size="sm",
                color="secondary",
                outline=True,
                title="Download the figure at publication size",
            ),
            dbc.Button(
                "Provenance",
                id={"role": "provenance-button", "fig": name},
                size="sm",
                color="secondary",
                outline=True,
                title="Download the bundle hash, parameters and view URL as JSON",
            ),
            dcc.Download(id={"role": "export-download", "fig": name}),
            dcc.Download(id={"role": "provenance-download", "fig": name}),
        ],
        className="rm-export",
    )


def figure_card(
    name: str,
    title: str,
    *,
    height: int | str = 460,
    extra: Sequence | None = None,
    footer=None,
    config: dict | None = None,
    fit: bool = True,
    figure=None,
    box_style: dict | None = None,
) -> dbc.Card:
    """A card with a title, export controls and a graph (``{"role": "graph", "fig": name}``).

    ``figure`` is drawn with the layout itself (no callback round trip before it shows);
    with ``fit=True`` the card then starts at that figure's height; ``box_style`` is the
    first style of ``{name}-box`` (``fit=False``).

    ``height`` is the graph's height in pixels; ``None`` leaves it to a callback that sets
    the style of ``{name}-box`` (with ``fit=False``); ``fit=True`` (default) makes the card
    take the height of each figure it shows (figures sized to their rows), starting at
    ``height``, so plotly draws each figure once, at its own size.
    """
    first_style = fit_style(figure) if fit else None
    graph = dcc.Graph(
        id=graph_id(name),
        **({"figure": figure} if figure is not None else {}),
        config=GRAPH_CONFIG | (config or {}),
        style={"height": "100%" if fit or not height else height},
        className="rm-graph",
    )
    # The box around the graph takes the height a callback computes (``{name}-box``).
    inner = {"height": "100%"} if fit else {"height": height} if height else box_style
    box = html.Div(graph, id=f"{name}-box", style=inner)
    box = html.Div(
        box,
        id=graph_box_id(name),
        className=f"rm-graph-box {FIT_CLASS}" if fit else "rm-graph-box",
        style=(first_style or {"height": height}) if fit else None,
    )
    body = [*(extra or []), dcc.Loading(box, type="default", delay_show=300)]
    if footer is not None:
        body.append(footer)
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.Span([title, info_icon(name)], className="rm-card-title"),
                    export_controls(name),
                ],
                className="rm-card-header d-flex justify-content-between align-items-center",
            ),
            dbc.CardBody(body),
        ],
        className="rm-card mb-3",
        id={"role": "figure-card", "fig": name},
    )


def table_card(
    name: str,
    title: str,
    *,
    height: int = 360,
    extra: Sequence | None = None,
    row_selection: bool = False,
    row_id: str | None = None,
    rows: list[dict] | None = None,
    columns: list[dict] | None = None,
) -> dbc.Card:
    """A card with an AG Grid table (``{"role": "table", "table": name}``) and a CSV button.

    ``row_id`` names the column that identifies a row (``cellClicked`` then reports it as
    ``rowId``, whatever the sorting). ``rows`` and ``columns`` fill the grid with the
    layout itself (else a callback fills it).
    """
    options = {
        "pagination": True,
        "paginationPageSize": 20,
        "paginationPageSizeSelector": False,
        "animateRows": False,
        "enableCellTextSelection": True,
        "tooltipShowDelay": 300,
    }
    if row_selection:
        options["rowSelection"] = {
            "mode": "singleRow",
            "checkboxes": False,
            "enableClickSelection": True,
        }
    grid = dag.AgGrid(
        id=table_id(name),
        rowData=rows or [],
        columnDefs=columns or [],
        defaultColDef={
            "sortable": True,
            "filter": True,
            "floatingFilter": True,
            "suppressHeaderFilterButton": True,
            "resizable": True,
            "minWidth": 70,
            "maxWidth": 420,
        },
        dashGridOptions=options,
        style={"height": height, "width": "100%"},
        className="rm-grid",
        **({"getRowId": f"params.data.{row_id}"} if row_id else {}),
    )
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.Span(title, className="rm-card-title"),
                    html.Div(
                        [
                            dbc.Button(
                                "CSV",
                                id={"role": "table-csv", "table": name},
                                size="sm",
                                color="secondary",
                                outline=True,
                                title="Download this table as CSV",
                            ),
                            dcc.Download(id={"role": "table-download", "table": name}),
                        ],
                        className="rm-export",
                    ),
                ],
                className="rm-card-header d-flex justify-content-between align-items-center",
            ),
            dbc.CardBody([*(extra or []), dcc.Loading(grid, type="default", delay_show=300)]),
        ],
        className="rm-card mb-3",
    )


def table_note(note_id: str, text: str = "") -> html.Small:
    """Where a table says that it shows only its first rows."""
    return html.Small(text, id=note_id, className="text-muted d-block mb-1")


def pin_button(view: str, *, label: str = "Pin") -> dbc.Button:
    return dbc.Button(
        label,
        id=pin_id(view),
        color="primary",
        outline=True,
        size="sm",
        className="rm-pin",
        title="Save this association with its statistics and a note (Hypotheses page)",
    )


def empty_state(message: str, *, title: str | None = None) -> html.Div:
    """A friendly block saying what to do when there is nothing to show."""
    children = []
    if title:
        children.append(html.H6(title, className="mb-1"))
    children.append(html.P(message, className="mb-0"))
    return html.Div(children, className="rm-empty")


def null_badge(text: str, *, badge_id: str, title: str) -> html.Div:
    """A permutation null in one line above a figure (an empty box when there is none)."""
    return html.Div(null_badge_content(text), id=badge_id, title=title)


def null_badge_content(text: str) -> list | None:
    """What the box of :func:`null_badge` holds for ``text``: nothing when it is empty (a
    bundle without a null, or a subset, whose null is not recomputed)."""
    if not text:
        return None
    return [dbc.Badge(text, color="light", text_color="dark", className="rm-null-badge")]


def page_title(title: str, description: str) -> html.Div:
    return html.Div(
        [html.H2(title, className="rm-page-title"), html.P(description, className="rm-lead")],
        className="mb-3",
    )


def readable_time(stamp) -> str:
    """An ISO timestamp as ``2026-11-30 07:23 UTC`` (local text kept if it is not ISO)."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp or "")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


def warning_groups(messages: Sequence[str]) -> dict[str, list[str]]:
    """Analysis warnings grouped by what they are about, in first-seen order.

    ``feature 'X': ...`` warnings form one group (features left untested); other messages
    are grouped by the text before their first colon (a file, ``survival``, ...).
    """
    groups: dict[str, list[str]] = {}
    for message in messages:
        text = str(message)
        if text.startswith("feature '"):
            key = "features not tested"
        else:
            head, colon, _ = text.partition(":")
            key = head.strip() if colon and len(head) <= 60 else "other"
        groups.setdefault(key, []).append(text)
    return groups


def warnings_panel(messages: Sequence[str], *, max_chars: int = 300) -> html.Div:
    """Collapsible groups of warnings; each long message shortened, in full on hover."""
    if not messages:
        return html.P("None.", className="mb-0")
    blocks = []
    for key, items in warning_groups(messages).items():
        entries = [
            html.Li(
                text if len(text) <= max_chars else text[: max_chars - 1] + "…",
                title=text if len(text) > max_chars else None,
            )
            for text in items
        ]
        blocks.append(
            html.Details(
                [
                    html.Summary(f"{key} ({len(items)})", className="rm-warning-group"),
                    html.Ul(entries, className="mb-2"),
                ],
                className="rm-warnings",
            )
        )
    return html.Div(blocks)


def format_number(value, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if number != number:
        return "—"
    return f"{number:.{digits}g}"


P_COLUMNS = ("p", "q", "p_value", "q_value", "fdr", "log_rank_p", "strongest_q")


GRID_CHAR_PX = 7.5
"""Width of an average character of a grid header (the header's width is its text's
characters at this width plus :data:`GRID_HEADER_EXTRA_PX`)."""
GRID_HEADER_EXTRA_PX = 40
"""A header's padding plus its sort and filter icons."""
GRID_FONT_PX = 13.6
"""Font size of the grids' cells (``.rm-grid``: 0.85rem)."""
GRID_CELL_PADDING_PX = 32
"""AG Grid's padding either side of a cell's text."""
GRID_TEXT_SLACK = 1.06
"""The page's sans-serif runs up to ~5 % wider than Arial's advance widths, with which
:func:`~radmap.explorer.figures.margins.text_width` measures ("GENE06989": 79 px drawn,
76 px measured)."""
NUMBER_TEXT = "−1.23e-05"
"""As wide as a formatted number gets."""
MEASURED_TEXTS = 10
"""A column's longest texts (in characters) measured for its width."""


def widest_text_px(texts: Iterable[str]) -> float:
    """Width in pixels of the widest of ``texts`` in the grids' font, measuring the
    :data:`MEASURED_TEXTS` longest (by characters)."""
    longest = heapq.nlargest(MEASURED_TEXTS, texts, key=len)
    return max((text_width(text, GRID_FONT_PX) for text in longest), default=0.0)


def column_width(header: str, text_px: float) -> int:
    """Pixels a column needs for its header and its widest text, ``text_px`` (70-420 px)."""
    need = max(
        len(header) * GRID_CHAR_PX + GRID_HEADER_EXTRA_PX,
        text_px * GRID_TEXT_SLACK + GRID_CELL_PADDING_PX,
    )
    return int(min(max(math.ceil(need), 70), 420))


def column_defs(
    columns: Sequence[str],
    *,
    numeric: Sequence[str] = (),
    text_px: dict[str, float] | None = None,
) -> list[dict]:
    """AG Grid column definitions with full text on hover.

    Numeric columns show 3 significant digits; p and q columns (:data:`P_COLUMNS`) use
    :func:`format_p` (scientific below 1e-3), the same text as everywhere else. Each column
    is as wide as its header and its widest text (``text_px``, pixels in the grids' font:
    :func:`widest_text_px`; numbers are as wide as :data:`NUMBER_TEXT`), computed here so
    that the browser need not measure every cell.
    """
    defs = []
    text_px = text_px or {}
    number_px = text_width(NUMBER_TEXT, GRID_FONT_PX)
    for column in columns:
        is_number = column in numeric or column in P_COLUMNS
        header = column.replace("_", " ")
        widest = number_px if is_number else text_px.get(column, 0.0)
        definition: dict = {
            "field": column,
            "headerName": header,
            "headerTooltip": header,
            "tooltipField": column,
            "width": column_width(header, widest),
        }
        if is_number:
            definition["type"] = "numericColumn"
            definition["valueFormatter"] = {
                "function": P_FORMAT_JS if column in P_COLUMNS else NUMBER_FORMAT_JS
            }
            definition["filter"] = "agNumberColumnFilter"
            definition.pop("tooltipField")
        defs.append(definition)
    return defs


SPLIT_OPTIONS = (
    ("median", "median (2 groups)"),
    ("tertiles", "tertiles (3 groups)"),
    ("quartiles", "quartiles (4 groups)"),
    ("cut", "at a value"),
)


def split_controls(page: str, state) -> html.Div:
    """How a continuous variable (module, gene, continuous feature) is split into groups."""
    return html.Div(
        [
            control(
                "Split continuous variables",
                dcc.Dropdown(
                    id=sid(page, "split"),
                    options=[{"label": label, "value": value} for value, label in SPLIT_OPTIONS],
                    value=state.split,
                    clearable=False,
                ),
            ),
            control(
                "Cut at",
                dcc.Input(
                    id=sid(page, "cut"),
                    type="number",
                    value=state.cut,
                    debounce=True,
                    disabled=state.split != "cut",
                    placeholder="value",
                    className="form-control",
                    style={"width": "9rem"},
                ),
            ),
        ],
        className="d-flex gap-3 flex-wrap rm-split-controls",
    )
