"""The Replication page in a real browser: a two-cohort synthetic design replicated with
`radmap replicate`, its scorecard and preservation drawn, exported and downloadable."""

from __future__ import annotations

from xml.etree import ElementTree

from radmap.analysis.io import file_sha256, load_bundle
from radmap.analysis.replicate import replicate, sidecar_dir, write_replication
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from tests.e2e.conftest import severe_console_errors
from tests.e2e.test_explorer import by_id, click, dash_id, new_download, open_page, wait
from tests.explorer.conftest import make_toy_adata


def _bars(driver, name: str) -> list:
    return driver.execute_script(
        "const g = document.getElementById(arguments[0]);"
        "const gd = g && g.querySelector('.js-plotly-plot');"
        "return gd && gd.data && gd.data.length ? gd.data[0].x : [];",
        dash_id(fig=name, role="graph"),
    )


def test_replication_page_shows_scorecard_preservation_and_exports(
    browser, live_server, toy_bundle, download_dir
):
    bundle, _ = toy_bundle
    folder = sidecar_dir(bundle)
    open_page(browser, f"{live_server}/replication")
    assert "radmap replicate toy.h5ad" in browser.find_element(By.ID, "page-content").text
    # The validation cohort: the same planted design, other patients (another seed).
    result = replicate(load_bundle(bundle), make_toy_adata(seed=1), n_permutations=10, links="all")
    result["params"]["discovery_bundle_sha256"] = file_sha256(bundle)
    write_replication(result, folder)
    card = result["scorecard"]
    try:
        severe_console_errors(browser)
        open_page(browser, f"{live_server}/replication")
        wait(browser).until(
            EC.text_to_be_present_in_element(
                (By.ID, "replication-verdict"), f"{card['replicated']} replicated"
            )
        )
        wait(browser).until(lambda d: len(_bars(d, "replication-scorecard")) == 4)
        counts = _bars(browser, "replication-scorecard")
        assert counts[0] == card["replicated"] and sum(counts) == card["discovery_links"]
        assert len(_bars(browser, "replication-preservation")) == len(result["preservation"])
        # only the replicated links, then download the table
        label = "//div[@id='replication-status']//label[normalize-space()='Replicated']"
        browser.find_element(By.XPATH, label).click()
        wait(browser).until(
            lambda d: (
                "not replicated"
                not in by_id(d, dash_id(role="table", table="replication-links")).text
            )
        )
        before = {path.name for path in download_dir.iterdir()}
        click(browser, dash_id(role="table-csv", table="replication-links"))
        lines = new_download(download_dir, before, ".csv").read_text().splitlines()
        assert lines[0].startswith("module,feature,status")
        assert len(lines) - 1 == card["replicated"]
        select = Select(by_id(browser, dash_id(fig="replication-scorecard", role="export-format")))
        select.select_by_value("svg")
        before = {path.name for path in download_dir.iterdir()}
        click(browser, dash_id(fig="replication-scorecard", role="export-button"))
        svg = new_download(download_dir, before, ".svg").read_bytes()
        assert ElementTree.fromstring(svg).tag.endswith("svg")
        errors = severe_console_errors(browser)
        assert errors == [], errors
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
