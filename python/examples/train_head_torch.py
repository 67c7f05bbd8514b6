#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A short PyTorch loop that trains a tiny segmentation head with zss.torch losses (CPU).

The toy world (zss.toy) gives images, seen labels and a simulated CLIP teacher (dense tokens,
CLS token, text embeddings). A tiny conv head maps each image to D-dim features on the
teacher's 16 x 16 grid; it is trained with the CLIP-ZSS losses computed by zss:

    L = cosine_ce(R, fused labels; [text(seen) ; pseudo prototypes])   (DESIGN §2.1)
      + nel(R, fused labels; same classes)                              (ZegCLIP's NEL)
      + glm(R, teacher CLS, bank of past CLS tokens)                    (DESIGN §2.2)

where the fused labels are zss.pseudo_labels of the teacher's tokens (PLM: unlabelled regions
get pseudo classes) and each pseudo class's prototype is the mean teacher token of its mask.

    python3 train_head_torch.py --steps 200
"""
import argparse

import numpy as np
import torch

import zss
import zss.torch as zt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    g = np.random.default_rng(a.seed)

    # Data: the toy world, seen labels renumbered 0..Ks-1 on the teacher's 16 x 16 grid.
    d = zss.toy.scenes(a.images, seed=a.seed, dim=a.dim)
    seen_ids = np.flatnonzero(d["seen"])
    Ks = len(seen_ids)
    lut = np.full(22, -1, dtype=np.int32)
    lut[seen_ids] = np.arange(Ks, dtype=np.int32)
    seen_labels = lut[d["train_labels"]]
    plm = zss.pseudo_labels(d["tokens"], seen_labels, Ks, threads=a.threads)  # B x 16 x 16
    fused = plm.labels  # seen class, Ks + m for pseudo class m, or -1
    # Pseudo prototypes: the mean teacher token of each pseudo mask (constants here).
    protos = []
    for b in range(a.images):
        tok, lab = d["tokens"][b].reshape(-1, a.dim), fused[b].ravel()
        protos.append([tok[lab == Ks + m].mean(0) for m in range(plm.num_pseudo[b])])
    text = torch.from_numpy(d["text"][seen_ids])
    images = torch.from_numpy(d["images"]).permute(0, 3, 1, 2)  # B x 3 x 64 x 64
    cls = torch.from_numpy(d["cls"])
    print(f"{a.images} toy images, {Ks} seen classes, "
          f"{int(plm.num_pseudo.sum())} pseudo classes from zss.pseudo_labels")

    head = torch.nn.Sequential(  # 64 x 64 -> 16 x 16 x D
        torch.nn.Conv2d(3, 32, 4, stride=4), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, a.dim, 1))
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    bank = zt.ClsBank(64, a.dim)
    opts = dict(threads=a.threads)

    for step in range(a.steps):
        idx = g.choice(a.images, a.batch, replace=False)
        R = head(images[idx]).permute(0, 2, 3, 1).reshape(a.batch, 256, a.dim)  # B x P x D
        labels = torch.from_numpy(fused[idx].reshape(-1))
        counts = [len(protos[i]) for i in idx]
        pseudo = torch.from_numpy(np.concatenate(
            [np.stack(protos[i]) for i in idx if protos[i]] or [np.zeros((0, a.dim), np.float32)]))
        rows = np.arange(a.batch + 1) * 256
        poff = np.concatenate([[0], np.cumsum(counts)])
        X = R.reshape(-1, a.dim)
        loss = (zt.cosine_ce(X, labels, text, pseudo, row_offsets=rows, pseudo_offsets=poff,
                             **opts)
                + zt.nel(X, labels, text, pseudo, row_offsets=rows, pseudo_offsets=poff, **opts)
                + zt.glm(R, cls[idx], bank, **opts))
        opt.zero_grad()
        loss.backward()
        opt.step()
        bank.push(cls[idx])  # the bank is read before, and filled after, each step
        if step % 20 == 0:
            print(f"step {step} loss {loss.item():.4f}")

    with torch.no_grad():  # the student alone: nearest seen text embedding per grid cell
        R = head(images).permute(0, 2, 3, 1).reshape(-1, a.dim)
        pred = (torch.nn.functional.normalize(R, dim=1) @ text.T).argmax(1).numpy()
    truth = seen_labels[:, 2::4, 2::4].reshape(-1)  # the pixel at each cell's centre
    acc = (pred[truth >= 0] == truth[truth >= 0]).mean()
    print(f"final loss {loss.item():.4f} seen-pixel accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
