# SPDX-License-Identifier: Apache-2.0
"""The zss losses as ``torch.autograd.Function`` objects, for CPU tensors.

    loss = zss.torch.glm(R, C, bank) + zss.torch.cosine_ce(X, labels, seen, pseudo)
    loss.backward()

Each function takes and returns tensors; the computation runs in the C++ library (the GIL is
released, OpenMP threads from ``threads=``) on the tensors' memory (``Tensor.numpy()`` shares it;
non-contiguous tensors are copied once). float32 and float64 are supported; all float tensors of
a call must share one dtype. The losses whose C++ side has a fused pass (GLM, cosine CE) compute
their gradients during the forward when an input requires grad, and the backward scales them by
the upstream gradient (as Liger-Kernel does). Teacher outputs (GLM's ``C``, the bank), row
weights and BCE targets get no gradient: passing them with ``requires_grad=True`` is an error
rather than a silent zero. Double backward is not supported.
"""

import numpy as _np_mod
import torch
from torch.autograd.function import once_differentiable

from . import _zss

ClsBank = _zss.ClsBank

__all__ = [
    "ClsBank",
    "bce_with_logits",
    "cosine_ce",
    "cosine_logits",
    "focal_dice",
    "glm",
    "info_nce",
    "nel",
]


def _np(t, name):
    """A CPU tensor as a NumPy array sharing its memory (None and arrays pass through)."""
    if t is None or not isinstance(t, torch.Tensor):
        return t
    if t.device.type != "cpu":
        raise ValueError(f"zss.torch: {name} is on {t.device}; zss computes on the CPU (.cpu())")
    return t.detach().numpy()


def _tensor(a):
    return None if a is None else torch.from_numpy(a)


def _scaled(grads, g):
    return tuple(None if d is None else d * g for d in grads)


def _no_grad(ctx, index, name, why):
    if ctx.needs_input_grad[index]:
        raise ValueError(f"zss.torch: {name} gets no gradient ({why}); pass {name}.detach()")


class _GLM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, R, C, bank, opts):
        _no_grad(ctx, 1, "C", "the teacher's CLS tokens are constants, DESIGN.md §2.2")
        if ctx.needs_input_grad[0]:
            loss, dR = _zss.glm_forward_backward(_np(R, "R"), _np(C, "C"), bank, **opts)
            ctx.grads = (torch.from_numpy(dR),)
        else:
            loss, _ = _zss.glm_forward(_np(R, "R"), _np(C, "C"), bank, **opts)
            ctx.grads = (None,)
        return torch.tensor(loss, dtype=R.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        return _scaled(ctx.grads, g) + (None, None, None)


def glm(R, C, bank=None, *, pool="attention", tau=0.07, rho=0.25, eps=1e-12, threads=0,
        block_rows=128):
    """GLM loss (DESIGN.md §2.2) of student features R against the teacher's CLS tokens C.

    R: (B, P, D) or (B*P, D) features (gradient). C: (B, D) CLS tokens (constants). bank: a
    ``ClsBank`` of R's dtype read as extra keys (push C after the step), or None. pool:
    'attention', 'mean', 'dense' or 'selective'. Returns a 0-dim tensor.
    """
    opts = dict(pool=pool, tau=tau, rho=rho, eps=eps, threads=threads, block_rows=block_rows)
    return _GLM.apply(R, C, bank, opts)


class _CosineCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, seen, pseudo, weights, labels, opts):
        _no_grad(ctx, 3, "weights", "row weights are constants")
        need = ctx.needs_input_grad
        args = (_np(X, "X"), _np(labels, "labels"), _np(seen, "seen"), _np(pseudo, "pseudo"))
        kw = dict(opts, weights=_np(weights, "weights"))
        if need[0] or need[1] or need[2]:
            loss, dX, dT, dP = _zss.cosine_ce_forward_backward(
                *args, seen_grad=need[1], pseudo_grad=need[2], **kw)
            ctx.grads = (_tensor(dX) if need[0] else None, _tensor(dT) if need[1] else None,
                         _tensor(dP) if need[2] else None)
        else:
            loss, _ = _zss.cosine_ce_forward(*args, **kw)
            ctx.grads = (None, None, None)
        return torch.tensor(loss, dtype=X.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        return _scaled(ctx.grads, g) + (None, None, None)


def cosine_ce(X, labels, seen, pseudo=None, *, row_offsets=None, pseudo_offsets=None,
              weights=None, alpha=1 / 0.07, beta=1 / 0.07, eps=1e-12, threads=0, block_rows=128):
    """Cosine cross-entropy with per-image class sets (DESIGN.md §2.1), fused.

    X: (N, D) features. labels: (N,) in [-1, K_b) (-1 ignored). seen: (Ks, D) seen class
    embeddings. pseudo: (sum M_b, D) stacked pseudo prototypes or None. row_offsets /
    pseudo_offsets: B + 1 offsets (default: one image). weights: (N,) row weights or None.
    Gradients reach X, seen and pseudo when they require grad. Returns a 0-dim tensor.
    """
    opts = dict(row_offsets=_np(row_offsets, "row_offsets"),
                pseudo_offsets=_np(pseudo_offsets, "pseudo_offsets"), alpha=alpha, beta=beta,
                eps=eps, threads=threads, block_rows=block_rows)
    return _CosineCE.apply(X, seen, pseudo, weights, labels, opts)


class _CosineLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, seen, pseudo, opts):
        S, cache = _zss.cosine_logits_forward(_np(X, "X"), _np(seen, "seen"),
                                              _np(pseudo, "pseudo"), **opts)
        ctx.cache = cache
        ctx.save_for_backward(X, seen, pseudo)  # in-place changes are caught at backward
        return torch.from_numpy(S)

    @staticmethod
    @once_differentiable
    def backward(ctx, dS):
        ctx.saved_tensors
        need = ctx.needs_input_grad
        dX, dT, dP = _zss.cosine_logits_backward(
            ctx.cache, _np(dS.contiguous(), "dS"), seen_grad=need[1], pseudo_grad=need[2])
        return (_tensor(dX) if need[0] else None, _tensor(dT) if need[1] else None,
                _tensor(dP) if need[2] else None, None)


def cosine_logits(X, seen, pseudo=None, *, row_offsets=None, pseudo_offsets=None,
                  alpha=1 / 0.07, beta=1 / 0.07, eps=1e-12, threads=0):
    """Cosine logits with per-image class sets (DESIGN.md §2.1): (N, Kmax), entries >= K_b zero.

    Arguments as ``cosine_ce``; gradients reach X, seen and pseudo when they require grad.
    """
    opts = dict(row_offsets=_np(row_offsets, "row_offsets"),
                pseudo_offsets=_np(pseudo_offsets, "pseudo_offsets"), alpha=alpha, beta=beta,
                eps=eps, threads=threads)
    return _CosineLogits.apply(X, seen, pseudo, opts)


class _FocalDice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, S, labels, num_seen, opts):
        loss, cache = _zss.focal_dice_forward(_np(S, "S"), _np(labels, "labels"), num_seen,
                                              **opts)
        ctx.cache = cache
        ctx.save_for_backward(S)
        return torch.tensor(loss, dtype=S.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        ctx.saved_tensors
        return torch.from_numpy(_zss.focal_dice_backward(ctx.cache, float(g))), None, None, None


def focal_dice(S, labels, num_seen, *, row_offsets=None, pseudo_offsets=None, alpha=0.25,
               gamma=2.0, dice_smooth=1.0, focal_weight=1.0, dice_weight=1.0, threads=0):
    """ZegCLIP's NEL (sigmoid focal + dice, DESIGN.md §2.1) on logits S (N, Kmax).

    labels: (N,) in [-1, K_b); num_seen: Ks; pseudo_offsets: B + 1 offsets of the images'
    pseudo classes (M_b each) or None. Returns a 0-dim tensor; the gradient reaches S.
    """
    opts = dict(row_offsets=_np(row_offsets, "row_offsets"),
                pseudo_offsets=_np(pseudo_offsets, "pseudo_offsets"), alpha=alpha, gamma=gamma,
                dice_smooth=dice_smooth, focal_weight=focal_weight, dice_weight=dice_weight,
                threads=threads)
    return _FocalDice.apply(S, labels, num_seen, opts)


def nel(X, labels, seen, pseudo=None, *, row_offsets=None, pseudo_offsets=None, alpha=1 / 0.07,
        beta=1 / 0.07, eps=1e-12, focal_alpha=0.25, gamma=2.0, dice_smooth=1.0, focal_weight=1.0,
        dice_weight=1.0, threads=0):
    """NEL on cosine logits: ``focal_dice(cosine_logits(X, seen, pseudo), labels, Ks)``.

    alpha, beta: the logits' scales; focal_alpha, gamma, dice_smooth, focal_weight,
    dice_weight: the loss's knobs. Other arguments as ``cosine_ce``.
    """
    if pseudo is not None and pseudo_offsets is None:
        images = 1 if row_offsets is None else len(row_offsets) - 1
        if images == 1:
            pseudo_offsets = _np_mod.array([0, pseudo.shape[0]], dtype=_np_mod.int64)
    S = cosine_logits(X, seen, pseudo, row_offsets=row_offsets, pseudo_offsets=pseudo_offsets,
                      alpha=alpha, beta=beta, eps=eps, threads=threads)
    return focal_dice(S, labels, seen.shape[0], row_offsets=row_offsets,
                      pseudo_offsets=pseudo_offsets, alpha=focal_alpha, gamma=gamma,
                      dice_smooth=dice_smooth, focal_weight=focal_weight,
                      dice_weight=dice_weight, threads=threads)


class _InfoNCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Q, K, targets, tau):
        loss, cache = _zss.info_nce_forward(_np(Q, "Q"), _np(K, "K"), _np(targets, "targets"),
                                            tau=tau)
        ctx.cache = cache
        ctx.save_for_backward(Q, K)
        return torch.tensor(loss, dtype=Q.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        ctx.saved_tensors
        need = ctx.needs_input_grad
        dQ, dK = _zss.info_nce_backward(ctx.cache, float(g), key_grad=need[1])
        return (_tensor(dQ) if need[0] else None, _tensor(dK) if need[1] else None, None, None)


def info_nce(Q, K, targets, *, tau=0.07):
    """InfoNCE (DESIGN.md §2.2): -mean_i log softmax_j(<q_i, k_j>/tau)[targets_i].

    Q: (n, D) queries, K: (m, D) keys (used as given), targets: (n,) in [0, m).
    """
    return _InfoNCE.apply(Q, K, targets, tau)


class _BCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Z, Y):
        _no_grad(ctx, 1, "Y", "targets are constants")
        loss, cache = _zss.bce_with_logits_forward(_np(Z, "Z"), _np(Y, "Y"))
        ctx.cache = cache
        ctx.save_for_backward(Z, Y)
        return torch.tensor(loss, dtype=Z.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        ctx.saved_tensors
        return torch.from_numpy(_zss.bce_with_logits_backward(ctx.cache, float(g))), None


def bce_with_logits(Z, Y):
    """Binary cross-entropy on logits, mean over elements (DESIGN.md §2.1); gradient to Z."""
    return _BCE.apply(Z, Y)
