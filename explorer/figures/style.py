"""Shared look of every radmap figure: template, colour scales, publication sizes.

Colours are colour-blind safe: modules use the Okabe–Ito palette followed by Tableau 10,
signed effects use the ColorBrewer RdBu scale reversed (blue = negative, red = positive)
centred at 0, magnitudes use viridis.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import plotly.graph_objects as go
import plotly.io as pio

from ...analysis.bundle import UNASSIGNED
from ...analysis.validate import InputError

TEMPLATE = "radmap"

FONT_FAMILY = "Arial, Helvetica, 'Liberation Sans', 'DejaVu Sans', sans-serif"
SCREEN_FONT_PX = 13

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

MM_PER_INCH = 25.4
CSS_DPI = 96
PRINT_DPI = 300
POINTS_PER_INCH = 72
PUBLICATION_WIDTH_MM = {"single": 89.0, "double": 183.0}
PUBLICATION_MAX_HEIGHT_MM = 247.0


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
    }
    pio.templates[TEMPLATE] = go.layout.Template(
        layout={
            "font": {"family": FONT_FAMILY, "size": SCREEN_FONT_PX, "color": "#222222"},
            "title": {"font": {"size": SCREEN_FONT_PX + 2}, "x": 0.0, "xanchor": "left"},
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


@functools.cache
def _template_spec() -> dict:
    return pio.templates[TEMPLATE].to_plotly_json()


def figure_spec(fig: go.Figure) -> dict:
    """The figure's traces and layout as plain dicts (numpy arrays kept, nothing encoded)."""
    return {
        "data": [trace.to_plotly_json() for trace in fig.data],
        "layout": fig.layout.to_plotly_json(),
    }


def restore_figure(spec: dict) -> go.Figure:
    """A new figure from :func:`figure_spec` output (copied, not validated again)."""
    return go.Figure(spec, _validate=False)


def figure_from_spec(data: Sequence[dict], layout: dict) -> go.Figure:
    """A figure built from plain trace and layout dicts with the radmap template.

    Plotly's per-property validation is skipped (it costs more than building the data for
    a large figure), so the dicts must use plotly's own property names; the figures' tests
    check the resulting JSON.
    """
    spec = {"data": list(data), "layout": {"template": _template_spec(), **layout}}
    return go.Figure(spec, _validate=False)


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
    if height is None:
        own_height = fig.layout.height
        height = min(own_height, max_height) if own_height else default_height
        height = max(height, default_height // 2)
    min_font = round(pt_to_px(font_pt), 2)
    spec = fig.to_dict()
    _raise_font_sizes(spec, min_font)
    layout = spec.setdefault("layout", {})
    title = layout.get("title")
    has_title = bool(title.get("text")) if isinstance(title, dict) else bool(title)
    layout.update(
        width=width_px,
        height=round(height),
        autosize=False,
        margin={"l": 10, "r": 10, "t": 30 if has_title else 10, "b": 10, "pad": 0},
    )
    layout.setdefault("font", {})
    layout["font"].update(family=FONT_FAMILY, size=min_font)
    if has_title:
        layout["title"].setdefault("font", {})
        layout["title"]["font"]["size"] = max(
            layout["title"]["font"].get("size") or 0, round(pt_to_px(PUBLICATION_TITLE_PT), 2)
        )
    return go.Figure(spec)


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
        if len(words) > 1:
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
