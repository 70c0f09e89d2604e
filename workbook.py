"""Run the workbook's nox sessions with any ``python3`` (system, pyenv, conda):
``python3 workbook.py -s run``.

On first use it creates ``.venv`` holding nox (the version in ``constraints.txt``), then runs
``.venv/bin/python -m nox`` with the arguments given. It works where ``pip install`` into the system
Python is refused (PEP 668, e.g. Debian/Ubuntu's python3): the virtual environment is made without pip
and the system's pip installs into it (``pip --python``); a Python without pip uses ``ensurepip``, and
one with neither (Debian's python3 alone) is told which package to install.
Only the standard library is used here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"


def pinned(name: str) -> str:
    """``name==version`` from constraints.txt (``name`` alone when it is not pinned there)."""
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.strip()
    return name


def python_in(env: Path) -> Path:
    """The interpreter of the virtual environment ``env``."""
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def has_pip(python: str | Path) -> bool:
    """Whether ``python -m pip`` works."""
    return subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode == 0


def ensure_venv() -> Path:
    """``.venv`` with pip and nox in it, created on first use; returns its interpreter."""
    python = python_in(VENV)
    ready = python.exists() and subprocess.run([str(python), "-c", "import nox"], capture_output=True)
    if ready and ready.returncode == 0:
        return python
    packages = [pinned("pip"), pinned("nox")]
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
    python = ensure_venv()
    command = [str(python), "-m", "nox", "-f", str(ROOT / "noxfile.py"), *sys.argv[1:]]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
