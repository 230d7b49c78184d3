"""A plain (non-editable) `pip install .` carries the gene sets, demo data and app assets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, analysis, explorer
from analysis import datasets, enrich
paths = enrich.bundled_gene_set_paths()
demo = datasets.demo_data_dir()
print(json.dumps({
    "analysis": analysis.__file__,
    "genesets": {k: str(v) for k, v in paths.items()},
    "genesets_ok": all(v.is_file() for v in paths.values()),
    "demo": str(demo),
    "demo_files": sorted(p.name for p in demo.iterdir()),
    "aim": len(list((demo / "aim_xml").glob("*.xml"))),
    "assets": [p.name for p in explorer.assets_dir().iterdir()],
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(ROOT)],
        check=True, capture_output=True, cwd=build, timeout=300,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )  # fmt: skip
    return target


def test_installed_package_finds_its_data(installed, tmp_path):
    import json

    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["analysis"].startswith(str(installed))
    assert found["genesets_ok"]
    assert all(path.startswith(str(installed)) for path in found["genesets"].values())
    assert found["demo"].startswith(str(installed))
    assert "expression_top1000_log10fpkm_zscore.csv" in found["demo_files"]
    assert "DATA_CARD.md" in found["demo_files"]
    assert found["aim"] == 190
    assert "radmap.css" in found["assets"]
