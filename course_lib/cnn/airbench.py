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
learning rate there (:func:`~course_lib.cnn.cifar.make_optimizer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

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
