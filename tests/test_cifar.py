"""course_lib.cifar_data and course_lib.cifar: loading + caching, device batches, the CNN, training."""

from __future__ import annotations

import pickle

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from course_lib import cifar, cifar_data
from course_lib.cifar import (
    CifarCNN,
    CNNConfig,
    TrainConfig,
    build_model,
    count_parameters,
    per_class_accuracy,
    plot_confusion,
    plot_examples,
    plot_history,
    plot_misclassified,
    predict_logits,
    train_cnn,
)
from course_lib.cifar_data import CLASSES, CifarSplit, DeviceBatches, load_cifar10, random_crop_flip
from course_lib.data import MissingDataError
from course_lib.reproducibility import seed_everything


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


def _image(label: int, i: int) -> np.ndarray:
    rng = np.random.default_rng(100 * label + i)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def make_jpg_root(root, per_class=(3, 2)):
    for split, n in zip(("train", "test"), per_class, strict=True):
        for label, name in enumerate(CLASSES):
            folder = root / "cifar10-jpg" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(_image(label, i)).save(folder / f"{i:04d}.jpg", quality=95)
    return root


def make_batches_root(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        with (folder / name).open("wb") as f:  # the official format is a pickle; tests write one
            pickle.dump({b"data": data, b"labels": labels}, f)
    (folder / "batches.meta").write_bytes(b"meta")
    return folder


def test_jpg_layout_decodes_once_into_a_fingerprinted_cache(tmp_path, monkeypatch):
    root = make_jpg_root(tmp_path / "data")
    train = load_cifar10("train", root)
    assert train.images.shape == (30, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [k for k in range(10) for _ in range(3)] and train.source == "cifar10-jpg"
    original = np.asarray(Image.open(root / "cifar10-jpg/train/cat/0001.jpg").convert("RGB"))
    np.testing.assert_array_equal(train.images[3 * 3 + 1], original)
    cached = sorted(p.name for p in (tmp_path / "cache" / "cifar10").iterdir())
    assert len(cached) == 2 and all(n.startswith("cifar10-jpg-train-") for n in cached)

    def no_decoding(*_):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(cifar_data, "_decode_jpgs", no_decoding)
    again = load_cifar10("train", root)
    np.testing.assert_array_equal(again.images, train.images)
    Image.fromarray(_image(0, 99)).save(root / "cifar10-jpg/train/airplane/0000.jpg")  # source changes
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


def test_official_batches_are_read_as_nhwc_and_preferred(tmp_path):
    root = make_jpg_root(tmp_path / "data")
    folder = make_batches_root(root)
    train = load_cifar10("train", root)
    assert train.source == "cifar-10-batches-py" and train.images.shape == (20, 32, 32, 3)
    with (folder / "data_batch_1").open("rb") as f:
        first = pickle.load(f, encoding="bytes")
    np.testing.assert_array_equal(train.images[0, :, :, 1], first[b"data"][0, 1024:2048].reshape(32, 32))
    assert train.labels[:4].tolist() == first[b"labels"]
    assert load_cifar10("test", root, source="cifar10-jpg").source == "cifar10-jpg"


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_official_batches_refuse_pickled_code(tmp_path):
    folder = make_batches_root(tmp_path / "data")
    with (folder / "data_batch_1").open("wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        load_cifar10("train", tmp_path / "data", source="cifar-10-batches-py")


def test_missing_data_and_bad_choices_give_clear_errors(tmp_path):
    with pytest.raises(MissingDataError, match=r"cifar-10-batches-py.*cifar10-jpg"):
        load_cifar10("train", tmp_path)
    with pytest.raises(ValueError, match=r"split='valid' is not valid.*\['train', 'test'\]"):
        load_cifar10("valid", tmp_path)
    with pytest.raises(ValueError, match=r"source='png'.*cifar10-jpg"):
        load_cifar10("train", tmp_path, source="png")


def test_random_crop_flip_moves_and_mirrors_pixels():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).reshape(2, 3, 8, 8)
    out = random_crop_flip(x, pad=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):  # every output is some crop of the padded image, possibly mirrored
        crops = [padded[i, :, r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], cr) or torch.equal(out[i], cr.flip(2)) for cr in crops)
    torch.manual_seed(0)
    assert torch.equal(random_crop_flip(x, pad=2), out)
    assert torch.equal(random_crop_flip(x, pad=0).sort(dim=3).values, x.sort(dim=3).values)


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


@pytest.mark.parametrize(("config", "params"), [
    # convs: 3*3*c_in*c_out weights + 2*c_out batch-norm; head: 16*10 + 10
    (CNNConfig(widths=(8, 16), convs_per_block=2), 232 + 592 + 1184 + 2336 + 170),
    (CNNConfig(widths=(8, 16), convs_per_block=1, stem=4, residual=True, logit_scale=0.125),
     116 + 304 + 2 * 592 + 1184 + 2 * 2336 + 170),
])
def test_cnn_shapes_and_parameter_counts(config, params):
    model = CifarCNN(config, [120.0, 120.0, 110.0], [60.0, 60.0, 65.0])
    logits = model(torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8))
    assert logits.shape == (5, 10)
    assert count_parameters(model) == params


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match="widths"):
        CNNConfig(widths=())
    with pytest.raises(ValueError, match="dropout"):
        CNNConfig(dropout=1.0)
    with pytest.raises(KeyError, match="lr"):
        TrainConfig.from_settings({"epochs": 1, "batch_size": 8})


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


SETTINGS = dict(epochs=2, batch_size=32, lr=0.05, widths=(8, 16), convs_per_block=1, dropout=0.0,
                augment=True, cpu_threads=1)


def test_training_learns_and_a_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    train, test = learnable_split(320, 0), learnable_split(200, 1)
    seed_everything(0)
    model = build_model(SETTINGS, train)
    history = train_cnn(model, train, test, SETTINGS, device="cpu", progress=False)
    accuracy = history.column("test_accuracy")
    assert accuracy[-1] > 0.9 and history.column("train_accuracy")[-1] > 0.9
    assert set(history.last()) >= {"train_loss", "test_loss", "train_eval_loss", "epoch_time_s"}

    calls = []
    real_evaluation = cifar.accuracy_and_loss

    def interrupted_in_epoch_2(*args):
        calls.append(1)
        if len(calls) > 2:  # epoch 1 evaluated train + test and was checkpointed
            raise KeyboardInterrupt
        return real_evaluation(*args)

    seed_everything(0)
    ckpt = tmp_path / "cnn.pt"
    monkeypatch.setattr(cifar, "accuracy_and_loss", interrupted_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_cnn(build_model(SETTINGS, train), train, test, SETTINGS, device="cpu", checkpoint_path=ckpt,
                  progress=False)
    monkeypatch.setattr(cifar, "accuracy_and_loss", real_evaluation)
    torch.manual_seed(123)  # whatever happens between, the checkpoint restores the RNG
    resumed_model = build_model(SETTINGS, train)
    resumed = train_cnn(resumed_model, train, test, SETTINGS, device="cpu", checkpoint_path=ckpt,
                        progress=False)
    assert resumed.column("test_accuracy") == accuracy
    np.testing.assert_allclose(resumed.column("train_loss"), history.column("train_loss"), rtol=1e-6)
    torch.testing.assert_close(predict_logits(resumed_model, DeviceBatches(test, "cpu", 64)),
                               predict_logits(model, DeviceBatches(test, "cpu", 64)))


def test_per_class_accuracy_and_plots():
    labels = np.array([0, 0, 1, 1, 2])
    assert per_class_accuracy(labels, np.array([0, 1, 1, 1, 0]), 3).tolist() == [0.5, 1.0, 0.0]
    split = learnable_split(40, 2)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), size=40)
    figures = [plot_examples(split, per_class=2), plot_misclassified(split, probabilities, n=5),
               plot_confusion(split.labels, probabilities.argmax(1), CLASSES)]
    assert len(figures[1].axes) == 8 and sum(bool(ax.images) for ax in figures[1].axes) == 5
    history = train_cnn(build_model(SETTINGS, split), split, split, {**SETTINGS, "epochs": 1}, device="cpu",
                        progress=False)
    figures.append(plot_history(history))
    for fig in figures:
        plt.close(fig)


def test_real_cifar_test_subset(data_root):
    if not (data_root / "cifar10-jpg").is_dir() and not (data_root / "cifar-10-batches-py").is_dir():
        pytest.skip(f"no CIFAR-10 under {data_root}")
    test = load_cifar10("test", data_root, size=200, seed=0)
    assert test.images.shape == (200, 32, 32, 3) and set(test.labels.tolist()) == set(range(10))
    mean, _ = test.channel_stats()
    assert 100 < mean[0] < 150 and mean[2] < mean[0]  # CIFAR-10 is reddish-grey on average


def test_full_profile_builds_a_resnet9_like_model_that_trains():
    from course_lib.assignments import get_assignment

    settings = {**get_assignment("02").profiles["full"], "epochs": 1, "batch_size": 4}
    split = learnable_split(8, 3)
    model = build_model(settings, split)
    assert 6_000_000 < count_parameters(model) < 8_000_000  # ResNet-9 has 6.6M; one extra residual pair
    assert TrainConfig.from_settings(settings).augment and model.config.residual
    history = train_cnn(model, split, split, settings, device="cpu", progress=False)
    assert np.isfinite(history.last()["train_loss"])
