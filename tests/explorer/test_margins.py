"""Screen margins measured on the server (`explorer.figures.margins`)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from radmap.explorer.figures.margins import (
    COLORBAR_PX,
    COLORBAR_THICKNESS_PX,
    LEGEND_ENTRY_PX,
    LINE_EM,
    MIN_PLOT_PX,
    PUSH_PAD_PX,
    TITLE_TOP_PX,
    fits_screen,
    min_width,
    screen_margins,
    text_width,
    title_over_legend,
)
from radmap.explorer.figures.style import LEGEND_ROW_PX, SCREEN_TITLE_PX, TEMPLATE


def test_numeric_axes_do_not_measure_each_tick_label_to_hide_those_past_the_figure():
    """plotly.js's default for numeric axes ("hide past div") measures every tick label,
    showing and hiding each in turn, on every draw (~45 ms of a gene choice). The margins
    are sized to the labels, so the radmap template lets them be."""
    template = pio.templates[TEMPLATE].layout
    assert template.xaxis.ticklabeloverflow == template.yaxis.ticklabeloverflow == "allow"


def test_text_width_adds_arial_advance_widths_and_ignores_tags():
    assert text_width("MM", 13) == pytest.approx(2 * 0.833 * 13)
    assert text_width("<b>il</b>", 10) == pytest.approx((0.222 + 0.222) * 10)
    assert text_width("short<br>a longer line", 13) == pytest.approx(
        text_width("a longer line", 13)
    )
    assert text_width("a…b", 13) > text_width("a.b", 13) + 0.5 * 13  # an ellipsis is one em


def test_long_row_labels_widen_the_left_margin_to_what_they_need():
    labels = ["x", "wavelet-LLL_glcm_Autocorrelation"]
    fig = go.Figure(go.Heatmap(z=[[1, 2]], y=[0, 1]), layout={"template": TEMPLATE})
    fig.update_yaxes(tickvals=[0, 1], ticktext=labels)
    screen_margins(fig)
    widest = max(text_width(label, 13) for label in labels)
    assert widest + PUSH_PAD_PX <= fig.layout.margin.l <= widest + PUSH_PAD_PX + 16
    assert fig.layout.margin.r is None  # legends and colour bars are left to plotly


def test_margins_follow_tick_text_lines_titles_and_keep_a_wider_margin():
    def boxes():
        layout = {"template": TEMPLATE, "margin": {"b": 0}}
        return go.Figure(go.Box(x=["a", "b"], y=[1, 2]), layout=layout)

    one_line, two_lines, titled = boxes(), boxes(), boxes()
    two_lines.update_xaxes(tickvals=["a", "b"], ticktext=["a<br>(n=1)", "b<br>(n=1)"])
    titled.update_xaxes(title_text="feature")
    bottoms = [screen_margins(fig).layout.margin.b for fig in (one_line, two_lines, titled)]
    assert bottoms[1] >= bottoms[0] + 13 and bottoms[2] >= bottoms[0] + 13
    wide = go.Figure(go.Bar(x=[1], y=["a"]), layout={"template": TEMPLATE, "margin": {"l": 300}})
    assert screen_margins(wide).layout.margin.l == 300


def test_numbers_on_a_y_axis_are_measured_from_the_data_range():
    small = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout={"template": TEMPLATE})
    large = go.Figure(go.Scatter(x=[0, 1], y=[-120000.0, 350000.0]), layout={"template": TEMPLATE})
    assert screen_margins(large).layout.margin.l > screen_margins(small).layout.margin.l


def test_axes_without_traces_or_labels_leave_the_figure_alone():
    hidden = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout={"template": TEMPLATE})
    hidden.update_xaxes(visible=False)
    hidden.update_yaxes(visible=False)
    screen_margins(hidden)
    assert hidden.layout.margin.l is None and hidden.layout.margin.b is None
    assert screen_margins(go.Figure()).layout.margin.l is None


def test_an_inner_subplot_axis_does_not_push_the_margin():
    fig = go.Figure(layout={"template": TEMPLATE})
    fig.add_trace(go.Bar(x=[1], y=["short"], xaxis="x", yaxis="y"))
    fig.add_trace(go.Bar(x=[1], y=["a much much longer label here"], xaxis="x2", yaxis="y2"))
    fig.update_layout(
        xaxis={"domain": [0, 0.4]}, xaxis2={"domain": [0.6, 1]}, yaxis2={"anchor": "x2"}
    )
    screen_margins(fig)
    assert fig.layout.margin.l < text_width("a much much longer label here", 13)


def test_fits_screen_decorates_a_factory():
    @fits_screen
    def factory(labels):
        return go.Figure(go.Bar(x=np.ones(len(labels)), y=labels), layout={"template": TEMPLATE})

    assert factory(["a" * 40]).layout.margin.l > factory(["a"]).layout.margin.l
    assert factory.__name__ == "factory"


def test_a_figure_with_long_row_labels_says_how_wide_it_must_stay():
    labels = ["wavelet-LLL_glcm_Autocorrelation", "original_shape_Sphericity"]
    fig = go.Figure(
        go.Heatmap(z=[[1, 2], [3, 4]], y=labels, x=["M1", "M2"]),
        layout={"template": TEMPLATE, "meta": {"q_threshold": 0.05}},
    )
    screen_margins(fig)
    bar = COLORBAR_PX + text_width("4.2", 13)  # the colour bar's widest tick label
    assert fig.layout.meta["min_width"] == pytest.approx(
        fig.layout.margin.l + bar + MIN_PLOT_PX, abs=1
    )
    assert fig.layout.meta["q_threshold"] == 0.05  # the figure's own meta is kept
    assert min_width(fig) == fig.layout.meta["min_width"]
    small = screen_margins(go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout={"template": TEMPLATE}))
    assert min_width(small) is None


def _bar_room(**colorbar) -> float:
    labels = ["wavelet-LLL_glcm_Autocorrelation", "original_shape_Sphericity"]
    fig = go.Figure(
        go.Heatmap(z=[[-0.5, 0.2], [0.1, 0.5]], y=labels, x=["M1", "M2"], colorbar=colorbar),
        layout={"template": TEMPLATE},
    )
    return min_width(screen_margins(fig)) - fig.layout.margin.l - MIN_PLOT_PX


def test_a_colour_bar_takes_the_width_of_its_labels_and_title():
    plain = _bar_room()
    assert plain == pytest.approx(COLORBAR_PX + text_width("−0.6", 13), abs=1)  # -0.5 - 5 %
    long_title = "Cramér's V (no direction)"
    assert _bar_room(title={"text": long_title}) == pytest.approx(
        text_width(long_title, 13) + COLORBAR_PX - COLORBAR_THICKNESS_PX, abs=1
    )
    assert _bar_room(title={"text": "g", "side": "right"}) > plain
    labels = {"tickvals": [0, 1], "ticktext": ["weak", "a much stronger link"]}
    assert _bar_room(**labels) == pytest.approx(
        COLORBAR_PX + text_width("a much stronger link", 13), abs=1
    )
    with_legend = go.Figure(
        [
            go.Heatmap(z=[[0.0, 1.0]], y=["a" * 40], x=["M1", "M2"]),
            *(go.Scatter(x=["M1"], y=["a" * 40], name="an entry " + "long " * k) for k in (1, 8)),
        ],
        layout={"template": TEMPLATE},
    )
    legend = text_width("an entry " + "long " * 8, 13) + LEGEND_ENTRY_PX
    screen_margins(with_legend)
    assert min_width(with_legend) == pytest.approx(
        with_legend.layout.margin.l + legend + MIN_PLOT_PX, abs=1
    )  # the legend, wider than the bar, stands in the same column


def _long_labels_and_a_legend(**legend) -> go.Figure:
    labels = ["wavelet-LLL_glcm_Autocorrelation_of_a_long_name", "original_shape_Sphericity"]
    return go.Figure(
        [go.Bar(x=[1, 2], y=labels, orientation="h", name=name) for name in ("low", "high")],
        layout={"template": TEMPLATE, "legend": legend},
    )


def test_a_legend_beside_the_plot_takes_the_width_of_its_entries():
    fig = screen_margins(_long_labels_and_a_legend())
    entries = text_width("high", 13) + LEGEND_ENTRY_PX
    assert entries < 150  # two short entries
    assert min_width(fig) == pytest.approx(fig.layout.margin.l + entries + MIN_PLOT_PX, abs=1)


@pytest.mark.parametrize(
    "legend",
    [
        {"orientation": "v", "x": 0.0, "y": -0.2, "yanchor": "top"},  # under the plot
        {"x": 0.99, "xanchor": "right", "y": 0.99, "yanchor": "top"},  # inside it
        {"orientation": "h"},
    ],
)
def test_a_legend_under_or_inside_the_plot_takes_no_room_beside_it(legend):
    beside = screen_margins(_long_labels_and_a_legend())
    elsewhere = screen_margins(_long_labels_and_a_legend(**legend))
    assert min_width(elsewhere) is None or min_width(elsewhere) < min_width(beside) - 50
    # measured again after the legend moves (a factory building on another's figure)
    beside.update_layout(legend=legend)
    assert min_width(screen_margins(beside)) == min_width(elsewhere)


def _odd_figures() -> dict[str, go.Figure]:
    import pandas as pd
    from plotly.subplots import make_subplots

    layout = {"template": TEMPLATE}
    dates = pd.date_range("2020", periods=5)
    return {
        "date axis with a date range": go.Figure(
            go.Scatter(x=dates, y=np.arange(5)),
            layout={**layout, "xaxis": {"range": ["2020-01-01", "2020-02-01"]}},
        ),
        "anchored to an undefined axis": go.Figure(
            go.Scatter(x=[1], y=[1], yaxis="y3"), layout={**layout, "yaxis3": {"anchor": "x7"}}
        ),
        "free axis": go.Figure(
            go.Scatter(x=[1], y=[1], yaxis="y2"),
            layout={**layout, "yaxis2": {"anchor": "free", "position": 0.3}},
        ),
        "log axis": go.Figure(
            go.Scatter(x=[1, 10], y=[1, 1000]), layout={**layout, "yaxis": {"type": "log"}}
        ),
        "only missing values": go.Figure(go.Scatter(x=[np.nan], y=[np.nan]), layout=layout),
        "infinite values": go.Figure(go.Scatter(x=[np.inf, 1], y=[-np.inf, 2]), layout=layout),
        "half-open range": go.Figure(
            go.Scatter(x=[1, 2], y=[1, 2]), layout={**layout, "yaxis": {"range": [None, 5]}}
        ),
        "mixed types": go.Figure(go.Scatter(x=[1, "a", None], y=[1, 2, 3]), layout=layout),
        "subplots": make_subplots(rows=2, cols=2).add_trace(
            go.Scatter(x=[1], y=["a label"]), row=2, col=2
        ),
        "pie": go.Figure(go.Pie(values=[1, 2])),
        "heatmap without coordinates": go.Figure(go.Heatmap(z=[[1, 2]]), layout=layout),
    }


@pytest.mark.parametrize("name", list(_odd_figures()))
def test_odd_figures_get_margins_without_error(name):
    fig = screen_margins(_odd_figures()[name])
    for side in ("l", "b"):
        assert fig.layout.margin[side] is None or 0 < fig.layout.margin[side] < 400


def _title_and_legend_above(names=("matched", "unmatched"), title="Patients matched per source"):
    return go.Figure(
        [go.Bar(x=[1, 2], y=["a", "b"], orientation="h", name=name) for name in names],
        layout={
            "template": TEMPLATE,
            "title": title,
            "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        },
    )


def test_a_title_and_a_legend_above_the_plot_get_a_band_each_of_the_top_margin():
    fig = title_over_legend(_title_and_legend_above())
    title = fig.layout.title
    assert (title.yref, title.y, title.yanchor, title.pad.t) == (
        "container",
        1,
        "top",
        TITLE_TOP_PX,
    )
    assert (fig.layout.legend.y, fig.layout.legend.yanchor) == (1, "bottom")  # on the plot
    title_bottom = TITLE_TOP_PX + LINE_EM * SCREEN_TITLE_PX
    assert fig.layout.margin.t >= title_bottom + LEGEND_ROW_PX  # the legend's row under it
    many = title_over_legend(_title_and_legend_above([f"module M{k} (12/345)" for k in range(9)]))
    assert many.layout.margin.t >= title_bottom + 2 * LEGEND_ROW_PX  # rows at the least width
    two_lines = title_over_legend(_title_and_legend_above(title="Patients<br>per source"))
    assert two_lines.layout.margin.t >= fig.layout.margin.t + LINE_EM * SCREEN_TITLE_PX - 1


@pytest.mark.parametrize(
    "change",
    [
        {"title": None},
        {"legend": {"orientation": "v"}},
        {"legend": {"orientation": "h", "y": -0.2, "yanchor": "top"}},
        {"showlegend": False},
    ],
)
def test_a_title_without_a_legend_above_the_plot_keeps_its_place(change):
    fig = _title_and_legend_above().update_layout(**change)
    before = fig.to_plotly_json()["layout"]
    assert title_over_legend(fig).to_plotly_json()["layout"] == before


def test_figure_factories_give_a_legend_above_the_plot_its_band():
    import pandas as pd
    from radmap.explorer.figures.cohort import overlap_figure

    matching = pd.DataFrame(
        {"source": ["expression", "clinical"], "n_matched": [90, 88], "n_unmatched": [0, 4]}
    )
    fig = overlap_figure(matching, title="Patients matched per source")
    assert fig.layout.title.pad.t == TITLE_TOP_PX
    assert fig.layout.margin.t >= TITLE_TOP_PX + LINE_EM * SCREEN_TITLE_PX + LEGEND_ROW_PX


def test_legend_rows_are_counted_as_plotly_lays_the_entries_out():
    """plotly.js sets the entries of a legend that needs more than one row in columns as
    wide as its widest entry (or its ``entrywidth`` share); a grouped legend's follow each
    other. Counted as a flowing line, the calibration legend got 3 rows for its 6."""
    from radmap.explorer.figures.margins import text_width
    from radmap.explorer.figures.style import LEGEND_SYMBOL_PX, legend_rows

    names = ["Perfect calibration", "Semantic", "Radiomic", "Semantic + radiomic", "Clinical"]
    font = 11.0
    widths = [text_width(name, font) + LEGEND_SYMBOL_PX for name in names]
    assert legend_rows(names, sum(widths) + 1, font) == 1
    across = max(widths) * 2.5  # two columns of the widest
    assert legend_rows(names, across, font) == 3
    grouped = [{"name": name, "legendgroup": name} for name in names]
    flowing, used = 1, 0.0
    for width in widths:
        if used and used + width > across:
            flowing, used = flowing + 1, 0.0
        used += width
    assert legend_rows(names, across, font, traces=grouped) == flowing < 3
    halves = {"entrywidth": 0.5, "entrywidthmode": "fraction"}
    assert legend_rows(names, across, font, legend=halves, traces=grouped) == 3


def test_print_counts_legend_rows_across_the_plot_not_the_page():
    """plotly.js lays a legend above the plot out across the plot's width: beside a map's
    row labels and colour bar its two entries took two rows, counted as one across the page
    (the legend then met the plot). Heatmaps are not legend entries."""
    from radmap.explorer.figures.style import (
        PRINT_LEGEND_GAP_PX,
        PRINT_LINE,
        PUBLICATION_SIZES,
        legend_names,
        publication_layout,
    )

    rows = [f"wavelet-LLH_glcm_feature_{k:02d}" for k in range(6)]
    fig = go.Figure(
        [
            go.Heatmap(z=np.eye(6), y=rows, name="Spearman ρ", colorbar={"title": "ρ"}),
            go.Scatter(x=[0], y=[rows[0]], name="q < 0.05", mode="markers", showlegend=True),
            go.Scatter(
                x=[1],
                y=[rows[1]],
                name="stable (≥ 80% of 100 bootstraps)",
                mode="markers",
                showlegend=True,
            ),
        ]
    )
    fig.update_layout(template=TEMPLATE, legend={"x": 1.02, "y": 0})
    assert legend_names(fig.to_dict()["data"]) == ["q < 0.05", "stable (≥ 80% of 100 bootstraps)"]
    printed = publication_layout(fig, "single")
    font = printed.layout.font.size
    two_rows = 2 * (font * PRINT_LINE + PRINT_LEGEND_GAP_PX)
    assert printed.layout.width == PUBLICATION_SIZES["single"][0]
    assert printed.layout.margin.t >= two_rows
