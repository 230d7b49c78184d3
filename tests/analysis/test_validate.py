from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from radmap.analysis.validate import (
    InputError,
    category_levels,
    check_types,
    infer_feature_type,
    match_samples,
    normalise_id,
    ordinal_levels,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  r01-023 ", "R01-023"),
        ("amc  001", "AMC 001"),
        ("\tTCGA-05-4244\n", "TCGA-05-4244"),
        (7.0, "7"),
        (12, "12"),
        (float("nan"), ""),
        (None, ""),
    ],
)
def test_normalise_id_cleans(raw, expected):
    assert normalise_id(raw) == expected


def test_normalise_id_pattern_group_whole_match_and_no_match():
    assert normalise_id("R01-023v1", pattern=r"(R01-\d{3})") == "R01-023"
    assert normalise_id("sample r01-023 rep2", pattern=r"R01-\d+") == "R01-023"
    assert normalise_id("control 7", pattern=r"(R01-\d{3})") == "CONTROL 7"


def test_normalise_id_bad_pattern():
    with pytest.raises(InputError, match="not a valid regular expression"):
        normalise_id("x", pattern="(")


def _ids(prefix: str, numbers) -> list[str]:
    return [f"{prefix}{n:03d}" for n in numbers]


def test_match_samples_intersection_and_table():
    expression = _ids("R01-", range(0, 30))
    imaging = [s.lower() for s in _ids("R01-", range(10, 45))]
    clinical = _ids("R01-", range(5, 25))
    report = match_samples(
        {"expression": expression, "imaging": imaging}, optional={"clinical": clinical}
    )
    expected = sorted(set(expression) & {s.upper() for s in imaging})
    assert report.matched == expected
    table = report.table.set_index("source")
    assert list(table.index) == ["expression", "imaging", "clinical"]
    assert table.loc["expression", "n_ids"] == 30
    assert table.loc["expression", "n_matched"] == len(expected)
    assert table.loc["imaging", "n_unmatched"] == 35 - len(expected)
    assert table.loc["expression", "unmatched"].split("|") == _ids("R01-", range(0, 10))
    assert table.loc["clinical", "n_matched"] == len(set(clinical) & set(expected))
    # clinical does not shrink the matched set, but its gaps are reported
    assert any("clinical" in w and "no entry for" in w for w in report.warnings)
    assert report.mapping["imaging"]["r01-010"] == "R01-010"


def test_match_samples_unmatched_list_is_capped_at_50():
    a = _ids("A-", range(200))
    report = match_samples({"a": a, "b": a[:20]}, min_overlap=5)
    row = report.table.set_index("source").loc["a"]
    assert row["n_unmatched"] == 180
    assert len(row["unmatched"].split("|")) == 50


def test_match_samples_too_small_overlap_shows_examples():
    with pytest.raises(InputError) as caught:
        match_samples({"expression": _ids("R01-", range(30)), "imaging": _ids("r01_", range(30))})
    message = str(caught.value)
    assert "expression" in message and "imaging" in message
    assert "'R01-000'" in message and "'R01_000'" in message
    assert "\n" not in message


def test_match_samples_pattern_rescues_overlap():
    report = match_samples(
        {
            "expression": _ids("R01-", range(20)),
            "imaging": [f"{s}v1" for s in _ids("R01-", range(20))],
        },
        pattern=r"(R01-\d{3})",
    )
    assert report.matched == _ids("R01-", range(20))


def test_match_samples_ids_colliding_after_normalisation():
    with pytest.raises(InputError, match="'R01-001' and 'r01-001'"):
        match_samples({"a": ["R01-001", "r01-001"], "b": ["R01-001"]}, min_overlap=1)


def test_match_samples_needs_sources():
    with pytest.raises(InputError):
        match_samples({})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.random.default_rng(0).normal(size=40), "continuous"),
        ([1, 2, 3, 4, 5, 3, 2, 1], "ordinal"),
        ([34, 56, 71, 62, 45, 80, 66, 59, 48, 77, 52], "continuous"),
        ([0, 1, 1, 0, np.nan], "binary"),
        ([True, False, True], "binary"),
        (["absent", "present", "absent", None], "binary"),
        (["none", "mild", "severe", "moderate", "mild"], "ordinal"),
        (["Stage IA", "stage IIB", "Stage IV"], "ordinal"),
        (["T1a", "T2b", "T3", "Tis"], "ordinal"),
        (["solid", "part-solid", "ground glass"], "ordinal"),
        (["solid", "partially solid", "ground glass", "solid"], "ordinal"),
        (["smooth", "spiculated", "lobulated"], "ordinal"),
        (["smooth", "spiculated", "poorly defined"], "categorical"),
        (["Minimal", "<1/3", ">2/3", "1/3-2/3"], "ordinal"),
        (["round", "oval", "complex", "round"], "categorical"),
        (["1.5", "2.25", "3.75", "0.5"], "continuous"),
        (["1", "2", "3"], "ordinal"),
    ],
)
def test_infer_feature_type(values, expected):
    assert infer_feature_type(pd.Series(values, name="f")) == expected


def test_infer_feature_type_ordered_categorical():
    series = pd.Series(pd.Categorical(["a", "c", "b"], categories=["c", "b", "a"], ordered=True))
    assert infer_feature_type(series) == "ordinal"
    assert category_levels(series, "ordinal") == ["c", "b", "a"]


def test_infer_feature_type_empty():
    with pytest.raises(InputError, match="'empty_feature' has no values"):
        infer_feature_type(pd.Series([np.nan, None], name="empty_feature"))


def test_category_levels_orders():
    assert category_levels(pd.Series(["present", "absent"]), "binary") == ["absent", "present"]
    assert category_levels(pd.Series(["Yes", "No", "Yes"]), "binary") == ["No", "Yes"]
    assert category_levels(pd.Series(["severe", "mild", "none"]), "ordinal") == [
        "none",
        "mild",
        "severe",
    ]
    assert category_levels(pd.Series([10, 2, 1, 2]), "ordinal") == ["1", "2", "10"]
    assert category_levels(pd.Series(["b", "a", "c"]), "categorical") == ["a", "b", "c"]
    assert ordinal_levels(["Moderate", "None", "Mild"]) == ["None", "Mild", "Moderate"]
    assert ordinal_levels(["red", "blue"]) is None


def test_check_types():
    check_types({"a": "binary", "b": "continuous"}, ["a", "b", "c"])
    with pytest.raises(InputError, match="'a': 'nominal'"):
        check_types({"a": "nominal"}, ["a"])
    with pytest.raises(InputError, match="'zz'"):
        check_types({"zz": "ordinal"}, ["a", "b"])


def test_level_order_ships_attenuation_margin_and_vasari_orders():
    from radmap.analysis.validate import level_order

    attenuation = pd.Series(["solid", "ground glass", "partially solid", None])
    assert level_order(attenuation, "ordinal") == (
        ["ground glass", "partially solid", "solid"],
        "vocabulary",
    )
    margins = pd.Series(["spiculated", "smooth", "irregular", "lobulated"])
    assert level_order(margins, "ordinal")[0] == ["smooth", "lobulated", "irregular", "spiculated"]
    vasari = pd.Series([">2/3", "Minimal", "1/3-2/3", "<1/3"])
    assert level_order(vasari, "ordinal") == (["Minimal", "<1/3", "1/3-2/3", ">2/3"], "vocabulary")
    assert level_order(pd.Series(["present", "absent"]), "binary") == (
        ["absent", "present"],
        "reference first",
    )
    assert level_order(pd.Series(["b", "a"]), "categorical") == (["a", "b"], "")
    assert level_order(pd.Series([3, 1, 2]), "ordinal") == (["1", "2", "3"], "numeric")


def test_level_order_declared_overrides_and_a_guessed_order_is_refused():
    from radmap.analysis.validate import level_order

    values = pd.Series(["low", "high", "mid", "low"])
    assert level_order(values, "ordinal", declared=["low", "mid", "high", "max"]) == (
        ["low", "mid", "high"],
        "declared",
    )
    # a declared order beats the shipped vocabulary
    margins = pd.Series(["smooth", "spiculated", "lobulated"])
    declared = ["spiculated", "lobulated", "smooth"]
    assert level_order(margins, "ordinal", declared=declared)[0] == declared
    with pytest.raises(InputError, match="'odd'.*not in the declared order"):
        level_order(pd.Series(["low", "odd"]), "ordinal", name="f", declared=["low", "high"])
    with pytest.raises(InputError, match="twice"):
        level_order(values, "ordinal", declared=["low", "low", "high"])
    with pytest.raises(InputError, match=r"declared ordinal.*feature_levels"):
        level_order(pd.Series(["red", "green", "blue"]), "ordinal", name="colour")
