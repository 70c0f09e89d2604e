"""Argument checks with errors that name the bad value and the valid choices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def check_choice(name: str, value: T, choices: Iterable[Any]) -> T:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` naming both."""
    valid = list(choices)
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {valid}")
    return value
