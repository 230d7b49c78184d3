"""Screen margins measured on the server, so that plotly draws each figure once.

With ``automargin`` axes plotly draws the whole figure, measures its tick labels and, when
they need more room than the layout's margins, draws everything again: on the demo that
second pass was half of a volcano's or a map's draw time in the browser. Every figure
factory returns its figure through :func:`fits_screen`, which widens the margins to what
its labels need, measured with the figure font's character widths (Arial; Liberation Sans
has the same metrics). ``automargin`` stays on, so a label measured short still gets its
room, at the cost of the second pass.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go

from ..figures.style import (
    LEGEND_ROW_PX,
    SCALED_TRACES,
    SCREEN_FONT_PX,
    SCREEN_TITLE_PX,
    legend_above,
    legend_names,
    legend_rows,
    title_from_top,
)

_ASCII = "".join(chr(code) for code in range(32, 127))
_ASCII_EM = (
    0.278, 0.278, 0.355, 0.556, 0.556, 0.889, 0.667, 0.191, 0.333, 0.333, 0.389, 0.584,
    0.278, 0.333, 0.278, 0.278, 0.556, 0.556, 0.556, 0.556, 0.556, 0.556, 0.556, 0.556,
    0.556, 0.556, 0.278, 0.278, 0.584, 0.584, 0.584, 0.556, 1.015, 0.667, 0.667, 0.722,
    0.722, 0.667, 0.611, 0.778, 0.722, 0.278, 0.5, 0.667, 0.556, 0.833, 0.722, 0.778,
    0.667, 0.778, 0.722, 0.667, 0.611, 0.722, 0.667, 0.944, 0.667, 0.667, 0.611, 0.278,
    0.278, 0.278, 0.469, 0.556, 0.333, 0.556, 0.556, 0.5, 0.556, 0.556, 0.278, 0.556,
    0.556, 0.222, 0.222, 0.5, 0.222, 0.833, 0.556, 0.556, 0.556, 0.556, 0.333, 0.5,
    0.278, 0.556, 0.5, 0.722, 0.5, 0.5, 0.5, 0.334, 0.26, 0.334, 0.584,
)  # fmt: skip
CHAR_EM = {
    **dict(zip(_ASCII, _ASCII_EM, strict=True)),
    **dict.fromkeys("…—", 1.0),
    **dict.fromkeys("−×≤≥±", 0.584),
    "–": 0.556,
    "²": 0.333,
    "·": 0.278,
    "•": 0.35,
}
"""Advance width of Arial's characters, in ems (printable ASCII and the symbols radmap writes)."""
OTHER_CHAR_EM = 0.6
"""Width assumed for any other character (Greek letters, dashes, superscripts: 0.33-0.58)."""
LINE_EM = 1.3
"""Height of one line of text, in font sizes."""
PUSH_PAD_PX = 12
"""What plotly adds to the room an automargin axis asks for."""
SLACK_PX = 2
"""Added to every measured margin: rounding, and a label's ink beyond its advance width."""
TICK_LABEL_GAP_PX = 3
"""Gap plotly leaves between a tick and its label."""
ROTATED_WHEN_WIDER_PX = 520
"""Column labels wider than this side by side are assumed turned by plotly (30 degrees)."""

DATE_LABEL = "Jan 31, 2020"
"""As long as plotly's date tick labels get."""
MIN_PLOT_PX = 240
"""Narrowest plotting area (between the margins) at which a figure stays readable."""
COLORBAR_THICKNESS_PX = 30
"""plotly's default colour bar thickness (the template's bars are 12 px: the rest is slack)."""
COLORBAR_PX = COLORBAR_THICKNESS_PX + 2 * 10 + 6 + 10
"""What a vertical colour bar takes beside its labels: its thickness, padding either side,
the gap to the tick labels, and its offset from the plot (x = 1.02)."""
LEGEND_ENTRY_PX = 60
"""What a legend entry takes beside its text: symbol, gaps and the legend's padding."""
SCROLL_FROM_PX = 480
"""A figure that needs more width than this scrolls sideways in a narrower card (the card
reads ``layout.meta["min_width"]``) instead of squeezing its plot to a strip."""
TITLE_TOP_PX = 14
"""Where a title with a legend under it starts, below the figure's top edge (a title alone,
centred in the template's 50 px top margin, starts about as low)."""
PLOTLY_MARGIN = {"l": 80, "r": 80, "t": 100, "b": 80}
"""plotly.js's own default margins (a figure without template)."""

_TAG = re.compile(r"<(?!br)[^>]*>", re.IGNORECASE)
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def text_width(text: str, font_px: float) -> float:
    """Width in pixels of ``text`` in the figure font: its widest line, HTML tags not counted."""
    lines = _BREAK.split(_TAG.sub("", str(text)))
    return font_px * max(sum(CHAR_EM.get(char, OTHER_CHAR_EM) for char in line) for line in lines)


def text_lines(text: str) -> int:
    return len(_BREAK.split(str(text)))


def _number_labels(low: float, high: float) -> list[str]:
    """The longest tick labels plotly can print on a linear axis spanning ``low..high``."""
    span = high - low or abs(high) or 1.0
    step = 10 ** math.floor(math.log10(span / 5))
    decimals = max(0, -math.floor(math.log10(step)))
    pad = 0.05 * span  # plotly's autorange padding
    return [f"{value:.{decimals}f}".replace("-", "−") for value in (low - pad, high + pad)]


def _get(tree: dict | None, path: str):
    """``tree["a"]["b"]`` for ``path`` ``"a.b"`` (``None`` where a level is missing)."""
    for key in path.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


class _Plain:
    """The figure's layout, template layout and cartesian traces as the plain dicts plotly
    keeps them in (read only): reading them through plotly's objects, which validate and
    wrap every nested property, cost 40-80 ms per figure."""

    def __init__(self, fig: go.Figure) -> None:
        self.layout: dict = fig._layout  # noqa: SLF001 (plotly's own storage, read only)
        self.template: dict = _get(self.layout, "template.layout") or {}
        self.traces: list[dict] = [
            props
            for trace, props in zip(fig.data, fig._data, strict=True)  # noqa: SLF001
            if "xaxis" in trace  # a cartesian trace type
        ]

    def axis(self, name: str) -> dict:
        return self.layout.get(name) or {}

    def setting(self, name: str, path: str):
        """An axis property (``"ticks"``, ``"title.standoff"``) as plotly will use it: the
        figure's own, else its template's."""
        value = _get(self.axis(name), path)
        if value is None:
            value = _get(self.template.get(name[:5]), path)
        return value

    def traces_on(self, name: str) -> list[dict]:
        """Cartesian traces drawn on axis ``name`` (``"xaxis2"`` is ``"x2"`` in a trace)."""
        letter, ref = name[0], name[0] + name[5:]
        return [trace for trace in self.traces if (trace.get(f"{letter}axis") or letter) == ref]


def _tick_labels(plain: _Plain, name: str) -> list[str]:
    """Labels the axis may print (an upper bound of their widths is what matters)."""
    axis = plain.axis(name)
    if axis.get("showticklabels") is False:
        return []
    if axis.get("tickvals") is not None and axis.get("tickmode") in (None, "array"):
        texts = axis["ticktext"] if axis.get("ticktext") is not None else axis["tickvals"]
        return [str(text) for text in texts]
    letter = name[0]
    arrays = [
        np.asarray(trace[letter]).ravel()
        for trace in plain.traces_on(name)
        if trace.get(letter) is not None
    ]
    arrays = [values for values in arrays if values.size]
    if not arrays:
        return []
    kind = axis.get("type")
    if kind == "date" or any(values.dtype.kind == "M" for values in arrays):
        return [DATE_LABEL]
    if kind == "category" or any(values.dtype.kind not in "iufb" for values in arrays):
        return list(dict.fromkeys(str(value) for values in arrays for value in values))
    if kind == "log":
        return ["1e−10"]
    numbers = np.concatenate([values.astype(float, copy=False) for values in arrays])
    with contextlib.suppress(TypeError, ValueError):
        span = axis.get("range")
        fixed = np.asarray(span if span is not None else [], dtype=float)
        if fixed.size == 2 and np.isfinite(fixed).all():
            numbers = fixed
    numbers = numbers[np.isfinite(numbers)]
    if not numbers.size:
        return []
    return _number_labels(float(numbers.min()), float(numbers.max()))


def _title_depth(plain: _Plain, name: str, font_px: float) -> float:
    text = _get(plain.axis(name), "title.text")
    if not text:
        return 0.0
    size = _get(plain.axis(name), "title.font.size") or font_px
    standoff = plain.setting(name, "title.standoff") or 0
    return standoff + text_lines(text) * size * LINE_EM


def _axis_depth(plain: _Plain, name: str, font_px: float) -> tuple[str, float]:
    """The side of the plot an axis pushes and how far its ticks, labels and title reach."""
    letter, axis = name[0], plain.axis(name)
    side = axis.get("side") or ("left" if letter == "y" else "bottom")
    size = _get(axis, "tickfont.size") or font_px
    labels = _tick_labels(plain, name)
    ticks = plain.setting(name, "ticks")
    ticklen = (plain.setting(name, "ticklen") or 5) if ticks in ("outside",) else 0
    label_depth = 0.0
    if labels:
        widths = [text_width(label, size) for label in labels]
        height = max(text_lines(label) for label in labels) * size * LINE_EM
        if letter == "y":
            label_depth = max(widths)
        else:
            angle = axis.get("tickangle")
            if (angle is None or angle == "auto") and sum(widths) > ROTATED_WHEN_WIDER_PX:
                angle = 30
            turn = math.radians(abs(float(angle))) if angle not in (None, "auto") else 0.0
            label_depth = max(widths) * math.sin(turn) + height * math.cos(turn)
        label_depth += TICK_LABEL_GAP_PX
    depth = ticklen + label_depth + _title_depth(plain, name, font_px) + PUSH_PAD_PX + SLACK_PX
    return side, depth


def _at_plot_edge(plain: _Plain, name: str) -> bool:
    """Whether the axis sits on the outer edge of the plotting area (pushes the margin)."""
    axis = plain.axis(name)
    if axis.get("anchor") == "free":
        return (axis.get("position") or 0.0) in (0.0, 1.0)
    anchor = axis.get("anchor") or ("y" if name[0] == "x" else "x")
    domain = plain.axis(f"{anchor[0]}axis{anchor[1:]}").get("domain") or (0.0, 1.0)
    side = axis.get("side") or ("left" if name[0] == "y" else "bottom")
    return domain[0] <= 0.02 if side in ("left", "bottom") else domain[1] >= 0.98


def screen_margins(fig: go.Figure) -> go.Figure:
    """Widen ``fig``'s margins (in place) to hold its axes' tick labels and titles.

    Left, bottom and top margins are raised to what the figure's outermost axes need;
    margins the figure already sets wider are kept. A figure that then needs more than
    :data:`SCROLL_FROM_PX` records its minimum width in ``layout.meta["min_width"]``
    (:func:`min_width`). Figures without axes are returned unchanged.
    """
    plain = _Plain(fig)
    font_px = _get(plain.layout, "font.size") or SCREEN_FONT_PX
    need: dict[str, float] = {}
    axes = ["xaxis", "yaxis", *(key for key in plain.layout if re.fullmatch(r"[xy]axis\d+", key))]
    for name in axes:
        if plain.setting(name, "visible") is False or not plain.setting(name, "automargin"):
            continue
        if not plain.traces_on(name) or not _at_plot_edge(plain, name):
            continue
        side, depth = _axis_depth(plain, name, font_px)
        need[side[0]] = max(need.get(side[0], 0.0), depth)
    if not need:
        return fig
    layout = fig.layout
    for side, depth in need.items():
        layout.margin[side] = max(_margin(plain.layout, side), math.ceil(depth))
    beside = max(_keys_beside(fig, font_px), _margin(plain.layout, "r"))
    readable = math.ceil(_margin(plain.layout, "l") + beside + MIN_PLOT_PX)
    if layout.meta is None or isinstance(layout.meta, dict):
        # measured again when a factory moves a legend of a figure it builds on
        meta = {key: value for key, value in (layout.meta or {}).items() if key != "min_width"}
        if readable > SCROLL_FROM_PX:
            meta["min_width"] = readable
        if meta != (layout.meta or {}):
            layout.meta = meta or None
    return fig


def _margin(layout: dict, side: str) -> int:
    """A margin as plotly will draw it: the figure's own, else its template's, else
    plotly.js's default (``layout`` as plotly keeps it: :class:`_Plain`)."""
    current = _get(layout, f"margin.{side}")
    if current is None:
        current = _get(layout, f"template.layout.margin.{side}") or PLOTLY_MARGIN[side]
    return int(current)


def _legend_entries(layout: dict, traces: list) -> list[str]:
    """Names of the legend's entries, or none when plotly shows no legend (turned off, or
    fewer than two named traces without ``showlegend``)."""
    names = legend_names(traces)
    shown = layout.get("showlegend")
    return [] if shown is False or not (shown or len(names) > 1) else names


def _keys_beside(fig: go.Figure, font_px: float) -> float:
    """Room (px) the vertical legend and colour bars beside the plot take (0: none there).

    Both are measured from their text: a legend's entries (and title), a colour bar's tick
    labels and title. Colour bars and a legend share the column right of the plot (plotly
    stacks them at x = 1.02), so the wider of them is the room.
    """
    layout, traces = fig._layout, fig._data  # noqa: SLF001 (see _Plain)
    bars = [
        _colorbar_width(trace, trace.get("colorbar") or {}, font_px)
        for trace in traces
        if trace.get("type", "scatter") in SCALED_TRACES and trace.get("showscale") is not False
    ] + [
        _colorbar_width(trace["marker"], _get(trace, "marker.colorbar") or {}, font_px)
        for trace in traces
        if _get(trace, "marker.showscale")
    ]
    return max([*bars, _legend_width(layout, traces, font_px)])


def _colorbar_width(scaled: dict, bar: dict, font_px: float) -> float:
    """Width of the colour bar of ``scaled`` (a trace, or a marker with a colour scale)."""
    size = _get(bar, "tickfont.size") or font_px
    labels = bar.get("ticktext") or _number_labels(*_colour_range(scaled))
    width = COLORBAR_PX + max(text_width(str(label), size) for label in labels)
    title = _get(bar, "title.text")
    if title:
        title_px = _get(bar, "title.font.size") or font_px
        if _get(bar, "title.side") == "right":
            width += LINE_EM * title_px * text_lines(title)
        else:  # over the bar: the padding and offset beside its text
            width = max(width, text_width(title, title_px) + COLORBAR_PX - COLORBAR_THICKNESS_PX)
    return width


def _colour_range(scaled: dict) -> tuple[float, float]:
    """The values a colour scale spans: its set bounds, else its data's range."""
    for low_key, high_key in (("zmin", "zmax"), ("cmin", "cmax")):
        low, high = scaled.get(low_key), scaled.get(high_key)
        if low is not None and high is not None:
            return float(low), float(high)
    values = scaled.get("z") if scaled.get("z") is not None else scaled.get("color")
    try:
        numbers = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return 0.0, 1.0
    finite = numbers[np.isfinite(numbers)] if numbers.size else numbers
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


def _legend_width(layout: dict, traces: list, font_px: float) -> float:
    """Width of a vertical legend right of the plot (0: none there)."""
    names = _legend_entries(layout, traces)
    legend = _get(layout, "legend") or {}
    if not _legend_beside(legend) or not names:
        return 0.0
    size = _get(legend, "font.size") or font_px
    entries = max((text_width(text, size) for text in names), default=0.0) + LEGEND_ENTRY_PX
    title = _get(legend, "title.text")
    return max(entries, text_width(title, size) + LEGEND_ENTRY_PX / 2 if title else 0.0)


def _legend_beside(legend: dict) -> bool:
    """Whether a legend stands right of the plot (plotly's place for a vertical one), not
    under, above or inside it."""
    if legend.get("orientation") not in (None, "v"):
        return False
    x, y = legend.get("x"), legend.get("y")
    if y is not None and not 0 <= y <= 1:
        return False
    if x is None:
        return True
    return x >= 1 and not (x <= 1 and legend.get("xanchor") == "right")


def layout_setting(fig: go.Figure | dict, name: str):
    """A top-level layout property (``"height"``, ``"meta"``) of a figure or of its JSON
    dict (``to_plotly_json()``); ``None`` when unset."""
    layout = fig["layout"] if isinstance(fig, dict) else fig.layout
    return layout.get(name) if isinstance(layout, dict) else layout[name]


def min_width(fig: go.Figure | dict) -> int | None:
    """The width in pixels below which ``fig`` (a figure or its JSON dict) should scroll
    sideways (None: any width)."""
    meta = layout_setting(fig, "meta")
    return meta.get("min_width") if isinstance(meta, dict) else None


def title_over_legend(fig: go.Figure) -> go.Figure:
    """Give a title and a legend above the plot each a band of the top margin (in place).

    plotly centres a title in the top margin and sets a legend above the plot on the plot's
    edge, so that in a margin of the template's height the two are drawn over each other.
    The title is set from :data:`TITLE_TOP_PX` below the figure's top, the legend's rows
    under it, on the plot, and the top margin is raised to hold both. The rows are counted
    at the narrowest width the figure is drawn at (:data:`MIN_PLOT_PX` between its margins).
    """
    layout = fig._layout  # noqa: SLF001 (see _Plain)
    legend = layout.get("legend") or {}
    title = layout.get("title")
    text = title.get("text") if isinstance(title, dict) else title
    traces = fig._data  # noqa: SLF001
    names = _legend_entries(layout, traces)
    if not text or not legend_above(legend) or not names:
        return fig
    title_px = _get(title, "font.size") if isinstance(title, dict) else None
    title_px = title_px or _get(layout, "template.layout.title.font.size") or SCREEN_TITLE_PX
    font_px = _get(legend, "font.size") or _get(layout, "font.size") or SCREEN_FONT_PX
    width = _margin(layout, "l") + MIN_PLOT_PX + _margin(layout, "r")
    rows = legend_rows(names, min_width(fig) or width, font_px, legend=legend, traces=traces)
    top = TITLE_TOP_PX + LINE_EM * title_px * text_lines(text) + rows * LEGEND_ROW_PX
    fig.update_layout(
        title={"text": text, **title_from_top(text, TITLE_TOP_PX, title_px)},
        legend={"y": 1.0, "yanchor": "bottom"},
        margin={"t": max(_margin(layout, "t"), math.ceil(top))},
    )
    return fig


def fits_screen(factory: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
    """Decorator of a figure factory: its figure comes with margins that hold its labels,
    and with its title and a legend above the plot one under the other."""

    @functools.wraps(factory)
    def draw(*args, **kwargs) -> go.Figure:
        return title_over_legend(screen_margins(factory(*args, **kwargs)))

    return draw
