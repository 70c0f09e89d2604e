"""core.cache: an artifact is served only for its key and when it loads; otherwise rebuilt with a notice."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.core.cache import key_path, load_keyed


def _load(path):
    array = np.load(path)
    if array.shape != (4,):
        raise ValueError(f"{path.name}: shape {array.shape}, expected (4,)")
    return array


def _builder(calls, value):
    def build(tmp):
        calls.append(value)
        np.save(tmp, np.full(4, value))
    return build


@pytest.mark.fault("recovery")
def test_served_for_its_key_rebuilt_for_another(tmp_path):
    path, calls, notes = tmp_path / "a.npy", [], []
    first = load_keyed(path, {"v": 1}, load=_load, build=_builder(calls, 1), what="toy", log=notes.append)
    again = load_keyed(path, {"v": 1}, load=_load, build=_builder(calls, 9), what="toy", log=notes.append)
    assert calls == [1] and (first == again).all() and notes == []
    other = load_keyed(path, {"v": 2}, load=_load, build=_builder(calls, 2), what="toy", log=notes.append)
    assert calls == [1, 2] and (other == 2).all()
    assert notes == ["toy: a.npy was made by other settings, data or code; rebuilding it"]


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("damage", ["truncate", "wrong_shape", "no_key"])
def test_damaged_artifacts_are_rebuilt_never_served(tmp_path, damage):
    path, calls, notes = tmp_path / "a.npy", [], []
    load_keyed(path, {"v": 1}, load=_load, build=_builder(calls, 1), what="toy", log=notes.append)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "wrong_shape":
        np.save(path, np.zeros(3))  # well-formed, but not what was built
    else:
        key_path(path).unlink()
    result = load_keyed(path, {"v": 1}, load=_load, build=_builder(calls, 5), what="toy", log=notes.append)
    assert calls == [1, 5] and (result == 5).all() and len(notes) == 1
    assert "rebuilding it" in notes[0] and ("damaged" in notes[0] or "other settings" in notes[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.npy.key.json"]
