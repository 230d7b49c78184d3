"""Cohort page callbacks: matching, missingness, feature types, mutations, survival."""

from __future__ import annotations

import pandas as pd
from dash import Input, Output, State
from dash.exceptions import PreventUpdate

from ..callbacks.common import AppContext, grid
from ..data import BundleData
from ..figures.cohort import (
    feature_types_figure,
    missingness_figure,
    mutation_imaging_figure,
    overlap_figure,
)
from ..figures.style import empty_figure
from ..figures.survival import survival_view_figure
from ..pages.common import graph_id, sid, table_id
from ..state import parse_url

PAGE = "cohort"
MUTATION_COLUMNS = ("mutation", "label", "test", "effect", "p", "q", "n", "feature")
SURVIVAL_COLUMNS = ("kind", "variable", "test", "hr", "ci_low", "ci_high", "p", "q", "n", "events")
MATCHING_COLUMNS = ("source", "n_ids", "n_matched", "n_unmatched", "unmatched")


def cohort_overview(data: BundleData, *, q: float = 0.05) -> dict:
    """Figures and tables of the cohort page that do not depend on a control."""
    mutation = data.mutation_imaging()
    survival = data.survival_table()
    survival["key"] = survival_row_ids(survival)
    mutation_rows, mutation_columns = grid(mutation, MUTATION_COLUMNS, numeric=("effect", "p", "q"))
    survival_rows, survival_columns = grid(
        survival, (*SURVIVAL_COLUMNS, "key"), numeric=("hr", "ci_low", "ci_high", "p", "q")
    )
    for column in survival_columns:
        if column["field"] == "key":
            column["hide"] = True
    matching_rows, matching_columns = grid(data.matching(), MATCHING_COLUMNS)
    return {
        "overlap": overlap_figure(data.matching(), title="Patients matched per source"),
        "types": feature_types_figure(data.features, title="Imaging features by source"),
        "missing": missingness_figure(data.missingness(), title="Missing values"),
        "mutation": mutation_imaging_figure(
            mutation, data.features, q_threshold=q, title="Mutation x imaging"
        )
        if not mutation.empty
        else empty_figure("No mutation status in the clinical table."),
        "mutation_rows": mutation_rows,
        "mutation_columns": mutation_columns,
        "survival_rows": survival_rows,
        "survival_columns": survival_columns,
        "matching_rows": matching_rows,
        "matching_columns": matching_columns,
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

    @app.callback(
        Output(graph_id("cohort-overlap"), "figure"),
        Output(graph_id("cohort-types"), "figure"),
        Output(graph_id("cohort-missing"), "figure"),
        Output(graph_id("cohort-mutation"), "figure"),
        Output(table_id("cohort-mutation"), "rowData"),
        Output(table_id("cohort-mutation"), "columnDefs"),
        Output(table_id("cohort-survival"), "rowData"),
        Output(table_id("cohort-survival"), "columnDefs"),
        Output(table_id("cohort-matching"), "rowData"),
        Output(table_id("cohort-matching"), "columnDefs"),
        Input("cohort-ready", "data"),
        State("url", "pathname"),
        State("url", "search"),
    )
    def _overview(_ready, pathname, search):
        state, _ = parse_url(pathname, search, data.vocabulary(), base=ctx.base)
        view = cohort_overview(data, q=state.q)
        return (
            view["overlap"],
            view["types"],
            view["missing"],
            view["mutation"],
            view["mutation_rows"],
            view["mutation_columns"],
            view["survival_rows"],
            view["survival_columns"],
            view["matching_rows"],
            view["matching_columns"],
        )

    @app.callback(
        Output(graph_id("cohort-km"), "figure"),
        Output(sid(PAGE, "cut"), "disabled"),
        Input(sid(PAGE, "km"), "value"),
        Input(sid(PAGE, "split"), "value"),
        Input(sid(PAGE, "cut"), "value"),
    )
    def _km(choice, split, cut):
        cut = float(cut) if isinstance(cut, int | float) else None
        return cohort_km(data, choice, split=split or "median", cut=cut), split != "cut"

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
