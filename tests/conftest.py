"""Shared test fixtures: the data root, one torch thread for the tiny models of the unit tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_lib.core.data import resolve_data_root
from course_lib.core.device import cpu_threads

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

if "COURSE_DATA_DIR" not in os.environ and SHARED.is_dir():
    os.environ["COURSE_DATA_DIR"] = str(SHARED)
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The resolved data root (``COURSE_DATA_DIR``, defaulting to ../shared/data in a checkout)."""
    return resolve_data_root()


@pytest.fixture(scope="session", autouse=True)
def one_cpu_thread():
    """Tiny models run fastest on one thread (and do not wait on busy cores); results no longer
    depend on the machine's core count."""
    with cpu_threads(1):
        yield
