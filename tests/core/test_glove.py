"""core.data.glove: official text files are parsed once into a keyed, validated cache."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.core.data.glove import embedding_matrix, load_glove


def _glove_file(tmp_path, rows=("the 0.1 0.2 0.3", "cat 1 2 3", "über -1 0 1")):
    path = tmp_path / "glove.6B.3d.txt"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.fault("recovery")
def test_text_file_is_cached_and_a_damaged_cache_rebuilt(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    path = _glove_file(tmp_path)
    glove = load_glove(path)
    assert glove.words == ["the", "cat", "über"] and glove.vectors.shape == (3, 3) and glove.dim == 3
    cache = tmp_path / "cache" / "glove" / "glove.6B.3d.npz"
    cache.write_bytes(cache.read_bytes()[:50])
    again = load_glove(path)
    assert "GloVe cache: glove.6B.3d.npz is damaged" in capsys.readouterr().out
    np.testing.assert_array_equal(again.vectors, glove.vectors)
    path.write_text("the 9 9 9\n", encoding="utf-8")  # another file under the same name: not served stale
    assert load_glove(path).words == ["the"]
    matrix, coverage = embedding_matrix(["The", "dog"], load_glove(path))
    assert coverage == 0.5 and matrix[0].tolist() == [9, 9, 9]


@pytest.mark.fault("clear_error")
def test_malformed_lines_name_the_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"glove\.6B\.3d\.txt:2: not a GloVe line"):
        load_glove(_glove_file(tmp_path, ("the 0.1 0.2 0.3", "cat 1 two 3")))
    with pytest.raises(ValueError, match="same number of values"):
        load_glove(_glove_file(tmp_path, ("the 0.1 0.2 0.3", "cat 1 2")))
    assert not list((tmp_path / "cache" / "glove").iterdir())  # nothing half-built is left
