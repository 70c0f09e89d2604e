"""course_lib.cnn.torchvision_data: the student's transform of the course recipe (checked, and wrong
variants rejected with clear messages), and the torchvision datasets serving the images that
load_cifar10 reads, in the same order and subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import datasets, transforms

from course_lib.cnn import torchvision_data
from course_lib.cnn.cifar_data import load_cifar10
from course_lib.cnn.torchvision_data import cifar10_dataset, course_transform, plot_image_grid
from tests.cnn import checks
from tests.cnn.synthetic import make_batches_root, make_jpg_root


@pytest.mark.exercise("course_transform")
@pytest.mark.parametrize("crop_pad", [4, 2])
def test_course_transform(crop_pad):
    checks.check_course_transform(course_transform, crop_pad)


def _floats(augment, pad):
    return transforms.ToTensor()


def _black_border(augment, pad):
    shifts = [transforms.RandomCrop(32, padding=pad), transforms.RandomHorizontalFlip()] if augment else []
    return transforms.Compose([*shifts, transforms.PILToTensor()])


def _no_flip(augment, pad):
    shifts = [transforms.RandomCrop(32, padding=pad, padding_mode="reflect")] if augment else []
    return transforms.Compose([*shifts, transforms.PILToTensor()])


@pytest.mark.parametrize("wrong, message", [
    (_floats, r"expected a uint8 tensor \(3, 32, 32\) on the 0..255 scale, got torch.float32 \(3, 32, 32\)"),
    (_black_border, r"expected a 32x32 window of the image padded by 4 pixels with its reflection "
                    r"\(padding_mode='reflect', not a black border\)"),
    (_no_flip, r"expected a mirror image about half of the time over 60 draws, got never"),
])
def test_wrong_transforms_fail_the_transform_check(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_course_transform(wrong)


def test_image_folder_serves_the_images_of_load_cifar10_in_order(tmp_path):
    root = make_jpg_root(tmp_path / "data")
    for split in ("train", "test"):
        arrays = load_cifar10(split, root)
        dataset = cifar10_dataset(split, root)
        assert isinstance(dataset, datasets.ImageFolder) and dataset.classes == list(arrays.classes)
        assert [label for _, label in dataset.samples] == arrays.labels.tolist()
        assert np.array_equal(np.asarray(dataset[7][0]), arrays.images[7])
    subset = cifar10_dataset("train", root, transform=transforms.PILToTensor(), size=5, seed=3)
    expected = load_cifar10("train", root, size=5, seed=3)
    served = torch.stack([subset[i][0] for i in range(5)])
    assert torch.equal(served, torch.from_numpy(expected.images).permute(0, 3, 1, 2))
    assert [subset[i][1] for i in range(5)] == expected.labels.tolist()
    figure = plot_image_grid(served, torch.tensor([subset[i][1] for i in range(5)]), expected.classes, nrow=3)
    assert figure.axes[0].images[0].get_array().shape == (2 + 2 * 34, 2 + 3 * 34, 3)  # make_grid's layout


def test_the_official_batches_are_read_by_torchvision_s_cifar10(tmp_path, small_batches, monkeypatch):
    root = tmp_path / "data"
    make_batches_root(root)
    made = []

    class RecordingCIFAR10:  # torchvision's reader checks the official files' md5: not the synthetic ones
        def __init__(self, root, train, transform):
            made.append((root, train, transform))

        def __len__(self):
            return 20

    monkeypatch.setattr(torchvision_data.datasets, "CIFAR10", RecordingCIFAR10)
    assert isinstance(cifar10_dataset("test", root), RecordingCIFAR10)
    subset = cifar10_dataset("train", root, transform="t", size=4)
    assert made == [(str(root), False, None), (str(root), True, "t")] and len(subset) == 4
