"""The Quick start's bootstrap (``python3 workbook.py -s ...``) creates ``.venv`` with the pinned nox and
runs the sessions, whether the Python it starts from has pip (system pip installs into the new
environment) or not (ensurepip)."""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from course_lib.core.data import root as data_root_module
from tests.serve import serving

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
    for name in ("workbook.py", "constraints.txt", "pyproject.toml"):
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
    pinned = [next(line for line in constraints if line.startswith(f"{name}==")) for name in ("nox", "uv")]
    script = "import importlib.metadata as m; print(f\"nox=={m.version('nox')} uv=={m.version('uv')}\")"
    versions = subprocess.run([str(_load_workbook().python_in(folder / ".venv")), "-c", script],
                              capture_output=True, text=True).stdout.split()
    assert pinned == versions
    again = subprocess.run([python, "workbook.py", "-s", "hello"], cwd=folder, capture_output=True, text=True)
    assert again.returncode == 0 and "hello from hello" in again.stderr



def _load_workbook():
    sys.path.insert(0, str(ROOT))
    try:
        import workbook
    finally:
        sys.path.remove(str(ROOT))
    return workbook


def test_a_python_older_than_requires_python_is_refused_naming_both(monkeypatch):
    workbook = _load_workbook()
    assert workbook.minimum_python() == (3, 11)  # read from pyproject.toml
    monkeypatch.setattr(workbook.sys, "version_info", (3, 10, 13, "final", 0))
    with pytest.raises(SystemExit, match=r"is Python 3\.10\.13; the workbook needs Python >= 3\.11 "
                                         r"\(requires-python in pyproject\.toml\)"):
        workbook.check_python()


def test_a_python_with_neither_pip_nor_ensurepip_is_told_what_to_install(tmp_path, monkeypatch):
    workbook = _load_workbook()
    monkeypatch.setattr(workbook, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(workbook, "has_pip", lambda python: False)

    def no_ensurepip(self, env_dir):  # what venv meets in Debian's python3 without python3-venv
        Path(env_dir).mkdir()
        raise subprocess.CalledProcessError(1, ["python", "-Im", "ensurepip"])

    monkeypatch.setattr(workbook.venv.EnvBuilder, "create", no_ensurepip)
    with pytest.raises(SystemExit, match="neither pip nor ensurepip.*apt install python3-venv"):
        workbook.ensure_venv()
    assert not (tmp_path / ".venv").exists()


def _load_noxfile():
    sys.path.insert(0, str(ROOT))
    try:
        import noxfile
    finally:
        sys.path.remove(str(ROOT))
    return noxfile


class RecordingSession:
    """What the noxfile's install steps need of a nox session: ``run`` (here: a subprocess), ``warn``
    and ``error``."""

    def __init__(self):
        self.commands: list[list[str]] = []
        self.notices: list[str] = []

    def run(self, *args, external=False, env=None):
        self.commands.append(list(args))
        subprocess.run(args, check=True, capture_output=True, text=True)

    def warn(self, message):
        self.notices.append(message)

    def error(self, message):
        raise SystemExit(message)


def _fake_wheel(folder: Path, name: str, version: str) -> Path:
    """A tiny wheel named like PyTorch's: ``<name>-<version>-py3-none-any.whl``."""
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f'__version__ = "{version}"\n',
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                               "Tag: py3-none-any\n"}

    def digest(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode().rstrip("=")

    record = [f"{name},sha256={digest(text)},{len(text.encode())}" for name, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


@pytest.fixture
def cpu_index(tmp_path):
    """A package index on 127.0.0.1 (PEP 503 layout) serving one fake CPU build of the locked torch and
    torchvision, as PyTorch's CPU index serves ``torch-<version>+cpu``; yields its URL and the versions."""
    versions = {}
    for name in ("torch", "torchvision"):
        versions[name] = _load_workbook().pinned(name).split("==")[1].split(";")[0].strip() + "+cpu"
        (tmp_path / "index" / name).mkdir(parents=True)
        wheel = _fake_wheel(tmp_path / "index" / name, name, versions[name])
        (tmp_path / "index" / name / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')

    with serving(tmp_path / "index") as url:
        yield url, versions


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/simple"  # nothing listens once closed


def test_torch_comes_from_the_cpu_index_without_a_gpu_driver(cpu_index, tmp_path, monkeypatch):
    """No NVIDIA driver: the bootstrap installs torch from the CPU index (here a stand-in on 127.0.0.1,
    reached through COURSE_TORCH_INDEX), the CPU wheel and nothing else; with a driver, PyPI's."""
    noxfile = _load_noxfile()
    url, versions = cpu_index
    for name in ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_FIND_LINKS", "UV_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_NO_CONFIG", "1")  # only the index under test
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.delenv(noxfile.TORCH_INDEX_ENV, raising=False)
    monkeypatch.setattr(noxfile, "gpu_driver", lambda: False)
    assert noxfile.torch_index() == (noxfile.CPU_INDEX if sys.platform == "linux" else noxfile.PYPI)
    monkeypatch.setattr(noxfile, "gpu_driver", lambda: True)
    assert noxfile.torch_index() == noxfile.PYPI

    monkeypatch.setenv(noxfile.TORCH_INDEX_ENV, url)
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env)  # uv installs into it
    python = str(noxfile.python_in(env))
    session = RecordingSession()
    assert noxfile.install_torch(session, python, noxfile.torch_index(), reinstall=False) == url
    installed = subprocess.run([python, "-c", "import importlib.metadata as m, torch, torchvision; "
                                "print(m.version('torch'), torch.__version__, m.version('torchvision'))"],
                               capture_output=True, text=True, check=True).stdout.split()
    assert installed == [versions["torch"], versions["torch"], versions["torchvision"]]  # e.g. 2.14.1+cpu
    assert session.commands[0][:3] == [noxfile.UV, "pip", "install"] and "--no-deps" in session.commands[0]
    assert session.notices == []


def test_an_unreachable_cpu_index_falls_back_to_pypi_with_one_notice(monkeypatch):
    noxfile = _load_noxfile()
    monkeypatch.delenv(noxfile.TORCH_INDEX_ENV, raising=False)
    monkeypatch.setattr(noxfile, "CPU_INDEX", _closed_port_url())
    monkeypatch.setattr(noxfile, "gpu_driver", lambda: False)
    monkeypatch.setattr(noxfile.sys, "platform", "linux")
    session = RecordingSession()
    assert noxfile.install_torch(session, "python-unused", noxfile.torch_index(), reinstall=False) == "pypi"
    assert session.commands == []  # the project's own install then takes PyPI's torch
    (notice,) = session.notices
    assert noxfile.CPU_INDEX in notice and "cannot be reached" in notice and "PyPI" in notice
    assert "\n" not in notice
    monkeypatch.setenv(noxfile.TORCH_INDEX_ENV, noxfile.CPU_INDEX)  # named by the user: no fallback
    with pytest.raises(SystemExit, match="COURSE_TORCH_INDEX=.* cannot be reached"):
        noxfile.install_torch(session, "python-unused", noxfile.torch_index(), reinstall=False)


def _fresh_clone(dest: Path) -> Path:
    """The checkout's files as a clone of it has them (tracked, and untracked but not ignored): no data,
    no environments, no build."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout")
    for name in filter(None, listed.stdout.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture
def data_mirror(data_root):
    """The data root served on 127.0.0.1 as ``<data set>/<file>`` (a ``COURSE_DATA_MIRROR``)."""
    with serving(data_root) as url:
        yield url


FIRST_NOTEBOOK = "01"
"""The notebook the end-to-end run executes: its data set is on the mirror, and it is among the quickest."""


@pytest.mark.notebook  # slow: builds the whole environment and runs a notebook
def test_the_first_command_works_on_a_fresh_clone_online_without_data(tmp_path, data_root, data_mirror):
    """The Quick start's first command, environment included, from Debian's own python3 when it is there,
    on a fresh clone with no data and no ../shared beside it: the notebook fetches its data set (from a
    mirror on 127.0.0.1) into the clone's one data root and runs to its expected metrics."""
    from course_lib.assignments import ASSIGNMENTS
    from course_lib.core.assignment import read_metrics
    from course_lib.core.data import require

    a = ASSIGNMENTS[FIRST_NOTEBOOK]
    (dataset,) = a.datasets
    require(dataset, data_root)  # the data set to serve (without it the test is skipped: tests.data_gate)
    python = str(SYSTEM_PYTHON) if _externally_managed(SYSTEM_PYTHON) else sys._base_executable
    clone = _fresh_clone(tmp_path / "machine" / "workbook")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COURSE_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "TQDM_DISABLE")}
    env.update(COURSE_DATA_MIRROR=data_mirror, COURSE_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([python, "workbook.py", "-s", "run", "--", "--only", FIRST_NOTEBOOK], cwd=clone,
                          env=env, capture_output=True, text=True, timeout=3600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]

    metrics = read_metrics(clone / "build" / a.name)
    for name, (lo, hi) in a.expected["smoke"].items():
        assert lo <= metrics[name] <= hi, f"{name}={metrics[name]} not in [{lo}, {hi}]"
    assert (clone / "build" / "index.html").is_file() and (clone / "build" / "summary.md").is_file()
    assert require(dataset, clone / "data") == clone / "data" / dataset  # every file there, sha256-checked
    assert not (clone / "notebooks" / "data").exists()  # one data root per checkout

    workbook_python = _load_noxfile().python_in(clone / ".nox" / "workbook")
    facts = subprocess.run([str(workbook_python), "-c", "import platform, importlib.metadata as m; "
                            "print(platform.python_version(), m.version('torch'))"],
                           capture_output=True, text=True, check=True).stdout.split()
    starter = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert facts[0] == starter  # the environment runs on the interpreter that started the command
    source = (clone / ".nox" / "workbook" / ".torch-index").read_text()
    if source == "pypi":
        assert "+cpu" not in facts[1]
        noxfile = _load_noxfile()
        if sys.platform == "linux" and not noxfile.gpu_driver():  # the CPU index was wanted: it said why not
            assert "cannot be reached" in output and "installing PyPI's torch instead" in output
    else:
        assert facts[1].endswith("+cpu"), facts

    listed = subprocess.run([python, "workbook.py", "-s", "data", "--", "list"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=600)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert f"data root: {clone / 'data'}" in listed.stdout
    assert any(line.split() == [dataset, "present"] for line in listed.stdout.splitlines()), listed.stdout


def test_the_fetch_command_is_one_the_user_can_type(tmp_path, monkeypatch):
    checkout = data_root_module.CHECKOUT
    monkeypatch.chdir(checkout)
    assert data_root_module.fetch_command("squad-v1.1", tmp_path / "my data") == (
        f"python3 workbook.py -s data -- fetch squad-v1.1 --root '{tmp_path / 'my data'}'")
    monkeypatch.chdir(tmp_path)  # elsewhere: the bootstrap by its full path
    assert data_root_module.fetch_command("--all", checkout / "data").startswith(
        f"python3 {checkout / 'workbook.py'} -s data -- fetch --all --root ")
    monkeypatch.setattr(data_root_module, "CHECKOUT", tmp_path)  # no bootstrap: this interpreter's module
    command = data_root_module.fetch_command("ag-news", tmp_path / "data")
    assert shlex.split(command)[:4] == [sys.executable, "-m", "course_lib", "data"]
    listed = subprocess.run([*shlex.split(command)[:4], "list", "--root", str(tmp_path / "data")],
                            capture_output=True, text=True, cwd=checkout)
    assert listed.returncode == 0 and "ag-news" in listed.stdout and "missing" in listed.stdout
