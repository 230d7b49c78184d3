"""radmap analysis layer: from a lab's files to a reproducible radiogenomic map.

Nothing here imports the explorer: the science runs without Dash.
"""

from __future__ import annotations

from .. import __version__

__all__ = ["__version__"]
