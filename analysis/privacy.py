"""Keyed pseudonyms for patient IDs, and the scrubber that applies them to every text.

With ``--pseudonymise-key`` no original patient ID may reach an output: not the bundle, not
a table, not a warning, not a line printed on the way. IDs a reader met but dropped (an
all-missing sample, an unreadable AIM file named after its patient) appear in warnings
only, so every reader reports the ID-bearing texts it met (``ReadResult.ids``: text as
written -> the patient ID it stands for), and :class:`IdScrubber` replaces each of them,
in any letter case, by the pseudonym of its patient. While the readers run, radmap's log
warnings are held back (:func:`held_warnings`) and printed only once they are scrubbed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pandas as pd

from .validate import InputError

MIN_KEY_BYTES = 16
_NOT_ID_CHARACTER = r"[A-Za-z0-9]"


def pseudonymise(ids: Iterable[str], *, key: bytes) -> dict[str, str]:
    """Keyed pseudonyms: ``P`` + the first 12 hex digits of HMAC-SHA256(key, ID).

    The same key always gives the same pseudonym, so bundles of one study stay linkable by
    whoever holds the key, and by nobody else.
    """
    return {i: "P" + hmac.new(key, i.encode("utf-8"), hashlib.sha256).hexdigest()[:12] for i in ids}


def read_key(path: Path) -> bytes:
    """The secret of a key file (at least :data:`MIN_KEY_BYTES` bytes once stripped)."""
    try:
        key = Path(path).read_bytes().strip()
    except OSError as err:
        raise InputError(f"{path}: cannot read the pseudonymisation key ({err.strerror})") from None
    if len(key) < MIN_KEY_BYTES:
        raise InputError(
            f"{path}: the pseudonymisation key must hold at least {MIN_KEY_BYTES} bytes of "
            "secret (e.g. `python -c 'import secrets; print(secrets.token_hex(32))' > key.txt`)"
        )
    return key


class IdScrubber:
    """Replaces every known patient ID (and every alias of one) in texts by its pseudonym.

    Parameters
    ----------
    pseudonyms
        Patient ID -> pseudonym.
    aliases
        Other texts that stand for a patient (an ID as written in the file, a file name
        stem) -> that patient's ID (a key of ``pseudonyms``).

    Matching ignores letter case and needs the text to stand alone (no letter or digit
    right before or after it), so that the ID ``7`` does not rewrite ``17 samples``; longer
    texts are replaced first.
    """

    def __init__(
        self, pseudonyms: Mapping[str, str], aliases: Mapping[str, str] | None = None
    ) -> None:
        replacement = {str(i).casefold(): p for i, p in pseudonyms.items() if str(i)}
        for alias, patient in (aliases or {}).items():
            alias = str(alias).strip()
            if alias and str(patient) in pseudonyms:
                replacement.setdefault(alias.casefold(), pseudonyms[str(patient)])
        self.replacement = replacement
        texts = sorted(replacement, key=len, reverse=True)
        self._pattern = (
            re.compile(
                f"(?<!{_NOT_ID_CHARACTER})(?:"
                + "|".join(re.escape(t) for t in texts)
                + f")(?!{_NOT_ID_CHARACTER})",
                re.IGNORECASE,
            )
            if texts
            else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not isinstance(text, str):
            return text
        return self._pattern.sub(lambda match: self.replacement[match.group(0).casefold()], text)

    def messages(self, messages: Iterable[str]) -> list[str]:
        """Every message scrubbed, duplicates (after scrubbing) dropped."""
        return list(dict.fromkeys(self(m) for m in messages))

    def frame(self, table: pd.DataFrame) -> pd.DataFrame:
        """A copy with every text cell, the index and the column names scrubbed."""
        if self._pattern is None:
            return table
        out = table.copy()
        for column in out.columns:
            values = out[column]
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                out[column] = values.map(lambda v: self(v) if isinstance(v, str) else v)
        out.index = out.index.map(lambda v: self(v) if isinstance(v, str) else v)
        out.columns = out.columns.map(lambda v: self(v) if isinstance(v, str) else v)
        return out


def id_aliases(
    results: Iterable[object], normalise: Callable[[str], str]
) -> tuple[set[str], dict[str, str]]:
    """Patient IDs and aliases met by the readers: ``(ids, alias -> id)``.

    ``results`` are :class:`~analysis.io.ReadResult`; each contributes its frame's index and
    its ``ids`` (text as written -> reader's ID), both passed through ``normalise`` (the
    pipeline's own ID normalisation).
    """
    ids: set[str] = set()
    aliases: dict[str, str] = {}
    for result in results:
        if result is None:
            continue
        for raw in result.frame.index:
            patient = normalise(str(raw))
            if patient:
                ids.add(patient)
                aliases[str(raw)] = patient
        for raw, reader_id in (getattr(result, "ids", None) or {}).items():
            patient = normalise(str(reader_id))
            if patient:
                ids.add(patient)
                aliases[str(raw)] = patient
                aliases[str(reader_id)] = patient
    return ids, aliases


class _Holding(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.records.append(record)
            return False
        return True


class _Scrubbing(logging.Filter):
    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self.scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.scrub(record.getMessage()), None
        return True


@contextlib.contextmanager
def held_warnings(logger: logging.Logger, enabled: bool = True) -> Iterator[Callable]:
    """Hold back ``logger``'s warnings until a scrubber is known, then print them scrubbed.

    Yields ``release(scrub)``: print the held warnings through ``scrub`` and scrub every
    later record of ``logger`` too, until the block ends. Without a call to ``release``
    (an error), the held warnings are dropped: the error is what the user needs, and the
    warnings could hold IDs that were never scrubbed.
    """
    if not enabled:
        yield lambda scrub: None
        return
    holding = _Holding()
    logger.addFilter(holding)
    scrubbing: list[_Scrubbing] = []

    def release(scrub: Callable[[str], str]) -> None:
        logger.removeFilter(holding)
        live = _Scrubbing(scrub)
        logger.addFilter(live)
        scrubbing.append(live)
        for record in holding.records:
            record.msg, record.args = scrub(record.getMessage()), None
            logger.handle(record)
        holding.records.clear()

    try:
        yield release
    finally:
        logger.removeFilter(holding)
        for live in scrubbing:
            logger.removeFilter(live)
