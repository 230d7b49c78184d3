"""The explorer in a narrow Chromium window (~500 px): the navigation bar folds and unfolds,
wide figures scroll inside their cards."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import pytest
from selenium.common.exceptions import TimeoutException

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


NARROW_JS = """
const report = [];
for (const gd of document.querySelectorAll('.js-plotly-plot')) {
  if (!gd._fullLayout || gd.offsetParent === null || !gd.data || !gd.data.length) continue;
  const meta = gd.layout.meta || {};
  const owner = gd.closest('[id]');
  report.push({figure: owner ? owner.id : '?', plot: gd._fullLayout._size.w,
               width: gd._fullLayout.width, minWidth: meta.min_width || null});
}
return {figures: report, page: document.documentElement.scrollWidth, window: window.innerWidth};
"""


# The gene page's figures all fit 500 px since legends beside a plot take their entries'
# width (the survival curves' took 260 px and asked for a minimum width): none need scroll.
@pytest.mark.parametrize(("view", "has_wide"), [("map", True), ("gene", False), ("cohort", True)])
def test_wide_figures_scroll_inside_their_card_instead_of_squeezing(
    narrow, wide_server, view, has_wide
):
    """At phone width a figure with long row labels keeps a readable plot and scrolls
    sideways inside its card; the page itself does not scroll sideways."""
    open_page(narrow, f"{wide_server}/{view}")

    def squeezed_figures():
        found = narrow.execute_script(NARROW_JS)
        wide = [figure for figure in found["figures"] if figure["minWidth"]]
        squeezed = [f for f in wide if f["plot"] < 200 or f["width"] < f["minWidth"]]
        return found, wide, squeezed

    # a figure that arrives after the page may be drawn once at the card's width before the
    # card takes the figure's minimum width (plotly then redraws it): wait for that
    with contextlib.suppress(TimeoutException):  # the assertion below says what stayed
        wait(narrow, timeout=10).until(lambda _: not squeezed_figures()[2])
    found, wide, squeezed = squeezed_figures()
    assert bool(wide) == has_wide, f"/{view}: minimum widths: {found['figures']}"
    assert not squeezed, f"/{view}: plots squeezed at 500 px: {squeezed}"
    narrowest = min(figure["plot"] for figure in found["figures"])
    assert narrowest >= 200, f"/{view}: a plot is {narrowest} px wide at 500 px"
    assert found["page"] <= found["window"] + 1, "the page scrolls sideways at 500 px"
