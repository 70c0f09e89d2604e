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


SYSTEM_PYTHON = Path("/usr/bin/python3")


def _externally_managed(python: Path) -> bool:
    """Whether ``python`` is a system Python that refuses ``pip install`` (a PEP 668 marker)."""
    if not python.exists():
        return False
    stdlib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True).stdout.strip()
    return (Path(stdlib) / "EXTERNALLY-MANAGED").exists()


@pytest.mark.notebook  # slow: installs nox into a new environment
@pytest.mark.parametrize("starter", ["with_pip", "without_pip", "system_pep668"])
def test_bootstrap_creates_the_environment_and_runs_sessions(tmp_path, starter):
    folder = _checkout(tmp_path)
    python = sys.executable
    if starter == "without_pip":  # a Python whose pip is missing, as on a bare system
        bare = tmp_path / "bare"
        venv.EnvBuilder(with_pip=False).create(bare)
        python = str(bare / "bin" / "python")
    if starter == "system_pep668":  # Debian's or Ubuntu's own python3, which refuses pip install
        if not _externally_managed(SYSTEM_PYTHON):
            pytest.skip(f"{SYSTEM_PYTHON} is not an externally managed (PEP 668) system Python here")
        refused = subprocess.run([str(SYSTEM_PYTHON), "-m", "pip", "install", "--dry-run", "nox"],
                                 capture_output=True, text=True)
        assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr
        python = str(SYSTEM_PYTHON)
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



def test_a_python_with_neither_pip_nor_ensurepip_is_told_what_to_install(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    try:
        import workbook
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.setattr(workbook, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(workbook, "has_pip", lambda python: False)

    def no_ensurepip(self, env_dir):  # what venv meets in Debian's python3 without python3-venv
        Path(env_dir).mkdir()
        raise subprocess.CalledProcessError(1, ["python", "-Im", "ensurepip"])

    monkeypatch.setattr(workbook.venv.EnvBuilder, "create", no_ensurepip)
    with pytest.raises(SystemExit, match="neither pip nor ensurepip.*apt install python3-venv"):
        workbook.ensure_venv()
    assert not (tmp_path / ".venv").exists()
