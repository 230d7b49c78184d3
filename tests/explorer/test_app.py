"""The app factory: offline assets, security headers, callback wiring and real requests."""

from __future__ import annotations

import json
import re
import warnings
from types import SimpleNamespace

import pytest
from radmap.explorer import app as app_module
from radmap.explorer.app import content_security_policy, create_app, make_server, run
from radmap.explorer.pages.common import HIDDEN_AT_WIDTH
from threadpoolctl import threadpool_info, threadpool_limits

from tests.explorer.conftest import toy_gene_sets
from tests.explorer.dash_client import callback_body, component_id, output_specs


@pytest.fixture(scope="module")
def app(toy_bundle_path, toy_adata, tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    return create_app(
        toy_bundle_path,
        pins_dir=root / "pins",
        cache_dir=root / "cache",
        gene_sets=toy_gene_sets(toy_adata),
    )


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


def update(client, app, key: str, values: dict, *, changed: list[str] | None = None):
    """POST a callback request like the renderer does; ``values`` maps "id.prop" -> value."""
    body = callback_body(app.callback_map[key], key, values, changed=changed)
    return client.post("/_dash-update-component", json=body)


def _key(app, fragment: str) -> str:
    matches = [key for key in app.callback_map if fragment in key]
    assert len(matches) == 1, matches
    return matches[0]


def test_an_unchanged_script_is_answered_without_reading_it(client, monkeypatch):
    """Scripts Dash loads on first use have no version in their address: every page load
    asks whether they changed, with the tag of the compressed copy it keeps."""
    import pkgutil

    path = "/_dash-component-suites/dash/dcc/async-graph.js"
    first = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    tag = first.headers["ETag"]
    assert tag.endswith(':gzip"')
    reads = []
    read = pkgutil.get_data
    monkeypatch.setattr(pkgutil, "get_data", lambda *args: reads.append(args) or read(*args))
    for sent in (tag, tag.replace(":gzip", "")):
        again = client.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": sent})
        assert again.status_code == 304 and not again.get_data()
        assert again.headers["ETag"] == sent
        assert again.headers["X-Content-Type-Options"] == "nosniff"
    assert reads == [], "the file was read to find it unchanged"
    changed = client.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": '"old"'})
    assert changed.status_code == 200 and len(changed.get_data()) == len(first.get_data())
    assert reads, "a changed file is read and sent"


def test_index_is_served_locally_with_security_headers(client, app):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<title>radmap</title>" in html
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links and all(not link.startswith(("http:", "https:", "//")) for link in links)
    assert "/assets/bootstrap.min.css" in html and "/assets/radmap.css" in html
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["Referrer-Policy"]
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp
    for script_hash in app.csp_hashes():
        assert script_hash in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]


def test_assets_and_component_bundles_are_local(client):
    assert client.get("/assets/bootstrap.min.css").status_code == 200
    assert client.get("/assets/favicon.ico").status_code == 200
    html = client.get("/").get_data(as_text=True)
    for path in re.findall(r'src="(/_dash-component-suites/[^"]+)"', html):
        assert client.get(path).status_code == 200, path


def test_fingerprinted_assets_are_kept_by_the_browser(client):
    html = client.get("/").get_data(as_text=True)
    stylesheets = re.findall(r'href="(/assets/[^"]+\.css\?m=[^"]+)"', html)
    assert stylesheets, "the page links no fingerprinted stylesheet"
    for path in stylesheets:
        cache = client.get(path).headers.get("Cache-Control", "")
        assert "max-age=31536000" in cache, (path, cache)


def test_csp_allows_only_this_origin():
    policy = content_security_policy(["'sha256-abc'"])
    sources = " ".join(part.split(" ", 1)[1] for part in policy.split("; "))
    assert "http" not in sources
    assert "'sha256-abc'" in policy


def _layout_ids(node, found):
    if isinstance(node, dict):
        if "props" in node and isinstance(node["props"], dict):
            if "id" in node["props"]:
                found.append(node["props"]["id"])
            for value in node["props"].values():
                _layout_ids(value, found)
        else:
            for value in node.values():
                _layout_ids(value, found)
    elif isinstance(node, list):
        for item in node:
            _layout_ids(item, found)
    return found


def _matches(pattern, component_id) -> bool:
    if isinstance(pattern, str):
        return pattern == component_id
    if not isinstance(component_id, dict) or set(pattern) != set(component_id):
        return False
    return all(isinstance(v, list) or component_id[k] == v for k, v in pattern.items())


def test_every_callback_id_exists_in_some_page(app):
    layout = json.loads(
        json.dumps(app.validation_layout, cls=__import__("plotly").utils.PlotlyJSONEncoder)
    )
    ids = _layout_ids(layout, [])
    for key, spec in app.callback_map.items():
        outputs = output_specs(key)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for item in [*outputs, *spec["inputs"], *spec["state"]]:
            pattern = item["id"] if isinstance(item["id"], dict) else component_id(item["id"])
            assert any(_matches(pattern, cid) for cid in ids), (key, pattern)


def server_callbacks_on(app, component: dict, prop: str) -> list[str]:
    """Keys of the server callbacks (not answered in the browser) that ``component``'s
    ``prop`` triggers, pattern-matching ones included."""
    found = []
    for key, spec in app.callback_map.items():
        for item in spec["inputs"]:
            pattern = item["id"] if isinstance(item["id"], dict) else component_id(item["id"])
            if item["property"] == prop and _matches(pattern, component):
                found.append(key)
    return [key for key in found if "callback" in app.callback_map[key]]  # not clientside


def test_only_clicks_that_open_another_view_ask_the_server_where_to_go(app):
    heatmap, associations = {"role": "graph", "fig": "map-heatmap"}, "gene-associations"
    # the map's cell click draws its drill-down, and nothing else
    assert len(server_callbacks_on(app, heatmap, "clickData")) == 0
    assert not server_callbacks_on(app, {"role": "table", "table": associations}, "cellClicked")[1:]
    for name in ("volcano", "gene-bar", "map-phenotype", "network"):
        targets = [
            output_specs(key)
            for key in server_callbacks_on(app, {"role": "graph", "fig": name}, "clickData")
        ]
        assert {"id": "url", "property": "href"} in [
            {"id": t["id"], "property": t["property"]} for t in targets if isinstance(t, dict)
        ], name


def test_the_first_html_carries_the_validation_ids_but_no_page_content(client, app, toy_adata):
    html_text = client.get("/volcano").get_data(as_text=True)
    assert len(html_text) < 150_000, "the page's HTML carries the pages' data"
    assert "validation_layout" in html_text, "debug-mode callback validation still has its ids"
    genes = [str(gene) for gene in toy_adata.var_names[:50]]
    assert not any(f'"{gene}"' in html_text for gene in genes), "gene options in the HTML"


def test_routing_request_renders_a_page_from_the_url(client, app):
    key = _key(app, "page-content.children")
    response = update(
        client,
        app,
        key,
        {"route-request.data": {"pathname": "/volcano", "search": "?feature=pack_years&gene=kras"}},
        changed=["route-request.data"],
    )
    assert response.status_code == 200
    payload = response.get_json()["response"]
    page = json.dumps(payload["page-content"]["children"])
    assert '"value": "pack_years"' in page or '"value":"pack_years"' in page
    assert "KRAS" in page
    assert payload["shown-url"]["data"] == {
        "pathname": "/volcano",
        "search": "?feature=pack_years&gene=kras",
    }


def _shown_controls(app, layout) -> dict:
    """The route callback's ALL-pattern states, filled as the browser sends the controls
    of ``layout`` (a page shown)."""
    from radmap.explorer.pages.common import iter_components

    spec = app.callback_map[_key(app, "page-content.children")]
    values = {}
    for item in spec["state"]:
        if '["ALL"]' not in item["id"]:
            continue
        role = json.loads(item["id"])["role"]
        values[f"{item['id']}.{item['property']}"] = [
            {"id": c.id, "value": json.loads(json.dumps(getattr(c, item["property"], None)))}
            for c in iter_components(layout)
            if isinstance(getattr(c, "id", None), dict) and c.id.get("role") == role
        ]
    return values


def test_another_url_of_the_same_page_sets_its_controls_without_a_new_page(client, app, toy_data):
    from radmap.explorer.callbacks.core import route

    shown_search = "?feature=pack_years"
    layout, _ = route(toy_data, "/volcano", shown_search)
    key = _key(app, "page-content.children")
    values = {
        "route-request.data": {"pathname": "/volcano", "search": "?feature=pack_years&y=p"},
        "shown-url.data": {"pathname": "/volcano", "search": shown_search},
        **_shown_controls(app, layout),
    }
    payload = update(client, app, key, values, changed=["route-request.data"]).get_json()
    assert "page-content" not in payload["response"]
    assert payload["response"]["shown-url"]["data"]["search"] == "?feature=pack_years&y=p"
    assert payload["response"]["filling-defaults"]["data"] is True
    side = {json.loads(cid)["key"]: props for cid, props in payload["sideUpdate"].items()}
    assert list(side) == ["y"] and side["y"]["value"] == "p"
    # from another page, or for another subset: the page is rendered
    for shown in ({"pathname": "/gene", "search": ""}, None):
        other = {**values, "shown-url.data": shown}
        payload = update(client, app, key, other, changed=["route-request.data"]).get_json()
        assert "y" in json.dumps(payload["response"]["page-content"]["children"])
        assert "sideUpdate" not in payload
    new_subset = {
        **values,
        "route-request.data": {
            "pathname": "/volcano",
            "search": "?feature=pack_years&subset=stage:I",
        },
    }
    payload = update(client, app, key, new_subset, changed=["route-request.data"]).get_json()
    assert "page-content" in payload["response"] and "sideUpdate" not in payload


def test_the_stores_read_to_draw_are_found_in_the_callbacks(app):
    from radmap.explorer.callbacks.core import read_stores

    read = read_stores(app.callback_map)
    assert {"role": "state-store", "page": "map", "key": "feature"} in read
    assert {"role": "state-store", "page": "volcano", "key": "gene"} in read
    assert all(not isinstance(pattern["key"], list) for pattern in read), "the URL writer"
    assert all(pattern["key"] != "q" for pattern in read)


def test_heatmap_request_returns_a_figure(client, app):
    key = _key(app, '"fig":"map-heatmap","role":"graph"}.figure')
    prefix = '{"key":"%s","page":"map","role":"state"}.value'
    values = {
        prefix % "q": 0.05,
        prefix % "stat": "effect",
        prefix % "sources": [],
        prefix % "groups": [],
        prefix % "min_effect": 0,
        prefix % "rows": "auto",
        prefix % "top": 40,
    }
    response = update(client, app, key, values)
    assert response.status_code == 200
    figure = response.get_json()["response"]['{"fig":"map-heatmap","role":"graph"}']["figure"]
    assert any(trace["type"] == "heatmap" for trace in figure["data"])


def test_a_failing_callback_shows_an_alert_not_a_traceback(client, app):
    figure = '{"fig":"gene-phenotype","role":"graph"}.figure'
    (key,) = [key for key in app.callback_map if key.startswith(figure)]  # its own callback
    prefix = '{"key":"%s","page":"gene","role":"state"}.value'
    response = update(
        client, app, key, {prefix % "gene": "EGFR", prefix % "feature": "no_such_feature"}
    )
    assert response.status_code == 200
    body = response.get_json()
    alert = body["sideUpdate"]["global-alert"]
    assert alert["is_open"] is True
    assert "no_such_feature" in alert["children"]
    assert "Traceback" not in json.dumps(body)


def test_url_base_pathname(toy_bundle_path, tmp_path):
    app = create_app(
        toy_bundle_path,
        pins_dir=tmp_path / "p",
        cache_dir=tmp_path / "c",
        url_base_pathname="/radmap",
    )
    client = app.server.test_client()
    assert client.get("/radmap/").status_code == 200
    assert client.get("/radmap/volcano").status_code == 200
    assert "/radmap/assets/bootstrap.min.css" in client.get("/radmap/").get_data(as_text=True)


def test_make_server_reads_the_environment(toy_bundle_path, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RADMAP_BUNDLE", raising=False)
    with pytest.raises(SystemExit) as stopped:
        make_server()
    assert stopped.value.code == 4
    assert "radmap: error: set RADMAP_BUNDLE" in capsys.readouterr().err
    monkeypatch.setenv("RADMAP_BUNDLE", str(toy_bundle_path))
    monkeypatch.setenv("RADMAP_PINS_DIR", str(tmp_path / "pins"))
    monkeypatch.setenv("RADMAP_CACHE_DIR", str(tmp_path / "cache"))
    before = threadpool_info()
    try:
        server = make_server()
        # one BLAS thread per server process (see one_blas_thread)
        blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas and all(pool["num_threads"] == 1 for pool in blas), blas
    finally:
        threadpool_limits(limits=before)
    assert server.test_client().get("/").status_code == 200
    assert (tmp_path / "cache" / "background").is_dir()
    assert (tmp_path / "pins").is_dir()


def test_run_warns_when_listening_on_every_interface(monkeypatch, toy_bundle_path):
    served = {}

    class FakeServer:
        def __init__(self, server, settings):
            served.update(settings, server=server)

        def run(self):
            served["ran"] = True

    wsgi = object()
    monkeypatch.setattr(app_module, "create_app", lambda *a, **k: SimpleNamespace(server=wsgi))
    monkeypatch.setattr(app_module, "PreloadedServer", FakeServer)
    with pytest.warns(UserWarning, match="no login"):
        run(toy_bundle_path, host="0.0.0.0", port=9999)
    assert served["bind"] == "0.0.0.0:9999" and served["ran"] and served["server"] is wsgi
    assert served["preload_app"] is True and served["workers"] == 2
    with pytest.warns(UserWarning, match="TLS proxy"):
        run(toy_bundle_path, host="::", port=9999, users_file="users.txt")
    assert served["bind"] == "[::]:9999"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(toy_bundle_path, workers=3)
    assert served["bind"] == "127.0.0.1:8050" and served["workers"] == 3


def test_a_damaged_pin_file_is_reported_on_the_hypotheses_page(toy_bundle_path, tmp_path):
    from radmap.explorer.data import BundleData
    from radmap.explorer.hypotheses import PinStore

    store = PinStore(tmp_path / "pins", BundleData(toy_bundle_path).bundle_id)
    store.add({"kind": "gene", "gene": "EGFR", "note": "kept in the backup"})
    store.add({"kind": "gene", "gene": "KRAS", "note": "written just before the crash"})
    store.path.write_text('{"format": 1, "pins": [{"id": "trunc')

    app = create_app(toy_bundle_path, pins_dir=tmp_path / "pins", cache_dir=tmp_path / "cache")
    client = app.server.test_client()
    key = _key(app, "pins-list.children")
    response = update(client, app, key, {"pins-version.data": 1, "pins-list.id": "pins-list"})
    assert response.status_code == 200
    listed = json.dumps(response.get_json()["response"]["pins-list"]["children"])
    assert "restored 1 pins from" in listed and "kept in the backup" in listed
    assert "written just before the crash" not in listed


def test_callback_responses_are_compressed_for_browsers_that_accept_it(client, app):
    key = _key(app, "page-content.children")
    body = callback_body(
        app.callback_map[key],
        key,
        {"route-request.data": {"pathname": "/volcano", "search": "?feature=pack_years"}},
        changed=["route-request.data"],
    )
    plain = client.post("/_dash-update-component", json=body)
    packed = client.post("/_dash-update-component", json=body, headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert len(packed.get_data()) < len(plain.get_data()) / 3
    import gzip

    assert json.loads(gzip.decompress(packed.get_data())) == plain.get_json()


def _layout_page(client, **headers) -> str:
    response = client.get("/_dash-layout", headers=headers)
    assert response.status_code == 200
    return json.dumps(_find(response.get_json(), "page-content"))


def _find(node, component_id: str):
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == component_id:
            return node["props"]
        for value in node.values():
            found = _find(value, component_id)
            if found is not None:
                return found
    if isinstance(node, list):
        for value in node:
            found = _find(value, component_id)
            if found is not None:
                return found
    return None


def test_the_first_layout_carries_the_page_of_the_url_the_browser_opened(client, app):
    response = client.get(
        "/_dash-layout", headers={"Referer": "http://localhost/volcano?feature=pack_years&q=0.1"}
    )
    assert "Referer" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"
    layout = response.get_json()
    page = json.dumps(_find(layout, "page-content"))
    assert '"pack_years"' in page and '"volcano"' in page
    assert _find(layout, "shown-url")["data"] == {
        "pathname": "/volcano",
        "search": "?feature=pack_years&q=0.1",
    }
    assert _find(layout, "header-q")["children"] == "0.1"
    assert _find(layout, "header-shown")["data"]["key"] == "/volcano?q=0.1&subset="
    # the canonical query string is written into the address bar, replacing the entry
    assert _find(layout, "search-update")["data"] == {
        "search": "?q=0.1&feature=pack_years",
        "replace": True,
    }


def test_the_first_layout_is_the_bare_shell_without_a_same_origin_referrer(client, app):
    bare = _find(client.get("/_dash-layout").get_json(), "page-content")
    assert bare.get("children") is None
    foreign = {"Referer": "http://elsewhere.example/volcano?feature=pack_years"}
    assert (
        _find(client.get("/_dash-layout", headers=foreign).get_json(), "page-content").get(
            "children"
        )
        is None
    )
    unknown = _find(
        client.get("/_dash-layout", headers={"Referer": "http://localhost/nowhere"}).get_json(),
        "page-content",
    )
    assert "Page not found" in json.dumps(unknown)


def test_pages_without_an_fdr_control_keep_the_shared_q_in_the_url(client, app):
    for page in ("cohort", "patient", "predict", "replication", "hypotheses"):
        layout = client.get(
            "/_dash-layout", headers={"Referer": f"http://localhost/{page}?q=0.1"}
        ).get_json()
        update = _find(layout, "search-update")["data"]
        search = update["search"] if update else "?q=0.1"
        assert "q=0.1" in search, (page, search)


def test_the_page_asks_for_the_first_layout_and_lazy_scripts_early(client, app):
    html_text = client.get("/gene").get_data(as_text=True)
    head = html_text.split("</head>")[0]
    for path in ("/_dash-layout", "/_dash-dependencies"):
        assert f'<link rel="preload" href="{path}" as="fetch" crossorigin="anonymous">' in head
    scripts = re.findall(r'<link rel="preload" href="([^"]+)" as="script">', head)
    assert len(scripts) == 3
    assert not [script for script in scripts if "plotly" in script]
    for script in scripts:  # each is served (a renamed file in a new Dash would 404)
        assert client.get(script).status_code == 200, script


def page_scripts(client, path: str) -> list[str]:
    """The addresses of the scripts a page loads, in order."""
    return re.findall(r'<script src="([^"]+)"', client.get(path).get_data(as_text=True))


def positions(scripts: list[str], fragment: str) -> list[int]:
    return [i for i, src in enumerate(scripts) if fragment in src]


def test_the_page_loads_radmaps_plotly_js_before_the_graphs_ask_for_one(client, app):
    """The graph takes ``window.Plotly`` when a script has set it, and only otherwise
    fetches Dash's full plotly.js: radmap's build must come before Dash's renderer."""
    scripts = page_scripts(client, "/volcano")
    ours = positions(scripts, "/assets/plotly-radmap.min.js")
    renderer = positions(scripts, "dash_renderer")
    assert len(ours) == 1 and len(renderer) == 1 and ours[0] < renderer[0], scripts
    assert not positions(scripts, "package_data/plotly")
    served = client.get(scripts[ours[0]])
    assert served.status_code == 200 and b"plotly.js v" in served.get_data()[:200]
    assert "max-age=31536000" in served.headers["Cache-Control"]


def test_the_page_loads_without_dashs_polyfill_but_with_regenerator_runtime(client, app):
    """@babel/polyfill 7 (core-js 2) is left out; Dash's lazy loading still needs
    regenerator-runtime, which must come before Dash's renderer."""
    scripts = page_scripts(client, "/gene")
    assert not positions(scripts, "polyfill"), scripts
    assert positions(scripts, "/deps/react@"), "React is still loaded"
    runtime = positions(scripts, "/assets/regenerator-runtime.js")
    renderer = positions(scripts, "dash_renderer")
    assert len(runtime) == 1 and runtime[0] < renderer[0], scripts
    assert b"regeneratorRuntime = runtime" in client.get(scripts[runtime[0]]).get_data()


def test_responses_are_encoded_without_orjson(toy_bundle_path, tmp_path, monkeypatch):
    """plotly's "auto" JSON engine takes orjson when it is installed; its clean-up of the
    figures in Python made radmap's responses 2.5-3x slower to encode, so the app pins the
    standard encoder."""
    import plotly.io as pio

    monkeypatch.setattr(pio.json.config, "_default_engine", "orjson")  # as "auto" with orjson
    create_app(toy_bundle_path, pins_dir=tmp_path / "pins", cache_dir=tmp_path / "cache")
    assert pio.json.config.default_engine == "json"


MAP_CONTROLS = {
    '{"key":"q","page":"map","role":"state"}.value': 0.05,
    '{"key":"stat","page":"map","role":"state"}.value': "effect",
    '{"key":"sources","page":"map","role":"state"}.value': [],
    '{"key":"groups","page":"map","role":"state"}.value': [],
    '{"key":"min_effect","page":"map","role":"state"}.value': 0,
    '{"key":"rows","page":"map","role":"state"}.value': "auto",
    '{"key":"top","page":"map","role":"state"}.value': 40,
    '{"key":"color","page":"map","role":"state"}.value': None,
}
SUBSET = '{"key":"subset","page":"map","role":"state-store"}.data'
COMPARE = '{"key":"compare","page":"map","role":"state-store"}.data'
FEATURE = '{"key":"feature","page":"map","role":"state-store"}.data'
MODULE = '{"key":"module","page":"map","role":"state-store"}.data'


DRILL_REQUEST = "map-drill-request.data"
COMPARE_REQUEST = "map-compare-request.data"


@pytest.mark.parametrize("changed", [SUBSET, '{"key":"q","page":"map","role":"state"}.value'])
def test_hidden_map_panels_are_not_asked_for_when_only_the_map_changes(client, app, changed):
    """A subset or FDR change: the map's answer asks for the drill-down only when a cell is
    chosen and for the comparison only when one is shown (their callbacks are not called
    otherwise, the browser redraws nothing); asked, they answer for the new map in full."""
    values = MAP_CONTROLS | {SUBSET: "stage:II|III", COMPARE: "", FEATURE: None, MODULE: None}
    heatmap = _key(app, "map-heatmap")
    drill = _key(app, "map-drill.style")
    compare = _key(app, "map-compare-panel.style")
    # the panels no longer listen to the map's inputs
    for key in (drill, compare):
        inputs = {f"{item['id']}.{item['property']}" for item in app.callback_map[key]["inputs"]}
        assert changed not in inputs and SUBSET not in inputs, key
    alone = update(client, app, heatmap, values, changed=[changed]).get_json()["response"]
    map_outputs = {'{"fig":"map-heatmap","role":"graph"}', "map-heatmap-box", "map-note"}
    assert set(alone) == map_outputs | {"map-null-badge"}  # the whole cohort's null: not a subset's
    chosen = values | {FEATURE: "original_shape_Sphericity", MODULE: "M1"}
    with_cell = update(client, app, heatmap, chosen, changed=[changed]).get_json()["response"]
    assert "map-drill-request" in with_cell and "map-compare-request" not in with_cell
    compared = values | {COMPARE: "stage:I"}
    with_compare = update(client, app, heatmap, compared, changed=[changed]).get_json()
    assert "map-compare-request" in with_compare["response"]
    assert "map-drill-request" not in with_compare["response"]

    request = with_cell["map-drill-request"]["data"]
    shown = update(client, app, drill, chosen | {DRILL_REQUEST: request}, changed=[DRILL_REQUEST])
    assert shown.status_code == 200
    panel = shown.get_json()["response"]
    assert panel["map-drill"]["style"] == {"display": "block"}
    whole = chosen | {SUBSET: "", DRILL_REQUEST: request}
    cohort = update(client, app, drill, whole, changed=[DRILL_REQUEST]).get_json()["response"]
    assert panel["map-drill-stats"] != cohort["map-drill-stats"]  # computed on the subset
    gone = update(client, app, drill, values | {DRILL_REQUEST: request}, changed=[DRILL_REQUEST])
    assert gone.status_code == 204  # the cell was closed before the request came
    closed = update(client, app, drill, values, changed=[FEATURE])
    assert closed.status_code == 200
    assert closed.get_json()["response"]["map-drill"]["style"] == HIDDEN_AT_WIDTH

    request = with_compare["response"]["map-compare-request"]["data"]
    both = update(
        client, app, compare, compared | {COMPARE_REQUEST: request}, changed=[COMPARE_REQUEST]
    )
    assert both.status_code == 200
    assert both.get_json()["response"]["map-compare-panel"]["style"] == {"display": "block"}
    hidden = update(client, app, compare, values, changed=[COMPARE])
    assert hidden.status_code == 200
    assert hidden.get_json()["response"]["map-compare-panel"]["style"] == HIDDEN_AT_WIDTH


def test_a_new_subset_comes_with_its_banner_in_the_urls_write(client, app):
    """The controls' write (new query string, header) also names a new subset in the
    page's banner: no callback of its own; other changes leave the banner alone."""
    key = _key(app, "search-update.data")
    stores = app.callback_map[key]["inputs"][1]
    controls = app.callback_map[key]["inputs"][0]

    def write(subset: str, changed: str, *, filling: bool = False):
        values = {
            f"{controls['id']}.value": [
                {"id": {"key": "q", "page": "map", "role": "state"}, "value": 0.05}
            ],
            f"{stores['id']}.data": [
                {"id": {"key": "subset", "page": "map", "role": "state-store"}, "value": subset},
                {"id": {"key": "compare", "page": "map", "role": "state-store"}, "value": ""},
            ],
            "url.pathname": "/map",
            "url.search": "",
            "filling-defaults.data": filling,
        }
        body = callback_body(app.callback_map[key], key, values, changed=[changed])
        body["outputs"][-1] = [
            {"id": {"page": "map", "role": "subset-banner"}, "property": "children"}
        ]
        response = client.post("/_dash-update-component", json=body)
        assert response.status_code == 200
        return response.get_json()["response"]

    named = write("stage:II|III", SUBSET)
    assert named["search-update"]["data"]["search"] == "?subset=stage%3AII%7CIII"
    banner = json.dumps(named['{"page":"map","role":"subset-banner"}']["children"])
    assert "subset: stage" in banner and "n = " in banner
    assert "subset-banner" not in json.dumps(
        list(write("", '{"key":"q","page":"map","role":"state"}.value'))
    )
    assert "subset-banner" not in json.dumps(list(write("stage:I", SUBSET, filling=True)))
