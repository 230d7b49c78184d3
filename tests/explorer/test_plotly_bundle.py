"""radmap's plotly.js build (``assets/plotly-radmap.min.js``): it draws every trace type the
explorer's figures use, it is the plotly.js generation plotly.py writes figures for, and the
shipped file is what ``tools/plotly-bundle`` builds."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import plotly
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType
from plotly.offline import get_plotlyjs_version
from radmap.explorer import assets_dir

ROOT = Path(__file__).resolve().parents[2]
EXPLORER = ROOT / "explorer"
BUILD = ROOT / "tools" / "plotly-bundle"
BUNDLE = assets_dir() / "plotly-radmap.min.js"
FULL_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
"""plotly.py's own plotly.js, with every trace type (kaleido and the report use it)."""

TRACE_TYPES = {
    name.lower()
    for name in dir(go)
    if isinstance(getattr(go, name), type) and issubclass(getattr(go, name), BaseTraceType)
}


def registered_traces(script: str) -> set[str]:
    """Trace types a plotly.js build registers (each trace module declares its name)."""
    return set(re.findall(r'moduleType:"trace",name:"(\w+)"', script))


def bundle_version(script: str) -> str:
    return re.match(r"/\*\*\s*\* plotly\.js v(\S+)", script).group(1)


def traces_in_source(tree: ast.AST) -> set[str]:
    """Trace types a module of figure code makes: ``go.<Trace>(...)``, a trace's ``"type"``
    (``{"type": "scatter"}``, ``type="bar"``) and trace type names a function returns
    (``return "scattergl" if many else "scatter"``)."""
    named = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "go"
        ):
            named.append(node.attr.lower())
        elif isinstance(node, ast.Dict):
            named += [
                value
                for key, value in zip(node.keys, node.values)
                if isinstance(key, ast.Constant) and key.value == "type"
            ]
        elif isinstance(node, ast.keyword) and node.arg == "type":
            named.append(node.value)
        elif isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            named += [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
    names = {name.value if isinstance(name, ast.Constant) else name for name in named}
    return {name for name in names if isinstance(name, str) and name in TRACE_TYPES}


def explorer_traces() -> dict[str, set[str]]:
    used = {}
    for path in sorted(EXPLORER.rglob("*.py")):
        traces = traces_in_source(ast.parse(path.read_text(encoding="utf-8")))
        if traces:
            used[str(path.relative_to(ROOT))] = traces
    return used


def test_the_source_scan_finds_trace_types_however_a_figure_names_them():
    source = """
fig = go.Figure(go.Heatmap(z=z))
fig.add_trace(go.Violin(y=y))
spec = {"type": "scatterpolar", "x": [1]}
layout = {"type": "category", "shapes": [{"type": "line"}]}
SVG_TRACES = {"scatterternary", "contour"}  # plotly's trace names as data, not figures
fig.update_xaxes(type="category")
fig.add_trace(dict(type="bar", y=y))
def roles():
    return {"table": 1, "bar": 2}
def kind(n):
    return "scattergl" if n > 10 else "scatter"
"""
    assert traces_in_source(ast.parse(source)) == {
        "heatmap",
        "violin",
        "scatterpolar",
        "bar",
        "scattergl",
        "scatter",
    }


def test_the_bundle_draws_every_trace_type_the_figures_use():
    script = BUNDLE.read_text(encoding="utf-8")
    registered = registered_traces(script)
    used = explorer_traces()
    assert {"heatmap", "scattergl", "box", "bar"} <= set().union(*used.values())
    missing = {path: traces - registered for path, traces in used.items() if traces - registered}
    assert not missing, (
        f"the explorer's plotly.js build lacks {missing}: add them to "
        "tools/plotly-bundle/index.js and rebuild (see its README)"
    )


def test_the_full_plotly_js_is_told_apart_from_radmaps_build():
    full = FULL_PLOTLY_JS.read_text(encoding="utf-8")
    assert len(registered_traces(full)) > 40
    assert registered_traces(BUNDLE.read_text(encoding="utf-8")) < registered_traces(full)


def test_the_bundle_is_the_plotly_js_generation_plotly_py_writes_for():
    version = bundle_version(BUNDLE.read_text(encoding="utf-8"))
    assert version.split(".")[0] == get_plotlyjs_version().split(".")[0], (
        f"radmap's plotly.js is {version}, plotly.py writes figures for "
        f"{get_plotlyjs_version()}: rebuild tools/plotly-bundle with that version"
    )


def test_the_shipped_bundle_is_what_the_build_makes():
    """The build's pinned plotly.js and its list of traces are the shipped file's."""
    script = BUNDLE.read_text(encoding="utf-8")
    package = json.loads((BUILD / "package.json").read_text(encoding="utf-8"))
    assert bundle_version(script) == package["devDependencies"]["plotly.js"]
    lock = json.loads((BUILD / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/plotly.js"]["version"] == bundle_version(script)
    entry = (BUILD / "index.js").read_text(encoding="utf-8")
    listed = set(re.findall(r"require\('plotly\.js/lib/(\w+)'\)", entry)) - {"core"}
    assert registered_traces(script) == listed | {"scatter"}  # core brings scatter


def regl_cache_keys(script: str) -> list[str]:
    """What regl's cache of generated WebGL code is looked up by in a plotly.js build: the
    expression assigned to the key after the program's source is laid out."""
    laid_out = r"\.replace\(/\{/g,`\{\n`\),(\w+);if\(\w+&&\(\1=([^,]+),"
    return [match.group(2) for match in re.finditer(laid_out, script)]


def test_regl_looks_up_its_generated_code_by_the_source_not_a_javascript_sha256():
    full = FULL_PLOTLY_JS.read_text(encoding="utf-8")
    hashed = regl_cache_keys(full)
    assert len(hashed) == 1 and "(" in hashed[0], hashed  # the key is a hash of the source
    keys = regl_cache_keys(BUNDLE.read_text(encoding="utf-8"))
    assert len(keys) == 1 and re.fullmatch(r"\w+", keys[0]), keys
