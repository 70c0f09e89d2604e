"""Fixtures of the assignment-03 tests."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from course_lib.lm.data import LMCorpus
from tests.lm.synthetic import cyclic_corpus


@pytest.fixture(scope="session")
def cyclic() -> LMCorpus:
    """The synthetic corpus of :func:`tests.lm.synthetic.cyclic_corpus`."""
    return cyclic_corpus()


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the comparison's figures after each test (the notebook shows them; tests only check them)."""
    yield
    plt.close("all")
