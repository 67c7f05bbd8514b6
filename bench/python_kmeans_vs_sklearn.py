#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""zss.kmeans against sklearn.cluster.KMeans in the same process, on the Lloyd workload of
bench/README.md (N 16384 x D 512 float32, K 64): the same initial centroids, Lloyd iterations
only (tol 0, fixed max_iter), time per iteration (wall and process CPU), median of --reps.

    OMP_NUM_THREADS=2 PYTHONPATH=build/python python3 bench/python_kmeans_vs_sklearn.py
"""
import argparse
import time

import numpy as np
from sklearn.cluster import KMeans

import zss

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=16384)
ap.add_argument("--d", type=int, default=512)
ap.add_argument("--k", type=int, default=64)
ap.add_argument("--iters", type=int, default=10)
ap.add_argument("--reps", type=int, default=5)
a = ap.parse_args()

g = np.random.default_rng(0)
X = g.normal(size=(a.n, a.d)).astype(np.float32)
C0 = X[g.choice(a.n, a.k, replace=False)].copy()


def timed(fit):
    walls, cpus = [], []
    for _ in range(a.reps):
        w, c = time.perf_counter(), time.process_time()
        iters = fit()
        walls.append((time.perf_counter() - w) / iters)
        cpus.append((time.process_time() - c) / iters)
    return np.median(walls) * 1e3, np.median(cpus) * 1e3


def fit_zss():
    return zss.kmeans(X, a.k, init=C0, max_iter=a.iters, tol=0.0).n_iter


def fit_sklearn():
    km = KMeans(a.k, init=C0, n_init=1, max_iter=a.iters, tol=0.0, algorithm="lloyd")
    return km.fit(X).n_iter_


fit_zss(), fit_sklearn()  # warm up (thread pools, pages)
z, s = timed(fit_zss), timed(fit_sklearn)
print(f"N {a.n} x D {a.d}, K {a.k}, {a.iters} Lloyd iterations, median of {a.reps}, ms/iteration")
print(f"zss.kmeans      wall {z[0]:8.2f}  cpu {z[1]:8.2f}")
print(f"sklearn KMeans  wall {s[0]:8.2f}  cpu {s[1]:8.2f}")
print(f"ratio zss/sklearn: wall {z[0] / s[0]:.2f}x  cpu {z[1] / s[1]:.2f}x")
