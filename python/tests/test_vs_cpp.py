# SPDX-License-Identifier: Apache-2.0
"""The bindings return what the C++ library returns: the command-line tools (zss-kmeans,
zss-pseudo-labels, built from the same headers with the same flags) are run on .npy files and
their outputs compared bitwise with the Python calls. ctest passes the tools' paths."""
import os
import subprocess

import numpy as np
import pytest

import zss
from conftest import blobs

KMEANS = os.environ["ZSS_KMEANS_TOOL"]
PSEUDO = os.environ["ZSS_PSEUDO_LABELS_TOOL"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_kmeans_equals_the_tool(tmp_path, dtype, threads):
    X, _ = blobs(3000, 24, 7, 21, dtype)
    np.save(tmp_path / "x.npy", X)
    out = subprocess.run([KMEANS, str(tmp_path / "x.npy"), "--k", "7", "--seed", "3",
                          "--threads", str(threads), "--labels", str(tmp_path / "l.npy"),
                          "--centroids", str(tmp_path / "c.npy")],
                         capture_output=True, text=True, check=True).stdout
    r = zss.kmeans(X, 7, seed=3, threads=threads)
    np.testing.assert_array_equal(r.labels, np.load(tmp_path / "l.npy"))
    c = np.load(tmp_path / "c.npy")
    assert c.dtype == dtype
    np.testing.assert_array_equal(r.centroids, c)
    assert f"iterations={r.n_iter} " in out and f"inertia={r.inertia:.9g} " in out


def test_window_kmeans_on_a_grid_equals_the_tool(tmp_path):
    X, _ = blobs(24 * 24, 16, 5, 22, np.float32)
    grid = X.reshape(24, 24, 16)
    np.save(tmp_path / "g.npy", grid)
    subprocess.run([KMEANS, str(tmp_path / "g.npy"), "--init", "window:4", "--spherical",
                    "--threads", "2", "--labels", str(tmp_path / "l.npy")],
                   capture_output=True, check=True)
    r = zss.kmeans(grid, init="window", window=4, spherical=True, threads=2)
    np.testing.assert_array_equal(r.labels, np.load(tmp_path / "l.npy"))


def test_pseudo_labels_equal_the_tool(tmp_path, toy_batch):
    d = toy_batch
    r = zss.pseudo_labels(d["tokens"], d["seen_labels"], d["num_seen"], windows=[2, 4, 8],
                          out_size=(40, 56), threads=2)
    for b in range(len(d["tokens"])):
        np.save(tmp_path / "t.npy", d["tokens"][b])
        np.save(tmp_path / "l.npy", d["seen_labels"][b])
        subprocess.run([PSEUDO, str(tmp_path / "t.npy"), str(tmp_path / "l.npy"), "--out",
                        str(tmp_path / "o.npy"), "--windows", "2", "--windows", "4",
                        "--windows", "8", "--num-seen", str(d["num_seen"]), "--size", "40,56",
                        "--threads", "1"], capture_output=True, text=True, check=True)
        np.testing.assert_array_equal(r.labels[b], np.load(tmp_path / "o.npy"))
