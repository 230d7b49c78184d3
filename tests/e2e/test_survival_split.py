"""Survival splits in Chromium: a continuous variable split into tertiles, quartiles or at a
typed value on the Cohort and Gene pages, the split in the URL and restored on reload."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.conftest import severe_console_errors
from tests.e2e.test_explorer import by_id, click, dash_id, open_page, query, wait, wait_idle

pytestmark = pytest.mark.e2e

CURVES_JS = """
const g = document.getElementById(arguments[0]);
const gd = g && g.querySelector('.js-plotly-plot');
if (!gd || !gd.data) return null;
const names = gd.data.filter(t => t.mode === 'lines' && t.showlegend !== false).map(t => t.name);
const notes = ((gd.layout || {}).annotations || []).map(a => a.text).join(' ');
return {names: names, notes: notes};
"""


def curves(driver, figure: str) -> dict | None:
    return driver.execute_script(CURVES_JS, dash_id(fig=figure, role="graph"))


def choose(driver, page: str, key: str, label: str) -> None:
    click(driver, dash_id(key=key, page=page, role="state"))

    def option(d):
        for element in d.find_elements(By.CSS_SELECTOR, "[role=option]"):
            try:
                if element.text.strip() == label:
                    return element
            except StaleElementReferenceException:
                return False
        return False

    wait(driver).until(option).click()


def test_cohort_split_lives_in_the_url_and_survives_a_reload(browser, live_server):
    open_page(browser, f"{live_server}/cohort?km=module:M2&split=tertiles")
    wait(browser).until(lambda d: (curves(d, "cohort-km") or {}).get("names"))
    shown = curves(browser, "cohort-km")
    assert shown["names"] == ["low", "middle", "high"]
    assert "log-rank p" in shown["notes"] and "n = " in shown["notes"]

    choose(browser, "cohort", "split", "at a value")
    cut = wait(browser).until(
        lambda d: (
            (e := by_id(d, dash_id(key="cut", page="cohort", role="state")))
            and e.is_enabled()
            and e
        )
    )
    cut.send_keys("0.1", Keys.ENTER)
    wait(browser).until(lambda d: query(d).get("cut") == ["0.1"])
    assert query(browser)["split"] == ["cut"] and query(browser)["km"] == ["module:M2"]
    wait(browser).until(lambda d: (curves(d, "cohort-km") or {}).get("names") == ["≤ 0.1", "> 0.1"])
    wait_idle(browser)

    browser.refresh()
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#page-content h2")))
    wait_idle(browser)
    assert query(browser) == {"km": ["module:M2"], "split": ["cut"], "cut": ["0.1"]}
    wait(browser).until(lambda d: (curves(d, "cohort-km") or {}).get("names") == ["≤ 0.1", "> 0.1"])
    field = by_id(browser, dash_id(key="cut", page="cohort", role="state"))
    assert field.get_attribute("value") == "0.1" and field.is_enabled()
    assert severe_console_errors(browser) == []


def test_gene_survival_split_into_quartiles(browser, live_server):
    open_page(browser, f"{live_server}/gene?gene=EGFR")
    wait(browser).until(lambda d: (curves(d, "gene-km") or {}).get("names") == ["low", "high"])
    choose(browser, "gene", "split", "quartiles (4 groups)")
    wait(browser).until(lambda d: query(d).get("split") == ["quartiles"])
    wait(browser).until(
        lambda d: (
            (curves(d, "gene-km") or {}).get("names") == ["Q1 (lowest)", "Q2", "Q3", "Q4 (highest)"]
        )
    )
    wait_idle(browser)
    browser.refresh()
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#page-content h2")))
    wait(browser).until(lambda d: len((curves(d, "gene-km") or {}).get("names") or []) == 4)
    assert query(browser) == {"gene": ["EGFR"], "split": ["quartiles"]}
