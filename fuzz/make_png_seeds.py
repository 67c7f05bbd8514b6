#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes fuzz/corpus/png/ (the seed corpus of fuzz_png): label maps and pictures of every PNG
kind (grey 1/2/4/8/16 bits, grey + alpha, RGB, RGBA, palette, interlaced), and hostile files
(wrong magic, empty, truncated, a header promising far more pixels than the file holds, a bad
CRC, an IDAT that inflates to less or more than the header says). Standard library only:
    python3 fuzz/make_png_seeds.py fuzz/corpus/png
"""
import os
import struct
import sys
import zlib

MAGIC = b"\x89PNG\r\n\x1a\n"


def chunk(kind, body, crc=None):
    c = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", c & 0xFFFFFFFF)


def ihdr(w, h, depth, colour, interlace=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))


def channels(colour):
    return {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]


def rows(w, h, depth, colour, value):
    """Filter byte 0 and packed samples; sample (y, x, c) = value(y, x, c)."""
    out = bytearray()
    bits = depth * channels(colour)
    for y in range(h):
        out.append(0)
        if depth >= 8:
            for x in range(w):
                for c in range(channels(colour)):
                    out += value(y, x, c).to_bytes(depth // 8, "big")
        else:
            acc, n = 0, 0
            for x in range(w):
                acc = (acc << bits) | value(y, x, 0)
                n += bits
                if n == 8:
                    out.append(acc)
                    acc, n = 0, 0
            if n:
                out.append(acc << (8 - n))
    return bytes(out)


def png(w, h, depth, colour, value, extra=b""):
    raw = rows(w, h, depth, colour, value)
    return (MAGIC + ihdr(w, h, depth, colour) + extra + chunk(b"IDAT", zlib.compress(raw, 9)) +
            chunk(b"IEND", b""))


def main(folder):
    os.makedirs(folder, exist_ok=True)
    top = lambda depth: (1 << depth) - 1
    files = {}
    # Label maps: one grey channel, labels y * w + x (mod the depth's range).
    for depth in (1, 2, 4, 8, 16):
        files[f"labels_grey{depth}.png"] = png(5, 3, depth, 0,
                                               lambda y, x, c, d=depth: (y * 5 + x) % (top(d) + 1))
    files["labels_255.png"] = png(4, 2, 8, 0, lambda y, x, c: 255 if x == 0 else x)
    files["grey_alpha.png"] = png(3, 2, 8, 4, lambda y, x, c: 7 if c == 0 else 255)
    files["rgb.png"] = png(4, 3, 8, 2, lambda y, x, c: (y * 40 + x * 10 + c) % 256)
    files["rgba.png"] = png(2, 2, 8, 6, lambda y, x, c: 200 if c == 3 else x + y + c)
    files["rgb16.png"] = png(2, 2, 16, 2, lambda y, x, c: 1000 * (x + y + c))
    plte = chunk(b"PLTE", bytes([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]))
    files["palette.png"] = png(4, 2, 8, 3, lambda y, x, c: x % 4, extra=plte)
    files["palette_4bit.png"] = png(5, 2, 4, 3, lambda y, x, c: (x + y) % 4, extra=plte)
    # Adam7 interlaced 8 x 8 grey: 7 passes, each its own rows.
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2)]
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        for y in range(y0, 8, dy):
            raw.append(0)
            raw += bytes((y * 8 + x) % 256 for x in range(x0, 8, dx))
    files["interlaced.png"] = (MAGIC + ihdr(8, 8, 8, 0, interlace=1) +
                               chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))
    # Hostile inputs.
    good = files["labels_grey8.png"]
    files["empty.png"] = b""
    files["not_png.png"] = b"GIF89a" + good[6:]
    files["magic_only.png"] = MAGIC
    files["truncated.png"] = good[: len(good) - 20]
    files["bad_crc.png"] = good[:29] + b"\0\0\0\0" + good[33:]
    tiny_idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    # 2^24 - 1 square (stb's dimension limit is 2^24), 16-bit RGBA: far beyond any allocation.
    files["huge_header.png"] = MAGIC + ihdr(2**24 - 1, 2**24 - 1, 16, 6) + tiny_idat + chunk(
        b"IEND", b"")
    # 12000 x 12000 RGBA 8-bit (576 MB decoded) from a 100-byte file.
    files["big_header.png"] = MAGIC + ihdr(12000, 12000, 8, 6) + tiny_idat + chunk(b"IEND", b"")
    files["zero_width.png"] = MAGIC + ihdr(0, 4, 8, 0) + tiny_idat + chunk(b"IEND", b"")
    files["short_idat.png"] = MAGIC + ihdr(64, 64, 8, 0) + tiny_idat + chunk(b"IEND", b"")
    files["long_idat.png"] = MAGIC + ihdr(2, 2, 8, 0) + chunk(
        b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")
    files["bad_filter.png"] = MAGIC + ihdr(2, 2, 8, 0) + chunk(
        b"IDAT", zlib.compress(b"\x09\1\2\x09\3\4")) + chunk(b"IEND", b"")
    files["bad_depth.png"] = MAGIC + ihdr(2, 2, 3, 0) + tiny_idat + chunk(b"IEND", b"")
    files["no_iend.png"] = good[: len(good) - 12]
    for name, data in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/png")
