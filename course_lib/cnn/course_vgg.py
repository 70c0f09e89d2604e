"""The course's CIFAR-10 network as an ``nn.Module``, built by the student from the recipe below.

The recipe (the course's ``Net``): five blocks, each its convolutions back to back (every one with
``padding=1`` and a bias, no activation between them), then ``nn.MaxPool2d(2, 2, padding=pool_pad)``,
``nn.BatchNorm2d`` and ``nn.ReLU``; the blocks' output channels and kernel sizes are
:data:`COURSE_VGG_BLOCKS`. The last feature map is flattened into ``Linear -> ReLU -> Dropout`` for each
of :data:`COURSE_VGG_HIDDEN` (1024, then 128 units) and a last ``Linear`` to the classes.
Layouts: images (B, 3, H, W) NCHW, as PyTorch's convolutions take them (not the numpy part's NHWC).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from course_lib.cnn.numpy_conv import conv_output_size

COURSE_VGG_BLOCKS = (
    # (output channels, kernel sizes of the block's convs, padding of its 2x2 max-pool)
    (64, (3, 3), 0), (128, (3, 3), 1), (128, (3, 3, 1), 1), (256, (3, 1), 1), (512, (3, 1), 1),
)
"""The course's five conv blocks; every conv has padding 1, so a 1x1 conv grows H and W by 2."""
COURSE_VGG_HIDDEN = (1024, 128)
"""The course's fully connected layers between the last block and the 10 classes."""


def course_vgg_block(c_in: int, c_out: int, kernels: Sequence[int], pool_pad: int) -> nn.Sequential:
    """One block of the course's network: ``nn.Sequential`` of, in this order,

    - one ``nn.Conv2d(·, c_out, k, padding=1)`` per kernel size ``k`` of ``kernels`` (the first from
      ``c_in`` channels, the others from ``c_out``), with bias, no activation between them;
    - ``nn.MaxPool2d(2, 2, padding=pool_pad)``;
    - ``nn.BatchNorm2d(c_out)``;
    - ``nn.ReLU()``.

    (B, c_in, H, W) -> (B, c_out, H', W'): a k x k conv with padding 1 makes a side n into n + 3 - k, the
    pool makes n into (n + 2 pool_pad - 2) // 2 + 1 (:func:`~course_lib.cnn.numpy_conv.conv_output_size`).
    """
    ### BEGIN SOLUTION
    layers: list[nn.Module] = []
    for k in kernels:
        layers.append(nn.Conv2d(c_in, c_out, k, padding=1))
        c_in = c_out
    layers += [nn.MaxPool2d(2, 2, padding=pool_pad), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)
    ### END SOLUTION


class CourseVGG(nn.Module):
    """The course's VGG-like network: images (B, 3, H, W) NCHW, uint8 or float on the 0..255 scale,
    to logits (B, num_classes) float32.

    Attributes the rest of the workbook reads (build them in ``__init__``):

    - ``features``: ``nn.Sequential`` of the five :func:`course_vgg_block` of :data:`COURSE_VGG_BLOCKS`,
      in order, each block's channels ``max(1, round(channels * width))`` (``width=1.0``: the course's
      64-128-128-256-512); with 32x32 images the last block's output is (B, 512 * width, 4, 4);
    - ``head``: ``nn.Sequential(nn.Flatten(), Linear(F, 1024), ReLU, Dropout(dropout), Linear(1024, 128),
      ReLU, Dropout(dropout), Linear(128, num_classes))`` (the hidden sizes :data:`COURSE_VGG_HIDDEN` keep
      1024 and 128 at any width), where F = channels x side x side of the last feature map for
      ``image_size`` x ``image_size`` images (compute the side block by block).

    ``forward``: normalise with the buffers ``mean`` and ``std`` (each (1, 3, 1, 1), 0..255 scale, the
    training set's channel statistics): ``(x.float() - mean) / std``; then ``features``; then ``head``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float], width: float = 1.0, dropout: float = 0.5,
                 num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))
        ### BEGIN SOLUTION
        blocks, c_in, side = [], 3, image_size
        for channels, kernels, pool_pad in COURSE_VGG_BLOCKS:
            c_out = max(1, round(channels * width))
            blocks.append(course_vgg_block(c_in, c_out, kernels, pool_pad))
            for k in kernels:
                side = conv_output_size(side, k, 1, 1)
            side = conv_output_size(side, 2, pool_pad, 2)
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten()]
        n_in = c_in * side * side
        for hidden in COURSE_VGG_HIDDEN:
            head += [nn.Linear(n_in, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            n_in = hidden
        self.head = nn.Sequential(*head, nn.Linear(n_in, num_classes))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) on the 0..255 scale -> logits (B, num_classes): normalised with ``mean`` and
        ``std``, then ``features``, then ``head`` (which flattens)."""
        ### BEGIN SOLUTION
        x = (x.float() - self.mean) / self.std
        return self.head(self.features(x))
        ### END SOLUTION
