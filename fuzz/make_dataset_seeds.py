#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes fuzz/corpus/dataset/ (the seed corpus of fuzz_dataset): dataset folders in the
target's framing (records of [file id][2-byte little-endian length][bytes], ids as in the table
of fuzz_dataset.cpp), valid ones (PNG and .npy items, float32 and float64, 8- and 16-bit label
maps, normalised tokens) and hostile ones (each breaking one rule of data/dataset.hpp).
Standard library only:
    python3 fuzz/make_dataset_seeds.py fuzz/corpus/dataset
"""
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_png_seeds import MAGIC, chunk, ihdr, png  # noqa: E402

# The file ids of fuzz_dataset.cpp.
ID = {name: i for i, name in enumerate([
    "dataset.txt", "classes.txt", "text_embeddings.npy", "unseen.txt",
    "train/images/x.png", "train/images/x.npy", "train/labels/x.png", "train/labels/x.npy",
    "train/tokens/x.npy", "train/cls/x.npy",
    "train/images/y.png", "train/images/y.npy", "train/labels/y.png", "train/labels/y.npy",
    "train/tokens/y.npy", "train/cls/y.npy",
    "train/labels/z.npy", "train/tokens/x.txt", "train/images/.x.png.tmp", "train/"])}

K, D, H, W, GH, GW = 3, 4, 3, 4, 2, 2


def npy(descr, shape, values, fortran=False):
    """A version-1 .npy file; `descr` like '<f4', values packed by struct."""
    shape_text = "(" + "".join(f"{s}, " for s in shape)[:-2] + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape_text)
    pad = 64 - (10 + len(header) + 1) % 64
    header = (header + " " * pad + "\n").encode()
    code = {"f4": "f", "f8": "d", "i4": "i", "i8": "q", "u1": "B", "i1": "b", "b1": "?"}[descr[1:]]
    body = struct.pack({"|": "<"}.get(descr[0], descr[0]) + code * len(values), *values)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body


def pack(files):
    """The framing: one record per (name, bytes)."""
    out = bytearray()
    for name, data in files:
        assert len(data) < 65536
        out += bytes([ID[name]]) + struct.pack("<H", len(data)) + data
    return bytes(out)


def info(fmt=b"format = zss-dataset 1\ntokens_normalized = false\n",
         classes=b"a\nb c\nc#1\n", unseen=b"c#1\n", text=None):
    if text is None:
        text = npy("<f4", (K, D), [float((i % 7) - 3) for i in range(K * D)])
    return [("dataset.txt", fmt), ("classes.txt", classes), ("text_embeddings.npy", text),
            ("unseen.txt", unseen)]


def rgb_png(h=H, w=W):
    return png(w, h, 8, 2, lambda y, x, c: (y * 50 + x * 20 + c * 7) % 256)


def label_png(h=H, w=W, depth=8, top=K):
    return png(w, h, depth, 0, lambda y, x, c: 255 if (y + x) % 5 == 0 else (y + x) % top)


def item(stem, image_npy=False, label_npy=False, dtype="<f4", h=H, w=W, tokens=None, cls=None,
         labels=None, image=None):
    t = tokens if tokens is not None else npy(dtype, (GH, GW, D),
                                              [0.25 * ((i % 9) - 4) for i in range(GH * GW * D)])
    c = cls if cls is not None else npy(dtype, (D,), [0.5, -1.0, 2.0, 0.0])
    if image is None:
        image = (npy("<f4", (h, w, 3), [(i % 11) / 10.0 for i in range(h * w * 3)])
                 if image_npy else rgb_png(h, w))
    if labels is None:
        labels = (npy("<i4", (h, w), [(-1 if i % 4 == 0 else i % K) for i in range(h * w)])
                  if label_npy else label_png(h, w))
    return [(f"train/images/{stem}.{'npy' if image_npy else 'png'}", image),
            (f"train/labels/{stem}.{'npy' if label_npy else 'png'}", labels),
            (f"train/tokens/{stem}.npy", t), (f"train/cls/{stem}.npy", c)]


def main(folder):
    os.makedirs(folder, exist_ok=True)
    seeds = {}
    x, y = item("x"), item("y", image_npy=True, label_npy=True)
    # Valid datasets.
    seeds["valid_png_npy"] = info() + x + y
    seeds["valid_one_png"] = info() + x
    seeds["valid_f8_npy"] = info() + item("x", image_npy=True, label_npy=True, dtype="<f8")
    seeds["valid_labels16"] = info() + item("x", labels=label_png(depth=16))
    unit = [1.0 / math.sqrt(D)] * (GH * GW * D)
    seeds["valid_normalized"] = info(
        fmt=b"# a comment\nformat = zss-dataset 1\r\ntokens_normalized = true  # unit rows\n"
    ) + item("x", tokens=npy("<f4", (GH, GW, D), unit))
    seeds["valid_labels_u1_i8"] = info(unseen=b"") + item(
        "x", label_npy=True, labels=npy("|u1", (H, W), [i % K for i in range(H * W)])) + item(
        "y", label_npy=True, labels=npy("<i8", (H, W), [-1] * (H * W)))
    seeds["valid_hidden_file"] = info() + x + [("train/images/.x.png.tmp", b"half written")]
    # Hostile: class files.
    seeds["empty"] = []
    seeds["no_dataset_txt"] = info()[1:] + x
    seeds["bad_format"] = info(fmt=b"format = zss-dataset 2\n") + x
    seeds["bad_key"] = info(fmt=b"format = zss-dataset 1\ncolour = blue\nnot a pair\n") + x
    seeds["bad_normalized"] = info(fmt=b"format = zss-dataset 1\ntokens_normalized = yes\n") + x
    seeds["duplicate_class"] = info(classes=b"a\nb\na\n") + x
    seeds["no_class"] = info(classes=b"\n  \n") + x
    seeds["too_many_classes"] = info(
        classes=b"".join(b"k%d\n" % i for i in range(256)),
        text=npy("<f4", (256, 1), [0.0] * 256)) + x
    seeds["all_unseen"] = info(unseen=b"a\nb c\nc#1\n") + x
    seeds["unknown_unseen"] = info(unseen=b"d\n") + x
    seeds["unseen_twice"] = info(unseen=b"a\na\n") + x
    seeds["text_rows"] = info(text=npy("<f4", (K + 1, D), [0.0] * ((K + 1) * D))) + x
    seeds["text_int"] = info(text=npy("<i4", (K, D), [0] * (K * D))) + x
    seeds["text_huge"] = info(text=npy("<f4", (K, 2**62), [])) + x
    # Hostile: split structure.
    seeds["no_split"] = info()
    seeds["empty_split"] = info() + [("train/", b"")]
    seeds["orphan_label"] = info() + x + [("train/labels/z.npy", npy("<i4", (H, W), [0] * H * W))]
    seeds["wrong_extension"] = info() + x[:2] + [("train/tokens/x.txt", x[2][1])] + x[3:]
    seeds["two_images"] = info() + x + [("train/images/x.npy", y[0][1])]
    seeds["missing_cls"] = info() + x[:3]
    # Hostile: headers.
    seeds["image_size_differs"] = info() + x + item("y", h=H + 1)
    seeds["label_size_differs"] = info() + item("x", labels=label_png(h=H, w=W + 1))
    seeds["label_rgb"] = info() + item("x", labels=rgb_png())
    seeds["label_float"] = info() + item("x", label_npy=True,
                                         labels=npy("<f4", (H, W), [0.0] * H * W))
    seeds["image_16bit"] = info() + item(
        "x", image=png(W, H, 16, 2, lambda yy, xx, c: 1000 * c))
    seeds["image_huge_png"] = info() + item(
        "x", image=MAGIC + ihdr(12000, 12000, 8, 2) + chunk(b"IEND", b""))
    seeds["image_not_png"] = info() + item("x", image=b"GIF89a" + rgb_png()[6:])
    seeds["image_fortran"] = info() + item(
        "x", image_npy=True, image=npy("<f4", (H, W, 3), [0.5] * (H * W * 3), fortran=True))
    seeds["tokens_width"] = info() + item("x", tokens=npy("<f4", (GH, GW, D + 1),
                                                          [0.0] * GH * GW * (D + 1)))
    seeds["tokens_grid_differs"] = info() + x + item("y", tokens=npy("<f4", (GH + 1, GW, D),
                                                                     [0.0] * (GH + 1) * GW * D))
    seeds["tokens_huge"] = info() + item("x", tokens=npy("<f4", (2**40, 2**20, D), []))
    seeds["tokens_truncated"] = info() + item("x", tokens=x[2][1][:-5])
    seeds["cls_width"] = info() + item("x", cls=npy("<f4", (D, 1), [0.0] * D))
    seeds["cls_big_endian"] = info() + item("x", cls=npy(">f4", (D,), [1.0] * D))
    # Hostile: values (found by load_item).
    seeds["label_out_of_range"] = info() + item("x", labels=label_png(top=K + 2))
    seeds["label_negative"] = info() + item("x", label_npy=True,
                                            labels=npy("<i4", (H, W), [-2] * (H * W)))
    seeds["pixel_above_one"] = info() + item(
        "x", image_npy=True, image=npy("<f4", (H, W, 3), [1.5] * (H * W * 3)))
    seeds["pixel_nan"] = info() + item(
        "x", image_npy=True, image=npy("<f8", (H, W, 3), [math.nan] * (H * W * 3)))
    seeds["token_nan"] = info() + item("x", tokens=npy("<f4", (GH, GW, D),
                                                       [math.nan] * GH * GW * D))
    seeds["cls_inf"] = info() + item("x", cls=npy("<f8", (D,), [math.inf] * D))
    seeds["not_normalized"] = info(fmt=b"format = zss-dataset 1\ntokens_normalized = true\n") + x
    seeds["image_idat_oom"] = info() + item(
        "x", image=MAGIC + ihdr(W, H, 8, 2) + struct.pack(">I", 0x67000000) + b"IDAT" + b"\0" * 8)
    for name, files in seeds.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(pack(files))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/dataset")
