"""Every category a figure shows has its own legible tick label, in Chromium.

plotly drops tick labels on a category axis when the rows are closer than the text is tall
(every other row of the map, none of a long family view) and lets long labels run into each
other; a researcher then cannot tell which row is which. Here every visible figure of every
page is read back from the drawn plot: each category inside the axis range must have a tick
label, and no two labels on an axis may overlap.
"""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.test_explorer import open_page, wait

pytestmark = pytest.mark.e2e

AXIS_LABELS_JS = """
const report = [];
for (const gd of document.querySelectorAll('.js-plotly-plot')) {
  if (!gd._fullLayout || gd.offsetParent === null) continue;
  const owner = gd.closest('[id]');
  const name = owner ? owner.id : '?';
  const layout = gd._fullLayout;
  for (const key of Object.keys(layout)) {
    if (!/^[xy]axis\\d*$/.test(key)) continue;
    const ax = layout[key];
    if (!ax || ax.type !== 'category' || !ax.visible) continue;
    if (!ax._categories || ax._categories.length < 2) continue;
    const low = Math.min(...ax.range), high = Math.max(...ax.range);
    const shown = ax._categories.filter((_, i) => i >= low && i <= high);
    const texts = Array.from(gd.querySelectorAll('g.' + ax._id + 'tick text'))
      .filter((t) => t.textContent.trim() !== '');
    const boxes = texts.map((t) => t.getBoundingClientRect());
    let overlaps = 0;
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        const dx = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const dy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (dx > 1 && dy > 1) overlaps++;
      }
    }
    const tiny = boxes.filter((b) => b.height < 8).length;
    report.push({figure: name, axis: key, categories: shown.length, labels: texts.length,
                 overlaps: overlaps, tiny: tiny, names: shown.join('\u0001'),
                 title: (ax.title && ax.title.text) || ''});
  }
}
return report;
"""

VIEWS = (
    "map",
    "map?rows=features",
    "map?rows=families",
    "gene",
    "module",
    "cohort",
)


@pytest.mark.parametrize("view", VIEWS)
def test_every_shown_category_has_its_own_legible_label(browser, wide_server, view):
    open_page(browser, f"{wide_server}/{view}")
    axes = browser.execute_script(AXIS_LABELS_JS)
    assert axes, f"no category axis with labels drawn on /{view}"
    # Axes sharing their categories (a heatmap and its side strip) need labels on one of them;
    # one column per patient is named on hover only, and its axis title says so.
    labelled = {
        (axis["figure"], axis["names"])
        for axis in axes
        if (axis["labels"] == axis["categories"] and not axis["overlaps"] and not axis["tiny"])
        or axis["title"].startswith("patients")
    }
    problems = [
        {key: value for key, value in axis.items() if key not in ("names", "title")}
        for axis in axes
        if (axis["figure"], axis["names"]) not in labelled
        or (axis["labels"] and (axis["overlaps"] or axis["tiny"]))
    ]
    assert not problems, f"/{view}: {problems}"


MARGINS_JS = """
const report = [];
for (const gd of document.querySelectorAll('.js-plotly-plot')) {
  if (!gd._fullLayout || gd.offsetParent === null || !gd.data || !gd.data.length) continue;
  const owner = gd.closest('[id]');
  const given = (gd.layout && gd.layout.margin) || {};
  const size = gd._fullLayout._size;
  const axes = {l: 0, b: 0, t: 0};
  for (const [id, push] of Object.entries(gd._fullLayout._pushmargin || {})) {
    if (!id.endsWith('automargin')) continue;
    for (const side of Object.keys(axes)) {
      const edge = side === 'l' || side === 'b' ? 0 : 1;
      if (push[side] && Math.abs(push[side].val - edge) < 1e-6) {
        axes[side] = Math.max(axes[side], push[side].size);
      }
    }
  }
  report.push({figure: owner ? owner.id : '?', given: given, drawn: size, axes: axes});
}
return report;
"""


@pytest.mark.parametrize("view", (*VIEWS, "volcano"))
def test_figures_come_with_the_margins_their_axes_need(browser, wide_server, view):
    """plotly draws a figure twice when its axis labels need more room than its margins;
    the server measures the labels so that every figure is drawn once, without waste."""
    open_page(browser, f"{wide_server}/{view}")
    figures = browser.execute_script(MARGINS_JS)
    assert figures, f"no figure drawn on /{view}"
    problems = []
    for figure in figures:
        for side in ("l", "b"):
            given, drawn, need = (
                figure["given"].get(side),
                figure["drawn"][side],
                figure["axes"][side],
            )
            if not need:
                continue
            if given is None or drawn > given:
                problems.append(f"{figure['figure']} {side}: sent {given}, drawn {drawn}")
            elif given - need > 32:
                problems.append(f"{figure['figure']} {side}: sent {given}, axis needs {need:.0f}")
    assert not problems, f"/{view}: {problems}"


@pytest.mark.parametrize("view", ("map", "map?rows=families", "gene", "cohort"))
def test_figures_fit_their_cards_at_1600_px(browser, wide_server, view):
    """A figure scrolls sideways in its card only when it needs more width than the card
    has; colour bars and legends beside a plot are measured from their text for that."""
    from tests.e2e.test_patient_page import figures_scrolled_sideways

    browser.set_window_size(1600, 1000)
    try:
        open_page(browser, f"{wide_server}/{view}")
        assert figures_scrolled_sideways(browser) == [], f"/{view}"
    finally:
        browser.set_window_size(1440, 1000)


TITLE_AND_LEGEND_JS = """
const report = [];
const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
  Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
for (const gd of document.querySelectorAll('.js-plotly-plot')) {
  if (!gd._fullLayout || gd.offsetParent === null) continue;
  const title = gd.querySelector('.infolayer text.gtitle');
  const entries = gd.querySelectorAll('.infolayer .legend .traces');
  if (!title || !title.textContent.trim() || !entries.length) continue;
  const box = title.getBoundingClientRect();
  const owner = gd.closest('[id]');
  report.push({figure: owner ? owner.id : '?', title: title.textContent,
               covered: Array.from(entries).filter((e) => overlap(e.getBoundingClientRect(), box))
                 .map((e) => e.textContent)});
}
return report;
"""


@pytest.mark.parametrize("width", (1600, 500))
def test_no_legend_is_drawn_over_a_figure_title(browser, wide_server, width):
    """plotly centres a title in the top margin and sets a legend above the plot on the
    plot's edge: in the template's margin the Cohort page's legend covered its title."""
    browser.set_window_size(width, 1000)
    titled = []
    try:
        for view in ("cohort", "gene", "module", "volcano", "patient"):
            open_page(browser, f"{wide_server}/{view}")
            figures = browser.execute_script(TITLE_AND_LEGEND_JS)
            titled += [figure["figure"] for figure in figures]
            covered = [figure for figure in figures if figure["covered"]]
            assert not covered, f"/{view} at {width} px: {covered}"
    finally:
        browser.set_window_size(1440, 1000)
    assert any("cohort-overlap" in name for name in titled), titled


TITLE_UNDER_TOOLBAR_JS = """
const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
  Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
const noHover = window.matchMedia('(hover: none)').matches;
const report = [];
for (const gd of document.querySelectorAll('.js-plotly-plot')) {
  const bar = gd.querySelector('.modebar');
  const title = gd.querySelector('.infolayer text.gtitle');
  if (gd.offsetParent === null || !bar || !title || !title.textContent.trim()) continue;
  report.push({figure: (gd.closest('[id]') || {}).id, title: title.textContent,
               covered: overlap(bar.getBoundingClientRect(), title.getBoundingClientRect())});
}
return {noHover: noHover, report: report};
"""


def test_no_title_runs_under_the_toolbar_on_a_device_without_hover(browser, wide_server):
    """Without hover (a phone; headless Chromium too) plotly shows its toolbar at all
    times: at 500 px the titles of the volcano, the survival curves, the cohort's figures
    ran under its buttons."""
    browser.set_window_size(500, 1000)
    titled = []
    try:
        for view in ("volcano", "gene", "cohort", "patient"):
            open_page(browser, f"{wide_server}/{view}")
            found = browser.execute_script(TITLE_UNDER_TOOLBAR_JS)
            assert found["noHover"]  # the condition under which plotly always shows it
            titled += [figure["figure"] for figure in found["report"]]
            covered = [figure for figure in found["report"] if figure["covered"]]
            assert not covered, f"/{view}: {covered}"
    finally:
        browser.set_window_size(1440, 1000)
    assert len(titled) >= 6, titled


LONG_TITLE_JS = """
const done = arguments[arguments.length - 1];
const shown = document.querySelector('.js-plotly-plot');
const div = document.createElement('div');
div.style.width = '420px';
div.style.height = '380px';
shown.closest('.card-body, .card, div').prepend(div);
const title = 'WDR47 x Nodule Associated Findings: attachment to vessel (q = 1.24e-13)';
const layout = {template: shown.layout.template, title: {text: title}, height: 380,
                xaxis: {title: {text: 'Nodule Associated Findings: attachment to vessel'}}};
Plotly.react(div, [{type: 'box', x: ['absent', 'present'], y: [1, 2]}], layout).then(() => {
  const text = div.querySelector('.infolayer text.gtitle');
  const box = div.getBoundingClientRect(), drawn = text.getBoundingClientRect();
  const plotTop = box.top + div._fullLayout._size.t;
  const result = {lines: text.querySelectorAll('tspan.line').length || 1,
                  past: drawn.right > box.right + 1 || drawn.left < box.left - 1,
                  overPlot: drawn.bottom > plotTop + 1, text: text.textContent};
  Plotly.purge(div);
  div.remove();
  done(result);
});
"""


@pytest.mark.parametrize("width", [500, 1600])
def test_a_title_wider_than_its_figure_is_broken_into_lines_that_fit(browser, wide_server, width):
    """At 500 px the gene page's phenotype title on the demo ("WDR47 x Nodule Associated
    Findings: attachment to vessel (q = 1.24e-13)") ran past its figure's right edge, cut by
    the card. A figure as narrow as on a phone draws it in lines, under the toolbar, above the
    plot; the same figure 420 px wide in a wide window too."""
    browser.set_window_size(width, 1000)
    try:
        open_page(browser, f"{wide_server}/gene")
        drawn = browser.execute_async_script(LONG_TITLE_JS)
    finally:
        browser.set_window_size(1440, 1000)
    assert drawn["lines"] >= 2, drawn
    assert not drawn["past"], drawn
    assert not drawn["overPlot"], drawn


GRID_P_TEXTS_JS = """
const done = arguments[arguments.length - 1];
const values = arguments[0];
window.dash_ag_grid.getApiAsync(arguments[1]).then((api) => {
  const formatter = api.getColumnDef('p').valueFormatter;
  done(values.map((value) => formatter({value: value, data: {}, colDef: {}})));
}, (error) => done(String(error)));
"""


def test_tables_print_p_as_the_rest_of_the_explorer_does(browser, wide_server):
    """The grids format p in the browser (AG Grid's valueFormatter), hovers and statistics
    on the server (format_p): the same numbers must read the same, an underflowed 0 too."""
    from radmap.explorer.figures.style import format_p
    from radmap.explorer.pages.common import table_id

    open_page(browser, f"{wide_server}/gene")
    values = [0.0, 1e-310, 1e-300, 0.000213456, 0.000999, 0.001, 0.0523456, 0.5, 1.0]
    grid = json.dumps(table_id("gene-associations"), separators=(",", ":"))
    texts = browser.execute_async_script(GRID_P_TEXTS_JS, values, grid)
    assert texts == [format_p(value) for value in values]


CUT_CELLS_JS = """
const cut = [];
for (const grid of document.querySelectorAll('.ag-root-wrapper')) {
  const owner = grid.closest('[id]');
  for (const cell of grid.querySelectorAll('.ag-center-cols-container .ag-cell')) {
    const text = cell.querySelector('.ag-cell-value') || cell;
    if (cell.getBoundingClientRect().width >= arguments[0] - 1) continue;  // capped: hover
    if (text.scrollWidth > text.clientWidth + 1) {
      cut.push([owner ? owner.id : '?', cell.getAttribute('col-id'), text.textContent]);
    }
  }
}
return cut;
"""


def test_table_columns_are_as_wide_as_their_text(browser, wide_server):
    """Columns are sized on the server from their texts; a gene ID or a pathway name must
    not end in "…" unless its column is at the widest a column gets (the full text is then
    on hover). Measured at 7.5 px a character, "GENE06989" and "HALLMARK_TOY_M1" were cut."""
    from radmap.explorer.pages.common import column_width

    widest = column_width("", 1e6)
    cut = []
    for view in ("module", "gene", "volcano", "cohort"):
        open_page(browser, f"{wide_server}/{view}")
        wait(browser).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".ag-cell"))
        cut += browser.execute_script(CUT_CELLS_JS, widest)
    assert not cut, cut[:10]
