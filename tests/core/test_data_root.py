"""core.data.root: where data and caches are looked for."""

from __future__ import annotations

from course_lib.core.data import resolve_data_root


def test_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert resolve_data_root() == (tmp_path / "env").resolve()
    monkeypatch.delenv("COURSE_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert resolve_data_root() == (tmp_path / "data").resolve()
