"""Cohort page callbacks: matching, missingness, feature types, mutations, survival."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from dash import Input, Output, State
from dash.exceptions import PreventUpdate

from ..callbacks.common import AppContext, grid, memoised_figure
from ..data import BundleData
from ..figures.cohort import (
    feature_types_figure,
    missingness_figure,
    mutation_imaging_figure,
    overlap_figure,
)
from ..figures.style import empty_figure
from ..figures.survival import km_figure
from ..pages.common import graph_id, sid, table_id
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
    mutation_rows, mutation_columns = grid(mutation, MUTATION_COLUMNS, numeric=("effect", "p", "q"))

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
    }


def survival_part(data: BundleData, q: float) -> dict:
    survival = data.survival_table()
    survival["key"] = survival_row_ids(survival)
    survival_rows, survival_columns = grid(
        survival, (*SURVIVAL_COLUMNS, "key"), numeric=("hr", "ci_low", "ci_high", "p", "q")
    )
    for column in survival_columns:
        if column["field"] == "key":
            column["hide"] = True
    return {"survival_rows": survival_rows, "survival_columns": survival_columns}


def matching_part(data: BundleData, q: float) -> dict:
    matching_rows, matching_columns = grid(data.matching(), MATCHING_COLUMNS)
    return {"matching_rows": matching_rows, "matching_columns": matching_columns}


# Each part is its own callback (the keys it returns), so the first figure is drawn
# without waiting for the rest; the parts in LAYOUT_PARTS (which no control changes) are
# drawn with the page layout itself and have no callback.
PART_KEYS = {
    overlap_part: ("overlap",),
    types_part: ("types",),
    missing_part: ("missing",),
    mutation_part: ("mutation", "mutation_rows", "mutation_columns"),
    survival_part: ("survival_rows", "survival_columns"),
    matching_part: ("matching_rows", "matching_columns"),
}
LAYOUT_PARTS = (overlap_part, types_part, missing_part)
# Where each key of a part goes on the page.
PART_OUTPUTS = {
    "overlap": (graph_id("cohort-overlap"), "figure"),
    "types": (graph_id("cohort-types"), "figure"),
    "missing": (graph_id("cohort-missing"), "figure"),
    "mutation": (graph_id("cohort-mutation"), "figure"),
    "mutation_rows": (table_id("cohort-mutation"), "rowData"),
    "mutation_columns": (table_id("cohort-mutation"), "columnDefs"),
    "survival_rows": (table_id("cohort-survival"), "rowData"),
    "survival_columns": (table_id("cohort-survival"), "columnDefs"),
    "matching_rows": (table_id("cohort-matching"), "rowData"),
    "matching_columns": (table_id("cohort-matching"), "columnDefs"),
}


def cohort_km(data: BundleData, choice: str | None):
    """Kaplan–Meier figure for a ``kind:variable`` choice."""
    if not choice or ":" not in choice:
        return empty_figure("Choose a variable to group the patients by.")
    kind, variable = choice.split(":", 1)
    curves, p, description = data.km(kind, variable)
    return km_figure(curves, p=p, title=description)


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

    for build in PART_KEYS:
        if build not in LAYOUT_PARTS:
            _register_part(app, ctx, build)

    @app.callback(Output(graph_id("cohort-km"), "figure"), Input(sid(PAGE, "km"), "value"))
    def _km(choice):
        return cohort_km(data, choice)

    @app.callback(
        Output(sid(PAGE, "km"), "value"),
        Input(table_id("cohort-survival"), "cellClicked"),
        prevent_initial_call=True,
    )
    def _choose(cell):
        choice = km_choice_from_cell(data, cell)
        if choice is None:
            raise PreventUpdate
        return choice


def _register_part(app, ctx: AppContext, build: Callable[[BundleData, float], dict]) -> None:
    """One callback filling the outputs of one part of the cohort overview."""
    data, keys = ctx.data, PART_KEYS[build]

    @app.callback(
        [Output(*PART_OUTPUTS[key]) for key in keys],
        Input("cohort-ready", "data"),
        State("url", "pathname"),
        State("url", "search"),
    )
    def _part(_ready, pathname, search):
        state, _ = parse_url(pathname, search, data.vocabulary(), base=ctx.base)
        view = build(data, state.q)
        return tuple(view[key] for key in keys)
