#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Call overhead of the Python module on the multi-scale batch workload (issue #14).

`zss.multiscale_kmeans` against the Google Benchmark `BM_MultiScaleBatch/threads:T`
(bench/bench_kmeans.cpp): 16 images x 32 x 32 tokens x 512 float32, K in {2, 4, 8, 16},
k-means++ seeds (seed 0), at most 10 Lloyd steps, tol 0. Both sides cluster the same tokens
(`zss_bench_tokens DIR` writes the benchmark's data; the script checks that Python's Lloyd steps
and inertias equal the C++ ones, so both sides do the same work) with the same thread count.
By default (--layout cpp) Python's tokens sit in memory laid out as the benchmark's tensor
(64-byte aligned, 4 KiB pages): the page size and the alignment change the kernels' time by a
few per cent either way, which is not the binding's doing (bench/README.md).

The two sides are interleaved on a shared machine: for each pair, A = one `zss_bench` process
(Google Benchmark picks the iteration count for --min-time seconds; its mean per iteration),
B = as many `zss.multiscale_kmeans` calls in this process after one warm-up call (their mean);
pairs alternate A B and B A. Prints every pair with the cores other un-niced processes used
meanwhile (from /proc/stat), the medians (wall and process CPU per call), the ratio of the
medians and the load average.

    build-rel/bench/zss_bench_tokens /tmp/zss_tokens
    PYTHONPATH=build-rel/python python3 bench/python_overhead.py \
        --bench build-rel/bench/zss_bench --tokens /tmp/zss_tokens --threads 2 1 --pairs 7
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import numpy as np

import zss

KS = [2, 4, 8, 16]
MAX_ITER = 10


def uptime():
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def busy_seconds():
    """(CPU seconds of all processes at nice <= 0 (user + system), of niced processes) from
    /proc/stat: niced background work (fuzzers, nice-10 builds) mostly yields to this benchmark
    (CFS weight 15 at nice 19, 110 at nice 10, against 1024) and is counted apart."""
    with open("/proc/stat", encoding="ascii") as f:
        cpu = f.readline().split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(cpu[1]) + int(cpu[3])) / tick, int(cpu[2]) / tick


def own_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Others:
    """Cores used by other un-niced processes while a pair ran: a direct measure of the
    contention a pair saw (the 1-minute load average lags by a minute)."""

    def __enter__(self):
        self.w, (self.busy, self.nice), self.own = time.perf_counter(), busy_seconds(), own_seconds()
        return self

    def __exit__(self, *exc):
        busy, nice = busy_seconds()
        wall = time.perf_counter() - self.w
        self.cores = max(0.0, (busy - self.busy) - (own_seconds() - self.own)) / wall
        self.niced = (nice - self.nice) / wall


def run_cpp(bench, threads, min_time):
    """One zss_bench process: (wall ms, process CPU ms, iterations) per iteration."""
    out = subprocess.run(
        [bench, f"--benchmark_filter=^BM_MultiScaleBatch/threads:{threads}/",
         f"--benchmark_min_time={min_time}", "--benchmark_format=json"],
        check=True, capture_output=True, text=True).stdout
    b = json.loads(out[out.index("{"):])["benchmarks"][0]
    assert b["time_unit"] == "ms", b["time_unit"]
    return b["real_time"], b["proc_cpu_ms"], int(b["iterations"])


def call(tokens, threads):
    return zss.multiscale_kmeans(tokens, ks=KS, max_iter=MAX_ITER, tol=0.0, seed=0,
                                 threads=threads)


def run_python(tokens, threads, iterations):
    """`iterations` calls after one warm-up: (wall ms, process CPU ms) per call."""
    call(tokens, threads)
    w, c = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        call(tokens, threads)
    return ((time.perf_counter() - w) * 1e3 / iterations,
            (time.process_time() - c) * 1e3 / iterations)


def aligned_copy(a, alignment, huge_pages=True):
    """A C-contiguous copy of `a` whose data starts at a multiple of `alignment` bytes, on
    transparent huge pages or not (NumPy >= 1.21 asks for them on arrays of 4 MiB and more)."""
    np.core.multiarray._set_madvise_hugepage(huge_pages)
    raw = np.empty(a.nbytes + alignment, dtype=np.uint8)
    np.core.multiarray._set_madvise_hugepage(True)
    off = (-raw.ctypes.data) % alignment
    out = raw[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def check_same_work(tokens, ref_dir, threads):
    r = call(tokens, threads)
    n_iter = np.array([[s.n_iter for s in img] for img in r])
    inertia = np.array([[s.inertia for s in img] for img in r])
    ref_iter = np.load(os.path.join(ref_dir, "n_iter.npy"))
    ref_inertia = np.load(os.path.join(ref_dir, "inertia.npy"))
    if not (np.array_equal(n_iter, ref_iter) and np.array_equal(inertia, ref_inertia)):
        raise SystemExit(f"python_overhead: zss.multiscale_kmeans differs from the C++ run:\n"
                         f"n_iter {n_iter.tolist()}\nC++    {ref_iter.tolist()}\n"
                         f"inertia - C++ {(inertia - ref_inertia).tolist()}")
    return int(n_iter.sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", required=True, help="path to zss_bench")
    ap.add_argument("--tokens", required=True, help="directory written by zss_bench_tokens")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=2.0,
                    help="seconds per C++ sample (--benchmark_min_time); Python runs as many calls")
    ap.add_argument("--layout", choices=["cpp", "numpy"], default="cpp",
                    help="cpp: the tokens copied to memory laid out as zss_bench's tensor (64-byte "
                         "aligned, 4 KiB pages); numpy: as np.load gives them (16 bytes past a "
                         "64-byte boundary, transparent huge pages)")
    a = ap.parse_args()

    tokens = np.load(os.path.join(a.tokens, "tokens.npy"))
    if a.layout == "cpp":
        tokens = aligned_copy(tokens, 64, huge_pages=False)
    assert tokens.shape == (16, 32, 32, 512) and tokens.dtype == np.float32, tokens.shape
    assert tokens.flags.c_contiguous  # used in place by the binding (no copy)
    with open("/proc/self/smaps_rollup", encoding="ascii") as f:
        huge = [line.split()[1] for line in f if line.startswith("AnonHugePages")][0]
    print(f"zss {zss.__version__} from {os.path.dirname(zss._zss.__file__)}")
    print(f"tokens {tokens.shape} {tokens.dtype}, layout {a.layout}: "
          f"data address % 64 = {tokens.ctypes.data % 64}, AnonHugePages {huge} kB, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    for t in a.threads:
        steps = check_same_work(tokens, a.tokens, t)
        print(f"threads {t}: same Lloyd steps ({steps} over 64 problems) and inertias as C++")

    for t in a.threads:
        print(f"\nthreads {t}: load before {uptime()}")
        print("pair   C++ wall   C++ cpu   iters | Python wall  Python cpu | others: cores, "
              "niced cores, load")
        cw, cc, pw, pc, oc, on = [], [], [], [], [], []
        for i in range(a.pairs):
            with Others() as others:
                if i % 2 == 0:  # A B, then B A: drift in the load does not favour one side
                    w, c, n = run_cpp(a.bench, t, a.min_time)
                    w2, c2 = run_python(tokens, t, n)
                else:
                    w2, c2 = run_python(tokens, t, n)
                    w, c, _ = run_cpp(a.bench, t, a.min_time)
            cw.append(w)
            cc.append(c)
            pw.append(w2)
            pc.append(c2)
            oc.append(others.cores)
            on.append(others.niced)
            print(f"{i:4d} {w:9.1f} {c:9.1f} {n:7d} | {w2:10.1f} {c2:11.1f} | "
                  f"{others.cores:4.2f} {others.niced:4.2f}  {uptime()}")
        mw, mc = statistics.median(cw), statistics.median(cc)
        nw, nc = statistics.median(pw), statistics.median(pc)
        print(f"median ms/call, {a.pairs} pairs: C++ wall {mw:.1f} cpu {mc:.1f} | "
              f"Python wall {nw:.1f} cpu {nc:.1f}")
        print(f"ratio Python / C++ (medians): wall {nw / mw:.3f}  cpu {nc / mc:.3f}; "
              f"median of the pairwise ratios: wall "
              f"{statistics.median(p / c for p, c in zip(pw, cw)):.3f}")
        print(f"other un-niced processes used {statistics.median(oc):.2f} cores (median of the "
              f"pairs, max {max(oc):.2f}), niced ones {statistics.median(on):.2f}; load after "
              f"{uptime()}")


if __name__ == "__main__":
    main()
