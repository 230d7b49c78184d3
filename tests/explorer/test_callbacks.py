"""Callback bodies called as plain functions (no browser): inputs -> query -> figure."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from radmap.analysis import bundle as B
from radmap.explorer.callbacks import cohort, core, gene, module, network, pins, volcano
from radmap.explorer.callbacks import map as map_cb
from radmap.explorer.callbacks.common import collect_state, grid, records, state_from_entries
from radmap.explorer.figures.style import format_p
from radmap.explorer.hypotheses import PinStore
from radmap.explorer.pages.common import HIDDEN_AT_WIDTH
from radmap.explorer.state import PAGES, ViewState

from tests.explorer.conftest import as_figure


def _find(component, predicate):
    """Every component in a Dash tree for which ``predicate`` holds."""
    found = []
    stack = [component]
    while stack:
        node = stack.pop()
        if node is None or isinstance(node, str | int | float):
            continue
        if isinstance(node, list | tuple):
            stack.extend(node)
            continue
        if predicate(node):
            found.append(node)
        stack.append(getattr(node, "children", None))
    return found


def _ids(component) -> list:
    return [c.id for c in _find(component, lambda n: getattr(n, "id", None) is not None)]


def _text(component) -> str:
    """All text in a Dash tree, in document order."""
    if component is None or isinstance(component, int | float):
        return ""
    if isinstance(component, str):
        return component
    if isinstance(component, list | tuple):
        return " ".join(_text(child) for child in component)
    return _text(getattr(component, "children", None))


# ------------------------------------------------------------------ helpers
def test_records_turn_nan_into_none_and_numpy_into_python():
    frame = pd.DataFrame(
        {
            "a": [1.5, np.nan],
            "b": np.array([1, 2], dtype=np.int64),
            "c": pd.Series([np.float32(0.5), pd.NA], dtype=object),
            "d": [True, False],
            "e": pd.Series(["x", None], dtype="string"),
        }
    )
    rows = records(frame)
    assert rows == [
        {"a": 1.5, "b": 1, "c": 0.5, "d": True, "e": "x"},
        {"a": None, "b": 2, "c": None, "d": False, "e": None},
    ]
    assert [type(value) for value in rows[0].values()] == [float, int, float, bool, str]
    json.dumps(rows)


def test_grid_keeps_requested_columns_in_order():
    frame = pd.DataFrame({"x": [1], "y": [2.0], "z": ["s"]})
    rows, columns = grid(frame, ("z", "y", "missing"), numeric=("y",))
    assert [c["field"] for c in columns] == ["z", "y"]
    assert rows == [{"z": "s", "y": 2.0}]
    assert "valueFormatter" in columns[1]


def test_collect_state_groups_controls_by_page():
    entries = [
        [
            {
                "id": {"role": "state", "page": "map", "key": "q"},
                "property": "value",
                "value": 0.01,
            },
            {"id": {"role": "state", "page": "map", "key": "stat"}, "value": "effect"},
        ],
        [{"id": {"role": "state-store", "page": "map", "key": "module"}, "value": "M2"}],
    ]
    assert collect_state(entries) == {"map": {"q": 0.01, "stat": "effect", "module": "M2"}}
    state = state_from_entries("/map", entries)
    assert state.q == 0.01 and state.module == "M2"
    assert state_from_entries("/gene", entries) is None


# --------------------------------------------------------------------- core
def test_route_renders_each_page_with_its_controls(toy_data):
    for page in ("map", "network", "volcano", "gene", "module", "cohort", "predict", "hypotheses"):
        layout, messages = core.route(toy_data, f"/{page}", "", base="/")
        assert messages == []
        if page not in ("cohort", "predict", "hypotheses"):
            assert {"role": "state", "page": page, "key": "q"} in _ids(layout)


def test_route_sets_controls_from_the_url(toy_data):
    layout, messages = core.route(
        toy_data, "/volcano", "?feature=pack_years&y=p&q=0.01&gene=kras", base="/"
    )
    assert messages == []
    controls = {
        c.id["key"]: getattr(c, "value", getattr(c, "data", None))
        for c in _find(
            layout,
            lambda n: (
                isinstance(getattr(n, "id", None), dict)
                and n.id.get("role") in ("state", "state-store")
            ),
        )
    }
    assert controls["feature"] == "pack_years"
    assert controls["y"] == "p"
    assert controls["q"] == 0.01
    assert controls["gene"] == "KRAS"


def _shown(layout, page: str) -> dict:
    """The page's control values as the browser sends them back (JSON: lists)."""
    values = core.state_values(layout)[page]
    return json.loads(json.dumps(values))


def test_another_url_of_the_page_shown_sets_its_controls_instead(toy_data):
    shown, _ = core.route(toy_data, "/volcano", "?feature=pack_years&y=p", base="/")
    with core.controls_only():
        wanted, _ = core.route(
            toy_data, "/volcano", "?feature=original_shape_Sphericity&y=p&q=0.01", base="/"
        )
    changes = core.control_changes(wanted, "volcano", _shown(shown, "volcano"))
    by_key = {component_id["key"]: props for component_id, props in changes}
    assert sorted(by_key) == ["feature", "q"]
    for key, value in (("q", 0.01), ("feature", "original_shape_Sphericity")):
        assert by_key[key]["value"] == value
        assert value in [option["value"] for option in by_key[key]["options"]]
    assert all(component_id["page"] == "volcano" for component_id, _ in changes)
    # the same URL again: nothing to set
    assert core.control_changes(shown, "volcano", _shown(shown, "volcano")) == []


def test_the_page_is_rendered_again_for_a_new_subset_or_other_controls(toy_data):
    shown, _ = core.route(toy_data, "/volcano", "?feature=pack_years", base="/")
    values = _shown(shown, "volcano")
    other_subset, _ = core.route(
        toy_data, "/volcano", "?feature=original_shape_Sphericity&subset=stage:I", base="/"
    )
    assert core.control_changes(other_subset, "volcano", values) is None
    assert core.control_changes(shown, "volcano", {**values, "extra": 1}) is None
    assert core.control_changes(shown, "volcano", None) is None


def test_a_store_no_callback_reads_is_drawn_only_with_the_page(toy_data):
    shown, _ = core.route(toy_data, "/map", "", base="/")
    values = _shown(shown, "map")
    cell, _ = core.route(toy_data, "/map", "?feature=pack_years&module=M1", base="/")
    read = [{"role": "state-store", "page": "map", "key": key} for key in ("feature", "module")]
    changes = core.control_changes(cell, "map", values, read=read)
    assert {component_id["key"]: props for component_id, props in changes} == {
        "feature": {"data": "pack_years"},
        "module": {"data": "M1"},
    }
    assert core.control_changes(cell, "map", values, read=read[:1]) is None
    # the cohort's FDR threshold is a store that only the page's layout reads
    cohort, _ = core.route(toy_data, "/cohort", "", base="/")
    stricter, _ = core.route(toy_data, "/cohort", "?q=0.01", base="/")
    assert core.control_changes(stricter, "cohort", _shown(cohort, "cohort"), read=read) is None


def test_a_new_subject_renders_its_page_again(toy_data):
    shown, _ = core.route(toy_data, "/gene", "?gene=EGFR", base="/")
    values = _shown(shown, "gene")
    other_gene, _ = core.route(toy_data, "/gene", "?gene=KRAS", base="/")
    assert core.control_changes(other_gene, "gene", values) is None
    recoloured, _ = core.route(toy_data, "/gene", "?gene=EGFR&split=tertiles", base="/")
    changes = core.control_changes(recoloured, "gene", values)
    assert [(component_id["key"], props["value"]) for component_id, props in changes] == [
        ("split", "tertiles")
    ]


def test_what_only_a_new_page_draws_is_read_from_the_two_urls(toy_data):
    shown = {"pathname": "/gene", "search": "?gene=EGFR"}
    assert core.renders_again(toy_data, "gene", shown, "/gene", "?gene=KRAS")
    assert not core.renders_again(toy_data, "gene", shown, "/gene", "?gene=EGFR&split=tertiles")
    assert core.renders_again(toy_data, "gene", shown, "/gene", "?gene=EGFR&subset=stage:I")
    volcano = {"pathname": "/volcano", "search": "?feature=pack_years"}
    assert not core.renders_again(
        toy_data, "volcano", volcano, "/volcano", "?feature=original_shape_Sphericity"
    )


def test_controls_only_leaves_the_figures_blank_and_the_tables_empty(toy_data):
    def figures_and_rows(layout):
        figures = _find(layout, lambda n: getattr(n, "figure", None) is not None)
        grids = _find(layout, lambda n: getattr(n, "rowData", None) is not None)
        return [as_figure(f.figure).data for f in figures], [g.rowData for g in grids]

    for page, search in (("volcano", "?feature=pack_years"), ("module", "?module=M1")):
        with core.controls_only():
            blank, _ = core.route(toy_data, f"/{page}", search, base="/")
        full, _ = core.route(toy_data, f"/{page}", search, base="/")
        figures, rows = figures_and_rows(blank)
        assert figures and not any(figures) and not any(rows)
        figures, rows = figures_and_rows(full)
        assert any(figures) and any(rows)
        assert core.state_values(blank) == core.state_values(full)
    for page in PAGES:  # every page's controls come out the same without its data
        with core.controls_only():
            blank, _ = core.route(toy_data, f"/{page}", "?q=0.1", base="/")
        full, _ = core.route(toy_data, f"/{page}", "?q=0.1", base="/")
        assert core.state_values(blank) == core.state_values(full), page


def test_route_reports_bad_links_in_the_page(toy_data):
    layout, messages = core.route(toy_data, "/gene", "?gene=NOTAGENE", base="/")
    assert len(messages) == 1 and "NOTAGENE" in _text(messages)
    layout, messages = core.route(toy_data, "/elsewhere", "", base="/")
    assert "Page not found" in _text(layout)


def test_write_state_is_canonical_and_quiet_when_unchanged():
    values = {
        "q": 0.01,
        "stat": "effect",
        "sources": [],
        "groups": None,
        "min_effect": 0,
        "rows": "auto",
        "top": 40,
        "feature": "f1",
        "module": "M2",
        "color": None,
    }
    search = core.write_state("map", values, "")
    assert parse_qs(search.lstrip("?")) == {"q": ["0.01"], "feature": ["f1"], "module": ["M2"]}
    assert core.write_state("map", values, search) is None
    assert core.write_state(None, values, "") is None


def test_nav_targets_carry_q_and_mark_the_active_page(toy_data):
    header = core.header_view(toy_data, "/gene", "?gene=EGFR&q=0.01", base="/")
    hrefs, active = header["hrefs"], header["active"]
    assert hrefs[0] == "/map?q=0.01"
    assert all("q=0.01" in href for href in hrefs)
    pages = ("map", "network", "volcano", "gene", "module", "cohort", "patient", "predict")
    pages += ("replication", "hypotheses")
    assert active == [p == "gene" for p in pages]
    assert core.header_view(toy_data, "/gene", "?q=0.1", base="/")["q"] == "0.1"


def test_navigation_targets(toy_data):
    state = ViewState(page="volcano", feature="pack_years", q=0.01)
    click = {"points": [{"customdata": "EGFR"}]}
    href = core.navigation_target(toy_data, "volcano", click, state)
    assert urlsplit(href).path == "/gene"
    assert parse_qs(urlsplit(href).query) == {
        "gene": ["EGFR"],
        "feature": ["pack_years"],
        "q": ["0.01"],
    }
    net_state = ViewState(page="network")
    feature_click = {"points": [{"customdata": ["feature:margin_spiculated", "feature"]}]}
    assert core.navigation_target(toy_data, "network", feature_click, net_state) == (
        "/volcano?feature=margin_spiculated"
    )
    nodes, _ = toy_data.network(q_threshold=0.05)
    pathway = nodes[nodes["kind"] == "pathway"].iloc[0]
    pathway_click = {"points": [{"customdata": [pathway["id"], "pathway"]}]}
    assert core.navigation_target(toy_data, "network", pathway_click, net_state) == (
        f"/module?module={pathway['target']}"
    )
    bar = {"points": [{"customdata": ["lobe_location", "kruskal", 0.5]}]}
    href = core.navigation_target(toy_data, "gene-bar", bar, ViewState(page="gene", gene="EGFR"))
    assert href == "/volcano?feature=lobe_location&gene=EGFR"
    cell = {"rowId": "KRAS", "colId": "module", "value": "M2"}
    assert core.navigation_target(toy_data, "volcano-top", cell, state).startswith(
        "/gene?gene=KRAS"
    )
    assert core.navigation_target(toy_data, "map-heatmap", click, state) is None
    assert core.navigation_target(toy_data, "volcano", None, state) is None


def test_export_download_is_a_base64_file(toy_data, monkeypatch):
    calls = {}

    def fake_export(fig, fmt, *, width, provenance, client=None):
        calls.update(fmt=fmt, width=width, provenance=provenance, figure=fig)
        return b"<svg></svg>", provenance

    import radmap.explorer.export

    monkeypatch.setattr(radmap.explorer.export, "export_figure", fake_export)
    state = ViewState(page="map", feature="pack_years")
    download = core.export_download(
        toy_data, "map-heatmap", "svg", "double", "http://x/map?feature=pack_years", state
    )
    assert base64.b64decode(download["content"]) == b"<svg></svg>"
    assert download["filename"] == "radmap_map-heatmap_double.svg"
    assert calls["width"] == "double"
    expected, _, _ = map_cb.map_figure(toy_data, q=state.q, stat=state.stat)
    built, wanted = (
        json.dumps(f.to_dict(), sort_keys=True) for f in (calls["figure"], as_figure(expected))
    )
    assert built == wanted, "the figure is built on the server from the view"
    assert calls["provenance"]["bundle"]["sha256"] == toy_data.bundle_id
    assert calls["provenance"]["parameters"]["feature"] == "pack_years"
    with pytest.raises(ValueError):
        core.export_download(toy_data, "map-heatmap", "bmp", "single", None, state)
    with pytest.raises(ValueError, match="no figure"):
        core.export_download(toy_data, "volcano", "svg", "single", None, state)
    with pytest.raises(ValueError, match="no figure"):
        core.export_download(toy_data, "map-heatmap", "svg", "single", None, ViewState(page=""))


def test_a_message_in_place_of_a_figure_is_not_exported(toy_data, monkeypatch):
    """The Cohort page's survival figure before a variable is chosen is a message; exporting
    it made a paper figure reading "Choose a variable to group the patients by"."""
    import radmap.explorer.export

    exported = []
    monkeypatch.setattr(
        radmap.explorer.export, "export_figure", lambda *args, **kwargs: exported.append(args)
    )
    with pytest.raises(ValueError, match="no figure to export yet: Choose a variable"):
        core.export_download(toy_data, "cohort-km", "pdf", "single", None, ViewState(page="cohort"))
    assert exported == []


@pytest.mark.parametrize(
    ("state", "name"),
    [
        (ViewState(page="map", feature="pack_years", module="M2"), "map-phenotype"),
        (ViewState(page="network", q=0.2), "network"),
        (ViewState(page="volcano", feature="original_shape_Sphericity", gene="EGFR"), "volcano"),
        (ViewState(page="gene", gene="EGFR"), "gene-bar"),
        (ViewState(page="gene", gene="EGFR"), "gene-km"),
        (ViewState(page="gene", gene="EGFR", feature="pack_years"), "gene-phenotype"),
        (ViewState(page="module", module="M1"), "module-heatmap"),
        (ViewState(page="module", module="M1"), "module-enrichment"),
        (ViewState(page="cohort"), "cohort-overlap"),
        (ViewState(page="cohort"), "cohort-types"),
        (ViewState(page="cohort"), "cohort-missing"),
        (ViewState(page="cohort"), "cohort-mutation"),
        (ViewState(page="cohort", km="mutation:KRAS"), "cohort-km"),
    ],
)
def test_every_exportable_figure_is_rebuilt_from_the_view(toy_data, state, name):
    figure = core.view_figure(toy_data, name, state)
    assert isinstance(figure, go.Figure) and figure.to_dict()["data"] is not None


def test_provenance_and_table_downloads(toy_data):
    state = ViewState(page="gene", gene="EGFR")
    download = core.provenance_download(toy_data, "gene-bar", "http://h/gene?gene=EGFR", state)
    info = json.loads(download["content"])
    assert info["view_url"] == "http://h/gene?gene=EGFR"
    assert info["bundle"]["sha256"] == toy_data.bundle_id
    assert info["parameters"]["gene"] == "EGFR"
    rows = [{"gene": "EGFR", "q": 0.01}, {"gene": "=cmd", "q": None}]
    columns = [{"field": "gene"}, {"field": "q"}]
    csv = base64.b64decode(core.table_download("genes", rows, columns)["content"]).decode()
    table = pd.read_csv(io.StringIO(csv))
    assert list(table.columns) == ["gene", "q"]
    assert table["gene"].tolist() == ["EGFR", "'=cmd"]


def test_long_test_tables_send_their_top_rows_and_download_every_row(toy_data, monkeypatch):
    from radmap.explorer.callbacks import common

    mutation = toy_data.mutation_imaging()
    assert len(mutation) > 5
    monkeypatch.setattr(common, "GRID_MAX_ROWS", 5)
    part = cohort.mutation_part(toy_data, 0.05)
    shown = pd.DataFrame(part["mutation_rows"])
    assert len(shown) == 5 and f"of {len(mutation):,}" in part["mutation_note"]
    assert shown["p"].tolist() == sorted(mutation["p"])[:5], "the smallest p are shown"
    state = ViewState(page="cohort")
    whole = core.full_table(toy_data, "cohort-mutation", state)
    download = core.table_download(
        "cohort-mutation", part["mutation_rows"], part["mutation_columns"], whole=whole
    )
    table = pd.read_csv(io.StringIO(base64.b64decode(download["content"]).decode()))
    assert len(table) == len(mutation), "the CSV has every test, not the rows shown"
    assert list(table.columns) == [c["field"] for c in part["mutation_columns"]]
    assert core.full_table(toy_data, "gene-associations", state) is None, "no gene in the view"
    assert core.full_table(toy_data, "volcano-top", state) is None, "a grid that shows all"
    symbol = toy_data.strongest_link()["gene"]
    gene_state = ViewState(page="gene", gene=symbol)
    gene_table = core.full_table(toy_data, "gene-associations", gene_state)
    assert len(gene_table) == len(toy_data.gene_associations(symbol)) > 5
    shown = gene.gene_view(toy_data, symbol, q=0.05)
    assert len(shown["rows"]) == 5 and f"of {len(gene_table):,}" in shown["rows_note"]


def test_error_messages_are_short_and_safe():
    from radmap.analysis.validate import InputError

    assert "gene 'X' missing" in core.error_message(InputError("gene 'X' missing"))
    message = core.error_message(RuntimeError("secret /path"))
    assert "secret" not in message and "RuntimeError" in message


# ---------------------------------------------------------------------- map
def _main_heatmap(figure):
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    return max(heatmaps, key=lambda t: np.asarray(t.z).shape[1])


def test_map_figure_shows_every_feature_and_marks_significance(toy_data):
    figure, style, notice = map_cb.map_figure(toy_data, q=0.05, stat="effect")
    heatmap = _main_heatmap(as_figure(figure))
    assert len(heatmap.z) == 13 and len(heatmap.z[0]) == 4
    assert style["height"].endswith("px")
    assert notice == []
    figure, _, notice = map_cb.map_figure(toy_data, q=0.05, stat="effect", rows="top", top=5)
    heatmap = _main_heatmap(as_figure(figure))
    assert len(heatmap.z) == 5
    assert "5 of 13" in _text(notice)
    figure, _, notice = map_cb.map_figure(toy_data, q=0.05, stat="effect", groups=("nothing",))
    assert "No imaging feature" in _text(notice)


def test_cell_drill_down(toy_data):
    feature, module = "original_shape_Sphericity", "M1"
    panel = map_cb.drill_down(toy_data, feature, module, q=0.05, color="EGFR")
    assert panel["style"] == {"display": "block"}
    expected = toy_data.association(feature, module)
    assert format_p(expected["q"]) in _text(panel["stats"])
    assert "significant" in _text(panel["stats"])
    assert sum(len(t.y) for t in panel["figure"].data if t.y is not None) >= 60
    assert panel["volcano_href"] == "/volcano?feature=original_shape_Sphericity"
    assert panel["module_href"] == "/module?module=M1"
    assert [r["term"] for r in panel["pathway_rows"]] == list(
        toy_data.enrichment("M1")["term"].head(8)
    )
    assert _text(panel["hubs"]).split()[:2] == toy_data.hub_genes("M1")[:2]
    assert map_cb.drill_down(toy_data, None, None, q=0.05)["style"] == HIDDEN_AT_WIDTH


# ------------------------------------------------------------------ network
def test_network_view_and_empty_threshold(toy_data):
    figure, notice = network.network_view(toy_data, q=0.05)
    assert notice == []
    ids = {
        c[0]
        for t in figure.data
        if t.customdata is not None
        for c in t.customdata
        if isinstance(c, list | tuple | np.ndarray) and len(c) == 2
    }
    assert "module:M1" in ids and "feature:original_shape_Sphericity" in ids
    _, notice = network.network_view(toy_data, q=1e-30)
    assert "No imaging feature" in _text(notice)


# ------------------------------------------------------------------ volcano
def test_volcano_view(toy_data):
    figure, notice, rows, columns = volcano.volcano_view(
        toy_data, "original_shape_Sphericity", q=0.05
    )
    figure = as_figure(figure)
    genes = [g for t in figure.data if "scatter" in t.type for g in (t.customdata or [])]
    assert len(set(np.ravel(genes))) == 300
    table = toy_data.gene_table("original_shape_Sphericity")
    assert f"{int((table['q'] < 0.05).sum())} of 300" in _text(notice)
    assert [r["gene"] for r in rows[:5]] == list(table.sort_values("p")["gene"].head(5))
    assert [c["field"] for c in columns] == ["gene", "module", "effect", "p", "q"]
    figure, notice, rows, _ = volcano.volcano_view(toy_data, None)
    assert rows == [] and "Choose an imaging feature" in _text(notice)


def test_selection_runs_ora_on_the_selected_genes(toy_data):
    members = list(toy_data.module_members("M2")["gene"].head(25))
    selection = {"points": [{"customdata": g} for g in members] + [{"customdata": [members[0]]}]}
    assert volcano.selected_genes(selection) == sorted(members)
    rows, columns, status = volcano.selection_enrichment(toy_data, selection)
    expected = toy_data.ora(members)
    assert [r["term"] for r in rows] == list(expected["term"])
    assert rows[0]["term"] == "TOY_M2_PROGRAM"
    assert "25 genes selected" in _text(status)
    rows, _, status = volcano.selection_enrichment(toy_data, None)
    assert rows == [] and "lasso" in _text(status)


class CountingData:
    """Wraps BundleData and counts prerank runs."""

    def __init__(self, data):
        self._data, self.runs = data, 0

    def __getattr__(self, name):
        return getattr(self._data, name)

    def prerank(self, *args, **kwargs):
        self.runs += 1
        return self._data.prerank(*args, **kwargs)


def test_prerank_job_is_cached_on_disk(toy_data, tmp_path):
    import diskcache

    counting = CountingData(toy_data)
    progress = []
    with diskcache.Cache(str(tmp_path / "cache")) as results:
        rows, columns, status = volcano.prerank_job(
            counting,
            results,
            "original_shape_Sphericity",
            "hallmark",
            100,
            set_progress=progress.append,
        )
        assert counting.runs == 1 and "computed" in _text(status)
        assert progress[-1][0] == 100
        again, _, status = volcano.prerank_job(
            counting, results, "original_shape_Sphericity", "hallmark", 100
        )
        assert counting.runs == 1 and "from cache" in _text(status)
        assert again == rows
        key = volcano.prerank_key(toy_data, "original_shape_Sphericity", "hallmark", 100)
        assert toy_data.bundle_id in key
        volcano.prerank_job(counting, results, "original_shape_Sphericity", "hallmark", 50)
        assert counting.runs == 2
    assert {r["term"] for r in rows} == {
        "TOY_M1_PROGRAM",
        "TOY_M2_PROGRAM",
        "TOY_M3_PROGRAM",
        "TOY_M4_PROGRAM",
    }


# --------------------------------------------------------------------- gene
def test_gene_options_are_searched_server_side(toy_data):
    options = gene.gene_options(toy_data, "kr", None)
    assert [o["value"] for o in options][:2] == ["KRAS", "KRT5"]
    options = gene.gene_options(toy_data, "kr", "EGFR")
    assert options[0]["value"] == "EGFR"
    assert gene.gene_options(toy_data, None, "TP53") == [{"label": "TP53", "value": "TP53"}]


def test_gene_view(toy_data):
    view = gene.gene_view(toy_data, "egfr", q=0.05)
    assert view["body_style"] == {"display": "block"}
    expected = toy_data.gene_associations("EGFR")
    assert [r["feature"] for r in view["rows"]] == list(expected["feature"])
    assert "M1" in _text(view["info"])
    km = as_figure(view["km"])
    assert {t.name for t in km.data} >= {"low", "high"}
    p = toy_data.km("gene", "EGFR").p
    assert any(f"log-rank p = {format_p(p)}" in a.text for a in km.layout.annotations)
    assert [r["term"] for r in view["pathway_rows"]] == list(
        toy_data.enrichment("M1")["term"].head(10)
    )
    empty = gene.gene_view(toy_data, "NOTAGENE")
    assert empty["body_style"] == {"display": "none"} and "NOTAGENE" in _text(empty["note"])
    assert "Type a gene" in _text(gene.gene_view(toy_data, None)["note"])


def test_gene_phenotype_defaults_to_the_strongest_feature(toy_data):
    strongest = gene.strongest_feature(toy_data, "EGFR")
    assert strongest == toy_data.gene_associations("EGFR").iloc[0]["feature"]
    figure = as_figure(gene.gene_phenotype(toy_data, "EGFR", None, color="KRAS"))
    assert toy_data.feature_label(strongest) in figure.layout.title.text
    assert gene.feature_from_cell(toy_data, {"rowId": "pack_years"}) == "pack_years"
    assert gene.feature_from_cell(toy_data, {"rowId": "nope"}) is None


# ------------------------------------------------------------------- module
def test_module_grid_and_view(toy_data):
    rows, columns = module.modules_grid(toy_data, q=0.05)
    assert [r["module"] for r in rows] == ["M1", "M2", "M3", "M4"]
    assert module.module_from_cell(toy_data, {"rowId": "M3"}) == "M3"
    assert module.module_from_cell(toy_data, {"rowId": "M9"}) is None
    view = module.module_view(toy_data, "M2", order="nodule_attenuation", q=0.05)
    assert [r["gene"] for r in view["rows"]] == list(toy_data.module_members("M2")["gene"])
    assert "Nodule attenuation" in _text(view["info"])
    assert as_figure(view["heatmap"]).data and as_figure(view["enrichment"]).data
    assert "Choose a module" in _text(module.module_view(toy_data, None)["note"])


# ------------------------------------------------------------------- cohort
def test_cohort_overview_and_km(toy_data):
    view = cohort.cohort_overview(toy_data, q=0.05)
    assert len(view["survival_rows"]) == len(toy_data.survival_table())
    assert all(":" in r["key"] for r in view["survival_rows"])
    assert len(view["mutation_rows"]) == len(toy_data.mutation_imaging())
    assert all(
        as_figure(fig).data
        for fig in (view["overlap"], view["types"], view["missing"], view["mutation"])
    )
    figure = as_figure(cohort.cohort_km(toy_data, "mutation:KRAS"))
    p = toy_data.km("mutation", "KRAS").p
    assert any(f"log-rank p = {format_p(p)}" in a.text for a in figure.layout.annotations)
    assert {t.name for t in figure.data} >= {"Mutant", "Wildtype"}
    assert cohort.km_choice_from_cell(toy_data, {"rowId": "module:M2#0"}) == "module:M2"
    assert cohort.km_choice_from_cell(toy_data, {"rowId": "bogus:x"}) is None


# --------------------------------------------------------------------- pins
def test_pin_drafts_carry_statistics_and_url(toy_data):
    state = ViewState(page="map", feature="original_shape_Sphericity", module="M1")
    draft, reason = pins.pin_draft(
        toy_data, state, "http://h/map?feature=original_shape_Sphericity&module=M1"
    )
    assert reason == ""
    expected = toy_data.association("original_shape_Sphericity", "M1")
    assert draft["kind"] == "module" and draft["statistics"]["q"] == expected["q"]
    assert json.loads(draft["figure"])["data"]
    state = ViewState(page="gene", gene="EGFR")
    draft, _ = pins.pin_draft(toy_data, state, "u")
    assert draft["kind"] == "gene" and draft["feature"] == gene.strongest_feature(toy_data, "EGFR")
    assert draft["statistics"]["q"] == pytest.approx(
        toy_data.gene_association("EGFR", draft["feature"])["q"]
    )
    draft, _ = pins.pin_draft(toy_data, ViewState(page="volcano", feature="pack_years"), "u")
    assert draft["kind"] == "feature"
    draft, reason = pins.pin_draft(toy_data, ViewState(page="map"), "u")
    assert draft is None and "Click a cell" in reason


def test_pins_are_saved_listed_and_rendered_safely(toy_data, tmp_path):
    store = PinStore(tmp_path, toy_data.bundle_id)
    note = "<script>alert(1)</script> check"
    saved = pins.save_pin(store, toy_data, {"url": "/map?feature=pack_years&module=M2"}, note)
    assert store.list()[0]["id"] == saved["id"]
    cards = pins.pin_cards(store.list())
    notes = _find(
        cards, lambda n: isinstance(getattr(n, "id", None), dict) and n.id.get("role") == "pin-note"
    )
    assert notes[0].value == note  # rendered as the textarea's text, never as HTML
    assert "Nothing pinned yet" in _text(pins.pin_cards([]))
    with pytest.raises(ValueError):
        pins.save_pin(store, toy_data, None, "x")
    with pytest.raises(ValueError, match="Click a cell"):
        pins.save_pin(store, toy_data, {"url": "/map"}, "x")
    report = pins.report_download(store, toy_data, "markdown")
    text = base64.b64decode(report["content"]).decode()
    assert "check" in text and report["filename"].endswith(".md")


def test_a_forged_pin_stores_the_bundle_statistics_and_figure(toy_data, tmp_path):
    store = PinStore(tmp_path, toy_data.bundle_id)
    forged = {
        "url": "http://attacker.example/map?feature=pack_years&module=M2",
        "kind": "module",
        "feature": "pack_years",
        "module": "M2",
        "statistics": {"test": "made up", "effect": 0.99, "p": 1e-30, "q": 1e-28, "n": 10**6},
        "label": "invented",
        "figure": {"layout": {"images": [{"source": "file:///etc/passwd"}]}},
    }
    saved = pins.save_pin(store, toy_data, forged, "forged by a client")
    expected = toy_data.association("pack_years", "M2")
    stored = store.list()[0]
    assert stored["id"] == saved["id"]
    for key in ("test", "effect", "p", "q", "n"):
        assert stored["statistics"][key] == pytest.approx(expected[key]), key
    assert stored["label"] != "invented"
    assert "passwd" not in json.dumps(stored)
    assert stored["url"] == "/map?feature=pack_years&module=M2", "the host is never stored"


def test_a_forged_pin_url_never_becomes_a_link(toy_data, tmp_path):
    store = PinStore(tmp_path, toy_data.bundle_id)
    draft, _ = pins.pin_draft(
        toy_data, ViewState(page="map", feature="pack_years", module="M2"), "/map"
    )
    store.add(draft | {"url": "javascript:alert(1)", "note": "forged by a client"})
    store.add(draft | {"url": "/map?feature=pack_years", "note": "genuine"})
    links = _find(pins.pin_cards(store.list()), lambda n: type(n).__name__ == "Link")
    assert [link.href for link in links] == ["/map?feature=pack_years"]


def test_oversized_requests_are_refused(toy_data, tmp_path):
    from radmap.explorer.app import MAX_REQUEST_BYTES, create_app

    server = create_app(
        toy_data.path, pins_dir=tmp_path / "pins", cache_dir=tmp_path / "cache"
    ).server
    body = b'{"output": "x.children", "padding": "' + b"x" * MAX_REQUEST_BYTES + b'"}'
    response = server.test_client().post(
        "/_dash-update-component", data=body, content_type="application/json"
    )
    assert response.status_code == 413


def test_memoised_views_share_one_json_figure_that_a_caller_copies_to_change(toy_data):
    first, _, _ = map_cb.map_figure(toy_data, q=0.05, stat="effect")
    assert isinstance(first, dict)
    sent = json.dumps(first, sort_keys=True)  # the json module alone: nothing left to convert
    changed = go.Figure(first)
    changed.update_layout(title_text="changed by a caller")
    changed.data[0].update(name="renamed")
    again, _, _ = map_cb.map_figure(toy_data, q=0.05, stat="effect")
    assert again is first and json.dumps(again, sort_keys=True) == sent
    assert json.loads(go.Figure(again).to_json()) == json.loads(sent)
    other, _, _ = map_cb.map_figure(toy_data, q=0.2, stat="effect")
    marks = [t for t in as_figure(other).data if t.name.startswith("q <")]
    assert marks[0].name == "q < 0.2", "another threshold is another cache entry"

    feature = "original_shape_Sphericity"
    volcano_first = volcano.volcano_view(toy_data, feature, q=0.05)[0]
    assert volcano.volcano_view(toy_data, feature, q=0.05)[0] is volcano_first
    highlighted = volcano.volcano_view(toy_data, feature, q=0.05, gene="EGFR")[0]
    assert "highlighted" in [t.name for t in as_figure(highlighted).data]
    assert "highlighted" not in [t.name for t in as_figure(volcano_first).data]

    view = gene.gene_view(toy_data, "EGFR", q=0.05)
    strict = gene.gene_view(toy_data, "EGFR", q=1e-12)
    opaque = list(as_figure(view["bar"]).data[0].marker.opacity)
    assert 1.0 in opaque and set(as_figure(strict["bar"]).data[0].marker.opacity) == {0.4}


def test_drill_down_shows_the_trust_checks_of_the_link(toy_data, tmp_path):
    from radmap.analysis.io import save_bundle
    from radmap.explorer.data import BundleData

    feature, module = "original_shape_Sphericity", "M1"
    plain = map_cb.drill_down(toy_data, feature, module, q=0.05)
    assert "permutation p" not in _text(plain["stats"])
    adata = toy_data.adata.copy()
    table = adata.uns["radmap"]["associations"].copy()
    cell = (table["feature"] == feature) & (table["module"] == module)
    table["perm_p"] = 0.5
    table.loc[cell, "perm_p"] = 0.001
    table["stability"] = 0.1
    table.loc[cell, "stability"] = 0.85
    table["flags"] = ""
    table.loc[cell, "flags"] = "size surrogate|driven by one patient"
    adata.uns["radmap"]["associations"] = table
    save_bundle(adata, tmp_path / "trusted.h5ad")
    panel = map_cb.drill_down(BundleData(tmp_path / "trusted.h5ad"), feature, module, q=0.05)
    text = _text(panel["stats"])
    assert "permutation p 0.001" in text and "bootstrap stability 85%" in text
    assert "size surrogate" in text and "driven by one patient" in text


def test_gene_search_says_why_a_gene_is_absent(toy_data, monkeypatch):
    options = gene.gene_options(toy_data, "NOTAGENE", None)
    assert options == [
        {
            "label": "NOTAGENE is not in the expression input (not measured)",
            "value": "",
            "disabled": True,
        }
    ]
    filtered = pd.DataFrame({"gene": ["FLATGENE"], "reason": ["constant across the patients"]})
    uns = dict(toy_data.adata.uns[B.UNS_KEY]) | {"filtered_genes": filtered}
    monkeypatch.setitem(toy_data.adata.uns, B.UNS_KEY, uns)
    reason = toy_data.gene_absence("flatgene")
    assert (
        reason
        == "FLATGENE was measured but removed before the analysis: constant across the patients"
    )
    assert reason in _text(gene.gene_view(toy_data, "flatgene")["note"])
    assert toy_data.gene_absence("EGFR") is None


def test_prerank_of_an_unordered_feature_is_refused_with_a_note(toy_data):
    rows, _, message = volcano.prerank_job(toy_data, None, "lobe_location", "hallmark", 50)
    assert rows == [] and "signed statistic" in _text(message)


def test_map_note_states_the_detectable_effect(toy_data, monkeypatch):
    assert map_cb.power_note(toy_data) == ""  # a bundle without a power table
    power = pd.DataFrame(
        {
            "analysis": ["module map"],
            "family": ["module map: radiomic"],
            "feature_type": ["continuous"],
            "measure": ["rho"],
            "n": [113],
            "family_size": [500],
            "detectable_effect": [0.4312],
        }
    )
    uns = dict(toy_data.adata.uns[B.UNS_KEY]) | {"power": power}
    monkeypatch.setitem(toy_data.adata.uns, B.UNS_KEY, uns)
    text = map_cb.power_note(toy_data)
    assert "continuous Spearman ρ 0.43 (radiomic, n = 113)" in text


def test_every_graph_of_the_app_can_be_rebuilt_for_export(toy_data, tmp_path):
    import re

    from radmap.explorer.app import create_app

    app = create_app(toy_data.path, pins_dir=tmp_path / "pins", cache_dir=tmp_path / "cache")
    outputs = " ".join(app.callback_map)
    names = set(re.findall(r'\{"fig":"([a-z-]+)","role":"graph"\}\.figure', outputs))
    assert {"map-heatmap", "volcano", "cohort-km"} <= names
    for name in sorted(names):
        try:
            core.view_figure(toy_data, name, ViewState(page=name.split("-")[0]))
        except ValueError as error:
            assert "no figure" not in str(error), f"{name} has no server-side builder"


def test_an_empty_map_says_why_and_semantic_only_cohorts_have_no_families_choice():
    from radmap.explorer.data import BundleData
    from radmap.explorer.pages import map as map_page

    from tests.explorer.conftest import make_toy_adata

    adata = make_toy_adata(n_patients=30, n_genes=80, n_radiomic=4, seed=5)
    uns = adata.uns[B.UNS_KEY]
    assert "families" in [o["value"] for o in map_page.row_options(BundleData(adata))]
    reason = "only 7 patients have expression and imaging, fewer than --min-n 10"
    uns["params"]["empty_reason"] = reason
    uns["associations"] = uns["associations"].assign(p=np.nan, q=np.nan)
    figure, _, message = map_cb.map_figure(BundleData(adata), q=0.05, stat="effect")
    assert reason in json.dumps(figure.to_plotly_json()) and reason in _text(message)
    uns["features"] = uns["features"].assign(source="semantic")
    assert "families" not in [o["value"] for o in map_page.row_options(BundleData(adata))]
