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

from ..figures.style import SCREEN_FONT_PX

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
SCALED_TRACES = ("heatmap", "contour", "histogram2d", "histogram2dcontour")
"""Trace types that show a colour bar unless told not to."""
MIN_PLOT_PX = 240
"""Narrowest plotting area (between the margins) at which a figure stays readable."""
KEYS_BESIDE_PX = 260
"""Room a legend or colour bars beside the plot take."""
SCROLL_FROM_PX = 480
"""A figure that needs more width than this scrolls sideways in a narrower card (the card
reads ``layout.meta["min_width"]``) instead of squeezing its plot to a strip."""
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


def _traces_on(fig: go.Figure, name: str) -> list:
    """Cartesian traces drawn on layout axis ``name`` (``"xaxis2"`` is ``"x2"`` in a trace)."""
    letter, ref = name[0], name[0] + name[5:]
    return [
        trace
        for trace in fig.data
        if f"{letter}axis" in trace and (trace[f"{letter}axis"] or letter) == ref
    ]


def _setting(fig: go.Figure, name: str, prop: str):
    """An axis property (``"ticks"``, ``"title.standoff"``) as plotly will use it: the
    figure's own, else its template's."""
    value = fig.layout[name][prop]
    if value is None and fig.layout.template is not None:
        value = fig.layout.template.layout[name[:5]][prop]
    return value


def _tick_labels(fig: go.Figure, name: str, axis) -> list[str]:
    """Labels the axis may print (an upper bound of their widths is what matters)."""
    if axis.showticklabels is False:
        return []
    if axis.tickvals is not None and axis.tickmode in (None, "array"):
        texts = axis.ticktext if axis.ticktext is not None else axis.tickvals
        return [str(text) for text in texts]
    letter = name[0]
    arrays = [
        np.asarray(trace[letter]).ravel()
        for trace in _traces_on(fig, name)
        if letter in trace and trace[letter] is not None
    ]
    arrays = [values for values in arrays if values.size]
    if not arrays:
        return []
    if axis.type == "date" or any(values.dtype.kind == "M" for values in arrays):
        return [DATE_LABEL]
    if axis.type == "category" or any(values.dtype.kind not in "iufb" for values in arrays):
        return list(dict.fromkeys(str(value) for values in arrays for value in values))
    if axis.type == "log":
        return ["1e−10"]
    numbers = np.concatenate([values.astype(float, copy=False) for values in arrays])
    with contextlib.suppress(TypeError, ValueError):
        fixed = np.asarray(axis.range if axis.range is not None else [], dtype=float)
        if fixed.size == 2 and np.isfinite(fixed).all():
            numbers = fixed
    numbers = numbers[np.isfinite(numbers)]
    if not numbers.size:
        return []
    return _number_labels(float(numbers.min()), float(numbers.max()))


def _title_depth(fig: go.Figure, name: str, font_px: float) -> float:
    title = fig.layout[name].title
    if not title or not title.text:
        return 0.0
    size = (title.font.size if title.font and title.font.size else None) or font_px
    standoff = _setting(fig, name, "title.standoff") or 0
    return standoff + text_lines(title.text) * size * LINE_EM


def _axis_depth(fig: go.Figure, name: str, axis, font_px: float) -> tuple[str, float]:
    """The side of the plot an axis pushes and how far its ticks, labels and title reach."""
    letter = name[0]
    side = axis.side or ("left" if letter == "y" else "bottom")
    size = (axis.tickfont.size if axis.tickfont and axis.tickfont.size else None) or font_px
    labels = _tick_labels(fig, name, axis)
    ticks = _setting(fig, name, "ticks")
    ticklen = (_setting(fig, name, "ticklen") or 5) if ticks in ("outside",) else 0
    label_depth = 0.0
    if labels:
        widths = [text_width(label, size) for label in labels]
        height = max(text_lines(label) for label in labels) * size * LINE_EM
        if letter == "y":
            label_depth = max(widths)
        else:
            angle = axis.tickangle
            if (angle is None or angle == "auto") and sum(widths) > ROTATED_WHEN_WIDER_PX:
                angle = 30
            turn = math.radians(abs(float(angle))) if angle not in (None, "auto") else 0.0
            label_depth = max(widths) * math.sin(turn) + height * math.cos(turn)
        label_depth += TICK_LABEL_GAP_PX
    return side, ticklen + label_depth + _title_depth(fig, name, font_px) + PUSH_PAD_PX + SLACK_PX


def _at_plot_edge(layout, name: str, axis) -> bool:
    """Whether the axis sits on the outer edge of the plotting area (pushes the margin)."""
    if axis.anchor == "free":
        position = axis.position or 0.0
        return position in (0.0, 1.0)
    anchor = axis.anchor or ("y" if name[0] == "x" else "x")
    try:
        domain = layout[f"{anchor[0]}axis{anchor[1:]}"].domain or (0.0, 1.0)
    except (KeyError, ValueError):  # anchored to an axis the figure does not define
        domain = (0.0, 1.0)
    side = axis.side or ("left" if name[0] == "y" else "bottom")
    return domain[0] <= 0.02 if side in ("left", "bottom") else domain[1] >= 0.98


def screen_margins(fig: go.Figure) -> go.Figure:
    """Widen ``fig``'s margins (in place) to hold its axes' tick labels and titles.

    Left, bottom and top margins are raised to what the figure's outermost axes need;
    margins the figure already sets wider are kept. A figure that then needs more than
    :data:`SCROLL_FROM_PX` records its minimum width in ``layout.meta["min_width"]``
    (:func:`min_width`). Figures without axes are returned unchanged.
    """
    layout = fig.layout
    font_px = (layout.font.size if layout.font and layout.font.size else None) or SCREEN_FONT_PX
    need: dict[str, float] = {}
    for name in [key for key in layout if re.fullmatch(r"[xy]axis\d*", key)]:
        axis = layout[name]
        if _setting(fig, name, "visible") is False or not _setting(fig, name, "automargin"):
            continue
        if not _traces_on(fig, name) or not _at_plot_edge(layout, name, axis):
            continue
        side, depth = _axis_depth(fig, name, axis, font_px)
        need[side[0]] = max(need.get(side[0], 0.0), depth)
    if not need:
        return fig
    template = layout.template.layout.margin if layout.template is not None else None

    def margin(side: str) -> int:
        current = layout.margin[side]
        if current is None:
            current = (template[side] if template is not None else None) or PLOTLY_MARGIN[side]
        return int(current)

    for side, depth in need.items():
        layout.margin[side] = max(margin(side), math.ceil(depth))
    beside = KEYS_BESIDE_PX if _keys_beside(fig) else margin("r")
    readable = margin("l") + beside + MIN_PLOT_PX
    if readable > SCROLL_FROM_PX and (layout.meta is None or isinstance(layout.meta, dict)):
        layout.meta = {**(layout.meta or {}), "min_width": readable}
    return fig


def _keys_beside(fig: go.Figure) -> bool:
    """Whether a vertical legend or a colour bar sits beside the plot."""
    legend = fig.layout.legend
    named = [trace for trace in fig.data if trace.showlegend is not False and trace.name]
    vertical = legend is None or legend.orientation in (None, "v")
    if (
        vertical
        and fig.layout.showlegend is not False
        and (fig.layout.showlegend or len(named) > 1)
    ):
        return True
    for trace in fig.data:
        if trace.type in SCALED_TRACES and trace.showscale is not False:
            return True
        marker = trace.marker if "marker" in trace else None
        if marker is not None and "showscale" in marker and marker.showscale:
            return True
    return False


def min_width(fig: go.Figure) -> int | None:
    """The width in pixels below which ``fig`` should scroll sideways (None: any width)."""
    meta = fig.layout.meta
    return meta.get("min_width") if isinstance(meta, dict) else None


def fits_screen(factory: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
    """Decorator of a figure factory: its figure comes with margins that hold its labels."""

    @functools.wraps(factory)
    def draw(*args, **kwargs) -> go.Figure:
        return screen_margins(factory(*args, **kwargs))

    return draw
