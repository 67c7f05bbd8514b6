# SPDX-License-Identifier: Apache-2.0
"""The losses' forward/backward pairs from NumPy: values against NumPy references, gradients
against central finite differences (float64), the adds-into convention, dtypes and errors."""
import numpy as np
import pytest

import zss


def numeric_grad(f, x, h=1e-6):
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gf[i] = (up - down) / (2 * h)
    return g


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a + b), 1e-300)


def lse(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


# --- BCE and InfoNCE ------------------------------------------------------------------------

def test_bce(rng):
    Z = rng.normal(size=(5, 7)) * 3
    Y = rng.uniform(size=(5, 7))
    loss, cache = zss.bce_with_logits_forward(Z, Y)
    ref = np.mean(np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z))))
    assert loss == pytest.approx(ref, rel=1e-14) and cache.loss == loss
    dZ = zss.bce_with_logits_backward(cache)
    np.testing.assert_allclose(dZ, (1 / (1 + np.exp(-Z)) - Y) / Z.size, rtol=1e-13)
    fd = numeric_grad(lambda: zss.bce_with_logits_forward(Z, Y)[0], Z)
    assert rel_err(dZ, fd) < 1e-6
    # Any shape; huge logits stay finite.
    l3, _ = zss.bce_with_logits_forward(np.array([[[1e30, -1e30]]]), np.array([[[1.0, 0.0]]]))
    assert l3 == 0.0


def test_info_nce(rng):
    Q, K = rng.normal(size=(4, 6)), rng.normal(size=(9, 6))
    t = np.array([0, 3, 8, 3])
    loss, cache = zss.info_nce_forward(Q, K, t, tau=0.5)
    z = Q @ K.T / 0.5
    assert loss == pytest.approx(np.mean(lse(z) - z[np.arange(4), t]), rel=1e-13)
    dQ, dK = zss.info_nce_backward(cache, 2.0, key_grad=True)
    fQ = numeric_grad(lambda: 2 * zss.info_nce_forward(Q, K, t, tau=0.5)[0], Q)
    fK = numeric_grad(lambda: 2 * zss.info_nce_forward(Q, K, t, tau=0.5)[0], K)
    assert rel_err(dQ, fQ) < 1e-6 and rel_err(dK, fK) < 1e-6
    assert zss.info_nce_backward(cache)[1] is None  # keys get no gradient unless asked
    with pytest.raises(ValueError, match=r"target 9 of query 1 is out of range \[0, 9\)"):
        zss.info_nce_forward(Q, K, [0, 9, 0, 0])


# --- GLM ------------------------------------------------------------------------------------

def glm_reference(R, C, bank, pool, tau=0.07, rho=0.25):
    B, P, D = R.shape
    keys = np.concatenate([normalize(C), bank]) if len(bank) else normalize(C)
    if pool == "dense":
        z = normalize(R.reshape(B * P, D)) @ keys.T / tau
        y = np.repeat(np.arange(B), P)
        return np.mean(lse(z) - z[np.arange(B * P), y])
    if pool == "attention":
        e = np.einsum("bpd,bd->bp", R, C) / np.sqrt(D)
        a = np.exp(e - e.max(1, keepdims=True))
        a /= a.sum(1, keepdims=True)
        s = np.einsum("bp,bpd->bd", a, R)
    elif pool == "mean":
        s = R.mean(1)
    else:  # selective: mean of the ceil(rho P) pixels most similar to the CLS
        k = int(np.ceil(rho * P))
        sim = np.einsum("bpd,bd->bp", normalize(R), C)
        s = np.stack([R[b, np.argsort(-sim[b], kind="stable")[:k]].mean(0) for b in range(B)])
    z = normalize(s) @ keys.T / tau
    return np.mean(lse(z) - z[np.arange(B), np.arange(B)])


@pytest.mark.parametrize("pool", ["attention", "mean", "dense", "selective"])
def test_glm(rng, pool):
    B, P, D = 3, 8, 6
    R, C = rng.normal(size=(B, P, D)), rng.normal(size=(B, D))
    bank = zss.ClsBank(4, D, dtype=np.float64)
    bank.push(rng.normal(size=(2, D)))
    loss, cache = zss.glm_forward(R, C, bank, pool=pool)
    assert loss == pytest.approx(glm_reference(R, C, bank.rows(), pool), rel=1e-12)
    dR = zss.glm_backward(cache)
    assert dR.shape == R.shape
    fd = numeric_grad(lambda: zss.glm_forward(R, C, bank, pool=pool, threads=1)[0], R)
    assert rel_err(dR, fd) < 1e-6
    # The fused call gives the same loss and gradient; a (B*P, D) R the same numbers.
    loss2, dR2 = zss.glm_forward_backward(R.reshape(B * P, D), C, bank, pool=pool)
    assert loss2 == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(dR2.reshape(B, P, D), dR, rtol=1e-12, atol=1e-15)


def test_cls_bank():
    bank = zss.ClsBank(3, 2, dtype=np.float64)
    assert (bank.capacity, bank.width, len(bank), bank.dtype) == (3, 2, 0, np.float64)
    bank.push(np.array([[3.0, 4.0], [0.0, 2.0]]))
    bank.push(np.array([[1.0, 0.0], [0.0, -5.0]]))
    np.testing.assert_allclose(bank.rows(), [[0, 1], [1, 0], [0, -1]])  # oldest first, unit rows
    bank.clear()
    assert bank.size == 0
    with pytest.raises(ValueError, match="width must be > 0"):
        zss.ClsBank(3, 0)
    with pytest.raises(ValueError, match="tokens have width 3, the bank holds width 2"):
        bank.push(np.ones((1, 3)))
    f32 = zss.ClsBank(3, 2)
    with pytest.raises(ValueError, match="the bank holds float32 but the features are float64"):
        zss.glm_forward(np.ones((2, 2, 2)), np.ones((2, 2)), f32)


# --- cosine CE, cosine logits, NEL ------------------------------------------------------------

def class_set_batch(rng, dtype=np.float64):
    """Two images (5 and 4 rows), 3 seen classes, 2 and 1 pseudo classes; a few ignored rows."""
    X = rng.normal(size=(9, 6)).astype(dtype)
    seen = rng.normal(size=(3, 6)).astype(dtype)
    pseudo = rng.normal(size=(3, 6)).astype(dtype)
    rows, poff = np.array([0, 5, 9]), np.array([0, 2, 3])
    labels = np.array([0, 4, -1, 3, 2, 1, 3, -1, 0])
    weights = rng.uniform(0.5, 2, size=9).astype(dtype)
    return X, labels, seen, pseudo, rows, poff, weights


def cosine_logits_reference(X, seen, pseudo, rows, poff, alpha=1 / 0.07, beta=1 / 0.07):
    kmax = len(seen) + max(np.diff(poff))
    S = np.zeros((len(X), kmax))
    for b in range(len(rows) - 1):
        xb = normalize(X[rows[b]:rows[b + 1]])
        W = np.concatenate([alpha * normalize(seen), beta * normalize(pseudo[poff[b]:poff[b + 1]])])
        S[rows[b]:rows[b + 1], :len(W)] = xb @ W.T
    return S


def test_cosine_ce(rng):
    X, labels, seen, pseudo, rows, poff, w = class_set_batch(rng)
    kw = dict(row_offsets=rows, pseudo_offsets=poff, weights=w)
    loss, cache = zss.cosine_ce_forward(X, labels, seen, pseudo, **kw)
    S = cosine_logits_reference(X, seen, pseudo, rows, poff)
    num = 0.0
    for i, y in enumerate(labels):
        if y >= 0:
            b = np.searchsorted(rows, i, side="right") - 1
            k = 3 + poff[b + 1] - poff[b]
            num += w[i] * (lse(S[i, :k]) - S[i, y])
    assert loss == pytest.approx(num / w[labels >= 0].sum(), rel=1e-12)
    dX, dT, dP = zss.cosine_ce_backward(cache, seen_grad=True)
    f = lambda: zss.cosine_ce_forward(X, labels, seen, pseudo, threads=1, **kw)[0]
    assert rel_err(dX, numeric_grad(f, X)) < 1e-6
    assert rel_err(dT, numeric_grad(f, seen)) < 1e-6
    assert rel_err(dP, numeric_grad(f, pseudo)) < 1e-6
    # The fused pass: same loss, same gradients.
    l2, dX2, dT2, dP2 = zss.cosine_ce_forward_backward(X, labels, seen, pseudo, seen_grad=True,
                                                       **kw)
    assert l2 == pytest.approx(loss, rel=1e-14)
    for a, b in ((dX2, dX), (dT2, dT), (dP2, dP)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # Defaults: text embeddings get no gradient, pseudo prototypes do.
    _, dT3, dP3 = zss.cosine_ce_backward(cache)
    assert dT3 is None and dP3 is not None


def test_nel_on_cosine_logits(rng):
    X, labels, seen, pseudo, rows, poff, _ = class_set_batch(rng)
    S, lcache = zss.cosine_logits_forward(X, seen, pseudo, row_offsets=rows, pseudo_offsets=poff)
    np.testing.assert_allclose(S, cosine_logits_reference(X, seen, pseudo, rows, poff),
                               rtol=1e-12, atol=1e-12)
    S = S / 10  # moderate logits for the finite differences
    loss, cache = zss.focal_dice_forward(S, labels, 3, row_offsets=rows, pseudo_offsets=poff)
    assert loss == pytest.approx(cache.focal + cache.dice, rel=1e-14)
    dS = zss.focal_dice_backward(cache)
    f = lambda: zss.focal_dice_forward(S, labels, 3, row_offsets=rows, pseudo_offsets=poff,
                                       threads=1)[0]
    fd = numeric_grad(f, S)
    # Entries >= K_b are padding: never read, never written.
    assert np.all(dS[5:, 4] == 0) and np.all(fd[5:, 4] == 0)
    assert rel_err(dS, fd) < 1e-6
    dSt = np.random.default_rng(1).normal(size=S.shape)
    dX, dT, dP = zss.cosine_logits_backward(lcache, dSt, seen_grad=True)
    g = lambda: float((zss.cosine_logits_forward(X, seen, pseudo, row_offsets=rows,
                                                 pseudo_offsets=poff, threads=1)[0] * dSt
                       * (cosine_logits_reference(X, seen, pseudo, rows, poff) != 0)).sum())
    assert rel_err(dX, numeric_grad(g, X)) < 1e-6
    assert rel_err(dT, numeric_grad(g, seen)) < 1e-6
    assert rel_err(dP, numeric_grad(g, pseudo)) < 1e-6


# --- conventions ----------------------------------------------------------------------------

def test_backward_adds_into_given_arrays(rng):
    X, labels, seen, pseudo, rows, poff, _ = class_set_batch(rng)
    kw = dict(row_offsets=rows, pseudo_offsets=poff)
    _, cache = zss.cosine_ce_forward(X, labels, seen, pseudo, **kw)
    grad, _, _ = zss.cosine_ce_backward(cache, 3.0)
    dX = np.ones_like(X)
    out, _, _ = zss.cosine_ce_backward(cache, 3.0, dX=dX)
    assert out is dX  # the caller's array, written in place
    np.testing.assert_allclose(dX, 1 + grad, rtol=1e-14)
    # Two losses accumulate into one buffer.
    R = rng.normal(size=(2, 4, 6))
    dR = np.zeros_like(R)
    zss.glm_forward_backward(R, R[:, 0], dR=dR)
    zss.glm_forward_backward(R, R[:, 0], pool="mean", dR=dR)
    want = zss.glm_forward_backward(R, R[:, 0])[1] + zss.glm_forward_backward(R, R[:, 0],
                                                                              pool="mean")[1]
    np.testing.assert_allclose(dR, want, rtol=1e-13)


@pytest.mark.parametrize("pool", ["attention", "mean", "dense", "selective"])
def test_accumulate_false_writes_without_reading(rng, pool):
    # The buffers start as NaN: one value read would spread. The result is exactly what adding
    # into zeros gives; the class-weight gradient dT is still added into.
    X, labels, seen, pseudo, rows, poff, _ = class_set_batch(rng)
    kw = dict(row_offsets=rows, pseudo_offsets=poff)
    _, want, _, _ = zss.cosine_ce_forward_backward(X, labels, seen, pseudo, **kw)
    dX = np.full_like(X, np.nan)
    _, out, _, _ = zss.cosine_ce_forward_backward(X, labels, seen, pseudo, dX=dX,
                                                 accumulate=False, **kw)
    assert out is dX
    np.testing.assert_array_equal(dX, want)
    _, cache = zss.cosine_ce_forward(X, labels, seen, pseudo, **kw)
    dX.fill(np.nan)
    dT = np.ones_like(seen)
    zss.cosine_ce_backward(cache, 2.0, dX=dX, dT=dT, accumulate=False)
    want2, wantT, _ = zss.cosine_ce_backward(cache, 2.0, seen_grad=True)
    np.testing.assert_array_equal(dX, want2)
    np.testing.assert_allclose(dT, 1 + wantT, rtol=1e-14)
    R = rng.normal(size=(2, 5, 6))
    want = zss.glm_forward_backward(R, R[:, 0], pool=pool)[1]
    dR = np.full_like(R, np.nan)
    zss.glm_forward_backward(R, R[:, 0], pool=pool, dR=dR, accumulate=False)
    np.testing.assert_array_equal(dR, want)
    _, gcache = zss.glm_forward(R, R[:, 0], pool=pool)
    dR.fill(np.nan)
    zss.glm_backward(gcache, dR=dR, accumulate=False)
    np.testing.assert_array_equal(dR, zss.glm_backward(gcache))
    # Without a buffer the binding allocates one it does not zero (every element is written):
    # the returned gradients equal the adding path's, for the fused calls and the backward ones.
    np.testing.assert_array_equal(
        zss.cosine_ce_forward_backward(X, labels, seen, pseudo, accumulate=False, **kw)[1],
        zss.cosine_ce_forward_backward(X, labels, seen, pseudo, **kw)[1])
    np.testing.assert_array_equal(zss.cosine_ce_backward(cache, 2.0, accumulate=False)[0],
                                  want2)
    np.testing.assert_array_equal(
        zss.glm_forward_backward(R, R[:, 0], pool=pool, accumulate=False)[1], want)
    np.testing.assert_array_equal(zss.glm_backward(gcache, accumulate=False),
                                  zss.glm_backward(gcache))


def test_output_arrays_are_never_converted(rng):
    R = rng.normal(size=(2, 4, 6))
    _, cache = zss.glm_forward(R, R[:, 0])
    with pytest.raises(ValueError, match="dR is float32, expected float64"):
        zss.glm_backward(cache, dR=np.zeros((2, 4, 6), np.float32))
    with pytest.raises(ValueError, match="must be C-contiguous and writeable"):
        zss.glm_backward(cache, dR=np.zeros((2, 4, 12))[..., ::2])
    ro = np.zeros_like(R)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="must be C-contiguous and writeable"):
        zss.glm_backward(cache, dR=ro)
    with pytest.raises(ValueError, match=r"dR has shape \(8, 6\), expected \(2, 4, 6\)"):
        zss.glm_backward(cache, dR=np.zeros((8, 6)))


def test_float32_and_mixed_dtypes(rng):
    X, labels, seen, pseudo, rows, poff, _ = class_set_batch(rng)
    kw = dict(row_offsets=rows, pseudo_offsets=poff)
    l64, dX64, _, _ = zss.cosine_ce_forward_backward(X, labels, seen, pseudo, **kw)
    f = lambda a: a.astype(np.float32)
    l32, dX32, _, dP32 = zss.cosine_ce_forward_backward(f(X), labels, f(seen), f(pseudo), **kw)
    assert dX32.dtype == np.float32 and dP32.dtype == np.float32
    assert l32 == pytest.approx(l64, rel=1e-5)
    assert rel_err(dX32.astype(np.float64), dX64) < 1e-5
    with pytest.raises(ValueError, match="seen is float64 but the call computes in float32"):
        zss.cosine_ce_forward(f(X), labels, seen, f(pseudo), **kw)
    # Non-contiguous inputs are copied: same numbers.
    Xt = np.asfortranarray(X)
    np.testing.assert_array_equal(
        zss.cosine_ce_forward_backward(Xt, labels, seen, pseudo, **kw)[1], dX64)


def test_loss_errors(rng):
    X, labels, seen, pseudo, rows, poff, _ = class_set_batch(rng)
    with pytest.raises(ValueError, match=r"label 5 of row 1 \(image 0\) is out of range \[-1, 5\)"):
        zss.cosine_ce_forward(X, np.where(labels == 4, 5, labels), seen, pseudo,
                              row_offsets=rows, pseudo_offsets=poff)
    with pytest.raises(ValueError, match="pass pseudo_offsets"):
        zss.cosine_ce_forward(X, labels, seen, pseudo, row_offsets=rows)
    with pytest.raises(ValueError, match="labels has dtype float64, expected integers"):
        zss.cosine_ce_forward(X, labels.astype(float), seen)
    with pytest.raises(ValueError, match="labels has value 4294967296"):
        zss.cosine_ce_forward(X, np.full(9, 2**32), seen)
    with pytest.raises(ValueError, match="pool must be"):
        zss.glm_forward(X.reshape(3, 3, 6), X[:3], pool="max")
    with pytest.raises(ValueError, match="R has 9 rows, not a multiple of B = 2"):
        zss.glm_forward(X, X[:2])
    with pytest.raises(ValueError, match=r"tau must be > 0"):
        zss.glm_forward(X.reshape(3, 3, 6), X[:3], tau=0)
    with pytest.raises(ValueError, match=r"Y has shape \(2,\), Z has \(3,\)"):
        zss.bce_with_logits_forward(np.zeros(3), np.zeros(2))
