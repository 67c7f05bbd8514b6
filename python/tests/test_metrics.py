# SPDX-License-Identifier: Apache-2.0
"""GZSS metrics, label pictures, PNG output, and the NumPy example end to end."""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import zss


def metrics_reference(truth, pred, seen):
    C = len(seen)
    keep = truth >= 0
    cm = np.bincount(truth[keep] * C + pred[keep], minlength=C * C).reshape(C, C)
    tp = np.diag(cm).astype(float)
    den = cm.sum(0) + cm.sum(1) - tp
    iou = np.where(den > 0, tp / np.maximum(den, 1), np.nan)
    S = np.nanmean(iou[seen]) if np.any(~np.isnan(iou[seen])) else 0.0
    U = np.nanmean(iou[~seen]) if np.any(~np.isnan(iou[~seen])) else 0.0
    return cm, iou, S, U, (2 * S * U / (S + U) if S + U > 0 else 0.0), tp.sum() / cm.sum()


def test_metrics_against_numpy():
    g = np.random.default_rng(0)
    truth = g.integers(-1, 6, size=(3, 20, 20))
    pred = np.where(g.uniform(size=truth.shape) < 0.7, np.maximum(truth, 0),
                    g.integers(0, 6, size=truth.shape))
    pred[truth == 4] = 0  # class 4 is never predicted: IoU 0
    truth[truth == 5] = 3  # class 5 never in the truth but predicted: IoU 0
    seen = np.array([True, True, False, True, False, False])
    cm = zss.ConfusionMatrix(6)
    for b in range(3):
        cm.add(truth[b], pred[b].astype(np.int16))
    ref_cm, iou, S, U, H, acc = metrics_reference(truth.ravel(), pred.ravel(), seen)
    np.testing.assert_array_equal(cm.matrix, ref_cm)
    assert cm.matrix.dtype == np.uint64
    m = cm.metrics(seen)
    np.testing.assert_allclose(m.per_class_iou, iou, rtol=1e-15)
    assert (m.miou_seen, m.miou_unseen) == pytest.approx((S, U), rel=1e-15)
    assert m.hiou == pytest.approx(H, rel=1e-15) and m.pixel_acc == pytest.approx(acc, rel=1e-15)
    one = zss.segmentation_metrics(truth, pred, seen)
    assert one.hiou == m.hiou and zss.compute_metrics(cm, seen).miou == m.miou
    other = zss.ConfusionMatrix(6)
    other.merge(cm)
    np.testing.assert_array_equal(other.matrix, cm.matrix)
    with pytest.raises(ValueError, match="pixel 0 has truth 7 and prediction 0"):
        cm.add(np.array([7]), np.array([0]))
    with pytest.raises(ValueError, match="seen must be 6 flags"):
        cm.metrics([True])
    with pytest.raises(ValueError, match=r"truth has shape \(2,\), pred has \(3,\)"):
        cm.add(np.zeros(2, int), np.zeros(3, int))


def test_colorize_and_png(tmp_path):
    labels = np.array([[-1, 0], [1, 2]])
    rgb = zss.colorize_labels(labels)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    # PASCAL VOC colour map of label + 1; ignored is black.
    np.testing.assert_array_equal(rgb.reshape(4, 3), [[0, 0, 0], [128, 0, 0], [0, 128, 0],
                                                      [128, 128, 0]])
    path = tmp_path / "x.png"
    zss.write_png(str(path), np.kron(rgb, np.ones((3, 5, 1), np.uint8)))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, colour) == (10, 6, 8, 2)  # RGB, 8 bits
    # The pixels round-trip through zlib (stb writes filter byte + RGB rows).
    idat = b"".join(data[i + 8:i + 8 + struct.unpack(">I", data[i:i + 4])[0]]
                    for i in range(8, len(data)) if data[i + 4:i + 8] == b"IDAT")
    assert len(zlib.decompress(idat)) == 6 * (1 + 10 * 3)
    with pytest.raises(ValueError, match="must be a uint8 array"):
        zss.write_png(str(path), np.zeros((2, 2)))
    with pytest.raises(RuntimeError):
        zss.write_png(str(tmp_path / "missing" / "x.png"), rgb)


def test_numpy_example(tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "pseudo_labels_numpy.py")
    out = subprocess.run([sys.executable, example, "--images", "3", "--out", str(tmp_path),
                          "--zoom", "1"], capture_output=True, text=True, check=True).stdout
    assert out.count("pseudo classes") == 3
    pngs = sorted(p.name for p in tmp_path.iterdir())
    assert pngs == ["pseudo_000.png", "pseudo_001.png", "pseudo_002.png"]
    width = struct.unpack(">I", (tmp_path / pngs[0]).read_bytes()[16:20])[0]
    assert width == 4 * 64 + 3 * 2  # image | truth | training labels | pseudo labels
