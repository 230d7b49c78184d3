"""The notebook API: the README's example runs as written, and it is the pipeline's code path."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import radmap

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """Run the README's example in a fresh folder and keep its variables."""
    folder = tmp_path_factory.mktemp("notebook")
    namespace: dict = {}
    cwd = Path.cwd()
    try:
        import os

        os.chdir(folder)
        exec(compile(readme_example(), "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return folder, namespace


def test_readme_example_runs_and_fills_every_slot(example):
    folder, ns = example
    adata = ns["adata"]
    uns = adata.uns["radmap"]
    for key in ("features", "modules", "associations", "enrichment", "survival"):
        assert isinstance(uns[key], pd.DataFrame), key
    for step in ("preprocess", "modules", "associate", "enrich", "survival"):
        assert step in uns["params"], step
    assert not ns["links"].empty and (ns["links"]["q"] < 0.05).all()
    assert (folder / "study.h5ad").is_file()
    assert ns["fig"].data, "the volcano has no trace"
    client = ns["app"].server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/assets/radmap.css").status_code == 200


def test_notebook_steps_equal_the_pipeline(example, tmp_path):
    """radmap.run gives the same map as the step-by-step notebook session."""
    folder, ns = example
    files = {k: folder / v for k, v in {"expression": "cohort/expression.csv",
             "imaging": "cohort/imaging.csv", "clinical": "cohort/clinical.csv"}.items()}  # fmt: skip
    path = radmap.run(
        expression=files["expression"],
        imaging=[files["imaging"]],
        clinical=files["clinical"],
        min_module_size=20,
        out=tmp_path / "out",
    )
    piped = radmap.read_bundle(path)
    notebook = ns["adata"]
    left = piped.uns["radmap"]["associations"].set_index(["module", "feature"]).sort_index()
    right = notebook.uns["radmap"]["associations"].set_index(["module", "feature"]).sort_index()
    np.testing.assert_allclose(left["p"].astype(float), right["p"].astype(float), rtol=1e-6)
    assert (piped.var["module"].astype(str) == notebook.var["module"].astype(str)).all()


def test_tools_copy_leaves_the_input_alone(example):
    _, ns = example
    adata = ns["adata"]
    before = adata.uns["radmap"]["associations"].copy()
    copied = radmap.tl.associate(adata, binary_test="mannwhitney", genes=False, copy=True)
    pd.testing.assert_frame_equal(adata.uns["radmap"]["associations"], before)
    assert copied.uns["radmap"]["params"]["associate"]["binary_test"] == "mannwhitney"


def test_tools_say_which_step_is_missing():
    cohort = radmap.datasets.synthetic(n_patients=30, n_genes=60, n_features=4, seed=2)
    import anndata as ad

    bare = ad.AnnData(cohort.expression.T.to_numpy())
    with pytest.raises(radmap.InputError, match="radmap.read"):
        radmap.tl.associate(bare)
    with pytest.raises(radmap.InputError, match="radmap.tl.modules"):
        radmap.tl.enrich(bare)


def test_read_bundle_names_the_missing_slot(example, tmp_path):
    _, ns = example
    broken = ns["adata"].copy()
    del broken.uns["radmap"]["associations"]
    radmap.write_bundle(broken, tmp_path / "broken.h5ad")
    with pytest.raises(radmap.InputError, match=r'uns\["radmap"\]\["associations"\]'):
        radmap.read_bundle(tmp_path / "broken.h5ad")
    broken = ns["adata"].copy()
    del broken.obsm["eigengenes"]
    with pytest.raises(radmap.InputError, match="eigengenes"):
        radmap.validate_bundle(broken)


def test_analysis_layer_never_imports_the_explorer():
    for path in (ROOT / "analysis").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(
            r"^\s*(from|import)\s+(\.\.explorer|radmap\.explorer|dash)\b", text, re.M
        ), path
