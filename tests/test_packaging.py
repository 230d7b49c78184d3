"""radmap as a user installs it: a wheel in a fresh virtual environment, run from a folder
that holds its own ``analysis.py`` and ``explorer.py`` (common in research folders)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

# Built from a clean copy: a stale build/ folder in the checkout must not hide a missing package.
UNPACKAGED = (".venv", "build", "dist", "*.egg-info", ".git", "__pycache__", ".pytest_cache",
              ".ruff_cache", ".hypothesis", "benchmarks", "tests")  # fmt: skip

PROBE = """
import json, radmap
from radmap.analysis import datasets, enrich
from radmap.explorer import assets_dir
paths = enrich.bundled_gene_set_paths()
demo = datasets.demo_data_dir()
print(json.dumps({
    "version": radmap.__version__,
    "radmap": radmap.__file__,
    "api": sorted(name for name in radmap.__all__),
    "genesets": {k: str(v) for k, v in paths.items()},
    "genesets_ok": all(v.is_file() for v in paths.values()),
    "demo": str(demo),
    "demo_files": sorted(p.name for p in demo.iterdir()),
    "aim": len(list((demo / "aim_xml").glob("*.xml"))),
    "assets": str(assets_dir()),
    "asset_files": [p.name for p in assets_dir().iterdir()],
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source") / "radmap"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*UNPACKAGED))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True, cwd=out, timeout=300,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )  # fmt: skip
    (found,) = out.glob("radmap-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; third-party dependencies come
    from the test environment's site-packages (a .pth file), radmap only from the wheel."""
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A research folder whose own modules would shadow generic package names."""
    folder = tmp_path_factory.mktemp("research")
    for name in ("analysis", "explorer"):
        folder.joinpath(f"{name}.py").write_text(
            "raise SystemExit('the local module was imported')\n"
        )
    return folder


def _env(venv: Path, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "RADMAP_CACHE": str(workdir / "cache"), "HOME": str(workdir),
            "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}  # fmt: skip


def test_wheel_has_one_top_level_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"radmap"}
    assert "radmap/explorer/assets/radmap.css" in names
    assert "radmap/explorer/assets/plotly-radmap.min.js" in names  # the page's plotly.js
    assert "radmap/explorer/assets/regenerator-runtime.js" in names
    assert not [name for name in names if "node_modules" in name or "tools/" in name]
    assert "radmap/analysis/demo_data/DATA_CARD.md" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "radmap = radmap.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_package_finds_its_data(venv, workdir):
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROBE],
        capture_output=True, text=True, cwd=workdir, env=_env(venv, workdir), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["radmap"].startswith(str(venv))
    assert {"read_bundle", "pp", "tl", "get", "pl", "run"} <= set(found["api"])
    assert found["genesets_ok"]
    assert all(path.startswith(str(venv)) for path in found["genesets"].values())
    assert found["demo"].startswith(str(venv))
    assert {"expression_top1000_log10fpkm_zscore.csv", "DATA_CARD.md"} <= set(found["demo_files"])
    assert found["aim"] == 190
    assert found["assets"].startswith(str(venv))
    assert {"radmap.css", "bootstrap.min.css", "favicon.ico"} <= set(found["asset_files"])


def test_pip_show_lists_only_radmap(venv, workdir):
    shown = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "show", "-f",
         "radmap"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    files = shown.split("Files:", 1)[1].split()
    top = {Path(f).parts[0] for f in files if not f.startswith("..")}
    assert {t for t in top if not t.endswith(".dist-info")} == {"radmap"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_installed_demo_analysis_and_styled_explorer(venv, workdir):
    """`radmap demo` from the wheel: builds the demo bundle, serves pages and the CSS."""
    port = _free_port()
    log = workdir / "demo.log"
    with log.open("w") as stream:
        server = subprocess.Popen(
            [str(venv / "bin" / "radmap"), "demo", "--port", str(port), "--workers", "1"],
            cwd=workdir, env=_env(venv, workdir), stdout=stream, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            try:
                status, _ = _get(f"{base}/_dash-layout")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the installed explorer did not start:\n{log.read_text()}")
        status, css = _get(f"{base}/assets/radmap.css")
        assert status == 200 and b"{" in css
        assert _get(f"{base}/assets/bootstrap.min.css")[0] == 200
        status, page = _get(f"{base}/map")
        assert status == 200
        assert b"/assets/radmap.css" in page and b"/assets/bootstrap.min.css" in page
        assert b"/assets/plotly-radmap.min.js" in page
        status, plotly_js = _get(f"{base}/assets/plotly-radmap.min.js")
        assert status == 200 and b"plotly.js v" in plotly_js[:200]
        bundle = workdir / "cache"
        assert list(bundle.glob("demo-*/bundle.h5ad")), "the demo bundle was not built"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
