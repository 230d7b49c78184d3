"""radmap analysis layer: from a lab's files to a reproducible radiogenomic map."""

from __future__ import annotations

__version__ = "0.1.0"
