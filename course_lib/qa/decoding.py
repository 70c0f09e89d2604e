"""Span decoding: the best ``(start, end)`` with ``start <= end < start + max_len`` among real tokens."""

from __future__ import annotations

import torch


def best_span(
    start_scores: torch.Tensor, end_scores: torch.Tensor, mask: torch.Tensor, max_len: int = 30
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``start_scores[i] + end_scores[j]`` over ``i <= j < i + max_len`` (both unpadded).

    ``start_scores``, ``end_scores``: (B, T) log-probabilities (or logits); ``mask``: (B, T) bool,
    True at real tokens. Returns ``starts``, ``ends``: (B,) long.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    B, T = start_scores.shape
    start = start_scores.float().masked_fill(~mask, float("-inf"))
    end = end_scores.float().masked_fill(~mask, float("-inf"))
    pair = start.unsqueeze(2) + end.unsqueeze(1)  # (B, T, T): [b, i, j]
    ones = torch.ones(T, T, dtype=torch.bool, device=pair.device)
    allowed = torch.triu(ones) & ~torch.triu(ones, diagonal=max_len)  # i <= j < i + max_len
    pair = pair.masked_fill(~allowed, float("-inf"))
    flat = pair.view(B, -1).argmax(dim=1)
    return flat // T, flat % T
