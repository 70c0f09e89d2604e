"""Where data and caches live.

Data root, in order: the explicit argument, the ``COURSE_DATA_DIR`` environment variable, then
``./data`` (gitignored; from a notebook inside the checkout, the repository's ``data/``).
The cache directory (decoded arrays, tokenised corpora, GloVe as .npy) is ``COURSE_CACHE_DIR`` or
``~/.cache/course_lib``: the data root may be read-only.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "COURSE_DATA_DIR"
CACHE_ENV = "COURSE_CACHE_DIR"


def resolve_data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data root: ``data_dir``, else ``$COURSE_DATA_DIR``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    local = (Path.cwd() / "data").resolve()
    checkout = Path(__file__).resolve().parents[3] / "data"  # <repo>/data, e.g. from notebooks/
    if not local.exists() and (checkout.parent / "pyproject.toml").exists() and checkout.exists():
        return checkout
    return local


def cache_dir(*parts: str) -> Path:
    """Return (and create) a cache directory, ``$COURSE_CACHE_DIR`` or ``~/.cache/course_lib``."""
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course_lib"
    path = Path(base).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
