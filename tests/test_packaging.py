"""The built wheel is a working course_lib: installed in a fresh virtual environment, away from the
checkout, every module imports and the data registry (package data) loads."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import course_lib

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.notebook  # slow: builds and installs a wheel
def test_wheel_installs_and_imports_everything(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "course_lib", source / "course_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, text=True)
    (wheel,) = wheels.glob("course_lib-*.whl")
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies come from this environment's site-packages (its .pth files, among them the
    # checkout's editable install, are not processed from a path added this way)
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True, text=True)
    modules = sorted(m.name for m in pkgutil.walk_packages(course_lib.__path__, "course_lib.")
                     if not m.name.endswith(".__main__"))  # a command, not a module to import
    assert "course_lib.core.data.registry" in modules and len(modules) > 40
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import course_lib\n"
        "from course_lib.core.data import DATASETS\n"
        "print(course_lib.__file__)\n"
        "print(len(DATASETS['langid-sentences'].remote))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    done = subprocess.run([str(python), "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout.split()
    assert out[0].startswith(str(site)), f"course_lib came from {out[0]}, not the wheel"
    assert int(out[1]) == 75
