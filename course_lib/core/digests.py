"""Digests: short sha256 hex strings that key caches, checkpoints and finished runs by what made them.

One function per kind of thing digested: a JSON-able value (:func:`json_digest`), data in memory
(:func:`content_digest`), source code (:func:`code_digest`), a file's bytes (:func:`file_digest`) and
files' names, sizes and times (:func:`stat_digest`). A key is a dict of such digests and settings,
stored beside what it keys and compared on load (:mod:`course_lib.core.cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from course_lib.core.io import jsonable


def json_digest(value: Any, length: int = 12) -> str:
    """Short sha256 of ``value`` (settings, a dict of knobs and seeds, of file digests...) as sorted JSON
    (:func:`~course_lib.core.io.jsonable` first, so tuples and lists, or settings and their dict, agree)."""
    text = json.dumps(jsonable(value), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def content_digest(*parts: Any, length: int = 12) -> str:
    """Short sha256 of ``parts``: strings, sequences of strings, numpy arrays or torch tensors (with their
    shapes and dtypes), or ``None``. Keys runs and caches by the exact data they were made from."""
    import numpy as np

    digest = hashlib.sha256()
    for part in parts:
        if hasattr(part, "detach"):  # a torch tensor
            part = part.detach().cpu().numpy()
        if part is None:
            digest.update(b"none\0")
        elif isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"array {array.shape} {array.dtype}\0".encode())
            digest.update(array.tobytes())
        elif isinstance(part, str):
            digest.update(f"str {len(part)} {part}\0".encode())
        else:
            items = [str(item) for item in part]
            digest.update(f"strs {len(items)}\0".encode() + "\0".join(items).encode() + b"\0")
    return digest.hexdigest()[:length]


def code_digest(*packages: str, length: int = 12) -> str:
    """Short sha256 of the source files of ``packages`` (dotted names such as ``"course_lib.qa"``; a
    package means every ``.py`` file under it). Keys caches and checkpoints by the code that made
    them, so an edited exercise is never served a result of the old code."""
    import importlib.util

    digest = hashlib.sha256()
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"code_digest: no module named {name!r}")
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for file in files:
            digest.update(f"{file.relative_to(origin.parent)}\0".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:length]


def file_digest(path: str | os.PathLike, length: int = 12) -> str:
    """Short sha256 of a file's bytes; a file over 64 MiB is fingerprinted from its size, modification
    time and first and last MiB, to stay fast."""
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


def stat_digest(paths: list[Path], length: int = 12) -> str:
    """Short sha256 of several files' folder and name, size and modification time, not their bytes (a
    folder of 60,000 images fingerprinted in milliseconds)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.parent.name}/{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:length]
