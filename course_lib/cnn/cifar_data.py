"""CIFAR-10 as uint8 arrays, decoded once into a cache; mini-batches held and augmented on the device.

Sources (folders under the data root): the official pickled ``cifar-10-batches-py`` (exact pixels;
preferred when present) or ``cifar10-jpg``, the ImageFolder layout ``{train,test}/<class>/NNNN.jpg``.
Each split is decoded once into ``cache_dir("cifar10")/<source>-<split>.npz`` (images and labels),
served through :func:`~course_lib.core.cache.load_keyed` only when its key (source, split, fingerprint of
the source files, subset size and seed, this module's code) matches and its arrays validate; a stale or
damaged cache is rebuilt with a one-line notice. A small subset of the JPEGs (the smoke profile) is
decoded and cached on its own (``<source>-<split>-n<size>-seed<seed>.npz``), without the whole split.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from course_lib.core.cache import key_path, load_keyed
from course_lib.core.data import MissingDataError, cache_dir, require, resolve_data_root
from course_lib.core.data.registry import CorruptDataError
from course_lib.core.digests import code_digest, content_digest, file_digest, stat_digest
from course_lib.core.io import jsonable, read_json
from course_lib.core.settings import check_choice
from course_lib.core.training import progress_enabled

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
SOURCES = ("auto", "cifar-10-batches-py", "cifar10-jpg")
_BATCH_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
BATCH_IMAGES = 10_000
"""Images in every official pickled batch file."""


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

    def subset(self, size: int | None, seed: int = 0) -> CifarSplit:
        """A seeded random ``size`` of these images, kept in order (``None`` or ``size >= len``: all)."""
        if size is None or size >= len(self):
            return self
        keep = _subset(len(self), size, seed, self.source)
        return CifarSplit(self.images[keep], self.labels[keep], self.source, self.classes)

    def digest(self) -> str:
        """Short sha256 of the images and labels: keys what was trained on these exact arrays."""
        return content_digest(self.images, self.labels)


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
    bar = tqdm(paths, desc=f"decoding {desc}", unit="img", leave=False, disable=not progress_enabled())
    for i, path in enumerate(bar):
        try:
            with Image.open(path) as image:
                size = image.size
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as err:  # PIL's errors for a truncated or foreign file
            raise CorruptDataError(f"{path}: cannot decode it as a JPEG ({err}); replace the file") from err
        if size != (32, 32):
            raise CorruptDataError(f"{path}: expected a 32x32 image, got {size[0]}x{size[1]}")
        images[i] = pixels
    return images


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One official pickled batch as (BATCH_IMAGES, 32, 32, 3) uint8 and (BATCH_IMAGES,) int64; a file
    that is truncated, not a pickle, or not shaped like a CIFAR-10 batch raises naming it."""
    try:
        with path.open("rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()  # the official format
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError, OverflowError) as err:
        raise CorruptDataError(f"{path}: not a readable CIFAR-10 batch ({type(err).__name__}: {err}); "
                               "download the data set again") from err
    missing = [k.decode() for k in (b"data", b"labels") if not isinstance(batch, dict) or k not in batch]
    if missing:
        raise CorruptDataError(f"{path}: a CIFAR-10 batch holds the keys 'data' and 'labels'; "
                               f"{missing} missing; download the data set again")
    data, labels = batch[b"data"], batch[b"labels"]
    if not (isinstance(data, np.ndarray) and data.shape == (BATCH_IMAGES, 3072) and data.dtype == np.uint8
            and isinstance(labels, list) and len(labels) == BATCH_IMAGES
            and all(isinstance(v, int) and 0 <= v < len(CLASSES) for v in labels)):
        got = f"{data.shape} {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CorruptDataError(
            f"{path}: expected data ({BATCH_IMAGES}, 3072) uint8 and labels a list of {BATCH_IMAGES} ints "
            f"in 0..9; got data {got} and labels {type(labels).__name__} of {len(labels)}; "
            "download the data set again")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels, dtype=np.int64)


def _read_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The official pickled batches (the data set's own format) as (N, 32, 32, 3) uint8 and (N,)."""
    images, labels = zip(*(_read_batch(folder / name) for name in _BATCH_FILES[split]), strict=True)
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


def _check_arrays(path: Path, images: np.ndarray, labels: np.ndarray, n: int) -> None:
    """Raise ``ValueError`` naming ``path`` unless images are (n, 32, 32, 3) uint8 and labels (n,) int64
    class indices."""
    if images.shape != (n, 32, 32, 3) or images.dtype != np.uint8:
        raise ValueError(f"{path}: images are {images.shape} {images.dtype}, expected ({n}, 32, 32, 3) uint8")
    if labels.shape != (n,) or labels.dtype != np.int64:
        raise ValueError(f"{path}: labels are {labels.shape} {labels.dtype}, expected ({n},) int64")
    if n and not 0 <= labels.min() <= labels.max() < len(CLASSES):
        raise ValueError(f"{path}: labels outside 0..{len(CLASSES) - 1}")


def _cached(name: str, key: dict, n: int,
            build: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of the cache ``<name>.npz``, built by ``build() -> (images, labels)`` unless it
    was made with ``key`` and holds ``n`` valid images."""

    def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
        arrays = np.load(path)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: not an .npz archive")
        with arrays:
            images, labels = arrays["images"], arrays["labels"]
        _check_arrays(path, images, labels, n)
        return images, labels

    def write(tmp: Path) -> None:
        images, labels = build()
        with tmp.open("wb") as f:
            np.savez(f, images=images, labels=labels)

    path = cache_dir("cifar10") / f"{name}.npz"
    return load_keyed(path, key, load=load, build=write, what="CIFAR-10 cache")


def _is_current(name: str, key: dict) -> bool:
    """Whether the cache ``<name>.npz`` exists and its recorded key is ``key`` (it may still be damaged)."""
    path = cache_dir("cifar10") / f"{name}.npz"
    try:
        return path.exists() and read_json(key_path(path)).get("key") == jsonable(key)
    except (OSError, ValueError, AttributeError):
        return False


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
        paths, jpg_labels = _jpg_files(folder, split)
        fingerprint, n = stat_digest(paths), len(paths)
    else:
        fingerprint = content_digest([file_digest(folder / batch) for batch in _BATCH_FILES[split]])
        n = BATCH_IMAGES * len(_BATCH_FILES[split])
    keep = _subset(n, size, seed, split)
    key = {"source": name, "split": split, "fingerprint": fingerprint, "size": None, "seed": None,
           "code": code_digest(__name__)}
    whole = f"{name}-{split}"
    if name == "cifar10-jpg" and keep is not None and not _is_current(whole, key):
        images, labels = _cached(
            f"{whole}-n{size}-seed{seed}", {**key, "size": size, "seed": seed}, len(keep),
            lambda: (_decode_jpgs([paths[i] for i in keep], f"{split} subset"), jpg_labels[keep]))
        return CifarSplit(images, labels, name)
    if name == "cifar10-jpg":
        images, labels = _cached(whole, key, n, lambda: (_decode_jpgs(paths, split), jpg_labels))
    else:
        images, labels = _cached(whole, key, n, lambda: _read_batches(folder, split))
    if keep is not None:
        images, labels = images[keep], labels[keep]
    return CifarSplit(np.ascontiguousarray(images), labels, name)


def reflect_pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H + 2 pad, W + 2 pad) of the same dtype, the border a mirror image of the
    inside (as ``F.pad(mode="reflect")``, which takes only floats): rows and columns picked by index, so
    uint8 stays uint8 and nothing is converted. ``pad`` must be below H and W."""
    if not pad:
        return images

    def mirrored(n: int) -> torch.Tensor:  # -pad .. n - 1 + pad, reflected into 0 .. n - 1
        i = torch.arange(-pad, n + pad, device=images.device).abs()
        return (n - 1) - ((n - 1) - i).abs()

    h, w = images.shape[-2:]
    return images.index_select(-2, mirrored(h)).index_select(-1, mirrored(w))


def random_crop_flip(images: torch.Tensor, pad: int = 4, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Random ``pad``-pixel translation and horizontal flip of (B, C, H, W), on their device.

    The border is filled by reflection (as in airbench and the ResNet-9 recipe), so a shifted image
    shows no black frame. ``flip`` (B,) bool says which images to mirror; ``None`` mirrors a random
    half. Random numbers come from torch's global CPU generator, so seeded runs (and resumed ones)
    repeat.
    """
    return crop_flip_padded(reflect_pad(images, pad), None, pad, flip)


def crop_flip_padded(padded: torch.Tensor, index: torch.Tensor | None, pad: int,
                     flip: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`random_crop_flip` of the images ``padded[index]`` (``None``: all), from ``padded`` (N, C,
    H + 2 pad, W + 2 pad) made by :func:`reflect_pad` beforehand (:class:`DeviceBatches` pads its split
    once); (B, C, H, W), the same draws and the same pixels either way. On a CPU the images that share a
    shift are copied as blocks (:func:`crops_by_block`, cheaper than picking every pixel by index); on a
    GPU one kernel picks every pixel (:func:`crops_by_index`, no host synchronisation per shift)."""
    n = len(padded) if index is None else len(index)
    device = padded.device
    shift = torch.randint(0, 2 * pad + 1, (2, n)).to(device)
    flip = (torch.rand(n) < 0.5).to(device) if flip is None else flip.to(device)
    index = torch.arange(n, device=device) if index is None else index
    crops = crops_by_block if device.type == "cpu" else crops_by_index
    cropped = crops(padded, index, shift, padded.shape[2] - 2 * pad, padded.shape[3] - 2 * pad)
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)


def crops_by_index(padded: torch.Tensor, index: torch.Tensor, shift: torch.Tensor, h: int,
                   w: int) -> torch.Tensor:
    """(B, C, h, w): of image ``index[i]`` of ``padded``, the window at row ``shift[0, i]`` and column
    ``shift[1, i]``, every pixel picked by index in one gather."""
    device = padded.device
    rows = (shift[0, :, None] + torch.arange(h, device=device))[:, None, :, None]  # (B, 1, h, 1)
    cols = (shift[1, :, None] + torch.arange(w, device=device))[:, None, None, :]  # (B, 1, 1, w)
    channels = torch.arange(padded.shape[1], device=device)[None, :, None, None]
    return padded[index[:, None, None, None], channels, rows, cols]


def crops_by_block(padded: torch.Tensor, index: torch.Tensor, shift: torch.Tensor, h: int,
                   w: int) -> torch.Tensor:
    """What :func:`crops_by_index` returns, one block copy per shift of the images that share it."""
    cropped = torch.empty((len(index), padded.shape[1], h, w), dtype=padded.dtype, device=padded.device)
    for dy in range(padded.shape[2] - h + 1):
        row = shift[0] == dy
        for dx in range(padded.shape[3] - w + 1):
            chosen = row & (shift[1] == dx)
            cropped[chosen] = padded[index[chosen], :, dy:dy + h, dx:dx + w]
    return cropped


class DeviceBatches:
    """Mini-batches ``(images (B, 3, 32, 32) uint8, labels (B,))`` from tensors already on the device.

    Shuffling and augmentation happen on the device (no worker processes, no host-device copies);
    ``channels_last`` hands out batches in the memory format fast GPU convolutions prefer.
    ``alternate_flip_seed`` (with ``augment``) turns the random flip into airbench's alternating flip:
    a seeded random half of the images is mirrored in odd epochs and the other half in even ones, so
    every image is seen both ways in every two epochs; :meth:`set_epoch` (called by
    :func:`~course_lib.core.training.fit`) says which epoch is next.
    """

    def __init__(self, split: CifarSplit, device: torch.device | str, batch_size: int, *,
                 shuffle: bool = False, augment: bool = False, crop_pad: int = 4, channels_last: bool = False,
                 drop_last: bool = False, alternate_flip_seed: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = torch.from_numpy(split.images).permute(0, 3, 1, 2).contiguous().to(device)
        self.labels = torch.from_numpy(split.labels).to(device)
        self.batch_size, self.shuffle, self.augment, self.crop_pad = batch_size, shuffle, augment, crop_pad
        self.padded = reflect_pad(self.images, crop_pad) if augment else None  # once, not every batch
        self.channels_last, self.drop_last = channels_last, drop_last
        self.odd_epoch_flips = None
        if alternate_flip_seed is not None:
            generator = torch.Generator().manual_seed(alternate_flip_seed)
            self.odd_epoch_flips = (torch.rand(len(self.labels), generator=generator) < 0.5).to(device)
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        """The 1-based epoch the next iteration serves (it decides the alternating flip)."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n).to(self.labels.device) if self.shuffle else None
        flips = self.odd_epoch_flips
        if flips is not None and self.epoch % 2 == 0:
            flips = ~flips
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = start + self.batch_size
            idx = order[start:stop] if order is not None else slice(start, stop)
            if self.augment:
                assert self.padded is not None  # made with the split when it augments
                every = torch.arange(n, device=self.labels.device)
                rows = idx if isinstance(idx, torch.Tensor) else every[idx]
                x = crop_flip_padded(self.padded, rows, self.crop_pad, None if flips is None else flips[idx])
            else:
                x = self.images[idx]
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]
