#!/usr/bin/env python3
"""Makes the small test images of tests/golden/images/ and tests/golden/image_reference.txt: their
pixels as decoded by Pillow (not esmeta's C code) and their resizes by the formulas esmeta states
(src/data/image.h), computed here in exact rational arithmetic. tests/test_image_reference.c decodes
the committed images with esmeta and compares. The tests never run this script; rerun it only to
change the images, and commit both the images and the reference.

Usage (Pillow and numpy in any environment, e.g. python3 -m venv /tmp/v && /tmp/v/bin/pip install
pillow numpy):
    python3 tests/golden/gen_image_reference.py tests/golden
Made with Pillow 13.0.0 (its bundled libjpeg-turbo) and numpy 2.4.6.

Reference records, one header line then the values, whitespace separated:
    decode FILE CHANNELS H W      then H*W*CHANNELS values, interleaved (HWC), as decoded
    resize FILE CHANNELS OH OW    then CHANNELS*OH*OW values, planar (CHW), resized and rounded
The resize of a file starts from that file's decode record with the same CHANNELS.
"""
import io
import os
import sys
from fractions import Fraction

import numpy as np
from PIL import Image

H, W = 17, 23  # odd and not square, so no axis divides evenly
RESIZES = [(7, 5), (40, 31), (9, 30), (17, 23)]  # shrink, enlarge, one of each, same size


def content(channels):
    """Smooth gradients plus seeded noise: JPEG has to round a lot, and every pixel differs."""
    rng = np.random.default_rng(20261202 + channels)
    y, x = np.mgrid[0:H, 0:W]
    planes = []
    for c in range(channels):
        base = 30 + 7 * y + 5 * x + 60 * c + 40 * np.sin((x + 2 * c) / 3.0)
        planes.append(base + rng.integers(-25, 26, size=(H, W)))
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


def make_images(folder):
    rgb, grey = content(3), content(1)[:, :, 0]
    Image.fromarray(rgb, "RGB").save(os.path.join(folder, "rgb.png"))
    Image.fromarray(grey, "L").save(os.path.join(folder, "grey.png"))
    # 4:2:0 chroma subsampling (Pillow's default at this quality): the decoder's upsampling matters
    Image.fromarray(rgb, "RGB").save(os.path.join(folder, "rgb.jpg"), quality=85)
    Image.fromarray(grey, "L").save(os.path.join(folder, "grey.jpg"), quality=85)


def decode(path, channels):
    """Pillow's decode. Grey from a colour JPEG is libjpeg's own grey output (the Y channel), which
    is what draft("L") asks libjpeg for; grey to RGB repeats the value in every channel."""
    with open(path, "rb") as f:
        im = Image.open(io.BytesIO(f.read()))
        if channels == 1 and im.format == "JPEG" and im.mode != "L":
            im.draft("L", im.size)
        im = im.convert("RGB" if channels == 3 else "L")
        a = np.asarray(im, dtype=np.int64)
    return a.reshape(a.shape[0], a.shape[1], channels)


def area_weights(n, m):
    """Output i averages the source span [i*n/m, (i+1)*n/m): each source by its overlap."""
    rows = []
    for i in range(m):
        lo, hi = Fraction(i * n, m), Fraction((i + 1) * n, m)
        rows.append({k: (min(hi, k + 1) - max(lo, k)) / (hi - lo)
                     for k in range(n) if min(hi, k + 1) > max(lo, k)})
    return rows


def bilinear_weights(n, m):
    """Output centre i + 1/2 sits at source position x = (i + 1/2) n/m - 1/2, clamped to [0, n-1],
    between source pixels floor(x) and floor(x) + 1 (the last pair at the far edge)."""
    rows = []
    for i in range(m):
        x = min(max((Fraction(2 * i + 1) * n / m - 1) / 2, Fraction(0)), Fraction(n - 1))
        k = min(int(x), max(n - 2, 0))
        f = x - k
        rows.append({k: 1 - f, k + 1: f} if n > 1 else {0: Fraction(1)})
    return rows


def weights(n, m):
    return area_weights(n, m) if m < n else bilinear_weights(n, m)


def round_half_even(v):
    """v is exact, so a tie is a real tie; the C code's lrint also rounds ties to even."""
    return max(0, min(255, round(v)))  # Python's round of a Fraction: half to even


def resize(px, oh, ow):
    h, w, channels = px.shape
    wy, wx = weights(h, oh), weights(w, ow)
    out, ties = [], 0
    for c in range(channels):
        for i in range(oh):
            for j in range(ow):
                v = sum(a * b * int(px[ky, kx, c]) for ky, a in wy[i].items() for kx, b in wx[j].items())
                ties += v.denominator == 2
                out.append(round_half_even(v))
    return out, ties


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    images = os.path.join(folder, "images")
    os.makedirs(images, exist_ok=True)
    make_images(images)
    lines = ["# made by tests/golden/gen_image_reference.py (Pillow decode, exact-rational resize); see there"]
    ties = 0
    for name, channel_list in [("rgb.png", (3,)), ("grey.png", (1, 3)), ("rgb.jpg", (3, 1)), ("grey.jpg", (1, 3))]:
        for channels in channel_list:
            px = decode(os.path.join(images, name), channels)
            lines.append("decode %s %d %d %d" % (name, channels, px.shape[0], px.shape[1]))
            lines.append(" ".join(str(v) for v in px.reshape(-1)))
            for oh, ow in RESIZES:
                vals, t = resize(px, oh, ow)
                ties += t
                lines.append("resize %s %d %d %d" % (name, channels, oh, ow))
                lines.append(" ".join(str(v) for v in vals))
    with open(os.path.join(folder, "image_reference.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("exact ties rounded to even: %d" % ties, file=sys.stderr)


if __name__ == "__main__":
    main()
