"""CIFAR-10 as uint8 arrays, decoded once into a cache; mini-batches held and augmented on the device.

Sources (folders under the data root): the official pickled ``cifar-10-batches-py`` (exact pixels;
preferred when present) or ``cifar10-jpg``, the ImageFolder layout ``{train,test}/<class>/NNNN.jpg``.
Each split is decoded once into ``cache_dir("cifar10")/<source>-<split>-<fingerprint>.{images,labels}.npy``
(written atomically; the fingerprint changes when a source file does), so later runs start in seconds.
A small subset of the JPEGs (the smoke profile) is decoded and cached on its own, without the whole split.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from course_lib.core.data import MissingDataError, cache_dir, require, resolve_data_root
from course_lib.core.data.root import file_digest, files_digest
from course_lib.core.io import atomic_save_npy
from course_lib.core.settings import check_choice

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
SOURCES = ("auto", "cifar-10-batches-py", "cifar10-jpg")
_BATCH_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


@dataclass(frozen=True)
class CifarSplit:
    """One split: ``images`` (N, 32, 32, 3) uint8 NHWC, ``labels`` (N,) int64 indices into ``classes``."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    classes: tuple[str, ...] = CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std of the pixel values (0..255), each (3,) float32."""
        pixels = self.images.reshape(-1, 3)
        mean = pixels.mean(axis=0, dtype=np.float64)
        std = np.sqrt(((pixels - mean) ** 2).mean(axis=0))
        return mean.astype(np.float32), std.astype(np.float32)


def find_source(data_dir: str | os.PathLike | None = None, source: str = "auto",
                download: bool = False) -> tuple[str, Path]:
    """``(source name, folder)``: the official batches if present, else the JPEG folder.

    ``download=True`` fetches the official archive when neither is present (needs the network).
    Raises :class:`MissingDataError` naming both layouts when no data is found.
    """
    check_choice("source", source, SOURCES)
    candidates = SOURCES[1:] if source == "auto" else (source,)
    errors = []
    for name in candidates:
        try:
            return name, require(name, data_dir)
        except MissingDataError as exc:
            errors.append(str(exc))
    if download and "cifar-10-batches-py" in candidates:
        return "cifar-10-batches-py", require("cifar-10-batches-py", data_dir, download_missing=True)
    raise MissingDataError(
        f"CIFAR-10 not found under {resolve_data_root(data_dir)} (tried {list(candidates)}).\n\n"
        + "\n\n".join(errors)
    )


def _jpg_files(folder: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """The split's JPEG paths, class by class in file-name order, and their labels (N,)."""
    paths, labels = [], []
    for label, name in enumerate(CLASSES):
        files = sorted((folder / split / name).glob("*.jpg"))
        if not files:
            raise MissingDataError(f"no JPEG files in {folder / split / name}")
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def _decode_jpgs(paths: list[Path], desc: str) -> np.ndarray:
    """Decode JPEGs of 32x32 pixels into (N, 32, 32, 3) uint8 RGB."""
    images = np.empty((len(paths), 32, 32, 3), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc=f"decoding {desc}", unit="img", leave=False)):
        with Image.open(path) as image:
            if image.size != (32, 32):
                raise ValueError(f"{path}: expected a 32x32 image, got {image.size[0]}x{image.size[1]}")
            images[i] = np.asarray(image.convert("RGB"))
    return images


def _read_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The official pickled batches (the data set's own format) as (N, 32, 32, 3) uint8 and (N,)."""
    images, labels = [], []
    for name in _BATCH_FILES[split]:
        with (folder / name).open("rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()  # the official format
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


class _BatchUnpickler(pickle.Unpickler):
    """Reads the official batches but refuses any global other than numpy's array rebuilders, so a
    tampered file cannot run code (caches never use pickle)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which is not allowed")
        return super().find_class(module, name)


def _cache_paths(key: str) -> tuple[Path, Path]:
    stem = cache_dir("cifar10") / key
    return stem.with_suffix(".images.npy"), stem.with_suffix(".labels.npy")


def _cached(key: str, build: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[Path, Path]:
    """The cache files for ``key``, written (labels first, images last, each atomically) if absent."""
    images_path, labels_path = _cache_paths(key)
    if not (images_path.exists() and labels_path.exists()):
        images, labels = build()
        atomic_save_npy(labels_path, labels)
        atomic_save_npy(images_path, images)
    return images_path, labels_path


def _subset(n: int, size: int | None, seed: int, split: str) -> np.ndarray | None:
    """Sorted indices of a seeded random subset of ``size`` out of ``n``; ``None`` for the whole split."""
    if size is None:
        return None
    if not 1 <= size <= n:
        raise ValueError(f"size={size} must be between 1 and {n} (the {split} split's size), or None")
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def load_cifar10(split: str, data_dir: str | os.PathLike | None = None, *, size: int | None = None,
                 seed: int = 0, source: str = "auto", download: bool = False) -> CifarSplit:
    """Load a CIFAR-10 split (``"train"`` 50,000 or ``"test"`` 10,000 images) as a :class:`CifarSplit`.

    ``size`` takes a seeded random subset (kept in the split's order); ``None`` takes all of it.
    The first load decodes into the cache: the whole split, or from JPEGs only the subset asked for
    (until a whole-split cache exists, which later subsets are then cut from).
    """
    check_choice("split", split, SPLITS)
    name, folder = find_source(data_dir, source, download)
    if name == "cifar10-jpg":
        paths, labels = _jpg_files(folder, split)
        key = f"{name}-{split}-{files_digest(paths)}"
        keep = _subset(len(labels), size, seed, split)
        whole = _cache_paths(key)
        if keep is not None and not all(p.exists() for p in whole):
            images_path, labels_path = _cached(
                f"{key}-n{size}-seed{seed}",
                lambda: (_decode_jpgs([paths[i] for i in keep], f"{split} subset"), labels[keep]))
            return CifarSplit(np.load(images_path), np.load(labels_path), name)
        images_path, labels_path = _cached(key, lambda: (_decode_jpgs(paths, split), labels))
    else:
        contents = "".join(file_digest(folder / n) for n in _BATCH_FILES[split])
        key = f"{name}-{split}-{hashlib.sha256(contents.encode()).hexdigest()[:12]}"
        images_path, labels_path = _cached(key, lambda: _read_batches(folder, split))
    images, labels = np.load(images_path, mmap_mode="r"), np.load(labels_path)
    keep = _subset(len(labels), size, seed, split)
    if keep is not None:
        images, labels = images[keep], labels[keep]
    return CifarSplit(np.ascontiguousarray(images), labels, name)


def random_crop_flip(images: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel translation (zero padding) and horizontal flip of (B, C, H, W), on their device.

    Random numbers come from torch's global CPU generator, so seeded runs (and resumed ones) repeat.
    """
    n, c, h, w = images.shape
    device = images.device
    shift = torch.randint(0, 2 * pad + 1, (2, n)).to(device)
    flip = (torch.rand(n) < 0.5).to(device)
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = (shift[0, :, None] + torch.arange(h, device=device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (shift[1, :, None] + torch.arange(w, device=device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    cropped = padded[batch, channel, rows, cols]
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)


class DeviceBatches:
    """Mini-batches ``(images (B, 3, 32, 32) uint8, labels (B,))`` from tensors already on the device.

    Shuffling and augmentation happen on the device (no worker processes, no host-device copies);
    ``channels_last`` hands out batches in the memory format fast GPU convolutions prefer.
    """

    def __init__(self, split: CifarSplit, device: torch.device | str, batch_size: int, *,
                 shuffle: bool = False, augment: bool = False, channels_last: bool = False,
                 drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = torch.from_numpy(split.images).permute(0, 3, 1, 2).contiguous().to(device)
        self.labels = torch.from_numpy(split.labels).to(device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.channels_last, self.drop_last = channels_last, drop_last

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n).to(self.labels.device) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = start + self.batch_size
            idx = order[start:stop] if order is not None else slice(start, stop)
            x = self.images[idx]
            if self.augment:
                x = random_crop_flip(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]
