"""Sessions: ``tests`` (pytest + notebook execution + nbval), ``run`` (execute every notebook into
``build/`` with a summary and an HTML report), ``sweep`` (an assignment's experiment grid),
``release`` (student version), ``data`` (list and fetch the data sets), ``lab`` (JupyterLab),
``lint`` (ruff); not run by default: ``unit-3.11``, ``unit-3.12``, ``unit-3.13`` (the unit tests under
each Python that pyproject.toml's classifiers name) and ``lock`` (regenerate constraints.txt).

``tests``, ``run``, ``sweep``, ``release``, ``data`` and ``lab`` share one virtual environment,
``.nox/workbook``: the library with its ``instructor`` extra at the exact versions of
``constraints.txt``, created on first use and reinstalled only when ``pyproject.toml``,
``constraints.txt`` or the PyTorch index changes. uv (beside nox in ``.venv``) creates and fills the
environments: it downloads in parallel and links files from its cache (``~/.cache/uv``), so a second
environment of the same versions takes seconds. PyTorch comes from the index :func:`torch_index`
picks: PyTorch's CPU wheels (about 0.19 GB) on Linux without an NVIDIA driver, PyPI (on Linux its CUDA
build, about 3 GB of wheels) where a driver is present or on other systems, ``$COURSE_TORCH_INDEX``
when set. Options after ``--`` pass through, e.g. ``nox -s run -- --profile full --only 02``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import nox
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # workbook.py, the bootstrap, beside this file
from workbook import minimum_python, python_in  # noqa: E402

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "uv"
UV = find_uv_bin()

VENV = ROOT / ".nox" / "workbook"
SHARED_DATA = ROOT.parent / "shared" / "data"
CONSTRAINTS = ROOT / "constraints.txt"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PYTHONS = [c.rpartition(" :: ")[2] for c in PROJECT["classifiers"]
           if c.startswith("Programming Language :: Python :: 3.")]
"""The interpreters the unit tests run under, as pyproject.toml's classifiers name them."""

TORCH_INDEX_ENV = "COURSE_TORCH_INDEX"
TORCH_PACKAGES = ("torch", "torchvision")
"""Built against one another: both come from the same index (a CPU torch beside PyPI's CUDA torchvision
would not load its operators)."""
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI = "pypi"


def gpu_driver() -> bool:
    """Whether an NVIDIA driver is present (``nvidia-smi`` on PATH, or ``/proc/driver/nvidia``)."""
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia").exists()


def torch_index() -> str:
    """Where torch is installed from: ``$COURSE_TORCH_INDEX`` when set (a package index URL, or ``pypi``);
    else PyTorch's CPU index on Linux without an NVIDIA driver; else ``pypi`` (PyPI's wheel: the CUDA
    build on Linux, the only one on macOS and Windows)."""
    chosen = os.environ.get(TORCH_INDEX_ENV, "").strip()
    if chosen:
        return PYPI if chosen.lower() == PYPI else chosen
    return CPU_INDEX if sys.platform == "linux" and not gpu_driver() else PYPI


def unreachable(index: str) -> str | None:
    """Why the package index ``index`` cannot serve torch (its ``torch/`` page), or ``None`` when it can."""
    try:
        with urllib.request.urlopen(f"{index.rstrip('/')}/torch/", timeout=20):
            return None
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", err))


def install_torch(session: nox.Session, python: str, index: str, *, reinstall: bool) -> str:
    """Install the locked torch and torchvision (:data:`TORCH_PACKAGES`) into ``python``'s environment from
    ``index`` and return the index used.

    From a package index URL only those two are taken (``--no-deps``); their dependencies come with the
    project, from PyPI at the locked versions. ``pypi`` installs nothing here: the project's install
    takes PyPI's builds. An index that cannot be reached falls back to PyPI with a one-line notice, unless
    ``$COURSE_TORCH_INDEX`` named it (then the session stops, naming the index and the reason).
    """
    if index == PYPI:
        if reinstall:  # e.g. the CPU wheel is installed and a GPU driver appeared: PyPI's replaces it
            session.run(UV, "pip", "uninstall", "--python", python, *TORCH_PACKAGES, external=True)
        return PYPI
    reason = unreachable(index)
    if reason is not None:
        if os.environ.get(TORCH_INDEX_ENV, "").strip():
            session.error(f"{TORCH_INDEX_ENV}={index} cannot be reached ({reason}); set it to a package "
                          f"index that serves torch, or to {PYPI!r}")
        session.warn(f"PyTorch's index {index} cannot be reached ({reason}): installing PyPI's torch instead "
                     "(on Linux its CUDA build, about 3 GB of downloads)")
        return PYPI
    session.run(UV, "pip", "install", "--python", python, "--no-deps", "-c", str(CONSTRAINTS),
                "--index-url", index,
                *[option for name in TORCH_PACKAGES if reinstall for option in ("--reinstall-package", name)],
                *TORCH_PACKAGES, external=True)
    return index


def install_project(session: nox.Session, python: str, *, reinstall_torch: bool = False) -> str:
    """torch (see :func:`install_torch`), then the project with its ``instructor`` extra at the locked
    versions, into ``python``'s environment; returns the index torch came from."""
    used = install_torch(session, python, torch_index(), reinstall=reinstall_torch)
    session.run(UV, "pip", "install", "--python", python, "-c", str(CONSTRAINTS), "-e", f"{ROOT}[instructor]",
                external=True)
    return used


def _workbook_python(session: nox.Session) -> str:
    """Create ``.nox/workbook`` once and (re)install the project when its inputs changed."""
    python = python_in(VENV)
    if not python.exists():  # on the interpreter that runs nox; with pip (uv needs no ensurepip)
        session.run(UV, "venv", "--seed", "--python", sys.executable, str(VENV), external=True)
    inputs = b"".join((ROOT / name).read_bytes() for name in ("pyproject.toml", "constraints.txt"))
    stamp = VENV / f".installed-{hashlib.sha256(inputs + torch_index().encode()).hexdigest()[:16]}"
    if not stamp.exists():
        source = VENV / ".torch-index"  # the index the installed torch came from
        previous = source.read_text(encoding="utf-8") if source.exists() else None
        used = install_project(session, str(python),
                               reinstall_torch=previous is not None and previous != torch_index())
        session.run(str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
                    external=True)
        source.write_text(used, encoding="utf-8")
        for old in VENV.glob(".installed-*"):
            old.unlink()
        stamp.touch()
    return str(python)


def _env(**extra: str) -> dict[str, str]:
    env = {"PYTHONHASHSEED": "0", **extra}
    if "COURSE_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
        env["COURSE_DATA_DIR"] = str(SHARED_DATA)
    return env


def _cache() -> dict[str, str]:
    """Caches of test runs go to ``.nox/cache`` (unless ``COURSE_CACHE_DIR`` is set), so a fresh clone
    tests cold caches and the tests never meet caches that other checkouts left in the home folder."""
    return {} if "COURSE_CACHE_DIR" in os.environ else {"COURSE_CACHE_DIR": str(ROOT / ".nox" / "cache")}


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Unit tests, every notebook executed with papermill (smoke), and nbval on the committed ones; the
    25 slowest tests are listed at the end, to show where the suite's time goes.

    The tests never download: without a data set, the tests that need it are skipped and one line says
    which and how to fetch them (:mod:`tests.data_gate`); the first Quick start command fetches them.
    """
    python = _workbook_python(session)
    args = session.posargs or ["tests", "notebooks"]
    session.run(
        python, "-m", "pytest", "--nbval", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
        "--nbval-current-env", "--durations=25", *args, env=_env(TQDM_DISABLE="1", **_cache()),
        external=True,
    )


@nox.session(python=PYTHONS, default=False)
def unit(session: nox.Session) -> None:
    """The unit tests (not the notebook runs) under one of the supported interpreters, in its own
    environment: ``nox -s unit-3.12``, or ``nox -s unit`` for all of them; options after ``--`` replace
    ``tests`` (e.g. ``-- tests/core -x``). The interpreter must be on PATH as ``python3.12`` (or uv
    downloads one)."""
    install_project(session, str(python_in(Path(session.virtualenv.location))))
    session.run("python", "-m", "pytest", "-m", "not notebook", *(session.posargs or ["tests"]),
                env=_env(TQDM_DISABLE="1", **_cache()))


@nox.session(venv_backend="none")
def run(session: nox.Session) -> None:
    """Execute notebooks into build/<notebook>/, then build/summary.md and build/index.html.

    Each notebook first fetches its missing data sets (sha256-checked, resumed); ``-- --offline`` turns
    that off."""
    python = _workbook_python(session)
    session.run(python, "-m", "course_lib.instructor", "run", *session.posargs, env=_env(),
                external=True)


@nox.session(venv_backend="none")
def data(session: nox.Session) -> None:
    """The data sets under the data root: ``-- list``, ``-- fetch NAME ...`` or ``-- fetch --all``."""
    python = _workbook_python(session)
    session.run(python, "-m", "course_lib", "data", *(session.posargs or ["list"]), env=_env(),
                external=True)


@nox.session(venv_backend="none")
def lab(session: nox.Session) -> None:
    """JupyterLab in the workbook's environment, opened on the checkout (options after ``--`` pass to it)."""
    python = _workbook_python(session)
    session.run(python, "-m", "jupyterlab", f"--notebook-dir={ROOT}", *session.posargs, env=_env(),
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


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff check over the library, tests, notebooks and scripts; mypy over the library (its settings in
    pyproject.toml), in the workbook's environment, where the library's dependencies are."""
    python = _workbook_python(session)
    session.run(python, "-m", "ruff", "check", ".", external=True)
    session.run(python, "-m", "mypy", "course_lib", external=True)


@nox.session(venv_backend="none", default=False)
def lock(session: nox.Session) -> None:
    """Regenerate constraints.txt: one universal lock (markers where a Python or platform needs other
    versions) for every Python ``requires-python`` admits, keeping the current pins where they still fit;
    ``-- --upgrade`` (or ``--upgrade-package NAME``) moves them."""
    lowest = "{}.{}".format(*minimum_python())  # not the interpreter running this: every one admitted
    session.run(UV, "pip", "compile", "--universal", "--quiet", "--python-version", lowest, "pyproject.toml",
                "--extra", "instructor", "--custom-compile-command", "python3 workbook.py -s lock",
                "-o", str(CONSTRAINTS), *session.posargs, external=True)
