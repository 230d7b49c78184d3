"""Reading AIM v4 XML radiologist annotations (one row per patient), with defusedxml."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from xml.etree.ElementTree import ParseError

import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from ..validate import InputError, normalise_id
from .common import (
    _CODE_SYSTEM_NAME,
    AIM_CHARACTERISTIC_TAGS,
    PathLike,
    ReadResult,
    _describe,
    _examples,
    _Notes,
)
from .features import _build_features, _Dropped, finding_indicators


@functools.lru_cache(maxsize=1)
def radlex_aim_codes() -> pd.DataFrame:
    """The shipped code table ``analysis/data/radlex_aim_codes.csv``: ``code``, ``name``,
    ``label`` (one row per code and label it was seen with in the NSCLC Radiogenomics AIM
    files)."""
    table_file = resources.files("radmap.analysis") / "data" / "radlex_aim_codes.csv"
    with table_file.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element, name: str):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _aim_value(type_code, codes: pd.DataFrame) -> tuple[str | None, bool]:
    """The value of one typeCode and whether it came from the code table."""
    for child in type_code.iter():
        if _local(child.tag) == "displayName" and (child.get("value") or "").strip():
            return child.get("value"), False
    code_system = (type_code.get("codeSystem") or "").strip()
    system_name = (type_code.get("codeSystemName") or "").strip()
    if code_system and code_system != system_name and not _CODE_SYSTEM_NAME.match(code_system):
        return code_system, False
    code = (type_code.get("code") or "").strip()
    names = codes.loc[codes["code"] == code, "name"].unique()
    if len(names):
        return names[0], True
    return None, False


AIM_ROOTS = ("ImageAnnotationCollection", "ImageAnnotation")
"""Root elements of AIM v4 and AIM v3 documents; any other XML file is not an annotation."""


def _parse_aim_file(path: Path, codes: pd.DataFrame, notes: _Notes) -> tuple[str, list, int]:
    """Person ID, [(label, value)] in document order and number of code-table look-ups.

    Raises InputError for unsafe XML and _Dropped for malformed or non-AIM files.
    """
    try:
        root = SafeElementTree.parse(
            str(path), forbid_dtd=False, forbid_entities=True, forbid_external=True
        ).getroot()
    except DefusedXmlException as exc:
        raise InputError(
            f"{path.name}: refused unsafe XML ({exc.__class__.__name__}: entity declarations "
            f"or external references are not allowed in AIM files); remove the file"
        ) from exc
    except (ParseError, UnicodeError, LookupError, ValueError) as exc:
        raise _Dropped(f"malformed XML ({_describe(exc)})") from exc
    except OSError as exc:
        raise _Dropped(f"cannot be read ({exc.strerror or exc})") from exc
    if _local(root.tag) not in AIM_ROOTS:
        raise _Dropped(f"not an AIM annotation (its root element is <{_local(root.tag)[:40]}>)")

    person = next((e for e in root.iter() if _local(e.tag) == "person"), None)
    person_id = ""
    if person is not None and _child(person, "id") is not None:
        person_id = normalise_id(_child(person, "id").get("value") or "")
    if not person_id:
        person_id = normalise_id(re.sub(r"v\d+$", "", path.stem, flags=re.IGNORECASE))
        notes.warn(f"{path.name}: no person id in the XML; used the file name {person_id!r}")

    items: list[tuple[str, str]] = []
    looked_up = 0
    for element in root.iter():
        if _local(element.tag) not in AIM_CHARACTERISTIC_TAGS:
            continue
        type_codes = [c for c in element if _local(c.tag) == "typeCode"]
        value = code = None
        for type_code in type_codes:
            value, from_table = _aim_value(type_code, codes)
            if value is not None:
                code = (type_code.get("code") or "").strip()
                looked_up += from_table
                break
        label_element = _child(element, "label")
        label = ""
        if label_element is not None:
            label = " ".join((label_element.get("value") or "").split())
        if value is None:
            codes_seen = [c.get("code") for c in type_codes]
            notes.warn(
                f"{path.name}: {_local(element.tag)} {label!r} with code(s) "
                f"{_examples(codes_seen)} has no value name and the code is not in the code "
                f"table; skipped"
            )
            continue
        if not label:
            labels = codes.loc[codes["code"] == code, "label"].unique()
            if len(labels) != 1:
                notes.warn(
                    f"{path.name}: value {value.strip()!r} (code {code!r}) has no label and the "
                    f"code is used by {len(labels)} labels; skipped"
                )
                continue
            label = labels[0]
            looked_up += 1
        items.append((label, " ".join(value.split()).lower()))
    return person_id, items, looked_up


def read_aim(
    directory: PathLike,
    *,
    types: Mapping[str, str] | None = None,
    levels: Mapping[str, list[str]] | None = None,
) -> ReadResult:
    """Read radiologists' semantic annotations from AIM v4 XML files.

    Every ``*.xml`` file in ``directory`` (or the single file given) is parsed with defusedxml.
    One row per patient, keyed by the normalised ``person/id`` of the XML (the file name, minus
    a ``v1``-style suffix, when absent); several files of one patient are combined.
    One column per characteristic label: ``ImagingObservationCharacteristic``,
    ``ImagingPhysicalEntity`` (e.g. Anatomic Location) and
    ``ImagingPhysicalEntityCharacteristic`` ``label``. The value is taken from the first
    ``typeCode`` that yields one: its ``iso:displayName``, else its ``codeSystem`` attribute
    (where AMC files keep the name), else the name of its RadLex code in
    :func:`radlex_aim_codes`. A missing label is taken from the code table when the code
    belongs to exactly one label (else the value is skipped with a warning). Values are
    stripped, whitespace-collapsed and lower-cased.

    A label with several values in one file (e.g. "Nodule Associated Findings":
    attachment to pleura, vascular convergence, ...) is a list of findings, not one category:
    it becomes one binary feature per finding, ``"<label>: <finding>"`` with levels
    ``absent`` / ``present`` (missing for patients without any value of the label), the way
    semantic features are coded in radiogenomic maps. The original field, its values joined by
    ``|`` in document order (how the template orders them and how the reference table
    ``semantic_features_reference.csv`` is built), is kept for display in
    ``info["multi_valued"]`` and is not tested itself; the indicators' ``parent`` column in the
    features table names it. Different values of a single-valued label in several files of one
    patient (two readings that disagree) stay joined by ``|`` as one category.

    Security: a file declaring entities or referring to external resources (entity-expansion
    bombs, XXE) is refused with an InputError naming it - such a file is no radiology
    annotation and should be removed. A malformed or non-AIM file is skipped with a warning.

    Parameters
    ----------
    directory
        Folder of AIM XML files, or one XML file.
    types
        Characteristic label (or feature ID) -> type, overriding inference; names that are not
        characteristics here are ignored (see :func:`read_imaging`).
    levels
        Characteristic label (or feature ID) -> its values in order, lowest first (see
        :func:`read_imaging`).

    Returns
    -------
    :class:`ReadResult` like :func:`read_imaging`, features of source and group ``semantic``.
    ``info``: ``features``, ``dropped``, ``n_files``, ``files_skipped`` (file names),
    ``codes_looked_up`` (values or labels taken from the code table), ``n_patients``,
    ``n_features``, ``multi_valued`` (patients x multi-valued labels, ``|``-joined text).

    Raises
    ------
    InputError
        Missing directory, no XML file, an unsafe XML file, no readable annotation.
    """
    directory = Path(directory)
    notes = _Notes(directory.name)
    if not directory.exists():
        raise InputError(f"{directory}: not found; check the path to the AIM XML folder")
    files = (
        [directory]
        if directory.is_file()
        else sorted(p for p in directory.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    )
    if not files:
        raise InputError(f"{directory}: no .xml files found")
    codes = radlex_aim_codes()
    patients: dict[str, dict[str, list[str]]] = {}
    files_of: dict[str, list[str]] = {}
    skipped: list[str] = []
    multi_labels: set[str] = set()
    looked_up = 0
    ids_met = {  # a file name with a digit may be a patient's, even when it cannot be read
        file.stem: normalise_id(re.sub(r"v\d+$", "", file.stem, flags=re.IGNORECASE))
        for file in files
        if re.search(r"\d", file.stem)
    }
    for file in files:
        try:
            person_id, items, n_lookups = _parse_aim_file(file, codes, notes)
        except _Dropped as reason:
            notes.warn(f"{file.name}: skipped, {reason}")
            skipped.append(file.name)
            continue
        looked_up += n_lookups
        per_label = pd.Series([label for label, _ in items], dtype=object).value_counts()
        multi_labels.update(per_label.index[per_label > 1])
        ids_met[file.stem] = person_id
        files_of.setdefault(person_id, []).append(file.name)
        by_label = patients.setdefault(person_id, {})
        for label, value in items:
            seen = by_label.setdefault(label, [])
            if value not in seen:
                seen.append(value)
    for person_id, names in files_of.items():
        if len(names) > 1:
            notes.warn(f"patient {person_id!r}: combined {len(names)} files ({_examples(names)})")
    if not any(patients.values()):
        raise InputError(
            f"{directory.name}: no imaging characteristics found in {len(files)} XML files "
            f"({len(skipped)} unreadable); are these AIM files?"
        )
    index = pd.Index(sorted(patients))
    labels = sorted({label for by_label in patients.values() for label in by_label})
    columns: dict[str, pd.Series] = {}
    multi_valued: dict[str, pd.Series] = {}
    parents: dict[str, str] = {}
    for label in labels:
        values = [patients[p].get(label, []) for p in index]
        joined = pd.Series(["|".join(v) for v in values], index=index, dtype=object)
        if label not in multi_labels:
            columns[label] = joined
            continue
        multi_valued[label] = joined.replace("", None)
        indicators = finding_indicators(label, values, index)
        columns.update(indicators)
        parents.update(dict.fromkeys(indicators, label))
    if multi_valued:
        notes.warn(
            f"{len(multi_valued)} multi-valued fields ({_examples(list(multi_valued), 5)}) "
            f"tested as one present/absent feature per finding ({len(parents)} findings)"
        )
    frame, features, dropped = _build_features(
        columns,
        index=index,
        types=types,
        levels=levels,
        source_of=lambda _label, _numeric: "semantic",
        group_of=lambda _label, _numeric: "semantic",
        notes=notes,
    )
    features["parent"] = [parents.get(label, "") for label in features["label"]]
    info = {
        "features": features,
        "dropped": dropped,
        "n_files": len(files),
        "files_skipped": skipped,
        "codes_looked_up": looked_up,
        "n_patients": int(frame.shape[0]),
        "n_features": int(frame.shape[1]),
        "multi_valued": pd.DataFrame(multi_valued, index=index),
    }
    return ReadResult(
        frame=frame, info=info, warnings=notes.messages, source=directory.name, ids=ids_met
    )
