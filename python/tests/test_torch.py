# SPDX-License-Identifier: Apache-2.0
"""zss.torch against plain PyTorch formulations of the same formulas: values and gradients by
PyTorch autograd in float64, relative difference <= 1e-9."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zss
import zss.torch as zt

TOL = 1e-9
torch.manual_seed(0)


def rel(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def grads(loss_fn, *tensors):
    """Value and gradients of loss_fn() with respect to tensors (fresh leaves)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    loss = loss_fn(*leaves)
    loss.backward()
    return loss.detach(), [leaf.grad for leaf in leaves]


def assert_same(zss_fn, torch_fn, *tensors):
    lz, gz = grads(zss_fn, *tensors)
    lt, gt = grads(torch_fn, *tensors)
    assert abs(float(lz - lt)) <= TOL * abs(float(lt)), (float(lz), float(lt))
    for a, b in zip(gz, gt):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert rel(a, b) <= TOL, rel(a, b)


def n(x):
    return F.normalize(x, dim=-1, eps=1e-12)


# --- GLM ------------------------------------------------------------------------------------

def glm_torch(R, C, bank_rows, pool, tau=0.07, rho=0.25):
    B, P, D = R.shape
    keys = torch.cat([n(C), bank_rows])
    if pool == "dense":
        z = n(R.reshape(B * P, D)) @ keys.T / tau
        return F.cross_entropy(z, torch.arange(B).repeat_interleave(P))
    if pool == "attention":
        a = torch.softmax(torch.einsum("bpd,bd->bp", R, C) / D ** 0.5, dim=1)
        s = torch.einsum("bp,bpd->bd", a, R)
    elif pool == "mean":
        s = R.mean(1)
    else:
        k = int(np.ceil(rho * P))
        sim = torch.einsum("bpd,bd->bp", n(R), C).detach()
        idx = torch.sort(-sim, dim=1, stable=True).indices[:, :k]
        s = torch.stack([R[b, idx[b]].mean(0) for b in range(B)])
    return F.cross_entropy(n(s) @ keys.T / tau, torch.arange(B))


@pytest.mark.parametrize("pool", ["attention", "mean", "dense", "selective"])
def test_glm(pool):
    B, P, D = 4, 16, 12
    R, C = torch.randn(B, P, D, dtype=torch.float64), torch.randn(B, D, dtype=torch.float64)
    bank = zt.ClsBank(8, D, dtype=np.float64)
    bank.push(torch.randn(5, D, dtype=torch.float64))
    rows = torch.from_numpy(bank.rows())
    assert_same(lambda r: zt.glm(r, C, bank, pool=pool),
                lambda r: glm_torch(r, C, rows, pool), R)
    # (B*P, D) features and no bank.
    assert_same(lambda r: zt.glm(r.reshape(B * P, D), C, pool=pool),
                lambda r: glm_torch(r, C, rows[:0], pool), R)


def test_glm_refuses_a_gradient_for_the_teacher():
    R = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    C = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="C gets no gradient"):
        zt.glm(R, C)


# --- cosine CE, cosine logits, NEL ----------------------------------------------------------

ROWS, POFF = [0, 5, 9], [0, 2, 3]
LABELS = torch.tensor([0, 4, -1, 3, 2, 1, 3, -1, 0])


def batch():
    X = torch.randn(9, 6, dtype=torch.float64)
    seen = torch.randn(3, 6, dtype=torch.float64)
    pseudo = torch.randn(3, 6, dtype=torch.float64)
    return X, seen, pseudo


def logits_torch(X, seen, pseudo, alpha=1 / 0.07, beta=1 / 0.07):
    """Per image: [alpha cos(x, t) ; beta cos(x, p_b)], padded with zeros to Kmax."""
    out = []
    for b in range(2):
        xb = n(X[ROWS[b]:ROWS[b + 1]])
        z = torch.cat([alpha * xb @ n(seen).T, beta * xb @ n(pseudo[POFF[b]:POFF[b + 1]]).T], 1)
        out.append(F.pad(z, (0, 5 - z.shape[1])))
    return torch.cat(out)


def ce_torch(X, seen, pseudo, weights):
    S = logits_torch(X, seen, pseudo)
    kb = torch.tensor([5] * 5 + [4] * 4)
    S = S.masked_fill(torch.arange(5)[None, :] >= kb[:, None], float("-inf"))
    keep = LABELS >= 0
    per_row = F.cross_entropy(S[keep], LABELS[keep], reduction="none")
    return (weights[keep] * per_row).sum() / weights[keep].sum()


def test_cosine_ce():
    X, seen, pseudo = batch()
    w = torch.rand(9, dtype=torch.float64) + 0.5
    kw = dict(row_offsets=ROWS, pseudo_offsets=POFF)
    assert_same(lambda x, t, p: zt.cosine_ce(x, LABELS, t, p, weights=w, **kw),
                lambda x, t, p: ce_torch(x, t, p, w), X, seen, pseudo)
    # Gradient only where asked: X alone.
    x = X.clone().requires_grad_(True)
    zt.cosine_ce(x, LABELS, seen, pseudo, **kw).backward()
    assert x.grad is not None and seen.grad is None


def focal_dice_torch(S, alpha=0.25, gamma=2.0, smooth=1.0):
    focal, dice_terms, valid = 0.0, [], 0
    for b in range(2):
        kb = 3 + POFF[b + 1] - POFF[b]
        s = S[ROWS[b]:ROWS[b + 1], :kb]
        y = LABELS[ROWS[b]:ROWS[b + 1]]
        s, y = s[y >= 0], y[y >= 0]
        t = F.one_hot(y, kb).to(s.dtype)
        p, logp, logq = torch.sigmoid(s), F.logsigmoid(s), F.logsigmoid(-s)
        fl = -alpha * (1 - p) ** gamma * logp * t - (1 - alpha) * p ** gamma * logq * (1 - t)
        focal = focal + fl.mean(1).sum()
        valid += len(y)
        dice_terms.append(1 - (2 * (p * t).sum(0) + smooth) / (p.sum(0) + t.sum(0) + smooth))
    return focal / valid + torch.cat(dice_terms).mean()


def test_nel_and_cosine_logits():
    X, seen, pseudo = batch()
    kw = dict(row_offsets=ROWS, pseudo_offsets=POFF)
    assert_same(lambda x, t, p: zt.nel(x, LABELS, t, p, alpha=3.0, beta=2.0, **kw),
                lambda x, t, p: focal_dice_torch(logits_torch(x, t, p, 3.0, 2.0)),
                X, seen, pseudo)
    # The logits alone, under a random upstream gradient (padding entries masked).
    up = torch.randn(9, 5, dtype=torch.float64) * (logits_torch(X, seen, pseudo) != 0)
    assert_same(lambda x, t, p: (zt.cosine_logits(x, t, p, **kw) * up).sum(),
                lambda x, t, p: (logits_torch(x, t, p) * up).sum(), X, seen, pseudo)


# --- InfoNCE, BCE ---------------------------------------------------------------------------

def test_info_nce():
    Q, K = torch.randn(5, 7, dtype=torch.float64), torch.randn(11, 7, dtype=torch.float64)
    t = torch.tensor([0, 10, 3, 3, 7])
    assert_same(lambda q, k: zt.info_nce(q, k, t, tau=0.3),
                lambda q, k: F.cross_entropy(q @ k.T / 0.3, t), Q, K)


def test_bce():
    Z, Y = torch.randn(6, 4, dtype=torch.float64) * 4, torch.rand(6, 4, dtype=torch.float64)
    assert_same(lambda z: zt.bce_with_logits(z, Y),
                lambda z: F.binary_cross_entropy_with_logits(z, Y), Z)
    with pytest.raises(ValueError, match="Y gets no gradient"):
        zt.bce_with_logits(Z.requires_grad_(True), Y.clone().requires_grad_(True))


# --- in a training loop ---------------------------------------------------------------------

def test_float32_loss_sum_in_a_step():
    """Several zss losses summed, float32, one backward, an optimiser step: finite, close to
    float64, and the upstream scale reaches every gradient."""
    X, seen, pseudo = batch()
    R, C = torch.randn(2, 8, 6, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)

    def total(x, r, dtype):
        x, r = x.to(dtype), r.to(dtype)
        return (0.5 * zt.cosine_ce(x, LABELS, seen.to(dtype), pseudo.to(dtype), row_offsets=ROWS,
                                   pseudo_offsets=POFF)
                + 2.0 * zt.glm(r, C.to(dtype)))

    l64, (gx64, gr64) = grads(lambda x, r: total(x, r, torch.float64), X, R)
    x32 = X.float().requires_grad_(True)
    r32 = R.float().requires_grad_(True)
    l32 = total(x32, r32, torch.float32)
    l32.backward()
    assert x32.grad.dtype == torch.float32
    assert abs(float(l32) - float(l64)) < 1e-4 * abs(float(l64))
    assert rel(x32.grad.double(), gx64) < 1e-4 and rel(r32.grad.double(), gr64) < 1e-4


def test_torch_example_trains():
    """python/examples/train_head_torch.py: a tiny head trained with zss.torch losses; its loss
    falls and its seen-class accuracy beats chance by far."""
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "train_head_torch.py")
    out = subprocess.run([sys.executable, example, "--steps", "40", "--images", "12"],
                         capture_output=True, text=True, check=True).stdout
    first = float(out.split("step 0 loss ")[1].split()[0])
    last = out.strip().splitlines()[-1]
    assert last.startswith("final loss"), out
    final, acc = float(last.split()[2]), float(last.split()[-1])
    assert final < 0.7 * first, out
    assert acc > 0.5, out
