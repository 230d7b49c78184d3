"""The explorer under gunicorn (2 workers) on 127.0.0.1: many sessions at once, faults.

Each simulated session has its own URL state (page, gene, feature, q) and sends what the
browser sends. Every concurrent response must equal the response to the same request made
alone (no state leaking between sessions or workers); pins written by sessions at the same
time must all be kept; killing the whole server (SIGKILL, workers and the export's browser
included) during an export or during pin writes must lose no acknowledged pin and leave no
corrupt or temporary file, and the restarted server must work.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.explorer.dash_client import (
    ROOT,
    HttpApp,
    free_port,
    gunicorn,
    gunicorn_command,
    gunicorn_env,
    id_text,
    percentile,
    start_gunicorn,
    stop,
    wait_ready,
)

pytestmark = pytest.mark.slow

N_SESSIONS = 8
ROUNDS = 4
PINS_PER_SESSION = 3
KM = {"fig": "gene-km"}
CONNECTION_LOST = (OSError, http.client.HTTPException)


def state(page: str, key: str, prop: str = "value") -> str:
    return f"{id_text({'key': key, 'page': page, 'role': 'state'})}.{prop}"


def session_requests(gene: str, feature: str, q: float) -> dict[str, tuple[str, dict, list]]:
    """One session's requests: name -> (callback fragment, values, changed props)."""
    gene_url = {"pathname": "/gene", "search": f"?gene={gene}&feature={feature}&q={q}"}
    volcano_url = {"pathname": "/volcano", "search": f"?feature={feature}&gene={gene}&q={q}"}
    return {
        "route gene": (
            "page-content.children",
            {"route-request.data": gene_url},
            ["route-request.data"],
        ),
        "route volcano": (
            "page-content.children",
            {"route-request.data": volcano_url},
            ["route-request.data"],
        ),
        "header": (
            "header-update.data",  # the header callback (the controls' write also has it)
            {"header-request.data": gene_url},
            ["header-request.data"],
        ),
        "gene view": (
            "gene-note.children",
            {state("gene", "gene"): gene, state("gene", "q"): q},
            None,
        ),
        "phenotype": (
            '"gene-phenotype","role":"graph"}.figure',
            {
                state("gene", "gene"): gene,
                state("gene", "feature"): feature,
                state("gene", "color"): "EGFR",
            },
            None,
        ),
    }


@pytest.fixture(scope="module")
def sessions(toy_data):
    genes = [f"GENE{index:05d}" for index in range(10, 10 + N_SESSIONS)]
    assert set(genes) <= set(toy_data.genes)
    features = toy_data.gene_features
    return [
        {
            "gene": gene,
            "feature": features[index % len(features)],
            "q": round(0.011 * (index + 1), 3),  # never the default 0.05
        }
        for index, gene in enumerate(genes)
    ]


@pytest.fixture(scope="module")
def server(toy_bundle_path, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gunicorn")
    with gunicorn(toy_bundle_path, workdir) as app:
        app.workdir = workdir
        yield app


def test_concurrent_sessions_get_their_own_responses(server, sessions, record_property):
    requests = {
        (index, name): request
        for index, session in enumerate(sessions)
        for name, request in session_requests(**session).items()
    }
    alone = {}
    for key, (fragment, values, changed) in requests.items():
        status, body, _ = server.call(fragment, values, changed=changed)
        assert status == 200, (key, body)
        alone[key] = body

    def run_session(index: int) -> list[tuple]:
        outcomes = []
        for _ in range(ROUNDS):
            for name in session_requests(**sessions[index]):
                fragment, values, changed = requests[(index, name)]
                status, body, seconds = server.call(fragment, values, changed=changed)
                outcomes.append((index, name, status, body, seconds))
        return outcomes

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=N_SESSIONS) as pool:
        outcomes = [o for result in pool.map(run_session, range(N_SESSIONS)) for o in result]
    elapsed = time.perf_counter() - started

    assert len(outcomes) == N_SESSIONS * ROUNDS * 5
    errors = [(i, name, status) for i, name, status, _, _ in outcomes if status != 200]
    assert not errors
    mismatched = [(i, name) for i, name, _, body, _ in outcomes if body != alone[(i, name)]]
    assert not mismatched, f"responses differing from the same request made alone: {mismatched}"
    for index, session in enumerate(sessions):
        routed = alone[(index, "route gene")]["response"]
        assert routed["shown-url"]["data"]["search"].startswith(f"?gene={session['gene']}&")
        assert f'"{session["gene"]}"' in json.dumps(routed["page-content"])
        others = {s["gene"] for s in sessions} - {session["gene"]}
        header = json.dumps(alone[(index, "header")]["response"])
        assert f"q={session['q']}" in header and not any(gene in header for gene in others)
    assert len({json.dumps(alone[(i, "gene view")]) for i in range(N_SESSIONS)}) == N_SESSIONS

    times = [seconds * 1000 for *_, seconds in outcomes]
    record_property("figure:sessions", f"{N_SESSIONS} concurrent, {len(outcomes)} requests")
    record_property("figure:p50_ms", round(percentile(times, 50), 1))
    record_property("figure:p95_ms", round(percentile(times, 95), 1))
    record_property("figure:requests_per_s", round(len(outcomes) / elapsed, 1))


def pin_through_app(app: HttpApp, gene: str, feature: str, note: str) -> tuple[int, dict | None]:
    """Press Pin on a gene view, then save the drafted pin with ``note``, as a browser does."""
    search = f"?gene={gene}&feature={feature}"
    status, body, _ = app.call(
        "pin-draft.data",
        {
            '{"role":"pin","view":["ALL"]}.n_clicks': [
                {"id": {"role": "pin", "view": "gene"}, "value": 1}
            ],
            "url.pathname": "/gene",
            "url.search": search,
            "url.href": f"{app.base}/gene{search}",
        },
    )
    if status != 200:
        return status, body
    draft = body["response"]["pin-draft"]["data"]
    assert draft == {"url": f"/gene{search}"}, "the browser keeps only the view URL"
    status, body, _ = app.call(
        "pin-toast.children",
        {
            "pin-save-new.n_clicks": 1,
            "pin-draft.data": draft,
            "pin-note-input.value": note,
            "pins-version.data": 0,
        },
    )
    return status, body


def listed_notes(app: HttpApp) -> list[str]:
    """Notes of the pins the Hypotheses page lists."""
    status, body, _ = app.call("pins-list.children", {"pins-version.data": 1})
    assert status == 200, body
    text = json.dumps(body["response"]["pins-list"]["children"])
    return [
        card["props"]["value"]
        for card in _walk(body["response"]["pins-list"]["children"])
        if isinstance(card, dict) and card.get("type") == "Textarea"
    ] or ([] if "No hypotheses yet" in text else ["<unparsed>"])


def _walk(node):
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, dict):
        yield node
        children = node.get("props", {}).get("children")
        if children is not None:
            yield from _walk(children)


def test_sessions_pinning_at_the_same_time_lose_nothing(server, sessions):
    before = listed_notes(server)

    def pin_many(index: int) -> list[str]:
        session = sessions[index]
        saved = []
        for k in range(PINS_PER_SESSION):
            note = f"session {index} pin {k}: <b>{session['gene']}</b> & ground-glass"
            status, body = pin_through_app(server, session["gene"], session["feature"], note)
            assert status == 200, body
            assert body["response"]["pin-toast"]["children"].startswith("Pinned: ")
            saved.append(note)
        return saved

    with ThreadPoolExecutor(max_workers=N_SESSIONS) as pool:
        saved = [note for notes in pool.map(pin_many, range(N_SESSIONS)) for note in notes]

    notes = listed_notes(server)
    assert sorted(notes) == sorted(before + saved)
    on_disk = json.loads(next((server.workdir / "pins").glob("pins-*.json")).read_text())
    assert sorted(pin["note"] for pin in on_disk["pins"]) == sorted(before + saved)
    assert not list((server.workdir / "pins").glob(".pins-*")), "temporary files left"


def _pin_files_are_sound(pins_dir) -> dict:
    files = {path.name: path for path in pins_dir.iterdir()}
    assert not [name for name in files if name.startswith(".")], f"temporaries: {list(files)}"
    assert not [name for name in files if ".corrupt-" in name], list(files)
    for name, path in files.items():
        if name.endswith((".json", ".json.bak")):
            document = json.loads(path.read_text())
            assert isinstance(document["pins"], list), name
    return files


def test_killing_the_server_during_pin_writes_loses_no_acknowledged_pin(
    toy_bundle_path, sessions, tmp_path
):
    app = start_gunicorn(toy_bundle_path, tmp_path)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop_writing = threading.Event()

    def writer(index: int) -> None:
        session = sessions[index]
        k = 0
        while not stop_writing.is_set():
            note = f"writer {index} pin {k}"
            try:
                status, body = pin_through_app(app, session["gene"], session["feature"], note)
            except CONNECTION_LOST:
                return  # the server died under this request
            if status == 200 and body["response"]["pin-toast"]["is_open"]:
                with lock:
                    acknowledged.append(note)
            k += 1

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(writer, index) for index in range(4)]
            deadline = time.monotonic() + 60
            while len(acknowledged) < 12 and time.monotonic() < deadline:
                time.sleep(0.05)
            stop(app.process, signal.SIGKILL)
            stop_writing.set()
            for future in futures:
                future.result(timeout=120)
    finally:
        stop(app.process, signal.SIGKILL)
    assert len(acknowledged) >= 12, "the writers did not get going"

    with gunicorn(toy_bundle_path, tmp_path) as restarted:
        kept = listed_notes(restarted)
        missing = sorted(set(acknowledged) - set(kept))
        assert not missing, f"acknowledged pins lost: {missing}"
        assert len(kept) == len(set(kept)), "a pin was stored twice"
        status, _ = pin_through_app(restarted, sessions[0]["gene"], sessions[0]["feature"], "after")
        assert status == 200
        assert listed_notes(restarted).count("after") == 1
    files = _pin_files_are_sound(tmp_path / "pins")
    assert any(name.endswith(".json") for name in files)


def _export_browser_running(server_pid: int) -> bool:
    """Whether a worker of the server has started the export's Chromium."""
    import psutil

    for process in psutil.Process(server_pid).children(recursive=True):
        try:
            if "chrom" in process.name().lower():
                return True
        except psutil.Error:  # it ended while we looked
            continue
    return False


def export_values(figure: dict, fmt: str) -> dict:
    fig = {"fig": "gene-km"}
    return {
        id_text({**fig, "role": "export-button"}) + ".n_clicks": 1,
        id_text({**fig, "role": "export-format"}) + ".value": fmt,
        id_text({**fig, "role": "export-width"}) + ".value": "single",
        id_text({**fig, "role": "graph"}) + ".figure": figure,
        "url.pathname": "/gene",
        "url.search": "?gene=EGFR",
        "url.href": "http://127.0.0.1/gene?gene=EGFR",
    }


def test_killing_the_server_during_an_export_keeps_pins_and_exports_after_restart(
    toy_bundle_path, sessions, tmp_path
):
    app = start_gunicorn(toy_bundle_path, tmp_path)
    try:
        notes = [f"before the crash {k}" for k in range(3)]
        for note in notes:
            status, _ = pin_through_app(app, "EGFR", sessions[0]["feature"], note)
            assert status == 200
        status, body, _ = app.call(
            'gene-km","role":"graph"}.figure',
            {
                state("gene", "gene"): "EGFR",
                state("gene", "split"): "median",
                state("gene", "cut"): None,
                id_text({"key": "subset", "page": "gene", "role": "state-store"}) + ".data": None,
            },
        )
        figure = body["response"]['{"fig":"gene-km","role":"graph"}']["figure"]

        results = []

        def export() -> None:
            try:
                results.append(app.call("export-download", export_values(figure, "pdf"), match=KM))
            except CONNECTION_LOST as error:
                results.append(error)

        exporter = threading.Thread(target=export)
        exporter.start()
        deadline = time.monotonic() + 60
        while not _export_browser_running(app.process.pid):  # kill mid-export, not before
            assert time.monotonic() < deadline and not results, results
            time.sleep(0.05)
        assert not results, "the export finished before the kill; nothing was tested"
        stop(app.process, signal.SIGKILL)
        exporter.join(60)
        assert results and isinstance(results[0], CONNECTION_LOST), results
    finally:
        stop(app.process, signal.SIGKILL)

    with gunicorn(toy_bundle_path, tmp_path) as restarted:
        assert sorted(listed_notes(restarted)) == sorted(notes)
        status, body, _ = restarted.call("export-download", export_values(figure, "svg"), match=KM)
        assert status == 200, body
        download = body["response"]['{"fig":"gene-km","role":"export-download"}']["data"]
        assert download["filename"].endswith(".svg")
    _pin_files_are_sound(tmp_path / "pins")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an h5ad file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "not an h5ad file"),
    ],
    ids=["empty", "foreign"],
)
def test_gunicorn_refuses_a_bad_bundle_with_one_line(tmp_path, content, message):
    bundle = tmp_path / "study bundle.h5ad"
    bundle.write_bytes(content)
    env = gunicorn_env(bundle, tmp_path)
    completed = subprocess.run(
        gunicorn_command(free_port()),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 4
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, completed.stderr
    assert errors[0].startswith("radmap: error: study bundle.h5ad")
    assert message in errors[0]


def test_radmap_serve_runs_preloaded_workers_and_stops_on_ctrl_c(toy_bundle_path, tmp_path):
    import psutil

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "radmap.cli", "serve", str(toy_bundle_path), "--port", str(port),
         "--pins-dir", str(tmp_path / "pins")],
        cwd=ROOT,
        env=os.environ | {"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/gene?gene=EGFR", process, timeout=120)
        deadline = time.monotonic() + 60  # the second worker may still be forking
        while len(workers := psutil.Process(process.pid).children()) < 2:
            assert time.monotonic() < deadline, workers
            time.sleep(0.1)
        assert len(workers) == 2
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        stop(process, signal.SIGKILL)
    assert process.returncode == 0, stderr
    assert f"serving {toy_bundle_path} at http://127.0.0.1:{port}" in stderr
    assert "development server" not in stderr and "Traceback" not in stderr
    assert not any(worker.is_running() for worker in workers)
    assert not (tmp_path / ".gunicorn").exists(), "no control socket in the user's home"
