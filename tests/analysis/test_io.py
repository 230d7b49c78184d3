from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from radmap.analysis import io as rio
from radmap.analysis.bundle import (
    FORMAT_VERSION,
    GENE_STAT_KEYS,
    IMAGING_KEY,
    MUTANT,
    UNS_KEY,
    WILDTYPE,
)
from radmap.analysis.io import (
    ReadResult,
    atomic_write_bytes,
    atomic_write_text,
    combine_imaging,
    file_sha256,
    load_bundle,
    read_aim,
    read_clinical,
    read_expression,
    read_imaging,
    save_bundle,
)
from radmap.analysis.validate import InputError

FIXTURES = Path(__file__).parent / "fixtures"
EXPRESSION = FIXTURES / "expression_small.csv"
RADIOMICS = FIXTURES / "radiomics_small.csv"
CLINICAL = FIXTURES / "clinical_small.csv"
AIM = FIXTURES / "aim_xml"


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _small_expression_text(
    values: dict[str, list[object]] | None = None, samples=("S-1", "S-2", "S-3", "S-4")
) -> str:
    values = values or {
        "TP53": [1.0, 2.0, 3.0, 4.0],
        "EGFR": [2.5, 2.0, 1.5, 1.0],
        "KRAS": [0.1, 0.2, 0.3, 0.4],
        "MYC": [5.0, 6.0, 7.0, 8.0],
        "CD8A": [1.1, 1.2, 1.3, 1.4],
    }
    lines = ["," + ",".join(samples)]
    lines += [f"{gene}," + ",".join(map(str, row)) for gene, row in values.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- expression


def test_read_expression_real_fixture():
    result = read_expression(EXPRESSION)
    raw = pd.read_csv(EXPRESSION, index_col=0)
    keep = raw.isna().mean(axis=1) <= 0.2
    expected = raw.loc[keep].T
    assert isinstance(result, ReadResult)
    assert result.source == "expression_small.csv"
    assert result.info["orientation"] == "genes_by_samples"
    assert list(result.frame.index) == list(raw.columns)
    assert list(result.frame.columns) == list(raw.index[keep])
    assert (result.frame.dtypes == np.float64).all()
    np.testing.assert_allclose(result.frame.to_numpy(), expected.to_numpy(), equal_nan=True)
    assert result.info["n_genes"] == int(keep.sum())
    assert result.info["n_samples"] == raw.shape[1]
    assert result.info["dropped_missing"] == int((~keep).sum())
    if (~keep).any():
        assert any(f"dropped {int((~keep).sum())} genes" in w for w in result.warnings)


def test_read_expression_orientation_auto_and_override(tmp_path):
    genes_by_samples = read_expression(EXPRESSION)
    transposed = pd.read_csv(EXPRESSION, index_col=0).T
    transposed.index.name = "sample"
    path = tmp_path / "samples_by_genes.csv"
    transposed.to_csv(path)
    auto = read_expression(path)
    assert auto.info["orientation"] == "samples_by_genes"
    pd.testing.assert_frame_equal(auto.frame, genes_by_samples.frame)
    forced = read_expression(EXPRESSION, orientation="samples_by_genes", max_missing=1.0)
    assert forced.info["orientation"] == "samples_by_genes"
    assert list(forced.frame.index[:3]) == [g.upper() for g in transposed.columns[:3]]
    with pytest.raises(InputError, match="orientation"):
        read_expression(EXPRESSION, orientation="rows")


def test_read_expression_orientation_by_shape_when_labels_do_not_tell(tmp_path):
    rng = np.random.default_rng(1)
    genes = [f"GENE{chr(65 + i)}X" for i in range(8)]
    samples = [f"alpha{chr(97 + i)}" for i in range(3)]
    frame = pd.DataFrame(rng.normal(size=(8, 3)), index=genes, columns=samples)
    frame.to_csv(tmp_path / "e.csv")
    result = read_expression(tmp_path / "e.csv")
    assert result.info["orientation"] == "genes_by_samples"
    assert result.frame.shape == (3, 8)


@pytest.mark.parametrize("variant", ["tsv", "gz", "semicolon", "bom", "crlf", "r_header"])
def test_read_expression_formats_agree(tmp_path, variant):
    text = _small_expression_text()
    reference = read_expression(_write(tmp_path / "ref.csv", text)).frame
    if variant == "tsv":
        path = _write(tmp_path / "e.tsv", text.replace(",", "\t"))
    elif variant == "gz":
        path = tmp_path / "e.csv.gz"
        path.write_bytes(gzip.compress(text.encode()))
    elif variant == "semicolon":
        path = _write(tmp_path / "e.txt", text.replace(",", ";"))
    elif variant == "bom":
        path = tmp_path / "e.csv"
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    elif variant == "crlf":
        path = _write(tmp_path / "e.csv", text.replace("\n", "\r\n"))
    else:  # R write.table: the header lacks the row-name cell
        path = _write(tmp_path / "e.txt", text[1:].replace(",", "\t"))
    pd.testing.assert_frame_equal(read_expression(path).frame, reference)


def test_read_expression_latin1(tmp_path):
    text = _small_expression_text().replace("MYC", "GÈNE1")
    result = read_expression(_write(tmp_path / "e.csv", text, encoding="latin-1"))
    assert "GÈNE1" in result.frame.columns
    assert any("not UTF-8" in w and "e.csv" in w for w in result.warnings)


def test_read_expression_excel_parquet_h5ad(tmp_path):
    reference = read_expression(EXPRESSION).frame
    raw = pd.read_csv(EXPRESSION, index_col=0)
    raw.to_excel(tmp_path / "e.xlsx")
    raw.to_parquet(tmp_path / "e.parquet")
    for name in ("e.xlsx", "e.parquet"):
        result = read_expression(tmp_path / name)
        pd.testing.assert_frame_equal(result.frame, reference, check_exact=False, rtol=1e-12)
    adata = ad.AnnData(
        raw.T.to_numpy(), obs=pd.DataFrame(index=raw.columns), var=pd.DataFrame(index=raw.index)
    )
    adata.write_h5ad(tmp_path / "e.h5ad")
    result = read_expression(tmp_path / "e.h5ad")
    assert result.info["orientation"] == "samples_by_genes"
    pd.testing.assert_frame_equal(result.frame, reference)


def test_read_expression_missing_strings_and_inf(tmp_path):
    values = {
        "TP53": ["NA", 2.0, 3.0, 4.0, 5, 6, 7, 8, 9, 10],
        "EGFR": ["null", 2.0, "", 1.0, 1, 2, 3, 4, 5, 6],
        "KRAS": ["inf", 0.2, 0.3, 0.4, 1, 2, 3, 4, 5, 6],
        "MYC": [5.0, "-inf", 7.0, 8.0, 1, 2, 3, 4, 5, 6],
    }
    samples = [f"S-{i}" for i in range(10)]
    path = _write(tmp_path / "e.csv", _small_expression_text(values, samples))
    result = read_expression(path)
    frame = result.frame
    assert np.isnan(frame.loc["S-0", "TP53"]) and np.isnan(frame.loc["S-0", "EGFR"])
    assert np.isnan(frame.loc["S-2", "EGFR"]) and frame.loc["S-1", "EGFR"] == 2.0
    assert np.isnan(frame.loc["S-0", "KRAS"]) and np.isnan(frame.loc["S-1", "MYC"])
    assert any("2 infinite values" in w for w in result.warnings)
    assert result.info["dropped_missing"] == 0  # EGFR: 2/10 missing is not above 0.2


def test_read_expression_non_numeric_junk(tmp_path):
    text = ',S-1,S-2,S-3,S-4\nTP53,1,2,"12,5",4\nEGFR,1,2,3,4\nMYC,4,3,2,1\n'
    with pytest.raises(InputError) as caught:
        read_expression(_write(tmp_path / "bad.csv", text))
    message = str(caught.value)
    for part in ("bad.csv", "'12,5'", "'S-3'", "'TP53'", "non-numeric"):
        assert part in message
    annotated = ",Description,S-1,S-2\nTP53,tumour protein,1,2\nEGFR,receptor,3,4\n"
    with pytest.raises(InputError, match="whole column is text"):
        read_expression(_write(tmp_path / "annotated.csv", annotated))


def test_read_expression_junk_names_column_row_and_value(tmp_path):
    text = ",S-1,S-2,S-3\nTP53,1,2,3\nEGFR,4,oops,6\nMYC,1,2,3\nCD8A,1,1,2\n"
    with pytest.raises(InputError) as caught:
        read_expression(_write(tmp_path / "bad.csv", text))
    message = str(caught.value)
    for part in ("bad.csv", "'oops'", "'S-2'", "'EGFR'"):
        assert part in message


def test_read_expression_duplicated_genes_keep_highest_mean(tmp_path):
    text = (
        ",S-1,S-2,S-3,S-4\nTP53,1,2,3,4\nEGFR,10,20,30,40\nTP53,5,6,7,8\nMYC,1,1,2,2\n"
        "EGFR,0,0,0,1\nTP53 ,0,0,0,0\n"
    )
    result = read_expression(_write(tmp_path / "dup.csv", text))
    assert list(result.frame.columns) == ["EGFR", "TP53", "MYC"]
    assert result.frame["TP53"].tolist() == [5, 6, 7, 8]
    assert result.frame["EGFR"].tolist() == [10, 20, 30, 40]
    assert result.info["duplicates_collapsed"] == 3
    assert any("2 gene symbols occur more than once" in w for w in result.warnings)


def test_read_expression_drops_sparse_genes(tmp_path):
    values = {
        "TP53": [1, 2, "NA", "NA", 5, 6, 7, 8, 9, 10],
        "EGFR": [1, 2, "NA", 4, 5, 6, 7, 8, 9, 10],
        "MYC": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    }
    samples = [f"P-{i}" for i in range(10)]
    path = _write(tmp_path / "e.csv", _small_expression_text(values, samples))
    assert list(read_expression(path).frame.columns) == ["TP53", "EGFR", "MYC"]
    result = read_expression(path, max_missing=0.15)
    assert list(result.frame.columns) == ["EGFR", "MYC"]
    assert result.info["dropped_missing"] == 1
    assert any("dropped 1 genes" in w and "'TP53'" in w for w in result.warnings)
    with pytest.raises(InputError):
        read_expression(path, max_missing=1.5)


def test_read_expression_duplicated_samples(tmp_path):
    text = ",R01-001,R01-002,r01-001 \nTP53,1,2,3\nEGFR,1,2,3\nMYC,3,2,1\n"
    with pytest.raises(InputError, match=r"duplicated sample ID 'R01-001'"):
        read_expression(_write(tmp_path / "e.csv", text))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("\n\n  \n", "file is empty"),
        (",S-1,S-2,S-3\n", "header but no data rows"),
        ("gene S-1 S-2\nTP53 1 2\n", "only one column found"),
        ("a,b\n1,2,3,4\n5,6\n", "different numbers of fields"),
    ],
)
def test_read_expression_bad_files(tmp_path, content, message):
    path = _write(tmp_path / "bad.csv", content)
    with pytest.raises(InputError, match=message) as caught:
        read_expression(path)
    assert "bad.csv" in str(caught.value)


def test_read_expression_missing_file_and_binary(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_expression(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"\x00\x01\x02PK\x03\x04" * 20)
    with pytest.raises(InputError, match="bin.csv"):
        read_expression(tmp_path / "bin.csv")
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="broken.csv.gz"):
        read_expression(tmp_path / "broken.csv.gz")
    (tmp_path / "broken.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(InputError, match="not a readable Excel"):
        read_expression(tmp_path / "broken.xlsx")


@pytest.mark.parametrize("kind", ["counts", "fpkm", "log", "zscore"])
def test_read_expression_scale_hint(tmp_path, kind):
    rng = np.random.default_rng(7)
    n_genes, n_samples = 50, 20
    if kind == "counts":
        matrix = rng.poisson(200, size=(n_genes, n_samples)).astype(float)
    elif kind == "fpkm":
        matrix = rng.gamma(2.0, 30.0, size=(n_genes, n_samples))
    elif kind == "log":
        matrix = np.log2(rng.gamma(2.0, 30.0, size=(n_genes, n_samples)) + 1)
    else:
        raw = rng.normal(3.0, 2.0, size=(n_genes, n_samples))
        matrix = (raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, ddof=1, keepdims=True)
    frame = pd.DataFrame(
        matrix,
        index=[f"GENE{i}A" for i in range(n_genes)],
        columns=[f"S-{i}" for i in range(n_samples)],
    )
    frame.to_csv(tmp_path / "e.csv")
    assert read_expression(tmp_path / "e.csv").info["scale_hint"] == kind


# --------------------------------------------------------------------------- imaging


def test_read_imaging_pyradiomics_fixture():
    result = read_imaging(RADIOMICS)
    raw = pd.read_csv(RADIOMICS, index_col="ID")
    constant = [c for c in raw.columns if raw[c].nunique() == 1]
    assert constant == ["lbp-3D-m1_firstorder_Entropy", "lbp-3D-m1_firstorder_Minimum"]
    expected = raw.drop(columns=constant)
    assert result.info["pyradiomics"] is True
    assert result.info["id_column"] == "ID"
    assert list(result.frame.index) == list(raw.index)
    assert list(result.frame.columns) == list(expected.columns)
    assert (result.frame.dtypes == np.float64).all()
    np.testing.assert_allclose(result.frame.to_numpy(), expected.to_numpy())
    assert any(all(c in w for c in constant) and "constant" in w for w in result.warnings)
    features = result.info["features"]
    assert list(features.columns) == [
        "label",
        "type",
        "source",
        "group",
        "levels",
        "order",
        "parent",
    ]
    assert list(features.index) == list(expected.columns)
    assert set(features["type"]) == {"continuous"}
    assert set(features["source"]) == {"radiomic"}
    assert features.loc["wavelet-LLH_glcm_Autocorrelation", "group"] == "wavelet-LLH_glcm"
    assert features.loc["original_shape_Elongation", "group"] == "original_shape"
    assert (
        features.loc["log-sigma-3-0-mm-3D_firstorder_10Percentile", "group"]
        == "log-sigma-3-0-mm-3D_firstorder"
    )
    assert (features["levels"] == "").all()


def test_read_imaging_drops_diagnostics(tmp_path):
    raw = pd.read_csv(RADIOMICS)
    raw.insert(1, "diagnostics_Versions_PyRadiomics", "v3.0.1")
    raw.insert(2, "diagnostics_Mask-original_VoxelNum", np.arange(len(raw)))
    raw.to_csv(tmp_path / "pyrad.csv", index=False)
    result = read_imaging(tmp_path / "pyrad.csv")
    assert result.info["diagnostics_dropped"] == 2
    assert not any(c.startswith("diagnostics") for c in result.frame.columns)
    assert result.frame.shape == (len(raw), 13)


def _semantic_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Case ID": [f"P-{i:02d}" for i in range(12)],
            "volume/cc": np.linspace(1.0, 12.5, 12),
            "score": [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4],
            "margin": ["smooth", "spiculated", "lobulated"] * 4,
            "severity": ["mild", "severe", "none", "moderate"] * 3,
            "effusion": ["present", "absent", "absent", "present"] * 3,
            "site": ["LUL"] * 12,
            "empty": ["NA"] * 12,
        }
    )


def test_read_imaging_generic_table(tmp_path):
    table = _semantic_table()
    table.to_csv(tmp_path / "sem.csv", index=False)
    result = read_imaging(tmp_path / "sem.csv")
    frame, features = result.frame, result.info["features"]
    assert result.info["id_column"] == "Case ID"
    assert result.info["pyradiomics"] is False
    assert list(frame.index) == table["Case ID"].tolist()
    assert list(frame.columns) == ["volume_cc", "score", "margin", "severity", "effusion"]
    assert features.loc["volume_cc", "label"] == "volume/cc"
    assert frame["volume_cc"].dtype == np.float64
    assert features.loc["volume_cc", ["type", "source", "group"]].tolist() == [
        "continuous",
        "radiomic",
        "radiomic",
    ]
    assert features.loc["score", "type"] == "continuous"
    # margins are an ordered scale (smooth < lobulated < irregular < spiculated)
    assert frame["margin"].dtype == "category" and frame["margin"].cat.ordered
    assert list(frame["margin"].cat.categories) == ["smooth", "lobulated", "spiculated"]
    assert features.loc["margin", ["type", "source", "group", "order"]].tolist() == [
        "ordinal",
        "semantic",
        "semantic",
        "vocabulary",
    ]
    assert frame["severity"].cat.ordered
    assert list(frame["severity"].cat.categories) == ["none", "mild", "moderate", "severe"]
    assert features.loc["severity", "levels"] == "none|mild|moderate|severe"
    assert features.loc["effusion", "type"] == "binary"
    assert features.loc["effusion", "levels"] == "absent|present"
    assert frame["effusion"].tolist() == table["effusion"].tolist()
    assert result.info["dropped"] == {"site": "single category 'LUL'", "empty": "no values"}
    assert any("single category" in w and "'site'" in w for w in result.warnings)
    assert any("all missing" in w and "'empty'" in w for w in result.warnings)


def test_read_imaging_types_and_source_override(tmp_path):
    _semantic_table().to_csv(tmp_path / "sem.csv", index=False)
    result = read_imaging(
        tmp_path / "sem.csv", types={"score": "ordinal", "margin": "categorical"}, source="clinical"
    )
    frame, features = result.frame, result.info["features"]
    assert frame["score"].cat.ordered
    assert list(frame["score"].cat.categories) == ["1", "2", "3", "4"]
    assert frame["score"].astype(str).tolist()[:4] == ["1", "2", "3", "4"]
    assert features.loc["score", "type"] == "ordinal"
    assert set(features["source"]) == {"clinical"}
    with pytest.raises(InputError, match="unknown feature type"):
        read_imaging(tmp_path / "sem.csv", types={"score": "interval"})
    # names of other tables' features are left for the caller to check
    same = read_imaging(tmp_path / "sem.csv", types={"Nodule Shape": "binary", "score": "ordinal"})
    assert same.info["features"].loc["score", "type"] == "ordinal"
    with pytest.raises(InputError, match="declared binary"):
        read_imaging(tmp_path / "sem.csv", types={"margin": "binary"})
    with pytest.raises(InputError, match="source must be"):
        read_imaging(tmp_path / "sem.csv", source="genomic")


def test_read_imaging_id_column_explicit(tmp_path):
    table = _semantic_table()
    table.to_csv(tmp_path / "sem.csv", index=False)
    result = read_imaging(tmp_path / "sem.csv", id_column="case id")
    assert result.info["id_column"] == "Case ID"
    with pytest.raises(InputError, match="no ID column 'Patient'"):
        read_imaging(tmp_path / "sem.csv", id_column="Patient")


def test_read_imaging_duplicated_patient(tmp_path):
    table = _semantic_table()
    table.loc[5, "Case ID"] = "p-01 "
    table.to_csv(tmp_path / "sem.csv", index=False)
    with pytest.raises(
        InputError, match=r"sem.csv: duplicated patient ID 'P-01' in column 'Case ID'"
    ):
        read_imaging(tmp_path / "sem.csv")


def test_read_imaging_numeric_junk(tmp_path):
    table = _semantic_table()
    table["volume/cc"] = table["volume/cc"].astype(object)
    table.loc[3, "volume/cc"] = "n.d."
    table.to_csv(tmp_path / "sem.csv", index=False)
    with pytest.raises(InputError) as caught:
        read_imaging(tmp_path / "sem.csv")
    message = str(caught.value)
    for part in ("sem.csv", "'volume/cc'", "'n.d.'", "'P-03'"):
        assert part in message


def test_read_imaging_free_text_and_inf(tmp_path):
    table = pd.DataFrame(
        {
            "ID": [f"P{i}" for i in range(30)],
            "note": [f"free comment number {i}" for i in range(30)],
            "size": [float(i) for i in range(29)] + [np.inf],
        }
    )
    table.to_csv(tmp_path / "t.csv", index=False)
    result = read_imaging(tmp_path / "t.csv")
    assert list(result.frame.columns) == ["size"]
    assert np.isnan(result.frame.loc["P29", "size"])
    assert any("free text" in w and "'note'" in w for w in result.warnings)
    assert any("1 infinite values" in w for w in result.warnings)


def test_read_imaging_duplicated_column_names(tmp_path):
    text = "ID,a,a\nP1,1,2\nP2,3,4\n"
    with pytest.raises(InputError, match="column name 'a' occurs more than once"):
        read_imaging(_write(tmp_path / "t.csv", text))


# --------------------------------------------------------------------------- AIM


def _reference() -> pd.DataFrame:
    reference = pd.read_csv(FIXTURES / "aim_reference.csv", index_col=0)
    return reference.apply(lambda column: column.str.lower())


def test_read_aim_matches_reference():
    result = read_aim(AIM)
    reference = _reference()
    frame = result.frame
    assert list(frame.index) == list(reference.index)  # R01-023v1.xml -> R01-023
    assert result.info["n_files"] == 7
    assert result.info["files_skipped"] == []
    multi = [c for c in reference.columns if reference[c].str.contains("|", regex=False).any()]
    assert multi and list(result.info["multi_valued"].columns) == multi
    single = [c for c in reference.columns if reference[c].nunique() <= 1 and c not in multi]
    assert set(single) <= set(result.info["dropped"])
    assert [c for c in frame.columns if ": " not in c] == [
        c for c in reference.columns if c not in single and c not in multi
    ]
    for column in frame.columns:
        if ": " in column:
            continue
        mine = frame[column].astype(object).where(frame[column].notna(), None)
        theirs = reference[column].where(reference[column].notna(), None)
        assert mine.tolist() == theirs.tolist(), column
    features = result.info["features"]
    # every multi-valued field became one absent/present indicator per finding
    for field in multi:
        kept = result.info["multi_valued"][field]
        assert (
            kept.where(kept.notna(), None).tolist()
            == reference[field].where(reference[field].notna(), None).tolist()
        )
        findings = reference[field].dropna().str.split("|").explode().unique()
        for finding in findings:
            name = f"{field}: {finding}"
            if name in result.info["dropped"]:  # present for every annotated patient
                continue
            assert features.loc[name, ["type", "levels", "parent"]].tolist() == [
                "binary",
                "absent|present",
                field,
            ]
            has = reference[field].dropna().str.split("|").map(lambda v, f=finding: f in v)
            expected = has.map({True: "present", False: "absent"})
            assert frame.loc[expected.index, name].astype(str).tolist() == expected.tolist()
            assert frame.loc[reference[field].isna(), name].isna().all()
    assert set(features["source"]) == {"semantic"} and set(features["group"]) == {"semantic"}
    assert features.loc["Emphysema", "type"] == "binary"
    assert features.loc["Emphysema", "levels"] == "absent|present"
    assert features.loc["Nodule Attenuation", "type"] in ("ordinal", "binary")
    assert features.loc["Nodule Attenuation", "order"] in ("vocabulary", "reference first")
    for column in frame.columns:
        assert frame[column].dtype == "category"


def test_read_aim_full_severity_vocabulary_is_ordinal(tmp_path):
    levels = [
        "low severity (1-25%)",
        "moderate severity (26-50%)",
        "moderately high severity (51-75%)",
        "high severity (greaterThan 75%)",
    ]
    template = (AIM / "R01-025.xml").read_text()
    assert 'value="moderate severity (26-50%)"' in template
    for i, level in enumerate(levels * 2):
        text = template.replace('value="moderate severity (26-50%)"', f'value="{level}"')
        text = text.replace('<id value="R01-025">', f'<id value="R01-9{i:02d}">')
        (tmp_path / f"R01-9{i:02d}.xml").write_text(text)
    result = read_aim(tmp_path)
    series = result.frame["Overall Emmphysema Severity"]
    assert series.cat.ordered
    assert list(series.cat.categories) == [level.lower() for level in levels]
    assert result.info["features"].loc["Overall Emmphysema Severity", "type"] == "ordinal"


def test_read_aim_combines_files_of_one_patient(tmp_path):
    for path in AIM.glob("*.xml"):
        shutil.copy(path, tmp_path)
    text = (AIM / "R01-031.xml").read_text()
    assert 'value="peripheral"' in text
    (tmp_path / "R01-031v2.xml").write_text(text.replace('value="peripheral"', 'value="central"'))
    result = read_aim(tmp_path)
    assert result.frame.shape[0] == 7
    assert result.frame.loc["R01-031", "Axial Location"] == "peripheral|central"
    assert any("'R01-031': combined 2 files" in w for w in result.warnings)


def test_read_aim_unlabelled_file_uses_code_table(tmp_path):
    for path in AIM.glob("*.xml"):
        shutil.copy(path, tmp_path)
    shutil.copy(FIXTURES / "aim_xml_unlabelled" / "AMC-005.xml", tmp_path / "AMC-005.xml")
    result = read_aim(tmp_path)
    reference = _reference().loc["AMC-005"]
    row = result.frame.loc["AMC-005"]
    # codes used by one label only: label and value both come from the code table
    unambiguous = [
        "Anatomic Location",
        "Nodule Associated Findings",
        "Nodule Internal Features",
        "Nodule Periphery",
        "Nodule Shape",
    ]
    multi = result.info["multi_valued"].loc["AMC-005"]
    for label in unambiguous:
        got = multi[label] if label in multi.index else row[label]
        assert got == reference[label], label
    tested = {c.split(": ")[0] for c in row.dropna().index}
    assert tested == {
        "Anatomic Location",
        "Nodule Periphery",
        "Nodule Shape",
        *multi.dropna().index,
    }
    # e.g. RID5828 "peripheral" is used by Axial Location and Nodule Calcification
    assert pd.isna(row["Axial Location"])
    assert any("AMC-005.xml" in w and "'RID5828'" in w and "2 labels" in w for w in result.warnings)
    assert result.info["codes_looked_up"] > 0
    # every other patient is read exactly as before
    plain = read_aim(AIM)
    others = [p for p in plain.frame.index if p != "AMC-005"]
    common = [c for c in plain.frame.columns if c in result.frame.columns]
    pd.testing.assert_frame_equal(
        plain.frame.loc[others, common].astype(object),
        result.frame.loc[others, common].astype(object),
    )


def test_code_table_consistent():
    codes = rio.radlex_aim_codes()
    assert list(codes.columns) == ["code", "name", "label"]
    assert not codes.duplicated().any()
    assert (codes.groupby("code")["name"].nunique() == 1).all()
    assert set(codes.loc[codes["code"] == "RID28473", "name"]) == {"absent"}


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ImageAnnotationCollection><person><id value="&lol3;"/></person></ImageAnnotationCollection>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ImageAnnotationCollection><person><id value="&xxe;"/></person></ImageAnnotationCollection>
"""


@pytest.mark.parametrize("payload", [BOMB, EXTERNAL], ids=["bomb", "external"])
def test_read_aim_refuses_unsafe_xml(tmp_path, payload):
    shutil.copy(AIM / "AMC-003.xml", tmp_path)
    (tmp_path / "evil.xml").write_text(payload)
    with pytest.raises(InputError, match=r"evil.xml: refused unsafe XML"):
        read_aim(tmp_path)


def test_read_aim_skips_malformed_xml(tmp_path):
    for path in AIM.glob("*.xml"):
        shutil.copy(path, tmp_path)
    (tmp_path / "broken.xml").write_text((AIM / "AMC-003.xml").read_text()[:500])
    result = read_aim(tmp_path)
    assert result.info["files_skipped"] == ["broken.xml"]
    assert any("broken.xml: skipped, malformed XML" in w for w in result.warnings)
    assert result.frame.shape[0] == 7


def test_read_aim_bad_directories(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_aim(tmp_path / "missing")
    with pytest.raises(InputError, match="no .xml files"):
        read_aim(tmp_path)
    (tmp_path / "other.xml").write_text("<root><child/></root>")
    with pytest.raises(InputError, match="no imaging characteristics"):
        read_aim(tmp_path)


# --------------------------------------------------------------------------- combine


def test_combine_imaging_outer_join_and_prefix(tmp_path):
    aim = read_aim(AIM)
    radiomics = read_imaging(RADIOMICS)
    combined = combine_imaging([aim, radiomics])
    assert list(combined.frame.index) == sorted(set(aim.frame.index) | set(radiomics.frame.index))
    assert combined.frame.shape[1] == aim.frame.shape[1] + radiomics.frame.shape[1]
    assert combined.frame["Emphysema"].dtype == "category"
    only_radiomics = sorted(set(radiomics.frame.index) - set(aim.frame.index))
    assert combined.frame.loc[only_radiomics, "Emphysema"].isna().all()
    shared = sorted(set(radiomics.frame.index) & set(aim.frame.index))
    assert shared == ["R01-023", "R01-031"]
    np.testing.assert_allclose(
        combined.frame.loc[shared, "original_shape_Elongation"],
        radiomics.frame.loc[shared, "original_shape_Elongation"],
    )
    assert list(combined.info["features"].index) == list(combined.frame.columns)

    table = pd.read_csv(RADIOMICS).iloc[:, :4]
    table.to_csv(tmp_path / "other.csv", index=False)
    other = read_imaging(tmp_path / "other.csv")
    clash = combine_imaging([radiomics, other])
    assert "radiomics_small:original_shape_Elongation" in clash.frame.columns
    assert "other:original_shape_Elongation" in clash.frame.columns
    assert any("prefixed with the source name" in w for w in clash.warnings)
    with pytest.raises(InputError):
        combine_imaging([])


# --------------------------------------------------------------------------- clinical


def _expected_survival(raw: pd.DataFrame) -> pd.DataFrame:
    def date(text: str) -> dt.date | None:
        try:
            return dt.datetime.strptime(text, "%m/%d/%Y").date()
        except ValueError:
            return None

    rows = {}
    for _, row in raw.iterrows():
        shift = float(row["Days between CT and surgery"])
        if row["Survival Status"] == "Dead":
            time = float(row["Time to Death (days)"])
            event = 1.0
        else:
            time = (date(row["Date of Last Known Alive"]) - date(row["CT Date"])).days - shift
            event = 0.0
        rows[row["Patient ID"]] = (time, event)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["time", "event"])


def test_read_clinical_tcia_fixture():
    result = read_clinical(CLINICAL, derive_survival=True)
    raw = pd.read_csv(CLINICAL, dtype=str, keep_default_na=False)
    frame = result.frame
    assert list(frame.index) == raw["Patient ID"].tolist()
    assert result.info["mutations"] == ["EGFR", "KRAS", "ALK"]
    assert result.info["survival"] is True
    mapping = {"Mutant": MUTANT, "Translocated": MUTANT, "Wildtype": WILDTYPE}
    for short, column in [
        ("EGFR", "EGFR mutation status"),
        ("KRAS", "KRAS mutation status"),
        ("ALK", "ALK translocation status"),
    ]:
        assert list(frame[short].cat.categories) == [WILDTYPE, MUTANT]
        expected = raw[column].map(mapping)
        got = frame[short].astype(object).where(frame[short].notna(), None)
        assert got.tolist() == expected.where(expected.notna(), None).tolist()
    expected = _expected_survival(raw)
    np.testing.assert_allclose(frame["survival_time"], expected["time"])
    np.testing.assert_array_equal(frame["survival_event"], expected["event"])
    dates = [c for c in raw.columns if "Date" in c]
    assert sorted(result.info["identifiers_dropped"]) == sorted(dates)
    assert not set(dates) & set(frame.columns)
    assert any("may identify patients" in w for w in result.warnings)
    assert frame["Age at Histological Diagnosis"].dtype == np.float64
    assert np.isnan(frame.loc["AMC-001", "Weight (lbs)"])  # "Not Collected"
    assert "Histology" in frame.columns  # header "Histology " stripped
    assert frame["Gender"].dtype == "category"
    assert frame["Pathological T stage"].cat.ordered


def _clinical_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "PatientID": [f"P{i}" for i in range(12)],
            "Name": [f"Person {i}" for i in range(12)],
            "MRN": [str(100000 + i) for i in range(12)],
            "e-mail": [f"p{i}@example.org" for i in range(12)],
            "Notes": [f"remark {i}" for i in range(12)],
            "EGFR": [
                "Positive",
                "wild type",
                "WT",
                "Mutation",
                "No",
                "1",
                "0",
                "Not Assessed",
                "",
                "weird",
                "Yes",
                "Negative",
            ],
            "age": [50, 60, 70, 55, "NA", 65, 45, 75, 80, 62, 58, 71],
            "stage": ["I", "II", "III", "IV"] * 3,
            "os_days": [100, 200, -5, 400, 500, 600, 700, 800, 900, 1000, 1100, "NA"],
            "vital": ["Dead", "Alive", "Dead", "alive", "1", "0", "dead", "??", "Alive"]
            + ["Alive"] * 3,
        }
    )


def test_read_clinical_generic(tmp_path):
    table = _clinical_table()
    table.to_csv(tmp_path / "clin.csv", index=False)
    result = read_clinical(
        tmp_path / "clin.csv", survival_time="os_days", survival_event="vital", covariates=["age"]
    )
    frame = result.frame
    expected_egfr = [
        MUTANT, WILDTYPE, WILDTYPE, MUTANT, WILDTYPE, MUTANT, WILDTYPE, None, None, None, MUTANT,
        WILDTYPE,
    ]  # fmt: skip
    got = frame["EGFR"].astype(object).where(frame["EGFR"].notna(), None).tolist()
    assert got == expected_egfr
    assert any("'EGFR'" in w and "'weird'" in w for w in result.warnings)
    assert result.info["mutations"] == ["EGFR"]
    time = frame["survival_time"]
    assert np.isnan(time["P2"]) and np.isnan(time["P11"]) and time["P1"] == 200
    assert any(
        "negative survival time for 1 patients" in w and "'P2'" in w for w in result.warnings
    )
    event = frame["survival_event"]
    assert event.tolist()[:7] == [1, 0, 1, 0, 1, 0, 1] and np.isnan(event["P7"])
    assert result.info["covariates"] == ["age"]
    assert frame["age"].dtype == np.float64 and np.isnan(frame.loc["P4", "age"])
    assert sorted(result.info["identifiers_dropped"]) == ["MRN", "Name", "Notes", "e-mail"]
    assert not {"MRN", "Name", "Notes", "e-mail"} & set(frame.columns)
    assert frame["stage"].cat.ordered and list(frame["stage"].cat.categories) == [
        "I",
        "II",
        "III",
        "IV",
    ]
    kept = read_clinical(tmp_path / "clin.csv", keep_identifiers=True)
    assert {"MRN", "Name", "Notes", "e-mail"} <= set(kept.frame.columns)
    assert kept.info["identifiers_dropped"] == []
    assert kept.info["survival"] is False


def test_read_clinical_explicit_mutation_columns(tmp_path):
    table = _clinical_table()
    table["status of gene x"] = ["mutant", "wildtype"] * 6
    table.to_csv(tmp_path / "clin.csv", index=False)
    result = read_clinical(tmp_path / "clin.csv", mutation_columns={"status of gene x": "GENEX"})
    assert result.info["mutations"] == ["GENEX"]
    assert result.frame["GENEX"].dtype == "category"
    assert result.frame["GENEX"].tolist()[:2] == [MUTANT, WILDTYPE]
    none = read_clinical(tmp_path / "clin.csv", mutation_columns=[])
    assert none.info["mutations"] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"derive_survival": True}, "the TCIA columns .* are not found"),
        ({"survival_time": "os_days"}, "must be given together"),
        ({"survival_time": "os", "survival_event": "vital"}, "no survival time column 'os'"),
        ({"covariates": ["bmi"]}, "no covariate column 'bmi'"),
        ({"id_column": "Subject"}, "no ID column 'Subject'"),
        (
            {"derive_survival": True, "survival_time": "os_days", "survival_event": "vital"},
            "not both",
        ),
    ],
)
def test_read_clinical_bad_options(tmp_path, kwargs, message):
    _clinical_table().to_csv(tmp_path / "clin.csv", index=False)
    with pytest.raises(InputError, match=message):
        read_clinical(tmp_path / "clin.csv", **kwargs)


def test_read_clinical_duplicated_patient(tmp_path):
    table = _clinical_table()
    table.loc[3, "PatientID"] = "P1"
    table.to_csv(tmp_path / "clin.csv", index=False)
    with pytest.raises(InputError, match="duplicated patient ID 'P1' in column 'PatientID'"):
        read_clinical(tmp_path / "clin.csv")


def test_read_clinical_latin1_and_excel(tmp_path):
    table = _clinical_table()
    table["Ethnicity"] = ["Hispanic/Latino", "Française"] * 6
    (tmp_path / "clin.csv").write_bytes(table.to_csv(index=False).encode("latin-1"))
    result = read_clinical(tmp_path / "clin.csv")
    assert "Française" in result.frame["Ethnicity"].cat.categories
    assert any("not UTF-8" in w for w in result.warnings)
    table.to_excel(tmp_path / "clin.xlsx", index=False)
    from_excel = read_clinical(tmp_path / "clin.xlsx")
    pd.testing.assert_frame_equal(from_excel.frame, result.frame)


# --------------------------------------------------------------------------- bundle & files


def _bundle(version: str = FORMAT_VERSION) -> ad.AnnData:
    rng = np.random.default_rng(3)
    obs = pd.DataFrame(
        {"EGFR": pd.Categorical([MUTANT, WILDTYPE, None, WILDTYPE], categories=[WILDTYPE, MUTANT])},
        index=["R01-001", "R01-002", "R01-003", "R01-004"],
    )
    adata = ad.AnnData(
        rng.normal(size=(4, 3)).astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=["TP53", "EGFR", "MYC"]),
    )
    adata.obsm[IMAGING_KEY] = pd.DataFrame(
        {
            "Nodule Shape": pd.Categorical(["round", "oval", None, "round"]),
            "severity": pd.Categorical(
                ["mild", "severe", "none", "mild"],
                categories=["none", "mild", "severe"],
                ordered=True,
            ),
            "original_shape_Elongation": [0.5, 0.7, np.nan, 0.9],
        },
        index=adata.obs_names,
    )
    names = list(adata.obsm[IMAGING_KEY].columns)
    features = pd.DataFrame(
        {
            "label": names,
            "type": ["binary", "ordinal", "continuous"],
            "source": ["semantic", "semantic", "radiomic"],
            "n": [3, 4, 3],
        },
        index=names,
    )
    adata.var["module"] = pd.Categorical(["M1", "M1", "unassigned"])
    adata.obsm["eigengenes"] = pd.DataFrame({"M1": rng.normal(size=4)}, index=adata.obs_names)
    for key in GENE_STAT_KEYS:
        adata.varm[key] = rng.uniform(size=(3, 2)).astype(np.float32)
    adata.uns[UNS_KEY] = {
        "format_version": version,
        "params": {"seed": 0, "modules": {"power": 6}},
        "features": features,
        "modules": pd.DataFrame({"size": [2], "hub_genes": ["TP53|EGFR"]}, index=["M1"]),
        "associations": pd.DataFrame(
            {
                "module": ["M1"] * 3,
                "feature": names,
                "effect": [0.1, 0.2, 0.3],
                "p": [0.5, 0.01, 0.2],
                "q": [0.5, 0.03, 0.3],
                "n": [3, 4, 3],
            }
        ),  # fmt: skip
        "gene_features": ["severity", "original_shape_Elongation"],
        "gene_n": [4, 3],
        "warnings": ["one", "two"],
    }
    return adata


def test_bundle_round_trip(tmp_path):
    adata = _bundle()
    path = save_bundle(adata, tmp_path / "study.h5ad")
    assert path == tmp_path / "study.h5ad"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.h5ad"]
    loaded = load_bundle(path)
    imaging = loaded.obsm[IMAGING_KEY]
    pd.testing.assert_frame_equal(imaging, adata.obsm[IMAGING_KEY])
    assert imaging["severity"].cat.ordered
    assert list(loaded.obs["EGFR"].cat.categories) == [WILDTYPE, MUTANT]
    meta = loaded.uns[UNS_KEY]
    pd.testing.assert_frame_equal(meta["features"], adata.uns[UNS_KEY]["features"])
    assert meta["gene_features"] == ["severity", "original_shape_Elongation"]
    assert meta["warnings"] == ["one", "two"]
    assert meta["params"]["modules"]["power"] == 6
    np.testing.assert_array_equal(loaded.X, adata.X)


def test_save_bundle_refuses_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        save_bundle(_bundle(), tmp_path / "no" / "such" / "dir" / "b.h5ad")


def test_save_bundle_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "study.h5ad"
    save_bundle(_bundle(), target)
    before = target.read_bytes()

    def explode(self, filename, **kwargs):
        Path(filename).write_bytes(b"partial")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_bundle(_bundle(), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.h5ad"]


def test_load_bundle_errors(tmp_path):
    with pytest.raises(InputError, match="bundle not found"):
        load_bundle(tmp_path / "missing.h5ad")
    good = save_bundle(_bundle(), tmp_path / "good.h5ad")
    data = good.read_bytes()
    (tmp_path / "truncated.h5ad").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="truncated.h5ad: not an h5ad file"):
        load_bundle(tmp_path / "truncated.h5ad")
    (tmp_path / "text.h5ad").write_text("hello")
    with pytest.raises(InputError, match="text.h5ad: not an h5ad file"):
        load_bundle(tmp_path / "text.h5ad")
    ad.AnnData(np.zeros((2, 2), dtype=np.float32)).write_h5ad(tmp_path / "foreign.h5ad")
    with pytest.raises(InputError, match=r"not a radmap bundle: no uns\['radmap'\]"):
        load_bundle(tmp_path / "foreign.h5ad")
    save_bundle(_bundle("radmap-bundle/0"), tmp_path / "old.h5ad")
    with pytest.raises(InputError) as caught:
        load_bundle(tmp_path / "old.h5ad")
    assert str(caught.value) == (
        "old.h5ad: made by radmap format radmap-bundle/0, this radmap reads "
        f"{FORMAT_VERSION} (format 2 keeps the patients without expression, the correction "
        "family of every q and the effect measures): re-run `radmap analyze` on the inputs"
    )


def test_atomic_writes_and_hash(tmp_path):
    path = atomic_write_text(tmp_path / "notes.md", "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    data = bytes(range(256)) * 10
    binary = atomic_write_bytes(tmp_path / "blob.bin", data)
    assert binary.read_bytes() == data
    assert file_sha256(binary) == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "notes.md"]
    with pytest.raises(InputError, match="does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "x.bin", b"")
    with pytest.raises(InputError, match="file not found"):
        file_sha256(tmp_path / "nothing")


def test_read_expression_fast_and_checked_paths_agree(tmp_path, monkeypatch):
    text = ",S-1,S-2,S-3\nTP53,1.5,NA,inf\nEGFR,null,2e3,-4\nMYC,,0.25,Not Collected\n"
    path = _write(tmp_path / "e.csv", text)
    fast = [read_expression(path, max_missing=1.0), read_expression(EXPRESSION)]
    monkeypatch.setattr(rio.tables, "_fast_numeric_table", lambda text, delimiter: None)
    checked = [read_expression(path, max_missing=1.0), read_expression(EXPRESSION)]
    for quick, careful in zip(fast, checked):
        pd.testing.assert_frame_equal(quick.frame, careful.frame)
        assert quick.warnings == careful.warnings
    assert fast[0].frame.loc["S-1", "EGFR"] != fast[0].frame.loc["S-1", "EGFR"]  # NaN
    assert fast[0].frame.loc["S-2", "EGFR"] == 2000.0


def test_read_imaging_splits_multi_valued_columns_into_indicators(tmp_path):
    text = (
        "ID,findings,shape\n"
        "P1,pleural attachment|vascular convergence,round\n"
        "P2,pleural attachment,oval\n"
        "P3,,round\n"
        "P4,vascular convergence|septal thickening,oval\n"
    )
    result = read_imaging(_write(tmp_path / "t.csv", text))
    frame, features = result.frame, result.info["features"]
    assert "findings" not in frame.columns
    pleural = frame["findings: pleural attachment"]
    assert pleural.astype(object).where(pleural.notna(), None).tolist() == [
        "present", "present", None, "absent",
    ]  # fmt: skip
    assert features.loc["findings: septal thickening", ["type", "levels", "parent"]].tolist() == [
        "binary",
        "absent|present",
        "findings",
    ]
    assert features.loc["shape", "parent"] == ""
    kept = result.info["multi_valued"]["findings"]
    assert kept.tolist()[:2] == ["pleural attachment|vascular convergence", "pleural attachment"]
    assert pd.isna(kept["P3"])
    assert any("multi-valued" in w and "'findings'" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("plain.csv", ",S-1,S-2,S-3\nTP53,1,2.5,NA\nEGFR,-1e-3,,7\nMYC,4,3,2\n"),
        (
            "bom.tsv",
            "\ufeff\tS-1\tS-2\tS-3\nTP53\t1\t2\tnull\nEGFR\t0.1\t0.2\t0.3\nKRAS\t1\t1\t1\n",
        ),
        ("ints.csv", ",S-1,S-2,S-3\nTP53,1,200,3\nEGFR,4,5,6\nMYC,,,\nKRAS,7,8,9\n"),
        ("labels.csv", ",S-1,S-2\nNA,1,2\nEGFR,3,4\n  MYC ,5,6\nKRAS,7,8\n"),
        ("crlf.csv", ",S-1,S-2,S-3\r\nTP53,1,2,3\r\nEGFR,4.25,5,6\r\nMYC,1,1,2\r\n"),
        ("textcell.csv", ",S-1,S-2,S-3\nTP53,1,2,3\nEGFR,4,high,6\nMYC,1,1,2\n"),
        ("gz.csv.gz", ",S-1,S-2,S-3\nTP53,1,2,3\nEGFR,4,5,6\nMYC,1,9,2\n"),
    ],
)
def test_arrow_reader_agrees_with_the_checked_parser(tmp_path, name, text):
    from radmap.analysis.io import tables

    path = tmp_path / name
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    plain = tables._plain_text_bytes(path)
    arrow = tables._arrow_numeric_table(*plain) if plain is not None else None
    notes = rio.common._Notes(path.name)
    checked = tables._fast_numeric_table(*tables._load_text(path, notes))
    assert (arrow is None) == (checked is None)
    if arrow is not None:
        assert arrow[0] == checked[0] and arrow[1] == checked[1]
        np.testing.assert_array_equal(arrow[2], checked[2])
    if name in ("plain.csv", "bom.tsv", "crlf.csv", "gz.csv.gz"):
        assert arrow is not None  # the fast path is taken for ordinary files
    if name == "textcell.csv":
        with pytest.raises(InputError, match="non-numeric value 'high'"):
            read_expression(path)
    else:
        assert read_expression(path).frame.shape[0] >= 2
