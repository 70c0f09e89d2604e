"""Hidden tests of the PyTorch exercises (the course's network, the training and evaluation loops): other
widths, image sizes, batch sizes and optimizers than the public tests; each test calls only the exercise
it is marked with (the model's parts it needs are built here from the recipe)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.cnn import course_vgg
from course_lib.cnn.course_vgg import CourseVGG, course_vgg_block
from course_lib.cnn.loops import evaluate_classifier, train_epoch
from course_lib.cnn.torchvision_data import course_transform
from tests.cnn import checks


def _recipe_block(c_in, c_out, kernels, pool_pad):
    """The recipe's block built here, so that the model's tests do not depend on the student's block."""
    convs = [nn.Conv2d(c_in if i == 0 else c_out, c_out, k, padding=1) for i, k in enumerate(kernels)]
    return nn.Sequential(*convs, nn.MaxPool2d(2, 2, padding=pool_pad), nn.BatchNorm2d(c_out), nn.ReLU())


@pytest.mark.exercise("course_vgg_block")
@pytest.mark.parametrize("c_in, c_out, kernels, pool_pad, side", [(5, 7, (1, 3), 0, 10), (2, 3, (3,), 1, 7),
                                                                    (4, 6, (3, 3, 3), 1, 8)])
def test_block_other_shapes(c_in, c_out, kernels, pool_pad, side):
    checks.check_block(course_vgg_block, c_in, c_out, kernels, pool_pad, side)


@pytest.mark.exercise("CourseVGG.__init__")
@pytest.mark.parametrize("width, dropout, num_classes, image_size", [(0.5, 0.3, 10, 32), (0.1, 0.5, 7, 48),
                                                                     (0.02, 0.1, 3, 24)])
def test_model_other_widths_and_image_sizes(monkeypatch, width, dropout, num_classes, image_size):
    monkeypatch.setattr(course_vgg, "course_vgg_block", _recipe_block)
    model = CourseVGG([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], width=width, dropout=dropout, num_classes=num_classes,
                      image_size=image_size)
    checks.check_layers(model, width, dropout, num_classes, image_size)
    expected = sum(p.numel() for m in [*model.features, model.head] for p in m.parameters())
    assert sum(p.numel() for p in model.parameters()) == expected, "expected no parameters outside the layers"


def _model_built_here(width: float, num_classes: int, image_size: int) -> CourseVGG:
    model = nn.Module.__new__(CourseVGG)
    nn.Module.__init__(model)
    model.register_buffer("mean", torch.tensor([100.0, 90.0, 80.0]).reshape(1, 3, 1, 1))
    model.register_buffer("std", torch.tensor([50.0, 40.0, 70.0]).reshape(1, 3, 1, 1))
    blocks, c_in, side = [], 3, image_size
    for channels, kernels, pool_pad in checks.RECIPE:
        c_out = max(1, round(channels * width))
        blocks.append(_recipe_block(c_in, c_out, kernels, pool_pad))
        side = (side + sum(3 - k for k in kernels) + 2 * pool_pad - 2) // 2 + 1
        c_in = c_out
    model.features = nn.Sequential(*blocks)
    model.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, 1024), nn.ReLU(), nn.Dropout(0.5),
                               nn.Linear(1024, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, num_classes))
    return model


@pytest.mark.exercise("CourseVGG.forward")
@pytest.mark.parametrize("width, num_classes, image_size", [(0.2, 6, 32), (0.1, 10, 40)])
def test_forward_other_models(width, num_classes, image_size):
    torch.manual_seed(3)
    model = _model_built_here(width, num_classes, image_size)
    x = torch.randint(0, 256, (3, 3, image_size, image_size), dtype=torch.uint8)
    checks.check_forward(model, x)
    checks.check_forward(model, x.double())  # float64 pixels: still float32 logits


@pytest.mark.exercise("CourseVGG.forward")
def test_forward_initial_loss_about_ln_10():
    torch.manual_seed(5)
    model = _model_built_here(0.2, 10, 32)
    x = torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8)
    checks.check_initial_loss(model, x, torch.randint(0, 10, (48,)))


@pytest.mark.exercise("train_epoch")
@pytest.mark.parametrize("sizes, seed, lr", [((2, 5, 5, 1), 7, 0.05), ((6, 6), 8, 0.2)])
def test_train_epoch_other_batches(sizes, seed, lr):
    checks.check_train_epoch(train_epoch, sizes, seed, lr)


@pytest.mark.exercise("train_epoch")
def test_train_epoch_with_momentum_takes_the_optimizer_s_steps():
    """SGD with momentum: the weights the library's own epoch function reaches, batch for batch."""
    results = []
    for epoch_fn in (train_epoch, None):
        torch.manual_seed(0)
        model, batches, loss_fn, _ = checks.loop_problem((3, 4, 5), seed=11)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        if epoch_fn is None:
            for batch in batches:
                loss, _ = loss_fn(model, batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        else:
            epoch_fn(model, batches, loss_fn, optimizer)
        results.append(model.weight.detach().clone())
    assert torch.allclose(results[0], results[1], atol=1e-6), (
        f"expected the weights {results[1].flatten().tolist()}, got {results[0].flatten().tolist()}")


@pytest.mark.exercise("train_epoch")
def test_train_epoch_overfits_a_small_cnn():
    torch.manual_seed(1)
    x = torch.randn(32, 3, 16, 16)
    y = torch.randint(0, 10, (32,))
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 64, 10))

    def accuracy(m, batches):
        m.eval()
        with torch.no_grad():
            (images, labels), = batches
            return (m(images).argmax(1) == labels).double().mean().item(), 0.0

    checks.check_overfits(model, train_epoch, accuracy, x, y, max_epochs=30, batch_size=8, lr=3e-3, seed=2)


@pytest.mark.exercise("evaluate_classifier")
@pytest.mark.parametrize("correct_per_batch, seed", [(((3, 5), (0, 1), (2, 6)), 4), (((7, 7), (1, 3)), 5)])
def test_evaluate_other_batches(correct_per_batch, seed):
    checks.check_evaluate(evaluate_classifier, correct_per_batch, seed)


@pytest.mark.exercise("evaluate_classifier")
def test_evaluate_a_model_with_dropout_and_batch_norm():
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Dropout(0.5), nn.Linear(12, 4))
    model.train()
    for _ in range(3):  # running statistics unlike the batch's
        model(torch.randn(16, 6) * 3 + 1)
    x, y = torch.randn(11, 6), torch.randint(0, 4, (11,))
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    accuracy, loss = evaluate_classifier(model, [(x[:4], y[:4]), (x[4:], y[4:])])
    expected = (logits.argmax(1) == y).double().mean().item()
    assert math.isclose(accuracy, expected), f"expected accuracy {expected:.4f}, got {accuracy:.4f}"
    assert math.isclose(loss, F.cross_entropy(logits, y).item(), rel_tol=1e-5), (
        f"expected the mean loss {F.cross_entropy(logits, y).item():.6f}, got {loss:.6f}")


@pytest.mark.exercise("course_transform")
@pytest.mark.parametrize("crop_pad, seed", [(1, 5), (3, 6)])
def test_course_transform_other_shifts(crop_pad, seed):
    checks.check_course_transform(course_transform, crop_pad, draws=80, seed=seed)
