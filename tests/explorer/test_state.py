"""URL <-> view state: parsing, validation messages and the canonical round trip."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from radmap.explorer.state import (
    DEFAULTS,
    PAGE_KEYS,
    PAGES,
    ViewState,
    Vocabulary,
    from_controls,
    page_from_path,
    parse_url,
    path_for,
    to_search,
    to_url,
)

VOCAB = Vocabulary(
    features=frozenset({"margin", "original_shape_Sphericity", "wavelet-LLH_glcm_Contrast"}),
    modules=frozenset({"M1", "M2", "M10"}),
    genes={"EGFR": "EGFR", "NKX2-1": "NKX2-1", "C1ORF112": "C1orf112"},
    mutations=frozenset({"EGFR", "KRAS"}),
    sources=frozenset({"semantic", "radiomic", "clinical"}),
    groups=frozenset({"semantic", "original_shape", "wavelet-LLH_glcm"}),
    survival=frozenset({"module:M1", "mutation:KRAS"}),
)


@pytest.mark.parametrize(
    ("path", "base", "page"),
    [
        ("/", "/", "map"),
        ("", "/", "map"),
        (None, "/", "map"),
        ("/volcano", "/", "volcano"),
        ("/volcano/", "/", "volcano"),
        ("/radmap/", "/radmap/", "map"),
        ("/radmap", "/radmap/", "map"),
        ("/radmap/gene", "/radmap", "gene"),
        ("/gene", "/radmap/", None),
        ("/nothing", "/", None),
    ],
)
def test_page_from_path(path, base, page):
    assert page_from_path(path, base=base) == page


def test_path_for_every_page_round_trips():
    for base in ("/", "/radmap/"):
        for page in PAGES:
            assert page_from_path(path_for(page, base=base), base=base) == page


def test_parse_reads_every_kind_of_value():
    state, messages = parse_url(
        "/map",
        "?q=0.01&stat=signed_log10_q&sources=radiomic,semantic&groups=original_shape"
        "&min_effect=0.3&rows=top&top=25&feature=margin&module=M10&color=KRAS",
        VOCAB,
    )
    assert messages == []
    assert state == ViewState(
        page="map",
        q=0.01,
        stat="signed_log10_q",
        sources=("radiomic", "semantic"),
        groups=("original_shape",),
        min_effect=0.3,
        rows="top",
        top=25,
        feature="margin",
        module="M10",
        color="KRAS",
    )


def test_unknown_names_become_messages_not_errors():
    state, messages = parse_url("/gene", "?gene=NOTAGENE&feature=nope&q=2&color=TP53", VOCAB)
    assert state.gene is None and state.feature is None and state.color is None
    assert state.q == DEFAULTS.q
    assert len(messages) == 4
    assert any("NOTAGENE" in m for m in messages)
    assert any("q=2" in m for m in messages)


def test_gene_lookup_is_case_insensitive_and_canonical():
    state, messages = parse_url("/gene", "?gene=c1orf112", VOCAB)
    assert messages == []
    assert state.gene == "C1orf112"


def test_keys_of_other_pages_are_ignored():
    state, messages = parse_url("/cohort", "?gene=EGFR&feature=margin&km=module:M1", VOCAB)
    assert messages == []
    assert state.gene is None and state.feature is None
    assert state.km == "module:M1"


def test_unknown_page_is_reported():
    state, messages = parse_url("/nowhere", "", VOCAB)
    assert state.page == ""
    assert messages and "/nowhere" in messages[0]


def test_to_search_leaves_out_defaults_and_other_pages_keys():
    state = ViewState(page="volcano", q=0.05, feature="margin", module="M1", y="p")
    query = parse_qs(to_search(state).lstrip("?"))
    assert query == {"feature": ["margin"], "y": ["p"]}
    assert to_search(ViewState(page="hypotheses")) == ""


def test_special_characters_survive_the_url():
    state = ViewState(page="volcano", feature="wavelet-LLH_glcm_Contrast", gene="NKX2-1")
    parsed, messages = parse_url(*to_url(state).split("?", 1), VOCAB)
    assert messages == []
    assert parsed == state


def test_from_controls_coerces_and_drops_bad_values():
    state = from_controls(
        "map",
        {
            "q": "0.01",
            "min_effect": -1,
            "top": 10_000,
            "sources": ["semantic", "radiomic", "semantic"],
            "stat": "bogus",
            "gene": "EGFR",
            "feature": "",
        },
    )
    assert state.q == 0.01
    assert state.min_effect == 0.0
    assert state.top == 500
    assert state.sources == ("radiomic", "semantic")
    assert state.stat == DEFAULTS.stat
    assert state.gene is None  # not a key of the map page
    assert state.feature is None


def test_for_page_keeps_only_shared_keys():
    state = ViewState(page="map", q=0.01, feature="margin", module="M1")
    moved = state.for_page("gene")
    assert moved == ViewState(page="gene", q=0.01)


names = st.sampled_from(sorted(VOCAB.features))
states = st.builds(
    ViewState,
    page=st.sampled_from(PAGES),
    q=st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.2, 1.0]),
    stat=st.sampled_from(["effect", "signed_log10_q"]),
    sources=st.lists(st.sampled_from(sorted(VOCAB.sources)), unique=True).map(
        lambda v: tuple(sorted(v))
    ),
    groups=st.lists(st.sampled_from(sorted(VOCAB.groups)), unique=True).map(
        lambda v: tuple(sorted(v))
    ),
    min_effect=st.sampled_from([0.0, 0.1, 0.25, 1.5]),
    rows=st.sampled_from(["auto", "features", "families", "top"]),
    top=st.integers(5, 500),
    feature=st.none() | names,
    module=st.none() | st.sampled_from(sorted(VOCAB.modules)),
    gene=st.none() | st.sampled_from(sorted(VOCAB.genes.values())),
    y=st.sampled_from(["p", "q"]),
    color=st.none() | st.sampled_from(sorted(VOCAB.mutations)),
    order=st.none() | names,
    km=st.none() | st.sampled_from(sorted(VOCAB.survival)),
    split=st.sampled_from(["median", "tertiles", "quartiles", "cut"]),
    cut=st.none() | st.floats(-1e6, 1e6, allow_nan=False),
)


def _restrict(state: ViewState) -> ViewState:
    """The part of a state that its page keeps in the URL."""
    keep = {key: getattr(state, key) for key in PAGE_KEYS[state.page]}
    return ViewState(page=state.page, **keep)


@settings(max_examples=200, deadline=None)
@given(states)
def test_url_round_trip_restores_the_state(state):
    for base in ("/", "/radmap/"):
        url = to_url(state, base=base)
        path, _, search = url.partition("?")
        parsed, messages = parse_url(path, search, VOCAB, base=base)
        assert messages == []
        assert parsed == _restrict(state)
        assert to_url(parsed, base=base) == url


def test_survival_split_and_cut_live_in_the_cohort_url():
    from radmap.analysis.survival import SPLITS as ANALYSIS_SPLITS
    from radmap.explorer.state import SPLITS

    assert SPLITS == ANALYSIS_SPLITS
    state, messages = parse_url("/cohort", "?km=module:M1&split=cut&cut=-0.25", VOCAB)
    assert messages == [] and (state.km, state.split, state.cut) == ("module:M1", "cut", -0.25)
    assert to_search(state) == "?km=module%3AM1&split=cut&cut=-0.25"
    state, messages = parse_url("/cohort", "?split=deciles&cut=abc", VOCAB)
    assert (state.split, state.cut) == ("median", None) and len(messages) == 2
    assert from_controls("cohort", {"split": "tertiles", "cut": "2"}) == ViewState(
        page="cohort", split="tertiles", cut=2.0
    )
    assert from_controls("cohort", {"split": "thirds", "cut": "x"}) == ViewState(page="cohort")
