"""core.data.root: where data and caches are looked for, and the command that fetches them."""

from __future__ import annotations

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
