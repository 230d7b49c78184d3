"""Shared look of every radmap figure: template, colour scales, publication sizes.

Colours are colour-blind safe: modules use the Okabe–Ito palette followed by Tableau 10,
signed effects use the ColorBrewer RdBu scale reversed (blue = negative, red = positive)
centred at 0, magnitudes use viridis.
"""

from __future__ import annotations

import base64
import functools
import math
import re
import textwrap
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from _plotly_utils.basevalidators import is_homogeneous_array
from _plotly_utils.utils import is_skipped_key, to_typed_array_spec
from plotly.colors import sample_colorscale

from ...analysis.bundle import UNASSIGNED
from ...analysis.validate import InputError

TEMPLATE = "radmap"

FONT_FAMILY = "Arial, Helvetica, 'Liberation Sans', 'DejaVu Sans', sans-serif"
SCREEN_FONT_PX = 13
SCREEN_TITLE_PX = SCREEN_FONT_PX + 2
"""Font size of a figure's title on screen (the template's)."""

OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
TABLEAU = (
    "#4E79A7",
    "#F28E2B",
    "#E15759",
    "#76B7B2",
    "#59A14F",
    "#EDC948",
    "#B07AA1",
    "#FF9DA7",
    "#9C755F",
)
QUALITATIVE = OKABE_ITO + TABLEAU
UNASSIGNED_COLOR = "#BBBBBB"
NEUTRAL_COLOR = "#4D4D4D"

_RDBU = (
    "#053061",
    "#2166AC",
    "#4393C3",
    "#92C5DE",
    "#D1E5F0",
    "#F7F7F7",
    "#FDDBC7",
    "#F4A582",
    "#D6604D",
    "#B2182B",
    "#67001F",
)
DIVERGING = [[i / (len(_RDBU) - 1), color] for i, color in enumerate(_RDBU)]
NEGATIVE_COLOR = _RDBU[1]
POSITIVE_COLOR = _RDBU[-2]
SEQUENTIAL = "Viridis"
_PURPLES = ("#FCFBFD", "#EFEDF5", "#DADAEB", "#BCBDDC", "#9E9AC8", "#807DBA", "#6A51A3", "#54278F")
UNSIGNED = [[i / (len(_PURPLES) - 1), color] for i, color in enumerate(_PURPLES)]
"""Sequential scale of unsigned effects (ε², Cramér's V): white at 0 like the diverging
scale's centre, in a hue neither end of the diverging scale uses."""

MM_PER_INCH = 25.4
CSS_DPI = 96
PRINT_DPI = 300
POINTS_PER_INCH = 72
PUBLICATION_WIDTH_MM = {"single": 89.0, "double": 183.0}
PUBLICATION_MAX_HEIGHT_MM = 247.0


WEBGL_MIN_POINTS = 5000
"""Scatter traces switch to WebGL above this many points; below, SVG draws faster (no GL
context to create, which takes most of a small volcano's draw without a GPU)."""


def scatter_type(n_points: int) -> str:
    """``"scattergl"`` for more than :data:`WEBGL_MIN_POINTS` points, else ``"scatter"``."""
    return "scattergl" if n_points > WEBGL_MIN_POINTS else "scatter"


def mm_to_px(mm: float, *, dpi: float = CSS_DPI) -> int:
    """Length in millimetres as whole pixels at ``dpi``."""
    return round(mm / MM_PER_INCH * dpi)


def pt_to_px(points: float) -> float:
    """Font size in points as CSS pixels (plotly sizes fonts in CSS pixels)."""
    return points * CSS_DPI / POINTS_PER_INCH


PUBLICATION_SIZES = {
    "single": (mm_to_px(89.0), mm_to_px(70.0)),
    "double": (mm_to_px(183.0), mm_to_px(120.0)),
}
"""(width, default height) in CSS pixels (96 dpi) of a single / double journal column."""

PUBLICATION_FONT_PT = 8.0
PUBLICATION_TITLE_PT = 9.0


def _register_template() -> None:
    axis = {
        "showline": True,
        "linecolor": NEUTRAL_COLOR,
        "linewidth": 1,
        "ticks": "outside",
        "tickcolor": NEUTRAL_COLOR,
        "showgrid": False,
        "zeroline": False,
        "automargin": True,
        "title": {"standoff": 6},
        # plotly.js's default for numeric axes ("hide past div") measures every tick label,
        # showing and hiding each in turn, on every draw: ~45 ms of a gene choice's three
        # figures. The margins are sized to the labels, so none reaches past the figure.
        "ticklabeloverflow": "allow",
    }
    pio.templates[TEMPLATE] = go.layout.Template(
        layout={
            "font": {"family": FONT_FAMILY, "size": SCREEN_FONT_PX, "color": "#222222"},
            "title": {"font": {"size": SCREEN_TITLE_PX}, "x": 0.0, "xanchor": "left"},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "colorway": list(QUALITATIVE),
            "colorscale": {"diverging": DIVERGING, "sequential": SEQUENTIAL},
            "xaxis": axis,
            "yaxis": axis,
            "legend": {"bgcolor": "rgba(255,255,255,0)", "itemsizing": "constant"},
            "hoverlabel": {"font": {"family": FONT_FAMILY}},
            "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            "coloraxis": {"colorbar": {"outlinewidth": 0, "ticks": "outside", "thickness": 12}},
        },
        data={
            "heatmap": [go.Heatmap(colorbar={"outlinewidth": 0, "thickness": 12})],
            "box": [go.Box(line={"width": 1})],
        },
    )


_register_template()


class FrozenArray(tuple):
    """An immutable array of strings or numbers for a figure.

    Plotly deep-copies every property when it builds or exports a figure; an immutable
    array needs no copy, and copying tens of thousands of strings one by one dominates the
    cost of a large figure.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict) -> FrozenArray:
        return self


def figure_json(fig: go.Figure) -> dict:
    """``fig.to_plotly_json()``: the JSON-ready dict Dash sends, numeric numpy arrays packed
    as typed ``bdata`` as plotly packs them.

    plotly copies the whole figure and, looking for arrays to pack, visits every item of
    every list and tuple in it: the 40,000 strings of a 20,000-gene volcano cost it ~19 ms.
    Here a :class:`FrozenArray` (which holds JSON values only) is passed over whole: ~3 ms.
    """

    def convert(value):
        if isinstance(value, dict):
            return {
                key: item
                if is_skipped_key(key)
                else to_typed_array_spec(item)
                if is_homogeneous_array(item)
                else convert(item)
                for key, item in value.items()
            }
        if isinstance(value, FrozenArray):
            return value
        if isinstance(value, list | tuple):
            return [convert(item) for item in value]
        return value

    return {
        "data": [convert(trace) for trace in fig._data],  # noqa: SLF001 (plotly's own storage)
        "layout": convert(fig._layout),  # noqa: SLF001
    }


@functools.cache
def _template_spec() -> dict:
    return pio.templates[TEMPLATE].to_plotly_json()


def figure_from_spec(data: Sequence[dict], layout: dict) -> go.Figure:
    """A figure built from plain trace and layout dicts with the radmap template.

    Plotly's per-property validation is skipped (it costs more than building the data for
    a large figure), so the dicts must use plotly's own property names; the figures' tests
    check the resulting JSON.
    """
    spec = {"data": list(data), "layout": {"template": _template_spec(), **layout}}
    return go.Figure(spec, _validate=False)


def colors_on_scale(
    values: Sequence[float], colorscale: list, low: float, high: float
) -> list[str]:
    """The colour of each value on ``colorscale`` spanning ``low`` to ``high``, as
    ``"rgb(r, g, b)"``, for traces whose colours plotly.js must not map itself: its bars
    with numeric colours warn once per bar (with a stack trace, ~0.4 ms each) on every draw.
    """
    span = (high - low) or 1.0
    positions = np.clip((np.asarray(values, dtype=float) - low) / span, 0.0, 1.0)
    return sample_colorscale(colorscale, positions.tolist())


def natural_key(name: str) -> tuple:
    """Sort key that orders ``M2`` before ``M10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name))


def order_modules(modules: Iterable[str]) -> list[str]:
    """Unique module names in natural order with ``"unassigned"`` last."""
    unique = {str(module) for module in modules}
    ordered = sorted(unique - {UNASSIGNED}, key=natural_key)
    return [*ordered, UNASSIGNED] if UNASSIGNED in unique else ordered


def module_colors(modules: Sequence[str]) -> dict[str, str]:
    """Colour per module, stable for a given module list.

    Parameters
    ----------
    modules
        Module names in the order that decides the colours (pass the full list of the
        bundle so that a module keeps its colour across views).

    Returns
    -------
    Mapping module -> hex colour: Okabe–Ito first, then Tableau 10, repeating after that;
    ``"unassigned"`` is always grey and takes no palette slot.
    """
    colors: dict[str, str] = {}
    slot = 0
    for module in dict.fromkeys(str(m) for m in modules):
        if module == UNASSIGNED:
            colors[module] = UNASSIGNED_COLOR
        else:
            colors[module] = QUALITATIVE[slot % len(QUALITATIVE)]
            slot += 1
    return colors


def empty_figure(message: str, *, title: str | None = None) -> go.Figure:
    """A blank figure with a centred message telling the user what to do."""
    annotation = {
        "text": message,
        "x": 0.5,
        "y": 0.5,
        "xref": "paper",
        "yref": "paper",
        "showarrow": False,
        "font": {"size": SCREEN_FONT_PX + 1, "color": NEUTRAL_COLOR},
    }
    layout = {
        "annotations": [annotation],
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "height": 300,
    }
    if title:
        layout["title"] = {"text": title}
    return figure_from_spec([], layout)


def _raise_font_sizes(node: object, minimum: float) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("font") and isinstance(value, dict):
                size = value.get("size")
                if size is None or (isinstance(size, int | float) and size < minimum):
                    value["size"] = minimum
            _raise_font_sizes(value, minimum)
    elif isinstance(node, list):
        for item in node:
            _raise_font_sizes(item, minimum)


def publication_layout(
    fig: go.Figure,
    width: Literal["single", "double"] = "single",
    *,
    height: float | None = None,
    font_pt: float = PUBLICATION_FONT_PT,
) -> go.Figure:
    """A copy of ``fig`` sized for a journal column with fonts legible in print.

    Parameters
    ----------
    fig
        Any radmap figure.
    width
        ``"single"`` (89 mm) or ``"double"`` (183 mm) column.
    height
        Height in CSS pixels. By default the figure's own height (set by factories whose
        height depends on content) capped at a full page, else the column's default height.
    font_pt
        Smallest font size in points at print size; every font in the figure is raised to
        at least this.

    Returns
    -------
    A new figure; ``fig`` is not modified.
    """
    if width not in PUBLICATION_SIZES:
        raise InputError(f"width must be one of {sorted(PUBLICATION_SIZES)}, got {width!r}")
    width_px, default_height = PUBLICATION_SIZES[width]
    max_height = mm_to_px(PUBLICATION_MAX_HEIGHT_MM)
    min_font = round(pt_to_px(font_pt), 2)
    spec = fig.to_dict()
    _raise_font_sizes(spec, min_font)
    layout = spec.setdefault("layout", {})
    rows = _fit_category_axes(layout, width_px, min_font, max_height)
    if height is None:
        own_height = fig.layout.height
        if rows:
            own_height = rows * min_font * PRINT_LINE + PRINT_CHROME_PX
        height = min(own_height, max_height) if own_height else default_height
        height = max(height, default_height // 2)
    legend_px = _fit_legends(spec, width_px, min_font)
    _wrap_annotations(layout, width_px, min_font)
    _fit_side_labels(spec, width_px - 8, min_font)  # the page's margins: 4 px each side
    _wrap_axis_titles(spec, width_px, height, min_font)
    title = layout.get("title")
    has_title = bool(title.get("text")) if isinstance(title, dict) else bool(title)
    if isinstance(title, dict):
        for key in ("y", "yref", "yanchor", "pad"):  # placed for the screen's toolbar
            title.pop(key, None)
        title["pad"] = {"l": 4}  # a title at the page's left edge starts at its margin
    title_px = pt_to_px(PUBLICATION_TITLE_PT)
    top, extra_lines_px = 6.0, 0.0
    if has_title:
        title_px = max((title.get("font") or {}).get("size") or 0, title_px)
        title["text"] = _wrapped(str(title["text"]), width_px, title_px)
        extra_lines_px = title["text"].count("<br>") * title_px * PRINT_LINE
        top = 30 + extra_lines_px
    if has_title and (legend_px or extra_lines_px):
        # the title on top of the page, the legend under it
        layout["title"].update(title_from_top(title["text"], 4, title_px, left_px=4))
    layout.update(
        width=width_px,
        height=round(height),
        autosize=False,
        margin={"l": 4, "r": 4, "t": round(top + legend_px), "b": 4, "pad": 0},
    )
    layout.setdefault("font", {})
    layout["font"].update(family=FONT_FAMILY, size=min_font)
    if has_title:
        layout["title"].setdefault("font", {})
        layout["title"]["font"]["size"] = max(
            layout["title"]["font"].get("size") or 0, round(pt_to_px(PUBLICATION_TITLE_PT), 2)
        )
    return go.Figure(spec)


# ------------------------------------------------------------- print layout
PRINT_LINE = 1.3
"""Line height of a category label or a title's line, in font sizes."""
PRINT_CHROME_PX = 150
PRINT_LEGEND_GAP_PX = 8
"""Room between two rows of a legend in print, beside a row's line of text (plotly.js set
them 19 px apart at 8 pt; :data:`LEGEND_ROW_PX`, the screen's, left blank rows above them)."""
PRINT_AXIS_PX = 48
"""Width of a numeric y axis's tick labels and title in print (see :func:`_print_plot_width`)."""
PRINT_COLORBAR_PX = 60
"""Width of a colour bar's column in print: the bar, its tick labels and title."""
CHAR_WIDTH_EM = 0.55
"""Average width of a character of the figure font, in font sizes (Arial)."""
PRINT_LABEL_SHARE = 0.4
"""Largest share of the page width the row labels of a figure may take in print."""


def title_from_top(text: str, top_px: float, font_px: float, *, left_px: float = 0) -> dict:
    """Title placement whose first line starts ``top_px`` below the figure's top edge.

    plotly anchors a title of several lines by its last line, so the pad also holds the
    height of the lines above it (``PRINT_LINE`` font sizes each).
    """
    above = str(text).count("<br>") * font_px * PRINT_LINE
    pad = {"t": round(top_px + above)} | ({"l": left_px} if left_px else {})
    return {"yref": "container", "y": 1.0, "yanchor": "top", "pad": pad}


def _axes(layout: dict) -> list[tuple[str, dict]]:
    """The layout's x and y axes (``xaxis``, ``yaxis2``, ...) by name."""
    return [
        (name, axis)
        for name, axis in layout.items()
        if re.fullmatch(r"[xy]axis\d*", name) and isinstance(axis, dict)
    ]


def _category_axes(layout: dict) -> list[tuple[str, dict]]:
    return [
        (name, axis)
        for name, axis in _axes(layout)
        if axis.get("tickmode") == "array" and axis.get("ticktext")
    ]


def _fit_category_axes(layout: dict, width_px: int, font_px: float, max_height: int) -> int:
    """Shorten labels of labelled category axes so that they fit a page ``width_px`` wide.

    Row labels (y) are abbreviated to what :data:`PRINT_LABEL_SHARE` of the width holds;
    column labels (x) turn vertical when they do not fit side by side. Returns the number
    of labelled rows (0 if none), which decides the printed height; rows that cannot get a
    legible line on one page lose their labels.
    """
    char_px = CHAR_WIDTH_EM * font_px
    rows = 0
    for name, axis in _category_axes(layout):
        full = [str(value) for value in axis.get("tickvals") or []]
        if name.startswith("y"):
            max_chars = max(8, int(width_px * PRINT_LABEL_SHARE / char_px))
            axis["ticktext"] = short_labels(full, max_chars)
            rows = max(rows, len(full))
            if len(full) * font_px * PRINT_LINE + PRINT_CHROME_PX > max_height:
                axis["showticklabels"] = False
                axis["title"] = {"text": f"{len(full)} rows (listed in the table export)"}
                rows = 0
        else:
            max_chars = 16
            axis["ticktext"] = short_labels(full, max_chars)
            longest = max((len(text) for text in axis["ticktext"]), default=0)
            domain = axis.get("domain") or [0.0, 1.0]
            room = width_px * (1 - PRINT_LABEL_SHARE) * (domain[1] - domain[0])
            if longest * char_px > room / max(len(full), 1) * 0.9:
                axis["tickangle"] = -90
    return rows


def _wrapped(text: str, width_px: int, font_px: float) -> str:
    """``text`` broken into lines (``<br>``) that fit ``width_px``: each of its own lines
    too long for it is broken where words meet."""
    max_chars = max(12, int((width_px - 16) / (CHAR_WIDTH_EM * font_px)))
    lines = re.split("<br>", text, flags=re.IGNORECASE)
    if all(len(line) <= max_chars for line in lines):
        return text
    return "<br>".join(part for line in lines for part in _wrapped_line(line, max_chars))


LONG_WORD_CHARS = 1000
"""Words longer than this are cut into line-long pieces before wrapping (see
:func:`_wrapped_line`)."""


def _wrapped_line(line: str, max_chars: int) -> list[str]:
    """``textwrap.wrap(line, max_chars)`` in time linear in the line's length.

    textwrap cuts a word longer than a line one line at a time, copying the rest of the word
    each time: a 20 MB title took ~8 minutes before the export's size check refused it.
    Words longer than :data:`LONG_WORD_CHARS` are cut into line-long pieces first (shorter
    words wrap exactly as textwrap wraps them, at hyphens too)."""
    if len(line) > LONG_WORD_CHARS:
        words = []
        for word in line.split(" "):
            if len(word) > LONG_WORD_CHARS:
                words += [
                    word[start : start + max_chars] for start in range(0, len(word), max_chars)
                ]
            else:
                words.append(word)
        line = " ".join(words)
    return textwrap.wrap(line, max_chars) or [""]


AXIS_LABELS_PX = 60
"""Room the other axis's tick labels take beside an axis title, in print."""


def _wrap_axis_titles(spec: dict, width_px: int, height_px: float, font_px: float) -> None:
    """Break axis titles longer than their side of the plot (a long semantic feature name
    under a phenotype plot) into lines. plotly centres an x axis title under the plot, not
    the page: beside long y labels, a title as wide as the page ran off its right edge."""
    # a colour bar's column is room for the title under it; _wrapped keeps its own air
    under_plot_px = min(
        width_px - AXIS_LABELS_PX,
        _print_plot_width(spec, width_px, font_px, colour_bar=False) + 16,
    )
    for name, axis in _axes(spec.get("layout", {})):
        title = axis.get("title")
        if isinstance(title, dict) and isinstance(title.get("text"), str):
            side = under_plot_px if name.startswith("x") else height_px - AXIS_LABELS_PX
            size = max((title.get("font") or {}).get("size") or 0, font_px)
            title["text"] = _wrapped(title["text"], int(side), size)


def _wrap_annotations(layout: dict, width_px: int, font_px: float) -> None:
    """Break one-line annotations wider than the page (an empty figure's message) into lines."""
    for annotation in layout.get("annotations") or []:
        text = annotation.get("text")
        if isinstance(text, str):
            size = max((annotation.get("font") or {}).get("size") or 0, font_px)
            annotation["text"] = _wrapped(text, width_px, size)


SIDE_LABEL_SHARE = 0.3
"""Largest share of the plot width the labels on either side of a network may take in print."""


def _numbers(values) -> np.ndarray:
    """A trace's coordinates as floats (``None`` gaps as NaN; plotly's typed arrays decoded)."""
    if isinstance(values, dict) and "bdata" in values:
        raw = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
        return raw.astype(float)
    return np.array([np.nan if value is None else value for value in values or []], float)


def _side_labels(labels: Sequence[str], max_chars: int) -> list[str]:
    """Labels of at most ``max_chars``: names (with spaces: pathways) cut at the end,
    identifiers (radiomic features) abbreviated by :func:`short_labels`."""
    shortened = []
    for label, short in zip(map(str, labels), short_labels(labels, max_chars)):
        if len(label) > max_chars and " " in label:
            short = label[: max_chars - 1].rstrip() + "…"
        shortened.append(short)
    return shortened


def _fit_side_labels(spec: dict, plot_px: float, font_px: float) -> None:
    """Text written beside points (a network's outer layers, ``textposition`` ``middle
    left`` / ``middle right``) stays on a page ``plot_px`` wide: labels longer than
    :data:`SIDE_LABEL_SHARE` of the width are shortened (the full text stays in the
    hover), and the x range leaves each label the room it needs beside its point."""
    from .margins import text_width

    traces = [trace for trace in spec.get("data", []) if trace.get("xaxis", "x") == "x"]
    beside = [
        trace
        for trace in traces
        if "text" in str(trace.get("mode", ""))
        and str(trace.get("textposition")) in ("middle left", "middle right")
        and trace.get("text") is not None
    ]
    if not beside:
        return
    xs = np.concatenate([_numbers(trace.get("x")) for trace in traces])
    low, high = np.nanmin(xs), np.nanmax(xs)
    needs = []  # (x, pixels, side) of every label
    for trace in beside:
        size = (trace.get("textfont") or {}).get("size") or font_px
        full = trace.get("hovertext")
        full = full if isinstance(full, list) and len(full) == len(trace["text"]) else trace["text"]
        max_chars = MAX_LABEL_CHARS
        while max_chars > 8 and any(
            text_width(text, size) > SIDE_LABEL_SHARE * plot_px
            for text in _side_labels(full, max_chars)
        ):
            max_chars -= 1
        trace["text"] = _side_labels(full, max_chars)
        marker = (trace.get("marker") or {}).get("size", 6)
        marker = np.atleast_1d(marker if np.isscalar(marker) else _numbers(marker))
        pad = np.broadcast_to(marker, (len(full),)) / 2 + 4
        side = -1 if trace["textposition"].endswith("left") else 1
        x = _numbers(trace.get("x"))
        needs += [(xi, text_width(t, size) + p, side) for xi, t, p in zip(x, trace["text"], pad)]
    for _ in range(50):  # the room a label needs in x shrinks as the range widens: iterate
        scale = (high - low) / plot_px if high > low else 1.0 / plot_px
        left = min([low] + [x - px * scale for x, px, side in needs if side < 0])
        right = max([high] + [x + px * scale for x, px, side in needs if side > 0])
        if np.isclose(left, low) and np.isclose(right, high):
            break
        low, high = left, right
    layout = spec.setdefault("layout", {})
    layout.setdefault("xaxis", {})["range"] = [float(low), float(high)]


LEGEND_SYMBOL_PX = 40
"""Width of a legend item's symbol and gaps, beside its text."""
TRACE_GROUP_GAP_PX = 10
"""plotly.js's default gap between the groups of a legend (``tracegroupgap``)."""
LEGEND_ROW_PX = 30
"""Height plotly gives one row of legend items with a marker symbol."""


def legend_above(legend: dict | None) -> bool:
    """Whether a legend stands in rows above the plot (horizontal, at ``y`` of 1 or more):
    it then shares the top margin with the figure's title."""
    legend = legend or {}
    return legend.get("orientation") == "h" and (legend.get("y") or 0) >= 1


SCALED_TRACES = ("heatmap", "contour", "histogram2d", "histogram2dcontour")
"""Trace types that show a colour bar unless told not to; plotly.js leaves them out of the
legend unless ``showlegend`` is set."""


def legend_names(traces: Sequence[dict]) -> list[str]:
    """Names of the traces plotly.js lists in a figure's legend."""
    return [
        str(trace["name"])
        for trace in traces
        if trace.get("name")
        and (
            trace.get("showlegend") is True
            or trace.get("showlegend") is None
            and trace.get("type", "scatter") not in SCALED_TRACES
        )
    ]


def legend_grouped(legend: dict | None, traces: Sequence[dict]) -> bool:
    """Whether plotly.js lays a legend out by groups: its ``traceorder`` says so, or, unset,
    a trace has a ``legendgroup`` (groups are then :data:`TRACE_GROUP_GAP_PX` apart)."""
    order = str((legend or {}).get("traceorder") or "")
    return "grouped" in order or (not order and any(t.get("legendgroup") for t in traces))


def legend_rows(
    names: Sequence[str],
    width_px: float,
    font_px: float,
    *,
    legend: dict | None = None,
    traces: Sequence[dict] = (),
) -> int:
    """Rows a horizontal legend of entries ``names`` takes across ``width_px``, as plotly.js
    lays them out.

    Entries that fit in one row take one. Else plotly sets them in columns: each as wide as
    ``legend``'s ``entrywidth`` share of the width (``entrywidthmode`` "fraction"), or, in a
    legend without groups, as wide as its widest entry; entries of a grouped legend (a
    trace with a ``legendgroup`` among ``traces``) follow each other at their own widths.
    """
    from .margins import text_width

    legend = legend or {}
    widths = [text_width(name, font_px) + LEGEND_SYMBOL_PX for name in names]
    if not widths or sum(widths) <= width_px:
        return 1
    share = legend.get("entrywidth") if legend.get("entrywidthmode") == "fraction" else None
    if share or not legend_grouped(legend, traces):
        column = share * width_px if share else max(widths)
        return math.ceil(len(widths) / max(1, int(width_px // column)))
    rows, used = 1, 0.0
    for width in widths:
        if used and used + width > width_px:
            rows, used = rows + 1, 0.0
        used += width
    return rows


def _print_plot_width(
    spec: dict, width_px: float, font_px: float, *, colour_bar: bool = True
) -> float:
    """Width of a printed figure's plot: the page's less its y axis labels (category
    labels, string y values or horizontal boxes' names, as long as their longest, at most
    :data:`PRINT_LABEL_SHARE` of the page; numbers :data:`PRINT_AXIS_PX`) and, with
    ``colour_bar``, a colour bar's column. plotly.js lays a legend above or under the plot
    out across it."""
    from .margins import text_width

    layout = spec.get("layout", {})
    labels = [
        str(text)
        for name, axis in _category_axes(layout)
        if name.startswith("y")
        for text in axis["ticktext"]
    ]
    for trace in spec.get("data", []):
        values = trace.get("y")
        if (
            isinstance(values, np.ndarray | list | tuple)
            and len(values)
            and isinstance(values[0], str)
        ):
            labels += [str(value) for value in values[:500]]
        elif values is None and trace.get("orientation") == "h" and trace.get("name"):
            labels.append(str(trace["name"]))  # a horizontal box drawn at its name
    widest = max((text_width(text, font_px) for text in labels), default=0.0)
    axis_px = max(PRINT_AXIS_PX, min(widest, PRINT_LABEL_SHARE * width_px) + PRINT_AXIS_PX / 2)
    bar_px = (
        PRINT_COLORBAR_PX
        if colour_bar
        and any(
            trace.get("type") in SCALED_TRACES
            and trace.get("showscale") is not False
            or isinstance(trace.get("marker"), dict)
            and trace["marker"].get("showscale")
            for trace in spec.get("data", [])
        )
        else 0.0
    )
    return max(width_px - axis_px - bar_px, 2 * LEGEND_SYMBOL_PX)


def _fit_legends(spec: dict, width_px: int, font_px: float) -> float:
    """Colour bars thin and close; at single-column width the legend goes in rows above the
    plot. Returns the height the legend rows above the plot need (0 when the legend stays
    aside).

    A colour bar of its own takes the plot's height, or half of it beside a legend (which
    keeps the lower half); stacked colour bars keep their share.
    """
    from .margins import text_width

    narrow = width_px < PUBLICATION_SIZES["double"][0]
    layout = spec.setdefault("layout", {})
    names = legend_names(spec.get("data", []))
    shown = layout.get("showlegend")
    legend_aside = not narrow and shown is not False and (len(names) > 1 or bool(shown))
    longest = 0.5 if legend_aside else 1.0
    for trace in spec.get("data", []):
        marker = trace.get("marker")
        for owner in (trace, marker if isinstance(marker, dict) else {}):
            colorbar = owner.get("colorbar")
            if (
                isinstance(colorbar, dict)
                or owner.get("showscale", owner is trace)
                and ("colorscale" in owner)
            ):
                colorbar = owner.setdefault("colorbar", {})
                length = min(colorbar.get("len") or longest, longest)
                colorbar.update(thickness=8, xpad=4, len=length)
    if not narrow and not legend_above(layout.get("legend")):
        return 0.0
    layout["legend"] = {
        **(layout.get("legend") or {}),
        "orientation": "h",
        "yref": "paper",  # on the plot, whatever the screen's legend was set against
        "y": 1.0,
        "yanchor": "bottom",
        "font": {"size": font_px},
    }
    if narrow:
        layout["legend"].update(x=0.0, xanchor="left")
    if shown is False or not names:
        return 0.0
    plot_px = _print_plot_width(spec, width_px, font_px)
    share = layout["legend"].get("entrywidth")
    if layout["legend"].get("entrywidthmode") == "fraction" and share:
        widest = max(text_width(name, font_px) for name in names) + LEGEND_SYMBOL_PX
        if widest > share * plot_px:
            # in half a single column "Tumour size (baseline)" ran into the next entry
            layout["legend"].pop("entrywidthmode")
            layout["legend"].pop("entrywidth")
    legend_title = layout["legend"].get("title")
    titled = isinstance(legend_title, dict) and bool(legend_title.get("text"))
    if titled:  # over the items, which then have the whole width ("top left" indents
        # a horizontal legend's items by the title's width and pushed the last off the page)
        layout["legend"]["title"] = {**legend_title, "side": "top"}
    rows = legend_rows(names, plot_px, font_px, legend=layout["legend"], traces=spec["data"])
    row_px = font_px * PRINT_LINE + PRINT_LEGEND_GAP_PX
    if legend_grouped(layout["legend"], spec["data"]):
        row_px += layout["legend"].get("tracegroupgap", TRACE_GROUP_GAP_PX)
    return (rows + titled) * row_px + 4


# ------------------------------------------------------------- axis titles
MEASURE_COLUMNS = ("effect_measure", "effect_name", "measure")
"""Columns of a statistics table that may name its effect measure (newest bundles)."""
TEST_MEASURES = {
    "spearman": "Spearman ρ",
    "pearson": "Pearson r",
    "partial_spearman": "partial ρ",
    "partial_pearson": "partial r",
    "welch": "Hedges' g",
    "student": "Hedges' g",
    "mannwhitney": "rank-biserial r",
    "kruskal": "ε²",
    "anova": "η²",
    "fisher": "Cramér's V",
    "chi2": "Cramér's V",
}
"""Effect measure of each test of ``radmap.analysis.associate`` (for older bundles)."""
MEASURE_NAMES = {
    "rho": "Spearman ρ",
    "r": "Pearson r",
    "partial_rho": "partial ρ",
    "partial_r": "partial r",
    "hedges_g": "Hedges' g",
    "rank_biserial": "rank-biserial r",
    "standardised_coefficient": "standardised β",
    "epsilon_squared": "ε²",
    "eta_squared": "η²",
    "partial_eta_squared": "partial η²",
    "cramers_v": "Cramér's V",
    "log_hr": "log hazard ratio",
    "log_odds_ratio": "log odds ratio",
}
"""How the analysis layer's effect-measure names are written on axes and legends."""


def effect_title(table, *, prefix: str = "effect") -> str:
    """An axis title naming the effect measure(s) plotted from ``table``.

    Uses the table's effect-measure column when it has one, else the measures implied by
    its ``test`` column (``spearman`` -> Spearman ρ) and the test names otherwise, e.g.
    ``"effect (Spearman ρ, welch)"``; plain ``prefix`` when the table says nothing.
    """
    names: list[str] = []
    columns = getattr(table, "columns", ())
    source = next((c for c in MEASURE_COLUMNS if c in columns), None)
    if source is None and "test" in columns:
        source = "test"
    if source is not None:
        for value in table[source].dropna().astype(str).unique():
            names_of = TEST_MEASURES if source == "test" else MEASURE_NAMES
            name = names_of.get(value.lower(), value)
            if name and name not in names:
                names.append(name)
    if not names:
        return prefix
    shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    return f"{prefix} ({shown})"


# ------------------------------------------------------------- number formats
P_FLOOR = 1e-300
"""Below this a p or q value is printed as "< 1e-300": a p-value of 0 is one that underflowed
(a test's tail area too small for a float), never an exact 0."""
P_FORMAT_JS = (
    f"params.value == null ? '' : (params.value >= 0 && params.value < {P_FLOOR:g}"
    f" ? '< {P_FLOOR:g}' : Math.abs(params.value) < 1e-3"
    " ? d3.format('.2e')(params.value) : d3.format('.3~g')(params.value))"
)
"""AG Grid ``valueFormatter`` giving the same text as :func:`format_p`."""
NUMBER_FORMAT_JS = "params.value == null ? '' : d3.format('.3~g')(params.value)"


def format_p(value, *, missing: str = "—") -> str:
    """A p or q value as text: 3 significant digits, scientific below 1e-3 (``1.23e-5``),
    ``"< 1e-300"`` below :data:`P_FLOOR` (0 included: an underflowed p-value).

    The one format for p and q everywhere in the explorer (tables, hovers, statistics);
    ``missing`` for None / NaN / non-numbers. :func:`p_statement` writes "p = ..." with it.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return missing
    if number != number:
        return missing
    if 0 <= number < P_FLOOR:
        return f"< {P_FLOOR:g}"
    if abs(number) >= 1e-3:
        return f"{number:.3g}"
    mantissa, exponent = f"{number:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def p_statement(name: str, value, *, missing: str = "—") -> str:
    """``"p = 0.0123"``, or ``"p < 1e-300"`` for a value :func:`format_p` floors."""
    text = format_p(value, missing=missing)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def format_p_values(values: Iterable, *, missing: str = "NA") -> list[str]:
    """:func:`format_p` of each value, in one pass per format.

    A volcano hovers 20,000 p-values: calling :func:`format_p` on each took ~35 ms of a
    ~80 ms feature change on the server. Values numpy cannot read as floats fall back to it.
    """
    values = values if isinstance(values, np.ndarray | list | tuple) else list(values)
    try:
        numbers = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        return [
            format_p(value, missing=missing) for value in np.asarray(values, dtype=object).ravel()
        ]
    text = np.full(numbers.shape, missing, dtype=object)
    valid = ~np.isnan(numbers)
    floored = valid & (numbers >= 0) & (numbers < P_FLOOR)
    plain = valid & ~floored & (np.abs(numbers) >= 1e-3)
    small = valid & ~floored & ~plain
    text[floored] = f"< {P_FLOOR:g}"
    text[plain] = [f"{number:.3g}" for number in numbers[plain].tolist()]
    text[small] = [f"{number:.2e}".replace("e-0", "e-") for number in numbers[small].tolist()]
    return text.tolist()


# ----------------------------------------------------------- category labels
ROW_PX = 17
"""Screen pixels per labelled row of a category axis (a 13 px label plus air)."""
MAX_LABEL_CHARS = 34
_IMAGE_TYPES = (
    ("log-sigma-", "LoG"),
    ("wavelet-", "wav-"),
    ("exponential", "exp"),
    ("squareroot", "sqrt"),
    ("logarithm", "log"),
    ("gradient", "grad"),
    ("square", "sq"),
    ("lbp-3D-", "lbp-"),
    ("lbp-2D", "lbp2D"),
)
_CAMEL_WORD = re.compile(r"[A-Z][a-z]+")


def abbreviate_label(label: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """A short form of a long (radiomic) feature name, at most ``max_chars`` characters.

    Names within the limit are kept. Longer names lose pyradiomics' verbose parts step by
    step: image types are shortened (``wavelet-LLH`` -> ``wav-LLH``, ``log-sigma-2-0-mm-3D``
    -> ``LoG2-0-mm-3D``), ``original_`` is dropped, CamelCase words become initials
    (``LargeDependenceHighGrayLevelEmphasis`` -> ``LDHGLE``), and what is still too long
    is cut in the middle with "…". The full name belongs in the hover text.
    """
    text = str(label)
    if len(text) <= max_chars:
        return text
    for long, short in _IMAGE_TYPES:
        if text.startswith(long):
            text = short + text[len(long) :]
            break
    text = text.removeprefix("original_").replace("-mm-3D", "")
    if len(text) > max_chars:
        head, _, last = text.rpartition("_")
        words = _CAMEL_WORD.findall(last)
        if len(words) > 1 and not any(space.isspace() for space in last):
            last = _CAMEL_WORD.sub(lambda match: match.group(0)[0], last)
        text = f"{head}_{last}" if head else last
    if len(text) > max_chars:
        keep = max_chars - 1
        text = text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2 :]
    return text


def short_labels(labels: Sequence[str], max_chars: int = MAX_LABEL_CHARS) -> list[str]:
    """:func:`abbreviate_label` of each label, keeping the full label where two would clash."""
    short = [abbreviate_label(label, max_chars) for label in labels]
    counts: dict[str, int] = {}
    for text in short:
        counts[text] = counts.get(text, 0) + 1
    return [s if counts[s] == 1 else str(full) for s, full in zip(short, labels)]


def labelled_categories(categories: Sequence[str], *, max_chars: int = MAX_LABEL_CHARS) -> dict:
    """Axis settings that label every category (no thinning), with long names shortened.

    The categories stay the full names (hover shows them); only the tick text is short.
    """
    categories = [str(c) for c in categories]
    return {
        "tickmode": "array",
        "tickvals": categories,
        "ticktext": short_labels(categories, max_chars),
        "automargin": True,
    }


def rows_height(n_rows: int, *, chrome: int = 160, minimum: int = 300) -> int:
    """Figure height in screen pixels giving each of ``n_rows`` labelled rows :data:`ROW_PX`."""
    return max(minimum, chrome + ROW_PX * n_rows)
