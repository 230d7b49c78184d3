"""radmap explorer: the Dash app that browses a radiogenomic map bundle."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def assets_dir() -> Path:
    """Folder of the app's CSS, favicon and static files (checkout or installed package)."""
    try:
        installed = resources.files("explorer.assets")
        if installed.joinpath("radmap.css").is_file():
            return Path(str(installed))
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "assets"
