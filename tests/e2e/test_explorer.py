"""The explorer in a real headless Chromium: pages, drill-down, search, URL state, exports, pins."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from defusedxml import ElementTree
from PIL import Image
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.conftest import LOGIN, script_in_new_pages, severe_console_errors

pytestmark = pytest.mark.e2e

PAGES = ("map", "network", "volcano", "gene", "module", "cohort", "patient", "hypotheses")
TIMEOUT = 30


def dash_id(**parts) -> str:
    """The DOM id Dash gives a dict id (JSON with sorted keys, no spaces)."""
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


def wait(driver, timeout: float = TIMEOUT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, poll_frequency=0.1)


def wait_idle(driver, *, quiet: float = 0.6, timeout: float = TIMEOUT) -> None:
    """Wait until no Dash component has been loading for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        busy = driver.execute_script(
            "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length"
            " + document.querySelectorAll('._dash-loading').length"
        )
        if busy:
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            return
        time.sleep(0.1)
    raise AssertionError("the page kept loading")


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#page-content h2")))
    wait_idle(driver)


def query(driver) -> dict[str, list[str]]:
    return parse_qs(urlsplit(driver.current_url).query)


def new_download(folder: Path, before: set[str], suffix: str, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [
            path
            for path in folder.iterdir()
            if path.name not in before and path.suffix == suffix and path.stat().st_size > 0
        ]
        if done:
            time.sleep(0.2)
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} file downloaded into {folder}")


def by_id(driver, element_id: str):
    """The element with this DOM id (dict ids contain quotes that CSS selectors trip on)."""
    return driver.execute_script("return document.getElementById(arguments[0]);", element_id)


def visible(driver, element_id: str):
    element = by_id(driver, element_id)
    return (
        element
        if element is not None and element.is_displayed() and element.is_enabled()
        else False
    )


def click(driver, element_id: str) -> None:
    element = wait(driver).until(lambda d: visible(d, element_id))
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element
    )
    element.click()


def graph_has_data(driver, name: str) -> bool:
    return bool(
        driver.execute_script(
            "const g = document.getElementById(arguments[0]);"
            "const gd = g && g.querySelector('.js-plotly-plot');"
            "return gd && gd.data ? gd.data.length : 0;",
            dash_id(fig=name, role="graph"),
        )
    )


PLOTLY_WARNINGS_JS = """
window.__rmPlotlyWarnings = [];
const trace = console.trace;
console.trace = function () {
  const message = Array.from(arguments).map(String).join(' ');
  if (message.startsWith('WARN:')) {
    window.__rmPlotlyWarnings.push(message);
  }
  return trace.apply(this, arguments);
};
"""


def test_every_page_loads_without_console_errors_or_plotly_warnings(browser, live_server):
    """plotly.js logs its warnings with ``console.trace`` (a stack trace each, ~0.4 ms):
    the gene bar chart's numeric colours made it warn once per bar on every draw."""
    severe_console_errors(browser)
    with script_in_new_pages(browser, PLOTLY_WARNINGS_JS):
        for page in PAGES:
            open_page(browser, f"{live_server}/{page}")
            header = browser.find_element(By.CSS_SELECTOR, ".rm-header").text
            assert "toy-radmap" in header and "60 patients" in header and "q < 0.05" in header
            assert not browser.find_elements(By.CSS_SELECTOR, "#global-alert.show")
            if page != "hypotheses":
                assert browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"), page
            wait_idle(browser)
            errors = severe_console_errors(browser)
            assert errors == [], (page, errors)
            warnings = browser.execute_script("return window.__rmPlotlyWarnings")
            assert warnings == [], (page, warnings[:3])


HEATMAP_CELL_JS = """
const root = document.getElementById(arguments[0]);
const gd = root.querySelector('.js-plotly-plot');
root.scrollIntoView({block: 'center', behavior: 'instant'});
const images = Array.from(gd.querySelectorAll('.hm image'));
const widest = images.reduce((a, b) => (a.getBoundingClientRect().width >= b.getBoundingClientRect().width ? a : b));
const box = widest.getBoundingClientRect();
for (const trace of gd._fullData) {
  if (trace.type !== 'heatmap' || !trace.customdata || trace.x.length < 2) continue;
  const rows = trace.customdata.length, columns = trace.customdata[0].length;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < columns; j++) {
      const cell = trace.customdata[i][j];
      if (cell && cell[0] === arguments[1] && cell[1] === arguments[2]) {
        const reversed = gd._fullLayout['yaxis' + trace.yaxis.slice(1)].range[0] > 0;
        const row = reversed ? i : rows - 1 - i;
        return [box.left + (j + 0.5) * box.width / columns, box.top + (row + 0.5) * box.height / rows];
      }
    }
  }
}
return null;
"""


def mouse_click(driver, x: float, y: float) -> None:
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        event = {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
        driver.execute_cdp_cmd("Input.dispatchMouseEvent", event)
        time.sleep(0.05)


def test_clicking_a_heatmap_cell_opens_the_drill_down(browser, live_server):
    open_page(browser, f"{live_server}/map")
    assert not browser.find_element(By.ID, "map-drill").is_displayed()
    point = browser.execute_script(
        HEATMAP_CELL_JS, dash_id(fig="map-heatmap", role="graph"), "original_shape_Sphericity", "M1"
    )
    assert point is not None
    mouse_click(browser, *point)
    wait(browser).until(EC.visibility_of_element_located((By.ID, "map-drill")))
    wait(browser).until(
        EC.text_to_be_present_in_element((By.ID, "map-drill-title"), "Sphericity x M1")
    )
    wait_idle(browser)
    assert "significant" in browser.find_element(By.ID, "map-drill-stats").text
    assert graph_has_data(browser, "map-phenotype")
    assert "CDK1" in browser.find_element(By.ID, "map-drill-hubs").text
    assert query(browser) == {"feature": ["original_shape_Sphericity"], "module": ["M1"]}
    assert severe_console_errors(browser) == []


def test_searching_a_gene_opens_its_view(browser, live_server):
    open_page(browser, f"{live_server}/gene")
    wait_idle(browser)
    assert graph_has_data(browser, "gene-bar")  # opens on the hub gene of the strongest link
    click(browser, dash_id(key="gene", page="gene", role="state"))
    search = wait(browser).until(
        EC.element_to_be_clickable((By.CSS_SELECTOR, "input.dash-dropdown-search"))
    )
    search.send_keys("kra")

    def kras_option(driver):
        for option in driver.find_elements(By.CSS_SELECTOR, "[role=option]"):
            try:
                if option.text.strip() == "KRAS":
                    return option
            except StaleElementReferenceException:
                return False
        return False

    wait(browser).until(kras_option).click()
    wait(browser).until(lambda d: query(d).get("gene") == ["KRAS"])
    wait(browser).until(EC.visibility_of_element_located((By.ID, "gene-body")))
    wait_idle(browser)
    assert graph_has_data(browser, "gene-bar")
    assert "Module" in browser.find_element(By.ID, "gene-info").text
    assert severe_console_errors(browser) == []


VOLCANO_CONTROLS_JS = """
const text = (id) => (document.getElementById(id) || {innerText: ''}).innerText.trim();
const radio = document.getElementById(arguments[1]);
const checked = radio && radio.querySelector('input:checked');
return {feature: text(arguments[0]), y: checked ? checked.value : null, q: text(arguments[2])};
"""


def _volcano_controls(driver) -> dict:
    """What the volcano controls show, read in one script (the page may re-render)."""
    return driver.execute_script(
        VOLCANO_CONTROLS_JS,
        dash_id(key="feature", page="volcano", role="state"),
        dash_id(key="y", page="volcano", role="state"),
        dash_id(key="q", page="volcano", role="state"),
    )


def test_url_round_trip_restores_the_same_view(browser, live_server):
    url = f"{live_server}/volcano?q=0.01&feature=pack_years&y=p"
    open_page(browser, url)
    first = _volcano_controls(browser)
    assert first == {"feature": "Pack years (clinical)", "y": "p", "q": "0.01"}
    assert query(browser) == {"q": ["0.01"], "feature": ["pack_years"], "y": ["p"]}
    # change a control: the URL follows
    browser.find_element(
        By.CSS_SELECTOR, f"[id='{dash_id(key='y', page='volcano', role='state')}'] input[value=q]"
    ).click()
    wait(browser).until(lambda d: "y" not in query(d))
    changed_url = browser.current_url
    wait_idle(browser)
    # the bookmarked URL restores the view in a fresh load
    open_page(browser, changed_url)
    assert _volcano_controls(browser) == {"feature": "Pack years (clinical)", "y": "q", "q": "0.01"}
    # and the browser's back button restores the previous state
    browser.back()
    wait(browser).until(lambda d: query(d).get("y") == ["p"])
    wait(browser).until(lambda d: _volcano_controls(d)["y"] == "p")
    assert severe_console_errors(browser) == []


def test_each_export_format_downloads_a_valid_file(browser, live_server, download_dir):
    open_page(browser, f"{live_server}/map")
    select = Select(by_id(browser, dash_id(fig="map-heatmap", role="export-format")))
    for fmt in ("svg", "pdf", "png"):
        before = {path.name for path in download_dir.iterdir()}
        select.select_by_value(fmt)
        click(browser, dash_id(fig="map-heatmap", role="export-button"))
        path = new_download(download_dir, before, f".{fmt}")
        data = path.read_bytes()
        if fmt == "svg":
            root = ElementTree.fromstring(data)
            assert root.tag.endswith("svg")
        elif fmt == "pdf":
            assert data.startswith(b"%PDF")
        else:
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:
                assert image.width >= 1000  # single column at 300 dpi
    before = {path.name for path in download_dir.iterdir()}
    click(browser, dash_id(fig="map-heatmap", role="provenance-button"))
    provenance = json.loads(new_download(download_dir, before, ".json").read_text())
    assert len(provenance["bundle"]["sha256"]) == 64
    assert provenance["view_url"].startswith(live_server)
    open_page(browser, f"{live_server}/module")
    wait(browser).until(lambda d: "M4" in by_id(d, dash_id(role="table", table="modules")).text)
    before = {path.name for path in download_dir.iterdir()}
    click(browser, dash_id(role="table-csv", table="modules"))
    lines = new_download(download_dir, before, ".csv").read_text().splitlines()
    assert lines[0].startswith("module,size")
    assert len(lines) == 5
    assert severe_console_errors(browser) == []


def test_a_pin_shows_up_in_the_exported_report(browser, live_server, download_dir):
    note = "Spiculated <b>shape</b> & M1: validate in the next cohort"
    open_page(browser, f"{live_server}/map?feature=original_shape_Sphericity&module=M1")
    wait(browser).until(EC.visibility_of_element_located((By.ID, "map-drill")))
    click(browser, dash_id(role="pin", view="map"))
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "pin-modal-body"), "M1"))
    box = wait(browser).until(EC.element_to_be_clickable((By.ID, "pin-note-input")))
    box.send_keys(note)
    click(browser, "pin-save-new")
    wait(browser).until(EC.invisibility_of_element_located((By.ID, "pin-modal")))
    click(browser, dash_id(page="hypotheses", role="nav"))
    wait(browser).until(lambda d: urlsplit(d.current_url).path == "/hypotheses")
    wait(browser).until(
        lambda d: any(
            area.get_attribute("value") == note
            for area in d.find_elements(By.CSS_SELECTOR, ".rm-pin-card textarea")
        )
    )
    wait_idle(browser)
    before = {path.name for path in download_dir.iterdir()}
    click(browser, "report-markdown")
    markdown = new_download(download_dir, before, ".md").read_text()
    assert "validate in the next cohort" in markdown
    assert "Sphericity" in markdown
    before = {path.name for path in download_dir.iterdir()}
    click(browser, "report-html")
    html = new_download(download_dir, before, ".html", timeout=90).read_text()
    assert "&lt;b&gt;shape&lt;/b&gt;" in html and "<b>shape</b>" not in html
    assert severe_console_errors(browser) == []


def test_with_a_login_nothing_shows_until_the_browser_sends_credentials(browser, login_server):
    browser.get(f"{login_server}/gene?gene=EGFR")  # headless Chromium cannot show the prompt
    time.sleep(1)
    assert not browser.find_elements(By.ID, "page-content")
    assert "_dash-config" not in browser.page_source
    assert any("401" in message for message in severe_console_errors(browser))

    # What the browser sends on every request once the user has typed the password.
    token = base64.b64encode(":".join(LOGIN).encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
    )
    try:
        open_page(browser, f"{login_server}/gene?gene=EGFR")
        wait(browser).until(lambda driver: graph_has_data(driver, "gene-bar"))
        assert "EGFR" in browser.find_element(By.ID, "page-content").text
        assert not browser.find_elements(By.CSS_SELECTOR, "#global-alert.show")
        assert severe_console_errors(browser) == []
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
