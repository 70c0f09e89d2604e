"""core.folders: a tool writes only into a folder that is absent, empty or its own (marker), one process at
a time (lock); a lock whose process has ended is taken over with a notice."""

from __future__ import annotations

import json
import os
import socket

import pytest

from course_lib.core.folders import (
    LOCK,
    MARKER,
    FolderInUse,
    NotOurFolder,
    claim_folder,
    foreign_files,
    hold_folder,
    mark_folder,
    read_marker,
    tree_files,
)

from .holding import held_by_another_process


def test_absent_and_empty_folders_are_claimed_and_marked(tmp_path):
    absent = claim_folder(tmp_path / "a" / "b", "runs")
    assert read_marker(absent)["tool"] == "runs" and os.listdir(absent) == [MARKER]
    (tmp_path / "empty").mkdir()
    claim_folder(tmp_path / "empty", "build")
    (tmp_path / "empty" / "index.html").write_text("x")
    assert claim_folder(tmp_path / "empty", "build") == tmp_path / "empty"  # its own: accepted as it is


@pytest.mark.fault("clear_error")
def test_a_folder_the_tool_did_not_make_is_refused_naming_what_it_holds(tmp_path):
    (tmp_path / "notes.md").write_text("mine")
    (tmp_path / ".git").mkdir()
    with pytest.raises(NotOurFolder) as err:
        claim_folder(tmp_path, "release")
    text = str(err.value)
    assert str(tmp_path) in text and ".git/, notes.md" in text and "was not made by this tool" in text
    assert "--dest" in text and sorted(os.listdir(tmp_path)) == [".git", "notes.md"]  # nothing written


@pytest.mark.fault("clear_error")
def test_another_tools_folder_and_a_file_are_refused(tmp_path):
    claim_folder(tmp_path / "runs", "runs")
    with pytest.raises(NotOurFolder, match=r"was made for a sweep's runs folder .* \(--build\)"):
        claim_folder(tmp_path / "runs", "build")
    (tmp_path / "f").write_text("")
    with pytest.raises(NotOurFolder, match=r"f is a file, not a folder"):
        claim_folder(tmp_path / "f", "run")


def test_foreign_files_are_what_the_tool_did_not_write(tmp_path):
    (tmp_path / "a.py").write_text("a")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"0")
    mark_folder(tmp_path, "release", files=tree_files(tmp_path))
    assert foreign_files(tmp_path) == {}
    (tmp_path / "a.py").write_text("edited")
    (tmp_path / "notes.md").write_text("new")
    assert foreign_files(tmp_path) == {"a.py": "edited", "notes.md": "added"}


@pytest.mark.fault("clear_error")
def test_a_folder_held_by_another_live_process_is_refused_naming_it(tmp_path):
    with held_by_another_process(tmp_path / "runs", "runs") as other:
        with pytest.raises(FolderInUse) as err:
            with hold_folder(tmp_path / "runs", "runs"):
                pass
        text = str(err.value)
        assert f"{tmp_path / 'runs'} is in use by process {other.pid} on host {socket.gethostname()}" in text
        assert "hold_until_exit" in text and "wait until it ends" in text


@pytest.mark.fault("recovery")
def test_the_lock_of_a_process_that_ended_is_taken_over_with_a_notice(tmp_path):
    with held_by_another_process(tmp_path / "runs", "runs") as other:
        pass  # killed: its lock stays behind
    assert json.loads((tmp_path / "runs" / LOCK).read_text())["pid"] == other.pid
    notices: list[str] = []
    with hold_folder(tmp_path / "runs", "runs", log=notices.append):
        assert json.loads((tmp_path / "runs" / LOCK).read_text())["pid"] == os.getpid()
        with hold_folder(tmp_path / "runs", "runs"):  # re-entrant in one process
            pass
        assert (tmp_path / "runs" / LOCK).exists()
    assert not (tmp_path / "runs" / LOCK).exists()
    assert len(notices) == 1 and f"process {other.pid} on host" in notices[0]
    assert "is no longer running; taking it over" in notices[0]


@pytest.mark.fault("clear_error")
def test_a_lock_from_another_host_is_refused_with_the_way_out(tmp_path):
    claim_folder(tmp_path, "runs")
    lock = {"pid": 1, "host": "node-17", "started": "2024-01-01 10:00:00", "command": "sweep lm"}
    (tmp_path / LOCK).write_text(json.dumps(lock))
    with pytest.raises(FolderInUse, match=rf"process 1 on host node-17 .*if that process has ended, delete "
                                          rf"{tmp_path / LOCK}"):
        with hold_folder(tmp_path, "runs"):
            pass
    (tmp_path / LOCK).write_text("{")  # a damaged lock is taken over
    notices: list[str] = []
    with hold_folder(tmp_path, "runs", log=notices.append):
        pass
    assert notices == [f"{tmp_path}: its lock was damaged; taking it over"]
