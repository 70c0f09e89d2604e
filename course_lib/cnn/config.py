"""Assignment 02's settings (data size, architecture, optimisation), its two profiles and its entry."""

from __future__ import annotations

from dataclasses import dataclass

from course_lib.core.assignment import Assignment
from course_lib.core.settings import Settings, knob


@dataclass(frozen=True)
class CNNSettings(Settings):
    """Every knob of assignment 02: the CIFAR-10 subset, the :class:`~course_lib.cnn.cifar.CifarCNN`
    architecture, SGD + Nesterov with a one-cycle schedule, and the numpy benchmark's batch."""

    train_size: int | None = knob(min=1, doc="training images (None: all 50,000)")
    test_size: int | None = knob(min=1, doc="test images (None: all 10,000)")
    epochs: int = knob(min=1, doc="training epochs")
    batch_size: int = knob(min=1, doc="images per mini-batch")
    lr: float = knob(min=0.0, min_inclusive=False, doc="peak learning rate of the one-cycle schedule")
    widths: tuple[int, ...] = knob(min=1, doc="output channels of the conv blocks (each halves H and W)")
    convs_per_block: int = knob(min=1, doc="conv-BN-ReLU layers per block before its max-pool")
    stem: int | None = knob(min=1, doc="channels of a stem conv before the blocks (None: no stem)")
    residual: bool = knob(doc="add a residual pair of convs to every block")
    dropout: float = knob(min=0.0, doc="dropout before the linear head, in [0, 1)")
    logit_scale: float = knob(min=0.0, min_inclusive=False, doc="factor on the logits")
    weight_decay: float = knob(min=0.0, doc="SGD weight decay")
    momentum: float = knob(min=0.0, max=1.0, doc="SGD Nesterov momentum")
    warmup: float = knob(min=0.0, max=1.0, doc="share of the steps spent warming up to lr")
    label_smoothing: float = knob(min=0.0, max=1.0, doc="label smoothing of the cross-entropy")
    augment: bool = knob(doc="random crop + horizontal flip (on the device)")
    amp: bool = knob(doc="bf16 autocast on CUDA (ignored on the CPU)")
    cpu_threads: int | None = knob(min=1, doc="torch CPU threads (None: torch's default)")
    benchmark_batch: int = knob(min=1, doc="images in the notebook's convolution timing")

    def check(self) -> None:
        if not self.widths:
            raise ValueError("widths=() is not valid; give at least one block width")
        if self.dropout >= 1.0:
            raise ValueError(f"dropout={self.dropout!r} is not valid; it must be < 1")


# the course's plain CNN on 4,000 + 1,000 images, one CPU thread (~15 s of training)
SMOKE = CNNSettings(
    train_size=4000, test_size=1000, epochs=2, batch_size=64, lr=0.1, widths=(16, 32, 64), convs_per_block=1,
    stem=None, residual=False, dropout=0.25, logit_scale=1.0, weight_decay=5e-4, momentum=0.9, warmup=0.25,
    label_smoothing=0.0, augment=False, amp=False, cpu_threads=1, benchmark_batch=2,
)
# ResNet-9-like (stem 64, residual blocks 128/256/512) for a GPU; not measured yet
FULL = CNNSettings(
    train_size=None, test_size=None, epochs=30, batch_size=512, lr=0.4, widths=(128, 256, 512),
    convs_per_block=1, stem=64, residual=True, dropout=0.0, logit_scale=0.125, weight_decay=5e-4,
    momentum=0.9, warmup=0.25, label_smoothing=0.2, augment=True, amp=True, cpu_threads=None,
    benchmark_batch=16,
)

ASSIGNMENT = Assignment(
    id="02",
    slug="cnn",
    title="Convolutions from scratch in numpy, and a CNN on CIFAR-10",
    datasets=("cifar10-jpg|cifar-10-batches-py",),
    profiles={"smoke": SMOKE, "full": FULL},
    expected={
        "smoke": {"test_accuracy": (0.25, 0.6), "conv_max_abs_error": (0.0, 1e-9)},
        "full": {"test_accuracy": (0.93, 1.0), "conv_max_abs_error": (0.0, 1e-9)},
    },
    headline=("test_accuracy", "conv_max_abs_error"),
    exercise_tests=("tests/cnn/test_numpy_conv.py",),
)
