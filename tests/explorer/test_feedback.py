"""What the explorer tells the researcher: axis titles naming what is plotted, readable
times, grouped warnings, and the methods it used explained in the app."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from radmap.explorer.app import create_app
from radmap.explorer.callbacks import gene as gene_cb
from radmap.explorer.figures.style import effect_title
from radmap.explorer.pages import LAYOUTS
from radmap.explorer.pages.common import readable_time, warning_groups, warnings_panel
from radmap.explorer.pages.help import FIGURE_HELP, REFERENCES, TESTS, help_panel
from radmap.explorer.state import PAGES, ViewState

from tests.explorer.conftest import as_figure


def test_effect_titles_name_the_measure():
    table = pd.DataFrame({"test": ["spearman", "welch", "spearman"], "effect": [0.1, 0.2, 0.3]})
    assert effect_title(table) == "effect (Spearman ρ, Hedges' g)"
    named = table.assign(effect_measure=["rho", "hedges_g", "rho"])
    assert effect_title(named) == "effect (Spearman ρ, Hedges' g)"
    student = pd.DataFrame({"test": ["student", "kruskal"], "effect": [0.4, 0.1]})
    assert effect_title(student) == "effect (Hedges' g, ε²)"
    assert effect_title(pd.DataFrame({"effect": [0.1]})) == "effect"


def test_gene_phenotype_titles_say_what_the_values_and_colours_are(toy_data):
    gene = toy_data.genes[0]
    feature = toy_data.gene_features[0]
    fig = as_figure(gene_cb.gene_phenotype(toy_data, gene, feature, color="EGFR"))
    assert fig.layout.yaxis.title.text == f"{gene} {toy_data.expression_label()}"
    assert "(log)" not in fig.layout.yaxis.title.text or "log" in str(
        toy_data.adata.uns.get("radmap", {}).get("params", {}).get("preprocess", {})
    )
    assert fig.layout.legend.title.text == "EGFR status"


def test_notebook_and_app_phenotype_figures_are_the_same(toy_data):
    from radmap.explorer import pl
    from radmap.explorer.callbacks.map import drill_down

    feature, module = toy_data.features.index[0], toy_data.module_names[0]
    notebook = pl.phenotype(toy_data.adata, feature, module=module, color="EGFR")
    assert notebook.layout.legend.title.text == "EGFR status"
    app = drill_down(toy_data, feature, module, q=0.05, color="EGFR")["figure"]
    assert notebook.to_json() == app.to_json()


@pytest.mark.parametrize(
    ("scale", "label"),
    [("zscore", "expression (z-score)"), ("log2", "expression (log2)"), (None, "expression")],
)
def test_expression_label_follows_the_recorded_scale(toy_data, scale, label, monkeypatch):
    radmap = dict(toy_data.adata.uns.get("radmap", {}))
    params = dict(radmap.get("params", {}))
    params["preprocess"] = {} if scale is None else {"scale": scale}
    radmap["params"] = params
    monkeypatch.setitem(toy_data.adata.uns, "radmap", radmap)
    assert toy_data.expression_label() == label


def test_timestamps_are_readable():
    assert readable_time("2026-11-30T07:23:41.123456+00:00") == "2026-11-30 07:23 UTC"
    assert readable_time("2026-11-30T09:23:41.5+02:00") == "2026-11-30 07:23 UTC"
    assert readable_time("not a time") == "not a time"


def test_warnings_are_grouped_and_collapsed():
    messages = [
        "feature 'A': fewer than 2 groups",
        "radiomics.csv: dropped 90 constant features: " + "x" * 900,
        "feature 'B': groups with < 3 patients left out",
        "survival: Cox model gave no estimate",
        "radiomics.csv: 3 duplicated IDs",
    ]
    groups = warning_groups(messages)
    assert list(groups) == ["features not tested", "radiomics.csv", "survival"]
    assert [len(items) for items in groups.values()] == [2, 2, 1]
    panel = json.loads(
        json.dumps(warnings_panel(messages).to_plotly_json(), default=_plain, ensure_ascii=False)
    )
    text = json.dumps(panel)
    assert text.count('"type": "Details"') == 3
    assert '"open"' not in text  # collapsed until opened
    assert "x" * 900 not in text.replace('"title": "' + messages[1], "")


def _plain(value):
    return value.to_plotly_json() if hasattr(value, "to_plotly_json") else str(value)


def test_methods_panel_covers_tests_q_modules_and_references():
    text = json.dumps(help_panel().to_plotly_json(), default=_plain, ensure_ascii=False)
    for kind, test, effect in TESTS:
        assert kind in text and test in text and effect in text
    for needed in ("Benjamini", "family", "eigengene", "kME", "Leiden", "WGCNA"):
        assert needed in text
    for _, url in REFERENCES:
        assert f'"href": "{url}"' in text


def test_every_figure_card_has_an_info_note(toy_data):
    names = []
    for page in PAGES:
        layout = json.dumps(
            LAYOUTS[page](toy_data, ViewState(page=page)).to_plotly_json(), default=_plain
        )
        names += [
            item["fig"]
            for item in _ids(json.loads(layout))
            if isinstance(item, dict) and item.get("role") == "graph"
        ]
    assert names
    missing = sorted(set(names) - set(FIGURE_HELP))
    assert not missing, f"figures without an info note: {missing}"


def _ids(node):
    if isinstance(node, dict):
        if "id" in node:
            yield node["id"]
        for value in node.values():
            yield from _ids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _ids(item)


def test_the_app_has_a_help_button_that_opens_the_panel(toy_bundle_path, tmp_path):
    app = create_app(toy_bundle_path, pins_dir=tmp_path / "pins", cache_dir=tmp_path / "cache")
    layout = json.dumps(app.get_layout().to_plotly_json(), default=_plain, ensure_ascii=False)
    assert '"help-open"' in layout and '"help-panel"' in layout
    assert any("help-panel.is_open" in key for key in app.callback_map)
