"""course_lib.cnn.cifar: the CNN (plain and ResNet-9-like), training with resume, evaluation, plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib.cnn import cifar
from course_lib.cnn.cifar import (
    CifarCNN,
    build_model,
    per_class_accuracy,
    plot_confusion,
    plot_examples,
    plot_history,
    plot_misclassified,
    predict_logits,
    run_key,
    train_cnn,
)
from course_lib.cnn.cifar_data import CLASSES, CifarSplit, DeviceBatches
from course_lib.cnn.config import FULL, SMOKE
from course_lib.core.device import seed_everything
from course_lib.core.training import count_parameters


@pytest.mark.parametrize(("architecture", "params"), [
    # convs: 3*3*c_in*c_out weights + 2*c_out batch-norm; head: 16*10 + 10
    (dict(widths=(8, 16), convs_per_block=2), 232 + 592 + 1184 + 2336 + 170),
    (dict(widths=(8, 16), convs_per_block=1, stem=4, residual=True, logit_scale=0.125),
     116 + 304 + 2 * 592 + 1184 + 2 * 2336 + 170),
])
def test_cnn_shapes_and_parameter_counts(architecture, params):
    model = CifarCNN(SMOKE.override(**architecture), [120.0, 120.0, 110.0], [60.0, 60.0, 65.0])
    logits = model(torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8))
    assert logits.shape == (5, 10)
    assert count_parameters(model) == params


def test_run_key_changes_with_settings_seed_and_source():
    key = run_key(SMOKE, 0, "cifar10-jpg")
    assert key == run_key(SMOKE.override(), 0, "cifar10-jpg") and len(key) == 12
    others = {run_key(SMOKE.override(lr=0.2), 0, "cifar10-jpg"), run_key(SMOKE, 1, "cifar10-jpg"),
              run_key(SMOKE, 0, "cifar-10-batches-py")}
    assert key not in others and len(others) == 3


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


SETTINGS = SMOKE.override(epochs=2, batch_size=32, lr=0.05, widths=(8, 16), convs_per_block=1, dropout=0.0,
                          augment=True)


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
    history = train_cnn(build_model(SETTINGS, split), split, split, SETTINGS.override(epochs=1), device="cpu",
                        progress=False)
    figures.append(plot_history(history))
    for fig in figures:
        plt.close(fig)


def test_full_profile_builds_a_resnet9_like_model_that_trains():
    settings = FULL.override(epochs=1, batch_size=4)
    split = learnable_split(8, 3)
    model = build_model(settings, split)
    assert 6_000_000 < count_parameters(model) < 8_000_000  # ResNet-9 has 6.6M; one extra residual pair
    assert model.features[1].residual is not None and model.logit_scale == 0.125  # [0] is the stem
    history = train_cnn(model, split, split, settings, device="cpu", progress=False)
    assert np.isfinite(history.last()["train_loss"])
