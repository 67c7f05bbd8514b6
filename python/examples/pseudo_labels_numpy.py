#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PLM pseudo labels (multi-scale K-Means + mask fusion) for a batch of CLIP-like dense tokens,
from NumPy, with one PNG panel per image.

    python3 pseudo_labels_numpy.py --out /tmp/plm                       # the toy teacher's tokens
    python3 pseudo_labels_numpy.py --tokens t.npy --labels l.npy --num-seen 15 --out /tmp/plm

With --tokens, t.npy holds B x h x w x D tokens (e.g. MaskCLIP's dense CLIP tokens dumped from
PyTorch) and l.npy B x H x W seen labels (class ids in [0, num_seen), 255 or -1 ignored).
Without, the batch comes from zss.toy: the simulated CLIP teacher of DESIGN.md §4 (no CLIP is
needed); the panels then show image | ground truth (all classes) | training labels (seen only) |
pseudo labels (seen classes keep their label, new masks get extra colours, black = ignored).
"""
import argparse
import os
import time

import numpy as np

import zss


def toy_batch(images, dim, seed):
    d = zss.toy.scenes(images, seed=seed, dim=dim)
    seen_ids = np.flatnonzero(d["seen"])
    lut = np.full(22, -1, dtype=np.int32)  # lut[-1] = -1: clutter stays ignored
    lut[seen_ids] = np.arange(len(seen_ids), dtype=np.int32)
    return d["tokens"], lut[d["train_labels"]], len(seen_ids), d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", help="B x h x w x D tokens (.npy); default: the toy teacher")
    ap.add_argument("--labels", help="B x H x W seen labels (.npy), with --tokens")
    ap.add_argument("--num-seen", type=int, help="seen classes, with --tokens")
    ap.add_argument("--images", type=int, default=8, help="toy images (without --tokens)")
    ap.add_argument("--dim", type=int, default=64, help="toy token width D")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--windows", default="2,4", help="K-Means window sizes ({4,8,16} for 32x32)")
    ap.add_argument("--lam", type=float, default=0.9, help="mask fusion threshold lambda")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="pseudo_labels_out", help="output directory for the PNGs")
    ap.add_argument("--zoom", type=int, default=4, help="pixel repeat of the PNG panels")
    a = ap.parse_args()

    toy = None
    if a.tokens:
        if not (a.labels and a.num_seen is not None):
            ap.error("--tokens needs --labels and --num-seen")
        tokens, labels, num_seen = np.load(a.tokens), np.load(a.labels), a.num_seen
    else:
        tokens, labels, num_seen, toy = toy_batch(a.images, a.dim, a.seed)
    B, H, W = labels.shape
    windows = [int(s) for s in a.windows.split(",")]

    t0 = time.perf_counter()
    r = zss.pseudo_labels(tokens, labels, num_seen, windows=windows, lam=a.lam,
                          out_size=(H, W), threads=a.threads)
    ms = (time.perf_counter() - t0) * 1e3
    print(f"{B} images, tokens {tokens.shape[1]} x {tokens.shape[2]} x {tokens.shape[3]} "
          f"({tokens.dtype}), labels {H} x {W}: {ms:.1f} ms")

    os.makedirs(a.out, exist_ok=True)
    for b in range(B):
        line = f"image {b}: {r.num_pseudo[b]} pseudo classes"
        panels = [zss.colorize_labels(labels[b]), zss.colorize_labels(r.labels[b])]
        if toy is not None:
            img = (np.clip(toy["images"][b], 0, 1) * 255).astype(np.uint8)
            panels = [img, zss.colorize_labels(toy["labels"][b])] + panels
            # How much of the never-labelled (unseen) objects the pseudo masks now cover.
            truth = toy["labels"][b]
            unseen = (truth >= 0) & ~toy["seen"][np.maximum(truth, 0)]
            if unseen.any():
                covered = (r.labels[b][unseen] >= num_seen).mean()
                line += f", {100 * covered:.0f} % of unseen-object pixels pseudo-labelled"
        gap = np.zeros((H, 2, 3), np.uint8)
        panel = np.concatenate(sum([[p, gap] for p in panels], [])[:-1], axis=1)
        panel = panel.repeat(a.zoom, axis=0).repeat(a.zoom, axis=1)
        path = os.path.join(a.out, f"pseudo_{b:03d}.png")
        zss.write_png(path, panel)
        print(f"{line} -> {path}")


if __name__ == "__main__":
    main()
