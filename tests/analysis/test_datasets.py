"""The synthetic cohort: determinism, shape, and planted truth that holds in the data."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import datasets, enrich, survival
from radmap.analysis.bundle import FEATURE_TYPES, SURVIVAL_EVENT, SURVIVAL_TIME
from radmap.analysis.validate import InputError
from scipy import stats


@pytest.fixture(scope="module")
def cohort():
    return datasets.synthetic(seed=9)


@pytest.fixture(scope="module")
def large():
    """Many patients, few genes: sample correlations close to the planted strengths."""
    return datasets.synthetic(n_patients=3000, n_genes=300, n_features=14, seed=1)


def test_same_seed_same_data_other_seed_other_data(cohort):
    again = datasets.synthetic(seed=9)
    pd.testing.assert_frame_equal(cohort.expression, again.expression)
    pd.testing.assert_frame_equal(cohort.imaging, again.imaging)
    pd.testing.assert_frame_equal(cohort.clinical, again.clinical)
    pd.testing.assert_series_equal(cohort.truth["gene_module"], again.truth["gene_module"])
    assert cohort.truth["module_terms"] == again.truth["module_terms"]
    other = datasets.synthetic(seed=10)
    assert not other.expression.index.equals(cohort.expression.index)
    assert not np.allclose(
        other.imaging.select_dtypes("number").to_numpy()[:5, :5],
        cohort.imaging.select_dtypes("number").to_numpy()[:5, :5],
        equal_nan=True,
    )


def test_layout_matches_what_labs_have(cohort):
    expression, imaging, clinical = cohort.expression, cohort.imaging, cohort.clinical
    assert expression.shape == (1000, 130)
    assert expression.index.is_unique and list(expression.columns) == list(imaging.index)
    assert list(clinical.index) == list(imaging.index)
    assert imaging.index.name == clinical.index.name == "patient_id"
    assert expression.columns.name is None and expression.index.name is None
    assert imaging.shape == (130, 30)
    assert set(cohort.feature_types) == set(imaging.columns)
    assert set(cohort.feature_types.values()) <= set(FEATURE_TYPES)
    for feature, kind in cohort.feature_types.items():
        column = imaging[feature]
        if kind == "continuous":
            assert column.dtype == np.float64
        else:
            assert isinstance(column.dtype, pd.CategoricalDtype)
            assert column.cat.ordered == (kind == "ordinal")
            assert column.cat.categories.size == (2 if kind == "binary" else column.nunique())
    values = expression.to_numpy()
    assert values.min() >= 0 and values.max() < 25, "log2-scale expression"
    assert imaging.isna().any().any()
    assert set(clinical["EGFR"].dropna()) == {"Mutant", "Wildtype", "Not Collected"}
    assert clinical[SURVIVAL_TIME].isna().any()
    assert set(clinical[SURVIVAL_EVENT].dropna()) == {0.0, 1.0}
    assert (clinical[SURVIVAL_TIME].dropna() >= 1).all()


def test_planted_modules_are_real_members_of_their_hallmark_set(cohort):
    hallmark = enrich.load_gene_sets(["hallmark"])["hallmark"]
    truth = cohort.truth["gene_module"]
    terms = cohort.truth["module_terms"]
    assert len(set(terms.values())) == len(terms) == 5
    planted_members = set().union(*(hallmark[term] for term in terms.values()))
    for module, term in terms.items():
        genes = truth.index[truth == module]
        assert len(genes) == 40
        assert set(genes) <= set(hallmark[term])
    background = truth.index[truth == "none"]
    assert not set(background) & planted_members
    assert not background.str.fullmatch(r"GENE\d{5}").any(), "1,000 genes fit in real symbols"


def test_module_size_shrinks_for_few_genes_and_bad_arguments_fail():
    small = datasets.synthetic(n_patients=15, n_genes=100, n_features=3, n_modules=5)
    sizes = small.truth["gene_module"].value_counts()
    assert sizes.drop("none").tolist() == [10] * 5
    assert small.imaging.shape[1] == 3 and small.truth["mutation_link"] is None
    with pytest.raises(InputError, match="n_patients"):
        datasets.synthetic(n_patients=2)
    with pytest.raises(InputError, match="too few"):
        datasets.synthetic(n_genes=40, n_modules=5)


def test_module_genes_follow_their_latent_factor(large):
    truth = large.truth["gene_module"]
    latent = large.truth["latent"]
    samples = large.expression.T
    for module in latent.columns:
        genes = truth.index[truth == module]
        rho = [np.corrcoef(samples[gene], latent[module])[0, 1] for gene in genes]
        assert 0.6 <= np.mean(rho) <= 0.85
        assert min(rho) > 0.5
    background = truth.index[truth == "none"][:50]
    rho = [abs(np.corrcoef(samples[gene], latent.iloc[:, 0])[0, 1]) for gene in background]
    assert max(rho) < 0.1


def test_planted_links_have_the_planned_strength(large):
    latent, imaging = large.truth["latent"], large.imaging
    links = large.truth["links"].set_index("type")
    assert set(links.index) == {"continuous", "binary", "ordinal", "categorical"}

    continuous = links.loc["continuous"]
    values = imaging[continuous["feature"]]
    seen = values.notna()
    r = np.corrcoef(values[seen], latent.loc[seen, continuous["module"]])[0, 1]
    assert r == pytest.approx(continuous["strength"], abs=0.05)

    binary = links.loc["binary"]
    present = imaging[binary["feature"]] == "present"
    known = imaging[binary["feature"]].notna()
    factor = latent[binary["module"]]
    point_biserial = np.corrcoef(present[known], factor[known])[0, 1]
    # Cutting a liability of correlation s at the 60 % quantile gives s * phi(c) / sqrt(pq).
    cut = stats.norm.ppf(0.6)
    expected = binary["strength"] * stats.norm.pdf(cut) / np.sqrt(0.6 * 0.4)
    assert point_biserial == pytest.approx(expected, abs=0.05)

    ordinal = links.loc["ordinal"]
    codes = imaging[ordinal["feature"]].cat.codes.replace(-1, np.nan)
    rho = stats.spearmanr(codes, latent[ordinal["module"]], nan_policy="omit").statistic
    assert 0.35 < rho < 0.5

    categorical = links.loc["categorical"]
    groups = [
        latent.loc[imaging[categorical["feature"]] == level, categorical["module"]]
        for level in imaging[categorical["feature"]].cat.categories
    ]
    assert stats.kruskal(*groups).pvalue < 1e-20

    for feature in large.truth["null_features"]:
        column = imaging[feature]
        numbers = column.cat.codes.replace(-1, np.nan) if column.dtype == "category" else column
        seen = numbers.notna()
        for module in latent.columns:
            assert abs(np.corrcoef(numbers[seen], latent.loc[seen, module])[0, 1]) < 0.08


def test_planted_mutation_and_survival_effects(large):
    mutation, feature = large.truth["mutation_link"]
    table = pd.crosstab(large.imaging[feature], large.clinical[mutation])
    mutant_rate = table["Mutant"] / (table["Mutant"] + table["Wildtype"])
    assert mutant_rate["solid"] < 0.2 < 0.35 < mutant_rate["part-solid"]
    assert mutant_rate["ground-glass"] > 0.45
    factor = large.truth["latent"][large.truth["survival_module"]]
    result = survival.cox(large.clinical[SURVIVAL_TIME], large.clinical[SURVIVAL_EVENT], factor)
    assert result["ci_low"] < large.truth["survival_hr"] * 1.1
    assert result["ci_high"] > large.truth["survival_hr"] / 1.1
    other = large.truth["latent"]["planted_1"]
    null = survival.cox(large.clinical[SURVIVAL_TIME], large.clinical[SURVIVAL_EVENT], other)
    assert 0.85 < null["hr"] < 1.15
    assert 0.5 < large.clinical[SURVIVAL_EVENT].mean() < 0.8


def test_write_cohort_writes_lab_style_files(cohort, tmp_path):
    paths = datasets.write_cohort(cohort, tmp_path / "out")
    assert set(paths) == {"expression", "imaging", "clinical"}
    assert paths["expression"].read_text().split("\n", 1)[0].startswith(",SYN-0001,")
    expression = pd.read_csv(paths["expression"], index_col=0)
    np.testing.assert_allclose(expression.to_numpy(), cohort.expression.to_numpy(), atol=1e-4)
    assert list(expression.index) == list(cohort.expression.index)
    imaging = pd.read_csv(paths["imaging"])
    assert imaging.columns[0] == "patient_id"
    assert imaging.shape == (130, 31)
    pd.testing.assert_series_equal(
        imaging.set_index("patient_id")["spiculation"],
        cohort.imaging["spiculation"].astype(object),
        check_names=False,
        check_index=False,
    )
    clinical = pd.read_csv(paths["clinical"])
    assert clinical.columns[0] == "Patient ID"
    assert {"EGFR mutation status", "KRAS mutation status", "Survival time (days)", "Event"} <= set(
        clinical.columns
    )
    assert set(clinical["Event"].dropna()) == {0, 1}
    assert (clinical["EGFR mutation status"] == "Not Collected").sum() == (
        cohort.clinical["EGFR"] == "Not Collected"
    ).sum()


def test_scales_to_a_large_study_quickly():
    start = time.process_time()
    big = datasets.synthetic(n_patients=500, n_genes=20_000, n_features=200, seed=3)
    elapsed = time.process_time() - start
    assert big.expression.shape == (20_000, 500) and big.imaging.shape == (500, 200)
    assert big.expression.index.is_unique
    assert big.expression.index.str.fullmatch(r"GENE\d{5}").sum() > 0, "ran out of real symbols"
    assert elapsed < 10, f"synthetic 500 x 20,000 x 200 took {elapsed:.1f} s of CPU"


def test_null_imaging_only_and_annotation_options():
    cohort = datasets.synthetic(
        n_patients=400, n_genes=200, n_features=16, n_modules=3, module_size=15, seed=4,
        null=True, n_imaging_only=7, annotations=True,
    )  # fmt: skip
    truth = cohort.truth
    # patients with imaging and clinical data but no expression
    assert cohort.expression.shape[1] == 400 and cohort.imaging.shape[0] == 407
    assert truth["imaging_only"] == list(cohort.imaging.index[400:])
    assert not set(truth["imaging_only"]) & set(cohort.expression.columns)
    assert cohort.clinical.loc[truth["imaging_only"], "EGFR"].notna().all()
    # a full null: no link, no mutation link, no survival module
    assert truth["links"].empty and truth["mutation_link"] is None
    assert truth["survival_module"] is None and truth["survival_hr"] == 1.0
    egfr = cohort.clinical["EGFR"].where(cohort.clinical["EGFR"] != "Not Collected")
    table = pd.crosstab(cohort.imaging["attenuation"], egfr)
    assert stats.chi2_contingency(table).pvalue > 0.001
    # the multi-valued annotation and the sparse categories
    findings = cohort.imaging[datasets.FINDINGS_FEATURE].dropna()
    assert findings.str.contains("|", regex=False).mean() > 0.2
    rare = findings.str.contains(datasets.FINDINGS[-1], regex=False).mean()
    assert 0 < rare < 0.1
    shape = cohort.imaging[datasets.SPARSE_FEATURE[0]].value_counts()
    assert shape["polygonal"] == datasets.SPARSE_RARE_COUNT
    # attenuation is an ordered scale
    attenuation = cohort.imaging["attenuation"]
    assert attenuation.cat.ordered and list(attenuation.cat.categories) == list(
        datasets.ATTENUATION_ORDER
    )
    # the default draws are unchanged by the options being available
    plain = datasets.synthetic(n_patients=50, n_genes=200, n_features=12, n_modules=3, seed=4)
    assert plain.imaging.shape == (50, 12) and plain.truth["imaging_only"] == []


def test_a_cached_demo_of_an_older_format_is_rebuilt(tmp_path, monkeypatch):
    """After an upgrade, `radmap demo` must not serve the bundle an older radmap cached."""
    import anndata as ad
    from radmap.analysis.bundle import FORMAT_VERSION
    from radmap.analysis.io.bundle_io import bundle_format

    from radmap import __version__

    built = []
    monkeypatch.setattr(datasets, "run", lambda config, progress: built.append(config.out))
    cached = tmp_path / f"demo-{__version__}" / "bundle.h5ad"
    cached.parent.mkdir()
    stale = ad.AnnData(np.zeros((2, 2), dtype=np.float32))
    stale.uns["radmap"] = {"format_version": "radmap-bundle/1"}
    stale.write_h5ad(cached)
    assert bundle_format(cached) == "radmap-bundle/1"
    assert datasets.demo_bundle_path(cache_dir=tmp_path) == cached
    assert built == [cached.parent]
    stale.uns["radmap"]["format_version"] = FORMAT_VERSION
    stale.write_h5ad(cached)
    datasets.demo_bundle_path(cache_dir=tmp_path)
    assert built == [cached.parent], "a current bundle was rebuilt"
    cached.write_text("not an h5ad file")
    assert bundle_format(cached) is None
