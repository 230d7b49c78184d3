"""Patient page callbacks: a new patient chosen in the search box replaces the page body.

The page renders its first patient with the layout itself (see :mod:`explorer.pages.patient`);
this callback only answers a new choice.
"""

from __future__ import annotations

from dash import Input, Output
from dash.exceptions import PreventUpdate

from ..callbacks.common import AppContext
from ..pages.common import sid
from ..pages.patient import PAGE, body, facts


def register(app, ctx: AppContext) -> None:
    data = ctx.data

    @app.callback(
        Output("patient-body", "children"),
        Output("patient-facts", "children"),
        Input(sid(PAGE, "patient"), "value"),
        prevent_initial_call=True,
    )
    def _choose(patient):
        if not patient or str(patient) not in data.patient_set:
            raise PreventUpdate
        return body(data, str(patient)), facts(data, str(patient))
