"""Callback registration: ``register_callbacks(app, ctx)`` wires every page.

Each module keeps its callback bodies as plain functions (tested without a browser) and a
``register(app, ctx)`` that connects them to component ids: read inputs -> data query ->
figure factory.
"""

from __future__ import annotations

from ..callbacks import (
    cohort,
    core,
    gene,
    module,
    network,
    patient,
    pins,
    predict,
    replication,
    subset,
    volcano,
)
from ..callbacks import map as map_callbacks
from ..callbacks.common import AppContext

__all__ = ["AppContext", "register_callbacks"]


def register_callbacks(app, ctx: AppContext, *, background_manager=None) -> None:
    """Register every callback of the explorer on ``app``."""
    core.register(app, ctx)
    map_callbacks.register(app, ctx)
    network.register(app, ctx)
    volcano.register(app, ctx, background_manager=background_manager)
    gene.register(app, ctx)
    module.register(app, ctx)
    cohort.register(app, ctx)
    patient.register(app, ctx)
    predict.register(app, ctx)
    replication.register(app, ctx)
    pins.register(app, ctx)
    subset.register(app, ctx)
