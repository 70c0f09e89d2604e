"""core.digests: each digest tells apart what it keys, and only that."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from course_lib.core.digests import code_digest, content_digest, file_digest, json_digest, stat_digest


def test_json_digest_reads_values_and_dataclasses():
    from .toy import SMOKE

    a = json_digest({"lr": 0.1, "widths": (16, 32)})
    assert a == json_digest({"widths": [16, 32], "lr": 0.1}) and len(a) == 12
    assert a != json_digest({"lr": 0.2, "widths": (16, 32)})
    assert json_digest(SMOKE) == json_digest(SMOKE.to_dict())
    assert json_digest(SMOKE) != json_digest(SMOKE.override(epochs=3))


def test_code_digest_changes_with_the_source(tmp_path, monkeypatch):
    package = tmp_path / "pkg_digest_toy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_digest("pkg_digest_toy")
    assert before == code_digest("pkg_digest_toy") and before != code_digest("pkg_digest_toy.mod")
    (package / "mod.py").write_text("def f():\n    return 2\n")
    assert code_digest("pkg_digest_toy") != before
    with pytest.raises(ValueError, match="no module named 'nope_not_here'"):
        code_digest("nope_not_here")


def test_content_digest_tells_data_apart():
    a = np.arange(6, dtype=np.int64)
    assert content_digest("x", ["a", "b"], a) == content_digest("x", ["a", "b"], torch.arange(6))
    assert content_digest(a) != content_digest(a.astype(np.int32))  # dtype counts
    assert content_digest(a) != content_digest(a.reshape(2, 3))  # shape counts
    assert content_digest(["ab", "c"]) != content_digest(["a", "bc"])
    assert content_digest(None) != content_digest("")


def test_file_digest_reads_the_bytes_and_stat_digest_only_names_sizes_and_times(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"abc")
    b.write_bytes(b"abc")
    assert file_digest(a) == file_digest(b) and len(file_digest(a)) == 12
    listing = stat_digest([a, b])
    assert listing == stat_digest([b, a])  # the order given does not count
    os.utime(a, ns=(0, 0))
    assert file_digest(a) == file_digest(b) and stat_digest([a, b]) != listing
    b.write_bytes(b"abd")
    assert file_digest(a) != file_digest(b)
