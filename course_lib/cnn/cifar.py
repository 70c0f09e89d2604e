"""A configurable CNN for CIFAR-10: model, training with :func:`course_lib.core.training.fit`, evaluation,
plots.

The networks (``settings.architecture``): :class:`~course_lib.cnn.course_vgg.CourseVGG` (``"vgg"``) is the
course's VGG-like recipe (five conv blocks, a 1024-128-10 head with dropout, trained with Adam), which the
student builds; :class:`~course_lib.cnn.airbench.AirbenchNet` (``"airbench"``); :class:`CifarCNN` (``"fast"``)
is the workbook's configurable network, a plain one (blocks of conv-BN-ReLU + max-pool, a dropout head)
or a ResNet-9-like one (a stem conv and a residual pair of convs in every block).
Training keeps the data on the device as uint8 (:class:`~course_lib.cnn.cifar_data.DeviceBatches`),
augments there, uses channels_last and bf16 autocast on CUDA, and either SGD with Nesterov momentum and a
one-cycle learning-rate schedule stepped every batch, or Adam at a constant rate. Every epoch runs the
student's :func:`~course_lib.cnn.loops.train_epoch` inside core ``fit`` and measures with the student's
:func:`~course_lib.cnn.loops.evaluate_classifier`. The training loss of every batch is kept (core
``fit``); the curves show its mean over every ``log_every`` batches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.cnn.airbench import AirbenchNet, LookaheadSGD, Muon
from course_lib.cnn.cifar_data import CifarSplit, DeviceBatches, reflect_pad
from course_lib.cnn.config import CNNSettings
from course_lib.cnn.course_vgg import CourseVGG
from course_lib.cnn.loops import evaluate_classifier, train_epoch
from course_lib.core.device import autocast
from course_lib.core.digests import code_digest, json_digest
from course_lib.core.plots import plot_confusion_matrix, plot_curves
from course_lib.core.training import History, RateSchedule, divergence_limit, fit


class Batches(Protocol):
    """Training batches with a length (the batches of an epoch), as :class:`DeviceBatches` and a
    ``DataLoader`` are."""

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution (same padding, no bias), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class ConvBlock(nn.Module):
    """``n_convs`` conv-BN-ReLU layers, 2x2 max-pool, then optionally ``x + two more conv-BN-ReLU(x)``."""

    def __init__(self, c_in: int, c_out: int, n_convs: int, residual: bool) -> None:
        super().__init__()
        layers = [conv_bn_relu(c_in if i == 0 else c_out, c_out) for i in range(n_convs)]
        self.body = nn.Sequential(*layers, nn.MaxPool2d(2))
        pair = [conv_bn_relu(c_out, c_out), conv_bn_relu(c_out, c_out)]
        self.residual = nn.Sequential(*pair) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        return x + self.residual(x) if self.residual is not None else x


class CifarCNN(nn.Module):
    """Images (B, 3, H, W), uint8 or float in 0..255, to logits (B, num_classes).

    The architecture comes from ``settings`` (``widths``, ``convs_per_block``, ``stem``, ``residual``,
    ``dropout``, ``logit_scale``); normalisation with the training set's channel ``mean``/``std``
    (0..255 scale, each (3,)) is part of the model.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, settings: CNNSettings, mean: Sequence[float], std: Sequence[float],
                 num_classes: int = 10) -> None:
        super().__init__()
        self.logit_scale = settings.logit_scale
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))
        c_in = 3
        stem = []
        if settings.stem is not None:
            stem, c_in = [conv_bn_relu(3, settings.stem)], settings.stem
        blocks = []
        for width in settings.widths:
            blocks.append(ConvBlock(c_in, width, settings.convs_per_block, settings.residual))
            c_in = width
        self.features = nn.Sequential(*stem, *blocks)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(settings.dropout),
                                  nn.Linear(c_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - self.mean) / self.std
        return self.head(self.features(x)) * self.logit_scale


LOOKAHEAD_START = 0.3
"""Share of the training steps after which :class:`~course_lib.cnn.airbench.LookaheadSGD` averages."""
WHITENING_IMAGES = 5000
"""Training images whose patches set :class:`~course_lib.cnn.airbench.AirbenchNet`'s whitening layer."""


def build_model(settings: CNNSettings, train: CifarSplit) -> nn.Module:
    """The network of ``settings.architecture`` (:class:`CifarCNN` for ``"fast"``,
    :class:`~course_lib.cnn.airbench.AirbenchNet` for ``"airbench"``, whitened with a seeded random
    :data:`WHITENING_IMAGES` of ``train`` (not its first ones: the JPEG copy lists the images class by
    class), :class:`CourseVGG` at ``vgg_width`` for ``"vgg"``), normalised with ``train``'s channel
    statistics."""
    mean, std = train.channel_stats()
    if settings.architecture == "airbench":
        images = torch.from_numpy(train.subset(WHITENING_IMAGES).images).permute(0, 3, 1, 2)
        return AirbenchNet(settings.widths, mean.tolist(), std.tolist(), images, settings.logit_scale,
                           num_classes=len(train.classes))
    if settings.architecture == "vgg":
        return CourseVGG(mean.tolist(), std.tolist(), width=settings.vgg_width, dropout=settings.dropout,
                         num_classes=len(train.classes), image_size=train.images.shape[1])
    return CifarCNN(settings, mean.tolist(), std.tolist(), num_classes=len(train.classes))


def augmented_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """airbench's test-time augmentation, logits (B, K) float32 of images (B, C, H, W): half the mean
    logits of ``x`` and its mirror, half those of ``x`` shifted one pixel up-left and one down-right
    (reflected border), each with its mirror too: six forward passes."""

    def with_mirror(v: torch.Tensor) -> torch.Tensor:
        v = v.contiguous(memory_format=torch.channels_last)
        return (model(v).float() + model(v.flip(3)).float()) / 2

    h, w = x.shape[2:]
    padded = reflect_pad(x, 1)
    shifted = (with_mirror(padded[:, :, :h, :w]) + with_mirror(padded[:, :, 2:, 2:])) / 2
    return (with_mirror(x) + shifted) / 2


@torch.no_grad()
def predict_logits(model: nn.Module, batches: DeviceBatches, amp: bool = False,
                   tta: bool = False) -> torch.Tensor:
    """Logits (N, K) float32 for every image of ``batches`` (in order), in eval mode; with ``tta`` those
    of :func:`augmented_logits`."""
    was_training = model.training
    model.eval()
    device = batches.labels.device
    with autocast(device, amp):
        logits = torch.cat([augmented_logits(model, x) if tta else model(x).float() for x, _ in batches])
    model.train(was_training)
    return logits


def predict_proba(model: nn.Module, split: CifarSplit, device: torch.device | str, amp: bool = False,
                  batch_size: int = 1024, tta: bool = False) -> np.ndarray:
    """Class probabilities (N, K) float32 for every image of ``split`` (``tta``: :func:`predict_logits`)."""
    batches = DeviceBatches(split, device, batch_size, channels_last=True)
    return torch.softmax(predict_logits(model, batches, amp, tta), dim=1).cpu().numpy()


def run_key(settings: CNNSettings, seed: int, source: str) -> str:
    """A short fingerprint of what determines a training run (for checkpoint names)."""
    return json_digest({"settings": settings.to_dict(), "seed": seed, "source": source})


def checkpoint_key(settings: CNNSettings, seed: int, train: CifarSplit, test: CifarSplit,
                   batches: Batches | None = None) -> dict:
    """What determines a training run: every knob, the seed, the data (source and a digest of the
    train and test arrays), the code of :mod:`course_lib.cnn` and, when :func:`train_cnn` trains on
    other ``batches`` than its device batches, their kind."""
    key = {"settings": settings.to_dict(), "seed": seed, "source": train.source,
           "data": {"train": train.digest(), "test": test.digest()},
           "code": code_digest("course_lib.cnn", "course_lib.core.training")}
    return key if batches is None else {**key, "batches": type(batches).__name__}


def one_cycle(step: int, total: int, warmup: float, start: float, end: float) -> float:
    """The one-cycle factor on the peak rate at ``step`` (0-based) of ``total`` steps: linear from
    ``start`` to 1 over the first ``warmup`` share of the steps, then linear down to ``end`` at the last
    step (and there it stays)."""
    step, last = min(step, total - 1), max(total - 1, 1)
    peak = warmup * last
    if step <= peak:
        return start + (1 - start) * step / peak if peak > 0 else 1.0
    return 1 + (end - 1) * (step - peak) / (last - peak)


def make_optimizer(model: nn.Module, settings: CNNSettings,
                   steps_per_epoch: int) -> tuple[torch.optim.Optimizer, RateSchedule | None]:
    """``(optimizer, per-step learning-rate schedule or None)`` for ``settings.optimizer``, the one place
    a run's learning rate is set: SGD with Nesterov momentum and a one-cycle schedule (:func:`one_cycle`:
    from ``lr_start`` to the peak ``lr`` over the ``warmup`` share of the steps, then down to ``lr_end``)
    (``"sgd_one_cycle"``); the same for everything but the conv filters, which step by Muon at
    ``muon_lr`` with ``muon_momentum`` on the same schedule (``"muon"``, airbench94_muon's recipe,
    :class:`~course_lib.cnn.airbench.Muon`); or Adam at a constant ``lr`` (``"adam"``, the course's
    choice); SGD and Adam with ``weight_decay``. Only parameters that train are optimised; with SGD the
    batch-norm shifts take ``bias_lr_scale`` times the rate and the weight decay divided by it, the bias
    of an :class:`~course_lib.cnn.airbench.AirbenchNet`'s whitening layer stops after
    ``whiten_bias_epochs`` (its rate drops to 0 and the model's ``whiten_bias_trains`` turns false, so the
    backward pass no longer computes its gradient; with Muon it trains as a shift does, its rate falling
    linearly to 0 by then, as in airbench94_muon), and ``lookahead`` averages the weights over the last
    ``1 - LOOKAHEAD_START`` of the steps (:class:`~course_lib.cnn.airbench.LookaheadSGD`)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "adam":
        return torch.optim.Adam(trained, lr=settings.lr, weight_decay=settings.weight_decay), None
    total = max(settings.epochs * steps_per_epoch, 1)
    muon = settings.optimizer == "muon"

    def factor(step: int) -> float:
        return one_cycle(step, total, settings.warmup, settings.lr_start, settings.lr_end)

    frozen_from = (settings.whiten_bias_epochs * steps_per_epoch
                   if isinstance(model, AirbenchNet) and settings.whiten_bias_epochs is not None else None)

    def whiten_bias_factor(step: int) -> float:
        trains = frozen_from is None or step < frozen_from
        if isinstance(model, AirbenchNet):
            model.whiten_bias_trains = trains  # a held bias takes no gradient (airbench's)
        if not trains:
            return 0.0
        return 1 - step / frozen_from if muon and frozen_from else factor(step)

    bn_shifts = {id(m.bias) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    whiten_bias = ({id(model.whiten.bias)} if isinstance(model, AirbenchNet) and frozen_from is not None
                   else set())
    filters = {id(p) for p in trained if p.dim() == 4} if muon else set()
    scale, wd = settings.bias_lr_scale, settings.weight_decay
    bias_scale = scale if muon else 1.0  # airbench94_muon's bias rate; airbench94's main rate
    groups = [({"params": [p for p in trained if id(p) not in bn_shifts | whiten_bias | filters],
                "lr": settings.lr, "weight_decay": wd}, factor),
              ({"params": [p for p in trained if id(p) in bn_shifts], "lr": settings.lr * scale,
                "weight_decay": wd / scale}, factor),
              ({"params": [p for p in trained if id(p) in whiten_bias], "lr": settings.lr * bias_scale,
                "weight_decay": wd / bias_scale}, whiten_bias_factor),
              ({"params": [p for p in trained if id(p) in filters], "lr": settings.muon_lr,
                "momentum": settings.muon_momentum, "weight_decay": 0.0, "orthogonalise": True}, factor)]
    groups = [(g, f) for g, f in groups if g["params"]]
    optimizer: torch.optim.Optimizer
    if muon:
        optimizer = Muon([g for g, _ in groups], lr=settings.lr, momentum=settings.momentum)
    elif settings.lookahead:
        optimizer = LookaheadSGD([g for g, _ in groups], total=total, start=round(LOOKAHEAD_START * total),
                                 momentum=settings.momentum, nesterov=True)
    else:
        optimizer = torch.optim.SGD([g for g, _ in groups], momentum=settings.momentum, nesterov=True)
    return optimizer, RateSchedule(optimizer, [f for _, f in groups])


def train_cnn(model: nn.Module, train: CifarSplit, test: CifarSplit, settings: CNNSettings, *, seed: int,
              device: torch.device | str, checkpoint_path: str | os.PathLike | None = None,
              progress: bool | None = None, batches: Batches | None = None) -> History:
    """Train ``model`` with :func:`fit`, each epoch a pass of the student's
    :func:`~course_lib.cnn.loops.train_epoch`; every epoch records (with the student's
    :func:`~course_lib.cnn.loops.evaluate_classifier`) the test accuracy over the whole test split
    (plain predictions: the test-time augmentation of ``settings.tta`` costs six passes, so it is for
    the final predictions, :func:`predict_proba`) and the training accuracy over ``train_eval_size``
    training images.

    Reads ``epochs``, ``batch_size``, ``optimizer``, ``lr``, ``momentum``, ``warmup``, ``lr_start``,
    ``lr_end``, ``whiten_bias_epochs``, ``weight_decay``,
    ``bias_lr_scale``, ``label_smoothing``, ``augment``, ``crop_pad``, ``alternate_flip`` (seeded with
    ``seed``) and ``amp`` from ``settings``; every epoch's record holds each
    batch's loss (``step_losses``, see :meth:`~course_lib.core.training.History.step_curve`). Model and
    batches are channels_last; on CUDA ``amp`` turns on bf16 autocast. ``checkpoint_path`` is resumed
    from exactly when it was written by the same run (:func:`checkpoint_key`; ``seed`` is the seed the
    run started with); batch order, augmentation and dropout draw from torch's global generator, which
    the checkpoint restores.
    A loss above :func:`~course_lib.core.training.divergence_limit` of the classes raises
    :class:`~course_lib.core.training.TrainingDiverged`.
    ``progress=None`` shows a progress bar unless the environment sets ``TQDM_DISABLE``.
    ``batches`` trains on other batches of the same images than the device batches of ``train``: an
    iterable with a length of ``(images (B, 3, H, W) uint8, labels (B,))``, e.g. a ``DataLoader`` over
    :func:`~course_lib.cnn.torchvision_data.cifar10_dataset` with
    :func:`~course_lib.cnn.torchvision_data.course_transform` (the course recipe's route: torchvision
    decodes and augments every image as it is served); the per-epoch measurements still read ``train``
    and ``test``.
    """
    device = torch.device(device)
    model.to(device)
    model.to(memory_format=torch.channels_last)
    loader = batches if batches is not None else DeviceBatches(
        train, device, settings.batch_size, shuffle=True, augment=settings.augment,
        crop_pad=settings.crop_pad, channels_last=True, drop_last=len(train) > settings.batch_size,
        alternate_flip_seed=seed if settings.alternate_flip else None)
    eval_size = max(settings.batch_size, 1024)
    train_eval = DeviceBatches(train.subset(settings.train_eval_size), device, eval_size, channels_last=True)
    test_eval = DeviceBatches(test, device, eval_size, channels_last=True)
    optimizer, schedule = make_optimizer(model, settings, len(loader))

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(m(x), y, label_smoothing=settings.label_smoothing)

    def evaluate(m: nn.Module) -> dict[str, Any]:
        with autocast(device, settings.amp):
            train_acc, train_loss = evaluate_classifier(m, train_eval)
            test_acc, test_loss = evaluate_classifier(m, test_eval)
        return {"train_accuracy": train_acc, "train_eval_loss": train_loss,
                "test_accuracy": test_acc, "test_loss": test_loss}

    return fit(model, loader, loss_fn=loss_fn, optimizer=optimizer, epochs=settings.epochs, device=device,
               evaluate=evaluate, schedule=schedule, train_epoch=train_epoch,
               checkpoint_path=checkpoint_path,
               checkpoint_key=checkpoint_key(settings, seed, train, test, batches),
               max_loss=divergence_limit(len(train.classes)), amp=settings.amp, progress=progress,
               desc="CIFAR-10")


def history_table(history: History, digits: int = 4):
    """Per-epoch losses and accuracies as a DataFrame (no timings, so it prints the same every run)."""
    cols = ["train_loss", "train_eval_loss", "test_loss", "train_accuracy", "test_accuracy"]
    return history.to_frame()[cols].round(digits)


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Accuracy of each true class, (K,)."""
    hits = np.bincount(labels, weights=(labels == predictions), minlength=num_classes)
    return hits / np.maximum(np.bincount(labels, minlength=num_classes), 1)


def plot_examples(split: CifarSplit, per_class: int = 8, seed: int = 0):
    """A grid with ``per_class`` random images of every class (one row per class)."""
    rng = np.random.default_rng(seed)
    k_classes = len(split.classes)
    fig, axes = plt.subplots(k_classes, per_class, figsize=(per_class * 0.9, k_classes * 0.9))
    for k, name in enumerate(split.classes):
        members = np.flatnonzero(split.labels == k)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for j, ax in enumerate(axes[k]):
            ax.axis("off")
            if j < len(chosen):
                ax.imshow(split.images[chosen[j]])
        axes[k, 0].text(-4, 16, name, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def plot_history(history: History, every: int = 1, title: str = ""):
    """Loss (the training loss of every ``every`` batches, and per epoch train vs test), accuracy per
    epoch, and test accuracy against the minutes of training so far."""
    fig, (ax_loss, ax_acc, ax_time) = plt.subplots(1, 3, figsize=(14, 3.5))
    xs, ys = history.step_curve(every)
    if xs:
        ax_loss.plot(xs, ys, lw=1, color="0.6", label="train, batches (as trained)")
    plot_curves({"train (as trained)": history.column("train_loss"),
                 "train (eval)": history.column("train_eval_loss"), "test": history.column("test_loss")},
                ylabel="cross-entropy", title="loss", ax=ax_loss)
    ax_loss.legend(fontsize=8)
    plot_curves({"train": history.column("train_accuracy"), "test": history.column("test_accuracy")},
                ylabel="accuracy", title="accuracy", ax=ax_acc)
    minutes = np.cumsum(history.column("epoch_time_s")) / 60
    plot_curves({"test": history.column("test_accuracy")}, x=minutes, xlabel="minutes of training",
                ylabel="test accuracy", title="accuracy against time", ax=ax_time)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(labels: np.ndarray, predictions: np.ndarray, classes: Sequence[str]):
    """Row-normalised confusion matrix of the test predictions."""
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(labels, predictions, labels=range(len(classes)))
    ax = plot_confusion_matrix(cm, list(classes), title="test confusion matrix (rows: true class)")
    return ax.figure


def plot_misclassified(split: CifarSplit, probabilities: np.ndarray, n: int = 24, seed: int = 0):
    """``n`` random misclassified images, titled ``true -> predicted (confidence)``."""
    predictions = probabilities.argmax(1)
    wrong = np.flatnonzero(predictions != split.labels)
    chosen = np.sort(np.random.default_rng(seed).choice(wrong, size=min(n, len(wrong)), replace=False))
    cols = 8
    rows = max(-(-len(chosen) // cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.5, rows * 1.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen, strict=False):
        ax.imshow(split.images[i])
        true, pred = split.classes[split.labels[i]], split.classes[predictions[i]]
        ax.set_title(f"{true}\n-> {pred} ({probabilities[i, predictions[i]]:.2f})", fontsize=7)
    fig.tight_layout()
    return fig
