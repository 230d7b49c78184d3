"""Cohort page callbacks: matching, missingness, feature types, mutations, survival."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from dash import ClientsideFunction, Input, Output, State
from dash.exceptions import PreventUpdate

from ..callbacks.common import (
    AppContext,
    grid,
    memoised_figure,
    register_km,
    register_option_search,
    top_rows,
)
from ..callbacks.subset import resolve
from ..data import BundleData
from ..figures.cohort import (
    feature_types_figure,
    missingness_figure,
    mutation_imaging_figure,
    overlap_figure,
)
from ..figures.style import empty_figure
from ..figures.survival import survival_view_figure
from ..pages.cohort import km_options
from ..pages.common import graph_id, searched_options, sid, store_id, table_id
from ..state import parse_url

PAGE = "cohort"
MUTATION_COLUMNS = ("mutation", "label", "test", "effect", "p", "q", "n", "feature")
SURVIVAL_COLUMNS = ("kind", "variable", "test", "hr", "ci_low", "ci_high", "p", "q", "n", "events")
MATCHING_COLUMNS = ("source", "n_ids", "n_matched", "n_unmatched", "unmatched")


def cohort_overview(data: BundleData, *, q: float = 0.05) -> dict:
    """Figures and tables of the cohort page that do not depend on a control."""
    return {key: value for build in PART_KEYS for key, value in build(data, q).items()}


def overlap_part(data: BundleData, q: float) -> dict:
    def build():
        return overlap_figure(data.matching(), title="Patients matched per source")

    return {"overlap": memoised_figure(data, "cohort-overlap", {}, build)}


def types_part(data: BundleData, q: float) -> dict:
    def build():
        return feature_types_figure(data.features, title="Imaging features by source")

    return {"types": memoised_figure(data, "cohort-types", {}, build)}


def missing_part(data: BundleData, q: float) -> dict:
    def build():
        return missingness_figure(data.missingness(), title="Missing values")

    return {"missing": memoised_figure(data, "cohort-missing", {}, build)}


def mutation_part(data: BundleData, q: float) -> dict:
    mutation = data.mutation_imaging()
    shown, mutation_note = top_rows(mutation)
    mutation_rows, mutation_columns = grid(shown, MUTATION_COLUMNS, numeric=("effect", "p", "q"))

    def build():
        return mutation_imaging_figure(
            mutation, data.features, q_threshold=q, title="Mutation x imaging"
        )

    return {
        "mutation": memoised_figure(data, "cohort-mutation", {"q": q}, build)
        if not mutation.empty
        else empty_figure("No mutation status in the clinical table."),
        "mutation_rows": mutation_rows,
        "mutation_columns": mutation_columns,
        "mutation_note": mutation_note,
    }


def survival_part(data: BundleData, q: float) -> dict:
    survival = data.survival_table()
    survival["key"] = survival_row_ids(survival)
    shown, survival_note = top_rows(survival)
    survival_rows, survival_columns = grid(
        shown, (*SURVIVAL_COLUMNS, "key"), numeric=("hr", "ci_low", "ci_high", "p", "q")
    )
    for column in survival_columns:
        if column["field"] == "key":
            column["hide"] = True
    return {
        "survival_rows": survival_rows,
        "survival_columns": survival_columns,
        "survival_note": survival_note,
    }


def matching_part(data: BundleData, q: float) -> dict:
    matching_rows, matching_columns = grid(data.matching(), MATCHING_COLUMNS)
    return {"matching_rows": matching_rows, "matching_columns": matching_columns}


# Each part is its own callback (the keys it returns), so the first figure is drawn
# without waiting for the rest; the parts in LAYOUT_PARTS are drawn with the page layout
# itself (their callbacks answer only a new subset).
PART_KEYS = {
    overlap_part: ("overlap",),
    types_part: ("types",),
    missing_part: ("missing",),
    mutation_part: ("mutation", "mutation_rows", "mutation_columns", "mutation_note"),
    survival_part: ("survival_rows", "survival_columns", "survival_note"),
    matching_part: ("matching_rows", "matching_columns"),
}
LAYOUT_PARTS = (overlap_part, types_part, missing_part)
DRAWN_LAST = "cohort-missing"
"""The last figure drawn with the page (the parts that follow wait for it)."""
# Where each key of a part goes on the page.
PART_OUTPUTS = {
    "overlap": (graph_id("cohort-overlap"), "figure"),
    "types": (graph_id("cohort-types"), "figure"),
    "missing": (graph_id("cohort-missing"), "figure"),
    "mutation": (graph_id("cohort-mutation"), "figure"),
    "mutation_rows": (table_id("cohort-mutation"), "rowData"),
    "mutation_columns": (table_id("cohort-mutation"), "columnDefs"),
    "mutation_note": ("cohort-mutation-note", "children"),
    "survival_rows": (table_id("cohort-survival"), "rowData"),
    "survival_columns": (table_id("cohort-survival"), "columnDefs"),
    "survival_note": ("cohort-survival-note", "children"),
    "matching_rows": (table_id("cohort-matching"), "rowData"),
    "matching_columns": (table_id("cohort-matching"), "columnDefs"),
}


def cohort_km(
    data: BundleData, choice: str | None, *, split: str = "median", cut: float | None = None
):
    """Kaplan–Meier figure for a ``kind:variable`` choice; continuous variables are split by
    ``split`` (median, tertiles, quartiles or ``cut`` at ``cut``)."""
    if not choice or ":" not in choice:
        return empty_figure("Choose a variable to group the patients by.")
    if split == "cut" and cut is None:
        return empty_figure("Type the value to split the patients at.")
    kind, variable = choice.split(":", 1)
    return survival_view_figure(data.km(kind, variable, split=split or "median", cut=cut))


def survival_row_ids(survival: pd.DataFrame) -> pd.Series:
    """A unique row ID per survival test: ``kind:variable`` then ``#k`` for its k-th row.

    AG Grid needs unique IDs (the same variable has one row per test or term); the part
    before ``#`` is the Kaplan–Meier choice.
    """
    choice = survival["kind"].astype(str) + ":" + survival["variable"].astype(str)
    return choice + "#" + choice.groupby(choice).cumcount().astype(str)


def km_choice_from_cell(data: BundleData, cell: dict | None) -> str | None:
    if not cell:
        return None
    choice = str(cell.get("rowId") or "").rpartition("#")[0]
    valid = {value for value, _ in data.survival_choices()}
    return choice if choice in valid else None


def register(app, ctx: AppContext) -> None:
    data = ctx.data
    register_option_search(app, sid(PAGE, "km"), lambda: km_options(data))

    for build in PART_KEYS:
        _register_part(app, ctx, build, in_layout=build in LAYOUT_PARTS)

    register_km(app, data, PAGE, "km", cohort_km, drawn_with_page=False, after="cohort-ready")

    # The parts that follow the page are asked for once its first figure is drawn: asked
    # for with the page, they kept the browser busy and delayed that figure.
    app.clientside_callback(
        ClientsideFunction(namespace="radmap", function_name="afterDrawn"),
        Output("cohort-ready", "data"),
        Input(graph_id(DRAWN_LAST), "figure"),
        State("cohort-ready", "data"),
    )

    @app.callback(
        Output(sid(PAGE, "km"), "value"),
        Output(sid(PAGE, "km"), "options", allow_duplicate=True),
        Input(table_id("cohort-survival"), "cellClicked"),
        prevent_initial_call=True,
    )
    def _choose(cell):
        choice = km_choice_from_cell(data, cell)
        if choice is None:
            raise PreventUpdate
        return choice, searched_options(km_options(data), None, choice)


def _register_part(
    app, ctx: AppContext, build: Callable[[BundleData, float], dict], *, in_layout: bool
) -> None:
    """One callback filling the outputs of one part of the cohort overview."""
    data, keys = ctx.data, PART_KEYS[build]

    @app.callback(
        [Output(*PART_OUTPUTS[key]) for key in keys],
        Input(store_id(PAGE, "subset"), "data"),
        *([] if in_layout else [Input("cohort-ready", "data")]),
        State("url", "pathname"),
        State("url", "search"),
        prevent_initial_call=in_layout,  # drawn with the page; a new subset redraws it
    )
    def _part(subset, *rest):
        *_ready, pathname, search = rest
        state, _ = parse_url(pathname, search, data.vocabulary(), base=ctx.base)
        view = build(resolve(data, subset), state.q)
        return tuple(view[key] for key in keys)
