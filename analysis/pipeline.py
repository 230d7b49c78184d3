"""From a configuration to a saved radiogenomic map bundle, with provenance.

:func:`run` is the whole ``radmap analyze``: read every input, match samples, preprocess
expression, find co-expressed modules, associate modules and genes with every imaging
feature, relate mutations to imaging and modules, annotate modules by enrichment, test
survival, and save one AnnData bundle (see :mod:`analysis.bundle`) plus tidy CSV tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import importlib
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import __version__, bundle, get, io, options, privacy, validate
from .parallel import alongside, resolve_scheduler
from .validate import InputError

# The analysis stages (associate, enrich, modules, pp, survival) load scipy.stats, anndata
# and more, over a second; they are imported once the inputs are read and matched, so that
# bad input is reported without that wait.
if TYPE_CHECKING:
    import anndata as ad


logger = logging.getLogger("radmap")

BUNDLE_NAME = "bundle.h5ad"
TABLES_DIR = "tables"
PACKAGES = (
    "anndata",
    "gseapy",
    "numpy",
    "pandas",
    "scanpy",
    "scipy",
    "statsmodels",
)


LIST_OPTIONS = ("imaging", "covariates", "adjust_for", "gene_sets", "acquisition_covariates")
"""Options that hold a list of texts (one text is taken as a list of one)."""


VIEWER_PLACEHOLDER = "{patient}"


def check_viewer_url(value: object, *, origin: str = "options") -> str:
    """A viewer URL template: ``http(s)://…`` with one ``{patient}`` (where the ID goes)."""
    text = str(value).strip() if isinstance(value, str) else None
    if not text:
        if text == "":
            return ""
        raise InputError(f"{origin}: viewer_url must be a text, got {value!r}")
    rest = text.replace(VIEWER_PLACEHOLDER, "", 1)
    if (
        not text.lower().startswith(("http://", "https://"))
        or VIEWER_PLACEHOLDER not in text
        or any(c in rest for c in "{}")
        or any(c.isspace() for c in text)
    ):
        raise InputError(
            f"{origin}: viewer_url must be an http(s) address with one {VIEWER_PLACEHOLDER} "
            f"where the patient ID goes, e.g. "
            f'"https://viewer.example.org/series?patient={VIEWER_PLACEHOLDER}"; got {text[:80]!r}'
        )
    return text


@dataclass
class Config:
    """Every option of ``radmap analyze``; each is also a key of the TOML config.

    Paths are resolved relative to the config file when they come from one.
    """

    expression: Path | None = None
    imaging: list[Path] = field(default_factory=list)
    aim_dir: Path | None = None
    clinical: Path | None = None
    out: Path | None = None
    name: str = ""
    # inputs
    orientation: str = "auto"
    scale: str = "auto"
    max_missing: float = 0.2
    id_pattern: str | None = None
    sheet: str | None = None
    id_column: dict[str, str] = field(default_factory=dict)
    min_overlap: int = 10
    feature_types: dict[str, str] = field(default_factory=dict)
    feature_levels: dict[str, list[str]] = field(default_factory=dict)
    mutation_columns: list[str] | dict[str, str] | None = None
    marker_values: dict[str, str] = field(default_factory=dict)
    survival_time: str | None = None
    survival_event: str | None = None
    derive_survival: bool | None = None
    covariates: list[str] = field(default_factory=list)
    keep_identifiers: bool = False
    pseudonymise_key: Path | None = None
    viewer_url: str = ""
    # preprocessing and modules
    n_top_genes: int | str = 5000
    max_block_size: int | None = None
    clip_mad: float = 10.0
    module_method: str = "wgcna"
    power: int | None = None
    network: str = "signed"
    min_module_size: int = 20
    deep_split: int = 2
    merge_cut_height: float = 0.25
    hub_count: int = 10
    leiden_resolution: float = 1.0
    n_neighbors: int = 15
    # associations
    continuous_test: str = "spearman"
    binary_test: str = "student"
    categorical_test: str = "kruskal"
    adjust_for: list[str] = field(default_factory=list)
    min_n: int = 10
    min_group: int = 5
    families: str = "source"
    # enrichment and survival
    gene_sets: list[str] = field(default_factory=lambda: ["hallmark", "go_bp"])
    min_set_size: int = 5
    max_set_size: int = 500
    seed: int = 0
    # trust checks
    permutations: int = 1000
    gene_permutations: int | str = "auto"
    size_feature: str | None = None
    acquisition_covariates: list[str] = field(default_factory=list)
    bootstraps: int | str = "auto"
    scheduler: str = "auto"
    workers: int = 2

    PATH_FIELDS = ("expression", "aim_dir", "clinical", "out", "pseudonymise_key")
    ID_INPUTS = ("imaging", "clinical")

    @classmethod
    def from_toml(cls, path: Path) -> Config:
        """Read a ``radmap.toml``; sections are optional and only group keys for people."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: config file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not a valid TOML file ({err})") from None
        flat: dict[str, object] = {}
        for key, value in raw.items():
            if isinstance(value, dict) and key not in MAPPING_FIELDS:
                flat.update(value)
            else:
                flat[key] = value
        return cls().updated(flat, base=path.parent, origin=str(path))

    def updated(
        self, values: Mapping[str, object], *, base: Path | None = None, origin: str = "options"
    ) -> Config:
        """A copy with ``values`` applied (unknown keys are an error naming the key)."""
        known = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, object] = {}
        for key, value in values.items():
            key = key.replace("-", "_")
            if key not in known:
                raise InputError(f"{origin}: unknown option {key!r}")
            if value is None:
                continue
            is_table = isinstance(value, Mapping) and key in MAPPING_FIELDS
            if (key in self.PATH_FIELDS or key in LIST_OPTIONS) and not is_table:
                options.check_raw_text(key, value, many=key in LIST_OPTIONS, origin=origin)
            if key in self.PATH_FIELDS:
                value = _resolve(value, base)
            elif key == "imaging":
                value = [_resolve(v, base) for v in _as_list(value)]
            elif key in ("id_column", "marker_values") or (
                key == "mutation_columns" and (isinstance(value, dict) or _has_pairs(value))
            ):
                bare = {
                    "id_column": lambda column: ("*", column),
                    "mutation_columns": lambda column: (column, io.marker_name(column)),
                }.get(key)
                value = io.option_pairs(value, key, bare=bare)
                if key == "id_column":
                    value = _id_columns(value)
            elif key == "viewer_url":
                value = check_viewer_url(value, origin=origin)
            elif key == "feature_levels":
                if not isinstance(value, Mapping) or not all(
                    isinstance(levels, list | tuple) for levels in value.values()
                ):
                    raise InputError(
                        f"{origin}: feature_levels must map each feature to its list of levels, "
                        'lowest first, e.g. feature_levels = { "Nodule Margins" = ["smooth", '
                        '"lobulated", "spiculated"] }'
                    )
                value = {str(k): [str(v) for v in levels] for k, levels in value.items()}
            elif key in LIST_OPTIONS:
                value = [str(v) for v in _as_list(value)]
                if key == "gene_sets":
                    from . import enrich

                    value = [
                        v if v in enrich.bundled_gene_set_paths() else str(_resolve(v, base))
                        for v in value
                    ]
            changes[key] = value
        updated = dataclasses.replace(self, **changes)
        options.check_config(updated, origin=origin)
        return updated

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly parameters, as recorded in the bundle's provenance."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, list):
                value = [str(v) for v in value]
            out[f.name] = value
        return out


MAPPING_FIELDS = (
    "feature_types",
    "feature_levels",
    "id_column",
    "marker_values",
    "mutation_columns",
)
"""Config keys whose value is a TOML table (not a section to flatten)."""


def _has_pairs(value: object) -> bool:
    return any("=" in str(v) for v in _as_list(value))


def _id_columns(value: dict[str, str]) -> dict[str, str]:
    unknown = [k for k in value if k not in ("*", *Config.ID_INPUTS)]
    if unknown:
        raise InputError(
            f"--id-column {unknown[0]}=...: the input must be one of "
            f"{', '.join(Config.ID_INPUTS)} (or give the column alone for every table)"
        )
    return value


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _resolve(value: object, base: Path | None) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() or base is None else base / path


Progress = Callable[[str], None]


@contextmanager
def _stage(name: str, progress: Progress) -> Iterator[None]:
    start = time.perf_counter()
    progress(f"{name} ...")
    yield
    progress(f"{name} finished ({time.perf_counter() - start:.1f} s)")


def _log_progress(message: str) -> None:
    logger.info(message)


@dataclass
class Inputs:
    """Everything read from the user's files, before sample matching."""

    expression: io.ReadResult
    imaging: io.ReadResult
    clinical: io.ReadResult | None
    hashes: dict[str, dict[str, str]]
    warnings: list[str]


def read_inputs(config: Config) -> Inputs:
    """Read the expression, imaging (tables and AIM folder) and clinical inputs.

    ``config.sheet`` names the worksheet read from every Excel input.
    """
    token = io.tables.EXCEL_SHEET.set(config.sheet)
    try:
        return _read_inputs(config)
    finally:
        io.tables.EXCEL_SHEET.reset(token)


def _read_inputs(config: Config) -> Inputs:
    if config.expression is None:
        raise InputError("no expression file given (--expression or `expression` in the config)")
    if not config.imaging and config.aim_dir is None:
        raise InputError("no imaging input given (--imaging FILE and/or --aim-dir DIR)")
    validate.check_min_n(config.min_n)
    warnings: list[str] = []
    hashes: dict[str, dict[str, str]] = {}

    def record(result: io.ReadResult, path: Path) -> io.ReadResult:
        warnings.extend(result.warnings)
        hashes[result.source] = {"path": path.name, "sha256": _hash_input(path)}
        return result

    expression = record(
        io.read_expression(
            config.expression, orientation=config.orientation, max_missing=config.max_missing
        ),
        config.expression,
    )
    types = config.feature_types or None
    sample_ids = set(expression.frame.index)
    imaging_parts = [
        record(
            io.read_imaging(
                path,
                types=types,
                levels=config.feature_levels or None,
                id_column=_id_column(config, "imaging"),
                match_ids=sample_ids,
            ),
            path,
        )
        for path in config.imaging
    ]
    if config.aim_dir is not None:
        imaging_parts.append(
            record(
                io.read_aim(config.aim_dir, types=types, levels=config.feature_levels or None),
                config.aim_dir,
            )
        )
    imaging = imaging_parts[0] if len(imaging_parts) == 1 else io.combine_imaging(imaging_parts)
    options.check_columns(imaging.frame.columns, imaging.source)
    if len(imaging_parts) > 1:
        warnings.extend(imaging.warnings)
    if types:
        validate.check_types(types, imaging.frame.columns)
    if config.feature_levels:
        known = set(imaging.frame.columns) | set(imaging.info["features"]["label"])
        unknown = [name for name in config.feature_levels if name not in known]
        if unknown:
            raise InputError(
                f"feature_levels given for unknown features {unknown}; the imaging features "
                "include " + ", ".join(repr(c) for c in list(imaging.frame.columns)[:5])
            )
    clinical = None
    if config.clinical is not None:
        clinical = record(
            io.read_clinical(
                config.clinical,
                mutation_columns=config.mutation_columns,
                survival_time=config.survival_time,
                survival_event=config.survival_event,
                derive_survival=config.derive_survival,
                covariates=config.covariates or None,
                keep_identifiers=config.keep_identifiers,
                marker_values=config.marker_values or None,
                id_column=_id_column(config, "clinical"),
                match_ids=sample_ids | set(imaging.frame.index),
            ),
            config.clinical,
        )
        options.check_columns(clinical.frame.columns, clinical.source)
    return Inputs(expression, imaging, clinical, hashes, warnings)


def _id_column(config: Config, source: str) -> str | None:
    return config.id_column.get(source, config.id_column.get("*"))


def _hash_input(path: Path) -> str:
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(path.rglob("*")):
            if child.is_file():
                digest.update(child.relative_to(path).as_posix().encode())
                digest.update(io.file_sha256(child).encode())
        return digest.hexdigest()
    return io.file_sha256(path)


def _normalised(frame: pd.DataFrame, pattern: str | None, source: str) -> pd.DataFrame:
    ids = [validate.normalise_id(str(i), pattern=pattern) for i in frame.index]
    duplicated = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(duplicated):
        raise InputError(
            f"{source}: patient ID {duplicated[0]!r} appears twice after ID normalisation "
            "(case, spaces, id_pattern); make the IDs unique"
        )
    out = frame.copy()
    out.index = pd.Index(ids, name=None)
    return out


def read_cohort(config: Config, *, progress: Progress = _log_progress) -> ad.AnnData:
    """Read and match a cohort's inputs into an AnnData ready for :func:`radmap.pp.preprocess`.

    ``X`` holds the expression as read (patients with expression and imaging), ``obsm["imaging"]``
    the imaging table, ``obs`` the clinical columns, and ``uns["radmap"]`` the feature table,
    the matching report, the input hashes and the readers' warnings. With
    ``config.pseudonymise_key`` every patient ID is replaced, in warnings too.
    """
    options.check_config(config)
    with privacy.held_warnings(logger, enabled=config.pseudonymise_key is not None) as release:
        adata, _ = _read_cohort(config, progress=progress, release_warnings=release)
    return adata


def _read_cohort(
    config: Config, *, progress: Progress, release_warnings: Callable
) -> tuple[ad.AnnData, privacy.IdScrubber]:
    with _stage("reading inputs", progress):
        inputs = read_inputs(config)
    warnings = list(inputs.warnings)

    with _stage("matching samples", progress):
        expression = _normalised(inputs.expression.frame, config.id_pattern, "expression")
        imaging = _normalised(inputs.imaging.frame, config.id_pattern, "imaging")
        clinical = (
            _normalised(inputs.clinical.frame, config.id_pattern, inputs.clinical.source)
            if inputs.clinical is not None
            else None
        )
        report = validate.match_samples(
            {
                f"expression ({inputs.expression.source})": list(expression.index),
                f"imaging ({inputs.imaging.source})": list(imaging.index),
            },
            optional=(
                {f"clinical ({inputs.clinical.source})": list(clinical.index)}
                if clinical is not None
                else None
            ),
            min_overlap=config.min_overlap,
        )
        warnings.extend(report.warnings)
        for message in report.warnings:
            logger.warning(message)
        patients = list(report.matched)
        progress(f"  {len(patients)} patients with expression and imaging")
        size_warnings, empty_reason = validate.cohort_size_notes(len(patients), config.min_n)
        warnings.extend(size_warnings)
        for message in size_warnings:
            logger.warning(message)
        pseudonyms: dict[str, str] = {}
        scrub = privacy.IdScrubber({})
        if config.pseudonymise_key is not None:
            pseudonyms, scrub = _pseudonyms(config, inputs)
            expression, imaging = (f.rename(index=pseudonyms) for f in (expression, imaging))
            if clinical is not None:
                clinical = clinical.rename(index=pseudonyms)
            patients = [pseudonyms[p] for p in patients]
            report.table["unmatched"] = [
                "|".join(pseudonyms.get(i, i) for i in str(cell).split("|") if i)
                for cell in report.table["unmatched"]
            ]
            report.table = scrub.frame(report.table)
            release_warnings(scrub)
            progress("  patient IDs replaced by keyed pseudonyms (the key is not stored)")

    # Every patient with expression enters the AnnData (modules, module x survival and
    # mutation x module need expression only); imaging is missing for those without it.
    # Patients with imaging or clinical data but no expression are kept aside for the
    # analyses that do not need expression (mutation x imaging, imaging x survival).
    # anndata and the stages (over a second of imports) load on the background thread
    # while the inputs are read: imported here, not before the reading.
    import anndata as ad

    from .tl import clean_table, radmap_uns, record

    sequenced = list(expression.index)
    expression = expression.loc[sequenced]
    adata = ad.AnnData(
        X=expression.to_numpy(dtype=np.float64),
        obs=(
            clinical.reindex(sequenced)
            if clinical is not None
            else pd.DataFrame(index=pd.Index(sequenced, name=None))
        ),
        var=pd.DataFrame(index=pd.Index(expression.columns.astype(str), name=None)),
    )
    features = _feature_table(inputs.imaging.info["features"], imaging.reindex(sequenced))
    adata.obsm[bundle.IMAGING_KEY] = imaging.reindex(sequenced)[list(features.index)]
    others = imaging.index.union(clinical.index if clinical is not None else pd.Index([]))
    others = others.difference(pd.Index(sequenced), sort=True)
    no_expression_imaging = imaging.reindex(others)[list(features.index)]
    uns = radmap_uns(adata)
    uns["name"] = config.name or Path(str(config.expression)).stem
    features["n_all"] = (
        adata.obsm[bundle.IMAGING_KEY].notna().sum() + no_expression_imaging.notna().sum()
    ).astype(int)
    uns["features"] = clean_table(features)
    uns["matching"] = clean_table(report.table)
    uns[bundle.NO_EXPRESSION_IMAGING] = no_expression_imaging
    uns[bundle.NO_EXPRESSION_CLINICAL] = (
        clinical.reindex(others) if clinical is not None else pd.DataFrame(index=others)
    )
    multi_valued = inputs.imaging.info.get("multi_valued")
    if isinstance(multi_valued, pd.DataFrame) and multi_valued.shape[1]:
        multi_valued = _normalised(multi_valued, config.id_pattern, "imaging")
        if pseudonyms:
            multi_valued = multi_valued.rename(index=pseudonyms)
        uns[bundle.MULTI_VALUED] = clean_table(multi_valued)
    uns["params"]["mutations"] = list(
        (inputs.clinical.info.get("mutations", []) if inputs.clinical else []) or []
    )
    uns["provenance"] = {"inputs": json.dumps(inputs.hashes, sort_keys=True)}
    if pseudonyms:
        uns["provenance"]["pseudonymised"] = (
            "patient IDs are HMAC-SHA256 pseudonyms; the key is not stored"
        )
    uns["params"]["empty_reason"] = empty_reason
    if config.viewer_url and pseudonyms:
        warnings.append(
            "viewer_url was not stored: the bundle's patient IDs are pseudonyms, which an "
            "image viewer does not know"
        )
    elif config.viewer_url:
        uns["viewer_url"] = config.viewer_url
    uns["_dropped_when_read"] = dict(inputs.expression.info.get("dropped_genes", {}))
    record(adata, "read", {}, scrub.messages(warnings))
    return adata, scrub


def build_bundle(config: Config, *, progress: Progress = _log_progress) -> ad.AnnData:
    """Run every analysis stage and return the bundle (not yet saved).

    The stages are the notebook API's: :func:`read_cohort`, :func:`radmap.pp.preprocess`,
    then :mod:`radmap.tl`'s ``modules``, ``associate``, ``mutations``, ``enrich`` and
    ``survival``.
    """
    options.check_config(config)
    _check_trust_options(config)
    with privacy.held_warnings(logger, enabled=config.pseudonymise_key is not None) as release:
        return _build_bundle(config, progress=progress, release_warnings=release)


STAGE_MODULES = (
    "modules",
    "associate",
    "analyses",
    "enrich",
    "survival",
    "null",
    "projection",
    "trust",
    "methods",
)
"""The stages' modules (with scipy.stats, anndata, fastcluster, ... about two seconds of
imports), loaded by :func:`_import_stages_in_background` while the inputs are read."""
STAGE_LIBRARIES = ("statsmodels.stats.power",)
"""Libraries the stages import where they use them (the power of each map), loaded after
:data:`STAGE_MODULES`."""


def _import_stages_in_background() -> None:
    """Import :data:`STAGE_MODULES` and :data:`STAGE_LIBRARIES` on a second thread.

    Reading the inputs spends most of its time in pyarrow and numpy, which release the GIL,
    so on a second core the imports cost no wall time. The stages still import what they
    use themselves: bad input is reported as soon as it is found, whether or not this
    thread has finished, and nothing depends on it having run.
    """

    def load() -> None:
        for name in (*(f"{__package__}.{name}" for name in STAGE_MODULES), *STAGE_LIBRARIES):
            try:
                importlib.import_module(name)
            except Exception:  # the stage's own import will raise it where it is needed
                return

    # Not a daemon: an interpreter that exits (e.g. after reporting bad input) while a
    # daemon thread is importing C extensions (anndata's dask and zarr) can crash at exit
    # (a segmentation fault instead of exit status 2); the error is printed first, the
    # process then waits for the imports to finish.
    threading.Thread(target=load, name="radmap-imports", daemon=False).start()


GENE_STAGE = "gene x feature associations"
GENE_NULL_STAGE = "gene-map null"


def _build_bundle(config: Config, *, progress: Progress, release_warnings: Callable) -> ad.AnnData:
    started = datetime.now(UTC)
    _import_stages_in_background()
    adata, scrub = _read_cohort(config, progress=progress, release_warnings=release_warnings)

    from . import pp, tl

    with _stage("preprocessing expression", progress):
        read_genes = list(adata.var_names)
        pp.preprocess(
            adata, scale=config.scale, n_top_genes=config.n_top_genes, clip_mad=config.clip_mad
        )
        _record_filtered_genes(adata, read_genes)
        n_features = adata.obsm[bundle.IMAGING_KEY].shape[1]
        progress(f"  {adata.n_obs} patients x {adata.n_vars} genes x {n_features} features")

    tests = {
        "continuous_test": config.continuous_test,
        "binary_test": config.binary_test,
        "categorical_test": config.categorical_test,
        "adjust_for": config.adjust_for,
        "min_n": config.min_n,
        "min_group": config.min_group,
        "families": config.families,
    }
    # The gene x feature map and its permutation null need neither the modules nor the
    # module map: they run on the second core meanwhile. Their results are stored where
    # they were when run after them (the map after the module map, the null in the trust
    # checks), so the bundle, its warnings and the progress lines keep their order.
    compute_gene_map, gene_params = tl.gene_map_of(adata, **tests)
    side = [compute_gene_map]
    gene_permutations = gene_permutation_count(config.gene_permutations, adata)
    if gene_permutations > 0:
        from .null import gene_null_of

        side.append(
            gene_null_of(
                adata,
                n_permutations=gene_permutations,
                seed=config.seed,
                scheduler=resolve_scheduler(config.scheduler, heavy=False),
                n_workers=config.workers,
                params=gene_params,
            )
        )
    progress(f"{GENE_STAGE} ... (alongside the modules)")
    if len(side) > 1:
        progress(f"{GENE_NULL_STAGE} ({gene_permutations} permutations) ... (after it)")
    with alongside(*side) as (gene_map, *gene_null):
        with _stage("finding co-expressed modules", progress):
            tl.modules(
                adata,
                method=config.module_method,
                power=config.power,
                network=config.network,
                min_module_size=config.min_module_size,
                deep_split=config.deep_split,
                merge_cut_height=config.merge_cut_height,
                hub_count=config.hub_count,
                n_neighbors=config.n_neighbors,
                resolution=config.leiden_resolution,
                seed=config.seed,
                max_block_size=config.max_block_size,
            )
            detection = tl.radmap_uns(adata)["params"]["modules"].get("detection")
            progress(
                f"  {adata.obsm[bundle.EIGENGENES_KEY].shape[1]} modules"
                + (f" ({detection})" if detection else "")
            )

        with _stage("module x feature associations", progress):
            tl.associate(adata, genes=False, **tests)

        tl.store_gene_map(adata, gene_map.result(), gene_params)
        progress(f"{GENE_STAGE} finished ({gene_map.seconds:.1f} s)")
    gene_null = gene_null[0] if gene_null else None
    if gene_null is not None and gene_null.done:
        progress(f"{GENE_NULL_STAGE} finished ({gene_null.seconds:.1f} s)")

    with _stage("mutations x imaging and modules", progress):
        tl.mutations(
            adata,
            min_n=config.min_n,
            min_group=config.min_group,
            families=config.families,
            seed=config.seed,
        )

    with _stage("pathway enrichment of modules", progress):
        tl.enrich(
            adata,
            gene_sets=config.gene_sets,
            min_set_size=config.min_set_size,
            max_set_size=config.max_set_size,
        )

    with _stage("survival", progress):
        tl.survival(adata, covariates=config.adjust_for, min_group=config.min_group)

    uns = adata.uns[bundle.UNS_KEY]
    uns["params"]["dataset"] = uns["name"]
    uns["params"]["config"] = json.dumps(config.to_dict(), sort_keys=True)
    _trust_checks(adata, config, progress, gene_null=gene_null and gene_null.result)
    _bootstrap_stability(adata, config, progress)
    uns["warnings"] = scrub.messages(uns["warnings"])
    uns["provenance"] = _provenance(config, uns["provenance"], started)
    _scrub_records(uns, scrub)
    return adata


def _record_filtered_genes(adata: ad.AnnData, read_genes: list[str]) -> None:
    """``uns["radmap"]["filtered_genes"]``: every gene of the input that is not in the
    bundle, with the reason (too many missing values when read, no values or constant across
    the patients in preprocessing), so a gene search can say why a gene is absent."""
    uns = adata.uns[bundle.UNS_KEY]
    reasons = dict(uns.pop("_dropped_when_read", {}) or {})
    kept = set(adata.var_names)
    for gene in read_genes:
        if gene not in kept:
            reasons.setdefault(gene, "no values, or constant across the patients")
    uns["filtered_genes"] = pd.DataFrame(
        {"gene": list(reasons), "reason": list(reasons.values())}, dtype=object
    ).astype(str)


def _scrub_records(uns: dict, scrub: privacy.IdScrubber) -> None:
    """Pseudonymise the IDs in file names and paths the bundle records (name, config,
    input files, command line): a file named after a patient carries their ID."""
    if not scrub:
        return
    uns["name"] = scrub(str(uns["name"]))
    for key in ("dataset", "config"):
        if key in uns["params"]:
            uns["params"][key] = scrub(str(uns["params"][key]))
    for key in ("inputs", "command"):
        if key in uns["provenance"]:
            uns["provenance"][key] = scrub(str(uns["provenance"][key]))


def _check_trust_options(config: Config) -> None:
    from .parallel import check_scheduler

    for name in ("permutations", "gene_permutations", "bootstraps"):
        if getattr(config, name) == AUTO:
            continue
        if int(getattr(config, name)) < 0:
            raise InputError(f"{name} must be 0 (off) or more, got {getattr(config, name)}")
    if int(config.workers) < 1:
        raise InputError(f"workers must be at least 1, got {config.workers}")
    check_scheduler(config.scheduler)


AUTO = "auto"
AUTO_BOOTSTRAPS = 100
"""Resamples of ``bootstraps = "auto"`` (the default) on a network it can afford."""
AUTO_BOOTSTRAP_MAX_GENES = 5000
"""Largest network (genes) that ``"auto"`` resamples: the default network (the 5,000 most
variable genes). Each resample re-detects the modules, whose topological overlap costs the
cube of the network's genes: 100 resamples of a 5,000-gene network of 500 patients took
3.7 minutes on 2 cores; a whole transcriptome would take hours."""
AUTO_BOOTSTRAPS_ENV = "RADMAP_AUTO_BOOTSTRAPS"
"""Environment variable overriding :data:`AUTO_BOOTSTRAPS` (the test suite sets it to 0)."""


AUTO_GENE_PERMUTATIONS = (20, 100)
"""Fewest and most permutations of the gene-map null under ``"auto"``."""
AUTO_GENE_CELLS = 100_000_000
"""Gene x feature tests that ``"auto"`` spends on the gene-map null (permutations x map cells):
100 permutations of a 1,000-gene map, 25 of a 20,000 genes x 200 features one."""


def gene_permutation_count(permutations: int | str, adata: ad.AnnData) -> int:
    """Permutations of the gene-map null for the ``gene_permutations`` option: ``"auto"``
    spends about :data:`AUTO_GENE_CELLS` tests (between 20 and 100 permutations)."""
    if permutations != AUTO:
        return int(permutations)
    cells = max(1, adata.n_vars * adata.obsm[bundle.IMAGING_KEY].shape[1])
    low, high = AUTO_GENE_PERMUTATIONS
    return int(np.clip(AUTO_GENE_CELLS // cells, low, high))


def bootstrap_count(bootstraps: int | str, adata: ad.AnnData) -> tuple[int, str]:
    """Resamples to run for the ``bootstraps`` option and, for ``"auto"``, why (a line for
    the progress output)."""
    if bootstraps != AUTO:
        return int(bootstraps), ""
    modules = adata.uns[bundle.UNS_KEY].get("params", {}).get("modules", {}) or {}
    n_genes = int(modules.get("n_network_genes", adata.n_vars))
    if adata.obsm[bundle.EIGENGENES_KEY].shape[1] == 0:
        return 0, "off (no modules)"
    if n_genes > AUTO_BOOTSTRAP_MAX_GENES:
        return 0, (
            f"off by default for a network of {n_genes:,} genes (more than "
            f"{AUTO_BOOTSTRAP_MAX_GENES:,}: each resample re-detects the modules); "
            "--bootstraps 100 runs it"
        )
    count = int(os.environ.get(AUTO_BOOTSTRAPS_ENV, AUTO_BOOTSTRAPS))
    if count <= 0:
        return 0, f"off ({AUTO_BOOTSTRAPS_ENV}={count})"
    return count, f"{count} resamples of the {n_genes:,}-gene network (--bootstraps 0 turns it off)"


def _trust_checks(
    adata: ad.AnnData, config: Config, progress: Progress, *, gene_null: Callable | None = None
) -> None:
    """Permutation nulls, size check and leave-one-out influence of the module map:
    :func:`radmap.tl.trust` (``gene_null``: the gene-map null computed meanwhile)."""
    from . import tl

    with _stage("trust checks (permutation null, tumour size, one patient)", progress):
        tl.trust(
            adata,
            n_permutations=config.permutations,
            gene_permutations=gene_permutation_count(config.gene_permutations, adata),
            size_feature=config.size_feature,
            acquisition=config.acquisition_covariates,
            seed=config.seed,
            scheduler=config.scheduler,
            n_workers=config.workers,
            gene_null=gene_null,
        )
        for key in ("null", "gene_null"):
            if key in adata.uns[bundle.UNS_KEY]:
                progress(f"  {adata.uns[bundle.UNS_KEY][key]['badge']}")


def _bootstrap_stability(adata: ad.AnnData, config: Config, progress: Progress) -> None:
    """Bootstrap stability of the modules when asked: :func:`radmap.tl.stability`."""
    from . import tl

    bootstraps, reason = bootstrap_count(config.bootstraps, adata)
    if reason:
        progress(f"bootstrap stability: {reason}")
    if bootstraps > 0:
        with _stage(f"bootstrap stability ({bootstraps} resamples)", progress):
            tl.stability(
                adata,
                n_bootstraps=bootstraps,
                seed=config.seed,
                scheduler=config.scheduler,
                n_workers=config.workers,
            )


pseudonymise = privacy.pseudonymise


def _pseudonyms(config: Config, inputs: Inputs) -> tuple[dict[str, str], privacy.IdScrubber]:
    """Pseudonyms of every patient ID the readers met (dropped ones too) and their scrubber."""
    key = privacy.read_key(config.pseudonymise_key)
    ids, aliases = privacy.id_aliases(
        (inputs.expression, inputs.imaging, inputs.clinical),
        lambda raw: validate.normalise_id(raw, pattern=config.id_pattern),
    )
    pseudonyms = pseudonymise(sorted(ids), key=key)
    return pseudonyms, privacy.IdScrubber(pseudonyms, aliases)


def _feature_table(features: pd.DataFrame, imaging: pd.DataFrame) -> pd.DataFrame:
    table = features.reindex(imaging.columns).copy()
    table["n"] = imaging.notna().sum().astype(int)
    return table


def _provenance(config: Config, recorded: Mapping, started: datetime) -> dict:
    """Provenance of a run: ``recorded`` (input hashes, pseudonymisation) plus versions."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        **recorded,
        "radmap_version": __version__,
        "format_version": bundle.FORMAT_VERSION,
        "packages": versions,
        "python": platform.python_version(),
        "seed": int(config.seed),
        "created": started.isoformat(timespec="seconds"),
        "command": " ".join(
            Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv)
        ),
    }


TABLES = (
    "associations",
    "mutation_imaging",
    "mutation_modules",
    "enrichment",
    "survival",
    "matching",
    "modules",
    "features",
)


def check_output_folder(out: Path) -> None:
    """Fail before any analysis when ``out`` cannot become the output folder.

    Nothing is created: the folder is made only when the results are written.
    """
    out = Path(out)
    existing = next((p for p in (out, *out.parents) if p.exists()), Path.cwd())
    if existing == out and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; give a folder for the results")
    if existing != out and not existing.is_dir():
        raise InputError(f"cannot create {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write to {existing}: permission denied; choose another --out")


def _write_tables(adata: ad.AnnData, folder: Path) -> None:
    uns = adata.uns[bundle.UNS_KEY]
    for name in TABLES:
        frame = uns[name]
        io.atomic_write_csv(folder / f"{name}.csv", frame, index=name in ("modules", "features"))
    io.atomic_write_csv(folder / "gene_top_hits.csv", get.gene_hits(adata), index=False)
    io.atomic_write_text(folder / "warnings.txt", "\n".join(uns["warnings"]) + "\n")
    from .methods import methods_text

    io.atomic_write_text(folder / "methods.txt", methods_text(adata))


def write_outputs(adata: ad.AnnData, out: Path) -> Path:
    """Save the bundle and the tidy CSV tables next to it, so that they always match.

    Both go into a new hidden results folder (``OUT/.results-<time>-<random>/``) that
    becomes current with one atomic rename of the link ``OUT/.current``; ``OUT/bundle.h5ad``
    and ``OUT/tables`` are links through it. So the pair is replaced as one unit: a failed or
    interrupted write leaves the previous bundle and tables as they were, and no moment
    shows a new bundle with old or missing tables. Writers to one folder take turns (a lock
    on the folder), and each removes what a killed writer and older runs left behind.
    """
    out = Path(out)
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create the output folder ({err.strerror})") from None
    try:
        with _writer_lock(out):
            _remove_leftovers(out)
            return _write_bundle_and_tables(adata, out)
    except BaseException:
        _remove_empty_folders(created)
        raise


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove the folders a failed write created (innermost first), if they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _folder_mode() -> int:
    """Permission bits of a new folder under the process umask (``mkdtemp`` makes 0700)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o777 & ~umask


@contextlib.contextmanager
def _writer_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder: one writer at a time."""
    descriptor = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


RESULTS_PREFIX = ".results-"
"""Versioned results folders: each run writes ``OUT/.results-<time>-<random>/``."""
CURRENT = ".current"
"""The symbolic link to the current results folder, switched by one atomic rename."""


def _current_results(out: Path) -> Path | None:
    """The results folder ``OUT/.current`` points at (``None`` when there is none)."""
    link = out / CURRENT
    if not link.is_symlink():
        return None
    target = out / os.readlink(link)
    return target if target.is_dir() else None


def _remove_leftovers(out: Path) -> None:
    """Delete what a killed writer left (call with the writer lock held: nobody else writes):
    results folders that are not current, half-made links, staging of older versions."""
    current = _current_results(out)
    leftovers = [
        *out.glob(f".{TABLES_DIR}-*"),
        *out.glob(f".{BUNDLE_NAME}.*"),
        *out.glob(f"{CURRENT}.*"),
        *(p for p in out.glob(f"{RESULTS_PREFIX}*") if p != current),
    ]
    for leftover in leftovers:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        logger.info("removed %s, left by an interrupted or earlier run", leftover.name)


def _link(out: Path, name: str, target: str) -> None:
    """Make ``OUT/name`` a relative symbolic link to ``target`` in one atomic rename."""
    staging = out / f"{CURRENT}.{uuid.uuid4().hex}"
    os.symlink(target, staging)
    try:
        os.replace(staging, out / name)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _publish(out: Path, name: str) -> None:
    """Make ``OUT/name`` the link into ``.current``; an older real file or folder goes."""
    path = out / name
    target = f"{CURRENT}/{name}"
    if path.is_symlink() and os.readlink(path) == target:
        return
    if path.is_dir() and not path.is_symlink():
        retired = Path(tempfile.mkdtemp(prefix=f".{TABLES_DIR}-old-", dir=out))
        path.rename(retired / name)
        _link(out, name, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        _link(out, name, target)


def _write_bundle_and_tables(adata: ad.AnnData, out: Path) -> Path:
    """Write a new results folder, then switch ``OUT/.current`` to it with one rename.

    ``OUT/bundle.h5ad`` and ``OUT/tables`` are links through ``.current``, so a reader (or a
    kill at any moment) sees either the old bundle with the old tables or the new bundle
    with the new tables, never a mix. Results of older runs are removed after the switch.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    try:
        version = Path(tempfile.mkdtemp(prefix=f"{RESULTS_PREFIX}{stamp}-", dir=out))
    except OSError as err:
        raise InputError(f"cannot write to {out}: {err.strerror}") from None
    switched = False
    try:
        os.chmod(version, _folder_mode())
        tables = version / TABLES_DIR
        tables.mkdir()
        # Both only read adata; h5py's writing and the fsyncs overlap the CSV formatting.
        with alongside(lambda: _write_tables(adata, tables)) as (tables_written,):
            io.save_bundle(adata, version / BUNDLE_NAME)
            tables_written.result()
        io.files.fsync_directory(version)
        io.files.raise_if_stop_requested()
        _link(out, CURRENT, version.name)
        switched = True
        for name in (TABLES_DIR, BUNDLE_NAME):
            _publish(out, name)
        io.files.fsync_directory(out)
    except BaseException:
        if not switched:
            shutil.rmtree(version, ignore_errors=True)
        raise
    _remove_leftovers(out)
    return out / BUNDLE_NAME


def run(config: Config, *, progress: Progress = _log_progress) -> Path:
    """Build the bundle for ``config`` and write it to ``config.out``; return the bundle path."""
    if config.out is None:
        raise InputError("no output folder given (--out DIR or `out` in the config)")
    check_output_folder(config.out)
    total = time.perf_counter()
    adata = build_bundle(config, progress=progress)
    with _stage("writing bundle", progress):
        path = write_outputs(adata, config.out)
    progress(f"done in {time.perf_counter() - total:.1f} s: {path}")
    return path
