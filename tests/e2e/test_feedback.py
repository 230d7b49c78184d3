"""Feedback in Chromium: a map click brings its drill-down into view; help is one click away."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

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


def test_help_panel_opens_from_the_navigation_bar(browser, wide_server):
    open_page(browser, f"{wide_server}/volcano")
    click(browser, "help-open")
    panel = wait(browser).until(EC.visibility_of_element_located((By.ID, "help-panel")))
    wait_idle(browser)
    assert "Benjamini" in panel.text and "Hedges' g" in panel.text
    assert browser.find_elements(By.CSS_SELECTOR, ".rm-info")
