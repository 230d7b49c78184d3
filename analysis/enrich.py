"""Pathway enrichment of gene modules and gene rankings, fully offline.

Gene sets always come from local GMT files (two collections ship with radmap, see
``analysis/data/genesets/README.md``) and are passed to the statistics as plain dicts, with
an explicit background: nothing here ever asks a web service for a library by name.

- :func:`ora`: over-representation (one-sided hypergeometric test), vectorised over terms so
  that the app can run it live on a lasso selection.
- :func:`module_enrichment`: :func:`ora` for every co-expression module.
- :func:`prerank`: pre-ranked GSEA through :func:`gseapy.prerank`.
"""

from __future__ import annotations

import importlib.resources
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .associate import bh
from .bundle import UNASSIGNED
from .validate import InputError

logger = logging.getLogger("radmap")

BUNDLED_GENE_SET_FILES = {
    "hallmark": "msigdb_hallmark_v6.2_symbols.gmt",
    "go_bp": "go_biological_process_2023.gmt",
}
ORA_COLUMNS = ("collection", "term", "overlap", "set_size", "p", "q", "odds_ratio", "genes")
PRERANK_COLUMNS = ("collection", "term", "es", "nes", "p", "q", "lead_genes")

GeneSets = Mapping[str, Mapping[str, Sequence[str]]]


def bundled_gene_set_paths() -> dict[str, Path]:
    """Paths of the gene-set collections shipped inside the package.

    Returns
    -------
    Collection name (``"hallmark"``, ``"go_bp"``) -> path of its GMT file.
    """
    root = importlib.resources.files("radmap.analysis").joinpath("data", "genesets")
    return {name: Path(str(root.joinpath(file))) for name, file in BUNDLED_GENE_SET_FILES.items()}


def read_gmt(path: str | Path) -> dict[str, list[str]]:
    """Read a GMT file (one gene set a line: name, description, genes; tab-separated).

    Empty gene fields (such as the trailing tab of Enrichr files) are ignored and duplicate
    genes within a set are dropped, keeping the first occurrence.

    Parameters
    ----------
    path
        The GMT file.

    Returns
    -------
    Term name -> gene symbols, in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gene-set file {path} not found: give the path of a GMT file")
    gene_sets: dict[str, list[str]] = {}
    with path.open(encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            name = fields[0].strip()
            genes = [gene.strip() for gene in fields[2:] if gene.strip()]
            if not name or not genes:
                raise InputError(
                    f"{path}, line {line_number}: not a GMT gene set (expected tab-separated "
                    "name, description and at least one gene)"
                )
            if name in gene_sets:
                raise InputError(
                    f"{path}, line {line_number}: gene set {name!r} appears twice; "
                    "give each set a unique name"
                )
            gene_sets[name] = list(dict.fromkeys(genes))
    if not gene_sets:
        raise InputError(f"gene-set file {path} holds no gene sets: check it is a GMT file")
    return gene_sets


def load_gene_sets(
    sources: Sequence[str | Path] = ("hallmark", "go_bp"),
) -> dict[str, dict[str, list[str]]]:
    """Load gene-set collections from the bundled files or from GMT files.

    Parameters
    ----------
    sources
        Each is the name of a bundled collection (``"hallmark"``, ``"go_bp"``) or the path
        of a GMT file, whose collection name is the file stem.

    Returns
    -------
    Collection name -> term -> genes.
    """
    if isinstance(sources, str | Path):
        sources = [sources]
    bundled = bundled_gene_set_paths()
    collections: dict[str, dict[str, list[str]]] = {}
    for source in sources:
        if isinstance(source, str) and source in bundled:
            name, path = source, bundled[source]
        else:
            path = Path(source)
            if not path.is_file():
                raise InputError(
                    f"gene-set source {str(source)!r} is neither a bundled collection "
                    f"({', '.join(bundled)}) nor an existing GMT file"
                )
            name = path.stem
        if name in collections:
            raise InputError(
                f"gene-set collection {name!r} given twice: rename one of the GMT files"
            )
        collections[name] = read_gmt(path)
    return collections


def _unique_genes(genes: Sequence[str], what: str) -> pd.Index:
    if isinstance(genes, str):
        raise InputError(f"{what} must be a list of gene symbols, not the single string {genes!r}")
    values = pd.Series(list(genes), dtype=object).dropna().astype(str).str.strip()
    return pd.Index(values[values != ""].unique())


def _membership(
    gene_sets: Mapping[str, Sequence[str]], background: pd.Index
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Terms of one collection and its (term, background position) pairs, each pair once.

    The same for every query on one background: :func:`module_enrichment` builds it once.
    """
    terms = np.asarray(list(gene_sets.keys()), dtype=object)
    members = [list(genes) for genes in gene_sets.values()]
    lengths = np.fromiter((len(genes) for genes in members), dtype=np.int64, count=len(members))
    term_of_member = np.repeat(np.arange(len(terms)), lengths)
    flat = [gene for genes in members for gene in genes]
    gene_position = background.get_indexer(pd.Index(flat, dtype=object))
    keep = gene_position >= 0
    pairs = np.sort(term_of_member[keep] * len(background) + gene_position[keep])
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] if len(pairs) else pairs
    term_of_member, gene_position = np.divmod(pairs, len(background))
    return terms, term_of_member, gene_position


def _ora_collection(
    collection: str,
    membership: tuple[np.ndarray, np.ndarray, np.ndarray],
    background: pd.Index,
    in_query: np.ndarray,
    min_size: int,
    max_size: int,
) -> pd.DataFrame:
    terms, term_of_member, gene_position = membership
    set_size = np.bincount(term_of_member, minlength=len(terms))
    is_hit = in_query[gene_position]
    overlap = np.bincount(term_of_member[is_hit], minlength=len(terms))
    tested = (set_size >= min_size) & (set_size <= max_size)
    if not tested.any():
        return pd.DataFrame(columns=list(ORA_COLUMNS))

    n_background = len(background)
    n_query = int(in_query.sum())
    p = np.ones(int(tested.sum()))
    has_overlap = overlap[tested] > 0
    # Many terms share (overlap, size): evaluate the tail once per distinct pair.
    pairs, inverse = np.unique(
        np.column_stack([overlap[tested][has_overlap], set_size[tested][has_overlap]]),
        axis=0,
        return_inverse=True,
    )
    tail = stats.hypergeom.sf(pairs[:, 0] - 1, n_background, pairs[:, 1], n_query)
    p[has_overlap] = np.clip(tail, 0.0, 1.0)[inverse.ravel()]
    q = bh(p)
    # Haldane-Anscombe corrected odds ratio (0.5 added to every cell): finite for empty cells.
    a = overlap[tested] + 0.5
    b = set_size[tested] - overlap[tested] + 0.5
    c = n_query - overlap[tested] + 0.5
    d = n_background - set_size[tested] - n_query + overlap[tested] + 0.5
    table = pd.DataFrame(
        {
            "collection": collection,
            "term": terms[tested],
            "overlap": overlap[tested],
            "set_size": set_size[tested],
            "p": p,
            "q": q,
            "odds_ratio": (a * d) / (b * c),
        },
        index=np.flatnonzero(tested),
    )
    table = table[table["overlap"] > 0]
    table["genes"] = _joined_hits(
        term_of_member[is_hit], background.to_numpy()[gene_position[is_hit]], table.index
    )
    return table


def _joined_hits(hit_terms: np.ndarray, hit_genes: np.ndarray, terms: pd.Index) -> list[str]:
    """``|``-joined alphabetical hit genes of each term in ``terms`` (term positions)."""
    order = np.lexsort((hit_genes.astype(str), hit_terms))
    hit_terms, hit_genes = hit_terms[order], hit_genes[order]
    starts = np.searchsorted(hit_terms, terms.to_numpy(), side="left")
    stops = np.searchsorted(hit_terms, terms.to_numpy(), side="right")
    return ["|".join(hit_genes[start:stop]) for start, stop in zip(starts, stops)]


def ora(
    genes: Sequence[str],
    *,
    background: Sequence[str],
    gene_sets: GeneSets,
    min_size: int = 5,
    max_size: int = 500,
) -> pd.DataFrame:
    """Over-representation analysis: one-sided hypergeometric test for every term.

    Only genes in ``background`` count: query genes outside it are ignored and every term
    is first restricted to the background. Terms whose restricted size lies outside
    ``[min_size, max_size]`` are not tested. The p-value is
    ``P(X >= overlap)`` for ``X ~ Hypergeom(len(background), set_size, len(query))``
    (identical to Fisher's exact test, ``alternative="greater"``), and q is
    Benjamini–Hochberg within each collection over all tested terms. Terms with no overlap
    (p = 1) enter the correction but are left out of the table.

    Parameters
    ----------
    genes
        The query genes (e.g. a module or a lasso selection).
    background
        Every gene that could have been selected, usually all genes of the bundle.
    gene_sets
        Collection name -> term -> genes, as from :func:`load_gene_sets`.
    min_size, max_size
        Bounds on a term's size within the background.

    Returns
    -------
    Columns ``collection``, ``term``, ``overlap``, ``set_size`` (term size within the
    background), ``p``, ``q``, ``odds_ratio`` (Haldane–Anscombe corrected: 0.5 added to
    every cell of the 2 x 2 table) and ``genes`` (overlapping genes, ``|``-joined,
    alphabetical), sorted by p.
    """
    if min_size > max_size:
        raise InputError(f"min_size ({min_size}) must not exceed max_size ({max_size})")
    background_index = _unique_genes(background, "background")
    return _ora(
        genes, background_index, _memberships(gene_sets, background_index), min_size, max_size
    )


def _memberships(gene_sets: GeneSets, background: pd.Index) -> dict[str, tuple]:
    return {name: _membership(sets, background) for name, sets in gene_sets.items()}


def _ora(
    genes: Sequence[str],
    background_index: pd.Index,
    memberships: Mapping[str, tuple],
    min_size: int,
    max_size: int,
) -> pd.DataFrame:
    query = _unique_genes(genes, "genes")
    in_query = background_index.isin(query)
    tables = []
    if in_query.any():
        for collection, membership in memberships.items():
            tables.append(
                _ora_collection(
                    collection, membership, background_index, in_query, min_size, max_size
                )
            )
    tables = [table for table in tables if len(table)]
    if not tables:
        return _empty_ora()
    result = pd.concat(tables, ignore_index=True)
    result = result.sort_values(["p", "collection", "term"], kind="stable", ignore_index=True)
    return result.astype({"overlap": "int64", "set_size": "int64"})[list(ORA_COLUMNS)]


def _empty_ora() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "collection": pd.Series(dtype=object),
            "term": pd.Series(dtype=object),
            "overlap": pd.Series(dtype="int64"),
            "set_size": pd.Series(dtype="int64"),
            "p": pd.Series(dtype=float),
            "q": pd.Series(dtype=float),
            "odds_ratio": pd.Series(dtype=float),
            "genes": pd.Series(dtype=object),
        }
    )


def module_enrichment(
    modules: pd.Series,
    *,
    background: Sequence[str],
    gene_sets: GeneSets,
    min_size: int = 5,
    max_size: int = 500,
    skip: Sequence[str] = (UNASSIGNED,),
) -> pd.DataFrame:
    """Over-representation of every module's genes (see :func:`ora`).

    Parameters
    ----------
    modules
        Gene symbol (index) -> module name, such as ``adata.var["module"]``.
    background
        Every gene that could have been placed in a module (usually all genes of the bundle).
    gene_sets
        Collection name -> term -> genes.
    min_size, max_size
        Bounds on a term's size within the background.
    skip
        Module labels that are not modules (genes left unassigned).

    Returns
    -------
    Column ``module`` followed by the columns of :func:`ora`, sorted by module then p.
    q is corrected within each module and collection.
    """
    start = time.perf_counter()
    labels = modules.dropna().astype(str)
    labels = labels[~labels.isin([str(label) for label in skip])]
    if min_size > max_size:
        raise InputError(f"min_size ({min_size}) must not exceed max_size ({max_size})")
    background_index = _unique_genes(background, "background")
    memberships = _memberships(gene_sets, background_index)
    tables = []
    for module in sorted(labels.unique()):
        table = _ora(
            labels.index[labels == module], background_index, memberships, min_size, max_size
        )
        table.insert(0, "module", module)
        tables.append(table)
    logger.info(
        "module enrichment: %d modules finished (%.1f s)",
        len(tables),
        time.perf_counter() - start,
    )
    if not tables:
        table = _empty_ora()
        table.insert(0, "module", pd.Series(dtype=object))
        return table
    return pd.concat(tables, ignore_index=True)


def _deterministic_ranking(scores: pd.Series) -> pd.Series:
    scores = pd.to_numeric(scores, errors="coerce").dropna()
    scores.index = scores.index.astype(str)
    duplicated = scores.index[scores.index.duplicated()]
    if len(duplicated):
        raise InputError(
            f"gene scores name gene {duplicated[0]!r} more than once: give one score per gene"
        )
    if np.isinf(scores.to_numpy()).any():
        raise InputError("gene scores contain infinite values: replace them with finite scores")
    order = np.lexsort((scores.index.to_numpy(), -scores.to_numpy()))
    return scores.iloc[order]


def prerank(
    scores: pd.Series,
    *,
    gene_sets: GeneSets,
    permutations: int = 1000,
    seed: int = 0,
    min_size: int = 15,
    max_size: int = 500,
    threads: int = 1,
) -> pd.DataFrame:
    """Pre-ranked gene-set enrichment (GSEA) with :func:`gseapy.prerank`, per collection.

    Genes are ranked by decreasing score; NaN scores are dropped and ties are broken by
    gene symbol so that the ranking, and with the seed the result, is reproducible.
    Significance comes from ``permutations`` gene-set permutations, so a nominal p or FDR
    of 0 means "below 1 / permutations" and is reported as ``1 / permutations``.

    Run time grows with permutations x terms x genes: about 30 s for 20,000 genes x the
    50 Hallmark sets with 1,000 permutations on one core of a 2-core machine (5 s for
    2,000 genes), and some 100 times that for GO BP: run it as background work.

    Parameters
    ----------
    scores
        Gene symbol (index) -> score (e.g. the Spearman rho of every gene with a feature).
    gene_sets
        Collection name -> term -> genes.
    permutations
        Number of gene-set permutations.
    seed
        Seed of the permutations.
    min_size, max_size
        Bounds on a term's size among the ranked genes.
    threads
        Threads for gseapy.

    Returns
    -------
    Columns ``collection``, ``term``, ``es``, ``nes``, ``p`` (nominal), ``q`` (FDR within
    the collection) and ``lead_genes`` (leading-edge genes, ``|``-joined), sorted by p then
    by decreasing ``|nes|``.
    """
    import gseapy

    if permutations < 1:
        raise InputError(f"permutations must be at least 1, got {permutations}")
    if min_size > max_size:
        raise InputError(f"min_size ({min_size}) must not exceed max_size ({max_size})")
    ranking = _deterministic_ranking(scores)
    if len(ranking) < 2:
        raise InputError("gene scores: fewer than two genes with a finite score to rank")
    ranked = set(ranking.index)
    start = time.perf_counter()
    tables = []
    for collection, collection_sets in gene_sets.items():
        usable = {
            term: list(genes)
            for term, genes in collection_sets.items()
            if min_size <= len(ranked.intersection(genes)) <= max_size
        }
        if not usable:
            logger.warning(
                "prerank: no %s term has %d-%d ranked genes; collection skipped",
                collection,
                min_size,
                max_size,
            )
            continue
        result = gseapy.prerank(
            rnk=ranking,
            gene_sets=usable,
            permutation_num=permutations,
            seed=seed,
            outdir=None,
            min_size=min_size,
            max_size=max_size,
            threads=threads,
            ascending=None,
            no_plot=True,
            verbose=False,
        ).res2d
        floor = 1.0 / permutations
        tables.append(
            pd.DataFrame(
                {
                    "collection": collection,
                    "term": result["Term"].astype(str).to_numpy(),
                    "es": result["ES"].astype(float).to_numpy(),
                    "nes": result["NES"].astype(float).to_numpy(),
                    "p": result["NOM p-val"].astype(float).clip(lower=floor).to_numpy(),
                    "q": result["FDR q-val"].astype(float).clip(lower=floor, upper=1).to_numpy(),
                    "lead_genes": result["Lead_genes"].astype(str).str.replace(";", "|").to_numpy(),
                }
            )
        )
    logger.info(
        "prerank: %d genes, %d permutations finished (%.1f s)",
        len(ranking),
        permutations,
        time.perf_counter() - start,
    )
    if not tables:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in PRERANK_COLUMNS})
    table = pd.concat(tables, ignore_index=True)
    table = table.assign(_abs_nes=-table["nes"].abs())
    table = table.sort_values(["p", "_abs_nes", "collection", "term"], kind="stable")
    return table.drop(columns="_abs_nes").reset_index(drop=True)
