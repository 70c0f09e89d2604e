"""What the pruned layers see: per-feature statistics of their inputs on a concern's samples, collected
with forward hooks.

The concern's positive samples (its class) and as many negative samples (the other classes) run
through the model together: :func:`paired_batches` puts B positives and B negatives in one batch of
2B rows (positives first), padded to one length T, so that the i-th positive and the i-th negative
line up token by token. A forward hook on every chosen ``nn.Linear`` (y = W x + b) sees that layer's
input x, shape (2B, T, in); :func:`feature_sums` adds up, per input feature j and over the non-padding
tokens, x_j^2 of the positives, x_j^2 of the negatives and the products of the paired tokens;
:func:`activation_stats` registers the hooks, runs the batches, removes the hooks and turns the sums
into an :class:`ActivationStats` per layer: the norms n+_j and n-_j and the cosine c_j between the two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

EPS = 1e-8
"""Floor of the denominators (the cosine and the concern coefficient), so that silent features score 0."""


@dataclass(frozen=True)
class ActivationStats:
    """What one layer's inputs look like on the concern and non-concern samples, per input feature
    (each tensor (in_features,), float32): the norms ``pos_norm`` and ``neg_norm`` over the non-padding
    tokens, their ``cosine``, and the token counts behind them."""

    pos_norm: torch.Tensor
    neg_norm: torch.Tensor
    cosine: torch.Tensor
    pos_tokens: int
    neg_tokens: int

    @classmethod
    def from_sums(cls, sums: torch.Tensor, pos_tokens: int, neg_tokens: int) -> ActivationStats:
        """The statistics of the (3, in) sums of :func:`feature_sums` (added over every batch): norms
        sqrt(sum x^2) and cosine sum(x+ x-) / (n+ n-), 0 where either side is silent."""
        if sums.ndim != 2 or sums.shape[0] != 3:
            raise ValueError(f"sums must have shape (3, in_features), got {tuple(sums.shape)}")
        sq_pos, sq_neg, dot = sums.double().cpu()
        pos_norm, neg_norm = sq_pos.clamp(min=0).sqrt(), sq_neg.clamp(min=0).sqrt()
        cosine = dot / (pos_norm * neg_norm).clamp(min=EPS)
        return cls(pos_norm.float(), neg_norm.float(), cosine.float(), pos_tokens, neg_tokens)

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


def paired_batches(
    positives: dict[str, torch.Tensor],
    negatives: dict[str, torch.Tensor],
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(input_ids, attention_mask)``, each (2B, T) on ``device``: rows 0..B-1 are B positives, rows
    B..2B-1 the B negatives paired with them (row B + i with row i), both padded on the right to the
    longer of the two (mask 0). ``positives`` / ``negatives`` are
    :func:`~course_lib.modularization.data.encode` dicts; the longer set is cut to the shorter."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = min(len(positives["input_ids"]), len(negatives["input_ids"]))
    if n == 0:
        raise ValueError("paired_batches needs at least one positive and one negative sample")
    for start in range(0, n, batch_size):
        rows = slice(start, min(start + batch_size, n))
        p = {k: positives[k][rows] for k in ("input_ids", "attention_mask")}
        q = {k: negatives[k][rows] for k in ("input_ids", "attention_mask")}
        length = max(p["input_ids"].shape[1], q["input_ids"].shape[1])
        (p_ids, p_mask), (q_ids, q_mask) = _pad(p, length), _pad(q, length)
        yield torch.cat([p_ids, q_ids]).to(device), torch.cat([p_mask, q_mask]).to(device)


def feature_sums(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """What one batch adds to a layer's statistics, per input feature: a (3, in) float64 tensor.

    ``x`` (2B, T, in) is the input of a linear layer on a :func:`paired_batches` batch: rows 0..B-1
    are the concern's positives, rows B..2B-1 the negatives paired with them (row B + i with row i).
    ``mask`` (2B, T) is that batch's attention mask (1 for a real token, 0 for padding): padding
    tokens add nothing. With x+ = x[:B] and x- = x[B:], and sums over the samples and the tokens
    (dimensions 0 and 1), the three rows are, for every feature j:

    - row 0: sum of x+[b, t, j]^2 over the positives' real tokens;
    - row 1: sum of x-[b, t, j]^2 over the negatives' real tokens;
    - row 2: sum of x+[b, t, j] * x-[b, t, j], token t of positive b against token t of its negative
      (a pair where either token is padding adds nothing).

    Compute in float64 (the sums of a whole sample set are large); ``x`` may be float32.
    """
    if x.ndim != 3 or mask.shape != x.shape[:2] or x.shape[0] % 2:
        raise ValueError(f"feature_sums needs x (2B, T, in) and mask (2B, T) with an even number of rows, "
                         f"got x {tuple(x.shape)} and mask {tuple(mask.shape)}")
    ### BEGIN SOLUTION
    kept = x.detach().to(torch.float64) * mask.to(x.device, torch.float64)[..., None]
    pos, neg = kept.chunk(2)
    return torch.stack([pos.square().sum((0, 1)), neg.square().sum((0, 1)), (pos * neg).sum((0, 1))])
    ### END SOLUTION


def activation_stats(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    layers: dict[str, nn.Linear],
) -> dict[str, ActivationStats]:
    """The :class:`ActivationStats` of the input of every layer in ``layers``, collected with forward
    hooks while ``model`` runs ``batches``.

    ``layers`` maps names to ``nn.Linear`` modules of ``model`` (the layers to prune: in a BERT, the
    feed-forward block's ``intermediate.dense``, whose input is the attention block's output (in =
    hidden size), and ``output.dense``, whose input is the intermediate activation (in = feed-forward
    size)). ``batches`` yields ``(input_ids, attention_mask)``, each (2B, T) on the model's device, as
    :func:`paired_batches` gives them; call ``model(input_ids=..., attention_mask=...)`` on each, under
    ``torch.no_grad()``, with the model in the mode it is in (the caller puts it in eval mode).

    A forward hook is called as ``hook(module, inputs, output)`` after ``module`` runs: ``inputs`` is
    the tuple of its positional arguments, so ``inputs[0]`` is the layer's input x (2B, T, in), and
    ``output`` is y (2B, T, out). The hook only sees x: the attention mask of the batch it belongs to
    must come from the enclosing code. For every layer, add :func:`feature_sums` of x and that mask
    into one (3, in) float64 CPU tensor; count the real tokens of the positives (rows 0..B-1 of the
    mask) and of the negatives (rows B..2B-1) over all batches.

    Remove every hook before returning, also when the model raises (``handle.remove()`` on the
    handle that ``register_forward_hook`` returns, in a ``finally``). Return ``{name:
    ActivationStats.from_sums(sums, positive tokens, negative tokens)}`` for every layer.
    """
    ### BEGIN SOLUTION
    sums = {name: torch.zeros(3, layer.in_features, dtype=torch.float64) for name, layer in layers.items()}
    tokens = [0, 0]
    current: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
            sums[name] += feature_sums(inputs[0], current["mask"]).cpu()
        return hook

    handles = [layer.register_forward_hook(hook_for(name)) for name, layer in layers.items()]
    try:
        with torch.no_grad():
            for input_ids, attention_mask in batches:
                current["mask"] = attention_mask
                model(input_ids=input_ids, attention_mask=attention_mask)
                half = len(attention_mask) // 2
                tokens[0] += int(attention_mask[:half].sum())
                tokens[1] += int(attention_mask[half:].sum())
    finally:
        for handle in handles:
            handle.remove()
    return {name: ActivationStats.from_sums(s, tokens[0], tokens[1]) for name, s in sums.items()}
    ### END SOLUTION
