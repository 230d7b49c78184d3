"""Browser history in Chromium: a page filling in its defaults must not trap the Back button.

Pages such as Gene open on a default (``/gene`` -> ``/gene?gene=MBIP``); writing that default
into the URL has to replace the history entry, not push a new one, or Back lands on
``/gene`` and the page pushes its default again.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.test_explorer import click, dash_id, open_page, query, wait, wait_idle

pytestmark = pytest.mark.e2e

DEFAULTED = ("volcano", "gene", "module", "cohort")


def path(driver) -> str:
    return urlsplit(driver.current_url).path


def test_back_and_forward_leave_pages_that_fill_in_defaults(browser, live_server):
    open_page(browser, f"{live_server}/map")
    history = [(path(browser), query(browser))]
    for page in DEFAULTED:
        click(browser, dash_id(page=page, role="nav"))
        wait(browser).until(lambda d, p=page: path(d) == f"/{p}")
        wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#page-content h2"))
        wait_idle(browser)
        assert query(browser), f"/{page} shows no state in its URL"
        history.append((path(browser), query(browser)))
    entries = browser.execute_script("return window.history.length")
    for expected_path, expected_query in reversed(history[:-1]):
        browser.back()
        wait(browser).until(lambda d, p=expected_path: path(d) == p)
        wait_idle(browser)
        assert (path(browser), query(browser)) == (expected_path, expected_query)
        assert browser.execute_script("return window.history.length") == entries
    for expected_path, expected_query in history[1:]:
        browser.forward()
        wait(browser).until(lambda d, p=expected_path: path(d) == p)
        wait_idle(browser)
        assert (path(browser), query(browser)) == (expected_path, expected_query)
    assert browser.execute_script("return window.history.length") == entries


def test_changing_a_control_still_adds_a_history_entry(browser, live_server):
    open_page(browser, f"{live_server}/volcano")
    before = query(browser)
    browser.find_element(
        By.CSS_SELECTOR, f"[id='{dash_id(key='y', page='volcano', role='state')}'] input[value=p]"
    ).click()
    wait(browser).until(lambda d: query(d).get("y") == ["p"])
    wait_idle(browser)
    browser.back()
    wait(browser).until(lambda d: "y" not in query(d))
    assert query(browser) == before


VOLCANO_Y_AXIS = """
const root = document.getElementById(arguments[0]);
const gd = root && root.querySelector('.js-plotly-plot');
return gd && gd._fullLayout ? [gd.dataset.kept || null, gd._fullLayout.yaxis.title.text] : null;
"""


def test_back_and_forward_within_a_page_update_it_in_place(browser, live_server):
    """Another URL of the page shown sets its controls: the page's graphs stay (no new page,
    no new WebGL contexts) and are redrawn for the URL, in both directions."""
    graph = dash_id(fig="volcano", role="graph")
    y_choice = f"[id='{dash_id(key='y', page='volcano', role='state')}'] input"
    open_page(browser, f"{live_server}/volcano")
    browser.execute_script(
        "document.getElementById(arguments[0]).querySelector('.js-plotly-plot')"
        ".dataset.kept = 'yes';",
        graph,
    )
    browser.find_element(By.CSS_SELECTOR, f"{y_choice}[value=p]").click()
    wait(browser).until(lambda d: query(d).get("y") == ["p"])
    wait(browser).until(lambda d: d.execute_script(VOLCANO_Y_AXIS, graph)[1] == "−log10 p")
    wait_idle(browser)
    for move, axis in ((browser.back, "q"), (browser.forward, "p")):
        move()
        wait(browser).until(
            lambda d, a=axis: d.execute_script(VOLCANO_Y_AXIS, graph)[1] == f"−log10 {a}"
        )
        wait_idle(browser)
        kept, _ = browser.execute_script(VOLCANO_Y_AXIS, graph)
        assert kept == "yes", "the page was rendered again"
        checked = browser.find_element(By.CSS_SELECTOR, f"{y_choice}:checked")
        assert checked.get_attribute("value") == axis
        assert query(browser).get("y", ["q"]) == [axis]
