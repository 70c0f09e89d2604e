"""The built wheel is a working course_lib: installed in a fresh virtual environment, away from the
checkout, every module imports and the data registry (package data) loads. The packaging's facts are
declared once: the version, the extras, the lock for every supported Python, environment.yml."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

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


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_declared_once():
    """pyproject.toml holds the version; the library reads it; CITATION.cff (static YAML) must agree."""
    version = _pyproject()["project"]["version"]
    assert course_lib.__version__ == version
    assert f'"{version}"' not in (ROOT / "course_lib" / "__init__.py").read_text(encoding="utf-8")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert str(citation["version"]) == version


def test_students_and_instructors_install_different_extras():
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    assert "dev" not in extras
    student = {Requirement(r).name for r in extras["student"]}
    instructor = {Requirement(r).name for r in extras["instructor"]}
    assert {"jupyterlab", "ipykernel", "ipywidgets", "pytest"} <= student
    assert "course-lib[student]" in extras["instructor"]  # everything a student has
    tools = {"papermill", "nbval", "nbconvert", "nbformat", "nox", "playwright", "submitit",
             "jupyter-server-mathjax", "ruff", "mypy"}
    assert tools <= instructor and not tools & student
    for name in ("README.md", "CONTRIBUTING.md", "noxfile.py", "environment.yml", ".ci/run", "workbook.py"):
        assert "[dev]" not in (ROOT / name).read_text(encoding="utf-8"), f"{name} still names the dev extra"


SUPPORTED = ["3.11.0", "3.11.2", "3.11.9", "3.12.0", "3.13.0"]
"""Pythons ``requires-python`` admits, among them Debian 12's 3.11.2."""


@pytest.mark.parametrize("python", SUPPORTED)
def test_the_lock_pins_every_package_once_for_every_supported_python(python):
    """constraints.txt is one lock for every Python requires-python admits: per interpreter (markers
    evaluated on Linux x86-64), each package has exactly one pin, and every dependency and extra of
    pyproject.toml is pinned."""
    project = _pyproject()["project"]
    assert SpecifierSet(project["requires-python"]).contains(python)
    env = {"python_version": ".".join(python.split(".")[:2]), "python_full_version": python,
           "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
           "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    pins: dict[str, list[str]] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(env):
                pins.setdefault(canonicalize_name(requirement.name), []).append(str(requirement.specifier))
    assert {n: v for n, v in pins.items() if len(v) != 1} == {}
    assert all(v[0].startswith("==") for v in pins.values())
    declared = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values()
                                            for r in extra)]
    wanted = {canonicalize_name(Requirement(r).name) for r in declared} - {"course-lib"}
    assert wanted - set(pins) == set()


def test_environment_yml_installs_what_pyproject_declares():
    """environment.yml names Python at the lowest version requires-python admits, pip, and the project
    itself with an extra it declares: every other package comes from pyproject.toml."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    project = _pyproject()["project"]
    lowest = project["requires-python"].removeprefix(">=")
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert conda == [f"python={lowest}", "pip"]
    (editable,) = pip
    extra = editable.removeprefix("-e .[").removesuffix("]")
    assert editable == f"-e .[{extra}]" and extra in project["optional-dependencies"]
