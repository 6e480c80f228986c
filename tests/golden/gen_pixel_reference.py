#!/usr/bin/env python3
"""Writes tests/golden/pixel_reference.txt: a few Omniglot images preprocessed by an
implementation independent of esmeta's C code (Python's zipfile + zlib, a hand-written PNG
row decoder and a direct area-average), for tests/test_data.c to compare against.

Usage: python3 tests/golden/gen_pixel_reference.py ../shared/data/omniglot > tests/golden/pixel_reference.txt
"""
import struct
import sys
import zipfile
import zlib
from fractions import Fraction

IMAGES = [
    ("images_background", "Alphabet_of_the_Magi/character01/0709_01.png"),
    ("images_background", "Latin/character05/0687_07.png"),
    ("images_evaluation", "Tengwar/character25/1555_20.png"),
]
OUT = 28


def decode_png_gray(data):
    """Greyscale, non-interlaced PNGs of any bit depth -> rows of 0..255 values."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    assert ctype == 0 and interlace == 0, "only greyscale, non-interlaced"
    raw = zlib.decompress(idat)
    stride = (w * depth + 7) // 8
    bpp = max(1, depth // 8)
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        vals = []
        for x in range(w):
            bit = x * depth
            v = (line[bit // 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
            vals.append(v * 255 // ((1 << depth) - 1))
        rows.append(vals)
    return rows


def area_average_inverted(img, out):
    """Exact area averaging with rational arithmetic, then ink = 255."""
    n = len(img)
    scale = Fraction(n, out)
    res = []
    for i in range(out):
        row = []
        for j in range(out):
            total = Fraction(0)
            for y in range(int(i * scale), min(n, int((i + 1) * scale) + 1)):
                oy = min(Fraction(y + 1), (i + 1) * scale) - max(Fraction(y), i * scale)
                if oy <= 0:
                    continue
                for x in range(int(j * scale), min(n, int((j + 1) * scale) + 1)):
                    ox = min(Fraction(x + 1), (j + 1) * scale) - max(Fraction(x), j * scale)
                    if ox > 0:
                        total += oy * ox * img[y][x]
            row.append(255 - total / (scale * scale))
        res.append(row)
    return res


def main():
    root = sys.argv[1]
    print("# image  then 28 rows of 28 values: 255 - area average, rounded half to even, ink = 255")
    for half, rel in IMAGES:
        with zipfile.ZipFile(f"{root}/{half}.zip") as z:
            img = decode_png_gray(z.read(f"{half}/{rel}"))
        out = area_average_inverted(img, OUT)
        print(rel)
        for row in out:
            print(" ".join(str(round(v)) for v in row))


if __name__ == "__main__":
    main()
