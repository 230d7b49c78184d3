"""radmap: interactive radiogenomic maps (imaging phenotypes x co-expressed gene modules).

The notebook API follows scanpy::

    import radmap

    adata = radmap.read(expression="expr.csv", imaging=["radiomics.csv"], clinical="clin.csv")
    radmap.pp.preprocess(adata)          # log scale, imputation, clipping, variable genes
    radmap.tl.modules(adata)             # co-expressed modules, eigengenes, hubs
    radmap.tl.associate(adata)           # module and gene x imaging feature tests
    radmap.tl.mutations(adata)           # mutation status x imaging and modules
    radmap.tl.enrich(adata)              # pathway over-representation, offline
    radmap.tl.survival(adata)            # Kaplan-Meier / log-rank / Cox
    radmap.get.associations(adata, q=0.05)  # tidy tables
    radmap.pl.map(adata)                 # the explorer's figures, as plotly figures
    radmap.write_bundle(adata, "study.h5ad")
    app = radmap.explorer.create_app(adata)  # the explorer on what you just computed

``radmap.run(config)`` is the whole ``radmap analyze`` and chains the same tools.
Submodules load on first use, so ``import radmap`` is quick.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "pp": ".analysis.pp",
    "tl": ".analysis.tl",
    "get": ".analysis.get",
    "pl": ".explorer.pl",
    "datasets": ".analysis.datasets",
    "analysis": ".analysis",
    "explorer": ".explorer",
}
_FUNCTIONS = {
    "read": (".analysis.api", "read"),
    "run": (".analysis.api", "run"),
    "Config": (".analysis.pipeline", "Config"),
    "read_bundle": (".analysis.io", "load_bundle"),
    "write_bundle": (".analysis.io", "save_bundle"),
    "validate_bundle": (".analysis.io", "validate_bundle"),
    "read_expression": (".analysis.io", "read_expression"),
    "read_imaging": (".analysis.io", "read_imaging"),
    "read_aim": (".analysis.io", "read_aim"),
    "read_clinical": (".analysis.io", "read_clinical"),
    "InputError": (".analysis.validate", "InputError"),
}

__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(_SUBMODULES[name], __name__)
    elif name in _FUNCTIONS:
        path, attribute = _FUNCTIONS[name]
        module = getattr(importlib.import_module(path, __name__), attribute)
    else:
        raise AttributeError(f"module 'radmap' has no attribute {name!r}")
    globals()[name] = module
    return module


def __dir__() -> list[str]:
    return sorted(__all__)
