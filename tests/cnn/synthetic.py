"""Synthetic CIFAR-10 stand-ins for the tests: a JPEG folder, official-format batches, learnable splits."""

from __future__ import annotations

import pickle

import numpy as np
from PIL import Image

from course_lib.cnn.cifar_data import CLASSES, CifarSplit

PER_BATCH = 4
"""Images in each synthetic pickled batch (the official files hold 10,000)."""


def jpg_image(label: int, i: int) -> np.ndarray:
    rng = np.random.default_rng(100 * label + i)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def make_jpg_root(root, per_class=(3, 2)):
    """``root/cifar10-jpg/{train,test}/<class>/NNNN.jpg`` with ``per_class`` images per class and split."""
    for split, n in zip(("train", "test"), per_class, strict=True):
        for label, name in enumerate(CLASSES):
            folder = root / "cifar10-jpg" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(jpg_image(label, i)).save(folder / f"{i:04d}.jpg", quality=95)
    return root


def make_batches_root(root):
    """``root/cifar-10-batches-py`` in the official pickled format, :data:`PER_BATCH` images a batch
    (use the ``small_batches`` fixture so the loader expects that many)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, PER_BATCH).tolist()
        with (folder / name).open("wb") as f:  # the official format is a pickle; tests write one
            pickle.dump({b"data": data, b"labels": labels}, f)
    (folder / "batches.meta").write_bytes(b"meta")
    return folder


PALETTE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1],
                    [1, 0.5, 0], [0, 0.5, 1], [0.5, 0, 1]])


def learnable_split(n: int, seed: int) -> CifarSplit:
    """Class k = an 8x8 square of colour k at a random place over noise: easy, but needs the convs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 100, (n, 32, 32, 3), dtype=np.uint8)
    for i, (k, (r, c)) in enumerate(zip(labels, rng.integers(0, 24, (n, 2)), strict=True)):
        images[i, r:r + 8, c:c + 8] += (150 * PALETTE[k]).astype(np.uint8)
    return CifarSplit(images, labels, "synthetic")
