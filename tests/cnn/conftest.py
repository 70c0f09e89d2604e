"""Fixtures of the CNN tests: a private cache folder, and batch files of the synthetic size."""

from __future__ import annotations

import pytest

from course_lib.cnn import cifar_data
from tests.cnn.synthetic import PER_BATCH


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cifar10"


@pytest.fixture
def small_batches(monkeypatch):
    """The loader expects batches of the synthetic size (:data:`tests.cnn.synthetic.PER_BATCH`)."""
    monkeypatch.setattr(cifar_data, "BATCH_IMAGES", PER_BATCH)
