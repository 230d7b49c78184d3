"""The pseudonym scrubber and the held warnings of ``analysis.privacy``."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from radmap.analysis import privacy
from radmap.analysis.validate import InputError


def test_scrubber_replaces_ids_and_aliases_in_any_case_but_not_inside_other_words():
    pseudonyms = privacy.pseudonymise(["R01-023", "7"], key=b"k" * 16)
    scrub = privacy.IdScrubber(pseudonyms, {"r01-023v1": "R01-023", "gone": "UNKNOWN"})
    text = scrub("r01-023v1.xml: skipped; patient R01-023 and 7, not 17 or R01-0234")
    assert "r01-023" not in text.lower().replace("r01-0234", "")
    assert f"{pseudonyms['R01-023']}.xml" in text and f"and {pseudonyms['7']}," in text
    assert "17" in text and "R01-0234" in text
    assert scrub("gone") == "gone", "an alias of an unknown patient is not an ID"
    table = scrub.frame(pd.DataFrame({"unmatched": ["R01-023|x"]}, index=["7"]))
    assert table.loc[pseudonyms["7"], "unmatched"] == f"{pseudonyms['R01-023']}|x"
    assert scrub.messages(["R01-023", "r01-023"]) == [pseudonyms["R01-023"]]


def test_held_warnings_are_printed_scrubbed_or_not_at_all(caplog):
    logger = logging.getLogger("radmap")
    with caplog.at_level(logging.WARNING, logger="radmap"):
        with privacy.held_warnings(logger) as release:
            logger.warning("dropped sample %s", "SYN-1")
            assert "SYN-1" not in caplog.text
            release(privacy.IdScrubber({"SYN-1": "Pabc"}))
            logger.warning("later SYN-1")
        logger.warning("after the block SYN-1")
        with pytest.raises(InputError), privacy.held_warnings(logger):
            logger.warning("never printed SYN-2")
            raise InputError("bad input")
    assert "dropped sample Pabc" in caplog.text and "later Pabc" in caplog.text
    assert "after the block SYN-1" in caplog.text and "SYN-2" not in caplog.text
