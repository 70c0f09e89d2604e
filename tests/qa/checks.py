"""Helpers of the exercise checks: comparisons whose message names the expected value, and the test that
a check rejects a wrong-but-runnable implementation with a message saying what was expected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

WIDTH = 160
"""At most this many characters of a tensor in a message."""


def short(x: Any) -> str:
    """A tensor (or number, or list) on one line, rounded to 4 decimals, cut at :data:`WIDTH` characters."""
    if isinstance(x, torch.Tensor):
        x = x.detach().double().cpu().round(decimals=4).tolist() if x.is_floating_point() else x.tolist()
    text = str(x).replace("\n", " ")
    return text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."


def assert_close_to(got: torch.Tensor, expected: torch.Tensor, what: str, **tolerances: float) -> None:
    """``torch.testing.assert_close`` whose message starts with ``what: expected ..., got ...``."""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what}: expected a tensor of shape {tuple(expected.shape)}, "
                             f"got {type(got).__name__}")
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    torch.testing.assert_close(got, expected, check_dtype=False, **tolerances,
                               msg=lambda m: f"{what}: expected {short(expected)}, got {short(got)}\n{m}")


def assert_equal_to(got: Any, expected: Any, what: str) -> None:
    """``got == expected`` (tensors compared as lists), else ``what: expected ..., got ...``."""
    as_list = [x.tolist() if isinstance(x, torch.Tensor) else x for x in (got, expected)]
    if as_list[0] != as_list[1]:
        raise AssertionError(f"{what}: expected {short(expected)}, got {short(got)}")


def assert_check_fails(check: Callable[[Callable], None], wrong: Callable, match: str) -> None:
    """``check(wrong)`` raises an ``AssertionError`` whose message matches ``match`` (a regex): the check
    rejects this wrong implementation and says what was expected."""
    with pytest.raises(AssertionError, match=match) as caught:
        check(wrong)
    assert "expected" in str(caught.value), f"the message names no expected value: {caught.value}"
