"""The embedded 8x8 digits and MNIST's IDX files.

The embedded digits (``digits_8x8.csv.gz``, 64 pixel values 0-16 and the label per row) are the
test set of "Optical Recognition of Handwritten Digits" by E. Alpaydin and C. Kaynak (1998), UCI
Machine Learning Repository (CC BY 4.0), as shipped in scikit-learn's
``sklearn/datasets/data/digits.csv.gz`` (scikit-learn is BSD-3-Clause licensed).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import shutil
import urllib.request
from pathlib import Path

import numpy as np

DIGITS_FILE = Path(__file__).with_name("digits_8x8.csv.gz")

# MNIST (LeCun, Cortes & Burges): the IDX files and their MD5 sums; the mirrors torchvision and
# TensorFlow download from (yann.lecun.com itself often refuses downloads).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_CACHE = Path("~/.cache/gentwin/mnist")



def read_idx(path: str | Path) -> np.ndarray:
    """Reads an IDX file (the MNIST format), gzip-compressed or not.

    Format: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D
    float32, 0x0E float64), the number of dimensions, one big-endian uint32 size per dimension,
    then the values in C order, big-endian.

    Args:
        path: The file (``.gz`` or not: recognised by its first bytes).

    Returns:
        The array, shape as the header says, native byte order.

    Raises:
        ValueError: naming the file when the header or the length is wrong.
    """
    path = Path(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: unreadable ({err})") from err
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in types:
        raise ValueError(f"{path}: not an IDX file (expected the magic 00 00 <type> <ndim>, got {data[:4].hex()})")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(types[data[2]])
    need = math.prod(shape) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != need:
        raise ValueError(f"{path}: IDX header says shape {shape} ({need} bytes of data), the file holds {len(body)}")
    return np.frombuffer(body, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` with or without ``.gz`` (also the ``train-images.idx3-ubyte`` spelling)."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def download_mnist(folder: Path, mirrors=MNIST_MIRRORS) -> None:
    """Downloads the four MNIST files into ``folder`` (skipping those present), checking MD5 sums."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, md5 in MNIST_FILES.items():
        target = folder / name
        if target.is_file():
            continue
        errors = []
        for mirror in mirrors:
            tmp = target.with_suffix(".part")
            try:
                with urllib.request.urlopen(mirror + name, timeout=60) as r, open(tmp, "wb") as f:
                    shutil.copyfileobj(r, f)
            except OSError as err:
                errors.append(f"{mirror}{name}: {err}")
                tmp.unlink(missing_ok=True)
                continue
            if hashlib.md5(tmp.read_bytes()).hexdigest() != md5:
                errors.append(f"{mirror}{name}: MD5 mismatch")
                tmp.unlink()
                continue
            tmp.replace(target)
            break
        else:
            raise OSError(f"could not download MNIST file {name} into {folder}: " + "; ".join(errors))
