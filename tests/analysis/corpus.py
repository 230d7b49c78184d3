"""A generated corpus of hostile inputs for ``radmap analyze`` and ``radmap serve``.

:class:`Cohort` writes a small valid synthetic study (expression, imaging, clinical CSV and
one AIM XML file per patient). Every :class:`Case` writes its bad files into a folder of
its own, next to references to the valid ones, and returns the ``radmap`` command line; it
also says what the user must be told. The tests in ``test_input_corpus.py`` run each
command and check the contract.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import anndata as ad
import numpy as np
import pandas as pd
from radmap.analysis import datasets, pipeline

OUT = "results"
"""Name of the ``--out`` folder inside a case's folder."""

SURVIVAL_TIME = datasets.CLINICAL_FILE_COLUMNS["survival_time"]
SURVIVAL_EVENT = datasets.CLINICAL_FILE_COLUMNS["survival_event"]
FAST_OPTIONS = (
    "--survival-time", SURVIVAL_TIME, "--survival-event", SURVIVAL_EVENT,
    "--n-top-genes", "200", "--min-module-size", "10",
)  # fmt: skip
"""Options of every ``analyze`` run: small and fast, survival columns named."""

AIM_LABELS = {"attenuation": "Nodule Attenuation", "margin_definition": "Nodule Margin"}
"""Imaging columns also written as AIM characteristics, and their AIM labels."""

HUGE_LINE_BYTES = 30_000_000
"""Size of the file that is one single line."""
GERMAN_FEATURE = "Größe"
"""A feature name that only survives correct decoding."""


# --------------------------------------------------------------------------- the cohort


@dataclass
class Cohort:
    """A valid study on disk and its tables as text, ready to be spoiled.

    Attributes
    ----------
    directory
        Where the valid files are.
    expression
        Genes x patients (floats), as in ``expression.csv``.
    imaging, clinical
        Patients x columns as text, as in ``imaging.csv`` / ``clinical.csv`` (index = IDs).
    """

    directory: Path
    expression: pd.DataFrame
    imaging: pd.DataFrame
    clinical: pd.DataFrame

    @classmethod
    def write(cls, directory: Path, *, seed: int = 5) -> Cohort:
        """Draw a 40-patient, 300-gene cohort and write it (with an AIM folder)."""
        study = datasets.synthetic(
            n_patients=40, n_genes=300, n_features=16, n_modules=3, module_size=20, seed=seed
        )
        paths = datasets.write_cohort(study, directory)
        cohort = cls(
            directory=Path(directory),
            expression=pd.read_csv(paths["expression"], index_col=0),
            imaging=_text_table(paths["imaging"]),
            clinical=_text_table(paths["clinical"]),
        )
        write_aim(cohort.imaging, cohort.aim_dir)
        return cohort

    @property
    def patients(self) -> list[str]:
        return list(self.expression.columns)

    @property
    def expression_path(self) -> Path:
        return self.directory / "expression.csv"

    @property
    def imaging_path(self) -> Path:
        return self.directory / "imaging.csv"

    @property
    def clinical_path(self) -> Path:
        return self.directory / "clinical.csv"

    @property
    def aim_dir(self) -> Path:
        return self.directory / "aim"

    @functools.cached_property
    def baseline(self) -> Path:
        """The output folder of one successful analysis of the valid files (built once)."""
        out = self.directory / "baseline"
        config = pipeline.Config(
            expression=self.expression_path,
            imaging=[self.imaging_path],
            clinical=self.clinical_path,
            survival_time=SURVIVAL_TIME,
            survival_event=SURVIVAL_EVENT,
            n_top_genes=200,
            min_module_size=10,
            out=out,
        )
        pipeline.run(config, progress=lambda message: None)
        return out

    def analyze(
        self,
        folder: Path,
        *,
        expression: Path | str | None = None,
        imaging: Path | str | None = None,
        clinical: Path | str | None = None,
        aim_dir: Path | str | None = None,
    ) -> list[str]:
        """``radmap analyze`` on the valid files, with the given ones swapped in."""
        args = [
            "analyze",
            "--expression", expression or self.expression_path,
            "--imaging", imaging or self.imaging_path,
            "--clinical", clinical or self.clinical_path,
        ]  # fmt: skip
        if aim_dir is not None:
            args += ["--aim-dir", aim_dir]
        return [str(a) for a in [*args, *FAST_OPTIONS, "--out", folder / OUT]]


def _text_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, index_col=0)


def write_table(frame: pd.DataFrame, path: Path, **options) -> Path:
    """Write a table as CSV (``options`` go to :meth:`pandas.DataFrame.to_csv`)."""
    label = "" if frame.index.name is None else frame.index.name
    frame.to_csv(path, index_label=label, **{"float_format": "%.4f", **options})
    return path


def header_only(frame: pd.DataFrame, path: Path) -> Path:
    return write_table(frame.iloc[:0], path)


def aim_document(patient: str, characteristics: dict[str, str]) -> str:
    """An AIM v4 XML annotation with the given label -> value characteristics."""
    items = "".join(
        "<ImagingObservationCharacteristic>"
        f'<typeCode code="RID0" codeSystemName="RadLex">'
        f"<iso:displayName value={quoteattr(value)}/></typeCode>"
        f"<label value={quoteattr(label)}/></ImagingObservationCharacteristic>\n"
        for label, value in characteristics.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ImageAnnotationCollection aimVersion="AIMv4_0" '
        'xmlns="gme://caCORE.caCORE/4.4/edu.northwestern.radiology.AIM" '
        'xmlns:iso="uri:iso.org:21090">\n'
        f'<person><name value="anonymized"/><id value={quoteattr(patient)}/></person>\n'
        "<imageAnnotations><ImageAnnotation><imagingObservationEntityCollection>"
        '<ImagingObservationEntity><label value="Lung Nodule"/>'
        "<imagingObservationCharacteristicCollection>\n"
        f"{items}"
        "</imagingObservationCharacteristicCollection></ImagingObservationEntity>"
        "</imagingObservationEntityCollection></ImageAnnotation></imageAnnotations>\n"
        "</ImageAnnotationCollection>\n"
    )


def write_aim(imaging: pd.DataFrame, directory: Path) -> Path:
    """One AIM file per patient with the :data:`AIM_LABELS` characteristics."""
    directory.mkdir(parents=True, exist_ok=True)
    for patient, row in imaging.iterrows():
        values = {label: row[column] for column, label in AIM_LABELS.items() if row[column]}
        (directory / f"{patient}.xml").write_text(aim_document(str(patient), values))
    return directory


def copy_aim(cohort: Cohort, folder: Path) -> Path:
    return Path(shutil.copytree(cohort.aim_dir, folder / "aim"))


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ImageAnnotationCollection><person><id value="&lol9;"/></person>
<ImagingObservationCharacteristic><typeCode code="RID0"/><label value="&lol9;"/>
</ImagingObservationCharacteristic></ImageAnnotationCollection>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE aim [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ImageAnnotationCollection><person><id value="SYN-0001"/></person>
<ImagingObservationCharacteristic><typeCode code="RID0" codeSystem="&xxe;"/>
<label value="Leak"/></ImagingObservationCharacteristic></ImageAnnotationCollection>
"""


def png_bytes() -> bytes:
    """A real 1 x 1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def expression_h5ad(cohort: Cohort, path: Path) -> Path:
    """The valid expression as an ``.h5ad`` (samples x genes)."""
    frame = cohort.expression.T
    adata = ad.AnnData(
        X=frame.to_numpy(dtype=np.float32),
        obs=pd.DataFrame(index=[str(p) for p in frame.index]),
        var=pd.DataFrame(index=[str(g) for g in frame.columns]),
    )
    adata.write_h5ad(path)
    return path


def truncate(path: Path) -> Path:
    """Cut a file in half."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_huge_line(path: Path, size: int = HUGE_LINE_BYTES) -> Path:
    """A comma-separated file of ``size`` bytes and no line break."""
    block = ("1.2345," * 100_000).encode()
    with open(path, "wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
    return path


def can_read(path: Path) -> bool:
    """Whether this process can actually open ``path`` (root ignores chmod 000)."""
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except PermissionError:
        return False
    return True


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One hostile input and what ``radmap`` must answer.

    Attributes
    ----------
    id
        Readable pytest id.
    build
        Writes the case's files into the given folder and returns the ``radmap`` arguments.
    fails
        Whether the run must fail with exit code 2; a callable decides from the case folder.
    error
        Texts the one error line must contain (file name, column, ID, reason).
    warns
        For a run that succeeds: per expected warning, the texts it must contain.
    features
        Feature IDs the bundle must hold (exactly these names).
    dropped
        Feature IDs that must be neither in the bundle nor tested.
    obs_columns
        Clinical columns the bundle must hold.
    nan_cells
        (column, patient) pairs that must be missing in the bundle (imaging or clinical).
    levels
        (feature, category) pairs: the bundle's feature must have this category.
    genes
        Gene symbols the bundle must hold.
    inputs
        Input file names the bundle's provenance must record.
    forbidden
        Texts that must appear nowhere in the output (case-insensitive).
    timeout
        Seconds the command may take before it is killed (and the case failed).
    max_seconds, max_rss_mb
        Stricter bounds on time and peak memory, for inputs built to exhaust them.
    """

    id: str
    build: Callable[[Cohort, Path], list[str]]
    fails: bool | Callable[[Path], bool] = True
    error: tuple[str, ...] = ()
    warns: tuple[tuple[str, ...], ...] = ()
    features: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    obs_columns: tuple[str, ...] = ()
    nan_cells: tuple[tuple[str, str], ...] = ()
    levels: tuple[tuple[str, str], ...] = ()
    genes: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    timeout: float = 120.0
    max_seconds: float | None = None
    max_rss_mb: float | None = None


def _empty(kind: str) -> Callable[[Cohort, Path], list[str]]:
    def build(cohort: Cohort, folder: Path) -> list[str]:
        path = folder / f"{kind}.csv"
        path.write_bytes(b"")
        return cohort.analyze(folder, **{kind: path})

    return build


def _header_only(kind: str) -> Callable[[Cohort, Path], list[str]]:
    def build(cohort: Cohort, folder: Path) -> list[str]:
        frame = getattr(cohort, kind)
        return cohort.analyze(folder, **{kind: header_only(frame, folder / f"{kind}.csv")})

    return build


def _semicolon_decimal_comma(kind: str) -> Callable[[Cohort, Path], list[str]]:
    """A European spreadsheet export: semicolons between fields, commas in numbers."""

    def build(cohort: Cohort, folder: Path) -> list[str]:
        frame = getattr(cohort, kind)
        if kind == "imaging":  # read as text: put the commas in by hand
            frame = frame.replace(r"^(-?\d*)\.(\d+([eE][-+]?\d+)?)$", r"\1,\2", regex=True)
        path = write_table(frame, folder / f"{kind}.csv", sep=";", decimal=",")
        return cohort.analyze(folder, **{kind: path})

    return build


def _colon_delimited(cohort: Cohort, folder: Path) -> list[str]:
    path = write_table(cohort.imaging, folder / "imaging.txt", sep=":")
    return cohort.analyze(folder, imaging=path)


def _with_german_column(frame: pd.DataFrame, values: pd.Series) -> pd.DataFrame:
    """The table with a first column named :data:`GERMAN_FEATURE` before the ID column."""
    out = frame.reset_index()
    out.insert(0, GERMAN_FEATURE, values.to_numpy())
    return out.set_index(GERMAN_FEATURE)


def _sizes(cohort: Cohort) -> pd.Series:
    return pd.Series(np.linspace(10.0, 49.0, len(cohort.patients)).round(1).astype(str))


def _utf8_bom(cohort: Cohort, folder: Path) -> list[str]:
    # The expression file in R's write.table layout: its header starts with a sample ID,
    # which a glued byte-order mark would turn into an unmatched patient.
    expression = folder / "expression.csv"
    text = cohort.expression.to_csv(float_format="%.4f").split("\n", 1)
    expression.write_text(text[0].removeprefix(",") + "\n" + text[1], encoding="utf-8-sig")
    imaging = write_table(
        _with_german_column(cohort.imaging, _sizes(cohort)),
        folder / "imaging.csv",
        encoding="utf-8-sig",
    )
    clinical = write_table(
        _with_german_column(cohort.clinical, _sizes(cohort)),
        folder / "clinical.csv",
        encoding="utf-8-sig",
    )
    return cohort.analyze(folder, expression=expression, imaging=imaging, clinical=clinical)


LATIN1_LOBE = "lobe supérieur droit"


def _latin1(cohort: Cohort, folder: Path) -> list[str]:
    imaging = cohort.imaging.copy()
    imaging["lobe"] = imaging["lobe"].replace({"RUL": LATIN1_LOBE})
    imaging = write_table(
        _with_german_column(imaging, _sizes(cohort)), folder / "imaging.csv", encoding="latin-1"
    )
    clinical = write_table(
        _with_german_column(cohort.clinical, _sizes(cohort)),
        folder / "clinical.csv",
        encoding="latin-1",
    )
    return cohort.analyze(folder, imaging=imaging, clinical=clinical)


def _duplicated_patient(kind: str) -> Callable[[Cohort, Path], list[str]]:
    def build(cohort: Cohort, folder: Path) -> list[str]:
        frame = getattr(cohort, kind)
        doubled = pd.concat([frame, frame.loc[["SYN-0007"]]])
        return cohort.analyze(folder, **{kind: write_table(doubled, folder / f"{kind}.csv")})

    return build


def _duplicated_sample(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.expression.copy()
    frame = frame.rename(columns={"SYN-0009": "SYN-0008"})
    return cohort.analyze(folder, expression=write_table(frame, folder / "expression.csv"))


DUPLICATED_GENE = "DUPGENE"


def _duplicated_genes(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.expression.rename(index={cohort.expression.index[0]: DUPLICATED_GENE})
    frame = pd.concat([frame, frame.loc[[DUPLICATED_GENE]] - 1.0])
    return cohort.analyze(folder, expression=write_table(frame, folder / "expression.csv"))


def _junk_expression(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.expression.astype(object)
    frame.iloc[5, 3] = "12,7 (low)"
    return cohort.analyze(folder, expression=write_table(frame, folder / "expression.csv"))


RADIOMIC = "original_firstorder_Entropy"


def _junk_imaging(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.imaging.copy()
    frame.loc["SYN-0012", RADIOMIC] = "n.d. (motion)"
    return cohort.analyze(folder, imaging=write_table(frame, folder / "imaging.csv"))


def _junk_clinical(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.clinical.copy()
    frame.loc["SYN-0004", SURVIVAL_TIME] = "about a year"
    return cohort.analyze(folder, clinical=write_table(frame, folder / "clinical.csv"))


def _inf_nan(cohort: Cohort, folder: Path) -> list[str]:
    expression = cohort.expression.astype(object)
    expression.iloc[2, :3] = ["inf", "-inf", "NaN"]
    imaging = cohort.imaging.copy()
    imaging.loc[["SYN-0003", "SYN-0005", "SYN-0006"], RADIOMIC] = ["inf", "-inf", "NaN"]
    clinical = cohort.clinical.copy()
    clinical.loc[["SYN-0010", "SYN-0011"], "Age"] = ["inf", "NaN"]
    return cohort.analyze(
        folder,
        expression=write_table(expression, folder / "expression.csv"),
        imaging=write_table(imaging, folder / "imaging.csv"),
        clinical=write_table(clinical, folder / "clinical.csv"),
    )


def _constant_feature(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.imaging.copy()
    frame["original_shape_Flatness"] = "0.75"
    return cohort.analyze(folder, imaging=write_table(frame, folder / "imaging.csv"))


def _single_category(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.imaging.copy()
    frame["pleural_retraction"] = "present"
    frame.loc[["SYN-0002", "SYN-0017"], "pleural_retraction"] = ""
    return cohort.analyze(folder, imaging=write_table(frame, folder / "imaging.csv"))


def _renamed_ids(cohort: Cohort, folder: Path, keep: int) -> list[str]:
    frame = cohort.imaging.copy()
    frame.index = [p if i < keep else p.replace("SYN-", "PT_") for i, p in enumerate(frame.index)]
    frame.index.name = "patient_id"
    return cohort.analyze(folder, imaging=write_table(frame, folder / "imaging.csv"))


def _huge_line(cohort: Cohort, folder: Path) -> list[str]:
    return cohort.analyze(folder, expression=write_huge_line(folder / "expression.csv"))


def _truncated_h5ad(cohort: Cohort, folder: Path) -> list[str]:
    path = truncate(expression_h5ad(cohort, folder / "expression.h5ad"))
    return cohort.analyze(folder, expression=path)


def _png_as_h5ad(cohort: Cohort, folder: Path) -> list[str]:
    path = folder / "expression.h5ad"
    path.write_bytes(png_bytes())
    return cohort.analyze(folder, expression=path)


def _serve(path: Path) -> list[str]:
    # A port nobody listens on: if a server started anyway it would not clash with others.
    return ["serve", str(path), "--port", str(49152 + os.getpid() % 10000)]


def _serve_truncated_bundle(cohort: Cohort, folder: Path) -> list[str]:
    path = folder / "truncated.h5ad"
    shutil.copy(cohort.baseline / pipeline.BUNDLE_NAME, path)
    return _serve(truncate(path))


def _serve_foreign_h5ad(cohort: Cohort, folder: Path) -> list[str]:
    return _serve(expression_h5ad(cohort, folder / "foreign.h5ad"))


OLD_FORMAT = "radmap-bundle/0"
SERVE_TIMEOUT = 30.0
"""``serve`` must refuse a bad bundle at once; a run this long has started a server."""


def _serve_other_version(cohort: Cohort, folder: Path) -> list[str]:
    adata = ad.read_h5ad(cohort.baseline / pipeline.BUNDLE_NAME)
    adata.uns["radmap"]["format_version"] = OLD_FORMAT
    path = folder / "old-format.h5ad"
    adata.write_h5ad(path)
    return _serve(path)


def _aim_truncated(cohort: Cohort, folder: Path) -> list[str]:
    aim = copy_aim(cohort, folder)
    truncate(aim / "SYN-0007.xml")
    return cohort.analyze(folder, aim_dir=aim)


def _aim_payload(name: str, payload: str) -> Callable[[Cohort, Path], list[str]]:
    def build(cohort: Cohort, folder: Path) -> list[str]:
        aim = copy_aim(cohort, folder)
        (aim / name).write_text(payload)
        return cohort.analyze(folder, aim_dir=aim)

    return build


ODD_NAMES = {
    "expression": "-expr.csv",
    "imaging": "my imaging (v2) 表达 Größe ñ.csv",
    "clinical": "clinical_" + "x" * 230 + ".csv",
}
"""One odd name per input: leading dash, spaces and non-ASCII letters, 240 characters."""


def _odd_names(cohort: Cohort, folder: Path) -> list[str]:
    for kind, name in ODD_NAMES.items():
        shutil.copy(getattr(cohort, f"{kind}_path"), folder / name)
    # A leading dash is passed as ./-expr.csv, as a shell user must.
    paths = {kind: f"./{name}" for kind, name in ODD_NAMES.items()}
    return cohort.analyze(folder, **paths)


def _directory_as_file(cohort: Cohort, folder: Path) -> list[str]:
    (folder / "imaging_dir").mkdir()
    return cohort.analyze(folder, imaging=folder / "imaging_dir")


def _missing_file(cohort: Cohort, folder: Path) -> list[str]:
    return cohort.analyze(folder, clinical=folder / "clinical_2019.csv")


def _unreadable(cohort: Cohort, folder: Path) -> list[str]:
    path = Path(shutil.copy(cohort.clinical_path, folder / "clinical.csv"))
    path.chmod(0)
    return cohort.analyze(folder, clinical=path)


def _gzip_named_csv(cohort: Cohort, folder: Path) -> list[str]:
    path = folder / "expression.csv"
    path.write_bytes(gzip.compress(cohort.expression_path.read_bytes()))
    return cohort.analyze(folder, expression=path)


def _unknown_extension(cohort: Cohort, folder: Path) -> list[str]:
    path = folder / "imaging.json"
    records = cohort.imaging.reset_index().to_dict(orient="records")
    path.write_text(json.dumps(records, indent=1))
    return cohort.analyze(folder, imaging=path)


def _out_is_a_file(cohort: Cohort, folder: Path) -> list[str]:
    (folder / OUT).write_text("my notes, not a folder\n")
    return cohort.analyze(folder)


def _old_bundle_kept(cohort: Cohort, folder: Path) -> list[str]:
    shutil.copytree(cohort.baseline, folder / OUT)
    path = folder / "imaging.csv"
    path.write_bytes(b"")
    return cohort.analyze(folder, imaging=path)


def _reserved_column(kind: str) -> Callable[[Cohort, Path], list[str]]:
    """A clinical or imaging column named ``_index`` (a name AnnData reserves)."""

    def build(cohort: Cohort, folder: Path) -> list[str]:
        frame = getattr(cohort, kind).copy()
        frame["_index"] = [f"{i * 1.5:.1f}" for i in range(len(frame))]
        return cohort.analyze(folder, **{kind: write_table(frame, folder / f"{kind}.csv")})

    return build


def _config_value(text: str) -> Callable[[Cohort, Path], list[str]]:
    """A ``radmap.toml`` holding ``text`` (a value of the wrong type or range)."""

    def build(cohort: Cohort, folder: Path) -> list[str]:
        (folder / "radmap.toml").write_text(text + "\n")
        return [*cohort.analyze(folder), "--config", str(folder / "radmap.toml")]

    return build


def _non_aim_xml(cohort: Cohort, folder: Path) -> list[str]:
    aim = copy_aim(cohort, folder)
    (aim / "readme.xml").write_text('<?xml version="1.0"?><notes><item>scan list</item></notes>')
    return cohort.analyze(folder, aim_dir=aim)


def _ensembl_ids(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.expression.copy()
    frame.index = [f"ENSG{i:011d}" + (".3" if i % 2 else "") for i in range(len(frame))]
    return cohort.analyze(folder, expression=write_table(frame, folder / "expression.csv"))


EXCEL_DATES = ("2-Sep", "1-Mar")


def _excel_dates(cohort: Cohort, folder: Path) -> list[str]:
    frame = cohort.expression.rename(
        index=dict(zip(cohort.expression.index[-len(EXCEL_DATES) :], EXCEL_DATES))
    )
    return cohort.analyze(folder, expression=write_table(frame, folder / "expression.csv"))


def _imaging_on_second_sheet(*options: str) -> Callable[[Cohort, Path], list[str]]:
    """The imaging table on the workbook's second sheet, after a sheet of notes."""

    def build(cohort: Cohort, folder: Path) -> list[str]:
        path = folder / "imaging.xlsx"
        with pd.ExcelWriter(path) as workbook:
            pd.DataFrame({"read me": ["exported from PACS"]}).to_excel(
                workbook, sheet_name="Notes", index=False
            )
            cohort.imaging.to_excel(workbook, sheet_name="Radiomics", index_label="Patient ID")
        return [*cohort.analyze(folder, imaging=path), *options]

    return build


CASES: tuple[Case, ...] = (
    *(
        Case(f"empty-{kind}", _empty(kind), error=(f"{kind}.csv", "empty"))
        for kind in ("expression", "imaging", "clinical")
    ),
    *(
        Case(f"header-only-{kind}", _header_only(kind), error=(f"{kind}.csv", "no data rows"))
        for kind in ("expression", "imaging", "clinical")
    ),
    *(
        Case(
            f"semicolon-decimal-comma-{kind}",
            _semicolon_decimal_comma(kind),
            error=(f"{kind}.csv", "decimal comma"),
        )
        for kind in ("expression", "imaging")
    ),
    Case("delimiter-cannot-be-told", _colon_delimited, error=("imaging.txt", "delimiter")),
    Case(
        "utf8-bom",
        _utf8_bom,
        fails=False,
        features=(GERMAN_FEATURE, "spiculation"),
        obs_columns=(GERMAN_FEATURE, "EGFR"),
    ),
    Case(
        "latin1",
        _latin1,
        fails=False,
        warns=(("imaging.csv", "not UTF-8"), ("clinical.csv", "not UTF-8")),
        features=(GERMAN_FEATURE, "lobe"),
        levels=(("lobe", LATIN1_LOBE),),
        obs_columns=(GERMAN_FEATURE,),
    ),
    Case(
        "duplicated-patient-imaging",
        _duplicated_patient("imaging"),
        error=("imaging.csv", "'SYN-0007'", "duplicated"),
    ),
    Case(
        "duplicated-patient-clinical",
        _duplicated_patient("clinical"),
        error=("clinical.csv", "'SYN-0007'", "duplicated"),
    ),
    Case(
        "duplicated-sample-expression",
        _duplicated_sample,
        error=("expression.csv", "'SYN-0008'", "duplicated"),
    ),
    Case(
        "duplicated-gene-symbols",
        _duplicated_genes,
        fails=False,
        warns=(("expression.csv", "gene symbols occur more than once", f"'{DUPLICATED_GENE}'"),),
        genes=(DUPLICATED_GENE,),
    ),
    Case(
        "junk-in-expression",
        _junk_expression,
        error=("expression.csv", "'12,7 (low)'", "'SYN-0004'"),
    ),
    Case(
        "junk-in-radiomic-column",
        _junk_imaging,
        error=("imaging.csv", f"'{RADIOMIC}'", "'n.d. (motion)'", "'SYN-0012'"),
    ),
    Case(
        "junk-in-survival-time",
        _junk_clinical,
        fails=False,
        warns=(("clinical.csv", f"'{SURVIVAL_TIME}'", "'about a year'", "missing"),),
        nan_cells=(("survival_time", "SYN-0004"),),
        forbidden=("may identify patients",),
    ),
    Case(
        "inf-nan-in-numeric-columns",
        _inf_nan,
        fails=False,
        warns=(
            ("expression.csv", "2 infinite values"),
            ("imaging.csv", f"'{RADIOMIC}'", "2 infinite values"),
            ("clinical.csv", "'Age'", "1 infinite values"),
        ),
        nan_cells=(
            (RADIOMIC, "SYN-0003"),
            (RADIOMIC, "SYN-0005"),
            (RADIOMIC, "SYN-0006"),
            ("Age", "SYN-0010"),
            ("Age", "SYN-0011"),
        ),
    ),
    Case(
        "constant-imaging-feature",
        _constant_feature,
        fails=False,
        warns=(("imaging.csv", "constant", "'original_shape_Flatness'"),),
        dropped=("original_shape_Flatness",),
    ),
    Case(
        "single-category-semantic-feature",
        _single_category,
        fails=False,
        warns=(("imaging.csv", "single category", "'pleural_retraction'"),),
        dropped=("pleural_retraction",),
    ),
    Case(
        "no-patient-overlap",
        functools.partial(_renamed_ids, keep=0),
        error=("only 0 patient IDs", "imaging.csv", "expression.csv", "'PT_0001'", "'SYN-0001'"),
    ),
    Case(
        "too-little-patient-overlap",
        functools.partial(_renamed_ids, keep=6),
        error=("only 6 patient IDs", "need at least 10", "imaging.csv", "'PT_0007'", "'SYN-0001'"),
    ),
    Case(
        "huge-single-line",
        _huge_line,
        error=("expression.csv", "no data rows", "one line"),
        timeout=60.0,
        max_seconds=30.0,
        max_rss_mb=512.0,
    ),
    Case("truncated-h5ad", _truncated_h5ad, error=("expression.h5ad", "damaged or truncated")),
    Case("png-named-h5ad", _png_as_h5ad, error=("expression.h5ad", "it is a PNG image")),
    Case(
        "serve-truncated-bundle",
        _serve_truncated_bundle,
        error=("truncated.h5ad", "damaged or truncated", "radmap analyze"),
        timeout=SERVE_TIMEOUT,
    ),
    Case(
        "serve-foreign-h5ad",
        _serve_foreign_h5ad,
        error=("foreign.h5ad", "not a radmap bundle"),
        timeout=SERVE_TIMEOUT,
    ),
    Case(
        "serve-other-format-version",
        _serve_other_version,
        error=("old-format.h5ad", OLD_FORMAT, "radmap analyze"),
        timeout=SERVE_TIMEOUT,
    ),
    Case(
        "aim-truncated-xml",
        _aim_truncated,
        fails=False,
        warns=(("SYN-0007.xml", "skipped", "malformed XML"),),
        features=tuple(AIM_LABELS.values()),
        nan_cells=(("Nodule Attenuation", "SYN-0007"),),
    ),
    Case(
        "aim-billion-laughs",
        _aim_payload("bomb.xml", BILLION_LAUGHS),
        error=("bomb.xml", "unsafe XML"),
        forbidden=("lollol",),
        timeout=60.0,
        max_seconds=30.0,
        max_rss_mb=512.0,
    ),
    Case(
        "aim-external-entity",
        _aim_payload("xxe.xml", EXTERNAL_ENTITY),
        error=("xxe.xml", "unsafe XML"),
        forbidden=("root:x:0", "nologin"),
    ),
    Case("odd-file-names", _odd_names, fails=False, inputs=tuple(ODD_NAMES.values())),
    Case("directory-as-file", _directory_as_file, error=("imaging_dir", "directory")),
    Case("missing-file", _missing_file, error=("clinical_2019.csv", "not found")),
    Case(
        "unreadable-file",
        _unreadable,
        fails=lambda folder: not can_read(folder / "clinical.csv"),
        error=("clinical.csv", "permission"),
    ),
    Case("gzip-named-csv", _gzip_named_csv, error=("expression.csv", "gzip")),
    Case("unknown-extension", _unknown_extension, error=("imaging.json", "unknown file type")),
    Case("out-is-a-file", _out_is_a_file, error=(f"{OUT}: exists", "not a folder")),
    Case("old-bundle-kept-on-failure", _old_bundle_kept, error=("imaging.csv", "empty")),
    Case(
        "clinical-column-named-_index",
        _reserved_column("clinical"),
        error=("clinical.csv", "'_index'", "reserved"),
    ),
    Case(
        "imaging-column-named-_index",
        _reserved_column("imaging"),
        error=("imaging.csv", "'_index'", "reserved"),
    ),
    Case(
        "config-negative-hub-count",
        _config_value("[modules]\nhub_count = -5"),
        error=("radmap.toml", "'hub_count'", "at least 1"),
    ),
    Case(
        "aim-folder-with-non-aim-xml",
        _non_aim_xml,
        fails=False,
        warns=(("readme.xml", "skipped", "not an AIM annotation"),),
        features=tuple(AIM_LABELS.values()),
    ),
    Case(
        "ensembl-gene-ids",
        _ensembl_ids,
        fails=False,
        warns=(("expression.csv", "Ensembl IDs", "map the IDs to symbols"),),
    ),
    Case(
        "excel-mangled-gene-symbols",
        _excel_dates,
        fails=False,
        warns=(("expression.csv", "look like dates", "'2-Sep'", "'1-Mar'"),),
    ),
    Case(
        "xlsx-data-on-another-sheet",
        _imaging_on_second_sheet(),
        error=("imaging.xlsx", "'Notes'", "'Radiomics'", "--sheet"),
    ),
    Case(
        "xlsx-sheet-chosen",
        _imaging_on_second_sheet("--sheet", "Radiomics"),
        fails=False,
        features=(RADIOMIC,),
    ),
    Case(
        "xlsx-sheet-missing",
        _imaging_on_second_sheet("--sheet", "Data"),
        error=("imaging.xlsx", "no sheet 'Data'", "'Notes', 'Radiomics'"),
    ),
    Case(
        "config-value-of-the-wrong-type",
        _config_value('seed = "one"'),
        error=("radmap.toml", "'seed'", "whole number"),
    ),
)


# ------------------------------------------------------------------ pseudonymisation cases

PSEUDONYMISE_KEY = "k" * 32
"""The secret of the pseudonymisation cases' key file."""
EXTRA_PATIENT = "SYN-0099"
"""A patient in the imaging table only (unmatched, named in the matching report)."""


@dataclass(frozen=True)
class PrivacyCase:
    """An input whose IDs must all be replaced by pseudonyms in every output byte.

    Attributes
    ----------
    id
        Readable pytest id.
    build
        Writes the case's files and returns the ``radmap analyze`` arguments (without the key).
    warns
        Per expected warning (in the bundle and on stderr), the texts it must contain.
    ids
        Original IDs beyond the cohort's patients that must never appear.
    """

    id: str
    build: Callable[[Cohort, Path], list[str]]
    warns: tuple[tuple[str, ...], ...] = ()
    ids: tuple[str, ...] = ()


def with_key(args: list[str], folder: Path) -> list[str]:
    """``args`` with ``--pseudonymise-key`` pointing at a key file written into ``folder``."""
    key = folder / "key.txt"
    key.write_text(PSEUDONYMISE_KEY)
    return [*args, "--pseudonymise-key", str(key)]


def _all_missing_sample(cohort: Cohort, folder: Path) -> list[str]:
    """A sample with no value, in a file named after a patient."""
    frame = cohort.expression.copy()
    frame["SYN-0005"] = np.nan
    path = write_table(frame, folder / "expression_SYN-0040.csv")
    return cohort.analyze(folder, expression=path)


def _aim_files_named_after_patients(cohort: Cohort, folder: Path) -> list[str]:
    aim = copy_aim(cohort, folder)
    truncate(aim / "SYN-0007.xml")
    (aim / "SYN-0008.xml").rename(aim / "syn-0008v2.xml")
    shutil.copy(aim / "SYN-0010.xml", aim / "SYN-0010v3.xml")
    text = (aim / "SYN-0011.xml").read_text().replace('<id value="SYN-0011"/>', "")
    (aim / "SYN-0011.xml").write_text(text)
    (aim / "SYN-0012 scan 2.xml").write_text("<not-aim>")
    return cohort.analyze(folder, aim_dir=aim)


def _ids_spelled_differently_and_unmatched(cohort: Cohort, folder: Path) -> list[str]:
    imaging = cohort.imaging.copy()
    imaging.loc[EXTRA_PATIENT] = imaging.iloc[0]
    clinical = cohort.clinical.copy()
    clinical.index = [f" {p.lower()} " if p.endswith("3") else p for p in clinical.index]
    clinical.loc[clinical.index[3], SURVIVAL_TIME] = "about a year"
    return cohort.analyze(
        folder,
        imaging=write_table(imaging, folder / "imaging.csv"),
        clinical=write_table(clinical, folder / "clinical.csv"),
    )


PRIVACY_CASES: tuple[PrivacyCase, ...] = (
    PrivacyCase(
        "pseudonymised-all-missing-sample",
        _all_missing_sample,
        warns=(("expression_P", "dropped 1 samples with no values"),),
    ),
    PrivacyCase(
        "pseudonymised-aim-files-named-after-patients",
        _aim_files_named_after_patients,
        warns=(("skipped", "malformed XML"), ("no person id",), ("combined 2 files",)),
    ),
    PrivacyCase(
        "pseudonymised-unmatched-and-respelled-ids",
        _ids_spelled_differently_and_unmatched,
        warns=(("clinical.csv", "'about a year'"),),
        ids=(EXTRA_PATIENT,),
    ),
)
"""Inputs whose patient IDs readers drop, respell or put in file names (issue 11, point 2)."""


FORMULA_NAMES = ('=HYPERLINK("http://example.invalid","x")', "@SUM(1+1)", "+1+cmd", "-2+3")
"""Imaging feature names a spreadsheet would run as formulas."""


def formula_named_features(cohort: Cohort, folder: Path) -> list[str]:
    """The valid study with four radiomic columns renamed to :data:`FORMULA_NAMES`."""
    numeric = [c for c in cohort.imaging.columns if "_gl" in c or "_firstorder_" in c]
    numeric = numeric[: len(FORMULA_NAMES)]
    imaging = cohort.imaging.rename(columns=dict(zip(numeric, FORMULA_NAMES)))
    return cohort.analyze(folder, imaging=write_table(imaging, folder / "imaging.csv"))
