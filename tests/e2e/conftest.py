"""End-to-end fixtures: the explorer on a toy bundle, served on 127.0.0.1, driven by Chromium.

The app runs in a background thread (werkzeug, threaded) on a free port; the browser is
Debian's ``/usr/bin/chromium`` through ``/usr/bin/chromedriver`` (never a downloaded one),
headless, with a fresh profile and a download directory the tests read back.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from radmap.analysis.io import save_bundle

from tests.explorer.conftest import make_toy_adata, toy_gene_sets

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,1000",
)
# Messages that are not errors of the app: Chromium's software-WebGL notices.
IGNORED_CONSOLE = ("WebGL", "GL Driver", "swiftshader", "GPU stall")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def toy_bundle(e2e_root) -> tuple[Path, dict]:
    adata = make_toy_adata()
    bundle = e2e_root / "toy.h5ad"
    save_bundle(adata, bundle)
    return bundle, toy_gene_sets(adata)


def serve(app) -> Iterator[str]:
    """Serve the Dash ``app`` on a free 127.0.0.1 port in a thread; yields the base URL."""
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="radmap-e2e", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="session")
def live_server(e2e_root, toy_bundle):
    """Base URL of the explorer serving the toy bundle."""
    from radmap.explorer.app import create_app

    bundle, gene_sets = toy_bundle
    app = create_app(
        bundle, pins_dir=e2e_root / "pins", cache_dir=e2e_root / "cache", gene_sets=gene_sets
    )
    yield from serve(app)


LOGIN = ("ana", "correct horse battery")


@pytest.fixture(scope="session")
def login_server(e2e_root, toy_bundle):
    """Base URL of the explorer on the toy bundle with a login (user and password: LOGIN)."""
    from radmap.explorer.app import create_app
    from radmap.explorer.auth import add_user

    users = e2e_root / "users.txt"
    add_user(users, *LOGIN)
    bundle, gene_sets = toy_bundle
    root = e2e_root / "with-login"
    app = create_app(
        bundle,
        pins_dir=root / "pins",
        cache_dir=root / "cache",
        gene_sets=gene_sets,
        users_file=users,
    )
    yield from serve(app)


@pytest.fixture(scope="session")
def download_dir(e2e_root) -> Path:
    path = e2e_root / "downloads"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def browser(download_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("e2e tests need Debian's chromium and chromium-driver (apt-get install)")
    profile = tempfile.mkdtemp(prefix="radmap-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(download_dir), "eventsEnabled": True},
    )
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def script_in_new_pages(driver, source: str) -> Iterator[None]:
    """Run the script ``source`` first in every page ``driver`` opens, until the block ends."""
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
    try:
        yield
    finally:
        driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
        )


def severe_console_errors(driver) -> list[str]:
    """SEVERE browser console entries since the last call, minus known Chromium noise."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
        and not any(text in entry["message"] for text in IGNORED_CONSOLE)
    ]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, keep a screenshot and the page HTML next to the downloads for debugging."""
    outcome = yield
    report = outcome.get_result()
    driver = item.funcargs.get("browser") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and driver is not None:
        folder = Path(tempfile.gettempdir()) / "radmap-e2e-failures"
        folder.mkdir(exist_ok=True)
        driver.save_screenshot(str(folder / f"{item.name}.png"))
        (folder / f"{item.name}.html").write_text(driver.page_source)
        report.sections.append(("e2e", f"screenshot and HTML in {folder}"))


@pytest.fixture(scope="session")
def wide_server(e2e_root):
    """Base URL of the explorer on a toy bundle with 120 radiomic features (long names)."""
    from radmap.explorer.app import create_app

    adata = make_toy_adata(n_radiomic=120, seed=1)
    root = e2e_root / "wide"
    root.mkdir()
    bundle = root / "wide.h5ad"
    adata.write_h5ad(bundle)
    app = create_app(
        bundle, pins_dir=root / "pins", cache_dir=root / "cache", gene_sets=toy_gene_sets(adata)
    )
    yield from serve(app)
