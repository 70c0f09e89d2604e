"""A whitened, GELU, three-block network after airbench94 (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds
on a single GPU"): the most accuracy per FLOP among the published CIFAR-10 speed-run recipes, so the
one that reaches 90% on a laptop CPU.

The first layer is a frozen 2x2 convolution whose filters whiten the training images' 2x2 patches
(the eigenvectors of their covariance, scaled by the inverse square root of the eigenvalues, and their
negatives); then three blocks of conv-pool-BN-GELU, conv-BN-GELU; a 3x3 max-pool and a bias-free
linear layer whose logits are scaled by ``logit_scale`` (airbench: 1/9). Batch norms keep their scale
fixed at 1 and learn only their shift, with a momentum of 0.4 (airbench's 0.6 in its convention);
every conv starts as an identity on its first input channels (Dirac init). Training reuses
:func:`~course_lib.cnn.cifar.train_cnn`; the batch-norm shifts get ``bias_lr_scale`` times the
learning rate there (:func:`~course_lib.cnn.cifar.make_optimizer`). The two optimisers of the airbench
recipes live here: airbench94's SGD with lookahead (:class:`LookaheadSGD`) and airbench94_muon's Muon on
the conv filters (:class:`Muon`, :func:`orthogonalise`), which the laptop profile trains with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.core.device import amp_dtype

WHITENING_KERNEL = 2
BN_MOMENTUM = 0.4


class ShiftOnlyBatchNorm(nn.BatchNorm2d):
    """Batch norm whose scale stays 1 (not trained) and whose shift is trained."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-12, momentum=BN_MOMENTUM)
        self.weight.requires_grad_(False)


def dirac_conv(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3 same-padding bias-free conv, initialised as an identity on its first ``min(c_in, c_out)``
    channels on top of PyTorch's default random init of the rest."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:c_in])
    return conv


class AirbenchBlock(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, H // 2, W // 2): conv, 2x2 max-pool, BN, GELU, conv, BN, GELU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(dirac_conv(c_in, c_out), nn.MaxPool2d(2), ShiftOnlyBatchNorm(c_out),
                                    nn.GELU(), dirac_conv(c_out, c_out), ShiftOnlyBatchNorm(c_out), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def whitening_filters(images: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
    """Filters (2 * 3k^2, 3, k, k) that whiten the k x k patches of normalised ``images`` (N, 3, H, W):
    each eigenvector of the patch covariance over sqrt(eigenvalue + eps), then the same negated."""
    k = WHITENING_KERNEL
    patches = images.unfold(2, k, 1).unfold(3, k, 1)  # (N, 3, H-k+1, W-k+1, k, k)
    flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k).double()
    covariance = flat.T @ flat / len(flat)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).flip(0).reshape(-1, 3, k, k)
    return torch.cat([filters, -filters]).float()


class AirbenchNet(nn.Module):
    """Images (B, 3, 32, 32), uint8 or float 0..255, to logits (B, num_classes).

    ``widths`` are the three blocks' channels (airbench94: 64, 256, 256); ``whitening_images``
    (N, 3, H, W) uint8 from the training set set the frozen first layer; normalisation with the training
    set's channel ``mean``/``std`` (0..255 scale) is part of the model. The first layer's bias trains
    while ``whiten_bias_trains`` is true; once it is false no gradient reaches the first layer, so the
    backward pass stops at the first block's convolution (no gradient of its 31x31 input), as in
    airbench, where the bias stops requiring a gradient.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, widths: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 whitening_images: torch.Tensor, logit_scale: float, num_classes: int = 10) -> None:
        super().__init__()
        self.logit_scale = logit_scale
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))
        filters = whitening_filters(self.normalise(whitening_images))
        self.whiten = nn.Conv2d(3, len(filters), WHITENING_KERNEL, bias=True)
        with torch.no_grad():
            self.whiten.weight.copy_(filters)
            self.whiten.bias.zero_()  # type: ignore[union-attr]  # bias=True: a tensor
        self.whiten.weight.requires_grad_(False)
        blocks, c_in = [], len(filters)
        for width in widths:
            blocks.append(AirbenchBlock(c_in, width))
            c_in = width
        self.features = nn.Sequential(nn.GELU(), *blocks, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, num_classes, bias=False)
        self.whiten_bias_trains: bool = True

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.whiten.bias
        if bias is not None and not self.whiten_bias_trains:
            bias = bias.detach()
        x = F.conv2d(self.normalise(x), self.whiten.weight, bias)
        return self.head(self.features(x)) * self.logit_scale


class LookaheadSGD(torch.optim.SGD):
    """SGD whose parameters are pulled towards their running average every ``every`` steps, from
    ``start`` of ``total`` steps on (airbench's lookahead): average <- rho average + (1 - rho) params,
    params <- average, with rho = ``decay`` ** ``every`` * (step / total) ** ``power``, so the averaging
    is weak early and strong at the end; after the last step the parameters become the average (airbench
    copies it back at the end). The averages and the step count live in the optimizer's state dict, so
    a resumed run continues exactly."""

    def __init__(self, params, *, total: int, start: int, every: int = 5, decay: float = 0.95,
                 power: float = 3.0, **sgd) -> None:
        super().__init__(params, **sgd)
        self.param_groups[0].setdefault("lookahead_step", 0)
        self.total, self.start, self.every, self.decay, self.power = total, start, every, decay, power

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        group = self.param_groups[0]
        group["lookahead_step"] = step = group["lookahead_step"] + 1
        params = [p for g in self.param_groups for p in g["params"]]
        if step >= self.start and step % self.every == 0:
            rho = self.decay ** self.every * min(step / self.total, 1.0) ** self.power
            for p in params:
                state = self.state[p]
                if "lookahead_average" not in state:
                    state["lookahead_average"] = p.detach().clone()
                    continue
                average = state["lookahead_average"]
                average.lerp_(p, 1 - rho)
                p.copy_(average)
        if step == self.total:
            for p in params:
                if "lookahead_average" in self.state[p]:
                    p.copy_(self.state[p]["lookahead_average"])
        return loss


NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)
"""Coefficients (a, b, c) of the quintic Newton-Schulz step X <- a X + (b A + c A^2) X, A = X X^T."""


def orthogonalise(matrix: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """About U V^T of ``matrix`` (m, n) = U S V^T, same shape and dtype: Jordan's quintic Newton-Schulz
    iteration after scaling the top singular value below 1. Three steps leave the singular values
    between about 0.5 and 1.5 rather than at 1, which trains as well (Jordan 2024). Computed in bf16 where
    it is native (CUDA, a CPU with native bf16), else in float32."""
    a, b, c = NEWTON_SCHULZ
    x = matrix.to(amp_dtype(matrix.device, amp=True))
    x = x / (x.norm() + eps)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Nesterov momentum in every group; a group with ``orthogonalise=True`` (conv filters) steps by
    Muon (Jordan 2024, as in airbench94_muon): the weight is first rescaled to norm sqrt(out channels),
    then moved by ``lr`` times the orthogonalised momentum of its (out, in * kh * kw) reshape; the other
    groups step as ``torch.optim.SGD(nesterov=True)`` with its coupled ``weight_decay``. The momentum
    buffers live in the state dict, so a resumed run continues exactly."""

    def __init__(self, params, *, lr: float, momentum: float, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                  "orthogonalise": False})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            momentum = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(grad)
                update = grad.add(state["momentum_buffer"], alpha=momentum)
                if group["orthogonalise"]:
                    p.mul_(len(p) ** 0.5 / p.norm())
                    update = orthogonalise(update.reshape(len(update), -1)).view_as(p)
                p.add_(update, alpha=-group["lr"])
        return loss
