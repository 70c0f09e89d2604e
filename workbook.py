"""Run the workbook's nox sessions with any ``python3`` (system, pyenv, conda):
``python3 workbook.py -s run``.

On first use it creates ``.venv`` holding nox and uv (the versions locked in ``constraints.txt``; uv
installs the sessions' environments), then runs nox from it with the arguments given; ``.venv`` is
refreshed when the locked versions change. It works where
``pip install`` into the system Python is refused (PEP 668, e.g. Debian/Ubuntu's python3): the virtual
environment is made without pip and the system's pip installs into it (``pip --python``); a Python
without pip uses ``ensurepip``, and one with neither (Debian's python3 alone) is told which package to
install. A Python older than ``requires-python`` in ``pyproject.toml`` is refused, naming both.
Only the standard library is used here (the noxfile imports :func:`python_in` from it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TOOLS = ("nox", "uv")
"""What ``.venv`` holds, at the versions constraints.txt locks."""


def pinned(name: str) -> str:
    """``name==version`` from constraints.txt (``name`` alone when it is not pinned there)."""
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.strip()
    return name


def python_in(env: Path) -> Path:
    """The interpreter of the virtual environment ``env``, on any OS (the ``venv`` install scheme's scripts
    folder: ``bin/`` or ``Scripts/``)."""
    scripts = sysconfig.get_path("scripts", "venv", vars={"base": str(env), "platbase": str(env)})
    return Path(scripts) / ("python.exe" if os.name == "nt" else "python")


def minimum_python() -> tuple[int, int]:
    """The lowest Python ``requires-python = ">=X.Y"`` in pyproject.toml admits (read as text, so that an
    older Python, without ``tomllib``, can be told what it lacks)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)"', text, re.MULTILINE)
    if found is None:
        raise SystemExit('pyproject.toml: requires-python must read ">=X.Y"')
    return int(found.group(1)), int(found.group(2))


def check_python() -> None:
    """Stop with a message naming the interpreter and the version needed when it is too old."""
    needed = minimum_python()
    if sys.version_info[:2] < needed:
        have = ".".join(map(str, sys.version_info[:3]))
        raise SystemExit(f"{sys.executable} is Python {have}; the workbook needs Python >= "
                         f"{needed[0]}.{needed[1]} (requires-python in pyproject.toml). Run this command "
                         f"with a newer python3 (system, pyenv or conda).")


def has_pip(python: str | Path) -> bool:
    """Whether ``python -m pip`` works."""
    return subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode == 0


def tools_ready(python: Path) -> bool:
    """Whether ``python`` exists and has the :data:`TOOLS` at the versions constraints.txt pins."""
    if not python.exists():
        return False
    script = "import importlib.metadata as m, sys; print(*(n + '==' + m.version(n) for n in sys.argv[1:]))"
    found = subprocess.run([str(python), "-c", script, *TOOLS], capture_output=True, text=True)
    return found.returncode == 0 and found.stdout.split() == [pinned(n).split(";")[0].strip() for n in TOOLS]


def ensure_venv() -> Path:
    """``.venv`` with pip and the pinned :data:`TOOLS`, created on first use; returns its interpreter."""
    python = python_in(VENV)
    if tools_ready(python):
        return python
    packages = [pinned("pip"), *map(pinned, TOOLS)]
    if has_pip(sys.executable):  # the system pip installs into the new environment (PEP 668 safe)
        venv.EnvBuilder(with_pip=False, clear=True).create(VENV)
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *packages],
                       check=True)
    else:
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except subprocess.CalledProcessError:  # ensurepip missing, as in Debian's python3 without -venv
            shutil.rmtree(VENV, ignore_errors=True)
            raise SystemExit(f"{sys.executable} has neither pip nor ensurepip, so {VENV} cannot get pip. "
                             "Install one of them (Debian/Ubuntu: sudo apt install python3-venv, or "
                             "python3-pip) and run this command again.") from None
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def main() -> int:
    check_python()
    python = ensure_venv()
    command = [str(python), "-m", "nox", "-f", str(ROOT / "noxfile.py"), *sys.argv[1:]]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
