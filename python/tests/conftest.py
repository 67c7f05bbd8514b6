# SPDX-License-Identifier: Apache-2.0
"""Shared data for the zss Python tests (run by ctest with PYTHONPATH=<build>/python)."""
import numpy as np
import pytest


def blobs(n, d, k, seed, dtype=np.float64, spread=0.3):
    """n points in k well-separated Gaussian blobs, rows L2-normalised (like CLIP tokens)."""
    g = np.random.default_rng(seed)
    centres = g.normal(size=(k, d))
    which = g.integers(0, k, size=n)
    X = centres[which] + spread * g.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(dtype), which


@pytest.fixture(scope="session")
def toy_batch():
    """Four toy scenes with the simulated teacher's tokens (16 x 16 x 32) and seen labels
    renumbered to 0..15 (unseen and clutter pixels -1)."""
    import zss

    d = zss.toy.scenes(4, seed=3, dim=32)
    seen_ids = np.flatnonzero(d["seen"])
    lut = np.full(22, -1, dtype=np.int32)  # index -1 (clutter) maps to -1 too
    lut[seen_ids] = np.arange(len(seen_ids), dtype=np.int32)
    d["seen_labels"] = lut[d["train_labels"]]
    d["num_seen"] = len(seen_ids)
    return d
