"""Image datasets: leaves (seed 000), grain microstructures (seed 001), handwritten digits (seed 004).

Every dataset here gives images ``(N, C, H, W)`` float32 in [0, 1] and judges generated images by
their key properties, computed alike for real and generated images:

* ``LeafDataModule``: half-leaves as 2-channel (leaf, vein) images, simulated
  (``gentwin.data.leaves.simulate_leaves``) or rasterised from a user's GeoJSON/WKT geometry;
  properties are the eight leaf properties after post-processing, plus ``valid`` (the image
  post-processed into a leaf; a failure is counted, never fatal).
* ``MicrostructureDataModule``: simulated RGB grain micrographs and their grain statistics.
* ``DigitsDataModule``: the 1,797 8x8 handwritten digits that scikit-learn ships (no download);
  ``MNISTDataModule``: MNIST from its IDX files. Both use ``digit_properties``.

Models see the data through the dataset's ``transform``: a DCGAN generator ends in tanh, so its
specializations (``configs/dataset_model/*_dcgan.yaml``) map [0, 1] to [-1, 1] with ``Affine``;
a BCE VAE needs the data in [0, 1] (no transform) and its decoder gives logits.

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
import torch
from scipy import ndimage
from torch import nn

from gentwin.data.base import ArrayDataModule
from gentwin.errors import ConfigError
from gentwin.metrics.properties import property_metric

Properties = dict[str, np.ndarray]

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

DIGIT_PROPERTIES = ("ink", "on_fraction", "centroid_x", "centroid_y", "width", "height", "strokes", "loops")


# --------------------------------------------------------------------------------------------
# Transform
# --------------------------------------------------------------------------------------------


class Affine(nn.Module):
    """Elementwise ``y = scale * x + shift``; the default maps [0, 1] images to a tanh's [-1, 1].

    Args:
        scale: Non-zero factor.
        shift: Offset added after scaling.
    """

    def __init__(self, scale: float = 2.0, shift: float = -1.0):
        super().__init__()
        if scale == 0 or not math.isfinite(scale) or not math.isfinite(shift):
            raise ValueError(f"Affine needs a finite non-zero scale and a finite shift, got {scale} and {shift}")
        self.scale, self.shift = float(scale), float(shift)

    def fit(self, x: torch.Tensor) -> Affine:
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.shift) / self.scale

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_full((len(x),), x[0].numel() * math.log(abs(self.scale)) if len(x) else 0.0)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, shift={self.shift}"


# --------------------------------------------------------------------------------------------
# Metric entry and shared datamodule
# --------------------------------------------------------------------------------------------


def property_scores(real: Properties, fake: Properties, cond: Properties | None = None) -> dict[str, float]:
    """Metric entry: ``gentwin.metrics.properties.property_metric`` plus its means over the properties.

    Returns:
        ``{p}_w1`` (W1 / real std), ``{p}_ks``, ``valid_rate`` and ``mean_w1``, ``mean_ks``: the
        means over the properties with a value (NaN when none has one, e.g. no valid sample).
    """
    out = property_metric(real, fake, cond)
    for stat in ("w1", "ks"):
        values = [v for k, v in out.items() if k.endswith(f"_{stat}") and math.isfinite(v)]
        out[f"mean_{stat}"] = float(np.mean(values)) if values else float("nan")
    return out


def property_table(real: Properties, fake: Properties, title: str = "") -> str:
    """Text table per property: data and generated mean ± std, W1 / data std, KS; the valid share."""
    scores = property_metric(real, fake)
    ok_r = np.asarray(real["valid"]) == 1 if "valid" in real else slice(None)
    ok_f = np.asarray(fake["valid"]) == 1 if "valid" in fake else slice(None)
    lines = [title] if title else []
    lines.append(f"{'property':<16}{'data mean ± std':>24}{'generated mean ± std':>26}{'W1/std':>9}{'KS':>7}")
    for p in real:
        if p == "valid":
            continue
        a, b = np.asarray(real[p], float)[ok_r], np.asarray(fake[p], float)[ok_f]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        ra = f"{a.mean():.4g} ± {a.std():.3g}" if a.size else "-"
        fb = f"{b.mean():.4g} ± {b.std():.3g}" if b.size else "-"
        lines.append(f"{p:<16}{ra:>24}{fb:>26}{scores[f'{p}_w1']:>9.3f}{scores[f'{p}_ks']:>7.3f}")
    n_fake = len(next(iter(fake.values()))) if fake else 0
    if "valid" in fake:
        lines.append(f"valid: {100 * scores['valid_rate']:.1f} % of {n_fake} generated samples post-processed")
    return "\n".join(lines)


class ImageDataModule(ArrayDataModule):
    """Base of the image datasets: properties, figures, summary table and TensorBoard progress.

    A subclass implements ``build(rng)`` and ``image_properties(x)``.

    Args:
        grid_every_n_steps: Steps between TensorBoard grids from fixed noise (``ImageProgress``);
            ``null`` for none.
        grid_size: Images per grid.
        **kwargs: ``ArrayDataModule`` arguments.
    """

    def __init__(self, grid_every_n_steps: int | None = 200, grid_size: int = 64, **kwargs):
        super().__init__(**kwargs)
        if grid_every_n_steps is not None and grid_every_n_steps < 1:
            raise ConfigError(f"dataset.grid_every_n_steps must be >= 1 or null, got {grid_every_n_steps}")
        self.grid_every_n_steps, self.grid_size = grid_every_n_steps, grid_size
        self._memo: tuple[np.ndarray, Properties] | None = None

    def image_properties(self, x: np.ndarray) -> Properties:
        raise NotImplementedError

    def properties(self, x: np.ndarray, c: np.ndarray | None = None) -> Properties:
        # ``evaluate`` computes the properties of the generated images, then ``figures`` draws them:
        # remember the last result so that post-processing runs once per image set.
        if self._memo is not None and self._memo[0] is x:
            return self._memo[1]
        props = self.image_properties(np.asarray(x))
        self._memo = (x, props)
        return props

    def figures(self, real, fake, c):
        from gentwin.plots_images import property_histograms, sample_comparison

        fake_props = self.properties(fake)
        real_props = self.real_properties()
        return {"samples": sample_comparison(real, fake),
                "properties": property_histograms(real_props, fake_props)}

    def summary(self, real: Properties, fake: Properties) -> str:
        return property_table(real, fake, "key properties, held-out data vs generated:")

    def callbacks(self) -> list:
        if not self.grid_every_n_steps:
            return []
        from gentwin.callbacks_images import ImageProgress

        return [ImageProgress(self.grid_every_n_steps, self.grid_size, seed=self.seed)]


# --------------------------------------------------------------------------------------------
# Leaves
# --------------------------------------------------------------------------------------------


class LeafDataModule(ImageDataModule):
    """Half-leaf images (leaf, vein) of seed 000 §3.2, simulated or from a user's geometry file.

    Args:
        n: Half-leaf images to simulate (``ceil(n / 2)`` leaves, each cut in two); ignored with
            ``geometry`` (all its leaves are used).
        size: Image side in pixels.
        geometry: A GeoJSON/WKT file of leaves (``gentwin.data.leaves.read_geometry``), or ``None``
            to simulate.
        halve: Cut each leaf of ``geometry`` along its main vein into two half-leaves (the file holds
            whole leaves); ``False`` when it holds half-leaves already.
        extent: Window ``(xmin, ymin, xmax, ymax)`` in cm shown by the images; ``None`` for
            ``HALF_LEAF_EXTENT`` (10 x 10 cm).
        vein_width: Vein width in pixels.
        threshold: Post-processing threshold of both channels.
        simulator: Keyword arguments of ``simulate_leaves``.
        **kwargs: ``ImageDataModule`` arguments.
    """

    def __init__(self, n: int | None = 1000, size: int = 64, geometry: str | None = None, halve: bool = True,
                 extent=None, vein_width: float = 1.5, threshold: float = 0.5, simulator: dict | None = None,
                 **kwargs):
        super().__init__(n=n, **kwargs)
        from gentwin.data.leaves import HALF_LEAF_EXTENT

        if size < 8:
            raise ConfigError(f"dataset.size must be >= 8, got {size}")
        self.size, self.geometry, self.halve = size, geometry, halve
        self.extent = tuple(float(v) for v in extent) if extent is not None else HALF_LEAF_EXTENT
        self.vein_width, self.threshold = vein_width, threshold
        self.simulator = dict(simulator or {})

    def leaves(self, rng: np.random.Generator) -> list:
        """The half-leaves as geometry: from ``geometry`` or simulated."""
        from gentwin.data.leaves import half_leaves, read_geometry, simulate_leaves

        if self.geometry is None:
            return half_leaves(simulate_leaves(math.ceil(self.n / 2), rng, **self.simulator))[: self.n]
        path = Path(self.geometry).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"dataset.geometry: {path} does not exist (a GeoJSON or WKT file of leaves)")
        leaves = read_geometry(path)
        if not self.halve:
            return leaves
        for i, leaf in enumerate(leaves):
            if leaf.main_vein is None:
                raise ValueError(f"{path}: leaf {i}: no main vein to cut along "
                                 f"(set dataset.halve=false if the file holds half-leaves)")
        return half_leaves(leaves)

    def build(self, rng):
        from gentwin.data.leaves import rasterize

        halves = self.leaves(rng)
        if len(halves) < 2:
            raise ValueError(f"{self.geometry}: needs at least 2 half-leaves, got {len(halves)}")
        return rasterize(halves, self.size, self.extent, self.vein_width), None

    def image_properties(self, x):
        from gentwin.data.leaves import image_properties

        return image_properties(x, self.threshold, self.extent)


# --------------------------------------------------------------------------------------------
# Microstructures
# --------------------------------------------------------------------------------------------


class MicrostructureDataModule(ImageDataModule):
    """RGB grain micrographs (seed 001), ``gentwin.data.microstructure.simulate_microstructures``.

    Args:
        n: Images (seed 001: 1000).
        size: Image side in pixels (seed 001: 64).
        simulator: Further keyword arguments of ``simulate_microstructures``.
        **kwargs: ``ImageDataModule`` arguments.
    """

    def __init__(self, n: int = 1000, size: int = 64, simulator: dict | None = None, **kwargs):
        super().__init__(n=n, **kwargs)
        if size < 8:
            raise ConfigError(f"dataset.size must be >= 8, got {size}")
        self.size, self.simulator = size, dict(simulator or {})

    def build(self, rng):
        from gentwin.data.microstructure import simulate_microstructures

        return simulate_microstructures(self.n, rng, size=self.size, **self.simulator), None

    def image_properties(self, x):
        from gentwin.data.microstructure import microstructure_properties

        return microstructure_properties(x)


# --------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------


def digit_properties(images: np.ndarray, threshold: float = 0.5) -> Properties:
    """Key properties of grey digit images: amount, position, extent and topology of the ink.

    Args:
        images: ``(N, 1, H, W)`` (or ``(N, H, W)``) in [0, 1], ink bright.
        threshold: Level above which a pixel is ink for ``on_fraction``, ``strokes`` and ``loops``.

    Returns:
        (N,) arrays: ``ink`` (mean intensity), ``on_fraction`` (share of ink pixels),
        ``centroid_x``/``centroid_y`` (intensity-weighted centre as a fraction of the side, x to the
        right, y down), ``width``/``height`` (intensity-weighted std along x/y, same units; NaN for
        a blank image), ``strokes`` (8-connected ink regions) and ``loops`` (4-connected background
        regions not touching the border: 1 for a 0, 2 for an 8).
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"expected images (N, 1, H, W) or (N, H, W), got {np.shape(images)}")
    x = np.clip(np.nan_to_num(x), 0.0, 1.0)
    n, h, w = x.shape
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    mass = x.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        px, py = x.sum(axis=1) / mass[:, None], x.sum(axis=2) / mass[:, None]  # marginals along x, y
        cx, cy = px @ xs, py @ ys
        sx = np.sqrt(np.clip(px @ xs**2 - cx**2, 0, None))
        sy = np.sqrt(np.clip(py @ ys**2 - cy**2, 0, None))
    on = x > threshold
    strokes, loops = np.zeros(n), np.zeros(n)
    eight = np.ones((3, 3), dtype=bool)
    for i in range(n):
        strokes[i] = ndimage.label(on[i], structure=eight)[1]
        bg, k = ndimage.label(np.pad(~on[i], 1, constant_values=True))
        loops[i] = k - 1  # the padded border joins every outside region into one
    return {"ink": x.mean(axis=(1, 2)), "on_fraction": on.mean(axis=(1, 2)), "centroid_x": cx,
            "centroid_y": cy, "width": sx, "height": sy, "strokes": strokes, "loops": loops}


class DigitsDataModule(ImageDataModule):
    """The 8x8 handwritten digits embedded in the package (1,797 images, no download).

    Pixels hold 0-16 (on-pixels of 4x4 blocks of a 32x32 bitmap), scaled here to [0, 1].

    Args:
        n: Images to use (``None``: all 1,797), a seeded random subset.
        **kwargs: ``ImageDataModule`` arguments.
    """

    def __init__(self, n: int | None = None, **kwargs):
        super().__init__(n=n, **kwargs)
        self.labels: np.ndarray | None = None

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """All images ``(N, 1, 8, 8)`` in [0, 1] and their labels ``(N,)``."""
        table = np.loadtxt(DIGITS_FILE, delimiter=",", dtype=np.float32)
        return (table[:, :64] / 16.0).reshape(-1, 1, 8, 8), table[:, 64].astype(np.int64)

    def build(self, rng):
        x, labels = self.read()
        if self.n is not None and self.n < len(x):
            keep = np.sort(rng.choice(len(x), self.n, replace=False))
            x, labels = x[keep], labels[keep]
        self.labels = labels
        return np.ascontiguousarray(x, dtype=np.float32), None

    def image_properties(self, x):
        return digit_properties(x)


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


class MNISTDataModule(DigitsDataModule):
    """MNIST (28x28 digits, LeCun et al.) read from its standard IDX files.

    Args:
        path: Folder holding ``train-images-idx3-ubyte[.gz]`` (and ``t10k-images-idx3-ubyte[.gz]``
            for ``split="test"`` or ``"all"``), e.g. the ``raw`` folder torchvision makes. ``None``
            with ``download`` uses ``~/.cache/gentwin/mnist``.
        split: ``"train"`` (60,000 images), ``"test"`` (10,000) or ``"all"``; held-out data is split
            off by ``val_fraction`` as for every dataset.
        download: Fetch missing files from the standard mirrors (MD5-checked) into ``path``; for
            online users, never needed when the files are present.
        n: Images to use (``None``: all of the split), a seeded random subset.
        **kwargs: ``ImageDataModule`` arguments.
    """

    def __init__(self, path: str | None = None, split: str = "train", download: bool = False,
                 n: int | None = None, **kwargs):
        super().__init__(n=n, **kwargs)
        if split not in ("train", "test", "all"):
            raise ConfigError(f"dataset.split must be 'train', 'test' or 'all', got {split!r}")
        self.path, self.split, self.download = path, split, download

    def folder(self) -> Path:
        if self.path is None and not self.download:
            raise ConfigError("dataset.path is not set: give the folder holding the MNIST IDX files "
                              "(train-images-idx3-ubyte[.gz], ...), or set dataset.download=true")
        return Path(self.path if self.path is not None else MNIST_CACHE).expanduser()

    def read(self):
        folder = self.folder()
        prefixes = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[self.split]
        files = {p: (find_idx(folder, f"{p}-images-idx3-ubyte"), find_idx(folder, f"{p}-labels-idx1-ubyte"))
                 for p in prefixes}
        if self.download and any(img is None for img, _ in files.values()):
            download_mnist(folder)
            return self.read_from(folder, prefixes)
        missing = [f"{p}-images-idx3-ubyte[.gz]" for p, (img, _) in files.items() if img is None]
        if missing:
            where = f"{folder} does not exist" if not folder.is_dir() else f"{folder} holds no {', '.join(missing)}"
            raise FileNotFoundError(
                f"MNIST: {where}; expected the IDX files {', '.join(missing)} (and the matching "
                f"*-labels-idx1-ubyte[.gz]) there: set dataset.path, or dataset.download=true to fetch them")
        return self.read_from(folder, prefixes)

    def read_from(self, folder: Path, prefixes: list[str]):
        xs, ys = [], []
        for p in prefixes:
            x = read_idx(find_idx(folder, f"{p}-images-idx3-ubyte"))
            if x.ndim != 3:
                raise ValueError(f"{folder}: {p}-images-idx3-ubyte holds shape {x.shape}, expected (N, H, W)")
            labels_file = find_idx(folder, f"{p}-labels-idx1-ubyte")
            y = read_idx(labels_file) if labels_file is not None else np.full(len(x), -1)
            if len(y) != len(x):
                raise ValueError(f"{labels_file}: {len(y)} labels for {len(x)} images")
            xs.append(x)
            ys.append(y.astype(np.int64))
        x = np.concatenate(xs).astype(np.float32)[:, None] / 255.0
        return x, np.concatenate(ys)
