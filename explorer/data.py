"""Read-only access to a radmap bundle with memoised queries for the explorer.

:class:`BundleData` loads a bundle once (through :func:`analysis.io.load_bundle`) and
answers every question the pages ask as a tidy pandas DataFrame (or a small dict). Results
are memoised inside the instance, keyed by (bundle id, query, parameters), where the bundle
id is the SHA-256 of the bundle file; nothing is kept at module level, so several server
workers share nothing. Memoised frames are handed out as copies: callers may modify them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ..analysis import bundle as B
from ..analysis.io import file_sha256, load_bundle, validate_bundle
from ..analysis.validate import InputError
from .state import Vocabulary
from .subset import Column, Subset, parse_subset, subset_columns

logger = logging.getLogger("radmap")

DEFAULT_GENE_SET_COLLECTIONS = ("hallmark", "go_bp")
MAX_FEATURE_ROWS = 60
"""Above this many features the map summarises radiomic families (or shows the top N)."""
MAX_FAMILY_ROWS = 100
"""Above this many summarised rows the map shows the top N features instead."""
CACHE_SIZE = 512
SUBSET_VIEWS = 6
"""Subset views kept per bundle (each holds its recomputed results)."""
GENE_COLUMNS = ("gene", "effect", "statistic", "p", "q", "module", "test")
ASSOCIATION_COLUMNS = ("module", "feature", *B.ASSOCIATION_COLUMNS)


def _freeze(value):
    if isinstance(value, Mapping):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, set | frozenset):
        return tuple(sorted(_freeze(item) for item in value))
    if isinstance(value, list | tuple | pd.Series | pd.Index | np.ndarray):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _copy(value):
    if isinstance(value, pd.DataFrame | pd.Series):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_copy(item) for item in value)
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(
            value, **{f.name: _copy(getattr(value, f.name)) for f in dataclasses.fields(value)}
        )
    return value


def memoised(method: Callable) -> Callable:
    """Memoise a :class:`BundleData` method in its instance (LRU, thread-safe).

    The key is ``(bundle_id, method name, arguments)``; lists and sets in the arguments are
    frozen so that ``["a", "b"]`` and ``("a", "b")`` share an entry.
    """
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: BundleData, *args, **kwargs):
        key = (self.bundle_id, name, _freeze(args), _freeze(kwargs))
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return _copy(self._cache[key])
        result = method(self, *args, **kwargs)
        with self._cache_lock:
            self._cache[key] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return _copy(result)

    return wrapper


@dataclass(frozen=True)
class SurvivalView:
    """Kaplan–Meier curves of one grouping of the patients and the test that compares them.

    ``test`` is ``logrank`` or ``cox_trend`` (ordinal features, as in the analysis); ``n``
    and ``events`` count the patients in the curves; ``q`` (and ``hr`` for the Cox trend
    test) come from the analysis' row when the view shows the analysis' own grouping.
    """

    curves: pd.DataFrame
    p: float
    test: str
    n: int
    events: int
    description: str
    q: float | None = None
    hr: float | None = None
    note: str = ""


@dataclass(frozen=True)
class MapView:
    """What the map heatmap shows: filtered associations and how rows are summarised."""

    assoc: pd.DataFrame
    features: pd.DataFrame
    families: bool
    mode: str
    n_features: int
    note: str


TRUST_COLUMNS = ("perm_p", "flags", "stability", "influence", "influential_patient")


def _table(uns: Mapping, key: str, columns: Sequence[str] = ()) -> pd.DataFrame:
    table = uns.get(key)
    if table is None:
        return pd.DataFrame(columns=list(columns))
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame(table)
    table = table.copy()
    for column in columns:
        if column not in table.columns:
            table[column] = np.nan
    return table


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [item.item() if hasattr(item, "item") else item for item in np.asarray(value).ravel()]


def memory_bundle_id(adata: ad.AnnData) -> str:
    """A content key for a bundle held in memory (patients, genes, features, results)."""
    digest = hashlib.sha256()
    uns = adata.uns.get(B.UNS_KEY, {})
    for part in (adata.obs_names, adata.var_names, adata.obsm.get(B.IMAGING_KEY, {}).keys()):
        digest.update("\x1f".join(map(str, part)).encode())
    for key in ("associations", "modules"):
        table = uns.get(key)
        if isinstance(table, pd.DataFrame):
            digest.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(adata.X[: min(adata.n_obs, 50)]).tobytes())
    return "memory-" + digest.hexdigest()


class BundleData:
    """Read-only view of a radmap bundle with memoised queries.

    Parameters
    ----------
    path
        The bundle (``.h5ad``) written by ``radmap analyze``.
    gene_sets
        Collection -> term -> genes for live enrichment; by default the collections shipped
        with radmap (:func:`analysis.enrich.load_gene_sets`), loaded on first use.
    cache_size
        Number of query results kept in memory (least recently used are dropped).
    """

    def __init__(
        self,
        path: str | Path | ad.AnnData,
        *,
        gene_sets: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        cache_size: int = CACHE_SIZE,
    ):
        if isinstance(path, ad.AnnData):
            validate_bundle(path, name="AnnData")
            self.path = None
            self.file_name = "bundle in memory"
            self.bundle_id = memory_bundle_id(path)
            self.adata = path
        else:
            self.path = Path(path)
            if not self.path.is_file():
                raise InputError(f"bundle {self.path} not found: run `radmap analyze` to build one")
            self.file_name = self.path.name
            self.bundle_id = file_sha256(self.path)
            self.adata = load_bundle(self.path)
        self._cache: OrderedDict = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_size = cache_size
        self._gene_sets = gene_sets
        self._gene_sets_lock = threading.Lock()
        self._subset_views: OrderedDict = OrderedDict()
        self._subset_lock = threading.Lock()
        self._all_patients: tuple[pd.DataFrame, pd.DataFrame] | None = None

        uns = self.adata.uns.get(B.UNS_KEY, {})
        self._uns = uns
        self.params: dict = dict(uns.get("params", {}) or {})
        self.provenance: dict = dict(uns.get("provenance", {}) or {})
        features = _table(uns, "features", ("label", "type", "source", "group", "levels", "test"))
        features.index = features.index.astype(str)
        features["label"] = features["label"].where(
            features["label"].notna() & (features["label"].astype(str) != ""),
            pd.Series(features.index, index=features.index),
        )
        self.features = features
        modules = _table(uns, "modules", ("size", "hub_genes", "variance_explained", "top_pathway"))
        modules.index = modules.index.astype(str)
        self.modules_info = modules
        eigengenes = self.adata.obsm.get(B.EIGENGENES_KEY)
        eigengenes = (
            pd.DataFrame(index=self.adata.obs_names)
            if eigengenes is None
            else pd.DataFrame(eigengenes, index=self.adata.obs_names)
        )
        eigengenes.columns = eigengenes.columns.astype(str)
        self.eigengenes = eigengenes
        self.module_names: list[str] = [m for m in modules.index if m != B.UNASSIGNED] or [
            m for m in eigengenes.columns if m != B.UNASSIGNED
        ]
        imaging = self.adata.obsm.get(B.IMAGING_KEY)
        self.imaging = (
            pd.DataFrame(index=self.adata.obs_names)
            if imaging is None
            else pd.DataFrame(imaging, index=self.adata.obs_names)
        )
        self.gene_features: list[str] = [str(f) for f in _as_list(uns.get("gene_features"))]
        self._gene_feature_column = {f: i for i, f in enumerate(self.gene_features)}
        self.gene_n: list[int] = [int(n) for n in _as_list(uns.get("gene_n"))]
        self.genes = pd.Index(self.adata.var_names.astype(str))
        self._gene_upper = {gene.upper(): gene for gene in self.genes}
        self._genes_upper = np.array([gene.upper() for gene in self.genes], dtype=object)
        self._gene_position = pd.Series(np.arange(len(self.genes)), index=self.genes)
        var = self.adata.var
        self.gene_module = (
            var["module"].astype(str)
            if "module" in var
            else pd.Series(B.UNASSIGNED, index=self.genes)
        )
        self.gene_module.index = self.genes
        self.mutations: list[str] = [
            str(column)
            for column in self.adata.obs.columns
            if self._is_mutation(self.adata.obs[column])
        ]
        self.warnings: list[str] = [str(w) for w in _as_list(uns.get("warnings"))]
        self.patient_set = frozenset(str(patient) for patient in self.adata.obs_names)
        viewer_url = uns.get("viewer_url")
        self.viewer_url: str | None = viewer_url if isinstance(viewer_url, str) else None

    # ------------------------------------------------------------------ basics
    def memo(self, name: str, params: Mapping, build: Callable[[], object]) -> object:
        """``build()`` memoised in this instance under ``(bundle id, name, params)``.

        Shares the LRU of the memoised queries. The stored value is returned as it is, not
        copied: store only values nobody modifies (a figure's plain spec that each caller
        turns into a new figure, for instance).
        """
        key = (self.bundle_id, f"memo:{name}", _freeze(params))
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        result = build()
        with self._cache_lock:
            self._cache[key] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    @staticmethod
    def _is_mutation(column: pd.Series) -> bool:
        values = set(column.dropna().astype(str).unique())
        return bool(values) and values <= {B.MUTANT, B.WILDTYPE}

    @property
    def format_version(self) -> str:
        return str(self._uns.get("format_version", ""))

    @property
    def dataset_name(self) -> str:
        for source in (self.params, self.provenance):
            for key in ("dataset", "name", "study"):
                value = source.get(key)
                if isinstance(value, str) and value:
                    return value
        return self.path.stem if self.path is not None else "radmap study"

    def summary(self) -> dict:
        """Dataset name, sizes, format version and bundle id."""
        return {
            "dataset": self.dataset_name,
            "n_patients": int(self.adata.n_obs),
            "n_genes": int(self.adata.n_vars),
            "n_features": len(self.features),
            "n_modules": len(self.module_names),
            "format_version": self.format_version,
            "bundle_id": self.bundle_id,
            "created": str(self.provenance.get("created", "")),
            "path": str(self.path or self.file_name),
        }

    def null_badge(self) -> str:
        """The empirical null of the map in one line ("" when the bundle has none)."""
        summary = self._uns.get("null")
        return str(summary.get("badge", "")) if isinstance(summary, Mapping) else ""

    def stability_runs(self) -> int | None:
        """Bootstrap resamples behind the links' ``stability`` column (None without it)."""
        summary = self._uns.get("stability")
        runs = summary.get("n_bootstraps") if isinstance(summary, Mapping) else None
        return int(runs) if runs else None

    def gene_null_badge(self) -> str:
        """The empirical null of the gene map in one line ("" when the bundle has none)."""
        summary = self._uns.get("gene_null")
        return str(summary.get("badge", "")) if isinstance(summary, Mapping) else ""

    def gene_null_line(self, feature: str) -> str:
        """Genes of one feature passing q within the feature, next to the count expected by
        chance in the gene-map null ("" without a gene null or for an untested feature)."""
        table = self._uns.get("gene_null_features")
        summary = self._uns.get("gene_null")
        if not isinstance(table, pd.DataFrame) or not isinstance(summary, Mapping):
            return ""
        rows = table[table["feature"].astype(str) == str(feature)]
        if rows.empty:
            return ""
        row = rows.iloc[0]
        return (
            f"Rank tests: {int(row['observed']):,} genes at q < {float(summary['alpha']):g} "
            f"for this feature; {float(row['expected']):.1f} expected by chance "
            f"({int(summary['n_permutations'])} permutations)."
        )

    def bundle_info(self) -> dict:
        """Summary plus parameters and provenance, for reports and exports."""
        return self.summary() | {"params": self.params, "provenance": self.provenance}

    def vocabulary(self) -> Vocabulary:
        """The names that a URL may refer to (see :func:`explorer.state.parse_url`); built
        once, as every callback that reads the URL asks for it."""
        return self.memo(
            "vocabulary",
            {},
            lambda: Vocabulary(
                features=frozenset(self.features.index),
                modules=frozenset(self.module_names),
                genes=self._gene_upper,
                mutations=frozenset(self.mutations),
                sources=frozenset(self.features["source"].dropna().astype(str)),
                groups=frozenset(self.features["group"].dropna().astype(str)),
                survival=frozenset(value for value, _ in self.survival_choices()),
                subset_columns=self.subset_columns(),
                patients=self.patient_set,
            ),
        )

    # ------------------------------------------------------------------ subsets
    def subset_columns(self) -> dict[str, Column]:
        """The clinical and imaging columns patients can be filtered on (by name)."""
        return self.memo(
            "subset-columns",
            {},
            lambda: subset_columns(
                self.adata.obs.drop(columns=list(self._hidden_columns()), errors="ignore"),
                self.imaging,
                self.features["label"].astype(str).to_dict(),
            ),
        )

    def _hidden_columns(self) -> tuple[str, ...]:
        return (B.SURVIVAL_EVENT,)

    def patient_columns(self) -> pd.DataFrame:
        """Every filterable column per patient (clinical shadowing imaging of the same name)."""
        imaging = self.imaging.drop(columns=list(self.adata.obs.columns), errors="ignore")
        return pd.concat([self.adata.obs, imaging], axis=1)

    def subset_view(self, text: str | None) -> BundleData:
        """This bundle restricted to the patients of a subset (URL form), results recomputed.

        The whole cohort (``""``) is this bundle itself. Subset views are kept (a few, least
        recently used dropped), so switching back to a subset is instant.

        Raises
        ------
        InputError
            The subset is not valid for this bundle, or has too few patients to test.
        """
        subset = self._valid_subset(text)
        if not subset:
            return self
        with self._subset_lock:
            if subset.key in self._subset_views:
                self._subset_views.move_to_end(subset.key)
                return self._subset_views[subset.key]
        view = SubsetData(self, subset)
        with self._subset_lock:
            self._subset_views[subset.key] = view
            while len(self._subset_views) > SUBSET_VIEWS:
                self._subset_views.popitem(last=False)
        return view

    def subset_size(self, text: str | None) -> tuple[str, int]:
        """Label and number of patients of a subset (URL form), without computing its
        results; raises :class:`InputError` where :meth:`subset_view` would."""
        subset = self._valid_subset(text)
        if not subset:
            return "whole cohort", int(self.adata.n_obs)
        with self._subset_lock:
            view = self._subset_views.get(subset.key)
        if view is not None:
            return view.label, view.n_patients
        mask = _testable_mask(self, subset)
        return subset.label(self.subset_columns()), int(mask.sum())

    def _valid_subset(self, text: str | None) -> Subset:
        """The subset ``text`` names; InputError with the first problem found in it."""
        subset, problems = parse_subset(text, self.subset_columns())
        if problems:
            raise InputError(problems[0])
        return subset

    def subset_label(self, text: str | None) -> str:
        """``"histology = adenocarcinoma"`` for a subset's URL form (``""``: whole cohort)."""
        subset, _ = parse_subset(text, self.subset_columns())
        return subset.label(self.subset_columns())

    def uns_table(self, key: str) -> pd.DataFrame | None:
        """A tidy table of ``uns["radmap"]`` (``None`` when the bundle has none)."""
        table = self.adata.uns.get(B.UNS_KEY, {}).get(key)
        return table if isinstance(table, pd.DataFrame) else None

    def canonical_gene(self, gene: str | None) -> str | None:
        """The bundle's spelling of ``gene`` (case-insensitive), or ``None``."""
        return self._gene_upper.get(str(gene).upper()) if gene else None

    def feature_label(self, feature: str) -> str:
        return (
            str(self.features.at[feature, "label"]) if feature in self.features.index else feature
        )

    @memoised
    def feature_options(
        self, *, sources: Sequence[str] = (), gene_level: bool = False
    ) -> list[dict]:
        """Dropdown options ``{"label", "value"}`` for the imaging features (with
        ``gene_level``, only those with gene-level results)."""
        table = self.features_table(sources=sources)
        return [
            {"label": f"{row.label} ({row.group})", "value": fid}
            for fid, row in zip(table.index, table.itertuples(), strict=True)
            if not gene_level or self.has_gene_level(fid)
        ]

    @memoised
    def features_table(
        self, *, sources: Sequence[str] = (), groups: Sequence[str] = ()
    ) -> pd.DataFrame:
        """The bundle's features table filtered by source and group (empty = all)."""
        table = self.features
        if sources:
            table = table[table["source"].isin(list(sources))]
        if groups:
            table = table[table["group"].isin(list(groups))]
        return table

    def groups_by_source(self) -> dict[str, list[str]]:
        """Feature groups per source, in table order."""
        table = self.features.dropna(subset=["source", "group"])
        return {
            str(source): list(dict.fromkeys(part["group"].astype(str)))
            for source, part in table.groupby("source", sort=False)
        }

    # ------------------------------------------------------------ associations
    @memoised
    def associations(
        self,
        *,
        sources: Sequence[str] = (),
        groups: Sequence[str] = (),
        modules: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Module x feature associations with feature label, source, group and type."""
        assoc = _table(self._uns, "associations", ASSOCIATION_COLUMNS)
        assoc["feature"] = assoc["feature"].astype(str)
        assoc["module"] = assoc["module"].astype(str)
        keep = self.features_table(sources=sources, groups=groups).index
        assoc = assoc[assoc["feature"].isin(keep)]
        if modules:
            assoc = assoc[assoc["module"].isin(list(modules))]
        info = self.features[["label", "source", "group", "type"]]
        return assoc.join(info, on="feature").reset_index(drop=True)

    @memoised
    def significant(
        self,
        *,
        q_threshold: float,
        min_effect: float = 0.0,
        sources: Sequence[str] = (),
        groups: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Associations with ``q < q_threshold`` and ``|effect| >= min_effect``, by q."""
        assoc = self.associations(sources=sources, groups=groups)
        keep = (assoc["q"] < q_threshold) & (assoc["effect"].abs() >= min_effect)
        return assoc[keep].sort_values(["q", "p"], kind="mergesort").reset_index(drop=True)

    def association(self, feature: str, module: str) -> dict | None:
        """Statistics of one module x feature association, or ``None``."""
        assoc = self.associations()
        row = assoc[(assoc["feature"] == feature) & (assoc["module"] == module)]
        if row.empty:
            return None
        record = row.iloc[0]
        return {key: _plain(record[key]) for key in B.ASSOCIATION_COLUMNS}

    def link_trust(self, feature: str, module: str) -> dict:
        """Trust checks of one link (``perm_p``, ``flags``, ``stability``, ``influence``,
        ``influential_patient``) as far as the bundle has them; ``{}`` otherwise."""
        table = self._uns.get("associations")
        if not isinstance(table, pd.DataFrame):
            return {}
        columns = [c for c in TRUST_COLUMNS if c in table.columns]
        if not columns:
            return {}
        row = table[
            (table["feature"].astype(str) == feature) & (table["module"].astype(str) == module)
        ]
        if row.empty:
            return {}
        return {column: _plain(row.iloc[0][column]) for column in columns}

    @memoised
    def map_view(
        self,
        *,
        sources: Sequence[str] = (),
        groups: Sequence[str] = (),
        rows: str = "auto",
        top: int = 40,
    ) -> MapView:
        """The associations the map shows and whether radiomic families are summarised.

        ``rows``: ``features`` (one row each), ``families`` (radiomic features summarised by
        group), ``top`` (the ``top`` features with the strongest link, by smallest q then
        largest ``|effect|``) or ``auto`` (features when at most
        :data:`MAX_FEATURE_ROWS`, else families when that gives at most
        :data:`MAX_FAMILY_ROWS` rows, else top).
        """
        assoc = self.associations(sources=sources, groups=groups)
        features = self.features_table(sources=sources, groups=groups)
        n_features = int(assoc["feature"].nunique())
        mode = rows
        if rows == "auto":
            if n_features <= MAX_FEATURE_ROWS:
                mode = "features"
            else:
                radiomic = features["source"] == "radiomic"
                n_rows = int((~radiomic).sum() + features.loc[radiomic, "group"].nunique())
                mode = "families" if n_rows <= MAX_FAMILY_ROWS else "top"
        note = ""
        if mode == "top" and n_features > top:
            strength = assoc.assign(_abs=assoc["effect"].abs()).sort_values(
                ["q", "_abs", "feature"], ascending=[True, False, True], kind="mergesort"
            )
            chosen = list(dict.fromkeys(strength["feature"]))[:top]
            assoc = assoc[assoc["feature"].isin(chosen)].reset_index(drop=True)
            note = (
                f"Showing the {top} of {n_features:,} features with the strongest links. "
                "Choose 'all features' or 'families' under Rows to see the others."
            )
        elif mode == "families":
            note = (
                f"{n_features:,} features: radiomic features are summarised per family "
                "(the strongest association of each family and module)."
            )
        return MapView(
            assoc=assoc,
            features=features,
            families=mode == "families",
            mode=mode,
            n_features=n_features,
            note=note,
        )

    # --------------------------------------------------------------- gene level
    def _gene_column(self, feature: str) -> int | None:
        return self._gene_feature_column.get(feature)

    def has_gene_level(self, feature: str) -> bool:
        return feature in self._gene_feature_column

    @memoised
    def strongest_link(self) -> dict[str, str | None]:
        """Feature, module and hub gene of the map's strongest link (smallest p).

        Pages open on it when the URL chooses nothing, so a first visit shows data, not an
        empty plot.
        """
        assoc = self.associations()
        assoc = assoc[assoc["feature"].map(self.has_gene_level) & assoc["p"].notna()]
        if assoc.empty:
            return {"feature": None, "module": None, "gene": None}
        best = assoc.loc[assoc["p"].idxmin()]
        hubs = self.hub_genes(str(best["module"]), n=1)
        return {
            "feature": str(best["feature"]),
            "module": str(best["module"]),
            "gene": hubs[0] if hubs else None,
        }

    def _check_signed(self, feature: str) -> None:
        """Refuse to rank genes on an unsigned effect (epsilon-squared of an unordered
        categorical feature): its order says nothing about direction."""
        from ..analysis.associate import SIGNED_MEASURES

        info = self.features.loc[feature] if feature in self.features.index else None
        measure = str(info.get("effect_measure", "")) if info is not None else ""
        kind = str(info.get("type", "")) if info is not None else ""
        if (measure and measure not in SIGNED_MEASURES) or (not measure and kind == "categorical"):
            raise InputError(
                f"pre-ranked enrichment needs a signed statistic, and {self.feature_label(feature)} "
                f"is an unordered categorical feature (its effect, {measure or 'epsilon-squared'}, "
                "has no direction); choose a continuous, ordinal or binary feature"
            )

    @memoised
    def gene_table(self, feature: str) -> pd.DataFrame:
        """Every gene's association with ``feature``: gene, effect, statistic, p, q, module
        and the feature's test (which names the effect measure)."""
        column = self._gene_column(feature)
        if column is None:
            return pd.DataFrame(columns=list(GENE_COLUMNS))
        varm = self.adata.varm
        table = pd.DataFrame(
            {
                "gene": self.genes.to_numpy(),
                "effect": np.asarray(varm[B.GENE_EFFECT][:, column], dtype=float),
                "statistic": np.asarray(varm[B.GENE_STATISTIC][:, column], dtype=float),
                "p": np.asarray(varm[B.GENE_P][:, column], dtype=float),
                "q": np.asarray(varm[B.GENE_Q][:, column], dtype=float),
                "module": self.gene_module.to_numpy(),
                "test": self.feature_test(feature),
            }
        )
        return table

    def feature_test(self, feature: str) -> str | None:
        """The test of ``feature``'s associations, as the features table records it (``""``
        for a feature it does not list)."""
        if "test" not in self.features or feature not in self.features.index:
            return ""
        return _plain(self.features.at[feature, "test"])

    @memoised
    def top_genes(self, feature: str, *, n: int = 200) -> pd.DataFrame:
        """The ``n`` genes with the smallest p for ``feature``."""
        table = self.gene_table(feature)
        if len(table) > n > 0:
            p = np.nan_to_num(table["p"].to_numpy(dtype=float), nan=np.inf)
            table = table[p <= np.partition(p, n - 1)[n - 1]]
        return table.sort_values(["p", "gene"], kind="mergesort").head(n).reset_index(drop=True)

    @memoised
    def gene_associations(self, gene: str) -> pd.DataFrame:
        """One gene against every imaging feature (gene-level arrays), sorted by p.

        Columns ``feature``, ``label``, ``source``, ``group``, ``type``, ``test``,
        ``effect``, ``statistic``, ``p``, ``q``, ``q_feature``, ``n``. Across features ``q``
        is the map-level q (``varm["radmap_q_map"]``, hierarchical over the whole gene map),
        the one that may be compared between features; ``q_feature`` is the q over genes
        within one feature. Bundles without the map-level q show the per-feature q.
        """
        columns = ["feature", "label", "source", "group", "type", "test"]
        columns += ["effect", "statistic", "p", "q", "q_feature", "n"]
        gene = self.canonical_gene(gene)
        if gene is None or not self.gene_features:
            return pd.DataFrame(columns=columns)
        row = int(self._gene_position[gene])
        varm = self.adata.varm
        table = pd.DataFrame(
            {
                "feature": self.gene_features,
                "effect": np.asarray(varm[B.GENE_EFFECT][row, :], dtype=float),
                "statistic": np.asarray(varm[B.GENE_STATISTIC][row, :], dtype=float),
                "p": np.asarray(varm[B.GENE_P][row, :], dtype=float),
                "q": np.asarray(
                    varm[B.GENE_Q_MAP if B.GENE_Q_MAP in varm else B.GENE_Q][row, :], dtype=float
                ),
                "q_feature": np.asarray(varm[B.GENE_Q][row, :], dtype=float),
                "n": self.gene_n
                if len(self.gene_n) == len(self.gene_features)
                else [np.nan] * len(self.gene_features),
            }
        )
        info = self.features[["label", "source", "group", "type", "test"]]
        table = table.join(info, on="feature")
        table["label"] = table["label"].fillna(table["feature"])
        return table.sort_values(
            ["p", "feature"], kind="mergesort", na_position="last"
        ).reset_index(drop=True)[columns]

    def gene_association(self, gene: str, feature: str) -> dict | None:
        """Statistics of one gene x feature test, or ``None``."""
        gene = self.canonical_gene(gene)
        column = self._gene_column(feature)
        if gene is None or column is None:
            return None
        row = int(self._gene_position[gene])
        varm = self.adata.varm
        n = self.gene_n[column] if column < len(self.gene_n) else None
        return {
            "test": self.feature_test(feature),
            "statistic": float(varm[B.GENE_STATISTIC][row, column]),
            "effect": float(varm[B.GENE_EFFECT][row, column]),
            "p": float(varm[B.GENE_P][row, column]),
            "q": float(varm[B.GENE_Q][row, column]),
            "n": n,
        }

    def gene_info(self, gene: str) -> dict | None:
        """Module, kME, hub flag and expression summary of a gene."""
        gene = self.canonical_gene(gene)
        if gene is None:
            return None
        var = self.adata.var.loc[gene]
        info = {"gene": gene, "module": str(self.gene_module[gene])}
        for column in ("kME", "is_hub", "in_network", "mean", "variance"):
            if column in var.index:
                info[column] = _plain(var[column])
        return info

    def gene_absence(self, text: str | None) -> str | None:
        """Why a symbol is not among the bundle's genes (None when it is, or nothing typed):
        filtered in preprocessing (with the reason recorded by the analysis) or not in the
        expression input at all."""
        query = (text or "").strip()
        if not query or self.canonical_gene(query) is not None:
            return None
        filtered = self.adata.uns.get(B.UNS_KEY, {}).get("filtered_genes")
        if isinstance(filtered, pd.DataFrame) and len(filtered):
            match = filtered[filtered["gene"].astype(str).str.upper() == query.upper()]
            if len(match):
                gene, reason = match.iloc[0]["gene"], match.iloc[0]["reason"]
                return f"{gene} was measured but removed before the analysis: {reason}"
        return f"{query.upper()} is not in the expression input (not measured)"

    def gene_search(self, text: str | None, *, limit: int = 30) -> list[str]:
        """Genes whose symbol starts with ``text`` (case-insensitive), then those containing it."""
        query = (text or "").strip().upper()
        if not query:
            return []
        return list(self._gene_search(query, limit))

    @memoised
    def _gene_search(self, query: str, limit: int) -> tuple[str, ...]:
        upper = self._genes_upper
        starts = np.fromiter((g.startswith(query) for g in upper), bool, len(upper))
        contains = np.fromiter((query in g for g in upper), bool, len(upper))
        prefix = sorted(self.genes[starts], key=lambda g: (len(g), g))
        inner = sorted(self.genes[contains & ~starts], key=lambda g: (len(g), g))
        return tuple((prefix + inner)[:limit])

    # ---------------------------------------------------------------- phenotype
    @memoised
    def phenotype(
        self,
        feature: str,
        *,
        module: str | None = None,
        gene: str | None = None,
        color: str | None = None,
    ) -> pd.DataFrame:
        """Per patient: the module eigengene (or gene expression) and the feature value.

        Columns ``patient``, ``value``, ``feature`` (categorical features keep their
        category order) and, with ``color``, ``color`` (mutation status, missing as
        ``"Unknown"``). Patients missing either value are dropped, and so are, for binary
        and categorical features, the levels the analysis left out (fewer than its
        ``min_group`` patients): the plot shows the patients and n of the map's test.
        """
        if feature not in self.imaging.columns:
            raise InputError(f"imaging feature {feature!r} is not in this bundle")
        if module is not None:
            if module not in self.eigengenes.columns:
                raise InputError(f"module {module!r} has no eigengene in this bundle")
            values = self.eigengenes[module].to_numpy(dtype=float)
        elif gene is not None:
            canonical = self.canonical_gene(gene)
            if canonical is None:
                raise InputError(f"gene {gene!r} is not in this bundle")
            values = self.expression(canonical)
        else:
            raise InputError("phenotype needs a module or a gene")
        table = pd.DataFrame(
            {
                "patient": self.adata.obs_names.astype(str),
                "value": values,
                "feature": self.imaging[feature].to_numpy(),
            }
        )
        if isinstance(self.imaging[feature].dtype, pd.CategoricalDtype):
            table["feature"] = pd.Categorical(
                self.imaging[feature].to_numpy(), dtype=self.imaging[feature].dtype
            )
        if color is not None and color in self.adata.obs.columns:
            status = self.adata.obs[color].astype(object).where(self.adata.obs[color].notna())
            table["color"] = status.fillna("Unknown").astype(str).to_numpy()
        table = table[table["value"].notna() & table["feature"].notna()]
        ftype = str(self.features.at[feature, "type"]) if feature in self.features.index else ""
        if ftype in ("binary", "categorical"):
            # As the analysis: levels with fewer than min_group of these patients left out.
            min_group = int((self.params.get("associate") or {}).get("min_group", 1) or 1)
            sizes = table["feature"].astype(object).value_counts()
            small = sizes.index[sizes < min_group]
            if len(small):
                table = table[~table["feature"].astype(object).isin(list(small))]
                if isinstance(table["feature"].dtype, pd.CategoricalDtype):
                    table["feature"] = table["feature"].cat.remove_categories(list(small))
        return table.reset_index(drop=True)

    def expression(self, gene: str) -> np.ndarray:
        """Expression of one gene across patients (float)."""
        return self.expressions([gene])[:, 0]

    def expressions(self, genes: Sequence[str]) -> np.ndarray:
        """Expression of genes across patients (patients x genes, float).

        Reads the columns of ``X`` directly: an AnnData view (``adata[:, gene]``) costs
        ~80 ms on a real bundle, mostly copying the clinical table.
        """
        columns = self._gene_position[list(genes)].to_numpy()
        block = self.adata.X[:, columns]
        block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
        return block.astype(float, copy=False).reshape(self.adata.n_obs, len(columns))

    def expression_label(self) -> str:
        """What the expression values are, from the preprocessing record of the bundle.

        ``"expression (z-score)"`` for z-scored input, ``"expression (log)"`` for log-scale
        values, plain ``"expression"`` when the bundle does not say.
        """
        params = self.adata.uns.get("radmap", {}).get("params", {})
        preprocess = params.get("preprocess", {}) if isinstance(params, Mapping) else {}
        scale = str(preprocess.get("scale", "")) if isinstance(preprocess, Mapping) else ""
        units = {"zscore": "z-score", "z-score": "z-score", "log": "log", "log2": "log2"}
        unit = units.get(scale.lower()) or ("log" if scale.lower().startswith("log") else "")
        return f"expression ({unit})" if unit else "expression"

    def phenotype_labels(
        self, feature: str, *, module: str | None = None, gene: str | None = None
    ) -> dict:
        """Labels and type for :func:`explorer.figures.phenotype.phenotype_plot`."""
        value_label = f"{module} eigengene" if module else f"{gene} {self.expression_label()}"
        ftype = str(self.features.at[feature, "type"]) if feature in self.features.index else ""
        return {
            "feature_type": ftype or "continuous",
            "value_label": value_label,
            "feature_label": self.feature_label(feature),
        }

    # ------------------------------------------------------------------ modules
    @memoised
    def module_members(self, module: str) -> pd.DataFrame:
        """Genes of a module, by decreasing kME: gene, kME, is_hub, in_network, mean, variance."""
        var = self.adata.var
        members = var[self.gene_module.to_numpy() == module]
        table = pd.DataFrame({"gene": members.index.astype(str)})
        for column in ("kME", "is_hub", "in_network", "mean", "variance"):
            if column in members:
                table[column] = members[column].to_numpy()
        if "kME" in table:
            table = table.sort_values(["kME", "gene"], ascending=[False, True], kind="mergesort")
        return table.reset_index(drop=True)

    def hub_genes(self, module: str, *, n: int = 10) -> list[str]:
        """Hub genes of a module, best first (from the modules table, else by kME)."""
        if module in self.modules_info.index:
            hubs = str(self.modules_info.at[module, "hub_genes"] or "")
            genes = [gene for gene in hubs.split("|") if gene and gene != "nan"]
            if genes:
                return genes[:n]
        return list(self.module_members(module)["gene"].head(n))

    @memoised
    def modules_table(self, *, q_threshold: float = 0.05) -> pd.DataFrame:
        """One row per module: size, hubs, top pathway and its strongest imaging link."""
        assoc = self.associations()
        rows = []
        for module in self.module_names:
            info = (
                self.modules_info.loc[module]
                if module in self.modules_info.index
                else pd.Series(dtype=object)
            )
            links = assoc[assoc["module"] == module].sort_values(
                ["q", "p"], kind="mergesort", na_position="last"
            )
            best = links.iloc[0] if len(links) else None
            size = info.get("size")
            rows.append(
                {
                    "module": module,
                    "size": int(size)
                    if size is not None and not pd.isna(size)
                    else int((self.gene_module == module).sum()),
                    "hub_genes": ", ".join(self.hub_genes(module, n=5)),
                    "top_pathway": _plain(info.get("top_pathway", "")) or "",
                    "variance_explained": _plain(info.get("variance_explained", np.nan)),
                    "n_links": int((links["q"] < q_threshold).sum()),
                    "strongest_feature": "" if best is None else str(best["label"]),
                    "strongest_feature_id": "" if best is None else str(best["feature"]),
                    "strongest_effect": np.nan if best is None else float(best["effect"]),
                    "strongest_q": np.nan if best is None else float(best["q"]),
                }
            )
        return pd.DataFrame(rows)

    @memoised
    def enrichment(self, module: str) -> pd.DataFrame:
        """Precomputed enrichment of a module, by q then p."""
        columns = ("module", "collection", "term", "overlap", "set_size", "p", "q", "odds_ratio")
        table = _table(self._uns, "enrichment", (*columns, "genes"))
        table = table[table["module"].astype(str) == module]
        return table.sort_values(["q", "p", "term"], kind="mergesort").reset_index(drop=True)

    @memoised
    def module_expression(
        self, module: str, *, order_feature: str | None = None, n_genes: int = 50
    ) -> tuple[pd.DataFrame, pd.Series]:
        """Z-scored expression (genes x patients) of a module's top genes by kME.

        Returns the matrix and the values that order the patients: ``order_feature`` when
        given (patients without it dropped), else the module eigengene.
        """
        genes = list(self.module_members(module)["gene"].head(n_genes))
        if not genes:
            return pd.DataFrame(), pd.Series(dtype=float)
        sub = self.adata[:, genes].X
        sub = sub.toarray() if hasattr(sub, "toarray") else np.asarray(sub)
        sub = sub.astype(float)
        std = sub.std(axis=0)
        z = (sub - sub.mean(axis=0)) / np.where(std > 0, std, 1.0)
        matrix = pd.DataFrame(z.T, index=genes, columns=self.adata.obs_names.astype(str))
        if order_feature and order_feature in self.imaging.columns:
            order = self.imaging[order_feature].copy()
            order.name = self.feature_label(order_feature)
        elif module in self.eigengenes.columns:
            order = self.eigengenes[module].copy()
            order.name = f"{module} eigengene"
        else:
            order = pd.Series(0.0, index=self.adata.obs_names)
        order.index = order.index.astype(str)
        order = order[order.notna()]
        return matrix[order.index], order

    # ------------------------------------------------------------------ network
    @memoised
    def network(
        self,
        *,
        q_threshold: float,
        min_effect: float = 0.0,
        sources: Sequence[str] = (),
        groups: Sequence[str] = (),
        max_features: int = 25,
        pathways_per_module: int = 3,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Features — modules — pathways graph at a threshold.

        Returns ``nodes`` (``id``, ``label``, ``kind``, ``size``, ``target``: the feature ID,
        module or, for a pathway, the module where it is most enriched) and ``edges``
        (``source``, ``target``, ``weight``: effect for feature—module edges, -log10 q
        for module—pathway edges; ``measure``: the name of the effect measure). Features are the ``max_features`` with the
        strongest significant links; pathways are each module's top terms with
        ``q < q_threshold``.
        """
        sig = self.significant(
            q_threshold=q_threshold, min_effect=min_effect, sources=sources, groups=groups
        )
        chosen = list(dict.fromkeys(sig["feature"]))[:max_features]
        sig = sig[sig["feature"].isin(chosen)]
        node_rows = []
        edge_rows = []
        links = sig.groupby("feature").size()
        for feature in chosen:
            node_rows.append(
                {
                    "id": f"feature:{feature}",
                    "label": self.feature_label(feature),
                    "kind": "feature",
                    "size": int(links.get(feature, 1)),
                    "target": feature,
                }
            )
        for module in self.module_names:
            size = (
                self.modules_info.at[module, "size"]
                if module in self.modules_info.index
                else (self.gene_module == module).sum()
            )
            node_rows.append(
                {
                    "id": f"module:{module}",
                    "label": module,
                    "kind": "module",
                    "size": int(size) if not pd.isna(size) else 1,
                    "target": module,
                }
            )
        measures = (
            sig["effect_measure"].astype(str)
            if "effect_measure" in sig
            else pd.Series("", index=sig.index)
        )
        for row, measure in zip(sig.itertuples(), measures):
            edge_rows.append(
                {
                    "source": f"feature:{row.feature}",
                    "target": f"module:{row.module}",
                    "weight": float(row.effect),
                    "measure": measure,
                }
            )
        enrichment = _table(
            self._uns, "enrichment", ("module", "collection", "term", "overlap", "p", "q")
        )
        enrichment = enrichment[
            (enrichment["q"] < q_threshold)
            & enrichment["module"].astype(str).isin(self.module_names)
        ]
        enrichment = enrichment.sort_values(["q", "p", "term"], kind="mergesort")
        top = enrichment.groupby("module", sort=False).head(pathways_per_module)
        pathway_best: dict[str, tuple[float, str, int]] = {}
        for row in top.itertuples():
            node_id = f"pathway:{row.collection}:{row.term}"
            q = float(row.q)
            edge_rows.append(
                {
                    "source": f"module:{row.module}",
                    "target": node_id,
                    "weight": -math.log10(max(q, 1e-300)),
                    "measure": "-log10 q",
                }
            )
            best = pathway_best.get(node_id)
            if best is None or q < best[0]:
                pathway_best[node_id] = (q, str(row.module), int(row.overlap), str(row.term))
        for node_id, (_, module, overlap, term) in pathway_best.items():
            node_rows.append(
                {"id": node_id, "label": term, "kind": "pathway", "size": overlap, "target": module}
            )
        nodes = pd.DataFrame(node_rows, columns=["id", "label", "kind", "size", "target"])
        edges = pd.DataFrame(edge_rows, columns=["source", "target", "weight", "measure"])
        return nodes, edges

    # ------------------------------------------------------------------- cohort
    def matching(self) -> pd.DataFrame:
        """Sample matching across sources (bundle ``matching`` table)."""
        return _table(
            self._uns, "matching", ("source", "n_ids", "n_matched", "n_unmatched", "unmatched")
        )

    @memoised
    def missingness(self) -> pd.DataFrame:
        """Per imaging feature (index): label, source, group, type, n_missing, fraction."""
        missing = self.imaging.isna()
        table = pd.DataFrame(
            {
                "n_missing": missing.sum().to_numpy(dtype=int),
                "fraction": missing.mean().to_numpy(dtype=float)
                if len(self.imaging)
                else np.zeros(missing.shape[1]),
            },
            index=pd.Index(self.imaging.columns.astype(str), name="feature"),
        )
        table = table.join(self.features[["label", "source", "group", "type"]])
        table["label"] = table["label"].fillna(pd.Series(table.index, index=table.index))
        return table[["label", "source", "group", "type", "n_missing", "fraction"]]

    @memoised
    def mutation_imaging(self) -> pd.DataFrame:
        """Mutation x imaging-feature tests with feature labels, by q."""
        table = _table(
            self._uns, "mutation_imaging", ("mutation", "feature", *B.ASSOCIATION_COLUMNS)
        )
        table["feature"] = table["feature"].astype(str)
        table = table.join(self.features[["label", "source", "group"]], on="feature")
        table["label"] = table["label"].fillna(table["feature"])
        return table.sort_values(["q", "p"], kind="mergesort").reset_index(drop=True)

    def mutation_modules(self) -> pd.DataFrame:
        return _table(self._uns, "mutation_modules", ("mutation", "module", *B.ASSOCIATION_COLUMNS))

    def survival_table(self) -> pd.DataFrame:
        """The bundle's survival table, by q."""
        table = _table(
            self._uns,
            "survival",
            ("kind", "variable", "test", "statistic", "hr", "ci_low", "ci_high", "p", "q", "n"),
        )
        return table.sort_values(["q", "p"], kind="mergesort").reset_index(drop=True)

    @property
    def has_survival(self) -> bool:
        obs = self.adata.obs
        if B.SURVIVAL_TIME not in obs or B.SURVIVAL_EVENT not in obs:
            return False
        times, events = obs[B.SURVIVAL_TIME].to_numpy(), obs[B.SURVIVAL_EVENT].to_numpy()
        return bool((pd.notna(times) & pd.notna(events)).any())

    @memoised
    def survival_choices(self) -> tuple[tuple[str, str], ...]:
        """``(value, label)`` pairs for the Kaplan–Meier variable: ``kind:variable``."""
        if not self.has_survival:
            return ()
        choices = [(f"module:{m}", f"{m} eigengene (split)") for m in self.module_names]
        choices += [(f"mutation:{m}", f"{m} mutation") for m in self.mutations]
        for fid, row in self.features.iterrows():
            how = {"continuous": "split", "ordinal": "ordered levels"}.get(
                str(row["type"]), "categories"
            )
            choices.append((f"feature:{fid}", f"{row['label']} ({how})"))
        return tuple(choices)

    @property
    def all_patients(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Imaging and clinical tables of every patient of the study, with or without
        expression (:func:`analysis.io.all_patients`): the patients of the analyses that need
        no expression (mutation x imaging, imaging x survival, mutation x survival)."""
        with self._cache_lock:
            if self._all_patients is None:
                from ..analysis.io import all_patients

                imaging, clinical = all_patients(self.adata)
                imaging.index = imaging.index.astype(str)
                clinical.index = clinical.index.astype(str)
                self._all_patients = (imaging, clinical)
            return self._all_patients

    def survival_row(self, kind: str, variable: str, test: str) -> dict | None:
        """The analysis' survival test ``test`` of ``kind:variable`` (bundle ``survival``)."""
        row = self.memo("survival-rows", {}, self._survival_rows).get((kind, variable, test))
        return None if row is None else dict(row)

    def _survival_rows(self) -> dict[tuple[str, str, str], dict]:
        """Each ``(kind, variable, test)``'s first row of :meth:`survival_table` (by q)."""
        rows: dict[tuple[str, str, str], dict] = {}
        for record in self.survival_table().to_dict("records"):
            key = (str(record["kind"]), str(record["variable"]), str(record["test"]))
            rows.setdefault(key, {name: _plain(value) for name, value in record.items()})
        return rows

    @memoised
    def km(
        self, kind: str, variable: str, *, split: str = "median", cut: float | None = None
    ) -> SurvivalView:
        """Kaplan–Meier curves of a grouping of the patients, with the test the analysis ran.

        The patients are those of the analysis the view belongs to: modules and genes the
        patients with expression; imaging features and mutations every patient with the
        variable and survival data, with or without expression (as ``radmap.tl.survival``).

        ``kind`` is ``module`` (eigengene), ``gene`` (expression), ``feature`` (categories,
        or a split when continuous) or ``mutation`` (Mutant / Wildtype). Continuous variables
        are split by ``split`` (:func:`analysis.survival.split_groups`: ``median``,
        ``tertiles``, ``quartiles`` or ``cut`` at ``cut``). Levels with fewer patients than
        the analysis' minimum group size are left out, as in the analysis.

        The p-value is the log-rank test over the groups shown (for the analysis' own
        grouping the same p as its ``logrank`` row), except for ordinal features, whose
        analysis test is the Cox trend test: its row's p and hazard ratio per level are shown.
        """
        from ..analysis.survival import MIN_GROUP, SPLITS, kaplan_meier, logrank, split_groups

        if not self.has_survival:
            raise InputError("this bundle has no survival_time / survival_event columns")
        if split not in SPLITS:
            raise InputError(f"unknown survival split {split!r}; choose one of {', '.join(SPLITS)}")
        if kind in ("module", "gene"):
            clinical = self.adata.obs.copy()
            clinical.index = clinical.index.astype(str)
            imaging = None
        elif kind in ("feature", "mutation"):
            imaging, clinical = self.all_patients
        else:
            raise InputError(f"unknown survival grouping {kind!r}")
        values = None
        test = "logrank"
        if kind == "module":
            if variable not in self.eigengenes.columns:
                raise InputError(f"module {variable!r} has no eigengene in this bundle")
            values = self.eigengenes[variable].set_axis(clinical.index)
            name = f"{variable} eigengene"
        elif kind == "gene":
            gene = self.canonical_gene(variable)
            if gene is None:
                raise InputError(f"gene {variable!r} is not in this bundle")
            values = pd.Series(self.expression(gene), index=clinical.index)
            name = f"{gene} expression"
        elif kind == "feature":
            if variable not in imaging.columns:
                raise InputError(f"imaging feature {variable!r} is not in this bundle")
            column = imaging[variable]
            name = self.feature_label(variable)
            ftype = (
                str(self.features.at[variable, "type"]) if variable in self.features.index else ""
            )
            if ftype not in ("continuous", "ordinal", "binary", "categorical"):
                numeric = pd.api.types.is_numeric_dtype(column) and column.nunique() > 2
                ftype = "continuous" if numeric else "categorical"
            if ftype == "continuous":
                values = column
            else:
                groups = column
                description = f"{name} categories"
                if ftype == "ordinal":
                    test = "cox_trend"
        else:
            if variable not in self.mutations:
                raise InputError(f"mutation column {variable!r} is not in this bundle")
            status = clinical[variable]
            groups = status.astype(object).where(status.isin([B.MUTANT, B.WILDTYPE]))
            description = f"{variable} mutation status"
        if values is not None:
            groups = split_groups(values, split, cut=cut)
            how = {
                "median": "split at the median",
                "tertiles": "split into tertiles",
                "quartiles": "split into quartiles",
                "cut": f"split at {cut:g}" if cut is not None else "",
            }[split]
            description = f"{name}, {how}"
        time = pd.to_numeric(clinical[B.SURVIVAL_TIME], errors="coerce")
        event = pd.to_numeric(clinical[B.SURVIVAL_EVENT], errors="coerce")
        groups = pd.Series(groups).reindex(clinical.index)
        known = time.notna() & event.notna() & groups.notna()
        min_group = int((self.params.get("survival") or {}).get("min_group", MIN_GROUP))
        sizes = groups[known].astype(object).value_counts()
        small = sizes[sizes < min_group]
        note = ""
        if len(small) and test == "logrank":
            groups = groups.where(~groups.isin(small.index))
            known &= groups.notna()
            note = f"left out (< {min_group} patients): " + ", ".join(
                f"{level} ({count})" for level, count in small.items()
            )
        curves = kaplan_meier(time, event, groups)
        analysis_grouping = values is None or split == "median"
        row = self.survival_row(kind, variable, test) if analysis_grouping else None
        hr = None
        if test == "cox_trend":
            p = row["p"] if row else np.nan
            hr = row.get("hr") if row else None
        else:
            _, p = logrank(time, event, groups)
        return SurvivalView(
            curves=curves,
            p=float(p) if p is not None else np.nan,
            test=test,
            n=int(known.sum()),
            events=int(event[known].sum()),
            description=description,
            q=row.get("q") if row else None,
            hr=hr,
            note=note,
        )

    # --------------------------------------------------------------- enrichment
    @property
    def gene_sets(self) -> Mapping[str, Mapping[str, Sequence[str]]]:
        """Gene-set collections for live enrichment (loaded once, on first use)."""
        with self._gene_sets_lock:
            if self._gene_sets is None:
                from ..analysis.enrich import load_gene_sets

                self._gene_sets = load_gene_sets(DEFAULT_GENE_SET_COLLECTIONS)
            return self._gene_sets

    @memoised
    def ora(self, genes: Sequence[str]) -> pd.DataFrame:
        """Over-representation of ``genes`` against every analysed gene."""
        from ..analysis.enrich import ora

        chosen = sorted({g for g in (self.canonical_gene(g) for g in genes) if g})
        return ora(chosen, background=list(self.genes), gene_sets=self.gene_sets)

    def prerank(
        self,
        feature: str,
        *,
        collections: Sequence[str] = ("hallmark",),
        permutations: int = 1000,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Pre-ranked enrichment of the genes ranked by their effect on ``feature``.

        Not memoised in memory: the app runs it as background work cached on disk.
        """
        from ..analysis.enrich import prerank

        table = self.gene_table(feature)
        if table.empty:
            raise InputError(f"feature {feature!r} has no gene-level statistics in this bundle")
        self._check_signed(feature)
        scores = pd.Series(table["effect"].to_numpy(), index=table["gene"].to_numpy())
        gene_sets = {name: self.gene_sets[name] for name in collections if name in self.gene_sets}
        if not gene_sets:
            raise InputError(
                f"gene-set collection(s) {', '.join(collections)} not available; "
                f"choose from {', '.join(self.gene_sets)}"
            )
        return prerank(scores, gene_sets=gene_sets, permutations=permutations, seed=seed)


def _testable_mask(parent: BundleData, subset: Subset) -> np.ndarray:
    """The patients of ``parent`` in ``subset``.

    Raises
    ------
    InputError
        Fewer patients than the analysis needs for a test (its ``min_n``).
    """
    mask = subset.mask(parent.patient_columns())
    n_patients, n_cohort = int(mask.sum()), int(parent.adata.n_obs)
    min_n = int(_options(_tl().associate, parent.params.get("associate")).get("min_n", 10))
    if n_patients < min_n:
        raise InputError(
            f"the subset {subset.label(parent.subset_columns())} has {n_patients} of "
            f"{n_cohort} patients; at least {min_n} are needed to test (the analysis' "
            "min_n): widen it"
        )
    return mask


def _plain(value):
    """A numpy / pandas scalar as a JSON-friendly Python value (NaN -> None)."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _options(function: Callable, params: object) -> dict:
    """The recorded parameters of an analysis step that ``function`` takes as options."""
    if not isinstance(params, Mapping):
        return {}
    accepted = set(inspect.signature(function).parameters) - {"adata", "copy"}
    return {key: value for key, value in params.items() if key in accepted}


RECOMPUTED = (
    "associations",
    "power",
    "null",
    "survival",
    "mutation_imaging",
    "mutation_modules",
    "gene_map",
    "gene_n",
    "gene_null",
    "gene_null_features",
)
"""Results of ``uns["radmap"]`` that a subset recomputes (or, for the nulls of the map and
the gene map, leaves out: the subset's pages show no permutation null)."""


class SubsetData(BundleData):
    """A bundle restricted to a subset of its patients, every shown result recomputed.

    Modules (gene membership, eigengenes, enrichment) stay those of the whole cohort; the
    module map, the gene map, mutation tests and survival are run again on the subset's
    patients by the analysis layer's own tools (:func:`radmap.tl.associate`,
    :func:`~radmap.tl.associate_genes`, :func:`~radmap.tl.mutations`,
    :func:`~radmap.tl.survival`) with the bundle's recorded options: the same tests,
    families and multiple-testing correction, as if the analysis had been run on a bundle
    holding only these patients. The module map is computed at once; the gene map (one
    feature for a volcano, every feature for a gene page), mutation and survival tests on
    first use, each kept in this view.

    Raises
    ------
    InputError
        Fewer patients than the analysis needs for a test (its ``min_n``).
    """

    def __init__(self, parent: BundleData, subset: Subset):
        self.__dict__.update(parent.__dict__)
        self.__dict__.pop("adata", None)
        self.__dict__.pop("_adata", None)
        mask = _testable_mask(parent, subset)
        self._mask = mask
        self.parent = parent
        self.subset = subset
        self.label = subset.label(parent.subset_columns())
        self.n_patients = int(mask.sum())
        self.n_cohort = int(parent.adata.n_obs)
        self.bundle_id = f"{parent.bundle_id}|subset:{subset.key}"
        self._cache = OrderedDict()
        self._cache_lock = threading.Lock()
        self._subset_views = OrderedDict()
        self._subset_lock = threading.Lock()
        self._work_lock = threading.Lock()
        self.eigengenes = parent.eigengenes.loc[mask]
        self.imaging = parent.imaging.loc[mask]
        self._uns = {k: v for k, v in parent._uns.items() if k not in RECOMPUTED}
        self._full_gene_map = False
        self._all_patients = None
        self._uns["associations"] = self._module_map()

    def __repr__(self) -> str:
        return f"SubsetData({self.label}, n = {self.n_patients} of {self.n_cohort})"

    @property
    def adata(self) -> ad.AnnData:
        """The subset's patients of the bundle: a view made on first use (the module map,
        computed with every subset, does not read it; making it costs a 130-patient,
        1,476-feature bundle ~25 ms)."""
        adata = self.__dict__.get("_adata")
        if adata is None:
            adata = self.__dict__["_adata"] = self.parent.adata[self._mask]
        return adata

    @adata.setter
    def adata(self, value: ad.AnnData) -> None:
        self.__dict__["_adata"] = value

    # ------------------------------------------------------------------ helpers
    def _module_map(self) -> pd.DataFrame:
        """The module x feature map of the subset: what :func:`radmap.tl.associate` stores,
        by the function it calls (:func:`radmap.analysis.analyses.module_map`), with the
        bundle's recorded options; the power summary is left to :meth:`uns_table`."""
        from ..analysis.analyses import module_map

        options = self._test_options(_tl().associate, "associate")
        table, _ = module_map(
            self.eigengenes,
            self.imaging,
            self.parent._uns["features"].reindex(self.imaging.columns),
            **options,
        )
        return _tl().clean_table(table)

    def _test_options(self, tool: Callable, step: str) -> dict:
        """The options the analysis step ``step`` ran with (``tool``'s defaults for those it
        did not record), in the keywords of :mod:`radmap.analysis.analyses`."""
        recorded = _options(tool, self.parent.params.get(step))
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(tool).parameters.items()
        }

        def option(name: str):
            return recorded.get(name, defaults.get(name))

        adjust_for = list(option("adjust_for") or [])
        options = {
            "continuous": option("continuous_test"),
            "binary": option("binary_test"),
            "categorical": option("categorical_test"),
            "covariates": self.adata.obs[adjust_for] if adjust_for else None,
            "min_n": option("min_n"),
            "min_group": option("min_group"),
        }
        if tool is _tl().associate:  # associate_genes takes families but does not use them
            options["families"] = option("families")
        if "alpha" in defaults:
            options["alpha"] = option("alpha")
        return options

    def _light(self, *, expression: bool = False, features: Sequence[str] | None = None):
        """A bundle of the subset's patients with what an analysis tool reads."""
        imaging = self.imaging if features is None else self.imaging[list(features)]
        obs = pd.DataFrame(self.adata.obs)
        x = None
        var = None
        if expression:
            x = self.adata.X
            x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
            var = pd.DataFrame(index=self.genes)
        light = ad.AnnData(X=x, obs=obs, var=var)
        light.obsm[B.IMAGING_KEY] = imaging
        light.obsm[B.EIGENGENES_KEY] = self.eigengenes
        uns = {
            "params": {
                "mutations": list(self.parent.params.get("mutations") or self.parent.mutations)
            },
            "features": self.parent._uns["features"],
            "warnings": [],
        }
        uns.update(self._without_expression())
        light.uns[B.UNS_KEY] = uns
        return light

    def _without_expression(self) -> dict:
        """The study's patients without expression who are in the subset (for the analyses
        that need no expression: mutation x imaging and survival)."""
        imaging = self.parent._uns.get(B.NO_EXPRESSION_IMAGING)
        clinical = self.parent._uns.get(B.NO_EXPRESSION_CLINICAL)
        frames = [f for f in (clinical, imaging) if isinstance(f, pd.DataFrame) and len(f)]
        if not frames:
            return {}
        index = frames[0].index.union(frames[-1].index, sort=False)
        combined = pd.concat([frame.reindex(index) for frame in frames], axis=1).loc[
            :, lambda f: ~f.columns.duplicated()
        ]
        keep = index[self.subset.mask(combined)]
        out = {}
        if isinstance(imaging, pd.DataFrame):
            out[B.NO_EXPRESSION_IMAGING] = imaging.loc[imaging.index.intersection(keep)]
        if isinstance(clinical, pd.DataFrame):
            out[B.NO_EXPRESSION_CLINICAL] = clinical.loc[clinical.index.intersection(keep)]
        return out

    def _gene_results(self, features: Sequence[str]):
        """Gene map of the subset for ``features`` (varm arrays, column order, n)."""
        light = self._light(expression=True, features=features)
        _tl().associate_genes(
            light, **_options(_tl().associate_genes, self.parent.params.get("associate_genes"))
        )
        return light

    def _use_gene_map(self, light) -> None:
        self.adata = light
        uns = light.uns[B.UNS_KEY]
        self.gene_features = [str(f) for f in uns["gene_features"]]
        self._gene_feature_column = {f: i for i, f in enumerate(self.gene_features)}
        self.gene_n = [int(n) for n in uns["gene_n"]]
        self._uns["gene_map"] = uns.get("gene_map")
        self._full_gene_map = True

    def _ensure_gene_map(self) -> None:
        with self._work_lock:
            if not self._full_gene_map:
                self._use_gene_map(self._gene_results(self.parent.gene_features))

    # ------------------------------------------------------------------ overrides
    def summary(self) -> dict:
        return super().summary() | {"n_patients": self.n_patients, "subset": self.label}

    def null_badge(self) -> str:
        return ""

    @property
    def all_patients(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Imaging and clinical tables of the subset's patients, with or without expression."""
        with self._cache_lock:
            if self._all_patients is None:
                from ..analysis.io import all_patients

                imaging, clinical = all_patients(self._light())
                imaging.index = imaging.index.astype(str)
                clinical.index = clinical.index.astype(str)
                self._all_patients = (imaging, clinical)
            return self._all_patients

    def uns_table(self, key: str) -> pd.DataFrame | None:
        if key == "power":
            self._power()
        table = self._uns.get(key)
        return table if isinstance(table, pd.DataFrame) else None

    def link_trust(self, feature: str, module: str) -> dict:
        return {}

    def has_gene_level(self, feature: str) -> bool:
        return self.parent.has_gene_level(feature)

    @memoised
    def gene_table(self, feature: str) -> pd.DataFrame:
        if not self.parent.has_gene_level(feature):
            return pd.DataFrame(columns=list(GENE_COLUMNS))
        if self._full_gene_map:
            return BundleData.gene_table.__wrapped__(self, feature)
        # One feature of the gene map (:func:`radmap.tl.associate_genes` runs the same
        # function over every feature; its q within a feature depends on that feature only).
        from ..analysis.analyses import gene_map

        x = self.adata.X
        values = pd.DataFrame(
            x.toarray() if hasattr(x, "toarray") else np.asarray(x),
            index=self.adata.obs_names,
            columns=self.genes,
        )
        result = gene_map(
            values,
            self.imaging[[feature]],
            self.parent._uns["features"].reindex([feature]),
            **self._test_options(_tl().associate_genes, "associate_genes"),
        )
        assoc = result.assoc
        return pd.DataFrame(
            {
                "gene": self.genes.to_numpy(),
                "effect": assoc.effect[feature].reindex(self.genes).to_numpy(dtype=float),
                "statistic": assoc.statistic[feature].reindex(self.genes).to_numpy(dtype=float),
                "p": assoc.p[feature].reindex(self.genes).to_numpy(dtype=float),
                "q": result.q_feature[feature].reindex(self.genes).to_numpy(dtype=float),
                "module": self.gene_module.to_numpy(),
                "test": self.feature_test(feature),
            }
        )

    @memoised
    def gene_associations(self, gene: str) -> pd.DataFrame:
        self._ensure_gene_map()
        return BundleData.gene_associations.__wrapped__(self, gene)

    def gene_association(self, gene: str, feature: str) -> dict | None:
        gene = self.canonical_gene(gene)
        if gene is None or not self.has_gene_level(feature):
            return None
        row = self.gene_table(feature).set_index("gene").loc[gene]
        n = int(self.imaging[feature].notna().sum())
        return {
            "test": self.feature_test(feature),
            **{key: float(row[key]) for key in ("statistic", "effect", "p", "q")},
            "n": n,
        }

    def _power(self) -> None:
        """Power summary of the subset's module map (as :func:`radmap.tl.associate` stores)."""
        from ..analysis.analyses import power_summary

        with self._work_lock:
            if "power" not in self._uns:
                features = self.parent._uns["features"].reindex(self.imaging.columns)
                summary, _ = power_summary(
                    "module map", self._uns["associations"], features, self.imaging
                )
                self._uns["power"] = summary

    def _mutation_tests(self) -> None:
        with self._work_lock:
            if "mutation_imaging" in self._uns:
                return
            light = self._light()
            _tl().mutations(
                light, **_options(_tl().mutations, self.parent.params.get("mutation_tests"))
            )
            for key in ("mutation_imaging", "mutation_modules"):
                self._uns[key] = light.uns[B.UNS_KEY][key]

    @memoised
    def mutation_imaging(self) -> pd.DataFrame:
        self._mutation_tests()
        return BundleData.mutation_imaging.__wrapped__(self)

    def mutation_modules(self) -> pd.DataFrame:
        self._mutation_tests()
        return super().mutation_modules()

    def survival_table(self) -> pd.DataFrame:
        with self._work_lock:
            if "survival" not in self._uns and self.has_survival:
                light = self._light()
                _tl().survival(
                    light, **_options(_tl().survival, self.parent.params.get("survival"))
                )
                self._uns["survival"] = light.uns[B.UNS_KEY]["survival"]
        return super().survival_table()


def _tl():
    from ..analysis import tl

    return tl
