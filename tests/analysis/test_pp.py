"""Tests for analysis.pp: scale detection, transforms, imputation, clipping, filtering, HVG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from radmap.analysis import pp
from radmap.analysis.bundle import INPUT_LAYER
from radmap.analysis.validate import InputError


def frame(values: np.ndarray) -> pd.DataFrame:
    n_samples, n_genes = values.shape
    return pd.DataFrame(
        values,
        index=[f"S{i:02d}" for i in range(n_samples)],
        columns=[f"G{j:02d}" for j in range(n_genes)],
    )


def log_values(seed: int = 0, n_samples: int = 40, n_genes: int = 30) -> np.ndarray:
    """log2-like expression: gene levels 2-12, gene SDs 0.3-2 (all distinct)."""
    rng = np.random.default_rng(seed)
    sd = np.linspace(0.3, 2.0, n_genes)
    rng.shuffle(sd)
    return rng.uniform(2, 12, n_genes) + rng.standard_normal((n_samples, n_genes)) * sd


def counts_values(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.uniform(5, 500, 25)
    depth = rng.uniform(0.5, 2.0, (30, 1))
    return rng.poisson(means * depth).astype(float)


# ---------------------------------------------------------------------------------------
# scale detection and transforms


def test_counts_detected_and_normalised():
    counts = counts_values()
    adata, report, _ = pp.preprocess_expression(frame(counts))
    assert report["scale"] == "counts"
    assert report["scale_was"] == "inferred"
    totals = counts.sum(axis=1, keepdims=True)
    expected = np.log1p(counts / totals * np.median(totals))
    np.testing.assert_allclose(adata.X, expected, rtol=1e-5)
    np.testing.assert_array_equal(adata.layers[INPUT_LAYER], counts.astype(np.float32))


def test_fpkm_detected_and_log2_transformed():
    fpkm = np.exp2(log_values()) - 1
    adata, report, _ = pp.preprocess_expression(frame(fpkm))
    assert report["scale"] == "fpkm"
    np.testing.assert_allclose(adata.X, np.log2(fpkm + 1), rtol=1e-5)
    assert adata.X.dtype == np.float32


def test_log_detected_and_unchanged():
    values = log_values()
    adata, report, warnings = pp.preprocess_expression(frame(values))
    assert report["scale"] == "log"
    np.testing.assert_allclose(adata.X, values, rtol=1e-6)
    assert INPUT_LAYER not in adata.layers
    assert warnings == []
    assert list(adata.obs_names) == [f"S{i:02d}" for i in range(40)]


def test_zscore_detected_even_with_missing_values():
    values = log_values()
    z = (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)
    z[3, 4] = np.nan
    z[7, 9] = np.nan
    assert pp.infer_scale(z) == "zscore"
    adata, report, _ = pp.preprocess_expression(frame(z))
    assert report["scale"] == "zscore"
    assert report["n_imputed"] == 2


def test_declared_scale_is_used():
    values = log_values()
    _, report, _ = pp.preprocess_expression(frame(values), scale="tpm")
    assert report["scale"] == "tpm"
    assert report["scale_was"] == "declared"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([[0.0, 150.0], [3.0, 170.0], [2.0, 90.0]]), "counts"),
        (np.array([[0.5, 150.0], [3.0, 170.0], [2.0, 90.0]]), "fpkm"),
        (np.array([[0.0, 60.0], [3.0, 70.0], [2.0, 55.0]]), "fpkm"),
        (np.array([[0.0, 14.0], [3.0, 7.0], [2.0, 9.0]]), "log"),
        (np.array([[-1.0, 150.0], [3.0, 170.0], [2.0, 90.0]]), "log"),
        # one corrupt value does not make log data linear
        (np.array([[0.0, 1e7], [3.0, 7.0], [2.0, 9.0], [2.5, 8.0]]), "log"),
    ],
)
def test_infer_scale_rules(values, expected):
    assert pp.infer_scale(values) == expected


# ---------------------------------------------------------------------------------------
# cleaning


def test_missing_values_imputed_with_gene_median():
    values = log_values()
    values[[2, 5], 3] = np.nan
    values[0, 7] = np.nan
    adata, report, warnings = pp.preprocess_expression(frame(values))
    assert report["n_imputed"] == 3
    expected = np.nanmedian(values[:, 3])
    np.testing.assert_allclose(adata.X[[2, 5], 3], expected, rtol=1e-6)
    assert adata.X[0, 7] == pytest.approx(np.nanmedian(values[:, 7]), rel=1e-6)
    assert np.isnan(adata.layers[INPUT_LAYER][2, 3])
    assert any("imputed" in message for message in warnings)


def test_planted_outlier_is_clipped_to_the_mad_bound():
    values = log_values()
    values[4, 6] = 1e7  # a corrupt value, as in the real demo data
    adata, report, warnings = pp.preprocess_expression(frame(values), clip_mad=10)
    assert report["scale"] == "log"  # the outlier does not make the data look linear
    assert report["n_clipped_values"] == 1
    assert report["n_clipped_genes"] == 1
    gene = values[:, 6]
    median = np.median(gene)
    bound = median + 10 * 1.4826 * np.median(np.abs(gene - median))
    assert adata.X[4, 6] == pytest.approx(bound, rel=1e-6)
    others = np.delete(np.arange(40), 4)
    np.testing.assert_allclose(adata.X[others, 6], gene[others], rtol=1e-6)
    assert adata.layers[INPUT_LAYER][4, 6] == pytest.approx(1e7)
    assert any("clipped" in message for message in warnings)


def test_outlier_in_zscored_gene_is_clipped():
    values = log_values()
    values[4, 6] = 1e7
    z = (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)
    adata, report, _ = pp.preprocess_expression(frame(z))
    assert report["scale"] == "zscore"
    assert report["n_clipped_values"] == 1
    assert adata.X[4, 6] < z[4, 6] / 2


def test_clipping_off():
    values = log_values()
    values[0, 0] = 1e4
    adata, report, _ = pp.preprocess_expression(frame(values), scale="log", clip_mad=0)
    assert report["n_clipped_values"] == 0
    assert adata.X[0, 0] == pytest.approx(1e4)


def test_zero_mad_gene_uses_mean_absolute_deviation():
    values = log_values()
    column = np.full(40, 5.0)
    column[:3] = [5.5, 4.5, 300.0]  # MAD is 0: most values equal the median
    values[:, 2] = column
    adata, report, _ = pp.preprocess_expression(frame(values), scale="log", clip_mad=10)
    spread = 1.2533 * np.mean(np.abs(column - 5.0))
    expected = np.clip(column, 5.0 - 10 * spread, 5.0 + 10 * spread)
    np.testing.assert_allclose(adata.X[:, 2], expected, rtol=1e-6)
    assert adata.X[0, 2] == pytest.approx(5.5)  # small deviations survive
    assert adata.X[2, 2] < 300
    assert report["n_clipped_values"] == 1


def test_constant_gene_dropped():
    values = log_values()
    values[:, 5] = 3.0
    adata, report, warnings = pp.preprocess_expression(frame(values))
    assert report["n_constant_dropped"] == 1
    assert report["n_genes_in"] == 30
    assert report["n_genes"] == 29
    assert "G05" not in adata.var_names
    assert any("constant" in message for message in warnings)


def test_gene_without_values_dropped():
    values = log_values()
    values[:, 8] = np.nan
    adata, report, _ = pp.preprocess_expression(frame(values))
    assert report["n_empty_dropped"] == 1
    assert "G08" not in adata.var_names
    assert report["n_imputed"] == 0


# ---------------------------------------------------------------------------------------
# highly variable genes


def test_hvg_are_the_highest_variance_genes():
    values = log_values()
    adata, report, _ = pp.preprocess_expression(frame(values), n_top_genes=7)
    variance = values.var(axis=0, ddof=1)
    expected = set(np.array(adata.var_names)[np.argsort(-variance)[:7]])
    assert set(adata.var_names[adata.var["highly_variable"]]) == expected
    assert report["n_top_genes"] == 7
    np.testing.assert_allclose(adata.var["variance"], variance, rtol=1e-6)
    np.testing.assert_allclose(adata.var["mean"], values.mean(axis=0), rtol=1e-6)


def test_hvg_keeps_all_genes_when_fewer_than_requested():
    adata, report, _ = pp.preprocess_expression(frame(log_values()), n_top_genes=5000)
    assert adata.var["highly_variable"].all()
    assert report["n_top_genes"] == 30


def test_all_genes_enter_the_network_with_n_top_genes_all():
    values = log_values()
    adata, report, _ = pp.preprocess_expression(frame(values), n_top_genes="all")
    assert adata.var["highly_variable"].all() and report["n_top_genes"] == values.shape[1]
    source = pp.preprocess_expression(frame(values), n_top_genes=7)[0]
    source.var = source.var.iloc[:, :0]
    pp.preprocess(source, n_top_genes="all")
    assert source.var["highly_variable"].all()
    with pytest.raises(InputError, match="number of genes or 'all'"):
        pp.preprocess_expression(frame(values), n_top_genes="most")


def test_top_variance_mask_breaks_ties_by_position():
    mask = pp.top_variance_mask(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), 2)
    np.testing.assert_array_equal(mask, [False, True, True, False, False])


# ---------------------------------------------------------------------------------------
# bad input


def test_bad_scale_rejected():
    with pytest.raises(InputError, match="scale"):
        pp.preprocess_expression(frame(log_values()), scale="rpkm-ish")


def test_negative_counts_rejected():
    values = log_values()
    values[0, 0] = -1
    with pytest.raises(InputError, match="negative"):
        pp.preprocess_expression(frame(values), scale="counts")


def test_sample_without_counts_rejected():
    counts = counts_values()
    counts[4] = 0
    with pytest.raises(InputError, match="S04"):
        pp.preprocess_expression(frame(counts), scale="counts")


def test_duplicated_genes_rejected():
    data = frame(log_values())
    data.columns = ["G00"] * 2 + list(data.columns[2:])
    with pytest.raises(InputError, match="G00"):
        pp.preprocess_expression(data)


def test_non_numeric_rejected():
    data = frame(log_values()).astype(object)
    data.iloc[0, 3] = "high"
    with pytest.raises(InputError, match="G03"):
        pp.preprocess_expression(data)


def test_too_few_samples_rejected():
    with pytest.raises(InputError, match="samples"):
        pp.preprocess_expression(frame(log_values(n_samples=2)))


def test_column_nanmedian_matches_numpy():
    rng = np.random.default_rng(3)
    values = rng.standard_normal((37, 20))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[:, 3] = np.nan
    values[:36, 4] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(values, axis=0)
    np.testing.assert_allclose(pp.column_nanmedian(values), expected, equal_nan=True)
