"""Sessions: ``tests`` (pytest + notebook execution + nbval), ``run`` (execute every notebook into
``build/`` with a summary and an HTML report), ``sweep`` (an assignment's experiment grid),
``release`` (student version), ``lint`` (ruff).

All sessions but ``lint`` share one virtual environment, ``.nox/workbook`` (torch makes it ~5.5 GB),
created on first use and reinstalled only when ``pyproject.toml`` or ``constraints.txt`` changes; it
installs the exact versions of ``constraints.txt``. Options after ``--`` pass
through, e.g. ``nox -s run -- --profile full --only 02``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".nox" / "workbook"
SHARED_DATA = ROOT.parent / "shared" / "data"


def _workbook_python(session: nox.Session) -> str:
    """Create ``.nox/workbook`` once and (re)install the project when pyproject.toml changed."""
    python = VENV / "bin" / "python"
    if not python.exists():  # without ensurepip (absent from Debian's python3), pip from this interpreter
        session.run(sys.executable, "-m", "venv", "--without-pip", str(VENV), external=True)
        session.run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "pip",
                    external=True)
    inputs = b"".join((ROOT / name).read_bytes() for name in ("pyproject.toml", "constraints.txt"))
    stamp = VENV / f".installed-{hashlib.sha256(inputs).hexdigest()[:16]}"
    if not stamp.exists():
        session.run(str(python), "-m", "pip", "install", "--upgrade", "pip", external=True)
        session.run(str(python), "-m", "pip", "install", "-c", str(ROOT / "constraints.txt"), "-e",
                    f"{ROOT}[dev]", external=True)
        session.run(str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
                    external=True)
        for old in VENV.glob(".installed-*"):
            old.unlink()
        stamp.touch()
    return str(python)


def _env(**extra: str) -> dict[str, str]:
    env = {"PYTHONHASHSEED": "0", **extra}
    if "COURSE_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
        env["COURSE_DATA_DIR"] = str(SHARED_DATA)
    return env


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Unit tests, every notebook executed with papermill (smoke), and nbval on the committed ones.

    Caches go to ``.nox/cache`` (unless ``COURSE_CACHE_DIR`` is set), so a fresh clone tests cold caches
    and the tests never meet caches that other checkouts left in the home folder.
    """
    python = _workbook_python(session)
    args = session.posargs or ["tests", "notebooks"]
    cache = {} if "COURSE_CACHE_DIR" in os.environ else {"COURSE_CACHE_DIR": str(ROOT / ".nox" / "cache")}
    session.run(
        python, "-m", "pytest", "--nbval", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
        "--nbval-current-env", *args, env=_env(TQDM_DISABLE="1", **cache), external=True,
    )


@nox.session(venv_backend="none")
def run(session: nox.Session) -> None:
    """Execute notebooks into build/<notebook>/, then build/summary.md and build/index.html."""
    python = _workbook_python(session)
    session.run(python, "-m", "course_lib.instructor", "run", *session.posargs, env=_env(),
                external=True)


@nox.session(venv_backend="none")
def sweep(session: nox.Session) -> None:
    """Run an assignment's experiment grid through papermill, resuming: ``nox -s sweep -- lm``."""
    python = _workbook_python(session)
    session.run(python, "-m", "course_lib.instructor", "sweep", *session.posargs, env=_env(),
                external=True)


@nox.session(venv_backend="none")
def release(session: nox.Session) -> None:
    """Write release/: student notebooks and course_lib with solutions removed."""
    python = _workbook_python(session)
    session.run(python, "-m", "course_lib.instructor", "release", *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check over the library, tests, notebooks and scripts."""
    session.install("-c", str(ROOT / "constraints.txt"), "ruff")
    session.run("ruff", "check", ".")
