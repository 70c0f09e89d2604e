"""Concern identification: score the feed-forward weights by how much they serve one class (the
concern) rather than the others, and prune the rest, on a deep copy of the model.

The positive samples (the concern's class) and as many negative samples (the other classes) run
through the model together: the i-th positive and the i-th negative sit in the same batch, padded to
the same length. For every input feature j of a pruned linear layer y = W x + b this gives, over the
non-padding tokens, the norm of the concern activations n+_j, that of the non-concern activations
n-_j and the cosine c_j between the two (token t of positive i against token t of negative i).

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
beside it. Masks are applied in place, so every shape stays as it was.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib.core.settings import check_choice

from .config import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, METHODS, SCORES, check_ratio, compile_patterns

EPS = 1e-8
"""Floor of the denominators (the cosine and the coefficient), so that silent features score 0."""


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


@dataclass(frozen=True)
class ActivationStats:
    """What one layer's inputs look like on the concern and non-concern samples, per input feature
    (each tensor (in_features,)): the norms ``pos_norm`` and ``neg_norm`` over the non-padding tokens,
    their ``cosine``, and the token counts behind them."""

    pos_norm: torch.Tensor
    neg_norm: torch.Tensor
    cosine: torch.Tensor
    pos_tokens: int
    neg_tokens: int

    @property
    def rms_pos(self) -> torch.Tensor:
        """Root-mean-square activation on the concern tokens, (in,)."""
        return self.pos_norm / math.sqrt(max(self.pos_tokens, 1))

    @property
    def rms_neg(self) -> torch.Tensor:
        """Root-mean-square activation on the non-concern tokens, (in,)."""
        return self.neg_norm / math.sqrt(max(self.neg_tokens, 1))


def _pad(batch: dict[str, torch.Tensor], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` of ``batch`` padded on the right to ``length`` (mask 0)."""
    extra = length - batch["input_ids"].shape[1]
    return (nn.functional.pad(batch["input_ids"], (0, extra)),
            nn.functional.pad(batch["attention_mask"], (0, extra)))


@torch.no_grad()
def activation_stats(
    model: nn.Module,
    positives: dict[str, torch.Tensor],
    negatives: dict[str, torch.Tensor],
    layers: dict[str, nn.Linear],
    device: torch.device,
    batch_size: int = 16,
) -> dict[str, ActivationStats]:
    """Per layer, the :class:`ActivationStats` of its input on ``positives`` against ``negatives``
    (:func:`~course_lib.modularization.data.encode` dicts). The i-th positive is paired with the i-th
    negative (the longer set is cut to the shorter); padding tokens count for nothing."""
    n = min(len(positives["input_ids"]), len(negatives["input_ids"]))
    if n == 0:
        raise ValueError("activation_stats needs at least one positive and one negative sample")
    sums = {name: torch.zeros(3, m.in_features, dtype=torch.float64) for name, m in layers.items()}
    mask: torch.Tensor | None = None

    def hook(name):
        def record(_module, inputs, _output):
            assert mask is not None  # set before every forward pass
            x = inputs[0].detach().to(torch.float64) * mask[..., None]  # (2B, T, in), padding zeroed
            pos, neg = x.chunk(2)
            sums[name] += torch.stack([pos.square().sum((0, 1)), neg.square().sum((0, 1)),
                                       (pos * neg).sum((0, 1))]).cpu()
        return record

    tokens = [0, 0]
    handles = [m.register_forward_hook(hook(name)) for name, m in layers.items()]
    try:
        model.eval()
        for start in range(0, n, batch_size):
            p = {k: positives[k][start:min(start + batch_size, n)] for k in ("input_ids", "attention_mask")}
            q = {k: negatives[k][start:min(start + batch_size, n)] for k in ("input_ids", "attention_mask")}
            length = max(p["input_ids"].shape[1], q["input_ids"].shape[1])
            (p_ids, p_mask), (q_ids, q_mask) = _pad(p, length), _pad(q, length)
            ids, attention = torch.cat([p_ids, q_ids]).to(device), torch.cat([p_mask, q_mask]).to(device)
            mask = attention.to(torch.float64)
            model(input_ids=ids, attention_mask=attention)
            tokens[0] += int(p_mask.sum())
            tokens[1] += int(q_mask.sum())
    finally:
        for h in handles:
            h.remove()
    stats = {}
    for name, (sq_pos, sq_neg, dot) in sums.items():
        pos_norm, neg_norm = sq_pos.sqrt(), sq_neg.sqrt()
        cosine = dot / (pos_norm * neg_norm).clamp(min=EPS)
        stats[name] = ActivationStats(pos_norm.float(), neg_norm.float(), cosine.float(), *tokens)
    return stats


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
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> nn.Module:
    """A pruned deep copy of ``model`` that keeps the weights serving the concern; ``model`` is untouched.

    ``positives`` / ``negatives`` are :func:`~course_lib.modularization.data.encode` dicts of the
    concern's samples and of the other classes' samples (paired row by row, see
    :func:`activation_stats`). ``score`` and ``method`` as in the module's docstring.
    """
    check_method(method)
    check_score(score)
    check_ratio(sparsity_ratio)
    device = torch.device(device)
    module = copy.deepcopy(model).to(device).eval()
    layers = find_layers(module, include, exclude)
    pairs = feed_forward_pairs(module, layers) if method == "structured" else {}
    scored = list(pairs) if method == "structured" else list(layers)
    stats = activation_stats(module, positives, negatives, {n: layers[n] for n in scored}, device, batch_size)
    modules = dict(module.named_modules())
    for index, name in enumerate(scored):
        layer = layers[name]
        scores = concern_scores(layer.weight, stats[name], score, negative_weight, seed=index)
        mask = keep_mask(scores, sparsity_ratio, method)
        if method == "unstructured":
            layer.weight.mul_(mask)
            continue
        kept = mask.all(dim=1)  # (intermediate neurons,)
        layer.weight.mul_(kept[:, None])
        if layer.bias is not None:
            layer.bias.mul_(kept)
        modules[pairs[name]].weight.mul_(kept[None, :])
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
