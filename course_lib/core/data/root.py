"""Where data and caches live.

Data root, in order: the explicit argument, the ``COURSE_DATA_DIR`` environment variable, then
``./data`` (gitignored; from a notebook inside the checkout, the repository's ``data/``).
The cache directory (decoded arrays, tokenised corpora, GloVe as .npy) is ``COURSE_CACHE_DIR`` or
``~/.cache/course_lib``: the data root may be read-only.
"""

from __future__ import annotations

import hashlib
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


def file_digest(path: str | os.PathLike, length: int = 12) -> str:
    """Short content fingerprint of a file (sha256 of its bytes), for cache names.

    Files over 64 MiB are fingerprinted from their size, mtime and first/last MiB to stay fast.
    """
    path = Path(path)
    h = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as f:
        if size <= 64 << 20:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"{size}:{path.stat().st_mtime_ns}".encode())
            h.update(f.read(1 << 20))
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()[:length]


def files_digest(paths: list[Path], length: int = 12) -> str:
    """Fingerprint of several files (e.g. a folder of images), from their folder/name, size and mtime."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.parent.name}/{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:length]
