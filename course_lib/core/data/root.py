"""Where data and caches live.

Data root, in order: the explicit argument, the ``COURSE_DATA_DIR`` environment variable, then the
checkout's ``data/`` (gitignored) when ``course_lib`` is used from a checkout (a clone or the student
release, installed editable or not at all), whatever the working folder (a notebook runs in
``notebooks/``, the commands in the checkout): one data root per checkout, created when the first data
set is fetched. An installed copy of the library (a wheel in site-packages) uses ``./data``.
The cache directory (decoded arrays, tokenised corpora, GloVe as .npy) is ``COURSE_CACHE_DIR`` or
``~/.cache/course_lib``: the data root may be read-only.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

DATA_ENV = "COURSE_DATA_DIR"
CACHE_ENV = "COURSE_CACHE_DIR"
CHECKOUT = Path(__file__).resolve().parents[3]
"""The folder holding ``course_lib/``: a checkout when it has ``pyproject.toml``."""
BOOTSTRAP = "workbook.py"
"""A checkout's bootstrap script (the student release has none: then the library's own command)."""


def in_checkout() -> bool:
    """Whether this ``course_lib`` lives in a checkout (not in site-packages)."""
    return (CHECKOUT / "pyproject.toml").is_file()


def resolve_data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data root: ``data_dir``, else ``$COURSE_DATA_DIR``, else the checkout's ``data/``
    (``./data`` for an installed library). The folder need not exist yet."""
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return CHECKOUT / "data" if in_checkout() else (Path.cwd() / "data").resolve()


def fetch_command(name: str, root: Path) -> str:
    """A shell command the user can type that fetches data set ``name`` (or ``--all``) into ``root``: the
    workbook's ``data`` session in a checkout that has the bootstrap (:data:`BOOTSTRAP`), else this
    interpreter's ``-m course_lib data fetch`` (the library may not be on the PATH's ``python``)."""
    target = ["--all"] if name == "--all" else [name]
    if (CHECKOUT / BOOTSTRAP).is_file():
        script = BOOTSTRAP if Path.cwd().resolve() == CHECKOUT else str(CHECKOUT / BOOTSTRAP)
        command = ["python3", script, "-s", "data", "--", "fetch", *target]
    else:
        command = [sys.executable, "-m", "course_lib", "data", "fetch", *target]
    return shlex.join([*command, "--root", str(root)])


def cache_dir(*parts: str) -> Path:
    """Return (and create) a cache directory, ``$COURSE_CACHE_DIR`` or ``~/.cache/course_lib``."""
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course_lib"
    path = Path(base).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
