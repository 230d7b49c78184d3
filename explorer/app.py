"""The radmap explorer: a Dash app over one bundle.

Run it locally::

    python -m radmap.explorer.app path/to/bundle.h5ad          # or radmap's CLI

or behind gunicorn (several workers share nothing but the disk caches)::

    RADMAP_BUNDLE=path/to/bundle.h5ad gunicorn --preload -w 2 -b 127.0.0.1:8050 \
        "radmap.explorer.app:make_server()"

Environment variables read by :func:`make_server`: ``RADMAP_BUNDLE`` (required),
``RADMAP_PINS_DIR``, ``RADMAP_CACHE_DIR``, ``RADMAP_URL_BASE`` and ``RADMAP_USERS_FILE``
(see :func:`create_app`).

Everything is served from this machine: Dash, AG Grid, plotly.js and the Bootstrap CSS — no
CDN, so the app works offline. plotly.js is radmap's own build with only the trace types its
figures draw (``assets/plotly-radmap.min.js``, 1.5 MB instead of 4.8 MB; built by
``tools/plotly-bundle``); Bootstrap is ``assets/bootstrap.min.css`` (Bootstrap 5.3, MIT).
Dash's @babel/polyfill is left out (:class:`Explorer`).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import dash
import dash_bootstrap_components as dbc
import plotly.io
from dash import dcc, html
from gunicorn.app.base import BaseApplication

from . import assets_dir
from .callbacks import AppContext, register_callbacks
from .callbacks.core import first_view, handle_error, header_shown
from .callbacks.pins import pin_cards
from .data import BundleData
from .pages import dataset_header, navbar, page_layout
from .pages.common import iter_components
from .pages.help import help_panel
from .state import PAGES, ViewState

if TYPE_CHECKING:
    import anndata

logger = logging.getLogger("radmap")

BUNDLE_ENV = "RADMAP_BUNDLE"
PINS_ENV = "RADMAP_PINS_DIR"
CACHE_ENV = "RADMAP_CACHE_DIR"
URL_BASE_ENV = "RADMAP_URL_BASE"
USERS_ENV = "RADMAP_USERS_FILE"
BACKGROUND_EXPIRE_S = 24 * 3600
MAX_REQUEST_BYTES = 32 * 2**20  # the largest figure a browser sends back for export is ~5 MB
APP_LOAD_ERROR = 4  # gunicorn's exit code for "App failed to load": it halts, no respawn
PUBLIC_HOSTS = ("0.0.0.0", "::", "[::]", "")


ASSET_MAX_AGE_S = 365 * 24 * 3600
"""How long browsers keep the app's stylesheets and scripts (their URLs change with them)."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/radmap`` (``~/.cache/radmap``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "radmap"


def default_pins_dir() -> Path:
    """``$XDG_DATA_HOME/radmap/pins`` (``~/.local/share/radmap/pins``)."""
    root = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(root) / "radmap" / "pins"


def content_security_policy(script_hashes: Sequence[str]) -> str:
    """A CSP that Dash, plotly.js and AG Grid work under, with nothing loaded from elsewhere.

    Scripts: own origin plus the hashes of Dash's inline scripts; ``'unsafe-eval'`` because
    plotly's WebGL traces (``scattergl``, used by the volcano) compile shaders with
    ``Function``. Styles: inline styles are needed by Dash components, plotly and AG Grid.
    """
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-eval'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'self'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def add_security_headers(server, *, script_hashes: Sequence[str]) -> None:
    """Set security headers on every response of the Flask ``server``."""
    policy = content_security_policy(script_hashes)
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Content-Security-Policy": policy,
    }

    @server.after_request
    def _security_headers(response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response


EARLY_FETCHES = ("_dash-layout", "_dash-dependencies")
"""What the renderer fetches once its scripts have run: asked for with the page instead."""
EARLY_SCRIPTS = (
    "_dash-component-suites/dash/dcc/async-graph.js",
    "_dash-component-suites/dash/dcc/async-dropdown.js",
    "_dash-component-suites/dash_ag_grid/async-community.js",
)
"""Scripts loaded on first use of a graph, dropdown or grid (every page has them). plotly.js
is not among them: the page loads radmap's build as an asset, and the graph takes that
``window.Plotly`` instead of fetching Dash's full plotly.js."""


def index_page(base: str) -> str:
    """Dash's page, which also asks for the first layout, the callback list and the lazily
    loaded scripts while the browser is still running the app's scripts (~300 ms), instead
    of one after the other once they have run."""
    early = "\n".join(
        [
            *(
                f'<link rel="preload" href="{base}{path}" as="fetch" crossorigin="anonymous">'
                for path in EARLY_FETCHES
            ),
            *(f'<link rel="preload" href="{base}{path}" as="script">' for path in EARLY_SCRIPTS),
        ]
    )
    return dash.Dash().index_string.replace("{%css%}", "{%css%}\n" + early, 1)


LEGACY_POLYFILL = "/deps/polyfill@"
"""Dash's first script, @babel/polyfill 7 (core-js 2), which the page does without."""


class Explorer(dash.Dash):
    """Dash, with the page's scripts less @babel/polyfill 7.

    The polyfill (core-js 2 with regenerator-runtime) is for browsers older than any that
    runs radmap's scripts. It cost every page load ~45 ms of feature tests at start-up and
    replaced the browser's ``trim``, ``parseFloat`` and ``setImmediate`` with slower
    versions. Dash's lazy loading still calls ``regeneratorRuntime``: the page loads
    regenerator-runtime alone (``assets/regenerator-runtime.js``, 0.14.1, MIT).
    """

    def interpolate_index(self, **kwargs):
        scripts = kwargs.get("scripts", "")
        kwargs["scripts"] = "\n".join(
            line for line in scripts.split("\n") if LEGACY_POLYFILL not in line
        )
        return super().interpolate_index(**kwargs)


def layout_varies_by_page(server) -> None:
    """Mark the first layout (``/_dash-layout``), which carries the page its ``Referer``
    names, as such: no cache may give it for another page or keep its data."""

    @server.after_request
    def _vary(response):
        from flask import request

        if request.path.endswith("/_dash-layout"):
            response.vary.add("Referer")
            response.headers["Cache-Control"] = "no-store"
        return response


def answer_unchanged_scripts(server) -> None:
    """Answer a browser's check of an unchanged Dash script (304) before reading the file.

    The scripts Dash loads on first use (the graph, dropdown and grid parts; Dash's
    plotly.js, 4.6 MB, before radmap served its own build) carry no version in their
    address, so every page load asks whether they changed. Dash answers by reading and
    hashing the file, and flask-compress by compressing it before comparing the browser's
    tag (which carries the compression, ``"<tag>:zstd"``, and so never matches Dash's own
    check): plotly.js took 50-140 ms to be found unchanged and came after the page's first
    layout. The tag of each script Dash has served is kept.
    """
    from flask import Response, request

    tags: dict[str, str] = {}

    def is_script(args) -> bool:
        return set(args or ()) == {"package_name", "fingerprinted_path"}

    @server.before_request
    def _unchanged():
        tag = tags.get(request.path)
        if tag is None or request.method not in ("GET", "HEAD"):
            return None
        for sent in request.if_none_match:
            if sent == tag or sent.startswith(tag + ":"):
                unchanged = Response(status=304)
                unchanged.set_etag(sent)
                unchanged.vary.add("Accept-Encoding")
                return unchanged
        return None

    @server.after_request
    def _learn(response):  # runs before flask-compress's hook, which adds the encoding
        if response.status_code == 200 and is_script(request.view_args):
            tag, weak = response.get_etag()
            if tag and not weak:
                tags[request.path] = tag
        return response


def _preload(page) -> html.Div:
    """Hidden instances of the lazily loaded components (dropdown, graph, grid) that the
    first ``page`` shown does not have.

    Dash loads these components' code on first use and React suspends their first render;
    when that first render happens inside a page rendered by a callback, a dropdown can stay
    suspended (blank) for good. Rendering one of each with the first layout resolves them
    once, so that later page renders never suspend.
    """
    import dash_ag_grid as dag

    kinds = {type(component) for component in iter_components(page)}
    missing = [
        make()
        for kind, make in (
            (dcc.Dropdown, lambda: dcc.Dropdown(id="rm-preload-dropdown", options=[])),
            (dcc.Graph, lambda: dcc.Graph(id="rm-preload-graph")),
            (dag.AgGrid, lambda: dag.AgGrid(id="rm-preload-grid", rowData=[], columnDefs=[])),
        )
        if kind not in kinds
    ]
    return html.Div(missing, style={"display": "none"}, **{"aria-hidden": "true"})


def shell(data: BundleData, *, base: str = "/", view: dict | None = None) -> html.Div:
    """The frame around every page: URL, stores, navigation, header, alerts, pin dialog.

    ``view`` (from :func:`callbacks.core.first_view`) fills it for the URL the browser
    opened; without it the browser asks for the page by callback.
    """
    view = view or {}
    header = view.get("header") or {}
    pin_modal = dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Pin this association")),
            dbc.ModalBody(
                [
                    html.Div(id="pin-modal-body", className="mb-2"),
                    dbc.Label("Note", html_for="pin-note-input"),
                    dbc.Textarea(
                        id="pin-note-input",
                        placeholder="Why is this interesting? What would you test next?",
                        maxLength=5000,
                        rows=4,
                    ),
                ]
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="pin-cancel", color="secondary", outline=True),
                    dbc.Button("Save pin", id="pin-save-new", color="primary"),
                ]
            ),
        ],
        id="pin-modal",
        is_open=False,
    )
    toast = dbc.Toast(
        id="pin-toast",
        header="radmap",
        is_open=False,
        dismissable=True,
        duration=4000,
        className="rm-toast",
    )
    footer = html.Footer(
        dbc.Container(
            html.Small(
                [
                    f"Bundle {data.file_name} · sha256 {data.bundle_id[:12]}… · "
                    f"format {data.format_version}",
                ],
                className="text-muted",
            ),
            fluid=True,
        ),
        className="rm-footer",
    )
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Store(id="shown-url", data=view.get("shown")),
            dcc.Store(id="route-request"),
            dcc.Store(id="search-update", data=view.get("search_update")),
            dcc.Store(id="filling-defaults", data=False),
            dcc.Store(id="header-request"),
            dcc.Store(id="header-update"),
            dcc.Store(id="header-shown", data=header_shown(header.get("key"))),
            dcc.Store(id="pins-version", data=0),
            dcc.Store(id="pin-draft"),
            navbar(base=base, hrefs=header.get("hrefs"), active=header.get("active")),
            dataset_header(data.summary(), q=header.get("q")),
            dbc.Container(
                [
                    dbc.Alert(
                        id="global-alert",
                        is_open=False,
                        dismissable=True,
                        color="danger",
                        className="rm-alert mt-3",
                    ),
                    html.Div(view.get("messages"), id="url-messages", className="mt-3"),
                    html.Div(view.get("content"), id="page-content", className="rm-page"),
                ],
                fluid=True,
                className="rm-main",
            ),
            pin_modal,
            help_panel(),
            toast,
            footer,
            _preload(view.get("content")),
        ],
        className="rm-app",
    )


def first_layout(data: BundleData, *, base: str = "/") -> html.Div:
    """The layout the browser fetches first (``/_dash-layout``), with the page of the URL it
    opened already in it.

    The renderer fetches the layout from the page it is on, so the request's ``Referer``
    (sent in full to the same origin, see the ``Referrer-Policy`` header) names that page;
    without one (or outside a request) the shell comes alone and the page is asked for by
    callback.
    """
    from flask import has_request_context, request

    referrer = request.referrer if has_request_context() else None
    if not referrer:
        return shell(data, base=base)
    parts = urlsplit(referrer)
    if (parts.scheme, parts.netloc) != (request.scheme, request.host):
        return shell(data, base=base)
    search = f"?{parts.query}" if parts.query else ""
    return shell(data, base=base, view=first_view(data, parts.path, search, base=base))


def id_skeleton(layout) -> html.Div:
    """Every component of ``layout`` that has an ``id``, side by side, with no other props.

    Dash sends the validation layout to every browser in the page's HTML; the renderer reads
    only its ids and component types (to check callbacks in debug mode), so the pages' options,
    figures and grid rows need not travel (they made the first HTML 2.2 MB on the demo).
    """
    found = []
    for component in iter_components(layout):
        if getattr(component, "id", None) is not None:
            bare = copy.copy(component)
            for name in component._prop_names:
                if name != "id" and hasattr(bare, name):
                    delattr(bare, name)
            found.append(bare)
    return html.Div(found)


def finish_setup(app: dash.Dash) -> None:
    """Run Dash's one-time set-up now, before the server accepts any request.

    Dash registers its script libraries on the first request a process serves, and marks
    itself set up before it has finished; other threads answering at that moment failed
    with "dash is not a registered library" (a blank first page). Done here, it happens in
    the gunicorn master before ``--preload`` forks, or in each worker as it loads the app.
    """
    with app.server.app_context():
        app._setup_server()


def create_app(
    bundle_path: str | Path | anndata.AnnData,
    *,
    pins_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    url_base_pathname: str = "/",
    gene_sets: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    users_file: str | Path | None = None,
    viewer_url: str | None = None,
) -> dash.Dash:
    """Build the explorer for one bundle.

    Parameters
    ----------
    bundle_path
        The bundle (``.h5ad``) written by ``radmap analyze``, or a bundle in memory (the
        AnnData a notebook built with ``radmap.tl``; it is checked like a loaded bundle).
    pins_dir
        Where pinned hypotheses are kept (one JSON file per bundle); default
        :func:`default_pins_dir`.
    cache_dir
        Disk cache for background work (pre-ranked enrichment) and its results; default
        :func:`default_cache_dir`.
    url_base_pathname
        Path prefix when the app is served below the site root (e.g. ``"/radmap/"``).
    gene_sets
        Collection -> term -> genes for live enrichment; default: the collections shipped
        with radmap.
    users_file
        Users file written by ``radmap add-user``; when given, every request needs HTTP basic
        authentication (see :mod:`explorer.auth`).
    viewer_url
        Image viewer address with ``{patient}`` where the patient ID goes; the Patient page
        links to it (default: the template the bundle carries, from ``radmap analyze
        --viewer-url``). Only a link: the explorer never fetches it.

    Returns
    -------
    The Dash app; ``app.server`` is the Flask WSGI application.
    """
    import diskcache

    from .auth import BasicAuth, read_users
    from .hypotheses import PinStore

    # Dash encodes every response with plotly's JSON encoder, which switches to orjson when
    # that is installed; its clean-up of figures in Python made radmap's responses 2.5-3x
    # slower to encode (on M: gene view 3.7 -> 9.5 ms, volcano 32 -> 76, map 14 -> 41).
    plotly.io.json.config.default_engine = "json"
    users = read_users(users_file) if users_file is not None else None
    base = url_base_pathname if url_base_pathname.endswith("/") else url_base_pathname + "/"
    data = BundleData(bundle_path, gene_sets=gene_sets)
    if viewer_url:
        from ..analysis.pipeline import check_viewer_url

        data.viewer_url = check_viewer_url(viewer_url, origin="viewer_url")
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    pins_root = Path(pins_dir) if pins_dir is not None else default_pins_dir()
    cache_root.mkdir(parents=True, exist_ok=True)
    pins_root.mkdir(parents=True, exist_ok=True)
    background = diskcache.Cache(str(cache_root / "background"))
    results = diskcache.Cache(str(cache_root / "results"))
    manager = dash.DiskcacheManager(background, expire=BACKGROUND_EXPIRE_S)
    ctx = AppContext(
        data=data, pins=PinStore(pins_root, data.bundle_id), results=results, base=base
    )
    app = Explorer(
        __name__,
        assets_folder=str(assets_dir()),
        serve_locally=True,
        compress=True,  # flask-compress: callback JSON is mostly repeated names and numbers
        url_base_pathname=base,
        title="radmap",
        update_title=None,
        suppress_callback_exceptions=False,
        background_callback_manager=manager,
        on_error=handle_error,
        external_stylesheets=[],
        external_scripts=[],
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.index_string = index_page(base)
    app.layout = functools.partial(first_layout, data, base=base)
    example_pin = {"id": "example", "kind": "module", "statistics": {}, "note": ""}
    app.validation_layout = id_skeleton(
        [shell(data, base=base), *pin_cards([example_pin])]
        + [page_layout(data, ViewState(page=page), base=base) for page in PAGES]
    )
    register_callbacks(app, ctx, background_manager=manager)
    if users is not None:
        BasicAuth(users, path=users_file).install(app.server)
    add_security_headers(app.server, script_hashes=app.csp_hashes())
    layout_varies_by_page(app.server)
    answer_unchanged_scripts(app.server)
    app.server.config["RADMAP_BUNDLE_ID"] = data.bundle_id
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    # Asset URLs carry their file's modification time (?m=...), so a browser may keep them:
    # the stylesheet was downloaded again before every page was drawn.
    app.server.config["SEND_FILE_MAX_AGE_DEFAULT"] = ASSET_MAX_AGE_S
    finish_setup(app)
    # SQLite connections must not cross a fork (gunicorn --preload forks after this
    # returns); diskcache reopens them on first use in each process.
    background.close()
    results.close()
    logger.info(
        "explorer ready: %s (%s, %d patients, %d genes, %d features)",
        data.file_name,
        data.dataset_name,
        data.summary()["n_patients"],
        data.summary()["n_genes"],
        data.summary()["n_features"],
    )
    return app


def one_blas_thread() -> None:
    """Give this server process's BLAS one thread.

    The explorer answers many small requests (a subset's module map multiplies 8 eigengenes
    by 200 features); BLAS's other threads would only spin after each product, taking a core
    from the browser drawing the previous answer and from the other workers. Its large work
    (a subset's gene map) is split across Python threads already.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def make_server():
    """WSGI application for gunicorn: ``gunicorn --preload "radmap.explorer.app:make_server()"``.

    With ``--preload`` the bundle is loaded once and the workers share it (faster start,
    less memory); without it each worker loads its own copy.

    Reads the bundle path from ``RADMAP_BUNDLE`` and, optionally, ``RADMAP_PINS_DIR``,
    ``RADMAP_CACHE_DIR``, ``RADMAP_URL_BASE`` and ``RADMAP_USERS_FILE``.

    Bad settings or a bad bundle print one ``radmap: error: ...`` line and exit with code 4,
    which gunicorn reads as "the application failed to load" and stops, instead of
    restarting workers that would fail again.
    """
    from ..analysis.validate import InputError

    one_blas_thread()
    try:
        bundle = os.environ.get(BUNDLE_ENV)
        if not bundle:
            raise InputError(
                f"set {BUNDLE_ENV} to the bundle to serve, e.g. "
                f'{BUNDLE_ENV}=study.h5ad gunicorn "radmap.explorer.app:make_server()"'
            )
        app = create_app(
            bundle,
            pins_dir=os.environ.get(PINS_ENV) or None,
            cache_dir=os.environ.get(CACHE_ENV) or None,
            url_base_pathname=os.environ.get(URL_BASE_ENV) or "/",
            users_file=os.environ.get(USERS_ENV) or None,
        )
    except InputError as error:
        print(f"radmap: error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(APP_LOAD_ERROR) from None
    return app.server


class PreloadedServer(BaseApplication):
    """gunicorn around an already built WSGI app: loaded once, then shared by forked workers."""

    def __init__(self, server, settings: Mapping[str, object]) -> None:
        self.server = server
        self.settings = dict(settings)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self):
        return self.server


def run(
    bundle_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    workers: int = 2,
    debug: bool = False,
    ready: Callable[[str], None] | None = None,
    **options,
) -> None:
    """Serve the explorer with gunicorn (``workers`` processes sharing the loaded bundle).

    ``host="0.0.0.0"`` (or ``"::"``) exposes the app to the whole network: a warning says
    so, and says to add a login (``users_file``) when there is none. ``debug=True`` uses
    Dash's development server with its debugger instead (never on a shared machine).
    ``ready`` is called with the explorer's URL once the app is built (a bad bundle or users
    file fails before that, and before any server starts). ``options`` go to
    :func:`create_app`.
    """
    if host in PUBLIC_HOSTS:
        where = f"radmap explorer listening on {host or 'all interfaces'}"
        if options.get("users_file"):
            message = (
                f"{where}: anyone who can reach this machine can try to log in, and basic "
                "authentication sends passwords in clear text; serve it behind a TLS proxy."
            )
        else:
            message = (
                f"{where}: anyone who can reach this machine can open it, and it has no login. "
                "Use 127.0.0.1 unless you mean it, or add logins with `--users FILE`."
            )
        warnings.warn(message, stacklevel=2)
        logger.warning(message)
    one_blas_thread()
    app = create_app(bundle_path, **options)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if ready is not None:
        ready(f"http://{address}")
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    settings = {
        "bind": address,
        "workers": workers,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 120,
        "preload_app": True,
        "loglevel": "warning",
        "control_socket_disable": True,  # gunicorn >= 27 would open one in the home folder
    }
    PreloadedServer(app.server, settings).run()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m radmap.explorer.app BUNDLE [--host H] [--port P]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m radmap.explorer.app", description=run.__doc__)
    parser.add_argument("bundle", help="bundle (.h5ad) written by `radmap analyze`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--pins-dir", default=None)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--users", default=None, help="users file from `radmap add-user`")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run(
        args.bundle,
        host=args.host,
        port=args.port,
        pins_dir=args.pins_dir,
        cache_dir=args.cache_dir,
        users_file=args.users,
    )


if __name__ == "__main__":
    main()
