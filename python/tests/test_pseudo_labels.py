# SPDX-License-Identifier: Apache-2.0
"""zss.pseudo_labels, zss.multiscale_kmeans, zss.mask_fusion and zss.toy on the toy world."""
import numpy as np
import pytest

import zss


def test_toy_scenes(toy_batch):
    d = toy_batch
    assert d["images"].shape == (4, 64, 64, 3) and d["images"].dtype == np.float32
    assert d["tokens"].shape == (4, 16, 16, 32) and d["tokens"].dtype == np.float32
    assert d["text"].shape == (21, 32) and d["cls"].shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(d["tokens"], axis=-1), 1, rtol=1e-5)
    assert d["seen"].sum() == 16 and d["class_names"][0] == "background"
    # Unseen classes are -1 in the training labels and only there.
    unseen = ~d["seen"][np.maximum(d["labels"], 0)] & (d["labels"] >= 0)
    assert np.all(d["train_labels"][unseen] == -1)
    assert np.array_equal(d["train_labels"][~unseen], d["labels"][~unseen])
    # Scene i is a pure function of (seed, i): a later start gives the same scenes.
    later = zss.toy.scenes(2, first=2, seed=3, dim=32, dtype=np.float64)
    np.testing.assert_array_equal(later["labels"], d["labels"][2:])
    np.testing.assert_allclose(later["tokens"], d["tokens"][2:], rtol=1e-6, atol=1e-6)


def test_pseudo_labels_shapes_and_meaning(toy_batch):
    d = toy_batch
    r = zss.pseudo_labels(d["tokens"], d["seen_labels"], d["num_seen"], out_size=(64, 64))
    assert r.labels.shape == (4, 64, 64) and r.labels.dtype == np.int32
    assert r.fused_tokens.shape == (4, 16, 16) and r.token_labels.shape == (4, 16, 16)
    assert r.num_pseudo.dtype == np.int64 and r.scales is None and r.fusion is None
    for b in range(4):
        tl, ft = r.token_labels[b], r.fused_tokens[b]
        # Annotated tokens keep their seen label; ignored ones get a pseudo class or stay -1.
        np.testing.assert_array_equal(ft[tl >= 0], tl[tl >= 0])
        pseudo = ft[tl < 0]
        assert np.all((pseudo == -1) | (pseudo >= d["num_seen"]))
        assert set(np.unique(pseudo[pseudo >= 0]) - d["num_seen"]) == set(range(r.num_pseudo[b]))
        # 16 x 16 -> 64 x 64 by nearest neighbour is a 4 x 4 block repeat.
        np.testing.assert_array_equal(r.labels[b], np.kron(ft, np.ones((4, 4), np.int32)))
    # The toy scenes have unseen objects: some image gets pseudo classes.
    assert r.num_pseudo.sum() > 0


def test_label_dtypes_layouts_threads_agree(toy_batch):
    d = toy_batch
    ref = zss.pseudo_labels(d["tokens"], d["seen_labels"], d["num_seen"], threads=1)
    px = d["seen_labels"]
    u8 = np.where(px < 0, 255, px).astype(np.uint8)  # VOC-style 255 = ignored
    for labels in (px.astype(np.int64), u8, px.astype(np.int16)):
        r = zss.pseudo_labels(d["tokens"], labels, d["num_seen"], threads=2)
        np.testing.assert_array_equal(r.labels, ref.labels)
    # Non-contiguous tokens (a strided view) are copied; float64 tokens compute in float64.
    wide = np.concatenate([d["tokens"], d["tokens"]], axis=-1)[..., :32]
    assert not wide.flags.c_contiguous
    np.testing.assert_array_equal(
        zss.pseudo_labels(wide, px, d["num_seen"]).labels, ref.labels)
    r64 = zss.pseudo_labels(d["tokens"].astype(np.float64), px, d["num_seen"])
    assert r64.labels.shape == ref.labels.shape
    # Image b of a batch is the image alone (window seeds: no randomness).
    one = zss.pseudo_labels(d["tokens"][2:3], px[2:3], d["num_seen"])
    np.testing.assert_array_equal(one.labels[0], ref.labels[2])


def test_pipeline_equals_its_parts(toy_batch):
    """pseudo_labels = token labels + multiscale_kmeans + mask_fusion, composed from Python."""
    d = toy_batch
    r = zss.pseudo_labels(d["tokens"], d["seen_labels"], d["num_seen"], windows=[2, 4, 8],
                          keep_details=True)
    scales = zss.multiscale_kmeans(d["tokens"], windows=[2, 4, 8])
    assert len(scales) == 4 and len(scales[0]) == 3
    assert [s.window for s in scales[0]] == [2, 4, 8]
    assert scales[0][0].labels.shape == (16, 16) and scales[0][0].seeds == 64
    for b in range(4):
        for mine, theirs in zip(scales[b], r.scales[b]):
            np.testing.assert_array_equal(mine.labels, theirs.labels)
            np.testing.assert_array_equal(mine.centroids, theirs.centroids)
        fused = zss.mask_fusion(d["tokens"][b], r.token_labels[b], scales[b], d["num_seen"])
        np.testing.assert_array_equal(fused.labels, r.fused_tokens[b])
        assert fused.num_pseudo == r.num_pseudo[b] == r.fusion[b].num_pseudo
        # Plain cluster-id arrays work as scales too.
        plain = zss.mask_fusion(d["tokens"][b].reshape(256, 32), r.token_labels[b].ravel(),
                                [s.labels.ravel() for s in scales[b]], d["num_seen"])
        np.testing.assert_array_equal(plain.labels, fused.labels.ravel())
        kept = [m for m in fused.masks if m.fate == "kept"]
        assert len(kept) == fused.num_pseudo
        assert sorted(m.pseudo for m in kept) == list(range(fused.num_pseudo))
        assert sum(len(m.members) for m in fused.masks) == len(fused.clusters)
        assert fused.cluster_centroids.shape == (len(fused.clusters), 32)


def test_single_image_multiscale_and_kmeanspp():
    g = np.random.default_rng(0)
    tokens = g.normal(size=(8, 8, 5)).astype(np.float32)
    scales = zss.multiscale_kmeans(tokens, ks=[2, 3], seed=4)
    assert [s.window for s in scales] == [0, 0] and [s.seeds for s in scales] == [2, 3]
    # image 0 of a batch draws from the same streams as the single image.
    batch = zss.multiscale_kmeans(tokens[None], ks=[2, 3], seed=4)
    np.testing.assert_array_equal(batch[0][1].labels, scales[1].labels)


def test_multiscale_nested_seeds():
    g = np.random.default_rng(1)
    tokens = g.normal(size=(2, 8, 8, 5)).astype(np.float32)
    # Two scales with the largest K start from the same k-means++ pass: identical results; by
    # default they draw from different streams.
    nested = zss.multiscale_kmeans(tokens, ks=[3, 6, 6], seed=2, nested_seeds=True)
    plain = zss.multiscale_kmeans(tokens, ks=[3, 6, 6], seed=2)
    for b in range(2):
        np.testing.assert_array_equal(nested[b][1].labels, nested[b][2].labels)
        np.testing.assert_array_equal(nested[b][1].centroids, nested[b][2].centroids)
        assert [s.seeds for s in nested[b]] == [3, 6, 6]
    assert any(not np.array_equal(plain[b][1].labels, plain[b][2].labels) for b in range(2))
    explicit = zss.multiscale_kmeans(tokens, ks=[3, 6, 6], seed=2, nested_seeds=False)
    np.testing.assert_array_equal(explicit[1][0].labels, plain[1][0].labels)
    bad = tokens.copy()
    bad[1, 2, 3, 4] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        zss.multiscale_kmeans(bad, ks=[2, 3], nested_seeds=True, check_finite=False)
    with pytest.raises(ValueError, match="nested_seeds needs ks"):
        zss.multiscale_kmeans(tokens, windows=[2], nested_seeds=True)


def test_errors(toy_batch):
    d = toy_batch
    with pytest.raises(ValueError, match="labels has 3 images, tokens has 4"):
        zss.pseudo_labels(d["tokens"], d["seen_labels"][:3], d["num_seen"])
    with pytest.raises(ValueError, match=r"pseudo_labels_batch: image 0: token_labels: pixel .* "
                                         r"has label \d+, outside \[0, 2\)"):
        zss.pseudo_labels(d["tokens"], d["seen_labels"], 2)
    with pytest.raises(ValueError, match="must be an integer array"):
        zss.pseudo_labels(d["tokens"], d["seen_labels"].astype(np.float32), 16)
    with pytest.raises(ValueError, match=r"expected rank 4"):
        zss.pseudo_labels(d["tokens"][0], d["seen_labels"][0], 16)
    with pytest.raises(ValueError, match="out_size must be"):
        zss.pseudo_labels(d["tokens"], d["seen_labels"], 16, out_size=(4,))
    with pytest.raises(ValueError, match="window sizes must be >= 1"):
        zss.pseudo_labels(d["tokens"], d["seen_labels"], 16, windows=[0])
    bad = d["tokens"].copy()
    bad[1, 2, 3, 4] = np.inf
    with pytest.raises(ValueError, match="image 1: pseudo_labels: tokens contains a non-finite"):
        zss.pseudo_labels(bad, d["seen_labels"], 16)
    with pytest.raises(ValueError, match=r"scales\[0\] has 3 labels, expected one per token"):
        zss.mask_fusion(d["tokens"][0], d["seen_labels"][0, ::4, ::4], [np.zeros(3, int)], 16)
    with pytest.raises(ValueError, match="no scales to fuse"):
        zss.mask_fusion(d["tokens"][0], d["seen_labels"][0, ::4, ::4], [], 16)
