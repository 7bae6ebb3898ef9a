"""``dataset=digits`` (embedded 8x8 digits) and ``dataset=mnist`` (IDX files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gentwin.data.images import ImageDataModule
from gentwin.domains.digits.properties import digit_properties
from gentwin.domains.digits.reader import DIGITS_FILE, MNIST_CACHE, download_mnist, find_idx, read_idx
from gentwin.errors import ConfigError


class DigitsDataModule(ImageDataModule):
    """The 8x8 handwritten digits embedded in the package (1,797 images, no download).

    Pixels hold 0-16 (on-pixels of 4x4 blocks of a 32x32 bitmap), scaled here to [0, 1].

    Args:
        n: Images to use (``None``: all 1,797), a seeded random subset.
        **kwargs: ``ImageDataModule`` arguments.
    """

    property_units = {"ink": "mean intensity", "on_fraction": "fraction of pixels", "centroid_x": "px",
                      "centroid_y": "px", "width": "px", "height": "px", "strokes": "count", "loops": "count"}

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
