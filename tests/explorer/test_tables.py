"""Tables and numbers as a researcher reads them: one p / q format, rounded measures,
full text on hover, and row IDs AG Grid can rely on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from radmap.explorer.callbacks import cohort
from radmap.explorer.callbacks.common import grid
from radmap.explorer.figures.style import (
    P_FORMAT_JS,
    format_p,
    format_p_values,
    p_statement,
)
from radmap.explorer.pages.common import column_defs


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.5"),
        (0.0523456, "0.0523"),
        (0.001, "0.001"),
        (0.000999, "9.99e-4"),
        (0.000213456, "2.13e-4"),
        (1.5e-12, "1.50e-12"),
        (0.0, "< 1e-300"),  # an underflowed p-value, never an exact 0
        (1e-310, "< 1e-300"),
        (1e-300, "1.00e-300"),
        (1.0, "1"),
        (None, "—"),
        (math.nan, "—"),
        ("x", "—"),
    ],
)
def test_p_and_q_have_one_format(value, text):
    assert format_p(value) == text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.none(), max_size=40))
def test_a_column_of_p_values_reads_as_format_p_reads_each(values):
    assert format_p_values(values, missing="—") == [format_p(v) for v in values]
    assert format_p_values(np.asarray(values, dtype=float)) == [
        format_p(v, missing="NA") for v in values
    ]


def test_p_values_numpy_cannot_read_are_formatted_one_by_one():
    values = [0.01, "0.0002", "x", pd.NA, 0.0]
    assert format_p_values(values) == ["0.01", "2.00e-4", "NA", "NA", "< 1e-300"]


def test_p_statements_say_less_than_for_a_floored_value():
    assert p_statement("p", 0.0123) == "p = 0.0123"
    assert p_statement("q", 0.0) == "q < 1e-300"
    assert p_statement("p", None) == "p = —"


def test_p_columns_format_like_format_p_and_measures_are_rounded():
    frame = pd.DataFrame(
        {
            "label": ["wavelet-HLL_glcm_Correlation"],
            "effect": [14.4412345],
            "p": [0.000213456],
            "q": [0.0523456],
            "n": [121.0],
            "hr": [1.23456],
        }
    )
    rows, columns = grid(frame, list(frame.columns))
    by_field = {column["field"]: column for column in columns}
    assert by_field["p"]["valueFormatter"]["function"] == P_FORMAT_JS
    assert by_field["q"]["valueFormatter"]["function"] == P_FORMAT_JS
    # floats that were not declared numeric are still rounded, counts are left whole
    assert "d3.format('.3~g')" in by_field["effect"]["valueFormatter"]["function"]
    assert "d3.format('.3~g')" in by_field["hr"]["valueFormatter"]["function"]
    assert "valueFormatter" not in by_field["n"]
    # text columns show their full value on hover
    assert by_field["label"]["tooltipField"] == "label"
    assert rows[0]["p"] == pytest.approx(0.000213456)


def test_every_column_has_a_header_tooltip():
    columns = column_defs(["feature", "p"], numeric=["p"])
    assert [column["headerTooltip"] for column in columns] == ["feature", "p"]


def test_survival_grid_row_ids_are_unique_and_lead_back_to_the_choice(toy_data):
    view = cohort.cohort_overview(toy_data)
    keys = [row["key"] for row in view["survival_rows"]]
    assert keys and len(set(keys)) == len(keys)
    choices = {value for value, _ in toy_data.survival_choices()}
    for key in keys:
        choice = cohort.km_choice_from_cell(toy_data, {"rowId": key})
        assert choice == key.rpartition("#")[0]
        assert choice in choices


def test_duplicate_survival_variables_get_distinct_ids():
    survival = pd.DataFrame({"kind": ["module", "module", "gene"], "variable": ["M2", "M2", "X"]})
    assert cohort.survival_row_ids(survival).tolist() == ["module:M2#0", "module:M2#1", "gene:X#0"]


def test_long_option_lists_are_searched_on_the_server():
    from radmap.explorer.pages.common import SHOWN_OPTIONS, searched_options

    options = [{"label": f"Feature {i:04d} (texture)", "value": f"f{i}"} for i in range(500)]
    first = searched_options(options, None, "f499")
    assert first[0]["value"] == "f499", "the chosen option is always offered"
    assert len(first) == SHOWN_OPTIONS + 1 and first[-1]["disabled"]
    assert f"{500 - SHOWN_OPTIONS:,} more" in first[-1]["label"]
    found = searched_options(options, "0123 TEXTURE", None)
    assert [option["value"] for option in found] == ["f123"], "every word, case ignored"
    many = searched_options(options, "feature", "f3")
    assert many[0]["value"] == "f3" and "match" in many[-1]["label"]
    assert searched_options(options, "zzz", None)[-1]["disabled"]
    short = options[:10]
    assert searched_options(short, None, None) == short
