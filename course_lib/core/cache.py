"""Keyed artifacts: a cache file is served only when its key (everything that made it) matches and it
loads and validates; a stale or damaged one is rebuilt, with a one-line notice, never served."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from safetensors import SafetensorError

from course_lib.core.io import atomic_write, atomic_write_json, jsonable, read_json

T = TypeVar("T")

DAMAGE = (OSError, ValueError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile, pickle.UnpicklingError,
          SafetensorError)
"""What loading a truncated or altered file raises (numpy, torch, safetensors, JSON)."""


def key_path(path: Path) -> Path:
    """The key file recorded beside an artifact: ``<name>.key.json``."""
    return path.with_name(f"{path.name}.key.json")


def load_keyed(
    path: str | os.PathLike,
    key: Mapping[str, Any],
    *,
    load: Callable[[Path], T],
    build: Callable[[Path], None],
    what: str,
    log: Callable[[str], None] = print,
) -> T:
    """``load(path)`` when ``path`` was built with ``key``, else ``build`` it (atomically) and load that.

    ``load`` validates what it reads (shapes, sizes) and raises on anything wrong; a damaged or
    stale file is rebuilt with one line through ``log``. ``build(tmp)`` writes the artifact to ``tmp``.
    """
    path = Path(path)
    recorded = key_path(path)
    if path.exists():
        try:
            stale = read_json(recorded).get("key") != jsonable(key)
        except (OSError, ValueError, AttributeError):
            stale = True
        if stale:
            log(f"{what}: {path.name} was made by other settings, data or code; rebuilding it")
        else:
            try:
                return load(path)
            except DAMAGE as err:
                log(f"{what}: {path.name} is damaged ({type(err).__name__}: {str(err)[:120]}); rebuilding it")
    recorded.unlink(missing_ok=True)
    atomic_write(path, build)
    atomic_write_json(recorded, {"key": key})
    return load(path)
