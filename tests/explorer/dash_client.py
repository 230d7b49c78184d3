"""Talk to a running explorer the way the Dash renderer does, and run it under gunicorn.

Used by the app tests (Flask test client), the multi-user and fault tests (real gunicorn)
and ``benchmarks/bench_app.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def component_id(text: str) -> str | dict:
    """A component id from its string form in the callback map (dict ids are JSON)."""
    return json.loads(text) if text.startswith("{") else text


def id_text(component: str | dict) -> str:
    """The string form of a component id, as Dash writes it in ``changedPropIds``."""
    if isinstance(component, str):
        return component
    return json.dumps(component, sort_keys=True, separators=(",", ":"))


def _concrete(component: str | dict, match: Mapping[str, object]) -> str | dict:
    if isinstance(component, dict):
        return {k: match.get(k, v) if v == ["MATCH"] else v for k, v in component.items()}
    return component


def output_specs(key: str, match: Mapping[str, object] | None = None) -> list[dict] | dict:
    """The ``outputs`` of a request for the callback ``key`` (MATCH ids made concrete)."""
    match = match or {}

    def one(spec: str) -> dict:
        component, _, prop = spec.split("@")[0].rpartition(".")
        return {"id": _concrete(component_id(component), match), "property": prop}

    if key.startswith(".."):
        return [one(part) for part in key.strip(".").split("...")]
    return one(key)


def callback_body(
    spec: Mapping,
    key: str,
    values: Mapping[str, object],
    *,
    changed: list[str] | None = None,
    match: Mapping[str, object] | None = None,
) -> dict:
    """The JSON body of ``POST /_dash-update-component`` for the callback ``key``.

    Parameters
    ----------
    spec
        The callback's entry in ``app.callback_map`` (or ``/_dash-dependencies``).
    key
        The callback's output key.
    values
        ``"id.prop"`` -> value for its inputs and states. For a pattern-matching input
        (``ALL``), the value is a list of ``{"id": concrete id, "value": value}``.
    changed
        ``changedPropIds``; default: the first input.
    match
        Values of the ``MATCH`` wildcards, e.g. ``{"fig": "gene-km"}``; ``values`` then uses
        the concrete ids.
    """
    match = match or {}

    def entries(items):
        out = []
        for item in items:
            concrete = _concrete(component_id(item["id"]), match)
            value = values.get(f"{id_text(concrete)}.{item['property']}")
            if '["ALL"]' in item["id"]:
                value = values.get(f"{item['id']}.{item['property']}")
                out.append(
                    [
                        {"id": one["id"], "property": item["property"], "value": one["value"]}
                        for one in value or []
                    ]
                )
            else:
                out.append({"id": concrete, "property": item["property"], "value": value})
        return out

    inputs = entries(spec["inputs"])
    if changed is None:
        first = inputs[0][0] if isinstance(inputs[0], list) else inputs[0]
        changed = [f"{id_text(first['id'])}.{first['property']}"]
    return {
        "output": key,
        "outputs": output_specs(key, match),
        "inputs": inputs,
        "state": entries(spec["state"]),
        "changedPropIds": changed,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HttpApp:
    """A running explorer reached over HTTP on 127.0.0.1."""

    base: str
    process: subprocess.Popen
    callbacks: dict

    def find(self, fragment: str) -> str:
        """The callback output key ``fragment``, else the one key containing it; of several,
        the one with the fewest outputs (the output's own callback, not a page callback that
        also writes it)."""
        if fragment in self.callbacks:
            return fragment
        matches = [key for key in self.callbacks if fragment in key]
        outputs = sorted((key.count("...") + 1, key) for key in matches)
        if not outputs or (len(outputs) > 1 and outputs[0][0] == outputs[1][0]):
            raise LookupError(f"{fragment!r} matches {matches}")
        return outputs[0][1]

    def post(self, body: dict, *, timeout: float = 120) -> tuple[int, dict | None, float]:
        """POST one callback request; (status, JSON or None, seconds)."""
        request = urllib.request.Request(
            self.base + "/_dash-update-component",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        seconds = time.perf_counter() - started
        return status, (json.loads(raw) if raw.startswith(b"{") else None), seconds

    def call(
        self,
        fragment: str,
        values: Mapping[str, object],
        *,
        changed: list[str] | None = None,
        match: Mapping[str, object] | None = None,
    ) -> tuple[int, dict | None, float]:
        """Run the callback whose output key contains ``fragment`` (see :func:`callback_body`)."""
        key = self.find(fragment)
        body = callback_body(self.callbacks[key], key, values, changed=changed, match=match)
        return self.post(body)


def wait_ready(url: str, process: subprocess.Popen, timeout: float) -> float:
    """Seconds until ``url`` answers 200; raises if the server dies or never answers."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s")


def gunicorn_command(
    port: int, *, workers: int = 2, timeout: int = 120, preload: bool = True, threads: int = 1
) -> list[str]:
    """The documented gunicorn command line, on 127.0.0.1:``port``.

    ``threads > 1`` uses gunicorn's threaded workers (``gthread``), as ``radmap serve`` does.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        *(["--preload"] if preload else []),
        *(["-k", "gthread", "--threads", str(threads)] if threads > 1 else []),
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--timeout",
        str(timeout),
        "radmap.explorer.app:make_server()",
    ]


def gunicorn_env(bundle: Path, workdir: Path) -> dict[str, str]:
    """The environment of :func:`explorer.app.make_server`: bundle, pins and cache in ``workdir``."""
    return os.environ | {
        "RADMAP_BUNDLE": str(bundle),
        "RADMAP_PINS_DIR": str(workdir / "pins"),
        "RADMAP_CACHE_DIR": str(workdir / "cache"),
        "PYTHONPATH": str(ROOT),
    }


def start_gunicorn(
    bundle: Path, workdir: Path, *, workers: int = 2, port: int | None = None, log=None
) -> HttpApp:
    """Start ``gunicorn -w workers "radmap.explorer.app:make_server()"`` on 127.0.0.1."""
    port = port or free_port()
    env = gunicorn_env(bundle, workdir)
    process = subprocess.Popen(
        gunicorn_command(port, workers=workers),
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/", process, timeout=180)
        with urllib.request.urlopen(base + "/_dash-dependencies", timeout=30) as response:
            dependencies = json.load(response)
    except BaseException:
        stop(process, signal.SIGKILL)
        raise
    return HttpApp(base, process, {item["output"]: item for item in dependencies})


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` to the server's whole process group and wait for it."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


@contextmanager
def gunicorn(bundle: Path, workdir: Path, **options) -> Iterator[HttpApp]:
    """:func:`start_gunicorn` stopped on exit."""
    app = start_gunicorn(bundle, workdir, **options)
    try:
        yield app
    finally:
        stop(app.process)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
