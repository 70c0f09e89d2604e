"""Fault injection for assignment 02: bad knobs, corrupt CIFAR files, damaged or stale caches and
checkpoints, a killed training run, divergence. Each trial asserts the outcome (message, rebuilt value,
resumed metrics)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from course_lib.cnn import cifar, cifar_data
from course_lib.cnn.cifar import build_model, predict_logits, train_cnn
from course_lib.cnn.cifar_data import DeviceBatches, load_cifar10
from course_lib.cnn.config import ASSIGNMENT, SMOKE
from course_lib.core import training
from course_lib.core.data.registry import CorruptDataError
from course_lib.core.device import seed_everything
from course_lib.core.runs import start_run
from course_lib.core.training import TrainingDiverged, load_checkpoint, save_checkpoint
from tests.cnn.synthetic import make_batches_root, make_jpg_root

# ---- knobs of the real assignment -------------------------------------------------------------------


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("knobs", "error", "message"), [
    ({"dropout": 1.0}, ValueError, r"dropout=1.0 is not valid; it must be < 1"),
    ({"widths": []}, ValueError, r"widths=\(\) is not valid; give at least one block width"),
    ({"crop_pad": 32}, ValueError, r"crop_pad=32 is not valid; .* must be < 32"),
    ({"batch_size": 0}, ValueError, r"batch_size=0 is not valid; it must be >= 1"),
    ({"lr": "fast"}, TypeError, r"lr='fast' has the wrong type"),
])
def test_bad_knobs_stop_the_run_before_anything_is_written(tmp_path, knobs, error, message):
    out = tmp_path / "out"
    with pytest.raises(error, match=message):
        start_run(ASSIGNMENT, {"profile": "smoke", "output_dir": str(out), **knobs})
    assert not out.exists()


# ---- corrupt source files ---------------------------------------------------------------------------


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def _write_pickle(path, value) -> None:
    with path.open("wb") as f:
        pickle.dump(value, f)


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("damage", "message"), [
    ("truncated", r"data_batch_3: not a readable CIFAR-10 batch \((EOFError|UnpicklingError)"),
    ("not_a_pickle", r"data_batch_3: not a readable CIFAR-10 batch"),
    ("missing_key", r"data_batch_3: a CIFAR-10 batch holds the keys 'data' and 'labels'; \['labels'\] miss"),
    ("not_a_dict", r"data_batch_3: a CIFAR-10 batch holds the keys .*\['data', 'labels'\] missing"),
    ("wrong_shape", r"data_batch_3: expected data \(4, 3072\) uint8 .*got data \(4, 1024\) uint8"),
    ("bad_labels", r"data_batch_3: expected .*labels a list of 4 ints in 0\.\.9; got .*labels list of 4"),
    ("code", r"data_batch_3: not a readable CIFAR-10 batch .*builtins\.print, which is not allowed"),
])
def test_corrupt_official_batches_name_the_file(tmp_path, small_batches, capsys, damage, message):
    folder = make_batches_root(tmp_path / "data")
    path = folder / "data_batch_3"
    data = np.zeros((4, 3072), np.uint8)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "not_a_pickle":
        path.write_bytes(b"<html>404 not found</html>")
    elif damage == "missing_key":
        _write_pickle(path, {b"data": data})
    elif damage == "not_a_dict":
        _write_pickle(path, [data])
    elif damage == "wrong_shape":
        _write_pickle(path, {b"data": data[:, :1024], b"labels": [0, 1, 2, 3]})
    elif damage == "bad_labels":
        _write_pickle(path, {b"data": data, b"labels": [0, 1, 2, 10]})
    else:
        _write_pickle(path, {b"data": _Exploit(), b"labels": []})
    with pytest.raises(CorruptDataError, match=message):
        load_cifar10("train", tmp_path / "data", source="cifar-10-batches-py")
    assert "pwned" not in capsys.readouterr().out
    assert not list(cifar_data.cache_dir("cifar10").iterdir())  # nothing cached from a bad file


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("damage", "message"), [
    ("truncated", r"cat/0001\.jpg: cannot decode it as a JPEG"),
    ("not_an_image", r"cat/0001\.jpg: cannot decode it as a JPEG"),
    ("wrong_size", r"cat/0001\.jpg: expected a 32x32 image, got 16x16"),
])
def test_corrupt_jpegs_name_the_file(tmp_path, damage, message):
    from PIL import Image

    root = make_jpg_root(tmp_path / "data")
    path = root / "cifar10-jpg/train/cat/0001.jpg"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "not_an_image":
        path.write_text("not a picture")
    else:
        Image.new("RGB", (16, 16)).save(path)
    with pytest.raises(CorruptDataError, match=message):
        load_cifar10("train", root)


# ---- damaged or stale caches ------------------------------------------------------------------------


def _fresh(monkeypatch, tmp_path, *args, **kwargs):
    """The same load into an empty cache folder: what a rebuilt cache must equal."""
    with monkeypatch.context() as m:
        m.setenv("COURSE_CACHE_DIR", str(tmp_path / "fresh-cache"))
        return load_cifar10(*args, **kwargs)


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("source", ["cifar10-jpg", "cifar-10-batches-py"])
@pytest.mark.parametrize("damage", ["truncated", "too_few_images", "float_images", "labels_out_of_range",
                                    "not_npz", "other_code", "other_source_files"])
def test_damaged_or_stale_caches_are_rebuilt_with_a_notice(tmp_path, monkeypatch, capsys, private_cache,
                                                           small_batches, source, damage):
    root = make_jpg_root(tmp_path / "data")
    if source == "cifar-10-batches-py":
        make_batches_root(root)
    size = 7 if source == "cifar10-jpg" else None  # the smoke profile's JPEG subset; the whole batches split
    first = load_cifar10("train", root, size=size, seed=3, source=source)
    (cache,) = private_cache.glob("*.npz")
    assert capsys.readouterr().out == ""
    images, labels = first.images, first.labels
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:1000])
    elif damage == "not_npz":
        np.save(cache.open("wb"), images)
    elif damage == "other_code":
        monkeypatch.setattr(cifar_data, "code_digest", lambda *_: "edited")
    elif damage == "other_source_files":
        if source == "cifar10-jpg":
            (root / "cifar10-jpg/train/dog/0002.jpg").write_bytes(
                (root / "cifar10-jpg/train/cat/0002.jpg").read_bytes())
        else:
            batch = root / "cifar-10-batches-py/data_batch_1"
            _write_pickle(batch, {b"data": np.full((4, 3072), 7, np.uint8), b"labels": [1, 2, 3, 4]})
    else:
        bad = {"too_few_images": (images[:-1], labels[:-1]), "labels_out_of_range": (images, labels + 10),
               "float_images": (images.astype(np.float32), labels)}[damage]
        with cache.open("wb") as f:
            np.savez(f, images=bad[0], labels=bad[1])
    again = load_cifar10("train", root, size=size, seed=3, source=source)
    out = capsys.readouterr().out
    stale = damage in ("other_code", "other_source_files")
    assert out.count("\n") == 1 and f"CIFAR-10 cache: {cache.name}" in out
    assert ("was made by other settings, data or code" if stale else "is damaged") in out
    expected = _fresh(monkeypatch, tmp_path, "train", root, size=size, seed=3, source=source)
    np.testing.assert_array_equal(again.images, expected.images)
    np.testing.assert_array_equal(again.labels, expected.labels)
    if damage != "other_source_files":
        np.testing.assert_array_equal(again.images, first.images)
    load_cifar10("train", root, size=size, seed=3, source=source)  # the rebuilt cache is served
    assert capsys.readouterr().out == ""


# ---- training: killed, damaged or stale checkpoints, divergence --------------------------------------

SETTINGS = SMOKE.override(epochs=2, batch_size=16, lr=0.05, widths=(4, 8), dropout=0.25, augment=True)
COMPARED = ("train_loss", "train_eval_loss", "test_loss", "train_accuracy", "test_accuracy", "lr")


def _data():
    rng = np.random.default_rng(0)
    return tuple(cifar_data.CifarSplit(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                                       rng.integers(0, 10, n), "synthetic") for n in (64, 32))


def _train(checkpoint=None, settings=SETTINGS, seed=0, data=None):
    train, test = data or _data()
    seed_everything(0)
    model = build_model(settings, train)
    history = train_cnn(model, train, test, settings, seed=seed, device="cpu", checkpoint_path=checkpoint,
                        progress=False)
    return history, predict_logits(model, DeviceBatches(test, "cpu", 32))


def _same_run(history, logits, reference) -> None:
    for column in COMPARED:
        assert history.column(column) == reference[0].column(column), column
    assert torch.equal(logits, reference[1])


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("alternate_flip", [False, True])
def test_killed_training_resumes_exactly(tmp_path, monkeypatch, alternate_flip):
    """Shuffling, crop/flip augmentation and dropout draw from torch's global generator, the alternating
    flip from the seed and the epoch: the resumed run repeats the uninterrupted one exactly."""
    settings = SETTINGS.override(alternate_flip=alternate_flip)
    straight = _train(settings=settings)
    real_save = training.save_checkpoint

    def killed_after_epoch_1(path, state):
        real_save(path, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt

    ckpt = tmp_path / "cnn.pt"
    monkeypatch.setattr(training, "save_checkpoint", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        _train(ckpt, settings=settings)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    assert load_checkpoint(ckpt)["epoch"] == 1
    torch.manual_seed(123)  # whatever ran in between; _train reseeds anyway and the checkpoint restores
    torch.rand(1000)
    history, logits = _train(ckpt, settings=settings)
    _same_run(history, logits, straight)
    assert load_checkpoint(ckpt)["epoch"] == 2


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("damage", ["truncated", "wrong_shapes", "other_settings", "other_seed", "other_data",
                                    "other_code"])
def test_damaged_or_stale_checkpoints_train_from_the_start(tmp_path, monkeypatch, capsys, damage):
    ckpt = tmp_path / "cnn.pt"
    fresh = _train()
    if damage in ("truncated", "wrong_shapes"):
        _train(ckpt)
        if damage == "truncated":
            ckpt.write_bytes(ckpt.read_bytes()[:2000])
        else:
            state = load_checkpoint(ckpt)
            state["model"]["head.3.weight"] = torch.zeros(10, 5)
            save_checkpoint(ckpt, state)
    elif damage == "other_settings":
        _train(ckpt, settings=SETTINGS.override(lr=0.02))
    elif damage == "other_seed":
        _train(ckpt, seed=1)
    elif damage == "other_data":
        train, test = _data()
        _train(ckpt, data=(train, cifar_data.CifarSplit(test.images[::-1].copy(), test.labels, test.source)))
    else:
        with monkeypatch.context() as m:
            m.setattr(cifar, "code_digest", lambda *_: "edited")
            _train(ckpt)
    capsys.readouterr()
    history, logits = _train(ckpt)
    out = capsys.readouterr().out
    notice = {"truncated": "is damaged", "wrong_shapes": "does not fit this model"}.get(
        damage, "was made by other settings, data or code")
    assert out.count("\n") == 1 and f"checkpoint cnn.pt {notice}" in out and "training from the start" in out
    assert history.column("epoch") == [1, 2]
    _same_run(history, logits, fresh)


@pytest.mark.fault("clear_error")
def test_a_huge_learning_rate_stops_with_training_diverged():
    with pytest.raises(TrainingDiverged, match=r"loss became .* \(.*limit 6\.908\); lower the learning rate"):
        _train(settings=SETTINGS.override(lr=1e4))
