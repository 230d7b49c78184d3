"""Tests for analysis.modules: kernels against references, module recovery on planted data."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
from radmap.analysis import modules
from radmap.analysis.bundle import EIGENGENES_KEY, UNASSIGNED
from radmap.analysis.validate import InputError
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score

SIZES = (80, 60, 50, 40)


def planted(
    *,
    n_patients: int = 120,
    n_genes: int = 400,
    sizes: tuple[int, ...] = SIZES,
    seed: int = 0,
    loading: tuple[float, float] = (0.6, 0.9),
    same_factor: tuple[int, int] | None = None,
) -> tuple[anndata.AnnData, np.ndarray]:
    """Patients x genes on log scale: modules driven by latent factors, the rest noise.

    Returns the AnnData and the planted module of each gene (0 = unstructured). With
    ``same_factor=(a, b)`` modules a and b (1-based) follow the same latent factor.
    """
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_patients, len(sizes)))
    if same_factor is not None:
        factors[:, same_factor[1] - 1] = factors[:, same_factor[0] - 1]
    values = rng.standard_normal((n_patients, n_genes))
    truth = np.zeros(n_genes, dtype=int)
    start = 0
    for module, size in enumerate(sizes, start=1):
        genes = np.arange(start, start + size)
        weight = rng.uniform(*loading, size)
        noise = rng.standard_normal((n_patients, size))
        values[:, genes] = weight * factors[:, [module - 1]] + np.sqrt(1 - weight**2) * noise
        truth[genes] = module
        start += size
    values = values * rng.uniform(0.5, 2.0, n_genes) + rng.uniform(2.0, 8.0, n_genes)
    order = rng.permutation(n_genes)
    adata = anndata.AnnData(
        X=values[:, order].astype(np.float32),
        obs=pd.DataFrame(index=[f"P{i:03d}" for i in range(n_patients)]),
        var=pd.DataFrame(index=[f"G{i:03d}" for i in range(n_genes)]),
    )
    return adata, truth[order]


@pytest.fixture(scope="module")
def toy() -> tuple[anndata.AnnData, np.ndarray]:
    return planted()


@pytest.fixture(scope="module")
def wgcna_run(toy):
    adata, truth = toy
    adata = adata.copy()
    return adata, truth, modules.find_modules(adata, method="wgcna")


@pytest.fixture(scope="module")
def leiden_run(toy):
    adata, truth = toy
    adata = adata.copy()
    return adata, truth, modules.find_modules(adata, method="leiden", seed=3)


def assignment(adata: anndata.AnnData) -> np.ndarray:
    return adata.var["module"].astype(str).to_numpy()


# ---------------------------------------------------------------------------------------
# module recovery


@pytest.mark.parametrize("run", ["wgcna_run", "leiden_run"])
def test_recovers_planted_modules(run, request):
    adata, truth, result = request.getfixturevalue(run)
    found = assignment(adata)
    in_module = truth > 0
    assert adjusted_rand_score(truth[in_module], found[in_module]) >= 0.8
    assert len(result["modules"]) == len(SIZES)
    # unstructured genes are left out, planted genes are not
    assert np.mean(found[~in_module] == UNASSIGNED) >= 0.9
    assert np.mean(found[in_module] == UNASSIGNED) <= 0.1


def test_wgcna_power_and_table(wgcna_run):
    _, _, result = wgcna_run
    table = result["soft_threshold"]
    assert list(table["power"]) == list(modules.POWERS)
    assert result["power"] == result["params"]["power"]
    reached = table.loc[table["sft_r2"] >= modules.SCALE_FREE_R2, "power"]
    expected = reached.min() if len(reached) else table.loc[table["sft_r2"].idxmax(), "power"]
    assert result["power"] == expected
    # connectivity falls as the power rises
    assert np.all(np.diff(table["mean_k"]) < 0)


def test_leiden_has_no_soft_threshold(leiden_run):
    _, _, result = leiden_run
    assert result["power"] is None
    assert result["soft_threshold"].empty
    assert result["params"]["seed"] == 3


def test_bundle_slots(wgcna_run):
    adata, truth, result = wgcna_run
    var = adata.var
    table = result["modules"]
    names = list(table.index)
    assert names == [f"M{i}" for i in range(1, len(names) + 1)]
    assert list(var["module"].cat.categories) == [*names, UNASSIGNED]
    counts = var["module"].value_counts()
    assert [counts[name] for name in names] == list(table["size"])
    assert list(table["size"]) == sorted(table["size"], reverse=True)
    assert var["in_network"].all()
    assert np.isnan(var.loc[var["module"] == UNASSIGNED, "kME"]).all()
    eigengenes = adata.obsm[EIGENGENES_KEY]
    assert isinstance(eigengenes, pd.DataFrame)
    assert list(eigengenes.columns) == names
    assert eigengenes.index.equals(adata.obs_names)
    np.testing.assert_allclose(eigengenes.mean(), 0, atol=1e-9)
    np.testing.assert_allclose(eigengenes.std(ddof=1), 1, atol=1e-9)
    for name in names:
        members = var[var["module"] == name]
        hubs = members[members["is_hub"]]
        assert len(hubs) == min(10, len(members))
        assert hubs["kME"].min() >= members.loc[~members["is_hub"], "kME"].max()
        listed = table.loc[name, "hub_genes"].split("|")
        assert listed == list(hubs.sort_values("kME", ascending=False).index)
        assert 0 < table.loc[name, "variance_explained"] < 1


def test_kme_of_planted_members_is_high(wgcna_run):
    adata, truth, _ = wgcna_run
    var = adata.var
    members = var["module"] != UNASSIGNED
    assert var.loc[members, "kME"].median() > 0.7
    assert var.loc[members, "kME"].min() >= modules.MIN_KME_TO_STAY
    # kME is the plain correlation with the gene's own eigengene
    gene = var.index[members][0]
    eigengene = adata.obsm[EIGENGENES_KEY][var.loc[gene, "module"]]
    expected = np.corrcoef(adata[:, gene].X.ravel(), eigengene)[0, 1]
    assert var.loc[gene, "kME"] == pytest.approx(expected, abs=1e-6)


def test_only_highly_variable_genes_enter_the_network(toy):
    adata, truth = toy
    adata = adata.copy()
    rng = np.random.default_rng(1)
    adata.var["highly_variable"] = rng.random(adata.n_vars) < 0.8
    modules.find_modules(adata, method="wgcna")
    outside = ~adata.var["highly_variable"]
    assert (adata.var["in_network"] == adata.var["highly_variable"]).all()
    assert (adata.var.loc[outside, "module"] == UNASSIGNED).all()
    assert adata.var.loc[outside, "kME"].isna().all()
    assert not adata.var.loc[outside, "is_hub"].any()


@pytest.mark.parametrize("method", ["wgcna", "leiden"])
def test_same_seed_same_modules(toy, method):
    adata, _ = toy
    first, second = adata.copy(), adata.copy()
    modules.find_modules(first, method=method, seed=7)
    modules.find_modules(second, method=method, seed=7)
    np.testing.assert_array_equal(assignment(first), assignment(second))
    pd.testing.assert_frame_equal(first.obsm[EIGENGENES_KEY], second.obsm[EIGENGENES_KEY])


def test_modules_of_one_factor_are_merged():
    adata, truth = planted(sizes=(80, 60, 50), same_factor=(1, 2), loading=(0.55, 0.85))
    merged_truth = np.where(truth == 2, 1, truth)
    result = modules.find_modules(adata, method="wgcna")
    found = assignment(adata)
    in_module = truth > 0
    assert adjusted_rand_score(merged_truth[in_module], found[in_module]) >= 0.8
    assert len(result["modules"]) == 2


def test_merge_close_modules_kernel(toy):
    adata, truth = toy
    X = np.asarray(adata.X, dtype=float)
    split = truth.copy()
    first = np.flatnonzero(truth == 1)
    split[first[: len(first) // 2]] = 9  # one planted module cut in two halves
    merged = modules.merge_close_modules(X, split, cut_height=0.25)
    assert adjusted_rand_score(truth, merged) == pytest.approx(1.0)
    assert len(np.unique(merged[merged > 0])) == len(SIZES)
    # distinct factors stay apart even with a generous cut, merging off keeps the split
    untouched = modules.merge_close_modules(X, split, cut_height=0)
    assert len(np.unique(untouched[untouched > 0])) == len(SIZES) + 1
    apart = modules.merge_close_modules(X, truth, cut_height=0.6)
    assert adjusted_rand_score(truth, apart) == pytest.approx(1.0)


def test_module_check_drops_noise_and_keeps_members(toy):
    adata, truth = toy
    X = np.asarray(adata.X, dtype=float)
    labels = truth.copy()
    noise = np.flatnonzero(truth == 0)
    labels[noise[:5]] = 1  # unrelated genes put into module 1
    labels[noise[5:65]] = 9  # a "module" of pure noise
    checked = modules.check_modules(X, labels, min_module_size=30)
    assert (checked[noise[:65]] == 0).all()
    np.testing.assert_array_equal(checked[truth > 0], truth[truth > 0])


def test_reassign_moves_misplaced_genes(toy):
    adata, truth = toy
    X = np.asarray(adata.X, dtype=float)
    labels = truth.copy()
    misplaced = np.flatnonzero(truth == 1)[:4]
    labels[misplaced] = 2
    moved = modules.reassign_genes(X, labels, min_module_size=30)
    np.testing.assert_array_equal(moved, truth)


def test_too_few_network_genes_gives_no_modules(toy):
    adata, _ = toy
    small = adata[:, :20].copy()
    result = modules.find_modules(small, min_module_size=30)
    assert result["modules"].empty
    assert (small.var["module"] == UNASSIGNED).all()
    assert small.obsm[EIGENGENES_KEY].shape == (small.n_obs, 0)
    assert any("fewer than min_module_size" in message for message in result["warnings"])


@pytest.mark.parametrize(
    "options",
    [
        {"method": "kmeans"},
        {"network": "hybrid"},
        {"power": 0},
        {"min_module_size": 1},
        {"deep_split": 5},
        {"merge_cut_height": -0.1},
    ],
)
def test_bad_options_raise(toy, options):
    adata, _ = toy
    with pytest.raises(InputError):
        modules.find_modules(adata.copy(), **options)


def test_missing_values_raise(toy):
    adata, _ = toy
    broken = adata.copy()
    broken.X[0, 0] = np.nan
    with pytest.raises(InputError, match="missing"):
        modules.find_modules(broken)


# ---------------------------------------------------------------------------------------
# eigengenes, metagenes, kME


def test_eigengenes_are_the_sign_aligned_first_pc(toy):
    adata, truth = toy
    X = np.asarray(adata.X, dtype=float)
    labels = np.where(truth > 0, np.char.add("M", truth.astype(str)), UNASSIGNED)
    eig = modules.eigengenes(X, labels, index=adata.obs_names)
    meta = modules.metagenes(X, labels, index=adata.obs_names)
    assert list(eig.columns) == ["M1", "M2", "M3", "M4"]
    assert list(meta.columns) == list(eig.columns)
    for name in eig.columns:
        block = X[:, labels == name]
        z = (block - block.mean(axis=0)) / block.std(axis=0, ddof=1)
        u, s, _ = np.linalg.svd(z, full_matrices=False)
        pc = u[:, 0] / u[:, 0].std(ddof=1)
        # the first principal component up to sign, signed like the metagene
        assert min(np.abs(eig[name] - pc).max(), np.abs(eig[name] + pc).max()) < 1e-8
        assert np.corrcoef(eig[name], meta[name])[0, 1] > 0
        np.testing.assert_allclose(meta[name], z.mean(axis=1))
    # flipping the data flips the eigengenes: the sign follows the metagene, not the SVD
    flipped = modules.eigengenes(-X, labels)
    np.testing.assert_allclose(flipped.to_numpy(), -eig.to_numpy(), atol=1e-8)


def test_eigengene_sign_follows_majority_of_genes():
    rng = np.random.default_rng(5)
    factor = rng.standard_normal(60)
    signs = np.array([1] * 15 + [-1] * 5)
    X = factor[:, None] * signs + 0.3 * rng.standard_normal((60, 20))
    eig = modules.eigengenes(X, ["A"] * 20)
    assert np.corrcoef(eig["A"], factor)[0, 1] > 0.9


def test_module_kme_matches_numpy():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 12))
    E = pd.DataFrame(rng.standard_normal((30, 3)), columns=["M1", "M2", "M3"])
    kme = modules.module_kme(X, E)
    expected = np.corrcoef(X.T, E.to_numpy().T)[:12, 12:]
    np.testing.assert_allclose(kme, expected, atol=1e-12)
    with pytest.raises(InputError):
        modules.module_kme(X[:10], E)


# ---------------------------------------------------------------------------------------
# WGCNA kernels against direct computations


def reference_scale_free_fit(k: np.ndarray, n_breaks: int = 10) -> tuple[float, float]:
    """WGCNA scaleFreeFitIndex written out with pandas.cut (R's cut: range widened 0.1%)."""
    bins = pd.cut(k, n_breaks)
    grouped = pd.Series(k).groupby(bins, observed=False)
    dk = grouped.mean().to_numpy()
    p_dk = grouped.size().to_numpy() / len(k)
    breaks = np.linspace(k.min(), k.max(), n_breaks + 1)
    mids = (breaks[1:] + breaks[:-1]) / 2
    dk = np.where(np.isnan(dk) | (dk == 0), mids, dk)
    x, y = np.log10(dk), np.log10(p_dk + 1e-9)
    slope = np.polyfit(x, y, 1)[0]
    return np.corrcoef(x, y)[0, 1] ** 2, slope


@pytest.mark.parametrize("network", ["signed", "unsigned"])
def test_soft_threshold_matches_direct_computation(network):
    rng = np.random.default_rng(4)
    latent = rng.standard_normal((40, 3))
    X = latent @ rng.standard_normal((3, 60)) + rng.standard_normal((40, 60))
    table = modules.soft_threshold(modules.gene_correlation(X), network=network)
    cor = np.corrcoef(X.T)
    for row in table.itertuples():
        base = (1 + cor) / 2 if network == "signed" else np.abs(cor)
        k = (base**row.power).sum(axis=0) - 1
        r2, slope = reference_scale_free_fit(k)
        assert row.slope == pytest.approx(slope, rel=1e-4, abs=1e-6)
        assert row.sft_r2 == pytest.approx(-np.sign(slope) * r2, rel=1e-4, abs=1e-6)
        assert row.mean_k == pytest.approx(k.mean(), rel=1e-5)
        assert row.max_k == pytest.approx(k.max(), rel=1e-5)


def test_scale_free_fit_with_empty_bins():
    k = np.array([1.0, 1.1, 1.2, 1.3, 2.0, 9.5, 10.0])
    r2, slope = modules.scale_free_fit(k)
    expected_r2, expected_slope = reference_scale_free_fit(k)
    assert r2 == pytest.approx(expected_r2)
    assert slope == pytest.approx(expected_slope)


def test_pick_power():
    table = pd.DataFrame({"power": [1, 2, 3, 4], "sft_r2": [-0.5, 0.86, 0.9, 0.7]})
    assert modules.pick_power(table) == (2, True)
    table["sft_r2"] = [0.1, 0.5, 0.4, 0.3]
    assert modules.pick_power(table) == (2, False)


def test_pick_power_passes_over_fits_at_dense_connectivity():
    table = pd.DataFrame(
        {
            "power": [2, 4, 6, 8],
            "sft_r2": [0.5, 0.9, 0.87, 0.95],
            "mean_k": [900.0, 335.0, 80.0, 20.0],
        }
    )
    assert modules.pick_power(table) == (6, True)
    assert modules.pick_power(table, max_mean_k=10.0) == (8, False)
    table["mean_k"] = 1000.0
    assert modules.pick_power(table) == (8, False)


def test_tom_matches_definition():
    rng = np.random.default_rng(6)
    cor = np.corrcoef(rng.standard_normal((12, 9)).T)
    adj = ((1 + cor) / 2) ** 3
    tom = modules.tom_similarity(adj)
    n = len(adj)
    a = adj.copy()
    np.fill_diagonal(a, 0)
    k = a.sum(axis=1)
    for i in range(n):
        for j in range(n):
            if i == j:
                assert tom[i, j] == 1
                continue
            shared = sum(a[i, u] * a[u, j] for u in range(n) if u not in (i, j))
            expected = (shared + a[i, j]) / (min(k[i], k[j]) + 1 - a[i, j])
            assert tom[i, j] == pytest.approx(expected, rel=1e-5)
    assert adj[0, 0] == 1  # the input is left alone


def tom_tree(seed: int, n_genes: int = 300) -> tuple[np.ndarray, np.ndarray]:
    adata, _ = planted(n_genes=n_genes, sizes=(70, 50, 40, 25, 15), seed=seed, loading=(0.3, 0.8))
    dissimilarity = 1 - modules.tom_similarity(
        modules.adjacency(modules.gene_correlation(adata.X), 6)
    )
    np.fill_diagonal(dissimilarity, 0)
    dissimilarity = dissimilarity.astype(float)
    return linkage(squareform(dissimilarity, checks=False), method="average"), dissimilarity


@pytest.mark.parametrize(
    ("seed", "min_size", "deep_split", "pam"),
    [(0, 20, 2, True), (0, 20, 2, False), (1, 10, 1, True), (2, 30, 3, True), (3, 15, 0, False)],
)
def test_cutree_hybrid_matches_dynamictreecut(monkeypatch, seed, min_size, deep_split, pam):
    from dynamicTreeCut import cutreeHybrid

    # the PyPI port predates numpy 2 (np.in1d) and only runs with this alias
    monkeypatch.setattr(np, "in1d", np.isin, raising=False)
    tree, dissimilarity = tom_tree(seed)
    ours = modules.cutree_hybrid(
        tree,
        dissimilarity,
        min_cluster_size=min_size,
        deep_split=deep_split,
        cut_height=0.995,
        pam_stage=pam,
    )
    theirs = cutreeHybrid(
        tree,
        dissimilarity,
        cutHeight=0.995,
        minClusterSize=min_size,
        deepSplit=deep_split,
        pamStage=pam,
        verbose=0,
    )["labels"]
    assert ours.max() >= 2
    np.testing.assert_array_equal(ours, theirs)


def test_cutree_hybrid_labels_ordered_by_size():
    tree, dissimilarity = tom_tree(4)
    labels = modules.cutree_hybrid(tree, dissimilarity, min_cluster_size=10, deep_split=2)
    sizes = np.bincount(labels)[1:]
    assert len(sizes) >= 2
    assert np.all(np.diff(sizes) <= 0)
    assert sizes.min() >= 10


@pytest.mark.parametrize("n_genes", [5, 300, 1100])
def test_condensed_tom_distance_is_one_minus_tom(n_genes):
    rng = np.random.default_rng(n_genes)
    X = rng.standard_normal((40, n_genes)) + rng.standard_normal((40, 1))
    adj = modules.adjacency(modules.gene_correlation(X), 6)
    square = 1 - modules.tom_similarity(adj).astype(float)
    condensed = modules.tom_distance(adj.copy())
    assert condensed.dtype == np.float32
    # the blocked product sums in another order than syrk: a few float32 ulps apart
    np.testing.assert_allclose(condensed, squareform(square, checks=False), rtol=0, atol=1e-6)


def test_gene_correlation_of_a_constant_gene_is_zero():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 4))
    X[:, 2] = 5.0
    cor = modules.gene_correlation(X)
    expected = np.corrcoef(X[:, [0, 1, 3]].T)
    np.testing.assert_allclose(cor[np.ix_([0, 1, 3], [0, 1, 3])], expected, atol=1e-6)
    assert np.all(cor[2, [0, 1, 3]] == 0) and np.all(cor[[0, 1, 3], 2] == 0)
    assert cor[2, 2] == 1


def test_average_linkage_matches_scipy():
    _, dissimilarity = tom_tree(5)
    condensed = squareform(dissimilarity, checks=False).astype(np.float32)
    ours = modules.average_linkage(condensed)
    scipys = linkage(condensed, method="average")
    np.testing.assert_array_equal(ours[:, [0, 1, 3]], scipys[:, [0, 1, 3]])
    np.testing.assert_allclose(ours[:, 2], scipys[:, 2], rtol=1e-12)
    assert condensed.dtype == np.float32  # the input is left alone
    with pytest.raises(InputError, match="finite"):
        modules.average_linkage(np.array([0.1, np.nan, 0.3]))


@pytest.mark.parametrize("n_genes", [300, 1100])
def test_tom_spilled_to_disk_equals_tom_in_memory(monkeypatch, n_genes):
    rng = np.random.default_rng(n_genes)
    X = rng.standard_normal((40, n_genes)) + rng.standard_normal((40, 1))
    adj = modules.adjacency(modules.gene_correlation(X), 6)
    laps = []
    expected_tree, expected = modules._tom_and_linkage([adj.copy()], laps.append)
    np.testing.assert_array_equal(expected, modules.tom_distance(adj.copy()))
    monkeypatch.setattr(modules, "SPILL_BYTES", 0)
    monkeypatch.setattr(modules, "_SPILL_CHUNK", 1000)  # several chunks read back
    holder = [adj.copy()]
    tree, condensed = modules._tom_and_linkage(holder, laps.append)
    assert holder == []  # the caller's reference was taken out
    np.testing.assert_array_equal(condensed, expected)
    assert condensed.dtype == np.float32
    np.testing.assert_array_equal(tree, expected_tree)
    assert laps == ["tom", "linkage"] * 2


@pytest.mark.parametrize("pam", [True, False])
def test_cutree_hybrid_on_condensed_distances_equals_square(pam):
    tree, dissimilarity = tom_tree(2)
    square = modules.cutree_hybrid(tree, dissimilarity, min_cluster_size=15, pam_stage=pam)
    condensed = modules.cutree_hybrid(
        tree, squareform(dissimilarity, checks=False), min_cluster_size=15, pam_stage=pam
    )
    assert square.max() >= 2
    np.testing.assert_array_equal(condensed, square)
    with pytest.raises(InputError, match="condensed"):
        modules.cutree_hybrid(tree, np.zeros(7), min_cluster_size=15)


def test_blockwise_detection_recovers_planted_modules(wgcna_run, toy):
    adata, truth = toy
    adata = adata.copy()
    result = modules.find_modules(adata, method="wgcna", max_block_size=150)
    params = result["params"]
    assert len(params["block_sizes"]) >= 3 and max(params["block_sizes"]) <= 150
    assert sum(params["block_sizes"]) == adata.n_vars
    assert params["detection"].startswith(f"blockwise: {len(params['block_sizes'])} blocks")
    assert params["max_block_size_chosen_by"] == "user"
    found = assignment(adata)
    in_module = truth > 0
    assert adjusted_rand_score(truth[in_module], found[in_module]) >= 0.8
    assert len(result["modules"]) == len(SIZES)
    assert np.mean(found[~in_module] == UNASSIGNED) >= 0.9
    # the same power as in one block: the soft-threshold scan runs over all genes either way
    _, _, one_block = wgcna_run
    assert result["power"] == one_block["power"]
    assert one_block["params"]["detection"] == f"one block of {adata.n_vars} genes"
    assert one_block["params"]["max_block_size_chosen_by"] == "available memory"


def test_streamed_soft_threshold_equals_the_in_memory_one(toy):
    adata, _ = toy
    X = np.asarray(adata.X)
    for network in modules.NETWORKS:
        streamed = modules._streamed_soft_threshold(X, network=network)
        whole = modules.soft_threshold(modules.gene_correlation(X), network=network)
        pd.testing.assert_frame_equal(streamed, whole, check_exact=False, rtol=1e-5)


def test_gene_blocks_partition_the_genes_and_keep_modules_together(toy):
    adata, truth = toy
    blocks = modules.gene_blocks(np.asarray(adata.X), max_block_size=150, seed=0)
    assert all(len(block) <= 150 for block in blocks)
    np.testing.assert_array_equal(np.sort(np.concatenate(blocks)), np.arange(adata.n_vars))
    for module in range(1, len(SIZES) + 1):
        members = np.flatnonzero(truth == module)
        largest_share = max(np.isin(members, block).mean() for block in blocks)
        assert largest_share >= 0.9
    assert len(modules.gene_blocks(np.asarray(adata.X), max_block_size=adata.n_vars)) == 1


def test_max_genes_in_memory():
    assert modules.max_genes_in_memory(8e9) == 37_000  # 4 bytes per gene pair, 70 % of memory
    assert modules.max_genes_in_memory(1e6) == 1_000
    with pytest.raises(InputError, match="max_block_size"):
        modules.find_modules(planted(n_genes=300)[0], max_block_size=50)


def test_written_slots_survive_h5ad(tmp_path, wgcna_run, toy):
    adata, _, _ = wgcna_run
    path = tmp_path / "bundle.h5ad"
    adata.write_h5ad(path)
    back = anndata.read_h5ad(path)
    pd.testing.assert_frame_equal(back.var, adata.var)
    pd.testing.assert_frame_equal(back.obsm[EIGENGENES_KEY], adata.obsm[EIGENGENES_KEY])
    empty = toy[0][:, :20].copy()
    modules.find_modules(empty)
    empty.write_h5ad(tmp_path / "empty.h5ad")
    assert anndata.read_h5ad(tmp_path / "empty.h5ad").obsm[EIGENGENES_KEY].shape[1] == 0
