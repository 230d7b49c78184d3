"""Feedback in Chromium: a map click brings its drill-down into view; help is one click away."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.conftest import script_in_new_pages
from tests.e2e.test_explorer import (
    HEATMAP_CELL_JS,
    click,
    dash_id,
    mouse_click,
    open_page,
    wait,
    wait_idle,
)

pytestmark = pytest.mark.e2e

IN_VIEW_JS = """
const element = document.getElementById(arguments[0]);
if (!element || element.offsetParent === null) return false;
const box = element.getBoundingClientRect();
return box.top >= -1 && box.top < window.innerHeight * 0.5;
"""


def test_clicking_a_map_cell_scrolls_its_drill_down_into_view(browser, wide_server):
    browser.set_window_size(1600, 1000)
    open_page(browser, f"{wide_server}/map")
    assert not browser.execute_script(IN_VIEW_JS, "map-drill")
    point = browser.execute_script(
        HEATMAP_CELL_JS, dash_id(fig="map-heatmap", role="graph"), "original_shape_Sphericity", "M1"
    )
    assert point is not None
    mouse_click(browser, *point)
    wait(browser).until(EC.visibility_of_element_located((By.ID, "map-drill")))
    wait(browser).until(lambda d: d.execute_script(IN_VIEW_JS, "map-drill"))


COUNT_DRAWS_JS = """
window.__rmDraws = [];
const graph = (gd) => (gd && gd.parentElement && gd.parentElement.id) || '';
for (const name of ['newPlot', 'react']) {
  const draw = Plotly[name];
  Plotly[name] = function (gd) { window.__rmDraws.push([name, graph(gd)]); return draw.apply(this, arguments); };
}
const resize = Plotly.Plots.resize;
Plotly.Plots.resize = function (gd) { window.__rmDraws.push(['resize', graph(gd)]); return resize.apply(this, arguments); };
"""

PHENOTYPE_SIZE_JS = """
const root = document.getElementById(JSON.stringify({fig: 'map-phenotype', role: 'graph'}));
const gd = root.querySelector('.js-plotly-plot');
return [gd._fullLayout.width, gd._fullLayout.height, root.getBoundingClientRect().width];
"""


def test_a_map_click_draws_its_phenotype_once_at_its_size(browser, wide_server):
    browser.set_window_size(1600, 1000)
    open_page(browser, f"{wide_server}/map")
    browser.execute_script(COUNT_DRAWS_JS)
    point = browser.execute_script(
        HEATMAP_CELL_JS, dash_id(fig="map-heatmap", role="graph"), "original_shape_Sphericity", "M1"
    )
    mouse_click(browser, *point)
    wait(browser).until(EC.visibility_of_element_located((By.ID, "map-drill")))
    wait_idle(browser)
    browser.execute_async_script("setTimeout(arguments[arguments.length - 1], 1500)")
    phenotype = '{"fig":"map-phenotype","role":"graph"}'
    draws = [
        name
        for name, graph in browser.execute_script("return window.__rmDraws")
        if graph == phenotype
    ]
    # drawn hidden (display: none) it came at plotly's default 700 px, then twice more
    assert draws == ["react"], draws
    width, height, box = browser.execute_script(PHENOTYPE_SIZE_JS)
    assert abs(width - box) <= 1 and height == 440


def test_help_panel_opens_from_the_navigation_bar(browser, wide_server):
    open_page(browser, f"{wide_server}/volcano")
    click(browser, "help-open")
    panel = wait(browser).until(EC.visibility_of_element_located((By.ID, "help-panel")))
    wait_idle(browser)
    assert "Benjamini" in panel.text and "Hedges' g" in panel.text
    assert browser.find_elements(By.CSS_SELECTOR, ".rm-info")


COUNT_PLOTS_JS = """
window.__rmPlots = [];
document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
  const graph = (gd.parentElement && gd.parentElement.id) || '';
  gd.on('plotly_afterplot', () => {
    window.__rmPlots.push([graph, gd._fullLayout.width, gd._fullLayout.height]);
  });
});
"""


def plots_of(driver, name: str) -> list[list[float]]:
    """(width, height) of each time the graph ``name`` was drawn since ``COUNT_PLOTS_JS``."""
    graph = dash_id(fig=name, role="graph")
    return [
        entry[1:] for entry in driver.execute_script("return window.__rmPlots") if entry[0] == graph
    ]


def graph_box_size(driver, name: str) -> list[float]:
    return driver.execute_script(
        "const b = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return [b.width, b.height];",
        dash_id(fig=name, role="graph"),
    )


def test_a_map_taking_another_height_is_drawn_once(browser, wide_server):
    browser.set_window_size(1600, 1000)
    open_page(browser, f"{wide_server}/map")
    _, first_height = graph_box_size(browser, "map-heatmap")
    browser.execute_script(COUNT_PLOTS_JS)
    rows = dash_id(key="rows", page="map", role="state")
    browser.find_element(By.CSS_SELECTOR, f"[id='{rows}'] input[value=features]").click()
    wait(browser).until(lambda d: plots_of(d, "map-heatmap"))
    wait_idle(browser)
    browser.execute_async_script("setTimeout(arguments[arguments.length - 1], 1500)")
    plots = plots_of(browser, "map-heatmap")
    # its card taking the new height made dcc.Graph draw it a second time, at the same size
    assert len(plots) == 1, plots
    assert plots[0] == pytest.approx(graph_box_size(browser, "map-heatmap"), abs=1)
    assert plots[0][1] > first_height + 100


NATIVE_JS = """
// U+180E stopped being white space in Unicode 6.3: the browsers' own functions keep it,
// core-js 2's replacements (in Dash's @babel/polyfill) strip it
const mongolian = '\\u180e';
return {
  trim: mongolian.trim().length, trimStart: mongolian.trimStart().length,
  trimEnd: mongolian.trimEnd().length, parseFloat: String(parseFloat(mongolian + '1')),
  numberParseInt: String(Number.parseInt(mongolian + '1')), text: ' a b '.trim(),
  polyfill: typeof window._babelPolyfill, setImmediate: typeof window.setImmediate,
  regenerator: typeof window.regeneratorRuntime,
};
"""


def test_pages_run_on_the_browsers_own_functions_without_dashs_polyfill(browser, live_server):
    """plotly calls trim for every style it sets; core-js 2's version (Dash's polyfill)
    costs ~2.7 us a call against ~0.02 us, a fifth of a phenotype plot's redraw, and the
    polyfill's start-up ~45 ms of every page load. The page loads without it, and its lazily
    loaded parts (the gene page's dropdown, graphs and grids) still load."""
    open_page(browser, f"{live_server}/gene")
    wait_idle(browser)
    assert browser.execute_script(NATIVE_JS) == {
        "trim": 1,
        "trimStart": 1,
        "trimEnd": 1,
        "parseFloat": "NaN",
        "numberParseInt": "NaN",
        "text": "a b",
        "polyfill": "undefined",
        "setImmediate": "undefined",
        "regenerator": "object",
    }
    lazy = browser.execute_script(
        "return [document.querySelectorAll('.js-plotly-plot .main-svg').length,"
        " document.querySelectorAll('.ag-root').length,"
        " document.querySelectorAll('.dash-dropdown, .Select').length]"
    )
    assert all(count > 0 for count in lazy), lazy


FRAMES_AND_PLOTS_JS = """
window.__rmFrame = 0;
(function count() { window.__rmFrame += 1; requestAnimationFrame(count); })();
window.__rmDrawnAt = {};
document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
  const graph = (gd.parentElement && gd.parentElement.id) || '';
  gd.on('plotly_afterplot', () => { window.__rmDrawnAt[graph] = window.__rmFrame; });
});
"""

GENE_GRAPHS = ("gene-bar", "gene-phenotype", "gene-km")


def test_a_gene_choice_paints_its_association_bar_before_drawing_the_rest(browser, wide_server):
    """One response brings the gene page three figures; dcc.Graph drew them all in one task,
    so nothing showed until the last was drawn. The first now shows a frame earlier."""
    browser.set_window_size(1600, 1000)
    open_page(browser, f"{wide_server}/gene")
    for name in GENE_GRAPHS:
        wait(browser).until(lambda d, name=name: d.execute_script(DRAWN_JS, name))
    wait_idle(browser)
    shown = browser.execute_script(TITLE_JS, "gene-bar")
    browser.execute_script(FRAMES_AND_PLOTS_JS)
    browser.execute_script(
        "window.dash_clientside.set_props(arguments[0], {value: arguments[1]});",
        {"role": "state", "page": "gene", "key": "gene"},
        "KRT5",
    )
    graphs = [dash_id(fig=name, role="graph") for name in GENE_GRAPHS]
    wait(browser).until(
        lambda d: all(graph in d.execute_script("return window.__rmDrawnAt") for graph in graphs)
    )
    wait_idle(browser)
    frames = browser.execute_script("return window.__rmDrawnAt")
    bar, phenotype, survival = (frames[graph] for graph in graphs)
    assert bar < phenotype and bar < survival, frames
    for name in GENE_GRAPHS:
        assert "KRT5" in browser.execute_script(TITLE_JS, name), name
    assert "KRT5" not in shown


DRAWN_JS = """
const root = document.getElementById(JSON.stringify({fig: arguments[0], role: 'graph'}));
const gd = root && root.querySelector('.js-plotly-plot');
return Boolean(gd && gd._fullLayout && gd.querySelector('.main-svg'));
"""

TITLE_JS = """
const root = document.getElementById(JSON.stringify({fig: arguments[0], role: 'graph'}));
const gd = root.querySelector('.js-plotly-plot');
const title = gd.layout.title;
return (title && (title.text || title)) || '';
"""

DRAWS_IN_TURNS_JS = """
const done = arguments[arguments.length - 1];
const figure = (y) => ({data: [{type: 'bar', x: ['a', 'b'], y: y}], layout: {width: 300, height: 200}});
// a panel kept hidden at its width (HIDDEN_AT_WIDTH), and a graph under a loading spinner
const panel = document.createElement('div');
Object.assign(panel.style, {height: '0', overflow: 'hidden', visibility: 'hidden'});
panel.style.setProperty('--rm-hidden-panel', '1');
const hidden = document.createElement('div');
panel.append(hidden);
const loading = document.createElement('div');
loading.style.visibility = 'hidden';
const second = document.createElement('div'), gone = document.createElement('div');
document.body.append(panel, loading, second, gone);
const drawn = [Plotly.react(hidden, figure([0, 1])), Plotly.react(loading, figure([1, 2])),
               Plotly.react(second, figure([3, 4])), Plotly.react(second, figure([5, 6])),
               Plotly.react(gone, figure([7, 8]))];
gone.remove();
const atOnce = [Boolean(hidden._fullLayout), Boolean(loading._fullLayout),
                Boolean(second._fullLayout)];
Promise.all(drawn).then(() => {
  const result = {atOnce: atOnce, second: Array.from(second.data[0].y),
                  hiddenDrawn: Boolean(hidden.querySelector('.main-svg')),
                  secondDrawn: Boolean(second.querySelector('.main-svg')),
                  goneDrawn: Boolean(gone._fullLayout)};
  panel.remove(); loading.remove(); second.remove();
  done(result);
});
"""


def test_figures_given_in_one_task_are_drawn_one_first_then_the_rest_in_order(browser, wide_server):
    open_page(browser, f"{wide_server}/gene")
    result = browser.execute_async_script(DRAWS_IN_TURNS_JS)
    # the first shown graph drawn at once (one in a hidden panel does not go first; one
    # under its loading spinner does), the others after the browser painted, the last
    # figure given to a graph the one it shows; a graph that left the page while waiting
    # is not drawn
    assert result == {
        "atOnce": [False, True, False],
        "second": [5, 6],
        "hiddenDrawn": True,
        "secondDrawn": True,
        "goneDrawn": False,
    }


BLANK_LAST_JS = """
const done = arguments[arguments.length - 1];
const figure = (y) => ({data: [{type: 'bar', x: ['a', 'b'], y: y}], layout: {width: 300, height: 200}});
const graphs = [0, 1, 2].map(() => document.createElement('div'));
document.body.append(...graphs);
const order = [];
const drawn = [Plotly.react(graphs[0], figure([1, 2])),
               Plotly.react(graphs[1], {data: [], layout: {width: 300, height: 200}}),
               Plotly.react(graphs[2], figure([3, 4]))];
drawn[1].then(() => order.push('blank'));
drawn[2].then(() => order.push('data'));
Promise.all(drawn).then(() => {
  const all = graphs.every((gd) => gd.querySelector('.main-svg'));
  graphs.forEach((gd) => gd.remove());
  done({order: order, all: all});
});
"""


def test_a_figure_without_traces_waits_for_the_figures_with_data(browser, wide_server):
    """A graph's default empty figure (the Cohort page's graphs filled after load) is drawn
    after the figures given with it that draw data, not in the same turn before them."""
    open_page(browser, f"{wide_server}/gene")
    result = browser.execute_async_script(BLANK_LAST_JS)
    assert result == {"order": ["data", "blank"], "all": True}


DRAWN_WHEN_GIVEN_JS = """
// For each graph: was its figure drawn before the next frame after the call that gave it
// (at once), or held for later?
window.__rmAtOnce = {};
const react = Plotly.react;
Plotly.react = function (gd) {
  const graph = (gd.parentElement && gd.parentElement.id) || '';
  let framed = false;
  requestAnimationFrame(() => { framed = true; });
  const drawn = react.apply(this, arguments);
  Promise.resolve(drawn).then(() => {
    (window.__rmAtOnce[graph] = window.__rmAtOnce[graph] || []).push(!framed);
  });
  return drawn;
};
"""


def test_an_fdr_change_draws_the_map_at_once_and_nothing_in_the_hidden_panels(browser, wide_server):
    """An FDR change with no cell chosen and no comparison: the map is drawn at once, and the
    hidden drill-down and comparison get no new figure (their callbacks send nothing; they
    sent three empty figures before, drawn beside the map's, and their draws could take the
    first frame from it)."""
    browser.set_window_size(1600, 1000)
    open_page(browser, f"{wide_server}/map")
    browser.execute_script(DRAWN_WHEN_GIVEN_JS)
    browser.execute_script(
        "window.dash_clientside.set_props(arguments[0], {value: arguments[1]});",
        {"role": "state", "page": "map", "key": "q"},
        0.25,
    )
    heatmap = dash_id(fig="map-heatmap", role="graph")
    wait(browser).until(lambda d: heatmap in d.execute_script("return window.__rmAtOnce"))
    wait_idle(browser)
    at_once = browser.execute_script("return window.__rmAtOnce")
    assert at_once == {heatmap: [True]}, at_once


CALLBACKS_JS = """
window.__rmCalls = [];
const radmap = window.dash_clientside.radmap;
Object.keys(radmap).forEach((name) => {
  const run = radmap[name];
  if (typeof run !== 'function' || run.rmCounted) return;
  radmap[name] = function () { window.__rmCalls.push('browser ' + name); return run.apply(this, arguments); };
  radmap[name].rmCounted = true;
});
if (!window.__rmFetch) {
  window.__rmFetch = window.fetch;
  window.fetch = function (url, options) {
    if (String(url).includes('_dash-update-component')) {
      window.__rmCalls.push('server ' + JSON.parse(options.body).output);
    }
    return window.__rmFetch.apply(this, arguments);
  };
}
"""


def test_a_subset_change_calls_two_callbacks_on_the_server_and_two_in_the_browser(
    browser, wide_server
):
    """Each callback costs the page ~15 updates of Dash's store (every mounted component's
    selector runs on each): a subset change called nine (the hidden drill-down and
    comparison, a banner of its own, the query string and the header each apart, the map
    card's height). Now the controls' write (query string, header, banner) and the map."""
    browser.set_window_size(1600, 1000)
    open_page(browser, f"{wide_server}/map")
    wait_idle(browser)
    browser.execute_script(CALLBACKS_JS)
    browser.execute_script(
        "window.dash_clientside.set_props(arguments[0], {data: arguments[1]});",
        {"role": "state-store", "page": "map", "key": "subset"},
        "stage:II",
    )
    wait(browser).until(lambda d: "subset=stage" in d.current_url)
    wait_idle(browser)
    calls = browser.execute_script("return window.__rmCalls")
    server = sorted(call for call in calls if call.startswith("server "))
    assert len(server) == 2, calls
    assert "search-update.data" in server[0] and "map-heatmap" in server[1], calls
    assert sorted(call for call in calls if call.startswith("browser ")) == [
        "browser applyUrlState",
        "browser urlGate",
    ], calls
    named = browser.execute_script(
        "return document.getElementById(arguments[0]).innerText;",
        dash_id(page="map", role="subset-banner"),
    )
    assert "stage" in named and "n = " in named, named


FIRST_SEEN_JS = """
window.__rmFirstSeen = {};
new MutationObserver(function () {
  const seen = window.__rmFirstSeen;
  const graph = document.getElementById(JSON.stringify({fig: 'volcano', role: 'graph'}));
  if (!('figure' in seen) && graph && graph.querySelector('.main-svg')) {
    seen.figure = performance.now();
  }
  if (!('table' in seen) && document.querySelector('#page-content .ag-root-wrapper')) {
    seen.table = performance.now();
  }
}).observe(document, {childList: true, subtree: true});
"""

TOP_ROWS_JS = """
const grid = document.getElementById(JSON.stringify({role: 'table', table: 'volcano-top'}));
return grid ? grid.querySelectorAll('.ag-center-cols-container .ag-row').length : 0;
"""


def load_until_rows(browser, url: str, source: str, rows_js: str, result_js: str):
    """Open ``url`` at 1600 px with the script ``source`` run first in the page, wait until
    the table that ``rows_js`` counts has rows, and return what ``result_js`` returns."""
    browser.set_window_size(1600, 1000)
    with script_in_new_pages(browser, source):
        open_page(browser, url)
        wait(browser).until(lambda d: d.execute_script(rows_js) > 0)
        return browser.execute_script(result_js)


def test_a_page_draws_its_figure_before_it_builds_its_tables(browser, wide_server):
    """The grids' code came before plotly.js, so the Volcano page built its three tables
    (~100 ms each) before drawing the volcano; its figure now comes first."""
    seen = load_until_rows(
        browser, f"{wide_server}/volcano", FIRST_SEEN_JS, TOP_ROWS_JS, "return window.__rmFirstSeen"
    )
    assert seen["figure"] < seen["table"], seen


SLOW_FIGURES_JS = """
window.__rmLooks = 0;
window.__rmDraws = 0;
const clientRects = Element.prototype.getClientRects;
Element.prototype.getClientRects = function () {
  if (this.classList && this.classList.contains('rm-graph')) {
    window.__rmLooks += 1;
  }
  return clientRects.apply(this, arguments);
};
let plotly;
Object.defineProperty(window, 'Plotly', {configurable: true, get() { return plotly; }, set(value) {
  const react = value.react;
  value.react = function () {
    const args = arguments;
    window.__rmDraws += 1;
    return new Promise((resolve) => setTimeout(resolve, 2000)).then(() => react.apply(value, args));
  };
  plotly = value;
}});
"""

GENE_TABLE_ROWS_JS = """
const grid = document.getElementById(JSON.stringify({role: 'table', table: 'gene-associations'}));
return grid ? grid.querySelectorAll('.ag-center-cols-container .ag-row').length : 0;
"""


def test_tables_waiting_for_a_slow_figure_look_at_the_page_only_when_a_figure_is_drawn(
    browser, wide_server
):
    """Each table used to check every 20 ms whether the page's figures were drawn, making the
    browser lay out the loading page again and again (~45 ms of the Gene page's load). Here
    every figure takes 2 s to draw: a table may look at the graphs once at the start and
    once per figure drawn."""
    looks, draws, grids, graphs = load_until_rows(
        browser,
        f"{wide_server}/gene",
        SLOW_FIGURES_JS,
        GENE_TABLE_ROWS_JS,
        "return [window.__rmLooks, window.__rmDraws,"
        " document.querySelectorAll('.ag-root').length,"
        " document.querySelectorAll('.rm-graph').length]",
    )
    assert draws >= 3 and grids >= 2, (draws, grids)
    assert looks <= (draws + 1) * grids * graphs, (looks, draws, grids, graphs)


GL_CANVAS_JS = """
const done = arguments[arguments.length - 1];
const div = document.createElement('div');
div.style.width = '600px';
div.style.height = '400px';
document.body.append(div);
Plotly.newPlot(div, [{type: 'scattergl', x: [1, 2, 3], y: [3, 1, 2], mode: 'markers'}]).then(() => {
  const canvas = div.querySelector('canvas.gl-canvas-context');
  const result = [canvas.width, canvas.getBoundingClientRect().width, window.devicePixelRatio];
  Plotly.purge(div);
  div.remove();
  done(result);
});
"""


def test_webgl_figures_are_drawn_at_the_screens_resolution(browser, wide_server):
    """plotly drew WebGL traces (the volcano's, for many genes) at twice the screen's
    resolution (for image export, done on the server here): four times the pixels to set
    up and draw."""
    open_page(browser, f"{wide_server}/volcano")
    pixels, css_width, ratio = browser.execute_async_script(GL_CANVAS_JS)
    assert ratio == 1
    assert abs(pixels - css_width) <= 1, (pixels, css_width)


CELL_FROM_CLICK_JS = """
const gd = document.getElementById(arguments[0]).querySelector('.js-plotly-plot');
const figure = {data: gd.data};
const clientside = window.dash_clientside;
const read = (click, figure) => {
  try {
    return clientside.radmap.cellFromClick(click, figure);
  } catch (error) {
    return error === clientside.PreventUpdate ? 'prevented' : String(error);
  }
};
for (let curve = 0; curve < gd.data.length; curve++) {
  const trace = gd.data[curve];
  if (trace.type !== 'heatmap' || !Array.isArray(trace.customdata) || trace.x.length < 2) continue;
  const row = trace.customdata.findIndex((cells) => cells.some((c) => c && c[0] === arguments[1]));
  const column = trace.customdata[row].findIndex((c) => c && c[1] === arguments[2]);
  const click = {points: [{curveNumber: curve, x: trace.x[column], y: trace.y[row]}]};
  // a click on the cell's marker (significance dot, stability box): a trace of its own
  const marker = gd.data.findIndex((t) => t.type === 'scatter' && !t.customdata);
  const onMarker = {points: [{curveNumber: marker, x: trace.x[column], y: trace.y[row]}]};
  return {
    byLabels: read(click, figure),
    onMarker: marker >= 0 ? read(onMarker, figure) : 'no marker trace',
    withoutFigure: read(click, null),
    byCustomdata: read({points: [{customdata: ['pack_years', 'M3', 0.1]}]}, null),
    noCell: read({points: [{customdata: null}]}, figure),
    noClick: read(null, figure),
  };
}
return null;
"""


def test_a_map_click_finds_its_cell_in_the_browser(browser, wide_server):
    """Dash leaves customdata out of heatmap clicks, and a click on a cell's marker (its
    own trace) has none: the cell is found by its labels in the figure the browser holds
    (the server was sent the whole map to read two labels, and missed marker clicks)."""
    open_page(browser, f"{wide_server}/map")
    heatmap = dash_id(fig="map-heatmap", role="graph")
    found = browser.execute_script(CELL_FROM_CLICK_JS, heatmap, "original_shape_Sphericity", "M1")
    assert found == {
        "byLabels": ["original_shape_Sphericity", "M1"],
        "onMarker": ["original_shape_Sphericity", "M1"],
        "withoutFigure": "prevented",
        "byCustomdata": ["pack_years", "M3"],
        "noCell": "prevented",
        "noClick": "prevented",
    }


TITLE_AND_TOOLBAR_JS = """
const root = document.getElementById(JSON.stringify({fig: 'map-phenotype', role: 'graph'}));
const box = (selector) => {
  const element = root.querySelector(selector);
  if (!element) return null;
  const b = element.getBoundingClientRect();
  return [b.left, b.top, b.right, b.bottom];
};
const bar = root.querySelector('.modebar');
const shown = bar && getComputedStyle(bar).opacity === '1';
return {title: box('.gtitle'), text: (root.querySelector('.gtitle') || {}).textContent,
        toolbar: shown ? box('.modebar') : null};
"""


@pytest.mark.parametrize("width", [1600, 500])
def test_the_phenotype_title_is_not_under_the_toolbar(browser, wide_server, width):
    """With the pointer on the drill-down's phenotype plot, plotly shows its toolbar at the
    top right; the title (with its Spearman summary) must not run under it, at full and at
    single-column width."""
    size = browser.get_window_size()
    browser.set_window_size(width, 1000)
    try:
        boxes = _title_and_toolbar(browser, wide_server)
    finally:  # the tests after this one on the browser expect its usual size
        browser.set_window_size(size["width"], size["height"])
    title, toolbar = boxes["title"], boxes["toolbar"]
    assert "ρ" in boxes["text"] and "Sphericity" in boxes["text"], boxes
    apart = (
        title[2] <= toolbar[0]
        or toolbar[2] <= title[0]
        or title[3] <= toolbar[1]
        or toolbar[3] <= title[1]
    )
    assert apart, boxes


def _title_and_toolbar(browser, base: str) -> dict:
    """The drill-down's phenotype title and plotly's toolbar (boxes), the pointer on the plot."""
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(browser, f"{base}/map")
    point = browser.execute_script(
        HEATMAP_CELL_JS, dash_id(fig="map-heatmap", role="graph"), "original_shape_Sphericity", "M1"
    )
    mouse_click(browser, *point)
    wait(browser).until(EC.visibility_of_element_located((By.ID, "map-drill")))
    wait_idle(browser)
    plot = browser.find_element(
        By.CSS_SELECTOR, '[id=\'{"fig":"map-phenotype","role":"graph"}\'] .nsewdrag'
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot)
    ActionChains(browser).move_to_element(plot).perform()
    wait(browser).until(lambda d: d.execute_script(TITLE_AND_TOOLBAR_JS)["toolbar"])
    return browser.execute_script(TITLE_AND_TOOLBAR_JS)
