"""The checks of the PyTorch exercises of assignment 02, as functions that raise ``AssertionError`` naming
what was expected: the public tests run them on the student's code, and on wrong-but-runnable variants
to show that each is rejected with a clear message. Each builds its expected values itself."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

RECIPE = ((64, (3, 3), 0), (128, (3, 3), 1), (128, (3, 3, 1), 1), (256, (3, 1), 1), (512, (3, 1), 1))
"""The course's blocks (channels, kernel sizes, max-pool padding), written out here independently."""


def describe(layers: nn.Module) -> list[str]:
    """One short line per layer of a ``nn.Sequential``: type and the settings the recipe fixes."""
    lines = []
    for m in layers:
        if isinstance(m, nn.Conv2d):
            lines.append(f"Conv2d({m.in_channels}->{m.out_channels}, kernel {_pair(m.kernel_size)[0]}, "
                         f"padding {_pair(m.padding)[0]}, bias {m.bias is not None})")
        elif isinstance(m, nn.MaxPool2d):
            lines.append(f"MaxPool2d(kernel {_pair(m.kernel_size)[0]}, stride {_pair(m.stride)[0]}, "
                         f"padding {_pair(m.padding)[0]})")
        elif isinstance(m, nn.BatchNorm2d):
            lines.append(f"BatchNorm2d({m.num_features})")
        elif isinstance(m, nn.Linear):
            lines.append(f"Linear({m.in_features}->{m.out_features})")
        elif isinstance(m, nn.Dropout):
            lines.append(f"Dropout({m.p})")
        else:
            lines.append(type(m).__name__)
    return lines


def expected_block(c_in: int, c_out: int, kernels: tuple[int, ...], pool_pad: int) -> list[str]:
    convs = [f"Conv2d({c_in if i == 0 else c_out}->{c_out}, kernel {k}, padding 1, bias True)"
             for i, k in enumerate(kernels)]
    return [*convs, f"MaxPool2d(kernel 2, stride 2, padding {pool_pad})", f"BatchNorm2d({c_out})", "ReLU"]


def check_block(block_fn: Callable, c_in: int, c_out: int, kernels: tuple[int, ...], pool_pad: int,
                side: int = 9) -> None:
    """``block_fn(c_in, c_out, kernels, pool_pad)`` is the recipe's block: its layers in order, and the
    output shape of a (2, c_in, side, side) input."""
    block = block_fn(c_in, c_out, kernels, pool_pad)
    assert isinstance(block, nn.Sequential), f"expected an nn.Sequential, got {type(block).__name__}"
    expected, got = expected_block(c_in, c_out, kernels, pool_pad), describe(block)
    assert got == expected, (f"course_vgg_block({c_in}, {c_out}, {kernels}, {pool_pad}): expected the "
                             f"layers\n  {expected}\ngot\n  {got}")
    out = block(torch.randn(2, c_in, side, side))
    for k in kernels:
        side = side + 3 - k
    side = (side + 2 * pool_pad - 2) // 2 + 1
    assert out.shape == (2, c_out, side, side), (
        f"expected an output of shape (2, {c_out}, {side}, {side}), got {tuple(out.shape)}")


def expected_layers(width: float, dropout: float, num_classes: int, image_size: int) -> tuple[list, list]:
    """The recipe's blocks (one list of lines each) and head at ``width``."""
    blocks, c_in, side = [], 3, image_size
    for channels, kernels, pool_pad in RECIPE:
        c_out = max(1, round(channels * width))
        blocks.append(expected_block(c_in, c_out, kernels, pool_pad))
        side = (side + sum(3 - k for k in kernels) + 2 * pool_pad - 2) // 2 + 1
        c_in = c_out
    flat = c_in * side * side
    head = ["Flatten", f"Linear({flat}->1024)", "ReLU", f"Dropout({dropout})", "Linear(1024->128)", "ReLU",
            f"Dropout({dropout})", f"Linear(128->{num_classes})"]
    return blocks, head


def check_layers(model: nn.Module, width: float, dropout: float, num_classes: int = 10,
                 image_size: int = 32) -> None:
    """``model.features`` holds the recipe's five blocks and ``model.head`` its head, layer by layer."""
    blocks, head = expected_layers(width, dropout, num_classes, image_size)
    features = getattr(model, "features", None)
    assert isinstance(features, nn.Sequential) and len(features) == len(blocks), (
        f"expected model.features to be an nn.Sequential of {len(blocks)} blocks, got {features!r:.200}")
    for i, (block, expected) in enumerate(zip(features, blocks, strict=True)):
        got = describe(block)
        assert got == expected, f"block {i} (width {width}): expected the layers\n  {expected}\ngot\n  {got}"
    got = describe(getattr(model, "head", []))
    assert got == head, (f"head (width {width}, {image_size}x{image_size} images): expected\n  {head}\n"
                         f"got\n  {got}")


def reference_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The recipe's forward pass written out: normalise with the model's ``mean`` and ``std``, every layer
    of every block in turn, then every layer of the head."""
    h = (x.float() - model.mean) / model.std
    for block in model.features:
        for layer in block:
            h = layer(h)
    for layer in model.head:
        h = layer(h)
    return h


def check_forward(model: nn.Module, x: torch.Tensor) -> None:
    """``model(x)`` (in eval mode) equals :func:`reference_logits`: float32 (B, classes)."""
    model.eval()
    with torch.no_grad():
        expected, got = reference_logits(model, x), model(x)
    assert got.shape == expected.shape, (
        f"expected logits of shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    assert got.dtype == torch.float32, f"expected float32 logits, got {got.dtype}"
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4), (
        f"expected the logits of the first image {expected[0, :4].tolist()}..., got {got[0, :4].tolist()}... "
        "(normalise with mean and std, then features, then head)")


def check_initial_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, tolerance: float = 0.1) -> float:
    """A freshly initialised classifier of 10 classes is about uniform: its mean cross-entropy on a batch
    (training mode) is about ln 10 = 2.3026."""
    model.train()
    with torch.no_grad():
        loss = F.cross_entropy(model(x), y).item()
    assert abs(loss - math.log(10)) < tolerance, (
        f"expected an initial loss of about ln 10 = {math.log(10):.4f} (within {tolerance}), got {loss:.4f}")
    return loss


# ---- the training loop of one epoch -------------------------------------------------------------------


class RecordingSGD:
    """Plain SGD (``lr``), as ``fit`` hands an optimizer to the epoch function: ``zero_grad()`` and
    ``step()``; it counts the steps."""

    def __init__(self, params, lr: float) -> None:
        self.optimizer = torch.optim.SGD(params, lr=lr)
        self.steps = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.steps += 1
        self.optimizer.step()


def loop_problem(sizes: tuple[int, ...] = (4, 4, 2), seed: int = 0, lr: float = 0.1):
    """A linear regression in batches of ``sizes``: ``(model, batches, loss_fn, reference)``, where
    ``reference`` holds the weights after one SGD step per batch and the per-item mean of the batch losses
    (each before its step), computed here by hand; ``loss_fn`` records the model's mode at every call."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, 3, generator=generator))
        model.bias.copy_(torch.randn(2, generator=generator))
    batches = [(torch.randn(n, 3, generator=generator) + 1.0, torch.randn(n, 2, generator=generator))
               for n in sizes]
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    total = 0.0
    for x, y in batches:
        wr, br = w.clone().requires_grad_(), b.clone().requires_grad_()
        loss = ((x @ wr.T + br - y) ** 2).mean()
        gw, gb = torch.autograd.grad(loss, (wr, br))
        total += loss.item() * len(x)
        w, b = w - lr * gw, b - lr * gb
    modes: list[bool] = []

    def loss_fn(m: nn.Module, batch):
        modes.append(m.training)
        x, y = batch
        return F.mse_loss(m(x), y), len(x)

    return model, batches, loss_fn, {"weight": w, "bias": b, "loss": total / sum(sizes), "modes": modes}


def check_train_epoch(epoch_fn: Callable, sizes: tuple[int, ...] = (4, 4, 2), seed: int = 0,
                      lr: float = 0.1) -> None:
    """``epoch_fn(model, batches, loss_fn, optimizer)`` trains in training mode, takes one step per batch
    on that batch's gradient alone, and returns the per-item mean of the batch losses."""
    model, batches, loss_fn, reference = loop_problem(sizes, seed, lr)
    model.eval()  # the epoch function must switch it
    optimizer = RecordingSGD(model.parameters(), lr)
    running = epoch_fn(model, batches, loss_fn, optimizer)
    assert optimizer.steps == len(sizes), (
        f"expected {len(sizes)} optimizer steps (one per batch), got {optimizer.steps}")
    assert reference["modes"] and all(reference["modes"]), (
        "expected the model in training mode for every batch (call model.train()), it was in eval mode")
    assert torch.allclose(model.weight, reference["weight"], atol=1e-6), (
        f"expected the weights after {len(sizes)} SGD steps, each on its own batch's gradient, to be "
        f"{[round(v, 4) for v in reference['weight'].flatten().tolist()]}, got "
        f"{[round(v, 4) for v in model.weight.detach().flatten().tolist()]} "
        "(zero the gradients before every backward)")
    assert isinstance(running, float), f"expected the running loss as a float, got {type(running).__name__}"
    assert math.isclose(running, reference["loss"], rel_tol=1e-5), (
        f"expected the running loss {reference['loss']:.6f} (the mean loss per item over the epoch: "
        f"sum(loss * n) / sum(n) over batches of {list(sizes)} items), got {running:.6f}")


# ---- the evaluation loop ------------------------------------------------------------------------------


class ModeProbe(nn.Module):
    """Inputs (B, 1) hold the class the model predicts in eval mode; in training mode it predicts the
    next class. It records the mode and whether gradients were on at every call."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.num_classes = num_classes
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        predicted = x[:, 0].long() + int(self.training)
        return F.one_hot(predicted % self.num_classes, self.num_classes).float() * self.scale


def probe_problem(correct_per_batch: tuple[tuple[int, int], ...] = ((4, 4), (2, 4), (1, 2)), seed: int = 0):
    """``(probe, batches, expected accuracy, expected loss)``: batches whose ``(correct, size)`` are
    ``correct_per_batch``; the expected values computed over all items at once."""
    generator = torch.Generator().manual_seed(seed)
    probe = ModeProbe()
    k = probe.num_classes
    batches = []
    for correct, size in correct_per_batch:
        labels = torch.randint(0, k, (size,), generator=generator)
        predicted = labels.clone()
        predicted[correct:] = (labels[correct:] + 2) % k  # neither the label nor training mode's guess
        batches.append((predicted[:, None].float(), labels))
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    probe.eval()
    with torch.no_grad():
        logits = probe(x)
    probe.calls.clear()
    probe.train()  # the evaluation loop must switch it
    accuracy = sum(c for c, _ in correct_per_batch) / len(y)
    return probe, batches, accuracy, F.cross_entropy(logits, y).item()


def check_evaluate(evaluate_fn: Callable, correct_per_batch=((4, 4), (2, 4), (1, 2)), seed: int = 0) -> None:
    """``evaluate_fn(model, batches)`` returns ``(accuracy, mean loss)`` over all items, in eval mode,
    without gradients."""
    probe, batches, accuracy, loss = probe_problem(correct_per_batch, seed)
    result = evaluate_fn(probe, batches)
    assert isinstance(result, tuple) and len(result) == 2, f"expected (accuracy, loss), got {result!r}"
    got_accuracy, got_loss = result
    assert probe.calls, "expected the model to be called on every batch, it was never called"
    assert not any(training for training, _ in probe.calls), (
        "expected the model in eval mode (model.eval()) while evaluating, it was in training mode")
    assert not any(grad for _, grad in probe.calls), (
        "expected the forward passes under torch.no_grad(), they ran with gradients on")
    n = sum(size for _, size in correct_per_batch)
    assert math.isclose(got_accuracy, accuracy, rel_tol=1e-9), (
        f"expected accuracy {accuracy:.4f} ({round(accuracy * n)} of {n} items correct over the whole "
        f"split), got {got_accuracy:.4f}")
    assert math.isclose(got_loss, loss, rel_tol=1e-5), (
        f"expected the mean cross-entropy per item {loss:.6f} (summed over all {n} items, divided by {n}), "
        f"got {got_loss:.6f}")


def check_overfits(model: nn.Module, epoch_fn: Callable, evaluate_fn: Callable, images: torch.Tensor,
                   labels: torch.Tensor, max_epochs: int = 40, batch_size: int = 16, lr: float = 1e-3,
                   seed: int = 0) -> int:
    """Adam at ``lr`` on the few ``images`` (shuffled batches): the training accuracy that ``evaluate_fn``
    measures reaches 100% within ``max_epochs`` epochs of ``epoch_fn``; returns the epochs it took."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def loss_fn(m: nn.Module, batch):
        x, y = batch
        return F.cross_entropy(m(x), y), len(y)

    n, best = len(labels), 0.0
    for epoch in range(1, max_epochs + 1):
        order = torch.randperm(n)
        chunks = [order[i:i + batch_size] for i in range(0, n, batch_size)]
        batches = [(images[chunk], labels[chunk]) for chunk in chunks]
        epoch_fn(model, batches, loss_fn, optimizer)
        best = max(best, evaluate_fn(model, [(images, labels)])[0])
        if best == 1.0:
            return epoch
    raise AssertionError(f"expected 100% training accuracy on {n} images within {max_epochs} epochs, "
                         f"got at best {best:.0%}")


# ---- the course recipe's transform --------------------------------------------------------------------


def _reflect_crops(image: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Every 32x32 window of ``image`` (3, 32, 32) padded by ``pad`` with its reflection, and their
    mirrors."""
    padded = F.pad(image[None].float(), (pad,) * 4, mode="reflect")[0] if pad else image.float()
    crops = [padded[:, r:r + 32, c:c + 32] for r in range(2 * pad + 1) for c in range(2 * pad + 1)]
    return crops + [crop.flip(2) for crop in crops]


def check_course_transform(transform_fn: Callable, crop_pad: int = 4, draws: int = 60, seed: int = 0) -> None:
    """``transform_fn(augment, crop_pad)`` turns a 32x32 PIL image into the uint8 tensor (3, 32, 32) of its
    pixels; with ``augment``, into a random window of the image padded by ``crop_pad`` with its reflection,
    mirrored half of the time, drawn anew every call."""
    from PIL import Image

    pixels = torch.Generator().manual_seed(seed)
    array = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8, generator=pixels)
    image, expected = Image.fromarray(array.numpy()), array.permute(2, 0, 1)
    out = transform_fn(False, crop_pad)(image)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.shape == (3, 32, 32), (
        f"expected a uint8 tensor (3, 32, 32) on the 0..255 scale, got "
        f"{getattr(out, 'dtype', type(out).__name__)} {tuple(getattr(out, 'shape', ()))}")
    assert torch.equal(out, expected), "expected the image's own pixels, channels first, without augment"
    torch.manual_seed(seed)
    augment = transform_fn(True, crop_pad)
    crops = _reflect_crops(expected, crop_pad)
    n_crops = len(crops) // 2
    seen = set()
    for _ in range(draws):
        out = augment(image)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.shape == (3, 32, 32), (
            f"expected a uint8 tensor (3, 32, 32) with augment too, got {getattr(out, 'dtype', type(out))}")
        match = next((i for i, crop in enumerate(crops) if torch.equal(out.float(), crop)), None)
        assert match is not None, (
            f"expected a 32x32 window of the image padded by {crop_pad} pixels with its reflection "
            "(padding_mode='reflect', not a black border), possibly mirrored; got an image that is none of "
            "them")
        seen.add(match)
    mirrored = sum(i >= n_crops for i in seen)
    assert 0 < mirrored < len(seen), (
        f"expected a mirror image about half of the time over {draws} draws, got "
        f"{'always' if mirrored == len(seen) else 'never'}")
    shifts = len({i % n_crops for i in seen})
    assert shifts > 5, (
        f"expected random shifts by up to {crop_pad} pixels, got {shifts} distinct ones in {draws} draws")
