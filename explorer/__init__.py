"""radmap explorer: the Dash app that browses a radiogenomic map bundle."""

from __future__ import annotations

from pathlib import Path


def assets_dir() -> Path:
    """Folder of the app's CSS, favicon and static files (installed package or checkout)."""
    here = Path(__file__).resolve().parent
    installed = here / "assets"
    return installed if installed.joinpath("radmap.css").is_file() else here.parent / "assets"
