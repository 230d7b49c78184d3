"""Shared pieces of the readers: missing-value tokens, ID column names, vocabularies, :class:`ReadResult` and the warning collector."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..validate import InputError

logger = logging.getLogger("radmap")

PathLike = str | os.PathLike


MISSING_TOKENS = frozenset(
    {
        "",
        "NA",
        "N/A",
        "N.A.",
        "NAN",
        "NULL",
        "#N/A",
        "-",
        "--",
        "?",
        ".",
        "MISSING",
        "UNKNOWN",
        "NOT COLLECTED",
        "NOT ASSESSED",
        "NOT AVAILABLE",
        "NOT RECORDED IN DATABASE",
        "NOT REPORTED",
        "'--",
        "[NOT AVAILABLE]",
        "[NOT APPLICABLE]",
        "[UNKNOWN]",
        "[DISCREPANCY]",
        "[NOT EVALUATED]",
        "[NOT REPORTED]",
        "[NOT ASSESSED]",
        "[PENDING]",
    }
)
"""Cell texts read as missing (compared upper-cased after stripping), including the bracketed
tokens of TCGA clinical tables (``[Not Available]``, ``[Not Applicable]``, ``[Unknown]``,
``[Discrepancy]``, ``[Not Evaluated]``) and GDC's ``'--``. ``none`` is not among them: it is
a real category of several semantic features (e.g. calcification)."""

ID_COLUMN_KEYS = (
    "id",
    "bcrpatientbarcode",
    "patientid",
    "patient",
    "caseid",
    "case",
    "subjectid",
    "subject",
    "participantid",
    "pid",
    "sampleid",
    "sample",
    "casesubmitterid",
    "submitterid",
    "bcrsamplebarcode",
    "barcode",
)
"""Header names (lower case, letters and digits only) recognised as the patient ID column,
in order of preference; without any the first column is used."""

PYRADIOMICS_FEATURE = re.compile(
    r"^(?P<image>[A-Za-z0-9.\-]+)_(?P<cls>shape2D|shape|firstorder|glcm|glrlm|glszm|gldm|ngtdm)"
    r"_(?P<name>\w+)$"
)
"""PyRadiomics feature names ``<imagetype>_<class>_<name>``; the group is
``<imagetype>_<class>``."""

AIM_CHARACTERISTIC_TAGS = frozenset(
    {
        "ImagingObservationCharacteristic",
        "ImagingPhysicalEntity",
        "ImagingPhysicalEntityCharacteristic",
    }
)
_CODE_SYSTEM_NAME = re.compile(r"^(radlex|snomed|dcm|loinc|ncit|lung ?template)", re.IGNORECASE)

KNOWN_DRIVER_GENES = tuple(
    [
        "EGFR",
        "KRAS",
        "ALK",
        "ROS1",
        "BRAF",
        "MET",
        "RET",
        "ERBB2",
        "HER2",
        "TP53",
        "STK11",
        "KEAP1",
        "PIK3CA",
        "NRAS",
        "NTRK1",
        "NTRK2",
        "NTRK3",
        "IDH1",
        "IDH2",
        "MGMT",
        "TERT",
        "ATRX",
        "CDKN2A",
        "PTEN",
        "NF1",
        "RB1",
        "H3F3A",
        "PDGFRA",
        "CDK4",
        "MDM2",
        "MYC",
        "MYCN",
        "BRCA1",
        "BRCA2",
        "KIT",
        "FGFR1",
        "FGFR2",
        "FGFR3",
        "APC",
        "SMAD4",
        "CTNNB1",
        "VHL",
        "ESR1",
        "PGR",
    ]
)
"""Marker gene names recognised in clinical headers (mutation, methylation, copy number)."""
_MUTATION_HEADER = re.compile(
    r"\b(mutation|mutations|mutational|translocation|fusion|rearrangement)\b", re.IGNORECASE
)
_MUTANT_WORDS = frozenset(
    [
        "mutant",
        "mutation",
        "mutated",
        "mut",
        "positive",
        "pos",
        "+",
        "yes",
        "y",
        "1",
        "1.0",
        "true",
        "translocated",
        "translocation",
        "rearranged",
        "fusion",
        "present",
        "detected",
        "methylated",
        "hypermethylated",
        "amplified",
        "amplification",
        "amp",
        "gain",
        "deleted",
        "deletion",
        "homdel",
        "loss",
        "codeleted",
        "codel",
        "altered",
        "missense",
        "nonsense",
        "truncating",
        "frameshift",
        "splice",
        "inframe",
    ]
)
_WILDTYPE_WORDS = frozenset(
    [
        "wildtype",
        "wild",
        "wt",
        "negative",
        "neg",
        "no",
        "n",
        "0",
        "0.0",
        "false",
        "nottranslocated",
        "notrearranged",
        "absent",
        "notdetected",
        "normal",
        "unmethylated",
        "notmethylated",
        "nonmethylated",
        "hypomethylated",
        "notamplified",
        "nonamplified",
        "notdeleted",
        "nondeleted",
        "noncodel",
        "notcodeleted",
        "noncodeleted",
        "intact",
        "unaltered",
        "notaltered",
    ]
)
_MARKER_WORDS = frozenset(
    {
        "mutant",
        "mutated",
        "mutation",
        "wildtype",
        "wt",
        "methylated",
        "unmethylated",
        "hypermethylated",
        "amplified",
        "notamplified",
        "nonamplified",
        "deleted",
        "notdeleted",
        "codeleted",
        "noncodel",
        "codel",
        "altered",
        "unaltered",
        "homdel",
    }
)
"""Status words that make a clinical column a marker by its values alone (with no gene or
mutation word in its header); Positive / Negative, Yes / No and 1 / 0 need such a header."""
_PROTEIN_CHANGE = re.compile(
    r"^(P\.)?[ACDEFGHIKLMNPQRSTVWY*]\d{2,}([ACDEFGHIKLMNPQRSTVWY*]+|FS\*?\d*|DEL|INS\w*|DUP|"
    r"_?SPLICE|=|X)$"
)
"""One protein change call as written by cBioPortal or a pathology report (``R132H``,
``p.G12D``, ``X125_splice``), upper-cased; the position has two or more digits so that stage
codes such as ``T1a`` are not taken for one, and the change itself is required (``G12`` is
not a call)."""
_NOT_SEQUENCED = frozenset({"ns", "notsequenced", "notprofiled", "notdone", "notperformed"})
_EVENT_WORDS = frozenset(
    {"dead", "deceased", "died", "death", "1", "1.0", "yes", "true", "event", "dod"}
)
_CENSORED_WORDS = frozenset({"alive", "living", "censored", "0", "0.0", "no", "false"})

_IDENTIFIER_HEADER = re.compile(
    r"\b(name|names|first ?name|last ?name|surname|mrn|medical record|record number|address|"
    r"street|city|zip|postal|post ?code|phone|telephone|mobile|fax|e-?mail|ssn|"
    r"social security|birth|dob|insurance|account|dates?)\b",
    re.IGNORECASE,
)
_DATE_TEXT = re.compile(r"^\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}( \d{1,2}:\d{2}(:\d{2})?)?$")

TCIA_SURVIVAL_COLUMNS = {
    "status": "Survival Status",
    "time_to_death": "Time to Death (days)",
    "last_alive": "Date of Last Known Alive",
    "ct_date": "CT Date",
    "ct_to_surgery": "Days between CT and surgery",
}
"""Columns of the TCIA NSCLC Radiogenomics clinical table used by ``derive_survival``."""
_TCIA_DATE_OF_DEATH = "Date of Death"

TCGA_SURVIVAL_COLUMNS = {
    "status": ("vital_status",),
    "death": ("death_days_to", "days_to_death"),
    "follow_up": (
        "last_contact_days_to",
        "days_to_last_followup",
        "days_to_last_follow_up",
        "days_to_last_known_alive",
    ),
}
"""TCGA / GDC survival columns (any spelling listed; the first one present is used)."""
CBIOPORTAL_SURVIVAL_COLUMNS = {"status": ("OS_STATUS",), "months": ("OS_MONTHS",)}
"""cBioPortal / GDC overall survival columns: status (``1:DECEASED`` / ``0:LIVING``) and months."""
DAYS_PER_MONTH = 365.25 / 12

_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+([eE][-+]?\d+)?")
_DECIMAL_COMMA_HINT = (
    "numbers with a decimal comma: save the file with decimal points, e.g. export it from a "
    "spreadsheet set to English number format"
)
_SAMPLE_ID = re.compile(r"^(GSM\d+|TCGA-[\w-]+|.*[-_.]\d+[A-Za-z]?)$")
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d+", re.IGNORECASE)


@dataclass
class ReadResult:
    """What a reader returns.

    Attributes
    ----------
    frame
        The table read (rows = samples / patients).
    info
        What the reader did (documented per reader).
    warnings
        Messages for the user, each naming the file.
    source
        The file or directory name read.
    ids
        Texts that stand for a patient and may appear in a warning although they are not
        in ``frame.index`` (an ID as written, a dropped sample, a file named after its
        patient) -> the patient ID; the pseudonymisation replaces them too.
    """

    frame: pd.DataFrame
    info: dict
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    ids: dict[str, str] = field(default_factory=dict)


class _Notes:
    """Collects warnings for one file, prefixed with its name, and logs them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[str] = []

    def warn(self, message: str) -> None:
        text = f"{self.name}: {message}"
        if text in self.messages:
            return
        self.messages.append(text)
        logger.warning(text)


def _describe(exc: BaseException) -> str:
    """A foreign exception as one short line for an InputError message."""
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text[:200]}" if text else exc.__class__.__name__


def _examples(items: Sequence[object], k: int = 5) -> str:
    items = list(items)
    shown = ", ".join(repr(str(i)) for i in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """Turn parser failures of third-party libraries into an InputError naming the file."""
    try:
        yield
    except InputError:
        raise
    except PermissionError as exc:
        raise InputError(
            f"{name}: cannot be read (permission denied); check the file's permissions"
        ) from exc
    except (ValueError, OSError, UnicodeError, csv.Error, pd.errors.ParserError) as exc:
        raise InputError(
            f"{name}: could not be read ({_describe(exc)}); check the file format"
        ) from exc


def option_pairs(
    value: object, option: str, *, bare: Callable[[str], tuple[str, str]] | None = None
) -> dict[str, str]:
    """A ``KEY=VALUE`` option (repeatable on the command line, or a TOML table) as a dict.

    Parameters
    ----------
    value
        A mapping (from TOML), one string or a list of strings ``KEY=VALUE`` (split at the
        last ``=``).
    option
        The option's name, for the error message.
    bare
        What a string without ``=`` means: a function returning its (key, value); None makes
        it an error.

    Returns
    -------
    The pairs, in the order given.

    Raises
    ------
    InputError
        A string without ``=`` when ``bare`` is None, or an empty key or value.
    """
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    items = value if isinstance(value, list | tuple) else [value]
    pairs: dict[str, str] = {}
    flag = "--" + option.replace("_", "-").removesuffix("s")
    for item in map(str, items):
        if "=" in item:
            key, _, text = item.rpartition("=")
        elif bare is not None:
            key, text = bare(item)
        else:
            raise InputError(f"{flag} {item!r}: expected KEY=VALUE")
        if not key.strip() or not text.strip():
            raise InputError(f"{flag} {item!r}: expected KEY=VALUE with both parts given")
        pairs[key.strip()] = text.strip()
    return pairs
