"""Long option lists (1,476 features on the demo) stay on the server; typing finds any of them."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.test_explorer import click, dash_id, open_page, query, wait, wait_idle

pytestmark = pytest.mark.e2e

OPTION_TEXTS_JS = """
return Array.from(document.querySelectorAll('[role=option]')).map((o) => o.innerText.trim());
"""


def _option(driver, text: str):
    for option in driver.find_elements(By.CSS_SELECTOR, "[role=option]"):
        try:
            if text in option.text:
                return option
        except StaleElementReferenceException:
            return False
    return False


def test_a_feature_beyond_the_first_options_is_found_by_typing(browser, wide_server):
    open_page(browser, f"{wide_server}/module")
    wait_idle(browser)
    click(browser, dash_id(key="order", page="module", role="state"))
    wait(browser).until(lambda d: d.execute_script(OPTION_TEXTS_JS))
    shown = browser.execute_script(OPTION_TEXTS_JS)
    assert len(shown) <= 61, "the browser got the whole feature list"
    assert "type to narrow" in shown[-1]
    assert not any("Feature0100" in text for text in shown)

    search = wait(browser).until(
        EC.element_to_be_clickable((By.CSS_SELECTOR, "input.dash-dropdown-search"))
    )
    search.send_keys("feature0100")
    wait(browser).until(lambda d: _option(d, "Feature0100")).click()
    wait(browser).until(lambda d: "Feature0100" in (query(d).get("order") or [""])[0])
    wait_idle(browser)
    shown_value = browser.execute_script(
        "return document.getElementById(arguments[0]).innerText;",
        dash_id(key="order", page="module", role="state"),
    )
    assert "Feature0100" in shown_value, "the chosen feature stays shown after the search"
