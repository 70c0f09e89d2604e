"""core.io: atomic writes, flat metrics, digests, JSON errors that name the file."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from course_lib.core.io import (
    DiskFull,
    atomic_save_npy,
    atomic_write,
    atomic_write_json,
    flat_metrics,
    read_json,
)


def test_metrics_must_be_flat():
    with pytest.raises(TypeError, match="flat"):
        flat_metrics({"a": {"b": 1}})
    assert flat_metrics({"x": float("nan")}) == {"x": None}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"v": np.int64(3)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"v": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_npy_cache(tmp_path):
    atomic_save_npy(tmp_path / "a.npy", np.arange(5))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


@pytest.mark.fault("recovery")
def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.fault("clear_error")
def test_read_json_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "a": 1,\n  "b": \n')
    with pytest.raises(ValueError, match=r"bad\.json:4:1: malformed JSON"):
        read_json(bad)
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match=r"bad\.json:1: not UTF-8"):
        read_json(bad)


@pytest.mark.fault("clear_error")
def test_text_and_jsonl_errors_name_file_and_line(tmp_path):
    from course_lib.core.io import read_jsonl, read_text

    text = tmp_path / "t.txt"
    text.write_bytes("one\ntwo\nthr\xe9e".encode("latin-1"))
    with pytest.raises(ValueError, match=r"t\.txt:3: not UTF-8"):
        read_text(text)
    lines = tmp_path / "d.jsonl"
    lines.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"d\.jsonl:4:\d+: malformed JSON line"):
        read_jsonl(lines)
    lines.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert read_jsonl(lines) == [{"a": 1}, {"a": 2}]


def _full_disk(tmp):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.fault("clear_error")
def test_a_full_cache_disk_names_the_cache_folder_and_its_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "cifar10" / "train.npz"
    with pytest.raises(DiskFull) as err:
        atomic_write(target, _full_disk)
    assert err.value.errno == errno.ENOSPC and isinstance(err.value, OSError)
    assert (f"{target.parent}: no space left on the device while writing train.npz; free space there, or "
            "move the cache to a disk with space: set COURSE_CACHE_DIR to a folder there "
            f"(now {tmp_path / 'cache'})") in str(err.value)
    assert os.listdir(target.parent) == []  # nothing half-written


@pytest.mark.fault("clear_error")
def test_a_full_disk_under_an_output_folder_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DiskFull, match=rf"{tmp_path / 'build'}: no space left on the device while writing "
                                       r"metrics.json; free space there, or write to a folder on another "
                                       r"disk \(a notebook's output_dir; --build"):
        atomic_write(tmp_path / "build" / "metrics.json", _full_disk)
    with pytest.raises(DiskFull, match=r"set COURSE_DATA_DIR to a folder there"):
        atomic_write(tmp_path / "data" / "wikitext-2" / "train.txt", _full_disk)
    with pytest.raises(PermissionError):  # another error is not called a full disk
        atomic_write(tmp_path / "x.json", lambda tmp: (_ for _ in ()).throw(PermissionError(13, "denied")))
