"""Assignment 02's settings (data size, architecture, optimisation) with their defaults (the ``full``
profile), its three profiles and its entry."""

from __future__ import annotations

from dataclasses import dataclass

from course_lib.core.assignment import Assignment
from course_lib.core.settings import Settings, knob

TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000
"""The sizes of CIFAR-10's two splits."""
ARCHITECTURES = ("fast", "airbench", "vgg")
"""``fast``: the workbook's :class:`~course_lib.cnn.cifar.CifarCNN`; ``airbench``: the whitened network of
:class:`~course_lib.cnn.airbench.AirbenchNet`; ``vgg``: the course's recipe."""
OPTIMIZERS = ("sgd_one_cycle", "muon", "adam")


@dataclass(frozen=True)
class CNNSettings(Settings):
    """Every knob of assignment 02: the CIFAR-10 subset, the network (``architecture``: the workbook's
    :class:`~course_lib.cnn.cifar.CifarCNN` or the course's :class:`~course_lib.cnn.course_vgg.CourseVGG`),
    the optimiser (SGD + Nesterov with a one-cycle schedule, or Adam at a constant rate), the course
    recipe's own run (``vgg_*``), the step-level loss curve and the numpy benchmark's batch."""

    train_size: int | None = knob(default=None, min=1, max=TRAIN_IMAGES,
                                  doc="training images (None: all 50,000)")
    test_size: int | None = knob(default=None, min=1, max=TEST_IMAGES, doc="test images (None: all 10,000)")
    epochs: int = knob(default=30, min=1, doc="training epochs")
    batch_size: int = knob(default=512, min=1, doc="images per mini-batch")
    lr: float = knob(default=0.4, min=0.0, min_inclusive=False,
                     doc="learning rate: the one-cycle peak (sgd_one_cycle; muon: of all but the conv "
                         "filters) or Adam's constant rate")
    architecture: str = knob(default="fast", choices=ARCHITECTURES,
                             doc="network: 'fast' (CifarCNN, the knobs below), 'airbench' (AirbenchNet: "
                                 "widths, logit_scale) or 'vgg' (the course's VGG)")
    optimizer: str = knob(default="sgd_one_cycle", choices=OPTIMIZERS,
                          doc="'sgd_one_cycle' (Nesterov, one-cycle lr), 'muon' (the same, but Muon on "
                              "the conv filters: muon_lr, muon_momentum) or 'adam' (constant lr)")
    widths: tuple[int, ...] = knob(default=(128, 256, 512), min=1,
                                   doc="output channels of the conv blocks (each halves H and W)")
    convs_per_block: int = knob(default=1, min=1, doc="conv-BN-ReLU layers per block before its max-pool")
    stem: int | None = knob(default=64, min=1,
                            doc="channels of a stem conv before the blocks (None: no stem)")
    residual: bool = knob(default=True, doc="add a residual pair of convs to every block")
    dropout: float = knob(default=0.0, min=0.0, max=1.0, max_inclusive=False,
                          doc="dropout before the linear head, in [0, 1)")
    logit_scale: float = knob(default=0.125, min=0.0, min_inclusive=False, doc="factor on the logits")
    weight_decay: float = knob(default=5e-4, min=0.0, doc="SGD weight decay")
    bias_lr_scale: float = knob(default=1.0, min=0.0, min_inclusive=False,
                                doc="factor on the learning rate of batch-norm shifts (weight decay "
                                    "divided by it, so their decay per step stays); 1: one rate for all")
    momentum: float = knob(default=0.9, min=0.0, max=1.0, doc="SGD Nesterov momentum")
    muon_lr: float = knob(default=0.24, min=0.0, min_inclusive=False,
                          doc="muon: the conv filters' peak rate (airbench94_muon: 0.24)")
    muon_momentum: float = knob(default=0.6, min=0.0, max=1.0,
                                doc="muon: the conv filters' Nesterov momentum (airbench94_muon: 0.6)")
    lookahead: bool = knob(default=False,
                           doc="SGD pulls the weights towards their running average (airbench's lookahead)")
    warmup: float = knob(default=0.25, min=0.0, max=1.0, doc="share of the steps spent warming up to lr")
    lr_start: float = knob(default=0.1, min=0.0, max=1.0,
                           doc="sgd_one_cycle: the rate at the first step, as a share of lr (airbench: 0.2)")
    lr_end: float = knob(default=0.001, min=0.0, max=1.0,
                         doc="sgd_one_cycle: the rate at the last step, as a share of lr (airbench: 0.07)")
    whiten_bias_epochs: int | None = knob(default=None, min=0,
                                          doc="airbench: epochs the whitening layer's bias trains before "
                                              "it is frozen (airbench: 3; None: all)")
    label_smoothing: float = knob(default=0.2, min=0.0, max=1.0, doc="label smoothing of the cross-entropy")
    augment: bool = knob(default=True, doc="random crop + horizontal flip (on the device)")
    crop_pad: int = knob(default=4, min=0, max=32, max_inclusive=False,
                         doc="pixels the random crop translates by (the border reflected, narrower than the "
                             "32-pixel images)")
    alternate_flip: bool = knob(default=True,
                                doc="with augment: mirror a seeded half of the images in odd epochs and "
                                    "the other half in even ones (airbench's alternating flip) instead of a "
                                    "random half every epoch")
    tta: bool = knob(default=True,
                     doc="test-time augmentation of the final predictions: the mean logits of each image, "
                         "its mirror and both shifted by a pixel (airbench's six views)")
    train_eval_size: int | None = knob(default=None, min=1,
                                       doc="training images whose accuracy is recorded each epoch (a fixed "
                                           "seeded subset; None: all)")
    amp: bool = knob(default=True,
                     doc="bf16 autocast on CUDA and on a CPU with native bf16 (float32 elsewhere)")
    cpu_threads: int | None = knob(default=None, min=1, doc="torch CPU threads (None: torch's default)")
    vgg_width: float = knob(default=1.0, min=0.0, min_inclusive=False,
                            doc="channel multiplier of the course's VGG (1.0: its 64-128-128-256-512)")
    vgg_epochs: int = knob(default=20, min=1, doc="epochs of the course-recipe run (course: 20)")
    vgg_batch_size: int = knob(default=32, min=1, doc="mini-batch of the course-recipe run (course: 32)")
    vgg_lr: float = knob(default=1e-3, min=0.0, min_inclusive=False,
                         doc="Adam learning rate of the course-recipe run (course: 1e-3)")
    log_every: int = knob(default=10, min=1, doc="batches per point of the step-level training-loss curve")
    benchmark_batch: int = knob(default=16, min=1, doc="images in the notebook's convolution timing")

    def course_recipe(self) -> CNNSettings:
        """These settings turned into the course's recipe: its VGG (at ``vgg_width``), Adam at ``vgg_lr``,
        ``vgg_batch_size`` and ``vgg_epochs``, dropout 0.5, no weight decay, augmentation or smoothing."""
        return self.override(architecture="vgg", optimizer="adam", epochs=self.vgg_epochs,
                             batch_size=self.vgg_batch_size, lr=self.vgg_lr, dropout=0.5, weight_decay=0.0,
                             label_smoothing=0.0, augment=False, logit_scale=1.0, lookahead=False)

    def check(self) -> None:
        if not self.widths:
            raise ValueError("widths=() is not valid; give at least one block width")
        if self.lookahead and self.optimizer != "sgd_one_cycle":
            raise ValueError(f"lookahead=True works with optimizer='sgd_one_cycle' only, not "
                             f"optimizer={self.optimizer!r}; set lookahead=False")


# ResNet-9-like (stem 64, residual blocks 128/256/512) and the course's VGG at full width, for a GPU: the
# defaults; not measured yet
FULL = CNNSettings()
# a small plain CNN on 4,000 + 1,000 images, one CPU thread (~10 s of training); the course's VGG
# at a quarter of its widths for one epoch (~20 s)
SMOKE = CNNSettings(
    train_size=4000, test_size=1000, epochs=2, batch_size=64, lr=0.1, widths=(16, 32, 64), stem=None,
    residual=False, dropout=0.25, logit_scale=1.0, label_smoothing=0.0, augment=False, alternate_flip=False,
    tta=False, amp=False, cpu_threads=1, vgg_width=0.25, vgg_epochs=1, log_every=5, benchmark_batch=2,
)
# airbench94_muon's recipe (Jordan 2024) at its widths (64/256/256) on all 50,000 images for 8 epochs, on
# a CPU, in bf16 where the CPU has it natively: batch 2000, Muon on the conv filters (rate 0.24, momentum
# 0.6: the knobs' defaults), Nesterov SGD (momentum 0.85) on the head, the batch-norm shifts and the
# whitening bias, every rate falling linearly to 0 (the whitening bias's by epoch 3, when it is frozen),
# label smoothing 0.2, 2-pixel crops with a reflected border, alternating flips, six-view test-time
# augmentation; the course's VGG at a quarter of its widths for one epoch. airbench94_muon's SGD rates
# are for the summed loss of its batch and a head rescaled to weights of std 1 whose logits are divided
# by 256; here the loss is the batch mean and the head keeps PyTorch's init (std 1/sqrt(3 * 256)) with
# its logits scaled by sqrt(768) / 256, which trains the same at these rates: the head's
# 0.67 * 2000 / 768, the biases' 0.053 * 2000, and a weight decay that takes 2e-6 * 2000 of each weight
# per step
_MUON_BATCH = 2000
_HEAD_LR = 0.67 * _MUON_BATCH / 768
_BIAS_LR = 0.053 * _MUON_BATCH
_DECAY_PER_STEP = 2e-6 * _MUON_BATCH
LAPTOP = CNNSettings(
    epochs=8, batch_size=_MUON_BATCH, optimizer="muon", lr=_HEAD_LR, momentum=0.85,
    weight_decay=_DECAY_PER_STEP / _HEAD_LR, bias_lr_scale=_BIAS_LR / _HEAD_LR,
    architecture="airbench", widths=(64, 256, 256), stem=None, residual=False, logit_scale=768 ** 0.5 / 256,
    warmup=0.0, lr_start=1.0, lr_end=0.0, whiten_bias_epochs=3, crop_pad=2, train_eval_size=5000,
    vgg_width=0.25, vgg_epochs=1, log_every=2,
)

ASSIGNMENT = Assignment(
    id="02",
    slug="cnn",
    title="Convolutions from scratch in numpy, and a CNN on CIFAR-10",
    datasets=("cifar10-jpg|cifar-10-batches-py",),
    profiles={"smoke": SMOKE, "laptop": LAPTOP, "full": FULL},
    # chance is 1/10 (the balanced test set's majority class is within a point of it): the margin
    # over it is the headline that says the smoke run learned
    expected={
        "smoke": {"test_accuracy": (0.25, 0.6), "test_accuracy_minus_chance": (0.15, 0.5),
                  "vgg_test_accuracy_minus_chance": (0.03, 0.5), "conv_max_abs_error": (0.0, 1e-9)},
        # measured: 0.9078 after 8 epochs at full width in bf16 (seed 0, 2 CPU threads, 15.2 min)
        "laptop": {"test_accuracy": (0.86, 0.95), "test_accuracy_minus_chance": (0.76, 0.85),
                   "vgg_test_accuracy_minus_chance": (0.1, 0.7), "conv_max_abs_error": (0.0, 1e-9)},
        "full": {"test_accuracy": (0.93, 1.0), "test_accuracy_minus_chance": (0.83, 0.9),
                 "vgg_test_accuracy_minus_chance": (0.5, 0.9), "conv_max_abs_error": (0.0, 1e-9)},
    },
    headline=("test_accuracy", "test_accuracy_minus_chance", "vgg_test_accuracy_minus_chance",
              "conv_max_abs_error"),
    exercise_tests=("tests/cnn/test_numpy_conv.py", "tests/cnn/test_course_vgg.py",
                    "tests/cnn/test_loops.py", "tests/cnn/test_torchvision_data.py"),
    points={"conv_param_count": 1, "zero_pad": 1, "conv_single_step": 1, "conv_forward": 2, "pool_forward": 2,
            "conv_forward_fast": 3, "pool_forward_fast": 2, "conv_backward": 3, "create_mask_from_window": 1,
            "distribute_value": 1, "pool_backward": 2, "course_vgg_block": 2, "CourseVGG.__init__": 3,
            "CourseVGG.forward": 2, "train_epoch": 4, "evaluate_classifier": 3,
            "course_transform": 2},
)
