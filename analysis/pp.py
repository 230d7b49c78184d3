"""Expression preprocessing: scale detection, log transform, imputation, clipping, HVG.

:func:`preprocess` turns a samples x genes expression table into the bundle's AnnData:
``X`` on a log scale (float32), the values as read in ``layers["input"]`` when anything
changed, and ``var`` columns ``highly_variable``, ``mean`` and ``variance``.

Steps, in order:

1. Genes with no value at all are dropped.
2. The scale is declared or inferred from the values as read (:func:`infer_scale`).
3. Other missing values are imputed with the gene's median (on the scale as read).
4. The values are brought to log scale: ``counts`` -> :func:`scanpy.pp.normalize_total`
   (to the median library size) then :func:`scanpy.pp.log1p` (natural log); ``fpkm`` /
   ``tpm`` -> ``log2(x + 1)``; ``log`` and ``zscore`` are kept as they are.
5. Outliers are winsorised per gene at ``median +- clip_mad * 1.4826 * MAD`` (when a gene's
   MAD is 0, the mean absolute deviation from the median times 1.2533 stands in for it, the
   Iglewicz-Hoaglin convention; a gene whose spread is 0 either way is left alone).
6. Genes with (near) zero variance are dropped.
7. The ``n_top_genes`` genes of highest variance are flagged ``highly_variable``.
"""

from __future__ import annotations

import logging
import warnings as warnings_module

import anndata
import numpy as np
import pandas as pd

from .bundle import INPUT_LAYER
from .validate import InputError

logger = logging.getLogger("radmap")

SCALES = ("auto", "counts", "fpkm", "tpm", "log", "zscore")
MAD_TO_SD = 1.4826
MEANAD_TO_SD = 1.2533
CONSTANT_VARIANCE = 1e-12
ZSCORE_TOLERANCE = 0.05


def preprocess_expression(
    expression: pd.DataFrame,
    *,
    scale: str = "auto",
    n_top_genes: int | str = 5000,
    clip_mad: float = 10.0,
) -> tuple[anndata.AnnData, dict, list[str]]:
    """Bring an expression table to log scale, clean it and flag highly variable genes.

    Parameters
    ----------
    expression
        Samples x genes values (index = sample IDs, columns = gene symbols), as returned
        by :func:`analysis.io.read_expression`. May contain NaN.
    scale
        ``"auto"`` (infer, see :func:`infer_scale`), ``"counts"``, ``"fpkm"``, ``"tpm"``,
        ``"log"`` or ``"zscore"``.
    n_top_genes
        Number of genes flagged ``highly_variable`` (largest variance on the log scale), or
        ``"all"``: every gene enters the module network (a whole transcriptome).
    clip_mad
        Winsorise values further than this many robust SDs (1.4826 * MAD) from the gene
        median. ``0`` or a negative value switches clipping off.

    Returns
    -------
    The AnnData (patients x genes, ``X`` float32 log scale), a report dict (``scale``,
    ``scale_was``, ``n_genes_in``, ``n_genes``, ``n_imputed``, ``n_clipped_values``,
    ``n_clipped_genes``, ``n_constant_dropped``, ``n_empty_dropped``, ``n_top_genes``)
    and the list of warnings for the user.
    """
    if scale not in SCALES:
        raise InputError(f"expression scale {scale!r} is not one of {', '.join(SCALES)}")
    if n_top_genes == "all":
        n_top_genes = expression.shape[1]
    if isinstance(n_top_genes, bool) or not isinstance(n_top_genes, int | np.integer):
        raise InputError(f"--n-top-genes must be a number of genes or 'all', got {n_top_genes!r}")
    if n_top_genes < 1:
        raise InputError(f"--n-top-genes must be at least 1, got {n_top_genes}")
    values = _validated_values(expression)
    warnings: list[str] = []
    samples = expression.index.astype(str)
    genes = expression.columns.astype(str)
    n_genes_in = len(genes)

    empty = np.isnan(values).all(axis=0)
    if empty.any():
        _warn(
            warnings,
            f"expression: {int(empty.sum())} genes have no value in any sample and were "
            f"dropped (e.g. {', '.join(genes[empty][:5])})",
        )
        values, genes = values[:, ~empty], genes[~empty]
    if values.shape[1] == 0:
        raise InputError("expression: no gene has any value; check the file's orientation")
    input_values = values.copy()
    chosen, scale_was = scale, "declared"
    if scale == "auto":
        chosen = infer_scale(values, n_mad=clip_mad if clip_mad > 0 else np.inf)
        scale_was = "inferred"
        logger.info("expression scale inferred as %s", chosen)

    missing = np.isnan(values)
    n_imputed = int(missing.sum())
    if n_imputed:
        medians = column_nanmedian(values)
        values[missing] = np.take(medians, np.nonzero(missing)[1])
        _warn(
            warnings,
            f"expression: {n_imputed} missing values ({n_imputed / values.size:.2%}) in "
            f"{int(missing.any(axis=0).sum())} genes imputed with the gene median",
        )

    values = _to_log_scale(values, chosen, samples, warnings)

    n_clipped_values, n_clipped_genes = 0, 0
    if clip_mad > 0:
        values, clipped = winsorize_mad(values, n_mad=clip_mad)
        n_clipped_values = int(clipped.sum())
        n_clipped_genes = int(clipped.any(axis=0).sum())
        if n_clipped_values:
            _warn(
                warnings,
                f"expression: {n_clipped_values} extreme values in {n_clipped_genes} genes "
                f"clipped to median +- {clip_mad:g} x 1.4826 x MAD",
            )

    variance = values.var(axis=0, ddof=1)
    constant = variance <= CONSTANT_VARIANCE * np.maximum(1.0, values.mean(axis=0) ** 2)
    if constant.all():
        raise InputError("expression: every gene is constant across samples; nothing to analyse")
    if constant.any():
        _warn(
            warnings,
            f"expression: {int(constant.sum())} constant genes dropped "
            f"(e.g. {', '.join(genes[constant][:5])})",
        )
    keep = ~constant
    values, input_values, genes, variance = (
        values[:, keep],
        input_values[:, keep],
        genes[keep],
        variance[keep],
    )

    highly_variable = top_variance_mask(variance, n_top_genes)
    if chosen == "zscore" and len(genes) > n_top_genes:
        _warn(
            warnings,
            "expression: the input is z-scored per gene, so ranking genes by variance to pick "
            f"the top {n_top_genes} mostly reflects clipping; consider giving unscaled values",
        )

    adata = anndata.AnnData(
        X=values.astype(np.float32),
        obs=pd.DataFrame(index=pd.Index(samples, name=None)),
        var=pd.DataFrame(
            {
                "highly_variable": highly_variable,
                "mean": values.mean(axis=0),
                "variance": variance,
            },
            index=pd.Index(genes, name=None),
        ),
    )
    changed = chosen in ("counts", "fpkm", "tpm") or n_clipped_values > 0 or n_imputed > 0
    if changed:
        adata.layers[INPUT_LAYER] = input_values.astype(np.float32)

    report = {
        "scale": chosen,
        "scale_was": scale_was,
        "n_genes_in": n_genes_in,
        "n_genes": int(adata.n_vars),
        "n_imputed": n_imputed,
        "n_clipped_values": n_clipped_values,
        "n_clipped_genes": n_clipped_genes,
        "n_constant_dropped": int(constant.sum()),
        "n_empty_dropped": int(empty.sum()),
        "n_top_genes": int(highly_variable.sum()),
    }
    return adata, report, warnings


def infer_scale(values: np.ndarray, *, n_mad: float = 10.0) -> str:
    """Guess the scale of a samples x genes matrix (missing values ignored).

    Non-negative integers with a maximum above 100 are ``"counts"``; other non-negative
    values with a maximum above 50 are ``"fpkm"`` (linear-scale FPKM/TPM/RPKM); a matrix
    in which every gene has mean ~0 and SD ~1 is ``"zscore"``; anything else is ``"log"``.
    The maxima are taken over values within ``n_mad`` robust SDs of their gene's median,
    so a few corrupt huge values in log-scale data do not make it look linear.
    """
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "log"
    non_negative = finite.min() >= 0
    maximum = finite.max()
    if non_negative and maximum > 50:
        low, high = _mad_bounds(values, n_mad)
        inliers = values[(values >= low) & (values <= high)]
        maximum = inliers.max() if inliers.size else maximum
    if non_negative and maximum > 100 and np.all(finite == np.round(finite)):
        return "counts"
    if non_negative and maximum > 50:
        return "fpkm"
    if values.shape[0] > 2 and _is_zscored(values):
        return "zscore"
    return "log"


def winsorize_mad(values: np.ndarray, *, n_mad: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Clip each column to ``median +- n_mad * 1.4826 * MAD``.

    When a column's MAD is 0 the robust SD is taken as 1.2533 x the mean absolute deviation
    from the median instead; a column with no spread at all is returned unchanged.

    Returns
    -------
    The clipped copy and a boolean mask of the values that were changed.
    """
    values = np.asarray(values, dtype=float)
    low, high = _mad_bounds(values, n_mad)
    clipped = (values < low) | (values > high)
    return np.clip(values, low, high), clipped


def _mad_bounds(values: np.ndarray, n_mad: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``median -+ n_mad * robust SD`` (missing values ignored)."""
    median = column_nanmedian(values)
    deviation = np.abs(values - median)
    robust_sd = MAD_TO_SD * column_nanmedian(deviation)
    no_mad = robust_sd == 0
    with warnings_module.catch_warnings():
        warnings_module.simplefilter("ignore", RuntimeWarning)
        robust_sd[no_mad] = MEANAD_TO_SD * np.nanmean(deviation[:, no_mad], axis=0)
    robust_sd[~(robust_sd > 0)] = np.inf
    return median - n_mad * robust_sd, median + n_mad * robust_sd


def column_nanmedian(values: np.ndarray) -> np.ndarray:
    """Median of each column ignoring NaN (NaN for an empty column).

    Same result as :func:`numpy.nanmedian` along axis 0, which is very slow (masked
    arrays) for fewer than 600 rows.
    """
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    if not missing.any():
        return np.median(values, axis=0)
    ordered = np.sort(values, axis=0)
    n = values.shape[0] - missing.sum(axis=0)
    columns = np.arange(values.shape[1])
    low = ordered[np.maximum((n - 1) // 2, 0), columns]
    high = ordered[np.maximum(n // 2, 0), columns]
    median = (low + high) / 2
    median[n == 0] = np.nan
    return median


def top_variance_mask(variance: np.ndarray, n_top: int) -> np.ndarray:
    """Boolean mask of the ``n_top`` largest variances (ties broken by position)."""
    variance = np.asarray(variance, dtype=float)
    mask = np.zeros(variance.shape, dtype=bool)
    order = np.argsort(-variance, kind="stable")
    mask[order[: min(n_top, len(variance))]] = True
    return mask


def _validated_values(expression: pd.DataFrame) -> np.ndarray:
    if not isinstance(expression, pd.DataFrame):
        raise InputError("expression must be a pandas DataFrame of samples x genes")
    if expression.shape[0] < 3 or expression.shape[1] < 1:
        raise InputError(
            f"expression: {expression.shape[0]} samples x {expression.shape[1]} genes; need at "
            "least 3 samples and 1 gene (check the file's orientation)"
        )
    for axis, labels in (("sample", expression.index), ("gene", expression.columns)):
        duplicated = labels[labels.duplicated()]
        if len(duplicated):
            raise InputError(
                f"expression: duplicated {axis} IDs {', '.join(map(str, duplicated[:5]))}; "
                "make them unique"
            )
    try:
        values = expression.to_numpy(dtype=float, na_value=np.nan, copy=True)
    except (TypeError, ValueError):
        bad = [c for c in expression.columns if not pd.api.types.is_numeric_dtype(expression[c])]
        raise InputError(
            f"expression: non-numeric values in gene column(s) {', '.join(map(str, bad[:5]))}"
        ) from None
    infinite = np.isinf(values)
    if infinite.any():
        sample, gene = np.argwhere(infinite)[0]
        raise InputError(
            f"expression: infinite value for sample {expression.index[sample]}, gene "
            f"{expression.columns[gene]}; fix or blank it"
        )
    return values


def _to_log_scale(
    values: np.ndarray, scale: str, samples: pd.Index, warnings: list[str]
) -> np.ndarray:
    if scale in ("counts", "fpkm", "tpm") and values.min() < 0:
        raise InputError(
            f"expression declared as {scale} has negative values; declare scale 'log' or 'zscore'"
        )
    if scale == "counts":
        import scanpy as sc

        if not np.all(values == np.round(values)):
            _warn(warnings, "expression declared as counts has non-integer values")
        empty = np.flatnonzero(values.sum(axis=1) == 0)
        if len(empty):
            raise InputError(
                f"expression: sample(s) {', '.join(samples[empty][:5])} have zero total counts; "
                "remove them"
            )
        counts = anndata.AnnData(X=values.copy())
        sc.pp.normalize_total(counts)
        sc.pp.log1p(counts)
        return np.asarray(counts.X, dtype=float)
    if scale in ("fpkm", "tpm"):
        return np.log2(values + 1.0)
    return values


def _is_zscored(values: np.ndarray) -> bool:
    observed = np.isfinite(values).sum(axis=0)
    if np.any(observed < 3):
        return False
    means = np.nanmean(values, axis=0)
    if np.any(np.abs(means) > ZSCORE_TOLERANCE):
        return False
    for ddof in (1, 0):
        if np.all(np.abs(np.nanstd(values, axis=0, ddof=ddof) - 1.0) <= ZSCORE_TOLERANCE):
            return True
    return False


def _warn(warnings: list[str], message: str) -> None:
    warnings.append(message)
    logger.warning(message)


def preprocess(
    adata: anndata.AnnData,
    *,
    scale: str = "auto",
    n_top_genes: int | str = 5000,
    clip_mad: float = 10.0,
    copy: bool = False,
) -> anndata.AnnData | None:
    """Preprocess the expression in ``adata.X`` (patients x genes, as read) in place.

    The steps of :func:`preprocess_expression`: genes without values and constant genes are
    removed from ``adata``, ``X`` becomes the log-scale float32 matrix, the values as read go
    to ``layers["input"]`` when anything changed, ``var`` gains ``highly_variable``, ``mean``
    and ``variance``; the report is stored in ``uns["radmap"]["params"]["preprocess"]`` and
    the warnings in ``uns["radmap"]["warnings"]``. ``obs``, ``obsm`` and ``uns`` are kept.

    Returns
    -------
    The preprocessed copy when ``copy`` is true, else ``None``.
    """
    from .tl import record

    if n_top_genes is None or n_top_genes == 0 or n_top_genes == "all":
        n_top_genes = adata.n_vars
    frame = pd.DataFrame(
        np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X, dtype=float),
        index=adata.obs_names,
        columns=adata.var_names,
    )
    result, report, warnings = preprocess_expression(
        frame, scale=scale, n_top_genes=n_top_genes, clip_mad=clip_mad
    )
    target = adata.copy() if copy else adata
    target._inplace_subset_var(np.asarray(result.var_names))
    target.X = result.X
    for column in result.var.columns:
        target.var[column] = result.var[column].to_numpy()
    target.layers.pop(INPUT_LAYER, None)
    if INPUT_LAYER in result.layers:
        target.layers[INPUT_LAYER] = result.layers[INPUT_LAYER]
    record(
        target,
        "preprocess",
        {**report, "requested": {"scale": scale, "n_top_genes": n_top_genes, "clip_mad": clip_mad}},
        warnings,
    )
    return target if copy else None
