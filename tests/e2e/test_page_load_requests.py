"""A page load renders its page once and never recomputes the figure the page carries."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_explorer import open_page

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
MAIN_FIGURE = {
    "map": "map-heatmap",
    "volcano": "volcano",
    "gene": "gene-bar",
    "module": "module-heatmap",
    "cohort": "cohort-missing",
}


@pytest.fixture
def recorded(browser):
    script = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_OUTPUTS_JS}
    )
    yield browser
    browser.execute_cdp_cmd(
        "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
    )


@pytest.mark.parametrize("page", sorted(MAIN_FIGURE))
def test_a_page_load_renders_once_and_keeps_its_figure(recorded, live_server, page):
    open_page(recorded, f"{live_server}/{page}?q=0.1")
    outputs = recorded.execute_script("return window.__rmOutputs")
    assert outputs, "the recorder saw no callback"
    figure = json.dumps({"fig": MAIN_FIGURE[page], "role": "graph"}, separators=(",", ":"))
    assert len([o for o in outputs if "page-content.children" in o]) == 1, outputs
    assert not [o for o in outputs if f"{figure}.figure" in o], "the figure was drawn twice"
