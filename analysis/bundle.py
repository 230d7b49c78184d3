"""The radmap bundle: one AnnData object that carries a study from reading to the app.

This module is the single source of truth for the names of the slots the analysis writes
and the explorer reads. Every other module refers to these constants rather than spelling
the keys out again.

Layout
------
``obs``
    Patients (index = normalised patient ID, str). Clinical columns as read by
    :func:`analysis.io.read_clinical`: mutation columns normalised to the categories
    ``"Mutant"`` / ``"Wildtype"`` (missing = NaN), ``survival_time`` (float, days) and
    ``survival_event`` (float 0/1, NaN when unknown), covariates.
``var``
    Genes (index = HGNC symbol, unique). Columns:
    ``module`` (categorical str; ``"unassigned"`` for network genes in no module and for
    genes left out of the network), ``in_network`` (bool; gene used for module detection),
    ``kME`` (float; correlation with its own module eigengene, NaN for unassigned),
    ``is_hub`` (bool), ``highly_variable`` (bool), ``mean``, ``variance``.
``X``
    Log-scale expression, float32, patients x genes (every gene that passed filtering).
``layers["input"]``
    The expression as read, when preprocessing changed it (log transform or clipping).
``obsm["imaging"]``
    DataFrame patients x imaging features (index = obs_names). Semantic features are pandas
    ``Categorical`` (ordered for ordinal features), radiomic/clinical-numeric are float64.
    Column names are feature IDs (no ``/`` allowed, HDF5 restriction).
    On disk (h5ad) the table is stored compactly as one float matrix
    ``obsm["imaging_values"]`` (category codes for categorical columns, NaN = missing) plus
    ``uns["radmap"]["imaging_encoding"]`` (JSON: columns, category levels, ordered flags):
    one HDF5 node per column made 1,500 PyRadiomics features slow to write and read.
    :func:`analysis.io.load_bundle` restores the DataFrame.
``obsm["eigengenes"]``
    DataFrame patients x modules (columns = module names, ``"unassigned"`` excluded),
    sign-aligned so that each eigengene correlates positively with its module's mean z.
``varm[GENE_STAT_KEYS]``
    Gene x feature association arrays (float32, genes x features in the order of
    ``uns["radmap"]["gene_features"]``): ``radmap_effect``, ``radmap_statistic``,
    ``radmap_p``, ``radmap_q`` (BH per feature over genes).
``uns["radmap"]``
    ``format_version`` (str, :data:`FORMAT_VERSION`), ``params`` (dict), ``provenance``
    (dict: inputs with SHA-256, package versions, seed, created, command) and tidy tables
    (pandas DataFrames, plain columns of str / float / int / bool only):

    - ``features``: index = feature ID; ``label``, ``type`` (continuous / ordinal / binary /
      categorical), ``source`` (semantic / radiomic / clinical), ``group`` (e.g. ``semantic``,
      ``original_shape``, ``wavelet-LLH_glcm``), ``levels`` (``|``-joined category order,
      "" for numeric), ``contrast`` (for binary: ``"B vs A"`` meaning positive effect = B
      higher), ``test``, ``n`` (patients with a value).
    - ``modules``: index = module name; ``size``, ``hub_genes`` (``|``-joined, best first),
      ``variance_explained``, ``top_pathway``; with :func:`radmap.tl.stability` also
      ``jaccard_median`` / ``jaccard_min`` / ``jaccard_max`` / ``jaccard_background``.
    - ``soft_threshold``: the scale-free fit table (``power``, ``sft_r2``, ``slope``,
      ``mean_k``), with ``params["modules"]["power"]`` the chosen power.
    - ``associations``: module x feature, columns ``module``, ``feature``, ``test``,
      ``statistic``, ``effect``, ``p``, ``q`` (BH over the whole map), ``n``; after the
      trust checks (:func:`radmap.tl.trust`) also ``perm_p`` / ``perm_q`` (permutation
      null), ``q_size_adjusted`` / ``size_surrogate`` (tumour size partialled out),
      ``influence`` / ``influential_patient`` / ``p_without`` / ``one_patient``
      (leave-one-out), ``flags`` (``|``-joined ``size surrogate``, ``driven by one
      patient``) and, with :func:`radmap.tl.stability`, ``stability`` (fraction of
      bootstrap resamples passing with the same sign).
    - ``null``, ``size_check``, ``influence``, ``stability``: dicts summarising each trust
      check (``null["badge"]``: "13 links at q < 0.05; 0.4 expected by chance ...").
    - ``mutation_imaging``: ``mutation``, ``feature``, ``test``, ``statistic``, ``effect``,
      ``p``, ``q``, ``n``.
    - ``mutation_modules``: ``mutation``, ``module``, same statistics columns.
    - ``enrichment``: ``module``, ``collection``, ``term``, ``overlap``, ``set_size``,
      ``p``, ``q``, ``odds_ratio``, ``genes`` (``|``-joined).
    - ``survival``: ``kind`` (module / feature / mutation), ``variable``, ``test``
      (logrank / cox), ``statistic``, ``hr``, ``ci_low``, ``ci_high``, ``p``, ``q``,
      ``n``, ``events``.
    - ``matching``: ``source``, ``n_ids``, ``n_matched``, ``n_unmatched``,
      ``unmatched`` (``|``-joined, first 50).
    - ``gene_features``: list of feature IDs (column order of the varm arrays).
    - ``gene_n``: list of int, patients used per feature in the gene-level tests.
    - ``warnings``: list of str, everything reported to the user while building.
"""

from __future__ import annotations

FORMAT_VERSION = "radmap-bundle/1"
UNS_KEY = "radmap"

IMAGING_KEY = "imaging"
IMAGING_VALUES_KEY = "imaging_values"
IMAGING_ENCODING_KEY = "imaging_encoding"
EIGENGENES_KEY = "eigengenes"
INPUT_LAYER = "input"
UNASSIGNED = "unassigned"

GENE_EFFECT = "radmap_effect"
GENE_STATISTIC = "radmap_statistic"
GENE_P = "radmap_p"
GENE_Q = "radmap_q"
GENE_STAT_KEYS = (GENE_EFFECT, GENE_STATISTIC, GENE_P, GENE_Q)

FEATURE_TYPES = ("continuous", "ordinal", "binary", "categorical")
FEATURE_SOURCES = ("semantic", "radiomic", "clinical")

MUTANT = "Mutant"
WILDTYPE = "Wildtype"
SURVIVAL_TIME = "survival_time"
SURVIVAL_EVENT = "survival_event"

ASSOCIATION_COLUMNS = ("test", "statistic", "effect", "p", "q", "n")
