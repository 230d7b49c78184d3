"""Property tests: whatever bytes a reader is given, only InputError (or a result) comes out."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from radmap.analysis.io import ReadResult, read_aim, read_clinical, read_expression, read_imaging
from radmap.analysis.validate import InputError

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

CELLS = st.one_of(
    st.sampled_from(
        ["", "NA", "null", "inf", "-inf", "1e400", "nan", "Not Collected", "Mutant", "WT", "Dead",
         "Alive", "1/2/2000", "2000-13-45", "R01-001", "r01-001", '"', "'", "#", "é", "\ufeff"]
    ),
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)  # fmt: skip
DELIMITERS = st.sampled_from([",", "\t", ";", "|", " "])


@st.composite
def tables(draw) -> bytes:
    """Text tables that are nearly well-formed, to get past the first checks."""
    delimiter = draw(DELIMITERS)
    n_columns = draw(st.integers(1, 6))
    header = draw(st.lists(CELLS, min_size=n_columns, max_size=n_columns))
    rows = draw(
        st.lists(
            st.lists(CELLS, min_size=max(n_columns - 1, 0), max_size=n_columns + 1),
            max_size=12,
        )
    )
    text = "\n".join(delimiter.join(row) for row in [header, *rows])
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


RAW = st.one_of(st.binary(max_size=3000), tables())


def _call(reader, name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        try:
            result = reader(path)
        except InputError as error:
            assert str(error) and "\n" not in str(error)
            return
        assert isinstance(result, ReadResult)
        assert isinstance(result.frame, pd.DataFrame)
        assert result.frame.index.is_unique


@FUZZ
@given(data=RAW, suffix=st.sampled_from(["e.csv", "e.tsv", "e.txt", "e.csv.gz", "e.xlsx"]))
def test_read_expression_fuzz(data, suffix):
    logging.disable(logging.WARNING)
    _call(read_expression, suffix, data)


@FUZZ
@given(data=RAW, suffix=st.sampled_from(["i.csv", "i.tsv", "i.parquet"]))
def test_read_imaging_fuzz(data, suffix):
    logging.disable(logging.WARNING)
    _call(read_imaging, suffix, data)


@FUZZ
@given(data=RAW, derive=st.booleans())
def test_read_clinical_fuzz(data, derive):
    logging.disable(logging.WARNING)
    _call(lambda path: read_clinical(path, derive_survival=derive), "c.csv", data)


TAGS = st.sampled_from(
    ["person", "id", "ImagingObservationCharacteristic", "ImagingPhysicalEntity", "typeCode",
     "label", "displayName", "ImageAnnotationCollection"]
)  # fmt: skip
ATTRIBUTE_VALUES = st.one_of(CELLS, st.sampled_from(["RID28473", "RID5828", "RID1303", "LT3"]))


@st.composite
def aim_like(draw, depth: int = 0) -> str:
    tag = draw(TAGS)
    attributes = draw(
        st.dictionaries(
            st.sampled_from(["value", "code", "codeSystem", "codeSystemName"]),
            ATTRIBUTE_VALUES.map(lambda v: v.replace('"', "").replace("<", "").replace("&", "")),
            max_size=3,
        )
    )
    rendered = "".join(f' {key}="{value}"' for key, value in attributes.items())
    children = draw(st.lists(aim_like(depth + 1), max_size=3)) if depth < 3 else []
    return f"<{tag}{rendered}>{''.join(children)}</{tag}>"


XML = st.one_of(
    st.binary(max_size=3000),
    aim_like().map(lambda x: ('<?xml version="1.0" encoding="UTF-8"?>' + x).encode()),
    st.text(max_size=300).map(lambda t: f"<ImageAnnotationCollection>{t}".encode()),
)


@FUZZ
@given(documents=st.lists(XML, min_size=1, max_size=3))
def test_read_aim_fuzz(documents):
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as directory:
        for number, data in enumerate(documents):
            (Path(directory) / f"R01-{number:03d}.xml").write_bytes(data)
        try:
            result = read_aim(directory)
        except InputError as error:
            assert str(error) and "\n" not in str(error)
            return
        assert isinstance(result, ReadResult)
        assert result.frame.index.is_unique
