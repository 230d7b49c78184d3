"""Cohorts in the layouts labs bring: TCGA / GDC, cBioPortal, TCIA; other diseases and markers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import validate
from radmap.analysis.bundle import MUTANT, SURVIVAL_EVENT, SURVIVAL_TIME, WILDTYPE
from radmap.analysis.io import read_clinical, read_expression, read_imaging
from radmap.analysis.pipeline import Config
from radmap.analysis.validate import InputError

import radmap


def _states(column: pd.Series) -> list:
    return [None if pd.isna(value) else value for value in column]


# --- TCGA barcodes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "TCGA-02-0003",
        "TCGA-02-0003-01A",
        "TCGA-02-0003-01A-01R-1849-01",
        "tcga-02-0003-01a",
        "TCGA.02.0003.01A.01R",
        "tcga_02_0003",
        " TCGA-02-0003-01 ",
    ],
)
def test_tcga_barcodes_normalise_to_their_patient(raw):
    assert validate.normalise_id(raw) == "TCGA-02-0003"


def test_non_tcga_ids_and_patterns_are_left_alone():
    assert validate.normalise_id("R01-023") == "R01-023"
    assert validate.normalise_id("TCGA-02-0003-01A", pattern=r"(TCGA-\w+-\w+-\w+)") == (
        "TCGA-02-0003-01A"
    )


def test_tumour_and_normal_samples_are_told_apart():
    ids = [
        "TCGA-02-0003-11A-01R",  # normal tissue
        "TCGA-02-0003-01A-01R",  # primary tumour
        "TCGA-02-0004-02A",  # recurrence
        "TCGA-02-0004-01B",  # primary tumour, second vial
        "TCGA-02-0004-01A",  # primary tumour, first vial
        "TCGA-02-0005-20A",  # control
        "TCGA-02-0006",
    ]
    selection = validate.select_tcga_samples(ids, source="expr.csv")
    assert selection.keep.tolist() == [False, True, False, False, True, False, True]
    text = " ".join(selection.messages)
    assert "1 normal-tissue samples" in text and "TCGA-02-0003-11A-01R" in text
    assert "1 control samples" in text
    assert "1 patients have several tumour samples" in text
    assert selection.rule == validate.TCGA_RULE
    assert validate.select_tcga_samples(["P1", "P2"]).messages == []


def test_expression_sample_barcodes_match_imaging_patient_barcodes(tmp_path):
    rng = np.random.default_rng(0)
    patients = [f"TCGA-06-{i:04d}" for i in range(1, 13)]
    samples = [f"{p}-01A-11R-1849-01" for p in patients] + [f"{patients[0]}-11A-11R-1849-01"]
    genes = [f"G{i}" for i in range(30)]
    pd.DataFrame(rng.normal(size=(30, 13)), index=genes, columns=samples).to_csv(
        tmp_path / "expr.csv", index_label=""
    )
    imaging_ids = [p.lower().replace("-", ".") for p in patients]
    pd.DataFrame({"ID": imaging_ids, "volume": rng.normal(size=12)}).to_csv(
        tmp_path / "img.csv", index=False
    )
    expression = read_expression(tmp_path / "expr.csv")
    imaging = read_imaging(tmp_path / "img.csv")
    assert list(expression.frame.index) == patients  # the normal sample is left out
    assert any("normal-tissue" in w for w in expression.warnings)
    assert any("matched to their patient barcode" in w for w in expression.warnings)
    np.testing.assert_allclose(
        expression.frame.loc[patients[0]].to_numpy(),
        pd.read_csv(tmp_path / "expr.csv", index_col=0)[samples[0]].to_numpy(),
    )
    report = validate.match_samples(
        {"expression": list(expression.frame.index), "imaging": list(imaging.frame.index)}
    )
    assert report.matched == patients


# --- TCGA clinical layout, survival, markers -------------------------------------------------

TCGA_HEADER = (
    "bcr_patient_uuid\tbcr_patient_barcode\tpatient_id\tvital_status\tdeath_days_to\t"
    "last_contact_days_to\tage_at_initial_pathologic_diagnosis\tkarnofsky_performance_score\t"
    "idh1_status\tmgmt_promoter_status"
)


def _tcga_clinical(tmp_path, rows):
    second = TCGA_HEADER.replace("death_days_to", "days_to_death").replace(
        "last_contact_days_to", "days_to_last_followup"
    )
    third = "\t".join(["CDE_ID:"] + [f"CDE_ID:{2000 + i}" for i in range(9)])
    path = tmp_path / "nationwidechildrens.org_clinical_patient_gbm.txt"
    path.write_text("\n".join([TCGA_HEADER, second, third, *rows]) + "\n", encoding="utf-8")
    return path


TCGA_ROWS = [
    f"uuid-{i}\tTCGA-02-{i:04d}\t{i:04d}\t{status}\t{death}\t{contact}\t{age}\t{kps}\t{idh}\t{mgmt}"
    for i, (status, death, contact, age, kps, idh, mgmt) in enumerate(
        [
            ("Dead", "300", "[Not Applicable]", "54", "80", "R132H", "Methylated"),
            ("Alive", "[Not Applicable]", "1200", "61", "[Not Evaluated]", "WT", "Unmethylated"),
            ("Dead", "150", "[Not Applicable]", "[Not Available]", "60", "WT", "[Not Available]"),
            ("Alive", "[Not Applicable]", "800", "47", "90", "R132C", "Methylated"),
            ("[Not Available]", "[Not Available]", "[Not Available]", "70", "[Unknown]", "WT", "Unmethylated"),
            ("Dead", "[Discrepancy]", "[Not Applicable]", "66", "70", "WT", "Unmethylated"),
        ],
        start=1,
    )
]  # fmt: skip


def test_tcga_clinical_layout(tmp_path):
    result = read_clinical(_tcga_clinical(tmp_path, TCGA_ROWS))
    frame = result.frame
    assert list(frame.index) == [f"TCGA-02-{i:04d}" for i in range(1, 7)]  # no header rows
    assert any("2 extra header rows" in w for w in result.warnings)
    assert result.info["id_column"] == "bcr_patient_barcode"
    # Bracketed tokens are missing values: numeric columns stay numeric.
    age = frame["age_at_initial_pathologic_diagnosis"]
    assert age.dtype == np.float64 and age.isna().sum() == 1
    assert frame["karnofsky_performance_score"].dtype == np.float64
    # Survival derived from vital status and day counts without any option.
    assert result.info["survival"] is True
    np.testing.assert_array_equal(
        frame[SURVIVAL_TIME].to_numpy(), [300, 1200, 150, 800, np.nan, np.nan]
    )
    np.testing.assert_array_equal(frame[SURVIVAL_EVENT].to_numpy(), [1, 0, 1, 0, np.nan, 1])
    assert any("survival derived from TCGA columns" in w for w in result.warnings)
    # Markers: protein changes and methylation calls.
    assert result.info["mutations"] == ["IDH1", "MGMT"]
    assert frame["IDH1"].tolist() == [MUTANT, WILDTYPE, WILDTYPE, MUTANT, WILDTYPE, WILDTYPE]
    assert _states(frame["MGMT"]) == [
        MUTANT, WILDTYPE, None, MUTANT, WILDTYPE, WILDTYPE
    ]  # fmt: skip
    # Identifier-like columns are left out, naming the command-line flag.
    assert "patient_id" not in frame and "bcr_patient_uuid" not in frame
    assert any("--keep-identifiers" in w for w in result.warnings)
    assert not any("keep_identifiers=True" in w for w in result.warnings)


def test_tcga_survival_derived_from_the_old_column_names(tmp_path):
    table = pd.DataFrame(
        {
            "bcr_patient_barcode": ["TCGA-02-0001", "TCGA-02-0002", "TCGA-02-0003"],
            "vital_status": ["DECEASED", "LIVING", "Alive"],
            "days_to_death": ["100", "[Not Applicable]", "[Not Applicable]"],
            "days_to_last_followup": ["90", "400", "[Not Available]"],
        }
    )
    table.to_csv(tmp_path / "clin.tsv", sep="\t", index=False)
    frame = read_clinical(tmp_path / "clin.tsv").frame
    np.testing.assert_array_equal(frame[SURVIVAL_TIME].to_numpy(), [100, 400, np.nan])
    np.testing.assert_array_equal(frame[SURVIVAL_EVENT].to_numpy(), [1, 0, 0])


def test_survival_time_of_deaths_only_is_refused(tmp_path):
    path = _tcga_clinical(tmp_path, TCGA_ROWS)
    with pytest.raises(InputError, match="no value for any of the 2 censored"):
        read_clinical(path, survival_time="death_days_to", survival_event="vital_status")
    with pytest.raises(InputError, match="derives by itself"):
        read_clinical(path, survival_time="death_days_to")


def test_cbioportal_clinical_layout(tmp_path):
    lines = [
        "#Patient Identifier\tOverall Survival Status\tOverall Survival (Months)\tIDH1",
        "#Identifier to uniquely identify a patient.\tOS status\tOS months\tIDH1 call",
        "#STRING\tSTRING\tNUMBER\tSTRING",
        "#1\t1\t1\t1",
        "PATIENT_ID\tOS_STATUS\tOS_MONTHS\tIDH1",
        "TCGA-02-0001\t1:DECEASED\t10.0\tR132H",
        "TCGA-02-0002\t0:LIVING\t24.5\tWT",
        "TCGA-02-0003\t0:LIVING\tNA\tNS",
        "TCGA-02-0004\t1:DECEASED\t3\tR132H R132C",
    ]
    (tmp_path / "data_clinical_patient.txt").write_text("\n".join(lines) + "\n")
    result = read_clinical(tmp_path / "data_clinical_patient.txt")
    frame = result.frame
    assert list(frame.index) == ["TCGA-02-0001", "TCGA-02-0002", "TCGA-02-0003", "TCGA-02-0004"]
    assert any("4 '#' metadata lines" in w for w in result.warnings)
    days = 365.25 / 12
    np.testing.assert_allclose(
        frame[SURVIVAL_TIME].to_numpy(), [10 * days, 24.5 * days, np.nan, 3 * days]
    )
    np.testing.assert_array_equal(frame[SURVIVAL_EVENT].to_numpy(), [1, 0, 0, 1])
    assert _states(frame["IDH1"]) == [MUTANT, WILDTYPE, None, MUTANT]


@pytest.mark.parametrize(
    ("header", "values", "expected"),
    [
        ("promoter call", ["Methylated", "Unmethylated", "unmethylated"], [1, 0, 0]),
        ("CN call", ["Amplified", "Not amplified", "Amplified"], [1, 0, 1]),
        ("1p19q", ["Codeleted", "Non-codel", "[Unknown]"], [1, 0, None]),
        ("hotspot", ["p.G12D", "WT", "G13D"], [1, 0, 1]),
        ("ERBB2 IHC", ["Positive", "Negative", "Positive"], [1, 0, 1]),
        ("PTEN loss", ["1", "0", "0"], [1, 0, 0]),
    ],
)
def test_marker_vocabularies(tmp_path, header, values, expected):
    table = pd.DataFrame({"ID": [f"P{i}" for i in range(6)], header: values * 2})
    table.to_csv(tmp_path / "clin.csv", index=False)
    result = read_clinical(tmp_path / "clin.csv")
    assert len(result.info["mutations"]) == 1
    column = result.frame[result.info["mutations"][0]]
    states = {MUTANT: 1, WILDTYPE: 0}
    got = [states.get(v) for v in _states(column)]
    assert got == expected * 2
    assert not result.warnings


def test_plain_yes_no_and_stage_columns_are_not_markers(tmp_path):
    table = pd.DataFrame(
        {
            "ID": [f"P{i}" for i in range(6)],
            "radiation": ["YES", "NO"] * 3,
            "T stage": ["T1a", "T2", "T1b"] * 2,
            "grade": ["G12", "G13", "G12"] * 2,
        }
    )
    table.to_csv(tmp_path / "clin.csv", index=False)
    assert read_clinical(tmp_path / "clin.csv").info["mutations"] == []


def test_marker_values_map_other_vocabularies(tmp_path):
    table = pd.DataFrame(
        {"ID": ["P1", "P2", "P3", "P4"], "MGMT status": ["Hyper", "Hypo", "Hyper", "n.d."]}
    )
    table.to_csv(tmp_path / "clin.csv", index=False)
    unmapped = read_clinical(tmp_path / "clin.csv")
    assert unmapped.frame["MGMT"].isna().all()
    assert any("--marker-value" in w for w in unmapped.warnings)
    mapped = read_clinical(
        tmp_path / "clin.csv",
        marker_values={"hyper": "mutant", "Hypo": "wildtype", "N.D.": "missing"},
    )
    column = mapped.frame["MGMT"]
    assert _states(column) == [
        MUTANT, WILDTYPE, MUTANT, None
    ]  # fmt: skip
    assert not mapped.warnings
    with pytest.raises(InputError, match="--marker-value Hyper=maybe"):
        read_clinical(tmp_path / "clin.csv", marker_values={"Hyper": "maybe"})


# --- ID column chosen by matching values -------------------------------------------------------


def test_id_column_chosen_by_matching_values(tmp_path):
    barcodes = [f"TCGA-02-{i:04d}" for i in range(1, 11)]
    table = pd.DataFrame(
        {
            "patient_id": [f"{i:04d}" for i in range(1, 11)],
            "submitter_id": barcodes,
            "age": np.arange(50, 60),
        }
    )
    table.to_csv(tmp_path / "clin.csv", index=False)
    naive = read_clinical(tmp_path / "clin.csv")
    assert naive.info["id_column"] == "patient_id"
    chosen = read_clinical(tmp_path / "clin.csv", match_ids=set(barcodes[:8]))
    assert chosen.info["id_column"] == "submitter_id"
    assert list(chosen.frame.index) == barcodes
    assert any(
        "ID column 'submitter_id' chosen: 8 of its IDs match" in w and "'patient_id': 0" in w
        for w in chosen.warnings
    )
    explicit = read_clinical(tmp_path / "clin.csv", id_column="patient_id", match_ids=set(barcodes))
    assert explicit.info["id_column"] == "patient_id"
    imaging = pd.DataFrame({"Patient": [f"{i:04d}" for i in range(1, 11)], "case": barcodes})
    imaging["volume"] = np.arange(10.0)
    imaging.to_csv(tmp_path / "img.csv", index=False)
    assert read_imaging(tmp_path / "img.csv", match_ids=barcodes).info["id_column"] == "case"


def test_id_column_marker_and_mutation_options_from_command_line_and_toml(tmp_path):
    config = Config().updated(
        {
            "id_column": ["clinical=bcr_patient_barcode", "ID"],
            "marker_values": ["Hyper=mutant", "Hypo=wildtype"],
            "mutation_columns": ["mgmt_status=MGMT", "IDH1 status"],
        }
    )
    assert config.id_column == {"clinical": "bcr_patient_barcode", "*": "ID"}
    assert config.marker_values == {"Hyper": "mutant", "Hypo": "wildtype"}
    assert config.mutation_columns == {"mgmt_status": "MGMT", "IDH1 status": "IDH1"}
    assert Config().updated({"mutation_columns": ["EGFR status"]}).mutation_columns == [
        "EGFR status"
    ]
    with pytest.raises(InputError, match="--id-column expression=...: the input must be one of"):
        Config().updated({"id_column": "expression=x"})
    with pytest.raises(InputError, match="--marker-value 'Hyper': expected KEY=VALUE"):
        Config().updated({"marker_values": "Hyper"})
    toml = tmp_path / "radmap.toml"
    toml.write_text(
        '[inputs]\nid_column = "bcr_patient_barcode"\n'
        '[inputs.marker_values]\nHyper = "mutant"\n'
        '[inputs.mutation_columns]\n"mgmt status" = "MGMT"\n'
    )
    loaded = Config.from_toml(toml)
    assert loaded.id_column == {"*": "bcr_patient_barcode"}
    assert loaded.marker_values == {"Hyper": "mutant"}
    assert loaded.mutation_columns == {"mgmt status": "MGMT"}


# --- Free text in imaging tables --------------------------------------------------------------


def test_free_text_comments_are_left_out_of_imaging(tmp_path):
    rng = np.random.default_rng(1)
    comments = [
        "Ring enhancing lesion of the left temporal lobe with necrosis",
        "Heterogeneous enhancing mass in the right frontal lobe, oedema",
        "Infiltrative signal abnormality, consider a low grade glioma",
        "Multifocal enhancement; compare with the prior study please",
        "Small enhancing nodule near the ventricle, likely tumour",
        "",
    ]
    table = pd.DataFrame(
        {
            "ID": [f"P{i}" for i in range(40)],
            "comments": rng.choice(comments, size=40),
            "f1_tumor_location": rng.choice(["Frontal", "Temporal", "Parietal"], size=40),
            "volume": rng.normal(size=40),
        }
    )
    table.to_csv(tmp_path / "vasari.csv", index=False)
    result = read_imaging(tmp_path / "vasari.csv")
    assert "comments" not in result.frame
    assert "f1_tumor_location" in result.frame
    assert result.info["dropped"]["comments"].startswith("prose")
    assert any("free text (long sentences" in w and "'comments'" in w for w in result.warnings)
    kept = read_imaging(tmp_path / "vasari.csv", types={"comments": "categorical"})
    assert "comments" in kept.frame


# --- Small cohorts ----------------------------------------------------------------------------


def test_small_cohort_notes():
    warnings, reason = validate.cohort_size_notes(7, 10)
    assert "only 7 patients" in reason and "--min-n 10" in reason and "map is empty" in reason
    assert "lower --min-n" in warnings[0]
    warnings, reason = validate.cohort_size_notes(15, 10)
    assert reason == "" and "exploratory" in warnings[0]
    assert validate.cohort_size_notes(60, 10) == ([], "")
    with pytest.raises(InputError, match="--min-n must be at least 5"):
        validate.check_min_n(3)
    validate.check_min_n(5)


def test_too_small_overlap_names_the_flags():
    ids = [f"P{i}" for i in range(7)]
    with pytest.raises(InputError, match="--id-column INPUT=COLUMN.*lower --min-overlap"):
        validate.match_samples({"expression": ids, "imaging": ids})


# --- Done when: a TCGA-layout cohort gives the clean layout's results, with file names only ---

RESULT_TABLES = (
    "associations",
    "modules",
    "features",
    "mutation_imaging",
    "mutation_modules",
    "survival",
    "enrichment",
)


def _radmap(*args, env=None):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "radmap.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_tcga_layout_gives_the_clean_layout_results(tmp_path):
    from radmap.analysis import bundle, datasets, io

    # `radmap demo --dataset tcga-gbm` writes the synthetic TCGA-layout files and analyses
    # them with no option beyond the file names (plus the demo's module size).
    built = _radmap(
        "demo", "--dataset", "tcga-gbm", "--no-serve", env={"RADMAP_CACHE": str(tmp_path)}
    )
    assert built.returncode == 0, built.stderr
    tcga_bundle = built.stdout.strip().splitlines()[-1]
    data = tmp_path / f"demo-tcga-gbm-data-{radmap.__version__}"
    assert "SYNTHETIC" in (data / "README.txt").read_text()
    clinical_text = (data / "clinical_patient_gbm.txt").read_text()
    assert "CDE_ID:" in clinical_text and "[Not Applicable]" in clinical_text
    assert "-11A-" in (data / "expression.txt").read_text().splitlines()[0]

    cohort = datasets.synthetic_gbm()
    clean = datasets.write_clean_cohort(cohort, tmp_path / "clean")
    out = tmp_path / "clean-results"
    result = _radmap(
        "analyze",
        "--expression", clean["expression"],
        "--imaging", clean["imaging"],
        "--clinical", clean["clinical"],
        "--survival-time", "Survival time (days)",
        "--survival-event", "Event",
        "--min-module-size", "20",
        "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    tcga = io.load_bundle(tcga_bundle)
    reference = io.load_bundle(out / "bundle.h5ad")
    assert list(tcga.obs_names) == list(reference.obs_names) == list(cohort.expression.columns)
    for name in RESULT_TABLES:
        pd.testing.assert_frame_equal(
            tcga.uns[bundle.UNS_KEY][name], reference.uns[bundle.UNS_KEY][name], obj=name
        )
    for key in ("IDH1", "MGMT", SURVIVAL_TIME, SURVIVAL_EVENT):
        pd.testing.assert_series_equal(tcga.obs[key], reference.obs[key], check_names=False)
    # The planted links are found in both: IDH1 with tumour location, modules with features.
    mutation_imaging = tcga.uns[bundle.UNS_KEY]["mutation_imaging"]
    link = mutation_imaging.query("mutation == 'IDH1' and feature == 'f1_tumor_location'")
    assert float(link["q"].iloc[0]) < 0.05
    assert "comments" not in tcga.obsm[bundle.IMAGING_KEY]
    warnings = " ".join(tcga.uns[bundle.UNS_KEY]["warnings"])
    assert "normal-tissue samples" in warnings and "survival derived from TCGA" in warnings


def test_demo_rejects_an_unknown_dataset(tmp_path):
    result = _radmap("demo", "--dataset", "nope", "--no-serve", env={"RADMAP_CACHE": str(tmp_path)})
    assert result.returncode == 2
    assert "--dataset 'nope' is not a demo" in result.stderr
    assert "tcga-gbm" in result.stderr


def test_min_n_on_the_command_line_is_checked(tmp_path):
    from radmap.analysis import datasets

    paths = datasets.write_cohort(
        datasets.synthetic(n_patients=12, n_genes=60, n_features=3, seed=1), tmp_path / "c"
    )
    result = _radmap(
        "analyze", "--expression", paths["expression"], "--imaging", paths["imaging"],
        "--min-n", "3", "--out", tmp_path / "out",
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("radmap: error: --min-n must be at least 5")
    )


def test_small_cohort_records_why_the_map_is_empty(tmp_path):
    from radmap.analysis import bundle, datasets, io
    from radmap.analysis.pipeline import run

    paths = datasets.write_cohort(
        datasets.synthetic(n_patients=12, n_genes=120, n_features=4, n_modules=2, seed=3),
        tmp_path / "c",
    )
    config = Config(
        expression=paths["expression"],
        imaging=[paths["imaging"]],
        out=tmp_path / "out",
        min_overlap=5,
        min_module_size=10,
        min_n=15,
        gene_sets=[],
    )
    uns = io.load_bundle(run(config)).uns[bundle.UNS_KEY]
    reason = uns["params"]["empty_reason"]
    assert "only 12 patients" in reason and "--min-n 15" in reason
    assert any(w.startswith(reason) for w in uns["warnings"])
    assert uns["associations"]["p"].isna().all()
    assert any("permutation null skipped" in w and "need 15" in w for w in uns["warnings"])


def test_synthetic_gbm_cohort_in_the_tcga_layout_reads_back(tmp_path):
    from radmap.analysis import datasets

    cohort = datasets.synthetic_gbm(n_patients=40, n_genes=200, seed=2)
    assert list(cohort.clinical.columns[:2]) == ["IDH1", "MGMT"]
    assert "f1_tumor_location" in cohort.imaging and "spiculation" not in cohort.imaging
    assert cohort.truth["mutation_link"] == ("IDH1", "f1_tumor_location")
    paths = datasets.write_tcga_cohort(cohort, tmp_path)
    assert paths["readme"].read_text().startswith("SYNTHETIC DATA")
    clinical = read_clinical(paths["clinical"], match_ids=set(cohort.expression.columns))
    frame = clinical.frame.reindex(cohort.clinical.index)
    pd.testing.assert_series_equal(
        frame[SURVIVAL_TIME], cohort.clinical[SURVIVAL_TIME], check_names=False
    )
    pd.testing.assert_series_equal(
        frame[SURVIVAL_EVENT], cohort.clinical[SURVIVAL_EVENT], check_names=False
    )
    for marker in ("IDH1", "MGMT"):
        expected = cohort.clinical[marker].where(cohort.clinical[marker] != "Not Collected")
        assert _states(frame[marker]) == _states(expected)
    expression = read_expression(paths["expression"])
    assert list(expression.frame.index) == list(cohort.expression.columns)
    imaging = read_imaging(paths["imaging"], match_ids=set(expression.frame.index))
    assert sorted(imaging.frame.index) == sorted(cohort.imaging.index)
    assert "comments" in imaging.info["dropped"]


def test_firehose_expression_second_header_row(tmp_path):
    rng = np.random.default_rng(4)
    samples = [f"TCGA-02-{i:04d}-01A-01R-1849-01" for i in range(1, 13)]
    lines = ["Hybridization REF\t" + "\t".join(samples)]
    lines.append("Composite Element REF\t" + "\t".join(["Signal"] * 12))
    values = rng.normal(size=(25, 12))
    lines += [f"G{g}\t" + "\t".join(f"{v:.3f}" for v in row) for g, row in enumerate(values)]
    (tmp_path / "GBM.medianexp.txt").write_text("\n".join(lines) + "\n")
    result = read_expression(tmp_path / "GBM.medianexp.txt")
    assert result.frame.shape == (12, 25)
    assert result.frame.index[0] == "TCGA-02-0001"
    np.testing.assert_allclose(result.frame.to_numpy(), values.T.round(3))
    assert any(
        "second header row ('Composite Element REF', 'Signal')" in w for w in result.warnings
    )


def test_gdc_clinical_table_with_one_row_per_treatment(tmp_path):
    rows = []
    for i, (status, death, follow, idh) in enumerate(
        [
            ("Dead", "300", "'--", "R132H"),
            ("Alive", "'--", "900", "WT"),
            ("Not Reported", "'--", "'--", "WT"),
        ]
    ):
        for treatment in ("Radiation Therapy, NOS", "Pharmaceutical Therapy, NOS")[: 2 - (i == 2)]:
            rows.append(
                {
                    "case_id": f"uuid-{i}",
                    "case_submitter_id": f"TCGA-02-{i:04d}",
                    "vital_status": status,
                    "days_to_death": death,
                    "days_to_last_follow_up": follow,
                    "IDH1": idh,
                    "treatment_type": treatment,
                }
            )
    pd.DataFrame(rows).to_csv(tmp_path / "clinical.tsv", sep="\t", index=False)
    barcodes = [f"TCGA-02-{i:04d}" for i in range(3)]
    result = read_clinical(tmp_path / "clinical.tsv", match_ids=barcodes)
    frame = result.frame
    assert list(frame.index) == barcodes
    assert result.info["id_column"] == "case_submitter_id"
    assert "treatment_type" not in frame
    assert any(
        "2 patients have several rows" in w and "treatment_type" in w for w in result.warnings
    )
    np.testing.assert_array_equal(frame[SURVIVAL_TIME].to_numpy(), [300, 900, np.nan])
    np.testing.assert_array_equal(frame[SURVIVAL_EVENT].to_numpy(), [1, 0, np.nan])
    assert _states(frame["IDH1"]) == [MUTANT, WILDTYPE, WILDTYPE]


def test_repeated_patients_without_a_survival_layout_are_still_refused(tmp_path):
    pd.DataFrame({"ID": ["P1", "P1", "P2"], "age": [50, 51, 60]}).to_csv(
        tmp_path / "clin.csv", index=False
    )
    with pytest.raises(InputError, match="duplicated patient ID 'P1'"):
        read_clinical(tmp_path / "clin.csv")


def test_command_line_options_reach_the_config():
    from radmap.cli import build_parser

    args = build_parser().parse_args(
        [
            "analyze",
            "--id-column", "clinical=bcr_patient_barcode",
            "--id-column", "imaging=ID",
            "--marker-value", "Hyper=mutant",
            "--mutation-column", "mgmt_status=MGMT",
            "--min-n", "7",
        ]
    )  # fmt: skip
    options = {
        k: v for k, v in vars(args).items() if k not in ("config", "handler", "command", "debug")
    }
    config = Config().updated(options, origin="command line")
    assert config.id_column == {"clinical": "bcr_patient_barcode", "imaging": "ID"}
    assert config.marker_values == {"Hyper": "mutant"}
    assert config.mutation_columns == {"mgmt_status": "MGMT"}
    assert config.min_n == 7
    demo = build_parser().parse_args(["demo", "--dataset", "tcga-gbm", "--no-serve"])
    assert demo.dataset == "tcga-gbm"


def test_cbioportal_expression_with_an_entrez_column(tmp_path):
    rng = np.random.default_rng(5)
    samples = [f"TCGA-02-{i:04d}-01" for i in range(1, 13)]
    values = rng.normal(size=(20, 12))
    table = pd.DataFrame(values, columns=samples)
    table.insert(0, "Entrez_Gene_Id", np.arange(1000, 1020))
    table.insert(0, "Hugo_Symbol", [f"G{i}" for i in range(20)])
    table.to_csv(tmp_path / "data_mrna_seq_v2_rsem.txt", sep="\t", index=False)
    result = read_expression(tmp_path / "data_mrna_seq_v2_rsem.txt")
    assert list(result.frame.index) == [s[:12] for s in samples]
    np.testing.assert_allclose(result.frame.to_numpy(), values.T)
    assert any("'ENTREZ_GENE_ID'" in w and "cBioPortal" in w for w in result.warnings)


def test_pseudonymised_tcga_run_leaks_no_barcode(tmp_path):
    from radmap.analysis import bundle, datasets, io

    cohort = datasets.synthetic_gbm(n_patients=30, n_genes=150, seed=6)
    paths = datasets.write_tcga_cohort(cohort, tmp_path / "tcga")
    expression = pd.read_csv(paths["expression"], sep="\t", index_col=0)
    expression["TCGA-S1-0000-11A-01R-1849-01"] = expression.iloc[:, 0]  # a normal sample only
    expression.to_csv(paths["expression"], sep="\t")
    (tmp_path / "key.txt").write_text("k" * 32)
    out = tmp_path / "out"
    result = _radmap(
        "analyze",
        "--expression", paths["expression"],
        "--imaging", paths["imaging"],
        "--clinical", paths["clinical"],
        "--min-module-size", "10",
        "--gene-sets", "hallmark",
        "--pseudonymise-key", tmp_path / "key.txt",
        "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    uns = io.load_bundle(out / "bundle.h5ad").uns[bundle.UNS_KEY]
    texts = [result.stderr, *uns["warnings"]]
    texts += [p.read_text() for p in (out / "tables").glob("*")]
    assert any("normal-tissue samples" in t for t in texts)
    leaks = [t for t in texts if "s1-0" in t.lower() or "s1.0" in t.lower()]
    assert not leaks, leaks[0][:300]


def test_a_long_label_shared_by_many_patients_is_a_category_not_prose(tmp_path):
    """The NSCLC demo's AIM 'Anatomic Location' ('upper lobe of right lung', ...) is a
    semantic feature: five words, but six values over 190 patients."""
    lobes = ["upper lobe of right lung", "upper lobe of left lung", "lower lobe of left lung",
             "lower lobe of right lung", "middle lobe of right lung", "lingula"]  # fmt: skip
    rng = np.random.default_rng(3)
    table = pd.DataFrame(
        {"ID": [f"P{i}" for i in range(60)], "location": rng.choice(lobes, size=60)}
    )
    table.to_csv(tmp_path / "semantic.csv", index=False)
    result = read_imaging(tmp_path / "semantic.csv")
    assert "location" in result.frame
    assert not any("free text" in w for w in result.warnings)
