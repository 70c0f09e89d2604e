"""Concern identification: score the feed-forward weights by how much they serve one class (the
concern) rather than the others, and prune the rest, on a deep copy of the model.

The scores read the statistics of each pruned layer's input that
:func:`~course_lib.modularization.activations.activation_stats` collects with forward hooks: for every
input feature j of a layer y = W x + b, over the non-padding tokens, the norm of the concern
activations n+_j, that of the non-concern activations n-_j and the cosine c_j between the two (token
t of positive i against token t of negative i).

Scores (``score``):

- ``"ci"``, the course's concern identification (``Pruner.ci`` of the course's ``src/pruning``):
  with sin_j = sqrt(1 - c_j^2),

      coef_j = n+_j + sin_j (n+_j + n-_j) / sqrt(n+_j^2 + n-_j^2),    S_ij = |W_ij| |coef_j|;

  a feature whose concern activations point away from the non-concern ones gets a bonus.
- ``"wanda"``: S_ij = |W_ij| (a+_j - lambda a-_j) with a the root-mean-square activation (the
  Wanda importance on positives minus ``lambda`` times that on negatives).
- ``"random"``: S_ij uniform in [0, 1), seeded per layer: a concern-blind module at the same sparsity,
  the baseline that a concern score has to beat.

Methods: ``"unstructured"`` zeroes the lowest-scoring ``sparsity_ratio`` share of every row of W
(each output keeps the same number of inputs); ``"structured"`` drops the lowest ``sparsity_ratio``
share of the intermediate neurons of every feed-forward block, ranked by the norm of their score
row: their row (and bias) in ``intermediate.dense`` and their input column in the ``output.dense``
beside it. :func:`~course_lib.modularization.masks.apply_masks` zeroes them in a copy, so every shape
stays as it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from course_lib.core.settings import check_choice

from .activations import EPS, ActivationStats, activation_stats, paired_batches
from .config import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, METHODS, SCORES, check_ratio, compile_patterns
from .masks import apply_masks


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


def ci_coefficient(pos_norm: torch.Tensor, neg_norm: torch.Tensor, cosine: torch.Tensor) -> torch.Tensor:
    """The course's concern-identification coefficient per input feature, (in,) from three (in,)
    tensors: n+ + sin (n+ + n-) / sqrt(n+^2 + n-^2) with sin = sqrt(1 - cosine^2); a feature silent
    on both sides (n+ = n- = 0) gets 0."""
    ### BEGIN SOLUTION
    sine = (1.0 - cosine.square()).clamp(min=0.0).sqrt()
    distance = (pos_norm.square() + neg_norm.square()).sqrt().clamp(min=EPS)
    return pos_norm + sine * (pos_norm + neg_norm).abs() / distance
    ### END SOLUTION


def wanda_scores(
    weight: torch.Tensor, rms_pos: torch.Tensor, rms_neg: torch.Tensor, negative_weight: float = 0.5
) -> torch.Tensor:
    """Wanda-style concern score (out, in) of ``weight`` (out, in) from the input RMS on positives and
    on negatives (in,): |W_ij| (a+_j - negative_weight * a-_j)."""
    ### BEGIN SOLUTION
    return weight.abs() * (rms_pos - negative_weight * rms_neg).to(weight.dtype)[None, :]
    ### END SOLUTION


def check_score(score: str) -> str:
    """``score`` if it is one of :data:`SCORES`, else a ``ValueError`` listing them."""
    check_choice("score", score, SCORES)
    return score


def concern_scores(weight: torch.Tensor, stats: ActivationStats, score: str = "ci",
                   negative_weight: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Importance (out, in) of every weight of ``weight`` (out, in) for the concern: ``"ci"`` gives
    |W_ij| |ci_coefficient_j|, ``"wanda"`` :func:`wanda_scores` (with ``negative_weight``), ``"random"``
    uniform numbers drawn with ``seed``."""
    check_score(score)
    if score == "random":
        generator = torch.Generator().manual_seed(seed)
        return torch.rand(weight.shape, generator=generator).to(weight.device, weight.dtype)
    if score == "ci":
        coefficient = ci_coefficient(stats.pos_norm, stats.neg_norm, stats.cosine)
        return weight.abs() * coefficient.to(weight.device, weight.dtype).abs()[None, :]
    return wanda_scores(weight, stats.rms_pos.to(weight.device), stats.rms_neg.to(weight.device),
                        negative_weight)


def pruned_count(n: int, sparsity_ratio: float) -> int:
    """How many of ``n`` entries a ``sparsity_ratio`` prunes: floor(ratio * n), robust to rounding."""
    return math.floor(sparsity_ratio * n + 1e-9)


def keep_mask(scores: torch.Tensor, sparsity_ratio: float, method: str) -> torch.Tensor:
    """Boolean mask (out, in), False for the pruned weights.

    ``"unstructured"``: in every row, the ``floor(sparsity_ratio * in)`` lowest scores (ties: the
    first in column order). ``"structured"``: whole rows, the ``floor(sparsity_ratio * out)`` with
    the lowest norm of their positive scores (a negative score adds no importance).
    """
    check_method(method)
    check_ratio(sparsity_ratio)
    ### BEGIN SOLUTION
    mask = torch.ones_like(scores, dtype=torch.bool)
    if method == "unstructured":
        k = pruned_count(scores.shape[1], sparsity_ratio)
        pruned = torch.argsort(scores, dim=1, stable=True)[:, :k]
        mask.scatter_(1, pruned, False)
    else:
        k = pruned_count(scores.shape[0], sparsity_ratio)
        importance = torch.linalg.vector_norm(scores.clamp(min=0), dim=1)
        mask[torch.argsort(importance, stable=True)[:k]] = False
    return mask
    ### END SOLUTION


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else a ``ValueError`` listing them."""
    check_choice("method", method, METHODS)
    return method


def feed_forward_pairs(model: nn.Module, layers: dict[str, nn.Linear]) -> dict[str, str]:
    """For structured pruning: every selected ``...intermediate.dense`` layer mapped to the
    ``...output.dense`` of its block. A ``ValueError`` if a selected layer is neither."""
    modules = dict(model.named_modules())
    pairs = {}
    for name in layers:
        if name.endswith("intermediate.dense"):
            partner = name[: -len("intermediate.dense")] + "output.dense"
            if not isinstance(modules.get(partner), nn.Linear):
                raise ValueError(f"structured pruning: {name} has no {partner} to drop the neurons' "
                                 "columns from")
            pairs[name] = partner
    stray = [n for n in layers if n not in pairs and n not in pairs.values()]
    if stray:
        raise ValueError(f"structured pruning drops intermediate neurons of the feed-forward blocks; "
                         f"{stray[:3]} is not an intermediate.dense / output.dense layer (use unstructured)")
    return pairs


@torch.no_grad()
def prune_concern(
    model: nn.Module,
    positives: dict[str, torch.Tensor],
    negatives: dict[str, torch.Tensor],
    *,
    sparsity_ratio: float,
    method: str = "unstructured",
    score: str = "ci",
    negative_weight: float = 0.5,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    batch_size: int = 16,
) -> nn.Module:
    """A pruned deep copy of ``model`` that keeps the weights serving the concern; ``model`` is untouched.

    ``positives`` / ``negatives`` are :func:`~course_lib.modularization.data.encode` dicts of the
    concern's samples and of the other classes' samples, paired row by row
    (:func:`~course_lib.modularization.activations.paired_batches`) and run on the model's device in
    eval mode. ``score`` and ``method`` as in the module's docstring. The steps: the hooks' statistics
    (:func:`activation_stats`), the scores (:func:`concern_scores`), the masks (:func:`keep_mask`) and
    the pruned copy (:func:`apply_masks`).
    """
    check_method(method)
    check_score(score)
    check_ratio(sparsity_ratio)
    layers = find_layers(model, include, exclude)
    pairs = feed_forward_pairs(model, layers) if method == "structured" else {}
    scored = list(pairs) if method == "structured" else list(layers)
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    try:
        stats = activation_stats(model, paired_batches(positives, negatives, batch_size, device),
                                 {name: layers[name] for name in scored})
    finally:
        model.train(training)
    masks: dict[str, torch.Tensor] = {}
    for index, name in enumerate(scored):
        scores = concern_scores(layers[name].weight, stats[name], score, negative_weight, seed=index)
        masks[name] = keep_mask(scores, sparsity_ratio, method)
        if method == "structured":  # the kept neurons are the input features of the block's output layer
            masks[pairs[name]] = masks[name].all(dim=1)
    return apply_masks(model, masks)
