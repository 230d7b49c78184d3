"""The two entry points of a notebook session: read a cohort, or run the whole analysis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anndata as ad

from .pipeline import Config, Progress, read_cohort
from .pipeline import run as run_pipeline

__all__ = ["read", "run"]


def _quiet(message: str) -> None:
    """Progress sink for notebook calls (the log still records every stage)."""


def read(
    expression: str | Path,
    imaging: str | Path | Sequence[str | Path] = (),
    *,
    aim_dir: str | Path | None = None,
    clinical: str | Path | None = None,
    progress: Progress = _quiet,
    **options,
) -> ad.AnnData:
    """Read a cohort's files into one AnnData, patients matched across sources.

    Parameters
    ----------
    expression
        Expression table (CSV/TSV[.gz], XLSX, Parquet or ``.h5ad``).
    imaging
        Imaging feature table(s) (PyRadiomics output, semantic spreadsheets).
    aim_dir
        Folder of AIM v4 XML annotations.
    clinical
        Clinical table (mutations, survival, covariates).
    options
        Any other option of ``radmap analyze`` (:class:`radmap.Config` field names), e.g.
        ``derive_survival=True``, ``feature_types={...}``, ``id_pattern=...``.

    Returns
    -------
    Patients x genes with the expression as read in ``X`` (run :func:`radmap.pp.preprocess`
    next), the imaging table in ``obsm["imaging"]``, clinical columns in ``obs`` and the
    feature table, matching report and warnings in ``uns["radmap"]``.
    """
    paths = [imaging] if isinstance(imaging, str | Path) else list(imaging)
    config = Config().updated(
        {"expression": expression, "imaging": paths, "aim_dir": aim_dir, "clinical": clinical}
        | options
    )
    return read_cohort(config, progress=progress)


def run(
    config: Config | str | Path | None = None,
    *,
    progress: Progress | None = None,
    **options,
) -> Path:
    """Run the whole analysis (what ``radmap analyze`` does) and write ``OUT/bundle.h5ad``.

    Parameters
    ----------
    config
        A :class:`radmap.Config`, or the path of a ``radmap.toml``; ``None`` starts from the
        defaults.
    options
        Options that override the config (``expression=...``, ``out=...``, ...).

    Returns
    -------
    The path of the bundle written.
    """
    if config is None:
        config = Config()
    elif not isinstance(config, Config):
        config = Config.from_toml(Path(config))
    if options:
        config = config.updated(options)
    kwargs = {} if progress is None else {"progress": progress}
    return run_pipeline(config, **kwargs)
