"""Routing, URL state, navigation, figure / table downloads and error display.

The URL is the single source of truth for a view:

- :func:`route` renders the page of the URL with its controls set from the query string;
- :func:`write_state` writes the controls back into the query string (canonical form);
- when only the query string changes (browser back / forward, or a link to the same page)
  and the URL differs from what the controls show, the controls are set from the URL
  (:func:`control_changes`) and the page's callbacks redraw what changed; the page is
  rendered again for a new subject, subset or comparison (:func:`renders_again`), or when
  its controls differ or a store that no callback reads changes.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import plotly.graph_objects as go
from dash import (
    ALL,
    MATCH,
    ClientsideFunction,
    Input,
    Output,
    State,
    callback_context,
    no_update,
    set_props,
)
from dash.exceptions import PreventUpdate

from ..callbacks.common import (
    STATE_STORES,
    STATE_VALUES,
    AppContext,
    alert_list,
    collect_state,
    controls_only,
)
from ..data import BundleData
from ..pages import NAVBAR_COLLAPSE, NAVBAR_TOGGLER, not_found, page_layout
from ..pages.common import graph_id, iter_components, table_id
from ..pages.subset import SUBSET_KEYS, banner, panel_id
from ..state import (
    PAGES,
    SHARED_KEYS,
    ViewState,
    from_controls,
    page_from_path,
    parse_url,
    path_for,
    to_search,
    to_url,
)

logger = logging.getLogger("radmap")

PATIENT_POINTS = ("map-phenotype", "gene-phenotype")
"""Figures whose points are patients (``customdata`` = patient ID): a click opens the patient."""
NAVIGATING_FIGURES = (*PATIENT_POINTS, "volcano", "network", "gene-bar")
"""Figures a click on which opens another view (:func:`navigation_target`)."""
NAVIGATING_TABLES = ("volcano-top",)
"""Tables a click in which opens another view."""
MIME_TYPES = {"svg": "image/svg+xml", "pdf": "application/pdf", "png": "image/png"}


# ----------------------------------------------------------------- plain functions
def route(data: BundleData, pathname: str | None, search: str | None, *, base: str = "/"):
    """The page layout and the messages about the URL (unknown names, bad values)."""
    state, messages = parse_url(pathname, search, data.vocabulary(), base=base)
    if not state.page:
        return not_found(pathname or "", base=base), []
    return page_layout(data, state, base=base), alert_list(messages)


def write_state(page: str | None, values: dict | None, search: str | None):
    """The canonical query string for the controls' ``values``, or ``None`` if unchanged."""
    if not page or values is None:
        return None
    new = to_search(from_controls(page, values))
    return None if new == (search or "") else new


def subset_banners(data: BundleData, context, values: dict | None, *, filling: bool) -> list:
    """The page's subset banner for a new subset or comparison (one per banner output,
    each unchanged otherwise: a page's first layout names its subset)."""
    banner_role = panel_id("banner", "")["role"]
    outputs = [
        output
        for group in context.outputs_list
        if isinstance(group, list)
        for output in group
        if output["id"].get("role") == banner_role
    ]
    changed = [
        trigger
        for trigger in context.triggered_prop_ids.values()
        if isinstance(trigger, dict)
        and trigger.get("role") == STATE_STORES["role"]
        and trigger.get("key") in SUBSET_KEYS
    ]
    if filling or not changed or values is None:
        return [no_update] * len(outputs)
    return [banner(data, values.get("subset"), values.get("compare")) for _ in outputs]


def header_key(pathname: str | None, search: str | None) -> str:
    """What the header shows depends on: the path and the raw values of the shared keys.

    The browser computes the same key (``radmap.urlGate`` in ``assets/radmap.js``) and
    asks the server for a new header only when it changes.
    """
    params = parse_qs((search or "").lstrip("?"), keep_blank_values=True)
    shared = "&".join(f"{key}={params.get(key, [''])[0]}" for key in SHARED_KEYS)
    return f"{pathname or ''}?{shared}"


def header_shown(key: str | None) -> dict:
    """The ``header-shown`` store: the shared keys the browser's gate reads and the
    :func:`header_key` of the header shown (``None``: none yet)."""
    return {"keys": list(SHARED_KEYS), "key": key}


def header_view(data: BundleData, pathname: str, search: str, *, base: str = "/") -> dict:
    """What the header shows for a URL (``header-update``): the FDR ``q``, the navigation
    ``hrefs`` (carrying the shared keys such as q), the ``active`` flags (one per page of
    :data:`PAGES`), and its :func:`header_key`."""
    state, _ = parse_url(pathname, search, data.vocabulary(), base=base)
    shared = {key: getattr(state, key) for key in SHARED_KEYS}
    return {
        "q": f"{state.q:g}",
        "hrefs": [to_url(ViewState(page=page, **shared), base=base) for page in PAGES],
        "active": [page == state.page for page in PAGES],
        "key": header_key(pathname, search),
    }


def requested_url(request) -> tuple[str, str]:
    """Path and query string of a ``route-request`` / ``header-request`` (the browser's
    gate writes them); no update for anything else."""
    if not isinstance(request, dict):
        raise PreventUpdate
    return str(request.get("pathname") or ""), str(request.get("search") or "")


def shown_url(pathname: str | None, search: str | None) -> dict:
    """The URL a page shows (``shown-url``): the browser routes only when the URL differs."""
    return {"pathname": pathname or "", "search": search or ""}


def state_components(layout) -> Iterator[tuple[Any, str]]:
    """The state controls and stores in a page ``layout``, each with the property that
    holds its value (``value`` for a control, ``data`` for a store)."""
    roles = {STATE_VALUES["role"]: "value", STATE_STORES["role"]: "data"}
    for component in iter_components(layout):
        component_id = getattr(component, "id", None)
        if isinstance(component_id, dict) and component_id.get("role") in roles:
            yield component, roles[component_id["role"]]


def state_values(layout) -> dict[str, dict]:
    """Values of the state controls and stores in a page ``layout``, per page (as
    :func:`collect_state` reads them from a callback's inputs)."""
    entries = [
        {"id": component.id, "value": getattr(component, prop, None)}
        for component, prop in state_components(layout)
    ]
    return collect_state(entries)


def _plain(value):
    """A control's value as it comes back from the browser (JSON: tuples are lists)."""
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


SUBJECT_KEYS = {"gene": "gene", "module": "module", "patient": "patient", "predict": "target"}
"""The key each of these pages is about. One callback answers a new one with everything the
page shows, so the page is rendered again for it, in one round trip, rather than set in
place and redrawn in two (on M: a gene 1.24x, a patient 1.30x, a module 1.07x slower)."""


def renders_again(
    data: BundleData, page: str, shown: dict, pathname: str, search: str, *, base: str = "/"
) -> bool:
    """Whether another URL of the page shown changes what only a new page draws: the
    page's subject (:data:`SUBJECT_KEYS`), its subset or its comparison. Read from the two
    URLs, so that nothing is built to find it out."""
    vocabulary = data.vocabulary()
    before, _ = parse_url(shown.get("pathname"), shown.get("search"), vocabulary, base=base)
    after, _ = parse_url(pathname, search, vocabulary, base=base)
    keys = [*SUBSET_KEYS, *([SUBJECT_KEYS[page]] if page in SUBJECT_KEYS else [])]
    return any(getattr(before, key) != getattr(after, key) for key in keys)


def read_stores(callback_map: dict) -> list[dict]:
    """The id patterns of the state stores that some callback reads as an input to draw
    something (from ``app.callback_map``; wildcards such as ``MATCH`` appear as lists).
    Callbacks that read every key (the controls' write into the URL) are left out."""
    patterns = []
    for spec in callback_map.values():
        for item in spec.get("inputs", []):
            text = item.get("id", "")
            if text.startswith("{") and item.get("property") == "data":
                pattern = json.loads(text)
                wildcard = isinstance(pattern.get("key"), list)
                if pattern.get("role") == STATE_STORES["role"] and not wildcard:
                    patterns.append(pattern)
    return patterns


def _matches(pattern: dict, component_id: dict) -> bool:
    return pattern.keys() == component_id.keys() and all(
        isinstance(value, list) or value == component_id[key] for key, value in pattern.items()
    )


def control_changes(
    layout, page: str, shown: dict | None, *, read: Sequence[dict] = ()
) -> list[tuple[dict, dict]] | None:
    """What to set on the page shown so that it shows ``layout`` (the same page for a new
    URL), instead of rendering the page again.

    Parameters
    ----------
    layout
        The page's layout for the new URL (:func:`route`).
    page
        The page both URLs show.
    shown
        The values of the page's state controls and stores in the browser (key -> value,
        as :func:`collect_state` reads them).
    read
        The stores that callbacks read (:func:`read_stores`); a store no callback reads
        (the FDR threshold of pages without an FDR control) is drawn only with the page.

    Returns
    -------
    ``(id, props)`` for each control whose value differs (its ``options`` too, when it has
    some: a long list is cut to the options around its value); ``None`` when the page has
    to be rendered again: its controls differ, a store no callback reads changes, the
    subset or comparison changes (the subset panel and its banner are built with the page),
    or the page's subject (:data:`SUBJECT_KEYS`).
    """
    new = {
        component.id["key"]: (component, prop)
        for component, prop in state_components(layout)
        if component.id.get("page") == page
    }
    if shown is None or not new or set(new) != set(shown):
        return None
    changes = []
    for key, (component, prop) in new.items():
        value = getattr(component, prop, None)
        if _plain(value) == _plain(shown[key]):
            continue
        if key in SUBSET_KEYS or key == SUBJECT_KEYS.get(page):
            return None
        if component.id["role"] == STATE_STORES["role"] and not any(
            _matches(pattern, component.id) for pattern in read
        ):
            return None
        props = {prop: value}
        if getattr(component, "options", None) is not None:
            props["options"] = component.options
        changes.append((component.id, props))
    return changes


def first_view(data: BundleData, pathname: str, search: str, *, base: str = "/") -> dict:
    """What the first layout shows for the URL the browser opened: the page (so that a page
    load needs no routing round trip), its messages, the header, and the query string with
    the page's defaults filled in (written into the address bar by the browser, replacing
    the history entry).

    Returns
    -------
    Keyword arguments of :func:`explorer.app.shell`'s ``view``.
    """
    content, messages = route(data, pathname, search, base=base)
    page = page_from_path(pathname, base=base)
    canonical = write_state(page, state_values(content).get(page or ""), search)
    return {
        "content": content,
        "messages": messages,
        "shown": shown_url(pathname, search),
        "search_update": None if canonical is None else {"search": canonical, "replace": True},
        "header": header_view(data, pathname, search, base=base),
    }


def _url(page: str, base: str, **params) -> str:
    params = {key: value for key, value in params.items() if value not in (None, "")}
    return path_for(page, base=base) + ("?" + urlencode(params) if params else "")


def navigation_target(
    data: BundleData,
    source: str,
    event: dict | None,
    state: ViewState,
    *,
    base: str = "/",
) -> str | None:
    """Where a click should take the user (an href), or ``None`` to stay.

    ``source`` is the figure or table name; ``event`` its ``clickData`` (figures) or
    ``cellClicked`` (tables).
    """
    if not event:
        return None
    q = None if state.q == ViewState().q else f"{state.q:g}"
    if source in PATIENT_POINTS:
        points = event.get("points") or []
        custom = points[0].get("customdata") if points else None
        patient = custom[0] if isinstance(custom, list) and custom else custom
        if patient is not None and str(patient) in data.patient_set:
            return _url("patient", base, patient=str(patient), q=q)
        return None
    if source in NAVIGATING_FIGURES:
        points = event.get("points") or []
        if not points:
            return None
        custom = points[0].get("customdata")
        if source == "volcano":
            gene = custom[0] if isinstance(custom, list) else custom
            if data.canonical_gene(gene):
                return _url("gene", base, gene=gene, feature=state.feature, q=q)
            return None
        if source == "gene-bar":
            feature = custom[0] if isinstance(custom, list) else custom
            if feature in data.features.index:
                return _url("volcano", base, feature=feature, gene=state.gene, q=q)
            return None
        if not isinstance(custom, list) or len(custom) < 2:
            return None
        node_id, kind = str(custom[0]), str(custom[1])
        nodes, _ = data.network(
            q_threshold=state.q,
            min_effect=state.min_effect,
            sources=state.sources,
            groups=state.groups,
        )
        match = nodes[nodes["id"] == node_id]
        if match.empty:
            return None
        target = str(match.iloc[0]["target"])
        if kind == "feature":
            return _url("volcano", base, feature=target, q=q)
        return _url("module", base, module=target, q=q)
    if source in NAVIGATING_TABLES:
        gene = event.get("rowId") or (event.get("value") if event.get("colId") == "gene" else None)
        if gene and data.canonical_gene(gene):
            return _url("gene", base, gene=gene, feature=state.feature, q=q)
    return None


def provenance(
    data: BundleData, figure: str, state: ViewState | None, href: str | None, **extra
) -> dict:
    """Bundle, parameters and view URL of an exported figure."""
    from .. import __name__ as package

    try:
        from importlib.metadata import version

        radmap_version = version("radmap")
    except Exception:  # not installed as a distribution (running from the source tree)
        from ...analysis import __version__ as radmap_version
    return {
        "figure": figure,
        "bundle": {
            "sha256": data.bundle_id,
            "dataset": data.dataset_name,
            "format_version": data.format_version,
            "file": data.file_name,
        },
        "parameters": state.to_dict() if state is not None else {},
        "subset": subset_provenance(data, state),
        "view_url": href,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": {"name": package.split(".")[0], "radmap": radmap_version},
    } | extra


def subset_provenance(data: BundleData, state: ViewState | None) -> dict:
    """Which patients a view was computed on: the whole cohort, or a subset (and the
    comparison subset) with its definition, description and n."""
    described = {"patients": "whole cohort", "n": int(data.adata.n_obs)}
    for key in ("subset", "compare"):
        text = getattr(state, key, "") if state is not None else ""
        if not text:
            continue
        label, n_patients = data.subset_size(text)
        entry = {
            "definition": text,
            "description": label,
            "n": n_patients,
            "n_cohort": int(data.adata.n_obs),
        }
        if key == "subset":
            described = {"patients": "subset"} | entry
        else:
            described["compare"] = entry
    return described


def view_figure(data: BundleData, name: str, state: ViewState) -> go.Figure:
    """The figure ``name`` of the view ``state``, built on the server from the bundle.

    Exports and pins use this instead of the figure JSON the browser sends, so that the
    server never renders or stores a figure it did not build itself.

    Raises
    ------
    ValueError
        ``name`` is not a figure of the state's page.
    """
    from ..pages import patient
    from . import cohort, gene, map, module, network, predict, replication, subset, volcano

    whole = data
    data = data.subset_view(state.subset)

    def predicted(key: str) -> go.Figure:
        view = predict.predict_view(data, state.target)
        if not view:
            raise ValueError("there is no prediction in this bundle to export")
        return view[key]

    def replicated(key: str) -> go.Figure:
        view = replication.replication_view(whole)  # of the whole cohort, not a subset
        if not view:
            raise ValueError("there is no replication result for this bundle to export")
        return view[key]

    q = state.q
    map_options = state.map_options()
    builders = {
        "map-heatmap": lambda: map.map_figure(data, **map_options)[0],
        "map-compare": lambda: subset.compare_view(
            whole, state.subset, state.compare, **map_options
        )[1],
        "map-difference": lambda: subset.compare_view(
            whole, state.subset, state.compare, **map_options
        )[2],
        "map-phenotype": lambda: map.drill_down(
            data, state.feature, state.module, q=q, color=state.color
        )["figure"],
        "network": lambda: network.network_view(
            data, q=q, min_effect=state.min_effect, sources=state.sources, groups=state.groups
        )[0],
        "volcano": lambda: volcano.volcano_view(
            data, state.feature, y=state.y, q=q, min_effect=state.min_effect, gene=state.gene
        )[0],
        "gene-bar": lambda: gene.gene_view(data, state.gene, q=q)["bar"],
        "gene-km": lambda: gene.gene_km(data, state.gene, split=state.split, cut=state.cut),
        "gene-phenotype": lambda: gene.gene_phenotype(
            data, state.gene, state.feature, color=state.color
        ),
        "module-heatmap": lambda: module.module_view(data, state.module, order=state.order, q=q)[
            "heatmap"
        ],
        "module-enrichment": lambda: module.module_view(data, state.module, order=state.order, q=q)[
            "enrichment"
        ],
        "cohort-overlap": lambda: cohort.overlap_part(data, q)["overlap"],
        "cohort-types": lambda: cohort.types_part(data, q)["types"],
        "cohort-missing": lambda: cohort.missing_part(data, q)["missing"],
        "cohort-mutation": lambda: cohort.mutation_part(data, q)["mutation"],
        "cohort-km": lambda: cohort.cohort_km(data, state.km, split=state.split, cut=state.cut),
        "patient-profile": lambda: patient.profile_figure(
            data, state.patient or patient.default_patient(data)
        ),
        "patient-survival": lambda: patient.survival_figure(
            data, state.patient or patient.default_patient(data)
        ),
        "predict-roc": lambda: predicted("roc"),
        "predict-calibration": lambda: predicted("calibration"),
        "predict-performance": lambda: predicted("performance"),
        "replication-scorecard": lambda: replicated("scorecard"),
        "replication-preservation": lambda: replicated("preservation"),
    }
    if not isinstance(name, str) or name not in builders or not name.startswith(state.page):
        raise ValueError(f"there is no figure {str(name)[:40]!r} on this page to export")
    return go.Figure(builders[name]())


def client_id() -> str | None:
    """Who sent the current request: the logged-in user, else the address (None outside one)."""
    from flask import has_request_context, request

    if not has_request_context():
        return None
    if request.authorization is not None and request.authorization.username:
        return f"user:{request.authorization.username}"
    return f"address:{request.remote_addr}"


def export_download(
    data: BundleData,
    name: str,
    fmt: str | None,
    width: str | None,
    href: str | None,
    state: ViewState | None,
    *,
    client: str | None = None,
) -> dict:
    """``dcc.Download`` data for the figure ``name`` of the view ``state`` exported as ``fmt``.

    The figure is rebuilt here from the view state and the bundle (see :func:`view_figure`).
    """
    from ..export import FORMATS, export_figure

    fmt = (fmt or "svg").lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if state is None or not state.page:
        raise ValueError("there is no figure to export yet: choose what to show first")
    fig = view_figure(data, name, state)
    if not fig.data:  # a message in place of a figure ("Choose a variable ..."): no figure
        said = " ".join(str(note.text) for note in fig.layout.annotations if note.text)
        raise ValueError(f"there is no figure to export yet: {said or 'choose what to show'}")
    info = provenance(data, name, state, href, format=fmt, width=width or "single")
    content, _ = export_figure(fig, fmt, width=width or "single", provenance=info, client=client)
    return {
        "content": base64.b64encode(content).decode("ascii"),
        "filename": f"radmap_{name}_{width or 'single'}.{fmt}",
        "base64": True,
        "type": MIME_TYPES.get(fmt),
    }


def provenance_download(
    data: BundleData, name: str, href: str | None, state: ViewState | None
) -> dict:
    info = provenance(data, name, state, href)
    return {
        "content": json.dumps(info, indent=2, default=str),
        "filename": f"radmap_{name}_provenance.json",
        "type": "application/json",
    }


def full_table(data: BundleData, name: str, state: ViewState | None):
    """The whole table behind a grid that shows only its first rows (``None`` for the others).

    Built on the server from the bundle (restricted to the view's subset), so its CSV has
    every row, whatever the browser was sent.
    """
    from .cohort import MUTATION_COLUMNS, SURVIVAL_COLUMNS
    from .gene import ASSOCIATION_COLUMNS
    from .subset import resolve

    view = resolve(data, state.subset if state is not None else "")
    gene = view.canonical_gene(state.gene if state is not None else None)
    tables = {
        "cohort-mutation": (view.mutation_imaging, MUTATION_COLUMNS),
        "cohort-survival": (view.survival_table, SURVIVAL_COLUMNS),
        "gene-associations": (lambda: view.gene_associations(gene), ASSOCIATION_COLUMNS),
    }
    if name not in tables or (name == "gene-associations" and gene is None):
        return None
    build, columns = tables[name]
    frame = build()
    return frame[[column for column in columns if column in frame]]


def table_download(
    name: str, rows: list[dict] | None, columns: list[dict] | None, *, whole=None
) -> dict:
    """``dcc.Download`` data of a grid's rows as CSV (columns in grid order); ``whole``, the
    full table of a grid that shows only its first rows, replaces them."""
    import pandas as pd

    from ..export import table_csv

    fields = [c.get("field") for c in (columns or []) if c.get("field")]
    if whole is not None:
        frame = whole[[field for field in fields if field in whole] or list(whole)]
    else:
        frame = pd.DataFrame(rows or [], columns=fields or None)
    return {
        "content": base64.b64encode(table_csv(frame)).decode("ascii"),
        "filename": f"radmap_{name}.csv",
        "base64": True,
        "type": "text/csv",
    }


def error_message(error: Exception) -> str:
    """What the user sees for an exception raised in a callback."""
    from ...analysis.validate import InputError

    if isinstance(error, InputError | ValueError | KeyError):
        text = str(error).strip("'\"")
        return f"Could not update the view: {text}"
    return (
        "Something went wrong while updating the view "
        f"({error.__class__.__name__}). The details are in the server log."
    )


def handle_error(error: Exception):
    """App-wide ``on_error``: log the traceback, show an alert, leave outputs unchanged."""
    logger.exception("callback failed", exc_info=error)
    set_props("global-alert", {"children": error_message(error), "is_open": True})
    return None


# ------------------------------------------------------------------- registration
def register_navigation(app, data: BundleData, component_id: dict, event: str, *, base: str):
    """The callback that opens the view a click on ``component_id`` (its ``event``: a
    figure's ``clickData`` or a table's ``cellClicked``) leads to."""

    @app.callback(
        Output("url", "href", allow_duplicate=True),
        Input(component_id, event),
        State("url", "pathname"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def _navigate(clicked, pathname, search):
        state, _ = parse_url(pathname, search, data.vocabulary(), base=base)
        source = component_id.get("fig") or component_id.get("table")
        href = navigation_target(data, source, clicked, state, base=base)
        if href is None:
            raise PreventUpdate
        return href


def register(app, ctx: AppContext) -> None:
    data, base = ctx.data, ctx.base

    # The browser asks for the page only when the URL differs from the one the page shows
    # (``shown-url``): not on a page load (the first layout carries the page, see
    # :func:`first_view`), not after the controls wrote their own query string; and for the
    # header only when the path or a shared key changes (see :func:`header_key`).
    app.clientside_callback(
        ClientsideFunction(namespace="radmap", function_name="urlGate"),
        Output("route-request", "data"),
        Output("header-request", "data"),
        Output("header-shown", "data"),
        Input("url", "pathname"),
        Input("url", "search"),
        State("shown-url", "data"),
        State("header-shown", "data"),
    )

    @functools.cache
    def stores_read() -> list[dict]:  # every callback is registered by the first request
        return read_stores(app.callback_map)

    @app.callback(
        Output("page-content", "children"),
        Output("url-messages", "children"),
        Output("shown-url", "data"),
        Output("filling-defaults", "data", allow_duplicate=True),
        Input("route-request", "data"),
        State("shown-url", "data"),
        State(STATE_VALUES, "value"),
        State(STATE_STORES, "data"),
        prevent_initial_call=True,
    )
    def _route(request, shown, _values, _stores):
        # The controls' first write after a render only fills in defaults: it replaces the
        # history entry instead of pushing one (see _write_state).
        pathname, search = requested_url(request)
        page = page_from_path(pathname, base=base)
        if (
            page
            and isinstance(shown, dict)
            and page_from_path(shown.get("pathname"), base=base) == page
            and not renders_again(data, page, shown, pathname, search, base=base)
        ):
            # Another URL of the page shown (Back / Forward, a link): its controls are set,
            # and the page's callbacks redraw what they show, as after the user's choice.
            # Rendering the page again rebuilt every graph, grid and dropdown (0.3 s more).
            with controls_only():
                controls, messages = route(data, pathname, search, base=base)
            values = collect_state(callback_context.states_list).get(page)
            changes = control_changes(controls, page, values, read=stores_read())
            if changes is not None:
                for component_id, props in changes:
                    set_props(component_id, props)
                return no_update, messages, shown_url(pathname, search), bool(changes)
        layout, messages = route(data, pathname, search, base=base)
        return layout, messages, shown_url(pathname, search), True

    @app.callback(
        Output("search-update", "data"),
        Output("filling-defaults", "data"),
        Output("header-update", "data", allow_duplicate=True),
        Output("header-shown", "data", allow_duplicate=True),
        Output(panel_id("banner", ALL), "children"),
        Input(STATE_VALUES, "value"),
        Input(STATE_STORES, "data"),
        State("url", "pathname"),
        State("url", "search"),
        State("filling-defaults", "data"),
        State("header-shown", "data"),
        prevent_initial_call=True,
    )
    def _write_state(_values, _stores, pathname, search, filling, header):
        # A new FDR or subset also changes the header, and a new subset the banner that
        # names it: they come with this answer (each callback of its own costs the page
        # ~15 updates of Dash's store, and the header would wait for the new address).
        page = page_from_path(pathname, base=base)
        values = collect_state(callback_context.inputs_list).get(page or "")
        banners = subset_banners(data, callback_context, values, filling=bool(filling))
        new = write_state(page, values, search)
        if new is None:
            return no_update, False, no_update, no_update, banners
        update = {"search": new, "replace": bool(filling)}
        key = header_key(pathname, new)
        if isinstance(header, dict) and header.get("key") == key:
            return update, False, no_update, no_update, banners
        # the key is set before the URL changes, so the gate does not ask for the header
        view = header_view(data, pathname, new, base=base)
        return update, False, view, header_shown(key), banners

    @app.callback(
        Output("help-panel", "is_open"),
        Input("help-open", "n_clicks"),
        State("help-panel", "is_open"),
        prevent_initial_call=True,
    )
    def _help(n_clicks, is_open):
        return not is_open if n_clicks else is_open

    app.clientside_callback(
        ClientsideFunction(namespace="radmap", function_name="toggleNavbar"),
        Output(NAVBAR_COLLAPSE, "is_open"),
        Input(NAVBAR_TOGGLER, "n_clicks"),
        Input("url", "pathname"),
        State(NAVBAR_COLLAPSE, "is_open"),
        prevent_initial_call=True,
    )

    # The browser writes the new query string itself: a page filling in its defaults
    # replaces the history entry (Back leaves the page), a user's change pushes one. On a
    # page load the first layout may carry such an update (the defaults of the URL).
    # The header's components are set in the browser too: they never wait on a request (the
    # bench and the user would see them as loading while the controls' write is answered).
    app.clientside_callback(
        ClientsideFunction(namespace="radmap", function_name="applyUrlState"),
        Output("url", "search"),
        Output("url", "href", allow_duplicate=True),
        Output("shown-url", "data", allow_duplicate=True),
        Output("header-q", "children"),
        Output({"role": "nav", "page": ALL}, "href"),
        Output({"role": "nav", "page": ALL}, "active"),
        Input("search-update", "data"),
        Input("header-update", "data"),
        prevent_initial_call="initial_duplicate",
    )

    @app.callback(
        Output("header-update", "data"),
        Input("header-request", "data"),
        prevent_initial_call=True,
    )
    def _header(request):
        return header_view(data, *requested_url(request), base=base)

    # A callback for each figure and table whose clicks open another view, not one on every
    # graph's and table's clicks: that one sent the map's cell clicks and the gene page's
    # row clicks to the server too, for nothing (a request and ~8 updates of Dash's store).
    clicks = [(graph_id(name), "clickData") for name in NAVIGATING_FIGURES]
    clicks += [(table_id(name), "cellClicked") for name in NAVIGATING_TABLES]
    for component_id, event in clicks:
        register_navigation(app, data, component_id, event, base=base)

    @app.callback(
        Output({"role": "export-download", "fig": MATCH}, "data"),
        Input({"role": "export-button", "fig": MATCH}, "n_clicks"),
        State({"role": "export-format", "fig": MATCH}, "value"),
        State({"role": "export-width", "fig": MATCH}, "value"),
        State("url", "pathname"),
        State("url", "search"),
        State("url", "href"),
        prevent_initial_call=True,
    )
    def _export(n_clicks, fmt, width, pathname, search, href):
        if not n_clicks:
            raise PreventUpdate
        name = callback_context.triggered_id["fig"]
        state, _ = parse_url(pathname, search, data.vocabulary(), base=base)
        return export_download(data, name, fmt, width, href, state, client=client_id())

    @app.callback(
        Output({"role": "provenance-download", "fig": MATCH}, "data"),
        Input({"role": "provenance-button", "fig": MATCH}, "n_clicks"),
        State("url", "pathname"),
        State("url", "search"),
        State("url", "href"),
        prevent_initial_call=True,
    )
    def _provenance(n_clicks, pathname, search, href):
        if not n_clicks:
            raise PreventUpdate
        name = callback_context.triggered_id["fig"]
        state, _ = parse_url(pathname, search, data.vocabulary(), base=base)
        return provenance_download(data, name, href, state)

    @app.callback(
        Output({"role": "table-download", "table": MATCH}, "data"),
        Input({"role": "table-csv", "table": MATCH}, "n_clicks"),
        State({"role": "table", "table": MATCH}, "rowData"),
        State({"role": "table", "table": MATCH}, "columnDefs"),
        State("url", "pathname"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def _table_csv(n_clicks, rows, columns, pathname, search):
        if not n_clicks:
            raise PreventUpdate
        name = callback_context.triggered_id["table"]
        state, _ = parse_url(pathname, search, data.vocabulary(), base=base)
        whole = full_table(data, name, state)
        return table_download(name, rows, columns, whole=whole)


__all__ = [
    "error_message",
    "client_id",
    "first_view",
    "header_key",
    "header_shown",
    "header_view",
    "export_download",
    "full_table",
    "handle_error",
    "navigation_target",
    "provenance",
    "provenance_download",
    "register",
    "route",
    "shown_url",
    "state_values",
    "table_download",
    "view_figure",
    "write_state",
]
