"""What the peers of bench/compare-peers.sh share, in numpy only: esmeta's cache and checkpoint
files, Vinyals split classes, N-way K-shot episodes, and the flat parameter layout of the conv-4
ProtoNet (esmeta's, include/esmeta/model.h) with PyTorch's default initialisation.

Python is only for benchmarks; nothing in the build or the tests needs this file.
"""
import math
import struct
import sys
import zlib

import numpy as np

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def read_cache(path):
    """esmeta's cache (src/data/cache.c, version 1): header, characters, split texts, u8 pixels, CRC-32."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != b"ESMCACHE":
        sys.exit(f"peer: {path} is not an esmeta cache file (make one with 'esmeta prepare --out FILE')")
    version, c, h, w, n_chars = struct.unpack_from("<5I", buf, 8)
    if version != 1:
        sys.exit(f"peer: {path} has cache format version {version}; this script reads version 1")
    (n_total,) = struct.unpack_from("<Q", buf, 28)
    (n_splits,) = struct.unpack_from("<I", buf, 36)
    off = 40
    names, first, counts = [], [], []
    img = 0
    for _ in range(n_chars):
        (n,) = struct.unpack_from("<I", buf, off)
        (ln,) = struct.unpack_from("<H", buf, off + 5)
        names.append(buf[off + 7 : off + 7 + ln].decode())
        off += 7 + ln
        first.append(img)
        counts.append(n)
        img += n
    splits = {}
    for _ in range(n_splits):
        (ln,) = struct.unpack_from("<H", buf, off)
        name = buf[off + 2 : off + 2 + ln].decode()
        off += 2 + ln
        (tl,) = struct.unpack_from("<I", buf, off)
        splits[name] = buf[off + 4 : off + 4 + tl].decode()
        off += 4 + tl
    npx = n_total * c * h * w
    if off + npx + 4 != len(buf) or img != n_total:
        sys.exit(f"peer: {path} is inconsistent or truncated")
    (crc,) = struct.unpack_from("<I", buf, off + npx)
    if zlib.crc32(memoryview(buf)[: off + npx]) != crc:
        sys.exit(f"peer: {path} fails its CRC-32")
    pixels = np.frombuffer(buf, np.uint8, count=npx, offset=off).reshape(n_total, c, h, w)
    return {"names": names, "first": first, "counts": counts, "splits": splits, "pixels": pixels}


def split_classes(ds, split):
    """(first image, image count, quarter turns) per class of a Vinyals split, in file order."""
    if split not in ds["splits"]:
        sys.exit(f"peer: the cache has no split '{split}' (has: {', '.join(sorted(ds['splits']))})")
    index = {n: i for i, n in enumerate(ds["names"])}
    out = []
    for line in ds["splits"][split].splitlines():
        line = line.strip()
        if not line:
            continue
        name, rot = line.rsplit("/rot", 1)
        deg = int(rot)
        if name not in index or deg % 90 or deg >= 360:
            sys.exit(f"peer: split '{split}': bad class '{line}'")
        ch = index[name]
        out.append((ds["first"][ch], ds["counts"][ch], deg // 90))
    return out


class Episodes:
    """N-way K-shot Q-query episodes; images (way*shot support then way*query query, class-major)."""

    def __init__(self, ds, classes, way, shot, query, seed):
        self.px, self.classes = ds["pixels"], classes
        self.way, self.shot, self.query = way, shot, query
        self.rng = np.random.default_rng(seed)

    def sample(self):
        way, shot, query = self.way, self.shot, self.query
        pick = self.rng.choice(len(self.classes), way, replace=False)
        sup, qry = [], []
        for ci in pick:
            first, n, rot = self.classes[ci]
            idx = first + self.rng.choice(n, shot + query, replace=False)
            # np.rot90 turns counter-clockwise, as esmeta (PIL's Image.rotate) does.
            ims = np.rot90(self.px[idx], k=rot, axes=(2, 3))
            sup.append(ims[:shot])
            qry.append(ims[shot:])
        x = np.concatenate(sup + qry).astype(np.float32) / 255.0
        return np.ascontiguousarray(x)


def read_checkpoint(path, net):
    """params and bn_running of an esmeta checkpoint (src/train/ckpt_file.c: "ESMCKPT\\0", u32 version,
    u32 sections, then per section a 16-byte tag, u64 length and the bytes; CRC-32 last)."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != b"ESMCKPT\0":
        sys.exit(f"peer: {path} is not an esmeta checkpoint")
    version, n = struct.unpack_from("<2I", buf, 8)
    off, sec = 16, {}
    for _ in range(n):
        tag = buf[off : off + 16].split(b"\0")[0].decode()
        (ln,) = struct.unpack_from("<Q", buf, off + 16)
        sec[tag] = buf[off + 24 : off + 24 + ln]
        off += 24 + ln
    theta = np.frombuffer(sec["params"], np.float32).copy()
    bn = np.frombuffer(sec["bn_running"], np.float32).copy()
    if theta.size != net.n_params or bn.size != 2 * net.width * net.depth:
        sys.exit(f"peer: {path} holds {theta.size} parameters; width {net.width} needs {net.n_params}")
    w = net.width
    running = [(bn[2 * b * w : (2 * b + 1) * w], bn[(2 * b + 1) * w : (2 * b + 2) * w]) for b in range(net.depth)]
    return theta, running


# ---------------------------------------------------------------- model layout


class Layout:
    """Shapes and offsets of the flat parameter vector (esmeta's layout, include/esmeta/model.h)."""

    def __init__(self, width, depth=4, in_ch=1):
        self.width, self.depth, self.blocks = width, depth, []
        off, cin = 0, in_ch
        for _ in range(depth):
            nw = width * cin * 9
            self.blocks.append((off, cin))
            off += nw + 3 * width
            cin = width
        self.n_params = off

    def init(self, rng):
        """PyTorch's default init as numpy arrays: conv weight and bias U(-1/sqrt(fan_in), +1/sqrt(fan_in)),
        gamma 1, beta 0; running statistics (mean 0, var 1) per block."""
        theta = np.empty(self.n_params, np.float32)
        w = self.width
        for off, cin in self.blocks:
            bound = 1.0 / math.sqrt(cin * 9)
            nw = w * cin * 9
            theta[off : off + nw + w] = rng.uniform(-bound, bound, nw + w)  # conv weight, bias
            theta[off + nw + w : off + nw + 2 * w] = 1.0  # gamma
            theta[off + nw + 2 * w : off + nw + 3 * w] = 0.0  # beta
        running = [(np.zeros(w, np.float32), np.ones(w, np.float32)) for _ in self.blocks]
        return theta, running
