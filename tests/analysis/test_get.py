"""Tidy-table helpers of radmap.get."""

from __future__ import annotations

import numpy as np
import pytest
from radmap.analysis.get import _smallest_per_column


@pytest.mark.parametrize("keep", [0, 1, 17, 120])
def test_smallest_per_column_is_a_stable_argsorts_head(keep):
    rng = np.random.default_rng(keep)
    p = np.round(rng.random((120, 6)), 2)  # many ties
    p[rng.random(p.shape) < 0.3] = np.nan
    p[:, 3] = np.nan  # a column never tested
    p[:, 4] = 0.5  # a column of ties only
    expected = np.argsort(np.where(np.isnan(p), np.inf, p), axis=0, kind="stable")[:keep]
    np.testing.assert_array_equal(_smallest_per_column(p, keep), expected)
