"""The radmap bundle: one AnnData object that carries a study from reading to the app.

This module is the single source of truth for the names of the slots the analysis writes
and the explorer reads. Every other module refers to these constants rather than spelling
the keys out again.

Layout
------
Format 2 (this one) differs from format 1 by: every patient with expression in ``obs`` (not
only those with imaging too), the imaging and clinical data of patients without expression
kept in ``uns``, a correction ``family`` and an ``effect_measure`` on every result row,
``q_analysis`` and the map-level gene q ``varm["radmap_q_map"]``, power and filtered-gene
tables, and multi-valued annotations expanded into one indicator per finding. Bundles of
format 1 are refused by :func:`analysis.io.load_bundle` with a message to re-run the analysis.

``obs``
    Patients with expression (index = normalised patient ID, str); their imaging may be
    missing. Clinical columns as read by
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
    ``radmap_p``, ``radmap_q`` (BH per feature over genes: "q within feature", valid for
    one feature at a time) and ``radmap_q_map`` (:data:`GENE_Q_MAP`: map-level q of the
    Benjamini–Bogomolov hierarchy over the whole map, used to rank or count pairs across
    features).
``uns["radmap"]``
    ``format_version`` (str, :data:`FORMAT_VERSION`), ``params`` (dict), ``provenance``
    (dict: inputs with SHA-256, package versions, seed, created, command) and tidy tables
    (pandas DataFrames, plain columns of str / float / int / bool only):

    - ``features``: index = feature ID; ``label``, ``type`` (continuous / ordinal / binary /
      categorical), ``source`` (semantic / radiomic / clinical), ``group`` (e.g. ``semantic``,
      ``original_shape``, ``wavelet-LLH_glcm``), ``levels`` (``|``-joined category order,
      "" for numeric), ``contrast`` (for binary: ``"B vs A"`` meaning positive effect = B
      higher), ``test``, ``n`` (patients with expression and a value), ``n_all`` (every
      patient with a value), ``order`` (how the levels were ordered: declared / numeric /
      vocabulary / reference first / categories / ""), ``parent`` (the multi-valued field an
      indicator comes from), ``effect_measure`` and ``detectable_effect`` (smallest effect of
      that measure the module map detects with 80 % power at its n and family size).
    - ``modules``: index = module name; ``size``, ``hub_genes`` (``|``-joined, best first),
      ``variance_explained``, ``top_pathway`` (only a term whose q passes 0.05),
      ``top_pathway_q``, ``label`` (that term with its q, else ``"hubs: A, B, C"``); with
      :func:`radmap.tl.stability` also ``jaccard_median`` / ``jaccard_min`` /
      ``jaccard_max`` / ``jaccard_background``.
    - ``soft_threshold``: the scale-free fit table (``power``, ``sft_r2``, ``slope``,
      ``mean_k``), with ``params["modules"]["power"]`` the chosen power.
    - ``associations``: module x feature, columns ``module``, ``feature``, ``test``,
      ``statistic``, ``effect``, ``effect_measure`` (rho, hedges_g, epsilon_squared, ...:
      :data:`analysis.associate.EFFECT_MEASURES`; only
      :data:`analysis.associate.SIGNED_MEASURES` have a sign), ``p``, ``q`` (BH within
      ``family``), ``family`` (default ``module map: <imaging source>``), ``q_analysis``
      (across the families, :func:`analysis.multitest.across_families`), ``n``; after the
      trust checks (:func:`radmap.tl.trust`) also ``perm_p`` / ``perm_q`` (permutation
      null), ``q_size_adjusted`` / ``size_surrogate`` (tumour size partialled out),
      ``influence`` / ``influential_patient`` / ``p_without`` / ``one_patient``
      (leave-one-out), ``flags`` (``|``-joined ``size surrogate``, ``driven by one
      patient``, ``acquisition confounded``) and, with :func:`radmap.tl.stability`,
      ``stability`` (fraction of bootstrap resamples passing with the same sign).
    - ``null``, ``size_check``, ``acquisition_check``, ``influence``, ``stability``: dicts
      summarising each trust check (``null["badge"]``: "13 links at q < 0.05; 0.4 expected
      by chance ..."; ``null["adjusted_for"]`` when the map was adjusted for covariates).
    - ``gene_null``: dict, the gene map's permutation null (``observed_links`` at map-level
      q, ``expected_false_links``, ``empirical_fdr``, ``map_p``, ``badge``, ...);
      ``gene_null_features``: ``feature``, ``observed`` (genes at q within the feature),
      ``expected`` (mean over permutations), ``n_genes``.
    - ``mutation_imaging``: ``mutation``, ``feature``, ``test``, ``statistic``, ``effect``,
      ``effect_measure``, ``p``, ``q``, ``family`` (``<mutation> x imaging: <source>``),
      ``q_analysis``, ``n``; on every patient with imaging and a known status.
    - ``mutation_modules``: ``mutation``, ``module``, same statistics columns (family
      ``<mutation> x module``).
    - ``enrichment``: ``module``, ``collection``, ``term``, ``overlap``, ``set_size``,
      ``p``, ``q``, ``odds_ratio``, ``genes`` (``|``-joined).
    - ``survival``: ``kind`` (module / feature / mutation), ``variable``, ``test``
      (logrank / cox / cox_trend), ``statistic``, ``hr``, ``ci_low``, ``ci_high``,
      ``effect_measure``, ``p``, ``q``, ``family``, ``n``, ``events``.
    - ``matching``: ``source``, ``n_ids``, ``n_matched``, ``n_unmatched``,
      ``unmatched`` (``|``-joined, first 50).
    - ``gene_features``: list of feature IDs (column order of the varm arrays).
    - ``gene_n``: list of int, patients used per feature in the gene-level tests.
    - ``gene_map``: per feature: ``family``, ``simes_p``, ``simes_q``, ``selected``,
      ``discoveries`` (pairs with map-level q <= 0.05).
    - ``power``: ``analysis``, ``family``, ``feature_type``, ``measure``, ``n``,
      ``family_size``, ``detectable_effect`` (80 % power, :mod:`analysis.power`).
    - ``analysis_patients``: ``analysis``, ``needs``, ``n_patients``: which patients each
      analysis used.
    - ``filtered_genes``: ``gene``, ``reason``: input genes not in the bundle, and why.
    - ``no_expression_imaging`` / ``no_expression_clinical``: imaging (same columns and
      dtypes as ``obsm["imaging"]``) and clinical data of patients without expression; on
      disk the imaging is stored compactly like ``obsm["imaging"]``.
      :func:`analysis.io.all_patients` joins them to the bundle's patients.
    - ``multi_valued``: patients x multi-valued annotation fields (``|``-joined findings),
      for display; the analyses test their per-finding indicators.
    - ``warnings``: list of str, everything reported to the user while building.
"""

from __future__ import annotations

FORMAT_VERSION = "radmap-bundle/2"
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
GENE_Q_MAP = "radmap_q_map"
GENE_STAT_KEYS = (GENE_EFFECT, GENE_STATISTIC, GENE_P, GENE_Q)

NO_EXPRESSION_IMAGING = "no_expression_imaging"
NO_EXPRESSION_IMAGING_VALUES = "no_expression_imaging_values"
NO_EXPRESSION_IDS = "no_expression_ids"
NO_EXPRESSION_CLINICAL = "no_expression_clinical"
MULTI_VALUED = "multi_valued"

FEATURE_TYPES = ("continuous", "ordinal", "binary", "categorical")
FEATURE_SOURCES = ("semantic", "radiomic", "clinical")

MUTANT = "Mutant"
WILDTYPE = "Wildtype"
SURVIVAL_TIME = "survival_time"
SURVIVAL_EVENT = "survival_event"

ASSOCIATION_COLUMNS = ("test", "statistic", "effect", "p", "q", "n")
