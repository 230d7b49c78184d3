"""Requests a page load and a choice make: the first layout carries the page (no routing
round trip), the figure it carries is never recomputed, a control's own URL write sends no
routing or header request, and the cohort's slower parts wait for the first figures."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import script_in_new_pages
from tests.e2e.test_explorer import open_page, wait, wait_idle
from tests.explorer.test_plotly_bundle import BUNDLE, bundle_version

pytestmark = pytest.mark.e2e

RECORD_OUTPUTS_JS = """
window.__rmOutputs = [];
const originalFetch = window.fetch;
window.fetch = function (url, options) {
  try {
    if (String(url).includes('_dash-update-component') && options && options.body) {
      const output = JSON.parse(options.body).output;
      return originalFetch.apply(this, arguments).then((response) => {
        // 204: the callback changed nothing (PreventUpdate), nothing was drawn again
        if (response.status !== 204) window.__rmOutputs.push(output);
        return response;
      });
    }
  } catch (error) {}
  return originalFetch.apply(this, arguments);
};
"""
NAV_GENE = '[id*=\'"page":"gene"\'][id*=\'"role":"nav"\']'
MAIN_FIGURE = {
    "map": "map-heatmap",
    "volcano": "volcano",
    "gene": "gene-bar",
    "module": "module-heatmap",
    "cohort": "cohort-missing",
}


@pytest.fixture
def recorded(browser):
    with script_in_new_pages(browser, RECORD_OUTPUTS_JS):
        yield browser


NO_REFERRER_JS = """
const sendsReferrer = window.fetch;
window.fetch = function (url, options) {
  if (String(url).includes('_dash-layout')) {
    // another URL, so that the layout asked for early (with a referrer) is not used
    url = String(url) + '?without-referrer';
    options = Object.assign({}, options, {referrerPolicy: 'no-referrer'});
  }
  return sendsReferrer.call(this, url, options);
};
"""


def routed(outputs: list[str]) -> list[str]:
    return [o for o in outputs if "page-content.children" in o]


def header_requests(outputs: list[str]) -> list[str]:
    """Requests for the header alone (the controls' own write may carry a new header)."""
    return [
        o for o in outputs if ("header-q" in o or "header-update" in o) and "search-update" not in o
    ]


@pytest.mark.parametrize("page", sorted(MAIN_FIGURE))
def test_a_page_load_comes_with_its_page_and_keeps_its_figure(recorded, live_server, page):
    open_page(recorded, f"{live_server}/{page}?q=0.1")
    outputs = recorded.execute_script("return window.__rmOutputs")
    figure = json.dumps({"fig": MAIN_FIGURE[page], "role": "graph"}, separators=(",", ":"))
    assert not routed(outputs), "the page was asked for again after the first layout"
    assert not [o for o in outputs if f"{figure}.figure" in o], "the figure was drawn twice"
    assert not header_requests(outputs), "the header was asked for"
    assert recorded.find_element(By.ID, "header-q").text == "0.1"
    fetched = recorded.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
        ".filter((name) => name.includes('_dash-layout') || name.includes('async-'))"
    )
    layouts = [name for name in fetched if "_dash-layout" in name]
    assert len(layouts) == 1, f"the early (preloaded) layout was not the one used: {fetched}"
    assert len(fetched) == len(set(fetched)), f"a preloaded script was fetched again: {fetched}"
    link = recorded.find_element(By.CSS_SELECTOR, NAV_GENE)
    assert "q=0.1" in link.get_attribute("href")
    assert_drawn_by_radmaps_plotly_js(recorded)


def assert_drawn_by_radmaps_plotly_js(driver) -> None:
    """Every shown graph is drawn, by radmap's plotly.js build; Dash's is never fetched."""
    version, fetched, pending = driver.execute_script(
        "return [window.Plotly.version,"
        " performance.getEntriesByType('resource').map((e) => e.name)"
        "   .filter((name) => name.includes('plotly')),"
        " Array.from(document.querySelectorAll('.rm-graph'))"
        "   .filter((g) => g.getClientRects().length && !g.querySelector('.main-svg')).length]"
    )
    assert version == bundle_version(BUNDLE.read_text(encoding="utf-8"))
    assert len(fetched) == 1 and "/assets/plotly-radmap.min.js" in fetched[0], fetched
    assert pending == 0, "a shown graph was not drawn"


def test_without_a_referrer_the_page_is_asked_for_once(recorded, live_server):
    with script_in_new_pages(recorded, NO_REFERRER_JS):
        open_page(recorded, f"{live_server}/gene?q=0.1")
        outputs = recorded.execute_script("return window.__rmOutputs")
        assert len(routed(outputs)) == 1, outputs
        assert recorded.find_element(By.ID, "header-q").text == "0.1"
        assert "gene=" in recorded.current_url, "the page's defaults were not written"


def test_a_choice_writes_the_url_without_routing_or_header_requests(recorded, live_server):
    open_page(recorded, f"{live_server}/gene")
    recorded.execute_script("window.__rmOutputs = []")
    gene = {"role": "state", "page": "gene", "key": "gene"}
    recorded.execute_script("window.dash_clientside.set_props(arguments[0], {value: 'KRAS'})", gene)
    wait(recorded).until(lambda d: "gene=KRAS" in d.current_url)
    wait_idle(recorded)
    outputs = recorded.execute_script("return window.__rmOutputs")
    assert any("gene-bar" in o for o in outputs), outputs
    assert not routed(outputs) and not header_requests(outputs), outputs

    recorded.execute_script("window.__rmOutputs = []")
    q = {"role": "state", "page": "gene", "key": "q"}
    recorded.execute_script("window.dash_clientside.set_props(arguments[0], {value: 0.2})", q)
    wait(recorded).until(lambda d: d.find_element(By.ID, "header-q").text == "0.2")
    wait_idle(recorded)
    outputs = recorded.execute_script("return window.__rmOutputs")
    assert not routed(outputs), "a shared key's change re-rendered the page"
    # the new header comes with the query string the controls wrote, not asked for again
    assert not header_requests(outputs), outputs
    link = recorded.find_element(By.CSS_SELECTOR, NAV_GENE)
    assert "q=0.2" in link.get_attribute("href")


PHENOTYPE_TITLE_JS = """
const root = document.getElementById(JSON.stringify({fig: 'gene-phenotype', role: 'graph'}));
const gd = root && root.querySelector('.js-plotly-plot');
return gd && gd.layout && gd.layout.title ? String(gd.layout.title.text || '') : '';
"""


def test_a_gene_choice_redraws_the_gene_page_in_one_response(recorded, live_server):
    open_page(recorded, f"{live_server}/gene?gene=EGFR")
    assert recorded.execute_script(PHENOTYPE_TITLE_JS).startswith("EGFR x")
    recorded.execute_script("window.__rmOutputs = []")
    gene = {"role": "state", "page": "gene", "key": "gene"}
    recorded.execute_script("window.dash_clientside.set_props(arguments[0], {value: 'KRAS'})", gene)
    wait(recorded).until(lambda d: d.execute_script(PHENOTYPE_TITLE_JS).startswith("KRAS x"))
    wait_idle(recorded)
    outputs = recorded.execute_script("return window.__rmOutputs")
    with_figures = [o for o in outputs if '"role":"graph"' in o]
    assert len(with_figures) == 1, with_figures  # bar, survival and phenotype together
    assert all(
        f'"fig":"{name}"' in with_figures[0] for name in ("gene-bar", "gene-km", "gene-phenotype")
    )


def test_the_cohort_parts_are_asked_for_after_the_first_figures_are_drawn(recorded, live_server):
    timing = """
    window.__rmTimes = [];
    const started = window.fetch;
    window.fetch = function (url, options) {
      if (String(url).includes('_dash-update-component')) {
        const drawn = document.querySelector('[id*="cohort-missing"] .main-svg');
        window.__rmTimes.push(Boolean(drawn));
      }
      return started.apply(this, arguments);
    };
    """
    with script_in_new_pages(recorded, timing):
        open_page(recorded, f"{live_server}/cohort")
        asked = recorded.execute_script("return window.__rmTimes")
        outputs = recorded.execute_script("return window.__rmOutputs")
    assert any("cohort-mutation" in o for o in outputs), outputs
    assert any("cohort-km" in o for o in outputs), outputs
    assert asked and all(asked), f"parts asked for before the first figures were drawn: {asked}"
