"""Suite-wide hooks: measured figures recorded by tests are printed at the end of the run."""

from __future__ import annotations

import os

FIGURE_PREFIX = "figure:"


def pytest_configure(config) -> None:
    """Bootstrap stability ("auto": 100 resamples of a small network) would multiply the time
    of every test that builds a bundle; tests that want it ask for it (or set this back)."""
    os.environ["RADMAP_AUTO_BOOTSTRAPS"] = "0"
    # Likewise the demo's EGFR prediction (tests of `radmap demo` build the demo bundle).
    os.environ["RADMAP_DEMO_PREDICT"] = "0"


def pytest_terminal_summary(terminalreporter) -> None:
    """Print every ``record_property("figure:<name>", value)`` of the passed tests."""
    lines = [
        f"{report.nodeid.split('::')[-1]}: {name.removeprefix(FIGURE_PREFIX)} = {value}"
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call"
        for name, value in report.user_properties
        if name.startswith(FIGURE_PREFIX)
    ]
    if lines:
        terminalreporter.section("radmap figures measured by the tests")
        for line in lines:
            terminalreporter.write_line(line)
