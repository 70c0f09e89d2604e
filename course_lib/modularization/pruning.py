"""Concern identification: score the feed-forward weights by how much they serve one class (the
concern) rather than the others, and prune the rest, on a deep copy of the model.

For a linear layer y = W x + b and the root-mean-square activation of each input feature over the
tokens of the positive samples, a+_j, and of the negative samples, a-_j, the concern score is

    S_ij = |W_ij| (a+_j - lambda a-_j)

(the Wanda importance |W_ij| a_j on positives minus ``lambda`` times that on negatives): weights
that carry much more signal for other classes than for the concern score lowest and are pruned
first. ``lambda = 0`` keeps what matters for the concern alone (Wanda on positives); ``lambda = 1``
ranks by the plain difference, which also prunes strong weights that serve every class alike.
Unstructured pruning zeroes the lowest-scoring ``sparsity_ratio`` of each weight matrix; structured
pruning zeroes whole output neurons (a row of W and its bias) ranked by their summed score.
Masks are applied in place, so every shape stays as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from course_lib.core.settings import check_choice

from .config import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, METHODS, check_ratio, compile_patterns
from .data import batches


def find_layers(
    model: nn.Module,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
) -> dict[str, nn.Linear]:
    """Linear layers whose name matches an ``include`` pattern and no ``exclude`` pattern (re.search)."""
    inc, exc = compile_patterns(include, "include"), compile_patterns(exclude, "exclude")
    linear = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    chosen = {n: m for n, m in linear.items()
              if any(p.search(n) for p in inc) and not any(p.search(n) for p in exc)}
    if not chosen:
        raise ValueError(f"no linear layer matches include={list(include)} / exclude={list(exclude)}; "
                         f"linear layers are e.g. {list(linear)[:6]}")
    return chosen


@torch.no_grad()
def activation_rms(
    model: nn.Module,
    encoded: dict[str, torch.Tensor],
    layers: dict[str, nn.Linear],
    device: torch.device,
    batch_size: int = 32,
) -> dict[str, torch.Tensor]:
    """Per layer, the RMS of each input feature (in_features,) over the non-padding tokens of ``encoded``."""
    sums = {n: torch.zeros(m.in_features, dtype=torch.float64) for n, m in layers.items()}
    count = 0
    mask: torch.Tensor | None = None

    def hook(name):
        def record(_module, inputs, _output):
            x = inputs[0].detach().to(torch.float64)  # (B, T, in)
            sums[name] += (x.square() * mask[..., None]).sum(dim=(0, 1)).cpu()
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        model.eval()
        for b in batches(encoded, batch_size):
            mask = b["attention_mask"].to(device=device, dtype=torch.float64)
            model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device))
            count += int(b["attention_mask"].sum())
    finally:
        for h in handles:
            h.remove()
    return {n: (s / max(count, 1)).sqrt().float() for n, s in sums.items()}


def concern_scores(
    weight: torch.Tensor, rms_pos: torch.Tensor, rms_neg: torch.Tensor, negative_weight: float = 0.5
) -> torch.Tensor:
    """Concern score S (out, in) of ``weight`` (out, in) from the input RMS on positives and on
    negatives (in,): |W_ij| (a+_j - negative_weight * a-_j)."""
    ### BEGIN SOLUTION
    return weight.abs() * (rms_pos - negative_weight * rms_neg).to(weight.dtype)[None, :]
    ### END SOLUTION


def keep_mask(scores: torch.Tensor, sparsity_ratio: float, method: str) -> torch.Tensor:
    """Boolean mask (out, in), False for the pruned weights: the lowest-scoring ``sparsity_ratio``
    of the entries ("unstructured") or of the rows, by summed score ("structured")."""
    check_method(method)
    check_ratio(sparsity_ratio)
    ### BEGIN SOLUTION
    mask = torch.ones_like(scores, dtype=torch.bool)
    if method == "unstructured":
        k = round(sparsity_ratio * scores.numel())
        pruned = torch.argsort(scores.flatten(), stable=True)[:k]
        mask.view(-1)[pruned] = False
    else:
        k = round(sparsity_ratio * scores.shape[0])
        pruned = torch.argsort(scores.sum(dim=1), stable=True)[:k]
        mask[pruned] = False
    return mask
    ### END SOLUTION


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else a ``ValueError`` listing them."""
    check_choice("method", method, METHODS)
    return method


@torch.no_grad()
def prune_concern(
    model: nn.Module,
    positives: dict[str, torch.Tensor],
    negatives: dict[str, torch.Tensor],
    *,
    sparsity_ratio: float,
    method: str = "unstructured",
    negative_weight: float = 0.5,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
) -> nn.Module:
    """A pruned deep copy of ``model`` that keeps the weights serving the concern; ``model`` is untouched.

    ``positives`` / ``negatives`` are :func:`~course_lib.modularization.data.encode` dicts of the
    concern's samples and of the other classes' samples.
    """
    check_method(method)
    check_ratio(sparsity_ratio)
    device = torch.device(device)
    module = copy.deepcopy(model).to(device).eval()
    layers = find_layers(module, include, exclude)
    rms_pos = activation_rms(module, positives, layers, device, batch_size)
    rms_neg = activation_rms(module, negatives, layers, device, batch_size)
    for name, layer in layers.items():
        w = layer.weight
        scores = concern_scores(w, rms_pos[name].to(w.device), rms_neg[name].to(w.device), negative_weight)
        mask = keep_mask(scores, sparsity_ratio, method)
        w.mul_(mask)
        if method == "structured" and layer.bias is not None:
            layer.bias.mul_(mask.any(dim=1))
    return module


def sparsity_table(model: nn.Module, names: Iterable[str]) -> dict[str, float]:
    """Share of exact zeros in the weight of each named linear layer."""
    modules = dict(model.named_modules())
    return {n: float((modules[n].weight == 0).float().mean()) for n in names}


def overall_sparsity(model: nn.Module, names: Iterable[str]) -> float:
    """Share of exact zeros over all weights of the named linear layers together."""
    modules = dict(model.named_modules())
    zeros = total = 0
    for n in names:
        w = modules[n].weight
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / max(total, 1)
