"""core.data.root: where data and caches are looked for, and the command that fetches them."""

from __future__ import annotations

import shlex
import subprocess
import sys

from course_lib.core.data import resolve_data_root
from course_lib.core.data import root as data_root_module


def test_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert resolve_data_root() == (tmp_path / "env").resolve()


def test_a_checkout_has_one_data_root_wherever_it_runs_from(tmp_path, monkeypatch):
    """From the checkout, from notebooks/ or from anywhere else: the checkout's data/, which need not exist
    yet (it is created by the first fetch), never a second data/ beside the notebooks."""
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    checkout = data_root_module.CHECKOUT
    assert (checkout / "pyproject.toml").is_file()
    for where in (checkout, checkout / "notebooks", tmp_path):
        monkeypatch.chdir(where)
        assert resolve_data_root() == checkout / "data"


def test_an_installed_library_uses_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setattr(data_root_module, "CHECKOUT", tmp_path / "site-packages")  # no pyproject.toml there
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root() == (tmp_path / "data").resolve()


def test_the_fetch_command_is_one_the_user_can_type(tmp_path, monkeypatch):
    checkout = data_root_module.CHECKOUT
    monkeypatch.chdir(checkout)
    assert data_root_module.fetch_command("squad-v1.1", tmp_path / "my data") == (
        f"python3 workbook.py -s data -- fetch squad-v1.1 --root '{tmp_path / 'my data'}'")
    monkeypatch.chdir(tmp_path)  # elsewhere: the bootstrap by its full path
    assert data_root_module.fetch_command("--all", checkout / "data").startswith(
        f"python3 {checkout / 'workbook.py'} -s data -- fetch --all --root ")
    monkeypatch.setattr(data_root_module, "CHECKOUT", tmp_path)  # no workbook.py: this interpreter's module
    command = data_root_module.fetch_command("ag-news", tmp_path / "data")
    assert shlex.split(command)[:4] == [sys.executable, "-m", "course_lib", "data"]
    listed = subprocess.run([*shlex.split(command)[:4], "list", "--root", str(tmp_path / "data")],
                            capture_output=True, text=True, cwd=checkout)
    assert listed.returncode == 0 and "ag-news" in listed.stdout and "missing" in listed.stdout
