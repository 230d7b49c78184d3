"""Pins: the Pin buttons, the pin dialog, the Hypotheses page and the session report."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import dash_bootstrap_components as dbc
from dash import ALL, MATCH, Input, Output, State, callback_context, dcc, html
from dash.exceptions import PreventUpdate

from ..callbacks.common import STAT_FIELDS, AppContext, stat_line
from ..data import BundleData
from ..figures.phenotype import phenotype_plot
from ..hypotheses import report_html, report_markdown, safe_url
from ..pages.common import empty_state, readable_time
from ..state import ViewState, parse_url

MAX_NOTE = 5000
PIN_STAT_FIELDS = ("test", "effect", "p", "q", "n")


def pin_draft(data: BundleData, state: ViewState, href: str | None) -> tuple[dict | None, str]:
    """The pin for the association the current view shows, or ``None`` and why not.

    Map drill-down -> module x feature; gene page -> gene x feature (its chosen feature, else
    the strongest one); volcano -> the feature (with the highlighted gene, if any).
    Statistics come from the bundle (recomputed on the view's subset, which the pin names in
    ``subset`` and its label); ``url`` is the view URL.
    """
    pin: dict = {"feature": None, "module": None, "gene": None, "url": href or ""}
    if state.subset and state.page in ("map", "gene", "volcano"):
        data = data.subset_view(state.subset)
        pin["subset"] = f"{data.label} (n = {data.n_patients} of {data.n_cohort})"
    if state.page == "map":
        if not state.feature or not state.module:
            return None, "Click a cell of the map first, then pin it."
        stats = data.association(state.feature, state.module)
        pin |= {"kind": "module", "feature": state.feature, "module": state.module}
        labels = data.phenotype_labels(state.feature, module=state.module)
        frame = data.phenotype(state.feature, module=state.module)
        figure = phenotype_plot(
            frame,
            feature_type=labels["feature_type"],
            value_label=labels["value_label"],
            feature_label=labels["feature_label"],
            title=f"{state.module} x {labels['feature_label']}",
        )
    elif state.page == "gene":
        gene = data.canonical_gene(state.gene)
        if gene is None:
            return None, "Search for a gene first, then pin it."
        feature = state.feature
        if not feature:
            table = data.gene_associations(gene)
            feature = None if table.empty else str(table.iloc[0]["feature"])
        if not feature:
            return None, "This gene has no gene-level association to pin."
        stats = data.gene_association(gene, feature)
        pin |= {"kind": "gene", "feature": feature, "gene": gene}
        pin["module"] = (data.gene_info(gene) or {}).get("module")
        labels = data.phenotype_labels(feature, gene=gene)
        figure = phenotype_plot(
            data.phenotype(feature, gene=gene),
            feature_type=labels["feature_type"],
            value_label=labels["value_label"],
            feature_label=labels["feature_label"],
            title=f"{gene} x {labels['feature_label']}",
        )
    elif state.page == "volcano":
        if not state.feature:
            return None, "Choose an imaging feature first, then pin it."
        gene = data.canonical_gene(state.gene)
        if gene:
            stats = data.gene_association(gene, state.feature)
            pin |= {"kind": "gene", "feature": state.feature, "gene": gene}
        else:
            table = data.gene_table(state.feature)
            n_sig = int((table["q"] < state.q).sum())
            stats = {
                "test": str(data.features.at[state.feature, "test"])
                if state.feature in data.features.index
                else "",
                "effect": None,
                "p": None,
                "q": None,
                "n": n_sig,
            }
            pin |= {"kind": "feature", "feature": state.feature}
        figure = None
    elif state.page == "predict":
        from ..callbacks.predict import prediction_pin

        return prediction_pin(data, state, href)
    else:
        return None, "Pin from the map drill-down, the volcano or the gene page."
    pin["statistics"] = {key: (stats or {}).get(key) for key in STAT_FIELDS}
    pin["label"] = _pin_label(data, pin) + (
        f" [subset: {pin['subset']}]" if "subset" in pin else ""
    )
    if figure is not None:
        pin["figure"] = figure.to_json()
    return pin, ""


def _pin_label(data: BundleData, pin: dict) -> str:
    feature = data.feature_label(pin["feature"]) if pin.get("feature") else ""
    if pin["kind"] == "module":
        return f"{pin['module']} x {feature}"
    if pin["kind"] == "gene":
        return f"{pin['gene']} x {feature}"
    return f"{feature} (all genes)"


def relative_view_url(href: str | None) -> str:
    """The app-relative part (path and query) of a view URL; the host is dropped."""
    parts = urlsplit(str(href or ""))
    path = "/" + parts.path.lstrip("/\\")
    return path + (f"?{parts.query}" if parts.query else "")


def save_pin(
    pins, data: BundleData, draft: dict | None, note: str | None, *, base: str = "/"
) -> dict:
    """Store the pin of the draft's view with the user's note (trimmed to :data:`MAX_NOTE`).

    Only the draft's ``url`` is read: the pin (statistics, figure, label) is built again
    here from that view and the bundle, so a forged draft cannot store invented numbers
    or a figure the server did not make.
    """
    if not draft or not isinstance(draft, dict) or not draft.get("url"):
        raise ValueError("nothing to pin: press a Pin button on a view first")
    url = relative_view_url(draft["url"])
    path, _, search = url.partition("?")
    state, _ = parse_url(path, search, data.vocabulary(), base=base)
    pin, reason = pin_draft(data, state, url)
    if pin is None:
        raise ValueError(reason or "this view cannot be pinned")
    return pins.add(pin | {"note": (note or "").strip()[:MAX_NOTE]})


def draft_summary(draft: dict | None) -> list:
    """What the pin dialog shows about the drafted pin."""
    if not draft:
        return []
    return [html.H6(draft.get("label", "")), stat_line(draft.get("statistics"))]


def store_alerts(messages: list[str]) -> list:
    """Problems the pin store met (e.g. a damaged file restored from its backup)."""
    return [dbc.Alert(message, color="warning", className="rm-pin-warning") for message in messages]


def pin_cards(pins: list[dict]) -> list:
    """The Hypotheses page list; notes are rendered as text (Dash escapes them)."""
    if not pins:
        return [
            empty_state(
                "Nothing pinned yet. Use the Pin button on the map drill-down, the volcano or "
                "the gene page to keep an association and a note here.",
                title="No hypotheses yet",
            )
        ]
    cards = []
    for pin in pins:
        url = safe_url(pin.get("url"))
        cards.append(
            dbc.Card(
                [
                    dbc.CardHeader(
                        [
                            html.Span(
                                pin.get("label") or _fallback_label(pin), className="rm-card-title"
                            ),
                            html.Small(
                                readable_time(pin.get("created", "")),
                                className="text-muted",
                                title=str(pin.get("created", "")),
                            ),
                        ],
                        className="rm-card-header d-flex justify-content-between",
                    ),
                    dbc.CardBody(
                        [
                            stat_line(
                                pin.get("statistics") or {},
                                fields=PIN_STAT_FIELDS,
                                class_name="rm-stat-line mb-2",
                            ),
                            dcc.Link("Open the view", href=url, className="me-3") if url else None,
                            dbc.Textarea(
                                id={"role": "pin-note", "pin": pin["id"]},
                                value=pin.get("note", ""),
                                maxLength=MAX_NOTE,
                                className="my-2",
                                placeholder="Your note on this association",
                            ),
                            dbc.Button(
                                "Save note",
                                id={"role": "pin-save", "pin": pin["id"]},
                                size="sm",
                                color="primary",
                                outline=True,
                                className="me-2",
                            ),
                            dbc.Button(
                                "Remove",
                                id={"role": "pin-remove", "pin": pin["id"]},
                                size="sm",
                                color="danger",
                                outline=True,
                            ),
                            html.Span(
                                id={"role": "pin-saved", "pin": pin["id"]},
                                className="ms-2 text-success",
                            ),
                        ]
                    ),
                ],
                className="rm-card mb-3 rm-pin-card",
            )
        )
    return cards


def _fallback_label(pin: dict) -> str:
    parts = [pin.get("gene") or pin.get("module"), pin.get("feature")]
    return " x ".join(str(p) for p in parts if p)


def report_download(pins, data: BundleData, fmt: str) -> dict:
    """The session report as a Markdown or HTML download."""
    pinned = pins.list()
    info = data.summary()
    if fmt == "html":
        text = report_html(pinned, bundle_info=info)
        return {
            "content": base64.b64encode(text.encode("utf-8")).decode("ascii"),
            "filename": "radmap_report.html",
            "base64": True,
            "type": "text/html",
        }
    text = report_markdown(pinned, bundle_info=info)
    return {
        "content": base64.b64encode(text.encode("utf-8")).decode("ascii"),
        "filename": "radmap_report.md",
        "base64": True,
        "type": "text/markdown",
    }


def register(app, ctx: AppContext) -> None:
    data, pins = ctx.data, ctx.pins

    @app.callback(
        Output("pin-draft", "data"),
        Output("pin-modal", "is_open"),
        Output("pin-modal-body", "children"),
        Output("pin-note-input", "value"),
        Input({"role": "pin", "view": ALL}, "n_clicks"),
        State("url", "pathname"),
        State("url", "search"),
        State("url", "href"),
        prevent_initial_call=True,
    )
    def _open(clicks, pathname, search, href):
        if not any(clicks or []):
            raise PreventUpdate
        state, _ = parse_url(pathname, search, data.vocabulary(), base=ctx.base)
        draft, reason = pin_draft(data, state, relative_view_url(href))
        if draft is None:
            return None, True, [dbc.Alert(reason, color="warning", className="mb-0")], ""
        return {"url": draft["url"]}, True, draft_summary(draft), ""

    @app.callback(
        Output("pins-version", "data"),
        Output("pin-modal", "is_open", allow_duplicate=True),
        Output("pin-toast", "is_open"),
        Output("pin-toast", "children"),
        Input("pin-save-new", "n_clicks"),
        State("pin-draft", "data"),
        State("pin-note-input", "value"),
        State("pins-version", "data"),
        prevent_initial_call=True,
    )
    def _save(n_clicks, draft, note, version):
        if not n_clicks or not draft:
            raise PreventUpdate
        pin = save_pin(pins, data, draft, note, base=ctx.base)
        return (version or 0) + 1, False, True, f"Pinned: {pin.get('label', '')}"

    @app.callback(
        Output("pin-modal", "is_open", allow_duplicate=True),
        Input("pin-cancel", "n_clicks"),
        prevent_initial_call=True,
    )
    def _cancel(n_clicks):
        if not n_clicks:
            raise PreventUpdate
        return False

    @app.callback(
        Output("pins-list", "children"),
        Input("pins-version", "data"),
        Input("pins-list", "id"),
    )
    def _list(_version, _id):
        listed = pins.list()  # reading first: it is what records the store's warnings
        return store_alerts(pins.warnings) + pin_cards(listed)

    @app.callback(
        Output({"role": "pin-saved", "pin": MATCH}, "children"),
        Input({"role": "pin-save", "pin": MATCH}, "n_clicks"),
        State({"role": "pin-note", "pin": MATCH}, "value"),
        prevent_initial_call=True,
    )
    def _update(n_clicks, note):
        if not n_clicks:
            raise PreventUpdate
        pins.update(callback_context.triggered_id["pin"], (note or "")[:MAX_NOTE])
        return "Saved."

    @app.callback(
        Output("pins-version", "data", allow_duplicate=True),
        Input({"role": "pin-remove", "pin": ALL}, "n_clicks"),
        State("pins-version", "data"),
        prevent_initial_call=True,
    )
    def _remove(clicks, version):
        trigger = callback_context.triggered_id
        if not isinstance(trigger, dict) or not any(clicks or []):
            raise PreventUpdate
        if not callback_context.triggered[0]["value"]:
            raise PreventUpdate
        pins.remove(trigger["pin"])
        return (version or 0) + 1

    @app.callback(
        Output("report-download", "data"),
        Input("report-markdown", "n_clicks"),
        Input("report-html", "n_clicks"),
        prevent_initial_call=True,
    )
    def _report(_markdown, _html):
        trigger = callback_context.triggered_id
        if trigger not in ("report-markdown", "report-html"):
            raise PreventUpdate
        return report_download(pins, data, "html" if trigger == "report-html" else "markdown")
