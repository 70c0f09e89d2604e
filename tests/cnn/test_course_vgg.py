"""course_lib.cnn.course_vgg, the student's model: the recipe's blocks and head layer by layer, the
forward pass, the initial loss of about ln 10; wrong-but-runnable variants fail with clear messages."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.cnn import course_vgg
from course_lib.cnn.course_vgg import CourseVGG, course_vgg_block
from tests.cnn import checks
from tests.cnn.synthetic import learnable_split

MEAN, STD = [125.3, 123.0, 113.9], [63.0, 62.1, 66.7]


def _images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    split = learnable_split(n, seed)
    return torch.from_numpy(split.images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(split.labels)


@pytest.mark.exercise("course_vgg_block")
@pytest.mark.parametrize("c_in, c_out, kernels, pool_pad", [(3, 16, (3, 3), 0), (32, 32, (3, 3, 1), 1),
                                                              (32, 64, (3, 1), 1)])
def test_course_vgg_block_follows_the_recipe(c_in, c_out, kernels, pool_pad):
    checks.check_block(course_vgg_block, c_in, c_out, kernels, pool_pad)


@pytest.mark.exercise("CourseVGG.__init__")
def test_course_vgg_at_the_course_widths():
    model = CourseVGG(MEAN, STD)
    checks.check_layers(model, width=1.0, dropout=0.5)
    assert [block[0].out_channels for block in model.features] == [64, 128, 128, 256, 512]
    flat = model.head[1].in_features
    assert flat == 512 * 4 * 4, f"expected 8192 = 512 x 4 x 4 features into the head, got {flat}"
    assert torch.equal(model.mean.flatten(), torch.tensor(MEAN)), "expected the mean buffer kept as given"


@pytest.mark.exercise("CourseVGG.__init__")
@pytest.mark.parametrize("width, dropout, num_classes", [(0.25, 0.5, 10), (0.125, 0.0, 4)])
def test_course_vgg_at_other_widths(width, dropout, num_classes):
    model = CourseVGG(MEAN, STD, width=width, dropout=dropout, num_classes=num_classes)
    checks.check_layers(model, width, dropout, num_classes)


@pytest.mark.exercise("CourseVGG.forward")
def test_course_vgg_forward_is_the_recipe():
    torch.manual_seed(0)
    model = CourseVGG(MEAN, STD, width=0.25)
    x, _ = _images(4)
    checks.check_forward(model, x)  # uint8 images
    checks.check_forward(model, x.float())  # the same on the 0..255 float scale
    assert model(x).shape == (4, 10)


@pytest.mark.exercise("CourseVGG.forward")
def test_the_initial_loss_is_about_ln_10():
    torch.manual_seed(0)
    x, y = _images(64)
    model = CourseVGG(MEAN, STD, width=0.25)
    loss = checks.check_initial_loss(model, x, y)
    assert 0 < loss < 2 * math.log(10)


# ---- wrong-but-runnable variants: the same checks reject each, naming what was expected --------------


def _block_relu_between_convs(c_in, c_out, kernels, pool_pad):
    layers = []
    for k in kernels:
        layers += [nn.Conv2d(c_in, c_out, k, padding=1), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2, padding=pool_pad), nn.BatchNorm2d(c_out), nn.ReLU())


def _block_norm_before_pool(c_in, c_out, kernels, pool_pad):
    convs = [nn.Conv2d(c_in if i == 0 else c_out, c_out, k, padding=1) for i, k in enumerate(kernels)]
    return nn.Sequential(*convs, nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2, 2, padding=pool_pad))


def _block_no_padding(c_in, c_out, kernels, pool_pad):
    convs = [nn.Conv2d(c_in if i == 0 else c_out, c_out, k) for i, k in enumerate(kernels)]
    return nn.Sequential(*convs, nn.MaxPool2d(2, 2, padding=pool_pad), nn.BatchNorm2d(c_out), nn.ReLU())


@pytest.mark.parametrize("wrong, message", [
    (_block_relu_between_convs, r"expected the layers\n.*'Conv2d\(3->16, kernel 3, padding 1, bias True\)', "
                                r"'Conv2d\(16->16"),
    (_block_norm_before_pool, r"expected the layers\n.*'MaxPool2d\(kernel 2, stride 2, padding 0\)', "
                              r"'BatchNorm2d"),
    (_block_no_padding, r"expected the layers\n.*padding 1"),
])
def test_wrong_blocks_fail_the_block_check(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_block(wrong, 3, 16, (3, 3), 0)


def _solution_model(width: float = 0.25) -> CourseVGG:
    """A correct model built here from the recipe (not from the student's code), to be broken below."""
    model = nn.Module.__new__(CourseVGG)
    nn.Module.__init__(model)
    model.register_buffer("mean", torch.tensor(MEAN).reshape(1, 3, 1, 1))
    model.register_buffer("std", torch.tensor(STD).reshape(1, 3, 1, 1))
    blocks, head = [], [nn.Flatten()]
    c_in = 3
    for channels, kernels, pool_pad in checks.RECIPE:
        c_out = round(channels * width)
        convs = [nn.Conv2d(c_in if i == 0 else c_out, c_out, k, padding=1) for i, k in enumerate(kernels)]
        layers = [*convs, nn.MaxPool2d(2, 2, padding=pool_pad), nn.BatchNorm2d(c_out), nn.ReLU()]
        blocks.append(nn.Sequential(*layers))
        c_in = c_out
    head += [nn.Linear(c_in * 16, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 128), nn.ReLU(),
             nn.Dropout(0.5), nn.Linear(128, 10)]
    model.features, model.head = nn.Sequential(*blocks), nn.Sequential(*head)
    return model


def test_the_reference_model_of_these_tests_passes_the_checks():
    model = _solution_model()
    checks.check_layers(model, 0.25, 0.5)
    model.forward = lambda x: checks.reference_logits(model, x)
    checks.check_forward(model, _images(2)[0])


def test_a_model_with_a_wrong_layer_order_fails_the_model_check():
    model = _solution_model()
    block = model.features[2]
    model.features[2] = nn.Sequential(*block[:3], block[4], block[5], block[3])  # BN, ReLU, then the pool
    with pytest.raises(AssertionError, match=r"block 2 \(width 0.25\): expected the layers\n.*"
                                             r"'MaxPool2d\(kernel 2, stride 2, padding 1\)', "
                                             r"'BatchNorm2d\(32\)', 'ReLU'"):
        checks.check_layers(model, 0.25, 0.5)


def test_a_head_without_dropout_fails_the_model_check():
    model = _solution_model()
    model.head = nn.Sequential(*[m for m in model.head if not isinstance(m, nn.Dropout)])
    with pytest.raises(AssertionError, match=r"head .*expected\n.*'Dropout\(0.5\)'"):
        checks.check_layers(model, 0.25, 0.5)


@pytest.mark.parametrize("forward", [
    lambda m, x: m.head(m.features(x.float())),  # no normalisation
    lambda m, x: m.head(m.features(x.float() / 255)),  # another normalisation than the model's
    lambda m, x: torch.softmax(checks.reference_logits(m, x), dim=1),  # probabilities, not logits
])
def test_wrong_forward_passes_fail_the_forward_check(forward):
    model = _solution_model()
    model.forward = lambda x: forward(model, x)
    with pytest.raises(AssertionError, match=r"expected the logits of the first image \[.*\]\.\.\., got"):
        checks.check_forward(model, _images(2)[0])


def test_overconfident_logits_fail_the_initial_loss_check():
    torch.manual_seed(0)
    model = _solution_model()
    model.forward = lambda x: 20 * checks.reference_logits(model, x)
    x, y = _images(64)
    with pytest.raises(AssertionError,
                       match=r"expected an initial loss of about ln 10 = 2.3026 \(within 0.1\), got"):
        checks.check_initial_loss(model, x, y)


def test_the_recipe_table_of_these_tests_is_the_library_s():
    assert checks.RECIPE == course_vgg.COURSE_VGG_BLOCKS and course_vgg.COURSE_VGG_HIDDEN == (1024, 128)
