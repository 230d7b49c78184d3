"""radmap explorer: the Dash app that browses a radiogenomic map bundle."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_folder(package: str) -> Path:
    """Folder of a data package shipped inside radmap (wheel, editable install or checkout)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is missing from this radmap installation")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def assets_dir() -> Path:
    """Folder of the app's CSS, favicon and static files (``radmap.explorer.assets``)."""
    return package_folder(f"{__name__}.assets")


def __getattr__(name: str):
    """``radmap.explorer.create_app`` / ``run`` without importing Dash up front."""
    if name in ("create_app", "run", "make_server"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
