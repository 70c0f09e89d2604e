"""Span decoding: order, length limit and mask."""

from __future__ import annotations

import pytest
import torch

from course_lib.qa.decoding import best_span


def test_best_span_respects_order_length_and_mask():
    start = torch.log(torch.tensor([[0.1, 0.1, 0.7, 0.1, 0.0]]) + 1e-9)
    end = torch.log(torch.tensor([[0.6, 0.1, 0.0, 0.1, 0.2]]) + 1e-9)
    mask = torch.tensor([[True, True, True, True, True]])
    s, e = best_span(start, end, mask, max_len=5)
    assert (s.item(), e.item()) == (2, 4)  # end 0 is more likely but comes before the start
    s, e = best_span(start, end, mask, max_len=2)
    assert (s.item(), e.item()) == (2, 3)
    s, e = best_span(start, end, torch.tensor([[True, True, True, True, False]]), max_len=5)
    assert e.item() == 3
    with pytest.raises(ValueError, match="max_len"):
        best_span(start, end, mask, max_len=0)
