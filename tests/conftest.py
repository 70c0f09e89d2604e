"""Shared test fixtures: the data root, skipping nothing silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_lib.data import resolve_data_root

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

if "COURSE_DATA_DIR" not in os.environ and SHARED.is_dir():
    os.environ["COURSE_DATA_DIR"] = str(SHARED)
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The resolved data root (``COURSE_DATA_DIR``, defaulting to ../shared/data in a checkout)."""
    return resolve_data_root()
