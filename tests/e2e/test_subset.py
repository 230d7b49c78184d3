"""A subset of the cohort in Chromium: set it in the panel, see the map recomputed and the n
in the banner, reload the URL and get the same subset back."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.conftest import severe_console_errors
from tests.e2e.test_explorer import (
    click,
    dash_id,
    graph_has_data,
    open_page,
    query,
    wait,
    wait_idle,
)
from tests.e2e.test_feedback import COUNT_PLOTS_JS, graph_box_size, plots_of
from tests.explorer.conftest import make_toy_adata

pytestmark = pytest.mark.e2e

HEATMAP_Z = """
const g = document.getElementById(arguments[0]);
const gd = g && g.querySelector('.js-plotly-plot');
return gd && gd.data && gd.data.length ? JSON.stringify(gd.data[0].z) : null;
"""


def heatmap_z(driver) -> str | None:
    return driver.execute_script(HEATMAP_Z, dash_id(fig="map-heatmap", role="graph"))


def banner(driver) -> str:
    element = driver.execute_script(
        "return document.getElementById(arguments[0]);", dash_id(page="map", role="subset-banner")
    )
    return element.text if element is not None else ""


def choose(driver, dropdown: str, option_text: str, typed: str = "") -> None:
    """Open a dash Dropdown (typing into its search box) and click one option."""
    click(driver, dropdown)
    if typed:
        search = wait(driver).until(
            EC.element_to_be_clickable((By.CSS_SELECTOR, "input.dash-dropdown-search"))
        )
        search.send_keys(typed)

    def option(d):
        for item in d.find_elements(By.CSS_SELECTOR, "[role=option]"):
            try:
                if item.text.strip() == option_text:
                    return item
            except StaleElementReferenceException:
                return False
        return False

    wait(driver).until(option).click()


def test_a_subset_recomputes_the_map_and_survives_a_reload(browser, live_server):
    n_stage_two = int((make_toy_adata().obs["stage"].astype(str) == "II").sum())
    n_total = make_toy_adata().n_obs
    open_page(browser, f"{live_server}/map")
    wait(browser).until(lambda d: heatmap_z(d) is not None)
    whole = heatmap_z(browser)
    assert banner(browser) == ""

    browser.find_element(By.CSS_SELECTOR, ".rm-subset-summary").click()
    choose(browser, dash_id(page="map", role="subset-column"), "stage (clinical)", "stage")
    wait_idle(browser)
    choose(browser, dash_id(page="map", role="subset-levels"), "II")
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()  # close the open menu
    click(browser, dash_id(page="map", role="subset-apply"))

    wait(browser).until(lambda d: query(d).get("subset") == ["stage:II"])
    expected = f"subset: stage = II (n = {n_stage_two} of {n_total})"
    wait(browser).until(lambda d: banner(d) == expected)
    wait(browser).until(lambda d: heatmap_z(d) not in (None, whole))
    wait_idle(browser)
    subset_map = heatmap_z(browser)

    browser.refresh()
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#page-content h2")))
    wait(browser).until(lambda d: banner(d) == expected)
    wait(browser).until(lambda d: heatmap_z(d) is not None)
    wait_idle(browser)
    assert query(browser).get("subset") == ["stage:II"]
    assert heatmap_z(browser) == subset_map

    click(browser, dash_id(page="map", role="subset-clear"))
    wait(browser).until(lambda d: "subset" not in query(d))
    wait(browser).until(lambda d: heatmap_z(d) == whole)
    assert banner(browser) == ""
    assert severe_console_errors(browser) == []


def test_a_comparison_link_shows_both_maps_and_their_difference(browser, live_server):
    open_page(browser, f"{live_server}/map?subset=stage:II%7CIII&compare=stage:I")
    wait(browser).until(lambda d: graph_has_data(d, "map-difference"))
    assert graph_has_data(browser, "map-compare")
    text = banner(browser)
    assert "subset: stage = II or III" in text and "compared with: stage = I (n = " in text
    title = browser.execute_script(
        "const g = document.getElementById(arguments[0]);"
        "return g.querySelector('.js-plotly-plot').layout.title.text;",
        dash_id(fig="map-difference", role="graph"),
    )
    assert "B (stage = I) − A (stage = II or III)" in title
    assert severe_console_errors(browser) == []


def test_a_comparison_applied_in_the_panel_draws_each_figure_once_at_its_width(
    browser, live_server
):
    browser.set_window_size(1600, 1000)
    open_page(browser, f"{live_server}/map?subset=stage:II%7CIII")
    wait_idle(browser)
    browser.execute_script(COUNT_PLOTS_JS)
    target = dash_id(page="map", role="subset-target")
    wait(browser).until(
        EC.element_to_be_clickable((By.CSS_SELECTOR, f"[id='{target}'] input[value=compare]"))
    ).click()
    choose(browser, dash_id(page="map", role="subset-column"), "stage (clinical)", "stage")
    wait_idle(browser)
    choose(browser, dash_id(page="map", role="subset-levels"), "I")
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    click(browser, dash_id(page="map", role="subset-apply"))
    wait(browser).until(lambda d: query(d).get("compare") == ["stage:I"])
    wait(browser).until(lambda d: plots_of(d, "map-difference") and plots_of(d, "map-compare"))
    wait_idle(browser)
    browser.execute_async_script("setTimeout(arguments[arguments.length - 1], 1500)")
    for name in ("map-compare", "map-difference"):
        plots = plots_of(browser, name)
        # hidden with display: none they came at plotly's default 700 px, then were resized
        assert len(plots) == 1, (name, plots)
        assert plots[0] == pytest.approx(graph_box_size(browser, name), abs=1), name
    assert severe_console_errors(browser) == []
