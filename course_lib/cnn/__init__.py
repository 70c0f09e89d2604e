"""Assignment 02: convolutions from scratch in numpy (:mod:`.numpy_conv`), and a CNN on CIFAR-10
(:mod:`.course_vgg` the course's network, :mod:`.loops` the training and evaluation loops,
:mod:`.torchvision_data` the data as torchvision serves it, :mod:`.cifar_data` loading and device
batches, :mod:`.cifar` the faster networks, training and plots).

The notebook imports only this face: ``from course_lib import cnn``. Settings and profiles are in
:mod:`.config` (:class:`CNNSettings`, :data:`ASSIGNMENT`).
"""

from course_lib.cnn.airbench import AirbenchNet
from course_lib.cnn.cifar import (
    CifarCNN,
    build_model,
    history_table,
    make_optimizer,
    per_class_accuracy,
    plot_confusion,
    plot_examples,
    plot_history,
    plot_misclassified,
    predict_logits,
    predict_proba,
    run_key,
    train_cnn,
)
from course_lib.cnn.cifar_data import CLASSES, CifarSplit, DeviceBatches, load_cifar10, random_crop_flip
from course_lib.cnn.config import ASSIGNMENT, FULL, LAPTOP, SMOKE, CNNSettings
from course_lib.cnn.course_vgg import COURSE_VGG_BLOCKS, COURSE_VGG_HIDDEN, CourseVGG, course_vgg_block
from course_lib.cnn.loops import evaluate_classifier, train_epoch
from course_lib.cnn.numpy_conv import (
    conv_backward,
    conv_forward,
    conv_forward_fast,
    conv_output_size,
    conv_param_count,
    conv_single_step,
    create_mask_from_window,
    distribute_value,
    numerical_gradient,
    pool_backward,
    pool_forward,
    pool_forward_fast,
    relative_error,
    zero_pad,
)
from course_lib.cnn.torchvision_data import cifar10_dataset, course_transform, plot_image_grid

__all__ = [
    "ASSIGNMENT", "AirbenchNet", "CLASSES", "COURSE_VGG_BLOCKS", "COURSE_VGG_HIDDEN", "FULL", "LAPTOP",
    "SMOKE", "CNNSettings", "CifarCNN", "CifarSplit", "CourseVGG", "DeviceBatches", "build_model",
    "cifar10_dataset", "conv_backward", "conv_forward", "conv_forward_fast", "conv_output_size",
    "conv_param_count", "conv_single_step", "course_transform", "course_vgg_block", "create_mask_from_window",
    "distribute_value", "evaluate_classifier", "history_table", "load_cifar10", "make_optimizer",
    "numerical_gradient", "per_class_accuracy", "plot_confusion", "plot_examples", "plot_history",
    "plot_image_grid", "plot_misclassified", "pool_backward", "pool_forward", "pool_forward_fast",
    "predict_logits", "predict_proba", "random_crop_flip", "relative_error", "run_key", "train_cnn",
    "train_epoch", "zero_pad",
]
