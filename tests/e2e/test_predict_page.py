"""The Predict page in a real browser: curves drawn, verdict shown, pinnable, no console errors."""

from __future__ import annotations

from radmap.analysis import predict as P
from radmap.analysis.io import load_bundle
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.conftest import severe_console_errors
from tests.e2e.test_explorer import click, dash_id, open_page, wait, wait_idle
from tests.e2e.test_patient_page import figures_scrolled_sideways

LEGEND_OVER_LABELS_JS = """
const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
  Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
return Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter((gd) => gd._fullLayout && gd.offsetParent !== null)
  .map((gd) => {
    const labels = Array.from(gd.querySelectorAll('.g-xtitle text, .g-ytitle text, .xtick text'));
    const entries = Array.from(gd.querySelectorAll('.legend .traces'));
    const covered = [];
    for (const entry of entries) {
      const box = entry.getBoundingClientRect();
      for (const label of labels) {
        if (overlap(box, label.getBoundingClientRect())) covered.push([entry.textContent, label.textContent]);
      }
    }
    return {figure: (gd.closest('[id]') || {}).id, background: gd._fullLayout.plot_bgcolor,
            covered: covered};
  });
"""


def test_predict_page_shows_curves_verdict_and_pins(browser, live_server, toy_bundle):
    bundle, _ = toy_bundle
    params = P.PredictParams(
        outer_splits=3, inner_splits=2, outer_repeats=1, n_permutations=2, n_bootstrap=200
    )
    result = P.predict(load_bundle(bundle), targets=["EGFR"], params=params, key_added=None)
    sidecar = P.write_predictions(result, P.sidecar_path(bundle), bundle_path=bundle)
    try:
        severe_console_errors(browser)
        open_page(browser, f"{live_server}/predict?target=EGFR")
        roc = dash_id(fig="predict-roc", role="graph")
        wait(browser).until(
            lambda d: (
                d.execute_script(
                    "const g = document.getElementById(arguments[0]);"
                    "const gd = g && g.querySelector('.js-plotly-plot');"
                    "return gd && gd.data ? gd.data.length : 0;",
                    roc,
                )
                >= 1 + 2 * result.summary["feature_set"].nunique()
            )
        )
        wait(browser).until(
            EC.text_to_be_present_in_element((By.ID, "predict-verdict"), "For EGFR, the best")
        )
        wait_idle(browser)
        # the calibration card beside the ROC curves: its legend under the plot took room
        # beside it, and the figure scrolled sideways in the card
        assert figures_scrolled_sideways(browser) == []
        for width in (1600, 500):
            browser.set_window_size(width, 1000)
            wait_idle(browser)
            drawn = browser.execute_script(LEGEND_OVER_LABELS_JS)
            assert len(drawn) == 3, drawn
            assert all(figure["background"] == "white" for figure in drawn), drawn
            assert [figure for figure in drawn if figure["covered"]] == [], (width, drawn)
        browser.set_window_size(1440, 1000)
        click(browser, dash_id(role="pin", view="predict"))
        wait(browser).until(
            EC.text_to_be_present_in_element((By.ID, "pin-modal-body"), "EGFR from")
        )
        errors = severe_console_errors(browser)
        assert errors == [], errors
    finally:
        sidecar.unlink(missing_ok=True)
