"""radmap: interactive radiogenomic maps (imaging phenotypes x co-expressed gene modules)."""

from __future__ import annotations

__version__ = "0.1.0"
