"""The span decoding exercise (order, length limit, mask, ties), with wrong-but-runnable variants the
check rejects."""

from __future__ import annotations

import pytest
import torch

from course_lib.qa.decoding import best_span
from tests.qa.checks import assert_check_fails, assert_equal_to

# (what it tests, start scores, end scores, real positions, max_len, the best span by hand)
CASES = [
    ("end before start", [-9, 0, 5, 0, 0, 0], [9, 0, 0, 0, 1, 0], 6, 6, (2, 4)),
    ("length", [-9, 5, 0, 0, 0, 0], [-9, 0, 1, 0, 4, 0], 6, 3, (1, 2)),
    ("padding", [0, 1, 0, 0, 50, 50], [0, 0, 2, 0, 50, 50], 4, 6, (1, 2)),
    ("ties", [1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], 6, 6, (0, 1)),
    ("one token", [0, 2, 0, 3, 0, 0], [0, 0, 4, 2, 0, 0], 6, 1, (3, 3)),
]


def check_best_span(best_span_fn):
    """Hand-made cases, batched by ``max_len`` (each batch mixes lengths), against their spans by hand."""
    for max_len in dict.fromkeys(case[4] for case in CASES):  # in the order of CASES
        cases = [case for case in CASES if case[4] == max_len]
        start = torch.tensor([case[1] for case in cases], dtype=torch.float32)
        end = torch.tensor([case[2] for case in cases], dtype=torch.float32)
        mask = torch.arange(6) < torch.tensor([case[3] for case in cases]).unsqueeze(1)
        starts, ends = best_span_fn(start, end, mask, max_len)
        assert_equal_to(tuple(starts.shape), (len(cases),), "the starts' shape (B,)")
        assert_equal_to(tuple(ends.shape), (len(cases),), "the ends' shape (B,)")
        assert_equal_to(starts.dtype, torch.long, "the starts' dtype")
        for b, (name, *_, want) in enumerate(cases):
            got = (int(starts[b]), int(ends[b]))
            assert_equal_to(got, want, f"the best span of the case {name!r} (max_len={max_len}, "
                                       f"{int(mask[b].sum())} real positions)")


@pytest.mark.exercise("best_span")
def test_best_span_respects_order_length_mask_and_ties():
    check_best_span(best_span)


def test_best_span_refuses_a_max_len_below_one():
    with pytest.raises(ValueError, match="max_len must be >= 1, got 0"):
        best_span(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3, dtype=torch.bool), max_len=0)


def span_variant(*, order=True, limit=0, mask=True, ties="first"):
    """The span decoding with one step done otherwise: ``limit`` moves the length limit by that many tokens
    (None: no limit); the defaults are the contract's."""
    def best(start_scores, end_scores, real, max_len):
        B, T = start_scores.shape
        start, end = start_scores.float(), end_scores.float()
        if mask:
            start, end = start.masked_fill(~real, float("-inf")), end.masked_fill(~real, float("-inf"))
        pair = start.unsqueeze(2) + end.unsqueeze(1)
        ones = torch.ones(T, T, dtype=torch.bool)
        allowed = torch.triu(ones) if order else ones
        if limit is not None:
            allowed = allowed & ~torch.triu(ones, diagonal=max_len + limit)
        flat = pair.masked_fill(~allowed, float("-inf")).view(B, -1)
        index = flat.argmax(dim=1) if ties == "first" else T * T - 1 - flat.flip(1).argmax(dim=1)
        return index // T, index % T
    return best


def argmax_each_then_clip(start_scores, end_scores, real, max_len):
    """The course's decoding: the two argmaxes apart, the end clipped to the start."""
    s = start_scores.masked_fill(~real, float("-inf")).argmax(dim=1)
    e = end_scores.masked_fill(~real, float("-inf")).argmax(dim=1)
    return s, torch.maximum(e, s)


@pytest.mark.parametrize(("wrong", "match"), [
    (span_variant(order=False), r"the case 'end before start' .*: expected \(2, 4\), got \(2, 0\)"),
    (span_variant(limit=None), r"the case 'length' \(max_len=3, 6 real positions\): expected \(1, 2\), "
                               r"got \(1, 4\)"),
    (span_variant(limit=1), r"the case 'length' .*: expected \(1, 2\), got \(1, 4\)"),
    (span_variant(mask=False), r"the case 'padding' \(max_len=6, 4 real positions\): expected \(1, 2\), "
                               r"got \(4, 4\)"),
    (span_variant(ties="last"), r"the case 'ties' .*: expected \(0, 1\), got \(1, 2\)"),
    (argmax_each_then_clip, r"the case 'end before start' .*: expected \(2, 4\), got \(2, 2\)"),
], ids=["end before start", "no length limit", "one token too long", "mask ignored", "ties to the last",
        "argmaxes apart"])
def test_best_span_check_rejects_wrong_variants(wrong, match):
    assert_check_fails(check_best_span, wrong, match)


def test_span_variant_is_right_otherwise():
    check_best_span(span_variant())
