"""Files the workbook writes and reads: one atomic-write helper (temporary file beside the target, then a
rename), JSON, arrays, figures, torch checkpoints; flat metrics. Digests are in :mod:`.digests`."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary path in ``path``'s folder, then rename it onto ``path``.

    The target is never half-written: on any error (or interrupt) the temporary file is removed and
    an existing ``path`` is left as it was. The file gets the usual permissions (umask applied).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def jsonable(value: Any) -> Any:
    """``value`` with numpy/torch scalars as numbers, tuples as lists, paths as strings, NaN/inf as None,
    dataclass instances (such as settings) as dicts of their fields."""
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        value = value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically; numpy/torch scalars become numbers, NaN null."""
    return atomic_write_text(path, json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n")


def atomic_save_npy(path: str | os.PathLike, array) -> Path:
    """``np.save`` ``array`` to ``path`` atomically (a cache is never half-written)."""
    import numpy as np

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.save(f, array)

    return atomic_write(path, write)


def atomic_save_figure(fig, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png"))


def atomic_save_torch(path: str | os.PathLike, state: Any) -> Path:
    """``torch.save`` ``state`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; text that is not UTF-8 or not JSON raises ``ValueError`` naming the file
    (and the line and column of a syntax error)."""
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}:{err.colno}: malformed JSON ({err.msg})") from err


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file; bytes that are not UTF-8 raise ``ValueError`` naming the file and the line."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text ({err.reason} at byte {err.start})") from err


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """One JSON value per non-empty line; a malformed line raises ``ValueError`` naming file and line."""
    path = Path(path)
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}:{err.colno}: malformed JSON line ({err.msg})") from err
    return records


def flat_metrics(metrics: Mapping[str, Any]) -> dict[str, float | int | str | None]:
    """Check that ``metrics`` is flat (scalar values only) and return it JSON-ready."""
    flat = {}
    for key, value in metrics.items():
        value = jsonable(value)
        if isinstance(value, dict | list):
            raise TypeError(f"metrics.json must be flat: {key!r} holds a {type(value).__name__}")
        flat[str(key)] = value
    return flat
