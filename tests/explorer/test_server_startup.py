"""A freshly started gunicorn server answers its very first, simultaneous requests.

Dash finishes its one-time set-up (registering its script libraries) on the first request a
process sees; requests arriving at the same moment on other threads of a fresh worker used to
see it half done and get HTTP 500 ("dash is not a registered library"), leaving the page on
"Loading..." for good. The burst here is the first traffic the server ever sees: no readiness
probe goes through HTTP before it.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.explorer.dash_client import (
    ROOT,
    free_port,
    gunicorn_command,
    gunicorn_env,
    stop,
)

pytestmark = pytest.mark.slow

BURST = 16


def page_resources(bundle, workdir) -> list[str]:
    """The scripts and styles a browser fetches once it has the page (Dash's first)."""
    from radmap.explorer.app import create_app

    app = create_app(bundle, pins_dir=workdir / "pins", cache_dir=workdir / "cache")
    html = app.server.test_client().get("/").get_data(as_text=True)
    paths = re.findall(r'src="(/_dash-component-suites/[^"]+)"', html)
    assert len(paths) >= 5, html
    return paths


def wait_for_socket(port: int, process: subprocess.Popen, timeout: float = 180) -> None:
    """Wait until the port accepts TCP connections, without sending any HTTP request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} not open after {timeout:.0f} s")


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_simultaneous_first_requests_to_a_fresh_server_all_succeed(
    toy_bundle_path, tmp_path, preload
):
    paths = page_resources(toy_bundle_path, tmp_path / "probe")
    port = free_port()
    command = gunicorn_command(port, workers=1, preload=preload, threads=BURST)
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=gunicorn_env(toy_bundle_path, tmp_path),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_socket(port, process)
        urls = [f"http://127.0.0.1:{port}{path}" for path in (paths * BURST)[:BURST]]
        with ThreadPoolExecutor(max_workers=BURST) as pool:
            statuses = list(pool.map(status_of, urls))
    finally:
        stop(process)
    failed = [(url, status) for url, status in zip(urls, statuses) if status != 200]
    assert not failed, f"{len(failed)} of {BURST} first requests failed: {failed}"
