"""Can a link be trusted? Tumour size, single patients and resampling.

- :func:`size_check` re-tests every module x feature link with tumour size partialled out
  and flags links whose significance vanishes (``size surrogate``); the size feature's own
  links are the baseline.
- :func:`influence` finds, for every link, the patient whose removal changes the effect
  most, and flags links that lose significance without that one patient (``driven by one
  patient``). All leave-one-out maps come from sums over patients minus one patient's
  terms: no loop over patients or pairs.
- :func:`bootstrap_stability` (in :mod:`radmap.analysis.stability`) resamples patients.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from .validate import InputError

logger = logging.getLogger("radmap")

SIZE_FEATURES = (
    "original_shape_VoxelVolume",
    "original_shape_MeshVolume",
    "original_shape_Maximum3DDiameter",
)
"""PyRadiomics size features, in order of preference."""
SIZE_SURROGATE = "size surrogate"
ACQUISITION = "acquisition confounded"
ONE_PATIENT = "driven by one patient"
RANK_TESTS = frozenset({"spearman", "mannwhitney", "kruskal"})


def find_size_feature(imaging: pd.DataFrame, declared: str | None = None) -> str | None:
    """The tumour-size column: ``declared`` if given (must exist), else the first PyRadiomics
    size feature present (:data:`SIZE_FEATURES`), else None."""
    if declared:
        if declared not in imaging.columns:
            raise InputError(
                f"size feature {declared!r} is not an imaging feature; give one of the "
                "imaging columns or a clinical column"
            )
        return declared
    return next((name for name in SIZE_FEATURES if name in imaging.columns), None)


def _significant(q: np.ndarray, alpha: float) -> np.ndarray:
    return np.nan_to_num(q, nan=1.0) < alpha


def size_check(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    size: pd.Series,
    *,
    q: pd.DataFrame | None = None,
    alpha: float = 0.05,
    min_n: int = 10,
    families: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every link re-tested with tumour size partialled out, on ranks.

    The variables are ranked over the patients and size enters as its rank: continuous and
    ordinal features get a partial Spearman correlation, binary and categorical ones a rank
    ANCOVA (t / F test of the feature in rank(value) ~ rank(size) + feature), both from
    :func:`radmap.analysis.associate.associate` with the rank of size as covariate.

    Parameters
    ----------
    values
        Patients x variables (eigengenes).
    features
        Patients x imaging features; a column equal to ``size.name`` is not re-tested.
    types
        Feature -> continuous / ordinal / binary / categorical.
    size
        Tumour size per patient (numeric; an imaging feature or a clinical column).
    q
        Variables x features q-values of the unadjusted map (e.g. the bundle's); when None
        the map is recomputed on ranks without size.
    alpha
        Significance threshold on q (Benjamini–Hochberg over each map).
    min_n
        Fewest patients per test.
    families
        Feature -> multiple-testing family: the adjusted q is Benjamini–Hochberg within
        each family, as the map's (None: over the whole map).

    Returns
    -------
    One row per link: ``module``, ``feature``, ``size_feature``, ``effect_size_adjusted``,
    ``p_size_adjusted``, ``q_size_adjusted``, ``size_surrogate`` (significant without the
    adjustment, not with it), ``is_size_feature``.
    """
    numeric = pd.to_numeric(size, errors="coerce")
    if numeric.notna().sum() < min_n or numeric.nunique() < 3:
        raise InputError(
            f"size column {size.name!r} needs numeric values for at least {min_n} patients"
        )
    table = _adjusted_check(
        values,
        features,
        types,
        numeric.to_frame(size.name),
        q=q,
        alpha=alpha,
        min_n=min_n,
        families=families,
    )
    table.insert(2, "size_feature", str(size.name))
    return table.rename(
        columns={
            "effect_adjusted": "effect_size_adjusted",
            "p_adjusted": "p_size_adjusted",
            "q_adjusted": "q_size_adjusted",
            "lost": "size_surrogate",
            "is_covariate": "is_size_feature",
        }
    )


def acquisition_check(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    covariates: pd.DataFrame,
    *,
    q: pd.DataFrame | None = None,
    alpha: float = 0.05,
    min_n: int = 10,
    families: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every link re-tested with acquisition covariates (scanner, kernel, slice thickness...)
    partialled out, as :func:`size_check` (numeric covariates enter as ranks, categorical
    ones as indicator columns).

    Returns
    -------
    One row per link: ``module``, ``feature``, ``effect_acquisition_adjusted``,
    ``p_acquisition_adjusted``, ``q_acquisition_adjusted``, ``acquisition_confounded``
    (significant without the adjustment, not with it).
    """
    if covariates.shape[1] == 0:
        raise InputError("acquisition check: no covariate given")
    table = _adjusted_check(
        values, features, types, covariates, q=q, alpha=alpha, min_n=min_n, families=families
    )
    return table.drop(columns="is_covariate").rename(
        columns={
            "effect_adjusted": "effect_acquisition_adjusted",
            "p_adjusted": "p_acquisition_adjusted",
            "q_adjusted": "q_acquisition_adjusted",
            "lost": "acquisition_confounded",
        }
    )


def _adjusted_check(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    covariates: pd.DataFrame,
    *,
    q: pd.DataFrame | None,
    alpha: float,
    min_n: int,
    families: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The map on ranks with covariates partialled out, and the links it loses."""
    from .associate import associate, bh, is_plain_number

    patients = values.index.intersection(features.index, sort=False)
    ranked = values.loc[patients].rank()
    design = covariates.reindex(patients).copy()
    for name, column in design.items():
        if is_plain_number(column.dtype):
            design[name] = column.rank()
    tested = [c for c in features.columns if c not in covariates.columns]
    frame = features.loc[patients, tested]
    adjusted = associate(
        ranked, frame, types, covariates=design, min_n=min_n, binary="welch", categorical="anova"
    )
    if q is None:
        unadjusted = associate(ranked, frame, types, min_n=min_n, categorical="kruskal")
        q = unadjusted.q("all")
    q = q.reindex(index=values.columns, columns=features.columns)
    shape = {"index": values.columns, "columns": features.columns}
    p_adjusted = adjusted.p.reindex(**shape)
    family = np.asarray([str((families or {}).get(f, "map")) for f in features.columns])
    q_adjusted = pd.DataFrame(np.nan, **shape)
    for label in np.unique(family):
        columns = features.columns[family == label]
        q_adjusted[columns] = bh(p_adjusted[columns].to_numpy(dtype=float))
    before = _significant(q.to_numpy(dtype=float), alpha)
    after = _significant(q_adjusted.to_numpy(dtype=float), alpha)
    lost = before & ~after
    is_covariate = np.asarray(features.columns.isin(covariates.columns))
    lost[:, is_covariate] = False
    n_variables, n_features = q.shape
    return pd.DataFrame(
        {
            "module": np.repeat(values.columns.astype(str).to_numpy(dtype=object), n_features),
            "feature": np.tile(features.columns.astype(str).to_numpy(dtype=object), n_variables),
            "effect_adjusted": adjusted.effect.reindex(**shape).to_numpy(dtype=float).ravel(),
            "p_adjusted": p_adjusted.to_numpy(dtype=float).ravel(),
            "q_adjusted": q_adjusted.to_numpy(dtype=float).ravel(),
            "lost": lost.ravel(),
            "is_covariate": np.tile(is_covariate, n_variables),
        }
    )


# --------------------------------------------------------------------------------------------
# Leave-one-out influence
# --------------------------------------------------------------------------------------------


def _welch(sum_a, sumsq_a, n_a, sum_b, sumsq_b, n_b):
    """Welch t, df, Hedges' g (B minus A) from group sums (arrays broadcast)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a, mean_b = sum_a / n_a, sum_b / n_b
        var_a = (sumsq_a - sum_a * mean_a) / (n_a - 1)
        var_b = (sumsq_b - sum_b * mean_b) / (n_b - 1)
        vn_a, vn_b = var_a / n_a, var_b / n_b
        t = (mean_b - mean_a) / np.sqrt(vn_a + vn_b)
        df = (vn_a + vn_b) ** 2 / (vn_a**2 / (n_a - 1) + vn_b**2 / (n_b - 1))
        pooled = np.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
        g = (1 - 3 / (4 * (n_a + n_b) - 9)) * (mean_b - mean_a) / pooled
    return t, df, g


def _student(sum_a, sumsq_a, n_a, sum_b, sumsq_b, n_b):
    """Student's (pooled-variance) t, df, Hedges' g (B minus A) from group sums."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a, mean_b = sum_a / n_a, sum_b / n_b
        ss_a = sumsq_a - sum_a * mean_a
        ss_b = sumsq_b - sum_b * mean_b
        df = n_a + n_b - 2
        pooled = np.sqrt((ss_a + ss_b) / df)
        t = (mean_b - mean_a) / (pooled * np.sqrt(1 / n_a + 1 / n_b))
        g = (1 - 3 / (4 * (n_a + n_b) - 9)) * (mean_b - mean_a) / pooled
    return t, df * np.ones_like(t), g


def _two_group_test(test: str):
    return _student if test == "student" else _welch


def _mannwhitney_loo(
    y: np.ndarray, in_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rank-biserial effect and Mann–Whitney p of B against A, on all patients and without
    each one in turn (ranks recomputed exactly without the left-out patient).

    ``y``: patients x variables (raw or ranked: only the order matters); ``in_b``: bool per
    patient. Same p as ``scipy.stats.mannwhitneyu(b, a, method="asymptotic")``.
    """
    from .associate import _mannwhitney_kernel

    n, m = y.shape
    ranks = stats.rankdata(y, axis=0)
    n_b = int(in_b.sum())
    n_a = n - n_b
    total = n * (n + 1) * (2 * n + 1) / 6
    sumsq = (ranks**2).sum(0)
    ranksum_b = ranks[in_b].sum(0)
    _, effect, p = _mannwhitney_kernel(ranksum_b, n_a, n_b, sumsq)
    ties = 12.0 * (total - sumsq)  # sum over tie groups of t^3 - t
    tie_size = np.empty((n, m))
    above_b = np.empty((n, m))  # B patients above each patient, ties counted half
    for column in range(m):
        values = y[:, column]
        ordered = np.sort(values)
        ordered_b = np.sort(values[in_b])
        tie_size[:, column] = np.searchsorted(ordered, values, "right") - np.searchsorted(
            ordered, values, "left"
        )
        low = np.searchsorted(ordered_b, values, "left")
        high = np.searchsorted(ordered_b, values, "right")
        above_b[:, column] = (n_b - high) + 0.5 * (high - low)
    own = in_b[:, None].astype(float)
    ranksum_loo = ranksum_b[None, :] - own * ranks - (above_b - 0.5 * own)
    ties_loo = ties[None, :] - (tie_size**3 - tie_size) + ((tie_size - 1) ** 3 - (tie_size - 1))
    k = n - 1
    sumsq_loo = k * (k + 1) * (2 * k + 1) / 6 - ties_loo / 12
    _, effect_loo, p_loo = _mannwhitney_kernel(ranksum_loo, n_a - (1 - own), n_b - own, sumsq_loo)
    return effect, p, effect_loo, p_loo


def _correlation(s_x, s_xx, s_y, s_yy, s_xy, n):
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = s_xy - s_x * s_y / n
        r = np.clip(cov / np.sqrt((s_xx - s_x**2 / n) * (s_yy - s_y**2 / n)), -1, 1)
        df = n - 2
        t = r * np.sqrt((df / ((1 + r) * (1 - r))).clip(0))
        p = 2 * special.stdtr(df, -np.abs(t))
    return r, p


def _feature_sums(
    y: np.ndarray,
    column: pd.Series,
    kind: str,
    rank_scale: bool,
    min_group: int,
    test: str = "welch",
) -> tuple[np.ndarray, ...] | None:
    """Full-data and leave-one-out effect and p of one feature against all variables.

    A binary feature is tested as the map tests it (``test``): Student's t, Welch's t (both
    with Hedges' g) or Mann–Whitney (rank-biserial correlation).

    Returns ``(used, effect, p, effect_loo, p_loo)``: the patients used (bool, n), effect and
    p over variables (m,), and without each used patient (n_used, m); None when the feature
    cannot be tested.
    """
    n, m = y.shape
    if kind in ("continuous", "ordinal"):
        if isinstance(column.dtype, pd.CategoricalDtype):
            x = column.cat.codes.to_numpy().astype(float)
            x[x < 0] = np.nan
        else:
            x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        used = ~np.isnan(x)
        if used.sum() < 4 or np.nanmin(x) == np.nanmax(x):
            return None
        if rank_scale:
            x[used] = stats.rankdata(x[used])
        xu, yu = x[used], y[used]
        sums = (xu.sum(), (xu**2).sum(), yu.sum(0), (yu**2).sum(0), xu @ yu, used.sum())
        r, p = _correlation(*sums)
        s_x, s_xx, s_y, s_yy, s_xy, k = sums
        r_loo, p_loo = _correlation(
            s_x - xu[:, None],
            s_xx - xu[:, None] ** 2,
            s_y - yu,
            s_yy - yu**2,
            s_xy - xu[:, None] * yu,
            k - 1,
        )
        return used, r, p, r_loo, p_loo
    codes = pd.Categorical(column).codes
    sizes = np.bincount(codes[codes >= 0], minlength=int(codes.max(initial=-1)) + 1)
    large = np.flatnonzero(sizes >= min_group)
    used = np.isin(codes, large)
    if len(large) < 2:
        return None
    groups = np.searchsorted(large, codes[used])
    yu = y[used]
    indicator = np.eye(len(large))[groups]  # (n_used, k)
    g_n = indicator.sum(0)  # (k,)
    g_sum = indicator.T @ yu  # (k, m)
    g_sumsq = indicator.T @ yu**2
    own = indicator[:, :, None]  # (n_used, k, 1)
    loo_n = g_n[None, :, None] - own
    loo_sum = g_sum[None] - own * yu[:, None, :]
    loo_sumsq = g_sumsq[None] - own * (yu**2)[:, None, :]
    if kind == "binary" and len(large) == 2 and test == "mannwhitney":
        return used, *_mannwhitney_loo(yu, groups == 1)
    if kind == "binary" and len(large) == 2:
        two_groups = _two_group_test(test)
        t, df, g = two_groups(g_sum[0], g_sumsq[0], g_n[0], g_sum[1], g_sumsq[1], g_n[1])
        p = 2 * special.stdtr(df, -np.abs(t))
        t_l, df_l, g_l = two_groups(
            loo_sum[:, 0], loo_sumsq[:, 0], loo_n[:, 0], loo_sum[:, 1], loo_sumsq[:, 1], loo_n[:, 1]
        )
        return used, g, p, g_l, 2 * special.stdtr(df_l, -np.abs(t_l))

    def anova(counts, sums_, sumsqs):
        total_n = counts.sum(axis=-2)
        total = sums_.sum(axis=-2)
        with np.errstate(divide="ignore", invalid="ignore"):
            ss_total = sumsqs.sum(axis=-2) - total**2 / total_n
            ss_between = (sums_**2 / counts).sum(axis=-2) - total**2 / total_n
            eta2 = ss_between / ss_total
            k = len(large)
            if rank_scale:  # Kruskal–Wallis on the ranks: H = (N - 1) SSB / SST
                p_value = special.chdtrc(k - 1, (total_n - 1) * eta2)
            else:
                f = (ss_between / (k - 1)) / ((ss_total - ss_between) / (total_n - k))
                p_value = special.fdtrc(k - 1, total_n - k, f)
        return eta2, p_value

    eta2, p = anova(g_n[:, None], g_sum, g_sumsq)
    eta2_l, p_l = anova(loo_n, loo_sum, loo_sumsq)
    return used, eta2, p, eta2_l, p_l


def influence(
    values: pd.DataFrame,
    features: pd.DataFrame,
    types: Mapping[str, str],
    tests: Mapping[str, str],
    *,
    q: pd.DataFrame | None = None,
    alpha: float = 0.05,
    min_group: int = 3,
) -> pd.DataFrame:
    """Leave-one-out influence of every patient on every link.

    The map is recomputed without each patient in turn from sums over the patients minus that
    patient's terms. The test is the map's test of each feature: raw values for Pearson /
    Student / Welch / ANOVA, ranks over all patients for Spearman / Kruskal–Wallis (the other
    patients' ranks are not recomputed without the left-out one: each shifts by at most
    one); Mann–Whitney recomputes the ranks without each patient exactly. Effects are
    r / rho (continuous, ordinal), Hedges' g (binary, Student / Welch), the rank-biserial
    correlation (binary, Mann–Whitney) and eta-squared (= epsilon-squared on ranks,
    categorical).

    Parameters
    ----------
    values
        Patients x variables (eigengenes).
    features
        Patients x imaging features.
    types
        Feature -> continuous / ordinal / binary / categorical.
    tests
        Feature -> the map's test (``spearman``, ``pearson``, ``welch``, ...); features
        missing here use the rank scale.
    q
        Variables x features q-values of the map; when None they are Benjamini–Hochberg over
        the full-data p-values computed here.
    alpha
        Significance threshold on q.
    min_group
        Smallest group of a binary / categorical feature.

    Returns
    -------
    One row per link: ``module``, ``feature``, ``influence`` (largest |effect change|),
    ``influential_patient``, ``effect_without``, ``p_without`` (the largest p without one
    patient), ``one_patient`` (q < ``alpha`` in the map, but p > ``alpha`` without one
    patient).
    """
    from .associate import bh

    patients = values.index.intersection(features.index, sort=False)
    y_raw = values.loc[patients].to_numpy(dtype=float)
    if np.isnan(y_raw).any():
        raise InputError("influence: the variables (eigengenes) have missing values")
    y_ranks = stats.rankdata(y_raw, axis=0)
    n, m = y_raw.shape
    names = list(features.columns)
    shape = (m, len(names))
    effect, p_full = np.full(shape, np.nan), np.full(shape, np.nan)
    largest, who = np.full(shape, np.nan), np.full(shape, "", dtype=object)
    effect_without, p_without = np.full(shape, np.nan), np.full(shape, np.nan)
    patient_ids = np.asarray(patients.astype(str), dtype=object)
    for j, name in enumerate(names):
        test = tests.get(name, "spearman")
        rank_scale = test in RANK_TESTS
        result = _feature_sums(
            y_ranks if rank_scale else y_raw,
            features.loc[patients, name],
            types[name],
            rank_scale,
            min_group,
            test,
        )
        if result is None:
            continue
        used, e, p, e_loo, p_loo = result
        change = np.abs(np.nan_to_num(e_loo - e, nan=0.0))
        top = np.argmax(change, axis=0)
        columns = np.arange(m)
        effect[:, j], p_full[:, j] = e, p
        largest[:, j] = change[top, columns]
        who[:, j] = patient_ids[used][top]
        effect_without[:, j] = e_loo[top, columns]
        p_without[:, j] = np.nanmax(p_loo, axis=0)
    if q is None:
        q_values = bh(p_full)
    else:
        q_values = q.reindex(index=values.columns, columns=features.columns).to_numpy(float)
    # Not even nominally significant without one patient: a link at the edge of the BH
    # threshold is fragile anyway, one that falls from q < alpha to p > alpha is an artefact.
    one_patient = _significant(q_values, alpha) & (np.nan_to_num(p_without, nan=1.0) > alpha)
    return pd.DataFrame(
        {
            "module": np.repeat(values.columns.astype(str).to_numpy(dtype=object), len(names)),
            "feature": np.tile(np.asarray(names, dtype=str).astype(object), m),
            "influence": largest.ravel(),
            "influential_patient": who.ravel(),
            "effect_without": effect_without.ravel(),
            "p_without": p_without.ravel(),
            "one_patient": one_patient.ravel(),
        }
    )


def flags(*tables: pd.DataFrame) -> pd.Series:
    """``|``-joined trust flags per link from :func:`size_check` / :func:`influence` tables
    (aligned on ``module``, ``feature``)."""
    out: pd.Series | None = None
    for table in tables:
        keyed = table.set_index(["module", "feature"])
        labels = (
            ("size_surrogate", SIZE_SURROGATE),
            ("acquisition_confounded", ACQUISITION),
            ("one_patient", ONE_PATIENT),
        )
        for column, label in labels:
            if column in keyed:
                text = keyed[column].map({True: label, False: ""})
                out = text if out is None else (out + "|" + text.reindex(out.index).fillna(""))
    if out is None:
        return pd.Series(dtype=object)
    return out.str.strip("|").str.replace("||", "|", regex=False).rename("flags")


def add_trust_checks(
    adata,
    *,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    size_feature: str | None = None,
    acquisition: Sequence[str] = (),
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int = 2,
) -> list[str]:
    """Run the permutation null, the size check and the leave-one-out influence on a bundle.

    Reads ``obsm["eigengenes"]``, ``obsm["imaging"]`` and the ``features`` and
    ``associations`` tables; adds to ``associations`` the columns ``perm_p``, ``perm_q``,
    ``q_size_adjusted``, ``size_surrogate``, ``influence``, ``influential_patient``,
    ``p_without``, ``one_patient`` and ``flags``, and writes the summaries
    ``uns["radmap"]["null"]``, ``["size_check"]`` and ``["influence"]`` (the latter two
    only when they ran).

    Parameters
    ----------
    adata
        A bundle with modules and the module x feature map.
    n_permutations
        Permutations of the null (0 switches it off).
    alpha
        q threshold of a link.
    size_feature
        Imaging feature or clinical column holding tumour size; default: the first
        PyRadiomics size feature present (:data:`SIZE_FEATURES`); none present switches the
        size check off.
    acquisition
        Clinical columns or imaging features describing the acquisition (scanner, kernel,
        slice thickness); when given, every link is re-tested with them partialled out and
        links that lose significance are flagged ``acquisition confounded``.
    seed, scheduler, n_workers
        See :func:`radmap.analysis.null.permutation_null`.

    Returns
    -------
    Warnings for the user.
    """
    from . import bundle
    from .null import add_module_null, add_null_or_warn, feature_families

    uns = adata.uns[bundle.UNS_KEY]
    eigengenes = adata.obsm[bundle.EIGENGENES_KEY]
    imaging = adata.obsm[bundle.IMAGING_KEY]
    features = uns["features"]
    if eigengenes.shape[1] == 0 or uns["associations"].empty:
        return ["trust checks skipped: no modules"]
    warnings = add_null_or_warn(
        add_module_null,
        adata,
        n_permutations=n_permutations,
        alpha=alpha,
        seed=seed,
        scheduler=scheduler,
        n_workers=n_workers,
    )
    table = uns["associations"].copy()
    types = features["type"].astype(str).to_dict()
    key = ["module", "feature"]
    q = table.pivot(index="module", columns="feature", values="q").reindex(
        index=eigengenes.columns, columns=imaging.columns
    )
    families = feature_families(table)
    checks = []
    if size_feature and size_feature not in imaging.columns and size_feature in adata.obs:
        name, size_values = size_feature, adata.obs[size_feature]
    else:
        name = find_size_feature(imaging, size_feature)
        size_values = imaging[name] if name is not None else None
    if name is not None:
        size = size_check(
            eigengenes, imaging, types, size_values, q=q, alpha=alpha, families=families
        )
        uns["size_check"] = {
            "size_feature": name,
            "surrogates": int(size["size_surrogate"].sum()),
            "alpha": alpha,
        }
        checks.append(size)
        table = table.drop(columns=["q_size_adjusted", "size_surrogate"], errors="ignore").merge(
            size[[*key, "q_size_adjusted", "size_surrogate"]], on=key, how="left"
        )
    else:
        warnings.append(
            "no tumour-size feature (PyRadiomics original_shape_VoxelVolume / MeshVolume / "
            "Maximum3DDiameter) and none declared: the size check was skipped"
        )
    if acquisition:
        acquisition_frame = _columns(adata, imaging, acquisition)
        confounded = acquisition_check(
            eigengenes, imaging, types, acquisition_frame, q=q, alpha=alpha, families=families
        )
        uns["acquisition_check"] = {
            "covariates": ", ".join(map(str, acquisition)),
            "confounded": int(confounded["acquisition_confounded"].sum()),
            "alpha": alpha,
        }
        checks.append(confounded)
        columns = ["q_acquisition_adjusted", "acquisition_confounded"]
        table = table.drop(columns=columns, errors="ignore").merge(
            confounded[[*key, *columns]], on=key, how="left"
        )
    tests = features["test"].astype(str).to_dict() if "test" in features else {}
    loo = influence(eigengenes, imaging, types, tests, q=q, alpha=alpha)
    uns["influence"] = {"one_patient": int(loo["one_patient"].sum()), "alpha": alpha}
    checks.append(loo)
    columns = ["influence", "influential_patient", "p_without", "one_patient"]
    table = table.drop(columns=columns, errors="ignore").merge(
        loo[[*key, *columns]], on=key, how="left"
    )
    joined = flags(*checks).rename("flags").reset_index()
    table = table.drop(columns=["flags"], errors="ignore").merge(joined, on=key, how="left")
    for column in ("size_surrogate", "acquisition_confounded", "one_patient"):
        if column in table:
            table[column] = table[column].fillna(False).astype(bool)
    table["flags"] = table["flags"].fillna("").astype(str)
    uns["associations"] = table
    return warnings


def _columns(adata, imaging: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Named columns from the imaging table or the clinical table (``obs``)."""
    out = {}
    for name in names:
        if name in imaging.columns:
            out[name] = imaging[name]
        elif name in adata.obs.columns:
            out[name] = adata.obs[name]
        else:
            raise InputError(
                f"acquisition covariate {name!r} is neither an imaging feature nor a clinical "
                "column; give a column of one of them"
            )
    return pd.DataFrame(out, index=imaging.index)
