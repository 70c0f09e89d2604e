"""Pruning masks applied to a copy of a model, and the sparsity they leave.

A mask says, for one ``nn.Linear`` (weight W of shape (out, in), y = W x + b), which weights stay
(True) and which go (False). :func:`apply_masks` zeroes the pruned weights in a deep copy, so every
shape stays as it was and the original model keeps its weights. The sparsity figures:

- :func:`overall_sparsity`, the course's figure (``get_sparsity`` of the course's ``src``): the
  share of exact zeros among every parameter (weights and biases) of every ``nn.Linear`` of the model,
  pruned or not (attention, feed-forward, pooler, classification head); embeddings and LayerNorm are
  not linear layers and do not count;
- :func:`pruned_sparsity`, the share of zeros among the weights of the pruned layers only, which is the
  ``sparsity_ratio`` itself (the check that the masks prune what they should);
- :func:`sparsity_table`, the share per pruned weight tensor.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn


def check_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """A ``ValueError`` naming the layer for a mask whose name is not a linear layer of ``model``, that
    is not boolean, or whose shape is neither the weight's (out, in) nor (in,)."""
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear):
            linear = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
            raise ValueError(f"masks names {name!r}, which is not a linear layer of the model; "
                             f"linear layers are e.g. {linear[:4]}")
        if mask.dtype != torch.bool:
            raise ValueError(f"the mask of {name} must be boolean (True: kept), got {mask.dtype}")
        shape, out_in = tuple(mask.shape), tuple(layer.weight.shape)
        if shape not in (out_in, out_in[1:]):
            raise ValueError(f"the mask of {name} has shape {shape}; its weight is (out, in) = {out_in}, so "
                             f"give a mask of {out_in} (single weights) or ({out_in[1]},) (input features)")


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` with the pruned weights set to 0; ``model`` itself is not changed.

    ``masks`` maps the name of a linear layer (as ``model.named_modules()`` names it, e.g.
    ``"bert.encoder.layer.0.output.dense"``) to a boolean mask, True where a weight is kept:

    - shape (out, in), the shape of the layer's ``weight``: entry [i, j] is weight W[i, j], the one
      that connects input feature j to output i (unstructured pruning, or a structured mask whose
      pruned rows are all False);
    - shape (in,): whole input features. Feature j of the input x enters y = W x + b only through
      column j of W (y_i = sum_j W[i, j] x_j + b_i), so a dropped feature zeroes that column, in
      every row (the columns of ``output.dense`` that read a dropped intermediate neuron).

    An output i left with no weight at all (a row of W all pruned: a dropped neuron) also loses its
    bias b_i, so that it outputs exactly 0. Layers not in ``masks`` stay as they are. The masks may sit
    on another device than the model (move them to the weight's).
    """
    check_masks(model, masks)
    ### BEGIN SOLUTION
    module = copy.deepcopy(model)
    layers = dict(module.named_modules())
    with torch.no_grad():
        for name, mask in masks.items():
            layer = layers[name]
            keep = (mask[None, :] if mask.ndim == 1 else mask).to(layer.weight.device).expand_as(layer.weight)
            layer.weight.mul_(keep)
            if layer.bias is not None:
                layer.bias.mul_(keep.any(dim=1))
    return module
    ### END SOLUTION


def overall_sparsity(model: nn.Module) -> float:
    """The course's overall sparsity of ``model``: exact zeros / number of entries, counted over every
    parameter (``weight`` and, where there is one, ``bias``) of every ``nn.Linear`` in the model, pruned
    or not: attention, feed-forward, pooler and classification head alike. Parameters of other modules
    (embeddings, LayerNorm) do not count. 0.0 for a model without linear layers."""
    ### BEGIN SOLUTION
    zeros = total = 0
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            for parameter in layer.parameters(recurse=False):
                zeros += int((parameter == 0).sum())
                total += parameter.numel()
    return zeros / total if total else 0.0
    ### END SOLUTION


def pruned_sparsity(model: nn.Module, names: Iterable[str]) -> float:
    """Share of exact zeros over the weights of the named linear layers together (their biases left out):
    what the pruning's ``sparsity_ratio`` asks for."""
    modules = dict(model.named_modules())
    zeros = total = 0
    for n in names:
        w = modules[n].weight
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / max(total, 1)


def sparsity_table(model: nn.Module, names: Iterable[str]) -> dict[str, float]:
    """Share of exact zeros in the weight of each named linear layer."""
    modules = dict(model.named_modules())
    return {n: float((modules[n].weight == 0).float().mean()) for n in names}
