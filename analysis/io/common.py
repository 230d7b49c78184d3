"""Shared pieces of the readers: missing-value tokens, ID column names, vocabularies, :class:`ReadResult` and the warning collector."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import re
from collections.abc import Iterator, Sequence
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
    }
)
"""Cell texts read as missing (compared upper-cased after stripping). ``none`` is not among
them: it is a real category of several semantic features (e.g. calcification)."""

ID_COLUMN_KEYS = (
    "id",
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
    ]
)
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
    ]
)
_EVENT_WORDS = frozenset({"dead", "deceased", "died", "death", "1", "1.0", "yes", "true", "event"})
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
