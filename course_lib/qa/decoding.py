"""Span decoding: the best ``(start, end)`` with ``start <= end < start + max_len`` among real tokens."""

from __future__ import annotations

import torch


def best_span(
    start_scores: torch.Tensor, end_scores: torch.Tensor, mask: torch.Tensor, max_len: int = 30
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example, the span ``(i, j)`` maximising ``start_scores[i] + end_scores[j]`` over
    ``i <= j < i + max_len`` (an answer of at most ``max_len`` tokens, its end never before its
    start), both ``i`` and ``j`` real tokens.

    ``start_scores``, ``end_scores``: (B, m) log-probabilities (or logits), any float dtype, scored in
    float32; ``mask``: (B, m) bool, True at real tokens (each row has at least one), False at padding,
    whatever scores padding holds. Ties: the smallest ``i``, then the smallest ``j`` (the first best
    pair in row-major order). Returns ``starts``, ``ends``: (B,) long.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    ### BEGIN SOLUTION
    B, T = start_scores.shape
    start = start_scores.float().masked_fill(~mask, float("-inf"))
    end = end_scores.float().masked_fill(~mask, float("-inf"))
    pair = start.unsqueeze(2) + end.unsqueeze(1)  # (B, T, T): [b, i, j]
    ones = torch.ones(T, T, dtype=torch.bool, device=pair.device)
    allowed = torch.triu(ones) & ~torch.triu(ones, diagonal=max_len)  # i <= j < i + max_len
    pair = pair.masked_fill(~allowed, float("-inf"))
    flat = pair.view(B, -1).argmax(dim=1)
    return flat // T, flat % T
    ### END SOLUTION
