"""Suite-wide hooks: measured figures recorded by tests are printed at the end of the run."""

from __future__ import annotations

FIGURE_PREFIX = "figure:"


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
