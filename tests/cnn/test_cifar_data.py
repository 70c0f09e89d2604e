"""course_lib.cnn.cifar_data: loading and caching (JPEGs, official batches), augmentation, device batches."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.cnn import cifar_data
from course_lib.cnn.cifar_data import (
    CifarSplit,
    DeviceBatches,
    crops_by_block,
    crops_by_index,
    load_cifar10,
    random_crop_flip,
    reflect_pad,
)
from course_lib.core.data import MissingDataError
from tests.cnn.synthetic import jpg_image, make_batches_root, make_jpg_root


def test_jpg_layout_decodes_once_into_a_keyed_cache(tmp_path, monkeypatch, private_cache):
    root = make_jpg_root(tmp_path / "data")
    train = load_cifar10("train", root)
    assert train.images.shape == (30, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [k for k in range(10) for _ in range(3)] and train.source == "cifar10-jpg"
    original = np.asarray(Image.open(root / "cifar10-jpg/train/cat/0001.jpg").convert("RGB"))
    np.testing.assert_array_equal(train.images[3 * 3 + 1], original)
    assert sorted(p.name for p in private_cache.iterdir()) == ["cifar10-jpg-train.npz",
                                                               "cifar10-jpg-train.npz.key.json"]

    def no_decoding(*_):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(cifar_data, "_decode_jpgs", no_decoding)
    again = load_cifar10("train", root)
    np.testing.assert_array_equal(again.images, train.images)
    Image.fromarray(jpg_image(0, 99)).save(root / "cifar10-jpg/train/airplane/0000.jpg")  # source changes
    with pytest.raises(AssertionError, match="decoded again"):
        load_cifar10("train", root)


def test_subset_decodes_only_what_it_needs_and_matches_the_whole_split(tmp_path, monkeypatch):
    root = make_jpg_root(tmp_path / "data")
    decoded = []
    real_decode = cifar_data._decode_jpgs
    monkeypatch.setattr(cifar_data, "_decode_jpgs", lambda paths, desc: decoded.append(len(paths))
                        or real_decode(paths, desc))
    subset = load_cifar10("train", root, size=7, seed=3)
    assert decoded == [7] and len(subset) == 7
    whole = load_cifar10("train", root)
    cut = load_cifar10("train", root, size=7, seed=3)  # now cut from the whole-split cache
    assert decoded == [7, 30]
    np.testing.assert_array_equal(cut.images, subset.images)
    np.testing.assert_array_equal(cut.labels, subset.labels)
    assert set(map(bytes, subset.images)) <= set(map(bytes, whole.images))
    with pytest.raises(ValueError, match="size=31 must be between 1 and 30"):
        load_cifar10("train", root, size=31)


def test_official_batches_are_read_as_nhwc_and_preferred(tmp_path, small_batches):
    root = make_jpg_root(tmp_path / "data")
    folder = make_batches_root(root)
    train = load_cifar10("train", root)
    assert train.source == "cifar-10-batches-py" and train.images.shape == (20, 32, 32, 3)
    with (folder / "data_batch_1").open("rb") as f:
        first = pickle.load(f, encoding="bytes")
    np.testing.assert_array_equal(train.images[0, :, :, 1], first[b"data"][0, 1024:2048].reshape(32, 32))
    assert train.labels[:4].tolist() == first[b"labels"]
    assert load_cifar10("test", root, source="cifar10-jpg").source == "cifar10-jpg"


def test_missing_data_and_bad_choices_give_clear_errors(tmp_path):
    with pytest.raises(MissingDataError, match=r"cifar-10-batches-py.*cifar10-jpg"):
        load_cifar10("train", tmp_path)
    with pytest.raises(ValueError, match=r"split='valid' is not valid.*\['train', 'test'\]"):
        load_cifar10("valid", tmp_path)
    with pytest.raises(ValueError, match=r"source='png'.*cifar10-jpg"):
        load_cifar10("train", tmp_path, source="png")


def test_random_crop_flip_moves_and_mirrors_pixels_with_a_reflected_border():
    torch.manual_seed(0)
    x = torch.arange(1, 2 * 3 * 8 * 8 + 1, dtype=torch.uint8).reshape(2, 3, 8, 8)
    out = random_crop_flip(x, pad=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert out.min() > 0  # no zero frame: the border reflects the image
    padded = torch.nn.functional.pad(x.float(), (2, 2, 2, 2), mode="reflect").to(torch.uint8)
    for i in range(2):  # every output is some crop of the padded image, possibly mirrored
        crops = [padded[i, :, r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], cr) or torch.equal(out[i], cr.flip(2)) for cr in crops)
    torch.manual_seed(0)
    assert torch.equal(random_crop_flip(x, pad=2), out)
    assert torch.equal(random_crop_flip(x, pad=0).sort(dim=3).values, x.sort(dim=3).values)
    chosen = random_crop_flip(x, pad=0, flip=torch.tensor([True, False]))
    assert torch.equal(chosen[0], x[0].flip(2)) and torch.equal(chosen[1], x[1])


def test_reflect_pad_matches_torch_for_every_dtype_and_crops_agree_by_block_and_by_index():
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    for pad in (0, 1, 3):
        expected = torch.nn.functional.pad(x.float(), (pad,) * 4, mode="reflect") if pad else x.float()
        assert reflect_pad(x, pad).dtype == torch.uint8 and torch.equal(reflect_pad(x, pad).float(), expected)
    padded, index = reflect_pad(x, 2), torch.tensor([4, 0, 4, 2, 5])
    shift = torch.randint(0, 5, (2, 5))
    by_block = crops_by_block(padded, index, shift, 8, 8)
    assert torch.equal(by_block, crops_by_index(padded, index, shift, 8, 8))  # the GPU's way, the same
    assert torch.equal(by_block[0], padded[4, :, shift[0, 0]:shift[0, 0] + 8, shift[1, 0]:shift[1, 0] + 8])


def test_device_batches_crop_from_the_split_padded_once_as_batch_by_batch():
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    split = CifarSplit(images, np.arange(40) % 10, "test")
    for shuffle in (True, False):
        batches = DeviceBatches(split, "cpu", 16, shuffle=shuffle, augment=True, crop_pad=2,
                                alternate_flip_seed=0)
        torch.manual_seed(3)
        served = [x for x, _ in batches]
        torch.manual_seed(3)  # the same draws in the same order: the order, then each batch's shifts
        order = torch.randperm(40) if shuffle else torch.arange(40)
        chunks = [order[i:i + 16] for i in range(0, 40, 16)]
        expected = [random_crop_flip(batches.images[c], 2, batches.odd_epoch_flips[c]) for c in chunks]
        assert [len(x) for x in served] == [16, 16, 8]
        assert all(torch.equal(a, b) for a, b in zip(served, expected, strict=True))


def test_alternating_flip_mirrors_every_image_in_one_of_two_epochs():
    n = 64
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    split = CifarSplit(images, np.arange(n), "test")

    def mirrored(batches: DeviceBatches, epoch: int) -> torch.Tensor:
        batches.set_epoch(epoch)
        flags = torch.zeros(n, dtype=torch.bool)
        for x, y in batches:  # crop_pad=0: an image is either itself or its mirror
            flags[y] = (x != batches.images[y]).flatten(1).any(1)
        return flags

    batches = DeviceBatches(split, "cpu", 16, shuffle=True, augment=True, crop_pad=0, alternate_flip_seed=3)
    odd, even, odd_again = mirrored(batches, 1), mirrored(batches, 2), mirrored(batches, 3)
    assert torch.equal(odd, ~even) and torch.equal(odd, odd_again)
    assert 16 < odd.sum() < 48  # a random half, not all or none
    again = DeviceBatches(split, "cpu", 16, shuffle=True, augment=True, crop_pad=0, alternate_flip_seed=3)
    assert torch.equal(mirrored(again, 1), odd)  # the seed alone decides it (so a resumed run agrees)
    other = DeviceBatches(split, "cpu", 16, shuffle=True, augment=True, crop_pad=0, alternate_flip_seed=4)
    assert not torch.equal(mirrored(other, 1), odd)


def test_device_batches_cover_the_split_once_per_epoch():
    split = CifarSplit(np.zeros((10, 32, 32, 3), np.uint8), np.arange(10), "test")
    batches = DeviceBatches(split, "cpu", 4, shuffle=True, channels_last=True)
    assert len(batches) == 3
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    x, _ = next(iter(batches))
    assert x.shape == (4, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)
    assert len(DeviceBatches(split, "cpu", 4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        DeviceBatches(split, "cpu", 0)


def test_real_cifar_test_subset(data_root):
    if not (data_root / "cifar10-jpg").is_dir() and not (data_root / "cifar-10-batches-py").is_dir():
        pytest.skip(f"no CIFAR-10 under {data_root}")
    test = load_cifar10("test", data_root, size=200, seed=0)
    assert test.images.shape == (200, 32, 32, 3) and set(test.labels.tolist()) == set(range(10))
    mean, _ = test.channel_stats()
    assert 100 < mean[0] < 150 and mean[2] < mean[0]  # CIFAR-10 is reddish-grey on average
