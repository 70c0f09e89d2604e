"""CIFAR-10 as torchvision serves it, as in the course: ``datasets.ImageFolder`` on the JPEG copy
(``cifar10-jpg/{train,test}/<class>/NNNN.jpg``) or ``datasets.CIFAR10`` on the official batches (online:
``download=True``), ``transforms`` for the course recipe's augmentation, and ``utils.make_grid`` for
pictures. The images are those of :func:`~course_lib.cnn.cifar_data.load_cifar10`, in the same order,
so a seeded subset of one is the same subset of the other.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import torch
from torch.utils.data import Dataset, Subset
from torchvision import datasets, transforms, utils

from course_lib.cnn.cifar_data import _subset, find_source
from course_lib.core.settings import check_choice


def course_transform(augment: bool = False, crop_pad: int = 4) -> transforms.Compose:
    """The course recipe's per-image transform: a PIL image (32x32 RGB) -> a uint8 tensor (3, 32, 32) on
    the 0..255 scale, channels first (NCHW once batched), as the models take it (they normalise it
    themselves with the training set's channel statistics).

    With ``augment``, first ``transforms.RandomCrop(32, padding=crop_pad, padding_mode="reflect")`` (a
    random shift by up to ``crop_pad`` pixels, the border filled by reflection, not with black) and then
    ``transforms.RandomHorizontalFlip()`` (a mirror image half of the time), both drawn anew every time
    an image is served; then ``transforms.PILToTensor()``. Without ``augment``, only the last.
    """
    ### BEGIN SOLUTION
    steps: list = []
    if augment:
        steps += [transforms.RandomCrop(32, padding=crop_pad, padding_mode="reflect"),
                  transforms.RandomHorizontalFlip()]
    return transforms.Compose([*steps, transforms.PILToTensor()])
    ### END SOLUTION


def cifar10_dataset(split: str, data_dir: str | os.PathLike | None = None, transform=None,
                    download: bool = False, size: int | None = None, seed: int = 0) -> Dataset:
    """A CIFAR-10 split (``"train"`` or ``"test"``) as a torchvision dataset of ``(transform(image), label)``.

    The official batches (``<data root>/cifar-10-batches-py``, torchvision's own layout and checksums)
    through ``datasets.CIFAR10`` when present or when ``download`` fetches them, else the JPEG copy through
    ``datasets.ImageFolder`` (its sorted class folders give the standard labels 0..9): the source that
    :func:`~course_lib.cnn.cifar_data.load_cifar10` reads. ``size`` keeps the seeded subset of
    ``load_cifar10(split, size=size, seed=seed)`` (a ``Subset``); ``None`` keeps all.
    """
    check_choice("split", split, ("train", "test"))
    name, folder = find_source(data_dir, "auto", download)
    dataset: Dataset
    if name == "cifar-10-batches-py":
        dataset = datasets.CIFAR10(str(folder.parent), train=split == "train", transform=transform)
    else:
        dataset = datasets.ImageFolder(str(folder / split), transform=transform)
    keep = _subset(len(dataset), size, seed, split)  # type: ignore[arg-type]
    return dataset if keep is None else Subset(dataset, keep.tolist())


def plot_image_grid(images: torch.Tensor, labels: torch.Tensor | None = None, classes=None, nrow: int = 8,
                    title: str = ""):
    """A figure of ``images`` (B, 3, H, W), uint8 0..255, laid out by ``torchvision.utils.make_grid`` in rows
    of ``nrow``; with ``labels`` and ``classes`` the title lists each row's class names."""
    grid = utils.make_grid(images, nrow=nrow, padding=2, pad_value=255)
    fig, ax = plt.subplots(figsize=(nrow * 0.9, grid.shape[1] / grid.shape[2] * nrow * 0.9 + 0.5))
    ax.imshow(grid.permute(1, 2, 0).numpy())
    ax.axis("off")
    if labels is not None and classes is not None:
        rows = [" ".join(classes[int(k)] for k in labels[i:i + nrow]) for i in range(0, len(labels), nrow)]
        title = "\n".join(filter(None, [title, *rows]))
    ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig
