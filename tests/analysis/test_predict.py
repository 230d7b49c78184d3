"""Virtual biopsy (radmap.analysis.predict): planted truth, noise, leakage, determinism."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from radmap.analysis import predict as P
from radmap.analysis.bundle import FORMAT_VERSION
from radmap.analysis.datasets import (
    ATTENUATION_PROBABILITY,
    EGFR_MUTANT_PROBABILITY,
    MUTATION_FEATURE,
    synthetic,
)
from radmap.analysis.validate import InputError
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radmap.cli import main
from tests.explorer.conftest import write_toy_bundle

FAST = {"outer_splits": 3, "inner_splits": 2, "n_bootstrap": 300}


def bundle_of(cohort, *, label: np.ndarray | None = None) -> ad.AnnData:
    """A minimal bundle (obs, obsm["imaging"], uns features) of a synthetic cohort."""
    features = pd.DataFrame(
        {"source": pd.Series(cohort.feature_sources), "type": pd.Series(cohort.feature_types)}
    )
    obs = cohort.clinical.copy()
    for mutation in ("EGFR", "KRAS"):
        known = obs[mutation].where(obs[mutation].isin(["Mutant", "Wildtype"]))
        obs[mutation] = pd.Categorical(known, categories=["Mutant", "Wildtype"])
    if label is not None:
        obs["LABEL"] = pd.Categorical(
            np.where(label == 1, "Mutant", "Wildtype"), categories=["Mutant", "Wildtype"]
        )
    return ad.AnnData(
        X=np.zeros((len(obs), 1), dtype=np.float32),
        obs=obs,
        obsm={"imaging": cohort.imaging},
        uns={"radmap": {"format_version": FORMAT_VERSION, "features": features}},
    )


def planted_egfr_auc() -> float:
    """Population AUC of the true EGFR probability (a function of attenuation only)."""
    levels = MUTATION_FEATURE[2]
    share = np.array(ATTENUATION_PROBABILITY)
    risk = np.array([EGFR_MUTANT_PROBABILITY[level] for level in levels])
    positive = share * risk / (share * risk).sum()
    negative = share * (1 - risk) / (share * (1 - risk)).sum()
    order = np.argsort(risk)
    positive, negative = positive[order], negative[order]
    return float(
        sum(positive[i] * negative[:i].sum() for i in range(len(levels)))
        + 0.5 * (positive * negative).sum()
    )


def test_planted_auc_recovered_within_ci():
    cohort = synthetic(n_patients=400, n_genes=60, n_modules=2, n_features=12, seed=3)
    adata = bundle_of(cohort)
    result = P.predict(
        adata,
        targets=["EGFR"],
        feature_sets_=("semantic", "constant"),
        params=P.PredictParams(outer_repeats=1, n_permutations=0, **FAST),
    )
    row = result.summary.set_index("feature_set").loc["semantic"]
    planted = planted_egfr_auc()
    assert 0.7 < planted < 0.8
    assert row["auc_low"] <= planted <= row["auc_high"]
    assert row["auc_low"] > 0.6  # the signal is found, not just a wide interval
    top = result.importance[result.importance["feature_set"] == "semantic"].iloc[0]
    assert top["feature"].split(" = ")[0] == "attenuation"
    assert top["selected_fraction"] == 1.0
    constant = result.summary.set_index("feature_set").loc["constant"]
    assert constant["auc"] == 0.5 and constant["permutation_p"] == 1.0
    stored = P.stored_result(adata)
    pd.testing.assert_frame_equal(stored.summary, result.summary, check_index_type=False)
    assert stored.params["outer_splits"] == FAST["outer_splits"]


def noise_bundle(n_patients: int = 120, n_features: int = 60, seed: int = 5):
    cohort = synthetic(
        n_patients=n_patients, n_genes=60, n_modules=2, n_features=n_features, seed=seed
    )
    rng = np.random.default_rng(seed)
    label = (rng.random(n_patients) < 0.4).astype(int)
    return bundle_of(cohort, label=label), cohort, label


def test_noise_gives_chance_auc_and_large_permutation_p():
    adata, _, _ = noise_bundle()
    result = P.predict(
        adata,
        targets=["LABEL"],
        feature_sets_=("radiomic",),
        params=P.PredictParams(outer_repeats=2, n_permutations=9, max_features=10, **FAST),
    )
    row = result.summary.iloc[0]
    assert row["auc_low"] <= 0.5 <= row["auc_high"]
    assert abs(row["auc"] - 0.5) < 0.12
    assert row["permutation_p"] > 0.1
    null = result.permutations["statistic"]
    assert len(null) == 9 and abs(null.mean() - 0.5) < 0.1


def test_selection_outside_folds_leaks_but_the_procedure_does_not():
    adata, cohort, label = noise_bundle(n_patients=100, n_features=300, seed=11)
    radiomic = [c for c, s in cohort.feature_sources.items() if s == "radiomic"]
    X = cohort.imaging[radiomic].to_numpy(float)
    # The leaky pipeline: the 10 best features chosen on every patient, then cross-validated.
    imputed = SimpleImputer().fit_transform(X)
    chosen = SelectKBest(f_classif, k=10).fit(imputed, label).get_support()
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    leaky = cross_val_predict(
        make_pipeline(StandardScaler(), LogisticRegression()),
        imputed[:, chosen],
        label,
        cv=folds,
        method="predict_proba",
    )[:, 1]
    leaky_auc = roc_auc_score(label, leaky)
    honest = P.predict(
        adata,
        targets=["LABEL"],
        feature_sets_=("radiomic",),
        params=P.PredictParams(
            outer_splits=5, inner_splits=3, outer_repeats=1, n_permutations=0, max_features=10
        ),
    ).summary.iloc[0]
    assert leaky_auc > 0.75
    assert honest["auc_low"] <= 0.5 <= honest["auc_high"]
    assert leaky_auc > honest["auc_high"]


def test_deterministic_for_a_seed():
    cohort = synthetic(n_patients=90, n_genes=60, n_modules=2, n_features=20, seed=2)
    params = P.PredictParams(outer_repeats=1, n_permutations=2, **FAST)

    def run(seed):
        return P.predict(
            bundle_of(cohort),
            targets=["EGFR"],
            feature_sets_=("semantic",),
            params=P.PredictParams(**{**params.__dict__, "seed": seed}),
        )

    first, second, other = run(0), run(0), run(1)
    pd.testing.assert_frame_equal(first.summary, second.summary)
    pd.testing.assert_frame_equal(first.permutations, second.permutations)
    pd.testing.assert_frame_equal(first.importance, second.importance)
    assert not first.summary["auc"].equals(other.summary["auc"])


@pytest.mark.slow
def test_parallel_permutations_give_the_same_null():
    cohort = synthetic(n_patients=80, n_genes=60, n_modules=2, n_features=12, seed=9)
    params = P.PredictParams(outer_repeats=1, n_permutations=4, **FAST)

    def null(jobs):
        return P.predict(
            bundle_of(cohort),
            targets=["EGFR"],
            feature_sets_=("semantic",),
            params=P.PredictParams(**{**params.__dict__, "n_jobs": jobs}),
        ).permutations["statistic"]

    serial = null(1)
    # Chunks of permutations go to workers in other splits; the nulls are the same.
    pd.testing.assert_series_equal(serial, null(2))
    pd.testing.assert_series_equal(serial, null(3))


def test_kernels_match_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)) * [1, 2, 3, 4, 5, 6] + 3
    X[rng.random(X.shape) < 0.1] = np.nan
    reference = make_pipeline(SimpleImputer(), StandardScaler()).fit(X[:30])
    ours = P.MeanImputeScale().fit(X[:30])
    np.testing.assert_allclose(ours.transform(X[30:]), reference.transform(X[30:]), atol=1e-12)
    y = (rng.random(40) < 0.3).astype(float)
    scores = rng.standard_normal((3, 40)).round(1)  # ties included
    expected = [roc_auc_score(y, s) for s in scores]
    np.testing.assert_allclose(P._rank_auc(scores, np.broadcast_to(y, scores.shape)), expected)
    filled = np.nan_to_num(X)
    f_order = np.argsort(-f_classif(filled, y)[0])
    assert list(np.argsort(-P.abs_correlation(filled, y))) == list(f_order)


def test_continuous_module_target_and_cut():
    cohort = synthetic(n_patients=150, n_genes=60, n_modules=2, n_features=10, seed=4)
    adata = bundle_of(cohort)
    # The planted module 1 drives the continuous entropy feature with correlation 0.5.
    adata.obsm["eigengenes"] = cohort.truth["latent"]
    params = P.PredictParams(outer_repeats=1, n_permutations=0, **FAST)
    result = P.predict(
        adata, targets=["planted_1"], feature_sets_=("radiomic", "constant"), params=params
    )
    row = result.summary.set_index("feature_set").loc["radiomic"]
    assert row["kind"] == "continuous"
    assert 0.1 < row["r2"] < 0.45 and row["spearman"] > 0.3
    assert result.summary.set_index("feature_set").loc["constant"]["r2"] < 0.01
    high_low = P.predict(
        adata,
        targets=["planted_1"],
        feature_sets_=("radiomic",),
        params=P.PredictParams(**{**params.__dict__, "cut": 0.5}),
    ).summary.iloc[0]
    assert high_low["kind"] == "binary" and high_low["auc"] > 0.65


def test_external_validation_with_frozen_model():
    development = bundle_of(
        synthetic(n_patients=300, n_genes=60, n_modules=2, n_features=12, seed=6)
    )
    external_cohort = synthetic(n_patients=200, n_genes=60, n_modules=2, n_features=12, seed=7)
    external = bundle_of(external_cohort)
    external.obsm["imaging"] = external.obsm["imaging"].drop(columns=["lobe"])
    result = P.predict(
        development,
        targets=["EGFR"],
        feature_sets_=("semantic", "constant"),
        params=P.PredictParams(outer_repeats=1, n_permutations=0, **FAST),
        validate=external,
    )
    rows = result.summary.set_index(["cohort", "feature_set"])
    ext = rows.loc[("external", "semantic")]
    assert ext["n"] == external.obs["EGFR"].notna().sum()
    assert ext["auc_low"] <= planted_egfr_auc() <= ext["auc_high"]
    assert rows.loc[("external", "constant")]["auc"] == 0.5
    assert any("1 of" in w and "absent" in w for w in result.warnings)
    assert set(result.roc["cohort"]) == {"development", "external"}


def test_inputs_are_checked():
    adata = bundle_of(synthetic(n_patients=60, n_genes=60, n_modules=2, n_features=8, seed=1))
    with pytest.raises(InputError, match="unknown target 'BRAF'"):
        P.predict(adata, targets=["BRAF"])
    with pytest.raises(InputError, match="unknown feature set"):
        P.predict(adata, targets=["EGFR"], feature_sets_=("genes",))
    with pytest.raises(InputError, match="too few patients"):
        P.predict(adata, targets=["EGFR"], params=P.PredictParams(outer_splits=10, inner_splits=5))
    with pytest.raises(InputError, match="threshold"):
        P.predict(adata, targets=["EGFR"], params=P.PredictParams(threshold=1.5))
    with pytest.raises(InputError, match="size feature"):
        P.predict(
            adata,
            targets=["EGFR"],
            size_feature="no_such_column",
            params=P.PredictParams(outer_splits=2, inner_splits=2),
        )


@pytest.mark.slow
def test_cli_writes_sidecar_and_leaves_bundle_alone(tmp_path, capsys):
    path = write_toy_bundle(tmp_path / "bundle.h5ad")
    external = write_toy_bundle(tmp_path / "external.h5ad", seed=5)
    before = path.read_bytes()
    code = main(
        [
            "predict",
            str(path),
            "--target",
            "EGFR",
            "--outer-splits",
            "3",
            "--outer-repeats",
            "1",
            "--inner-splits",
            "2",
            "--permutations",
            "2",
            "--clinical-column",
            "age",
            "--batch",
            "stage",
            "--seed",
            "3",
            "--validate",
            str(external),
        ]
    )
    assert code == 0
    assert path.read_bytes() == before
    result, header = P.read_predictions(P.sidecar_path(path))
    assert header["bundle_sha256"] and result.params["n_permutations"] == 2
    assert result.params["batch"] == "stage"
    assert set(result.summary["feature_set"]) >= {"semantic", "radiomic", "clinical", "constant"}
    assert set(result.summary["cohort"]) == {"development", "external"}
    assert result.params["validation_bundle"] == "external.h5ad"
    out = capsys.readouterr().out
    assert "For EGFR, the best imaging set" in out
    assert main(["predict", str(path), "--target", "NOPE"]) == 2
    assert "unknown target" in capsys.readouterr().err
    broken = tmp_path / "broken.predict.json"
    broken.write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="not a radmap-predict"):
        P.read_predictions(broken)


def test_verdict_says_whether_imaging_beats_baselines():
    summary = pd.DataFrame(
        [
            {
                "target": "EGFR",
                "cohort": "development",
                "feature_set": name,
                "auc": auc,
                "auc_low": auc - 0.1,
                "auc_high": auc + 0.1,
                "permutation_p": 0.01,
                "best_baseline": "clinical",
                "difference": auc - 0.6,
                "difference_low": low,
                "difference_high": high,
            }
            for name, auc, low, high in (
                ("semantic", 0.8, 0.05, 0.35),
                ("clinical", 0.6, 0.0, 0.0),
                ("constant", 0.5, -0.2, -0.05),
            )
        ]
    )
    text = P.verdict(summary, "EGFR")
    assert "AUC 0.80" in text and "0.60 for clinical" in text and "+0.20" in text
    assert text.endswith("Imaging beats the baselines.")
    summary.loc[0, "difference_low"] = -0.05
    assert "does not clearly beat" in P.verdict(summary, "EGFR")


def _split_elastic_net_reference(X, y, C, l1_ratio):
    """scikit-learn's elastic-net logistic objective minimised by scipy's L-BFGS-B on the
    split form w = u - v (u, v >= 0), to a tight tolerance: the reference of the solver."""
    from scipy.optimize import minimize

    n, p = X.shape

    def objective(theta):
        u, v, b = theta[:p], theta[p : 2 * p], theta[-1]
        w = u - v
        eta = X @ w + b
        loss = np.logaddexp(0, eta) - y * eta
        residual = 1 / (1 + np.exp(-eta)) - y
        value = C * loss.sum() + (1 - l1_ratio) / 2 * w @ w + l1_ratio * (u + v).sum()
        grad_w = C * X.T @ residual + (1 - l1_ratio) * w
        grad = np.concatenate([grad_w + l1_ratio, -grad_w + l1_ratio, [C * residual.sum()]])
        return value, grad

    bounds = [(0, None)] * (2 * p) + [(None, None)]
    fit = minimize(
        objective,
        np.zeros(2 * p + 1),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 20000},
    )
    return fit.x[:p] - fit.x[p : 2 * p], fit.x[-1]


def test_elastic_net_path_matches_references():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((70, 8))
    X -= X.mean(axis=0)
    y = (rng.random(70) < 1 / (1 + np.exp(-(X[:, 0] - 0.5 * X[:, 1] - 1)))).astype(float)
    coef, intercept = P.logistic_enet_path(X, y, P.LOGISTIC_C, tol=1e-9, max_iter=50_000)
    for position, C in enumerate(P.LOGISTIC_C):
        w, b = _split_elastic_net_reference(X, y, C, P.L1_RATIO)
        np.testing.assert_allclose(coef[position], w, atol=2e-4)
        assert abs(intercept[position] - b) < 2e-4
    # The strongest penalty zeroes every coefficient; the intercept is then the log-odds.
    assert np.all(coef[0] == 0) and abs(intercept[0] - np.log(y.mean() / (1 - y.mean()))) < 1e-6
    # Pure ridge: scikit-learn's lbfgs solves the same objective.
    ridge, ridge_intercept = P.logistic_enet_path(X, y, [0.3], l1_ratio=0.0, tol=1e-9)
    reference = LogisticRegression(C=0.3, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ridge[0], reference.coef_[0], atol=1e-4)
    assert abs(ridge_intercept[0] - reference.intercept_[0]) < 1e-4
    fitted = P.ElasticNetLogistic(C=0.2).fit(X, y)
    np.testing.assert_allclose(fitted.coef_[0], coef[2], atol=1e-4)
    np.testing.assert_allclose(
        fitted.predict_proba(X)[:, 1], 1 / (1 + np.exp(-(X @ coef[2] + intercept[2]))), atol=1e-4
    )
    # Continuous targets: enet_path at every alpha equals ElasticNet fitted alpha by alpha.
    from sklearn.linear_model import ElasticNet

    target = X[:, 0] * 2 + rng.standard_normal(70) + 3
    coefs, intercepts = P.linear_enet_path(X, target, P.ELASTICNET_ALPHA)
    for position, alpha in enumerate(P.ELASTICNET_ALPHA):
        model = ElasticNet(alpha=alpha, l1_ratio=P.L1_RATIO, tol=1e-10).fit(X, target)
        np.testing.assert_allclose(coefs[position], model.coef_, atol=1e-4)
        assert abs(intercepts[position] - model.intercept_) < 1e-4


def test_correlation_filter_chooses_as_select_k_best():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 30))
    X[:, 5] = X[:, 4]  # a tie
    y = (X[:, 4] + rng.standard_normal(40) > 0).astype(float)
    ours = P.CorrelationFilter(7).fit(X, y)
    reference = SelectKBest(P.abs_correlation, k=7).fit(X, y)
    assert list(ours.get_support()) == list(reference.get_support())
    np.testing.assert_array_equal(ours.transform(X), reference.transform(X))


def test_batch_harmoniser_learns_from_training_patients_only():
    rng = np.random.default_rng(3)
    batch = np.repeat([0.0, 1.0, 2.0], 20)
    features = rng.standard_normal((60, 3)) * [1, 2, 3] + batch[:, None] * 5
    features[4, 0] = np.nan
    X = np.column_stack([batch, features])
    train = np.arange(60) % 4 != 0
    mask = np.array([True, True, False])
    harmoniser = P.BatchHarmoniser(mask).fit(X[train])
    out = harmoniser.transform(X)
    # By hand, from the training patients: pooled and per-batch mean / sd.
    frame = pd.DataFrame(features[train][:, :2]).assign(batch=batch[train])
    pooled_mean, pooled_sd = frame[[0, 1]].mean(), frame[[0, 1]].std(ddof=0)
    for code in (0.0, 1.0, 2.0):
        part = frame[frame["batch"] == code][[0, 1]]
        rows = batch == code
        expected = (features[rows][:, :2] - part.mean().to_numpy()) / part.std(
            ddof=0
        ).to_numpy() * pooled_sd.to_numpy() + pooled_mean.to_numpy()
        np.testing.assert_allclose(out[rows][:, :2], expected, atol=1e-10)
    np.testing.assert_array_equal(out[:, 2], features[:, 2])  # not declared: untouched
    assert np.isnan(out[4, 0])  # missing stays missing (imputed later, in the fold)
    # The test patients' values play no part: change them and the fit is the same.
    changed = X.copy()
    changed[~train, 1:] += 100.0
    np.testing.assert_array_equal(P.BatchHarmoniser(mask).fit(changed[train]).transform(X), out)
    # A batch unseen in training (or unknown) is left as it is.
    other = np.column_stack([[7.0, np.nan], features[:2]])
    np.testing.assert_array_equal(harmoniser.transform(other), features[:2])


def leaky_combat_with_outcome(X, batch, label):
    """Location / scale harmonisation per batch fitted on every patient with the outcome as
    a protected covariate (as harmonisation tools invite), before cross-validation: the
    outcome's fitted effect is put back into every patient's features, test patients'
    included."""
    levels = np.unique(batch)
    onehot = (batch[:, None] == levels).astype(float)
    beta, *_ = np.linalg.lstsq(np.column_stack([onehot, label]), X, rcond=None)
    fitted, effect = onehot @ beta[:-1], label[:, None] * beta[-1]
    residual = X - fitted - effect
    harmonised = np.empty_like(X)
    for level in levels:
        rows = batch == level
        scaled = residual[rows] / residual[rows].std(axis=0) * residual.std(axis=0)
        harmonised[rows] = scaled + fitted.mean(axis=0) + effect[rows]
    return harmonised


def test_harmonisation_inside_folds_does_not_leak_where_combat_on_everyone_does():
    rng = np.random.default_rng(0)
    n, p = 120, 200
    batch = np.repeat(np.arange(4), n // 4)
    scale = np.array([0.5, 1.0, 2.0, 4.0])[batch][:, None]
    X = rng.standard_normal((n, p)) * scale + rng.normal(0, 2, (4, p))[batch]
    label = (rng.random(n) < 0.4).astype(int)  # noise: nothing predicts it
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    leaky = cross_val_predict(
        make_pipeline(StandardScaler(), LogisticRegression(C=0.05)),
        leaky_combat_with_outcome(X, batch, label.astype(float)),
        label,
        cv=folds,
        method="predict_proba",
    )[:, 1]
    leaky_auc = roc_auc_score(label, leaky)
    names = [f"original_firstorder_f{j}" for j in range(p)]
    obs = pd.DataFrame(
        {
            "LABEL": pd.Categorical(
                np.where(label == 1, "Mutant", "Wildtype"), categories=["Mutant", "Wildtype"]
            ),
            "scanner": pd.Categorical([f"scanner {b}" for b in batch]),
        },
        index=[f"P{i}" for i in range(n)],
    )
    adata = ad.AnnData(
        X=np.zeros((n, 1), dtype=np.float32),
        obs=obs,
        obsm={"imaging": pd.DataFrame(X, index=obs.index, columns=names)},
        uns={
            "radmap": {
                "format_version": FORMAT_VERSION,
                "features": pd.DataFrame({"source": "radiomic", "type": "continuous"}, index=names),
            }
        },
    )
    params = P.PredictParams(
        outer_splits=5, inner_splits=3, outer_repeats=1, n_permutations=0, max_features=20
    )
    honest = P.predict(
        adata,
        targets=["LABEL"],
        feature_sets_=("radiomic",),
        params=P.PredictParams(**{**params.__dict__, "batch": "scanner"}),
    ).summary.iloc[0]
    # The labels leak into the harmonised features: the score separates the classes (here
    # in reverse, the outcome effect being put back at the pooled scale), far beyond chance.
    assert abs(leaky_auc - 0.5) > 0.3
    assert max(leaky_auc, 1 - leaky_auc) > honest["auc_high"]
    assert honest["auc_low"] <= 0.5 <= honest["auc_high"]
    with pytest.raises(InputError, match="batch column 'site'"):
        P.predict(
            adata,
            targets=["LABEL"],
            feature_sets_=("radiomic",),
            params=P.PredictParams(**{**params.__dict__, "batch": "site"}),
        )


def test_roc_points_are_scikit_learns_roc_curve():
    """The ROC band's curves: the same points as ``sklearn.metrics.roc_curve``, ties and
    collinear runs included."""
    from radmap.analysis.predict import _roc_points
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(8)
    for n, levels in ((30, 4), (60, 60), (200, 7)):
        labels = (rng.random(n) < 0.4).astype(float)
        scores = rng.integers(0, levels, n) / levels + 0.3 * labels
        fpr, tpr, _ = roc_curve(labels, scores)
        got = _roc_points(labels, scores)
        np.testing.assert_array_equal(got[0], fpr)
        np.testing.assert_array_equal(got[1], tpr)
