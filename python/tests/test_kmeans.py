# SPDX-License-Identifier: Apache-2.0
"""zss.kmeans and zss.kmeans_batch: shapes, dtypes, layouts, a NumPy Lloyd reference, errors."""
import numpy as np
import pytest

import zss
from conftest import blobs


def lloyd_reference(X, C, iters):
    """Textbook Lloyd from centroids C (float64): assign to the nearest (ties to the lowest
    index), then move each non-empty centroid to its points' mean."""
    C = C.astype(np.float64).copy()
    for _ in range(iters):
        dist = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
        labels = dist.argmin(1)
        new = C.copy()
        for k in range(len(C)):
            if (labels == k).any():
                new[k] = X[labels == k].mean(0)
        if np.array_equal(new, C):
            break
        C = new
    dist = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
    return C, dist.argmin(1), dist.min(1).sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes(dtype):
    X, _ = blobs(500, 12, 4, 0, dtype)
    r = zss.kmeans(X, 4, seed=1)
    assert r.centroids.shape == (4, 12) and r.centroids.dtype == dtype
    assert r.labels.shape == (500,) and r.labels.dtype == np.int32
    assert r.objective.dtype == np.float64 and r.objective.shape == (r.n_iter,)
    assert r.changed.dtype == np.int64 and r.changed[0] == 500
    assert r.converged and 1 <= r.n_iter <= 300
    assert np.all(np.diff(r.objective) <= 1e-9 * r.objective[0])
    # Results are C++ buffers handed over, not copies owned by NumPy.
    assert not r.centroids.flags.owndata and not r.labels.flags.owndata
    # The inertia is the exact sum of squared distances to the assigned centroids.
    exact = ((X.astype(np.float64) - r.centroids[r.labels].astype(np.float64)) ** 2).sum()
    assert r.inertia == pytest.approx(exact, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_given_init_matches_textbook_lloyd():
    X, _ = blobs(300, 8, 5, 2)
    C0 = X[[0, 50, 100, 150, 200]]
    r = zss.kmeans(X, init=C0, tol=0, max_iter=50)
    C, labels, inertia = lloyd_reference(X, C0, 50)
    np.testing.assert_array_equal(r.labels, labels)
    np.testing.assert_allclose(r.centroids, C, rtol=1e-12, atol=1e-12)
    assert r.inertia == pytest.approx(inertia, rel=1e-12)


def test_layouts_give_the_same_result():
    X, _ = blobs(400, 10, 3, 3)
    ref = zss.kmeans(X, 3, seed=5)
    # Fortran order, a transposed view, a strided slice, ints: copied, same numbers.
    for other in (np.asfortranarray(X), np.ascontiguousarray(X.T).T,
                  np.repeat(X, 2, axis=1)[:, ::2]):
        assert not other.flags.c_contiguous
        r = zss.kmeans(other, 3, seed=5)
        np.testing.assert_array_equal(r.labels, ref.labels)
        np.testing.assert_array_equal(r.centroids, ref.centroids)
    Xi = np.round(X * 100).astype(np.int64)
    ri = zss.kmeans(Xi, 3, seed=5)
    assert ri.centroids.dtype == np.float64  # integers are converted to float64
    np.testing.assert_array_equal(ri.labels, zss.kmeans(Xi.astype(np.float64), 3, seed=5).labels)


def test_token_grid_and_window_init():
    X, _ = blobs(64, 6, 3, 4, np.float32)
    grid = X.reshape(8, 8, 6)
    r = zss.kmeans(grid, init="window", window=4, empty="drop")
    assert r.labels.shape == (8, 8)
    flat = zss.kmeans(X, init="window", window=4, grid_h=8, grid_w=8, empty="drop")
    np.testing.assert_array_equal(r.labels.ravel(), flat.labels)
    np.testing.assert_array_equal(r.centroids, flat.centroids)
    assert r.centroids.shape[0] <= 4


def test_threads_and_spherical():
    X, _ = blobs(2000, 16, 6, 5, np.float32)
    a = zss.kmeans(X, 6, seed=2, threads=1, spherical=True)
    np.testing.assert_allclose(np.linalg.norm(a.centroids, axis=1), 1, rtol=1e-5)
    b = zss.kmeans(X, 6, seed=2, threads=1, spherical=True)
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_kmeans_batch_equals_single_fits():
    data = [blobs(200 + 30 * b, 8, 3, 10 + b, np.float32)[0] for b in range(5)]
    ks = [2, 3, 4, 3, 2]
    batch = zss.kmeans_batch(data, ks, seed=7, threads=2)
    for b, (X, k) in enumerate(zip(data, ks)):
        single = zss.kmeans(X, k, seed=7, stream=b, threads=1)
        np.testing.assert_array_equal(batch[b].centroids, single.centroids)
        np.testing.assert_array_equal(batch[b].labels, single.labels)
        assert batch[b].inertia == single.inertia
    # A B x N x D array: each problem a view.
    cube = np.stack([d[:200] for d in data])
    views = zss.kmeans_batch(cube, 3, seed=7, streams=[5, 6, 7, 8, 9])
    for b in range(5):
        single = zss.kmeans(cube[b], 3, seed=7, stream=5 + b, threads=1)
        np.testing.assert_array_equal(views[b].centroids, single.centroids)
    # Given centroids per problem.
    given = zss.kmeans_batch(data[:2], init=[data[0][:2], data[1][:3]])
    assert [g.centroids.shape[0] for g in given] == [2, 3]


def test_errors_are_value_errors_with_the_library_message():
    X, _ = blobs(7, 3, 2, 6)
    with pytest.raises(ValueError, match=r"^kmeans: k \(9\) exceeds the number of points \(7\)$"):
        zss.kmeans(X, 9)
    with pytest.raises(ValueError, match="k must be >= 0"):
        zss.kmeans(X, -1)
    with pytest.raises(ValueError, match="init must be"):
        zss.kmeans(X, 2, init="random")
    with pytest.raises(ValueError, match="is float64 but the call computes in float32"):
        zss.kmeans(X.astype(np.float32), init=X[:2])
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite value \(nan\) at \(3, 1\)"):
        zss.kmeans(Xn, 2)
    with pytest.raises(ValueError, match="expected rank 2 or 3"):
        zss.kmeans(X.ravel(), 2)
    with pytest.raises(ValueError, match="empty must be"):
        zss.kmeans(X, 2, empty="keep")
    with pytest.raises(ValueError, match="threads must be >= 0"):
        zss.kmeans(X, 2, threads=-1)
    with pytest.raises(ValueError, match="problem 1"):
        zss.kmeans_batch([X, X[:1]], 2)
    with pytest.raises(ValueError, match="k has 1 entries, expected one per problem"):
        zss.kmeans_batch([X, X], [2])
