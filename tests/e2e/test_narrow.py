"""The explorer in a narrow Chromium window (~500 px): the navigation bar folds and unfolds."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.e2e.test_explorer import by_id, click, dash_id, open_page, wait, wait_idle

pytestmark = pytest.mark.e2e

NARROW = (500, 900)


@pytest.fixture
def narrow(browser):
    """The session's browser at ~500 px wide, back to its own size afterwards."""
    size = browser.get_window_size()
    browser.set_window_size(*NARROW)
    yield browser
    browser.set_window_size(size["width"], size["height"])


def shown(driver, element_id: str) -> bool:
    element = by_id(driver, element_id)
    return bool(element is not None and element.is_displayed())


def test_the_navigation_bar_folds_at_narrow_width_and_opens_on_its_toggler(narrow, live_server):
    open_page(narrow, f"{live_server}/map")
    volcano_link = dash_id(page="volcano", role="nav")
    assert shown(narrow, "navbar-toggler")
    assert not shown(narrow, volcano_link), "the page links take the screen at 500 px"
    bar = narrow.execute_script(
        "return document.querySelector('.rm-navbar').getBoundingClientRect().height"
    )
    assert bar < 80, f"the folded navigation bar is {bar:.0f} px high"

    click(narrow, "navbar-toggler")
    wait(narrow).until(lambda d: shown(d, volcano_link))
    wait(narrow).until(lambda d: shown(d, "help-open"))
    click(narrow, volcano_link)
    wait(narrow).until(lambda d: urlsplit(d.current_url).path == "/volcano")
    wait_idle(narrow)
    wait(narrow).until(lambda d: not shown(d, volcano_link))  # a page change folds it again


def test_the_navigation_bar_shows_its_links_at_full_width(browser, live_server):
    open_page(browser, f"{live_server}/map")
    assert shown(browser, dash_id(page="volcano", role="nav"))
    assert not shown(browser, "navbar-toggler")
