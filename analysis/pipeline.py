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
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import __version__, bundle, io, options, privacy, validate
from .validate import InputError

# The analysis stages (associate, enrich, modules, pp, survival) load scipy.stats, anndata
# and more, over a second; they are imported once the inputs are read and matched, so that
# bad input is reported without that wait.
if TYPE_CHECKING:
    import anndata as ad

    from .associate import Associations

logger = logging.getLogger("radmap")

BUNDLE_NAME = "bundle.h5ad"
TABLES_DIR = "tables"
PACKAGES = (
    "anndata",
    "gseapy",
    "lifelines",
    "numpy",
    "pandas",
    "scanpy",
    "scipy",
    "statsmodels",
)


LIST_OPTIONS = ("imaging", "covariates", "adjust_for", "gene_sets", "mutation_columns")
"""Options that hold a list (one text is taken as a list of one)."""


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
    min_overlap: int = 10
    feature_types: dict[str, str] = field(default_factory=dict)
    mutation_columns: list[str] | None = None
    survival_time: str | None = None
    survival_event: str | None = None
    derive_survival: bool = False
    covariates: list[str] = field(default_factory=list)
    keep_identifiers: bool = False
    pseudonymise_key: Path | None = None
    # preprocessing and modules
    n_top_genes: int = 5000
    clip_mad: float = 10.0
    module_method: str = "wgcna"
    power: int | None = None
    network: str = "signed"
    min_module_size: int = 30
    deep_split: int = 2
    merge_cut_height: float = 0.25
    hub_count: int = 10
    leiden_resolution: float = 1.0
    n_neighbors: int = 15
    # associations
    continuous_test: str = "spearman"
    binary_test: str = "welch"
    categorical_test: str = "kruskal"
    adjust_for: list[str] = field(default_factory=list)
    min_n: int = 10
    # enrichment and survival
    gene_sets: list[str] = field(default_factory=lambda: ["hallmark", "go_bp"])
    min_set_size: int = 5
    max_set_size: int = 500
    seed: int = 0

    PATH_FIELDS = ("expression", "aim_dir", "clinical", "out", "pseudonymise_key")

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
            if isinstance(value, dict) and key != "feature_types":
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
            if key in self.PATH_FIELDS or key in LIST_OPTIONS:
                options.check_raw_text(key, value, many=key in LIST_OPTIONS, origin=origin)
            if key in self.PATH_FIELDS:
                value = _resolve(value, base)
            elif key == "imaging":
                value = [_resolve(v, base) for v in _as_list(value)]
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
    """Read the expression, imaging (tables and AIM folder) and clinical inputs."""
    if config.expression is None:
        raise InputError("no expression file given (--expression or `expression` in the config)")
    if not config.imaging and config.aim_dir is None:
        raise InputError("no imaging input given (--imaging FILE and/or --aim-dir DIR)")
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
    imaging_parts = [record(io.read_imaging(path, types=types), path) for path in config.imaging]
    if config.aim_dir is not None:
        imaging_parts.append(record(io.read_aim(config.aim_dir, types=types), config.aim_dir))
    imaging = imaging_parts[0] if len(imaging_parts) == 1 else io.combine_imaging(imaging_parts)
    options.check_columns(imaging.frame.columns, imaging.source)
    if len(imaging_parts) > 1:
        warnings.extend(imaging.warnings)
    if types:
        validate.check_types(types, imaging.frame.columns)
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
            ),
            config.clinical,
        )
        options.check_columns(clinical.frame.columns, clinical.source)
    return Inputs(expression, imaging, clinical, hashes, warnings)


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


def build_bundle(config: Config, *, progress: Progress = _log_progress) -> ad.AnnData:
    """Run every analysis stage and return the bundle (not yet saved).

    With ``config.pseudonymise_key``, warnings are held back until the pseudonyms are known
    and printed scrubbed (see :mod:`analysis.privacy`).
    """
    options.check_config(config)
    with privacy.held_warnings(logger, enabled=config.pseudonymise_key is not None) as release:
        return _build_bundle(config, progress=progress, release_warnings=release)


def _build_bundle(config: Config, *, progress: Progress, release_warnings: Callable) -> ad.AnnData:
    started = datetime.now(UTC)
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

    from . import enrich, modules, pp, survival
    from .associate import associate, tidy

    with _stage("preprocessing expression", progress):
        adata, pp_report, pp_warnings = pp.preprocess(
            expression.loc[patients],
            scale=config.scale,
            n_top_genes=config.n_top_genes,
            clip_mad=config.clip_mad,
        )
        warnings.extend(pp_warnings)
        features = _feature_table(inputs.imaging.info["features"], imaging.loc[patients])
        adata.obsm[bundle.IMAGING_KEY] = imaging.loc[patients, list(features.index)]
        if clinical is not None:
            adata.obs = clinical.reindex(patients)
        progress(f"  {adata.n_obs} patients x {adata.n_vars} genes x {len(features)} features")

    with _stage("finding co-expressed modules", progress):
        module_result = modules.find_modules(
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
        )
        warnings.extend(module_result.get("warnings", []))
        eigengenes = adata.obsm[bundle.EIGENGENES_KEY]
        progress(f"  {eigengenes.shape[1]} modules")

    mutations = (inputs.clinical.info.get("mutations", []) if inputs.clinical else []) or []
    covariates = _covariates(adata.obs, config.adjust_for)
    test_options = {
        "continuous": config.continuous_test,
        "binary": config.binary_test,
        "categorical": config.categorical_test,
        "covariates": covariates,
        "min_n": config.min_n,
    }
    imaging_frame = adata.obsm[bundle.IMAGING_KEY]
    types = features["type"].to_dict()

    with _stage("module x feature associations", progress):
        module_assoc = associate(eigengenes, imaging_frame, types, **test_options)
        map_table = tidy(module_assoc, variable_name="module", q_scope="all")
        warnings.extend(dict.fromkeys(module_assoc.notes))
        features = _with_test_columns(features, module_assoc)

    with _stage("gene x feature associations", progress):
        gene_values = pd.DataFrame(
            np.asarray(adata.X, dtype=np.float64), index=adata.obs_names, columns=adata.var_names
        )
        gene_assoc = associate(gene_values, imaging_frame, types, **test_options)
        _store_gene_level(adata, gene_assoc)
        del gene_values

    with _stage("mutations x imaging and modules", progress):
        mutation_imaging, mutation_modules = _mutation_tables(
            adata.obs, mutations, imaging_frame, types, eigengenes, config.min_n
        )

    with _stage("pathway enrichment of modules", progress):
        gene_sets = enrich.load_gene_sets(config.gene_sets)
        enrichment = enrich.module_enrichment(
            adata.var["module"].astype(str),
            background=list(adata.var_names),
            gene_sets=gene_sets,
            min_size=config.min_set_size,
            max_size=config.max_set_size,
        )
        module_table = _module_table(module_result["modules"], enrichment)

    with _stage("survival", progress):
        if bundle.SURVIVAL_TIME in adata.obs and bundle.SURVIVAL_EVENT in adata.obs:
            survival_table, survival_warnings = survival.survival_table(
                adata.obs,
                eigengenes=eigengenes,
                imaging=imaging_frame,
                features=features,
                mutations=mutations,
                covariates=config.adjust_for,
            )
            warnings.extend(survival_warnings)
        else:
            survival_table = pd.DataFrame(columns=list(survival.SURVIVAL_COLUMNS))
            warnings.append("no survival columns: survival analysis skipped")

    adata.uns[bundle.UNS_KEY] = {
        "format_version": bundle.FORMAT_VERSION,
        "name": config.name or Path(str(config.expression)).stem,
        "params": {
            "dataset": config.name or Path(str(config.expression)).stem,
            "config": json.dumps(config.to_dict(), sort_keys=True),
            "preprocess": _jsonable(pp_report),
            "modules": _jsonable(module_result["params"] | {"power": module_result["power"]}),
            "mutations": list(mutations),
        },
        "provenance": _provenance(config, inputs.hashes, started),
        "features": _clean_table(features),
        "modules": _clean_table(module_table),
        "soft_threshold": _clean_table(module_result["soft_threshold"]),
        "associations": _clean_table(map_table),
        "mutation_imaging": _clean_table(mutation_imaging),
        "mutation_modules": _clean_table(mutation_modules),
        "enrichment": _clean_table(enrichment),
        "survival": _clean_table(survival_table),
        "matching": _clean_table(report.table),
        "gene_features": list(gene_assoc.p.columns),
        "gene_n": [int(v) for v in gene_assoc.n.reindex(gene_assoc.p.columns).fillna(0)],
        "warnings": scrub.messages(warnings),
    }
    if pseudonyms:
        adata.uns[bundle.UNS_KEY]["provenance"]["pseudonymised"] = (
            "patient IDs are HMAC-SHA256 pseudonyms; the key is not stored"
        )
    return adata


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


def _with_test_columns(features: pd.DataFrame, assoc: Associations) -> pd.DataFrame:
    out = features.copy()
    out["test"] = assoc.test.reindex(out.index).fillna("").astype(str)
    out["contrast"] = assoc.contrast.reindex(out.index).fillna("").astype(str)
    return out


def _covariates(obs: pd.DataFrame, names: list[str]) -> pd.DataFrame | None:
    if not names:
        return None
    missing = [n for n in names if n not in obs.columns]
    if missing:
        raise InputError(
            f"clinical: covariate column {missing[0]!r} not found; available: "
            + ", ".join(map(str, obs.columns[:20]))
        )
    return obs[names]


def _store_gene_level(adata: ad.AnnData, assoc: Associations) -> None:
    q = assoc.q("per_feature")
    for key, frame in (
        (bundle.GENE_EFFECT, assoc.effect),
        (bundle.GENE_STATISTIC, assoc.statistic),
        (bundle.GENE_P, assoc.p),
        (bundle.GENE_Q, q),
    ):
        adata.varm[key] = frame.reindex(index=adata.var_names).to_numpy(dtype=np.float32)


def _mutation_tables(
    obs: pd.DataFrame,
    mutations: list[str],
    imaging: pd.DataFrame,
    types: Mapping[str, str],
    eigengenes: pd.DataFrame,
    min_n: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from .associate import associate, associate_categorical, bh, tidy

    columns = ["mutation", "feature", "test", "statistic", "effect", "p", "q", "n"]
    if not mutations:
        return pd.DataFrame(columns=columns), pd.DataFrame(
            columns=["mutation", "module", *columns[2:]]
        )
    status = obs[mutations]
    binary = dict.fromkeys(mutations, "binary")
    numeric = [f for f, t in types.items() if t in ("continuous", "ordinal")]
    categorical = [f for f, t in types.items() if t in ("binary", "categorical")]
    parts = []
    if numeric:
        numeric_values = imaging[numeric].apply(_as_numeric)
        assoc = associate(numeric_values, status, binary, min_n=min_n)
        table = tidy(assoc, variable_name="imaging_feature", q_scope="all")
        parts.append(table.rename(columns={"feature": "mutation", "imaging_feature": "feature"}))
    if categorical:
        table = associate_categorical(status, imaging[categorical])
        parts.append(table.rename(columns={"left": "mutation", "right": "feature"}))
    mutation_imaging = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    )
    if not mutation_imaging.empty:
        mutation_imaging["q"] = bh(mutation_imaging["p"].to_numpy(dtype=float))
    mutation_imaging = mutation_imaging.reindex(columns=columns)
    module_assoc = associate(eigengenes, status, binary, min_n=min_n)
    mutation_modules = tidy(module_assoc, variable_name="module", q_scope="all").rename(
        columns={"feature": "mutation"}
    )
    return mutation_imaging, mutation_modules[["mutation", "module", *columns[2:]]]


def _as_numeric(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.astype(float)
        return codes.where(codes >= 0)
    return pd.to_numeric(column, errors="coerce")


def _module_table(modules_table: pd.DataFrame, enrichment: pd.DataFrame) -> pd.DataFrame:
    table = modules_table.copy()
    top = {}
    if not enrichment.empty:
        best = enrichment.sort_values("p").groupby("module", observed=True).head(1)
        top = dict(zip(best["module"], best["term"]))
    table["top_pathway"] = [top.get(m, "") for m in table.index]
    return table


def _clean_table(table: pd.DataFrame) -> pd.DataFrame:
    """Make a table h5ad-safe: plain str/float/int/bool columns, str index."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
            out[column] = values.astype(object).where(values.notna(), "").astype(str)
    out.index = out.index.astype(str)
    out.columns = out.columns.astype(str)
    return out


def _jsonable(value: object) -> object:
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _provenance(config: Config, hashes: dict, started: datetime) -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "radmap_version": __version__,
        "format_version": bundle.FORMAT_VERSION,
        "inputs": json.dumps(hashes, sort_keys=True),
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


def gene_top_hits(adata: ad.AnnData, *, per_feature: int = 50) -> pd.DataFrame:
    """The strongest genes (smallest p) of every imaging feature, as one tidy table."""
    uns = adata.uns[bundle.UNS_KEY]
    features = np.asarray(uns["gene_features"], dtype=object)
    p = np.asarray(adata.varm[bundle.GENE_P], dtype=np.float64)
    keep = min(per_feature, p.shape[0])
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=0, kind="stable")[:keep]
    columns = np.broadcast_to(np.arange(p.shape[1]), order.shape)
    rows, cols = order.ravel(order="F"), columns.ravel(order="F")
    table = pd.DataFrame(
        {
            "feature": features[cols],
            "gene": adata.var_names.to_numpy()[rows],
            "module": adata.var["module"].astype(str).to_numpy()[rows],
            "statistic": np.asarray(adata.varm[bundle.GENE_STATISTIC])[rows, cols],
            "effect": np.asarray(adata.varm[bundle.GENE_EFFECT])[rows, cols],
            "p": p[rows, cols],
            "q": np.asarray(adata.varm[bundle.GENE_Q])[rows, cols],
            "n": np.asarray(uns["gene_n"], dtype=int)[cols],
        }
    )
    return table[table["p"].notna()].reset_index(drop=True)


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
    io.atomic_write_csv(folder / "gene_top_hits.csv", gene_top_hits(adata), index=False)
    io.atomic_write_text(folder / "warnings.txt", "\n".join(uns["warnings"]) + "\n")


def write_outputs(adata: ad.AnnData, out: Path) -> Path:
    """Save the bundle and the tidy CSV tables next to it, so that they always match.

    The tables are written to a hidden staging folder, the bundle is saved atomically, and
    only then does the staging folder replace ``tables/``: a failed or interrupted write
    leaves the previous bundle and tables as they were. Writers to one folder take turns
    (a lock on the folder), and each first removes what a killed writer left behind.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create the output folder ({err.strerror})") from None
    with _writer_lock(out):
        _remove_leftovers(out)
        return _write_bundle_and_tables(adata, out)


@contextlib.contextmanager
def _writer_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder: one writer at a time."""
    descriptor = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _remove_leftovers(out: Path) -> None:
    """Delete what a killed writer left (call with the writer lock held: nobody else writes)."""
    for leftover in [*out.glob(f".{TABLES_DIR}-*"), *out.glob(f".{BUNDLE_NAME}.*")]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        logger.info("removed %s, left by an interrupted run", leftover.name)


def _write_bundle_and_tables(adata: ad.AnnData, out: Path) -> Path:
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{TABLES_DIR}-", dir=out))
    except OSError as err:
        raise InputError(f"cannot write to {out}: {err.strerror}") from None
    try:
        _write_tables(adata, staging)
        path = io.save_bundle(adata, out / BUNDLE_NAME)
        tables = out / TABLES_DIR
        if tables.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{TABLES_DIR}-old-", dir=out))
            tables.rename(retired / TABLES_DIR)
            staging.rename(tables)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(tables)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


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
