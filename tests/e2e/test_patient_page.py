"""The Patient page in Chromium: a click on a patient's point opens that patient's values."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from radmap.explorer.data import BundleData
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.conftest import severe_console_errors
from tests.e2e.test_explorer import (
    click,
    dash_id,
    graph_has_data,
    mouse_click,
    open_page,
    query,
    wait,
    wait_idle,
)

pytestmark = pytest.mark.e2e

# The screen position and patient of the phenotype point farthest from its neighbours
# (a click there hits that point and no other).
LONELY_POINT_JS = """
const root = document.getElementById(arguments[0]);
const gd = root.querySelector('.js-plotly-plot');
root.scrollIntoView({block: 'center', behavior: 'instant'});
const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const points = [];
for (const trace of gd._fullData) {
  if (trace.type !== 'scatter' || !trace.customdata) continue;
  trace.x.forEach((x, i) => points.push(
    [box.left + xa.l2p(x), box.top + ya.l2p(trace.y[i]), trace.customdata[i]]));
}
let best = null, bestGap = -1;
for (const p of points) {
  let gap = Infinity;
  for (const q of points) if (q !== p) gap = Math.min(gap, Math.hypot(p[0] - q[0], p[1] - q[1]));
  if (gap > bestGap) { bestGap = gap; best = p; }
}
return best;
"""

# Where the patient's diamond sits on each row of the profile: row name -> z.
PROFILE_MARKS_JS = """
const root = document.getElementById(arguments[0]);
const gd = root && root.querySelector('.js-plotly-plot');
if (!gd || !gd._fullData) return null;
const marks = {};
for (const trace of gd._fullData) {
  if (trace.type !== 'scatter') continue;
  Array.from(trace.y).forEach((y, i) => { marks[y] = trace.x[i]; });
}
return marks;
"""


def test_clicking_a_phenotype_point_opens_that_patients_page(browser, live_server, toy_bundle):
    open_page(browser, f"{live_server}/map?feature=original_shape_Sphericity&module=M1")
    wait(browser).until(lambda d: graph_has_data(d, "map-phenotype"))
    wait_idle(browser)
    x, y, patient = browser.execute_script(
        LONELY_POINT_JS, dash_id(fig="map-phenotype", role="graph")
    )
    mouse_click(browser, x, y)
    wait(browser).until(lambda d: urlsplit(d.current_url).path == "/patient")
    assert query(browser)["patient"] == [patient]
    wait(browser).until(lambda d: graph_has_data(d, "patient-profile"))
    wait_idle(browser)

    data = BundleData(toy_bundle[0])
    eigengene = data.eigengenes["M1"]
    expected = (eigengene[patient] - eigengene.mean()) / eigengene.std(ddof=1)
    marks = browser.execute_script(PROFILE_MARKS_JS, dash_id(fig="patient-profile", role="graph"))
    assert marks["M1"] == pytest.approx(expected, abs=1e-3)
    status = data.adata.obs.loc[patient, "EGFR"]
    markers = browser.find_element(By.ID, "patient-markers").text
    assert f"EGFR {status}" in markers
    assert severe_console_errors(browser) == []

    # Back returns to the map drill-down the click came from.
    browser.back()
    wait(browser).until(lambda d: urlsplit(d.current_url).path == "/map")


def test_searching_a_patient_replaces_the_page(browser, live_server, toy_bundle):
    open_page(browser, f"{live_server}/patient")
    wait_idle(browser)
    data = BundleData(toy_bundle[0])
    first, other = (str(p) for p in data.adata.obs_names[[0, 5]])
    assert query(browser)["patient"] == [first]
    click(browser, dash_id(key="patient", page="patient", role="state"))
    search = wait(browser).until(
        EC.element_to_be_clickable((By.CSS_SELECTOR, "input.dash-dropdown-search"))
    )
    search.send_keys(other)

    def option(driver):
        for element in driver.find_elements(By.CSS_SELECTOR, "[role=option]"):
            try:
                if element.text.strip() == other:
                    return element
            except StaleElementReferenceException:
                return False
        return False

    wait(browser).until(option).click()
    wait(browser).until(lambda d: query(d).get("patient") == [other])
    wait(browser).until(
        lambda d: (
            other
            in (
                d.execute_script(
                    "const g = document.getElementById(arguments[0]).querySelector('.js-plotly-plot');"
                    "return g && g.layout && g.layout.title ? g.layout.title.text : '';",
                    dash_id(fig="patient-profile", role="graph"),
                )
                or ""
            )
        )
    )
    eigengene = data.eigengenes["M2"]
    expected = (eigengene[other] - eigengene.mean()) / eigengene.std(ddof=1)
    marks = browser.execute_script(PROFILE_MARKS_JS, dash_id(fig="patient-profile", role="graph"))
    assert marks["M2"] == pytest.approx(expected, abs=1e-3)


SIDEWAYS_JS = """
const scrolled = [];
for (const box of document.querySelectorAll('.rm-graph-box')) {
  if (box.offsetParent !== null && box.scrollWidth > box.clientWidth + 1) {
    scrolled.push([box.id, box.clientWidth, box.scrollWidth]);
  }
}
return scrolled;
"""

GRID_COLUMNS_JS = """
const grid = document.getElementById(arguments[0]);
const viewport = grid.querySelector('.ag-center-cols-viewport').getBoundingClientRect();
return arguments[1].map((field) => {
  const header = grid.querySelector(`.ag-header-cell[col-id="${field}"]`);
  return header ? header.getBoundingClientRect().right - viewport.left : null;
}).concat([viewport.width]);
"""


def figures_scrolled_sideways(driver) -> list:
    """Figures shown in a box narrower than they are (the box scrolls sideways)."""
    return driver.execute_script(SIDEWAYS_JS)


def test_survival_and_the_patients_levels_are_in_view_at_1600_px(browser, live_server):
    browser.set_window_size(1600, 1000)
    try:
        open_page(browser, f"{live_server}/patient")
        wait_idle(browser)
        assert graph_has_data(browser, "patient-survival")
        assert figures_scrolled_sideways(browser) == []
        *rights, width = browser.execute_script(
            GRID_COLUMNS_JS, dash_id(role="table", table="patient-categories"), ["value", "share"]
        )
        assert all(right is not None and right <= width + 1 for right in rights), (rights, width)
    finally:
        browser.set_window_size(1440, 1000)
