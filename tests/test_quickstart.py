"""The Quick start's bootstrap (``python3 workbook.py -s ...``) creates ``.venv`` with the pinned nox and
runs the sessions, whether the Python it starts from has pip (system pip installs into the new
environment) or not (ensurepip)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOXFILE = '''import nox

nox.options.sessions = ["hello"]


@nox.session(venv_backend="none")
def hello(session):
    session.log("hello from " + session.name)
'''


def _checkout(tmp_path: Path) -> Path:
    folder = tmp_path / "checkout"
    folder.mkdir()
    for name in ("workbook.py", "constraints.txt"):
        shutil.copy2(ROOT / name, folder / name)
    (folder / "noxfile.py").write_text(NOXFILE)
    return folder


@pytest.mark.notebook  # slow: installs nox into a new environment
@pytest.mark.parametrize("starter", ["with_pip", "without_pip"])
def test_bootstrap_creates_the_environment_and_runs_sessions(tmp_path, starter):
    folder = _checkout(tmp_path)
    python = sys.executable
    if starter == "without_pip":  # a Python whose pip is missing, as on a bare system
        bare = tmp_path / "bare"
        venv.EnvBuilder(with_pip=False).create(bare)
        python = str(bare / "bin" / "python")
    first = subprocess.run([python, "workbook.py", "-s", "hello"], cwd=folder, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "hello from hello" in first.stderr
    constraints = (ROOT / "constraints.txt").read_text().splitlines()
    pinned = next(line for line in constraints if line.startswith("nox=="))
    version = subprocess.run([str(folder / ".venv" / "bin" / "python"), "-m", "nox", "--version"],
                             capture_output=True, text=True).stderr.strip() or "?"
    assert pinned == f"nox=={version}"
    again = subprocess.run([python, "workbook.py", "-s", "hello"], cwd=folder, capture_output=True, text=True)
    assert again.returncode == 0 and "hello from hello" in again.stderr
