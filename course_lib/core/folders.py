"""Folders the workbook's tools write into: claimed with a marker file naming the tool that made them, and
held by one process at a time with a lock file.

A tool writes into a folder only when it is absent, empty, or marked as made by that same tool
(:func:`claim_folder`); any other folder stops the tool with an error naming the folder and what it holds,
so a mistyped destination never loses what was there. A tool that records the files it wrote in its
marker (the student release) can later find what someone else added or edited there
(:func:`foreign_files`). :func:`hold_folder` adds a lock file (process id, host, start time, command): a
second process writing into a folder in use (two sweeps into one ``runs/``, two runs into one
``output_dir``) is refused, naming the process that holds it; the lock of a process that has ended is
taken over with a notice.

The tools: ``release`` (the student release's ``--dest``), ``build`` (the instructor's ``run`` command's
``--build`` folder, and the default ``build/`` of the notebooks), ``runs`` (a sweep's
``--runs-dir``, or a notebook's grid) and ``run`` (one notebook run's ``output_dir``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from course_lib.core.io import atomic_write_json

MARKER = ".course_lib.json"
"""Marker file: which tool made the folder (and, for the release, the files it wrote)."""
LOCK = ".course_lib.lock"
"""Lock file of the process writing into the folder now."""
TOOLS: dict[str, tuple[str, str]] = {
    "release": ("the student release (the instructor's release command)", "--dest"),
    "build": ("the notebooks' build folder (the instructor's run command)", "--build"),
    "runs": ("a sweep's runs folder (the instructor's sweep command, or a notebook's grid)", "--runs-dir"),
    "run": ("a notebook run's output folder (start_run)", "output_dir"),
}
"""Each tool: what its folders are, and the option that chooses another folder."""
CACHES = ("__pycache__", ".pytest_cache", ".ipynb_checkpoints")
"""Folders of generated files (byte code, test and notebook caches) that :func:`foreign_files` ignores."""
SHOWN = 8
"""How many of a folder's entries an error names."""


class FolderError(RuntimeError):
    """A tool was refused a folder (see :class:`NotOurFolder` and :class:`FolderInUse`)."""


class NotOurFolder(FolderError):
    """The folder holds things this tool did not make."""


class FolderInUse(FolderError):
    """Another process is writing into the folder now."""


def read_marker(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's marker (``{}`` when it has none, or one that does not read)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def describe_entries(folder: Path) -> str:
    """The first :data:`SHOWN` entries of ``folder`` (folders with a slash), and how many more."""
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    more = f" and {len(entries) - SHOWN} more" if len(entries) > SHOWN else ""
    return ", ".join(entries[:SHOWN]) + more


def check_folder(folder: str | os.PathLike, tool: str) -> Path:
    """``folder`` (absolute) when it is absent, empty or marked as made by ``tool``; else raise
    :class:`NotOurFolder` naming the folder, who made it, what it holds and the option that chooses
    another."""
    what, option = TOOLS[tool]
    folder = Path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise NotOurFolder(f"{folder} is a file, not a folder; choose a folder for {what} ({option})")
    made_by = read_marker(folder).get("tool")
    if made_by != tool and folder.is_dir() and any(folder.iterdir()):
        maker = f"was made for {TOOLS[made_by][0]}" if made_by in TOOLS else "was not made by this tool"
        raise NotOurFolder(
            f"{folder} is not empty and {maker}, so {what} will not write into it (it holds "
            f"{describe_entries(folder)}). Choose an empty or new folder ({option}), or move what is "
            "there elsewhere first.")
    return folder


def mark_folder(folder: str | os.PathLike, tool: str, *, files: Mapping[str, str] | None = None) -> Path:
    """Create ``folder`` (absolute) if needed and mark it as made by ``tool``, with the ``files``
    ({relative path: sha256}) the tool wrote, if given: for a folder the tool has just made itself
    (:func:`claim_folder` for any other)."""
    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    marker: dict[str, Any] = {"tool": tool, "made_by": TOOLS[tool][0], "created": created}
    if files is not None:
        marker["files"] = dict(files)
    atomic_write_json(folder / MARKER, marker)
    return folder


def claim_folder(folder: str | os.PathLike, tool: str) -> Path:
    """Make ``folder`` (absolute) ``tool``'s: create it when absent, mark it when empty, accept it when
    ``tool`` made it (:func:`check_folder`, which raises otherwise)."""
    folder = check_folder(folder, tool)
    if read_marker(folder).get("tool") != tool:
        mark_folder(folder, tool)
    return folder


def file_sha256(path: Path) -> str:
    """sha256 of the bytes of ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_files(folder: Path) -> dict[str, str]:
    """{path relative to ``folder``: sha256} of every file under it (the marker, the lock and the
    :data:`CACHES` left out)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.as_posix() not in (MARKER, LOCK) and not set(rel.parts) & set(CACHES):
            files[rel.as_posix()] = file_sha256(path)
    return files


def foreign_files(folder: str | os.PathLike) -> dict[str, str]:
    """Files under ``folder`` that the tool which marked it did not write as they are now:
    {relative path: ``"added"`` or ``"edited"``} (the marker's ``files``; generated :data:`CACHES`
    ignored)."""
    written = read_marker(folder).get("files", {})
    return {rel: "edited" if rel in written else "added"
            for rel, sha in tree_files(Path(folder)).items() if written.get(rel) != sha}


# -- locks -------------------------------------------------------------------------------------------

_HELD: dict[Path, int] = {}
"""Folders this process holds, with how many holders inside it (a sweep inside a command's sweep)."""
_UNTIL_EXIT: set[Path] = set()


def _me() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(" ".join(sys.orig_argv).split())[:200]}


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _mine(holder: Mapping[str, Any]) -> bool:
    return holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()


def _alive(holder: Mapping[str, Any]) -> bool | None:
    """Whether the holding process runs (``None``: it runs on another host, or on Windows, where this is
    not told here)."""
    if holder.get("host") != socket.gethostname() or os.name == "nt":  # on Windows os.kill(pid, 0) kills
        return None
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _holder_text(holder: Mapping[str, Any]) -> str:
    return (f"process {holder.get('pid')} on host {holder.get('host')} (started {holder.get('started')}: "
            f"{holder.get('command') or 'unknown command'})")


def _take(lock: Path) -> bool:
    """Create ``lock`` holding this process, atomically (written whole, then linked into place);
    ``False`` when it exists."""
    fd, name = tempfile.mkstemp(prefix=".course_lib-lock.", dir=lock.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(_me(), f)
    try:
        os.link(name, lock)
    except FileExistsError:
        return False
    finally:
        os.unlink(name)
    return True


def lock_folder(folder: str | os.PathLike, *, log: Callable[[str], None] = print) -> Path:
    """Hold ``folder`` (absolute) for this process: re-entrant within it; another process still running
    raises :class:`FolderInUse` naming the folder and that process; the lock of a process that has
    ended (on this host) is taken over with one line through ``log``."""
    folder = Path(folder).absolute()
    lock = folder / LOCK
    if folder in _HELD:
        _HELD[folder] += 1
        return folder
    for _ in range(5):
        if _take(lock):
            break
        holder = _read_lock(lock)
        if not holder and not lock.exists():  # released in between: try again
            continue
        if _mine(holder):  # this process took it before (a notebook's cell run again)
            break
        alive = _alive(holder) if holder else False  # written whole, so one that does not read is damaged
        if alive is None or alive:
            gone = (f"; if that process has ended, delete {lock}" if alive is None
                    else "; wait until it ends, or stop it (for a notebook: shut its kernel down)")
            raise FolderInUse(f"{folder} is in use by {_holder_text(holder)}{gone}")
        stale = lock.with_name(f"{LOCK}.stale-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):  # another process took it over first: try again
            os.replace(lock, stale)
            if _read_lock(stale) == holder:
                stale.unlink()
                gone = (f"{_holder_text(holder)} held it and is no longer running" if holder
                        else "its lock was damaged")
                log(f"{folder}: {gone}; taking it over")
            else:  # the lock was renewed in between: put it back
                with contextlib.suppress(FileExistsError):
                    os.link(stale, lock)
                stale.unlink()
    else:
        raise FolderInUse(f"{folder}: could not take its lock {lock} (other processes keep taking it)")
    _HELD[folder] = 1
    return folder


def unlock_folder(folder: str | os.PathLike) -> None:
    """Release one hold of ``folder``; the last one removes the lock file (when it is still this
    process's)."""
    folder = Path(folder).absolute()
    if folder not in _HELD:
        return
    _HELD[folder] -= 1
    if _HELD[folder] == 0:
        del _HELD[folder]
        if _mine(_read_lock(folder / LOCK)):
            (folder / LOCK).unlink(missing_ok=True)


def break_lock(folder: str | os.PathLike) -> None:
    """Remove ``folder``'s lock, whoever wrote it: only for a folder whose holder is known to have ended
    (the job that ran in it has ended; its killed kernel, on another host, could not release it)."""
    (Path(folder) / LOCK).unlink(missing_ok=True)


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike, tool: str, *,
                log: Callable[[str], None] = print) -> Iterator[Path]:
    """:func:`claim_folder` and :func:`lock_folder` ``folder`` for ``tool`` while the block runs."""
    folder = lock_folder(claim_folder(folder, tool), log=log)
    try:
        yield folder
    finally:
        unlock_folder(folder)


def hold_until_exit(folder: str | os.PathLike, tool: str, *, log: Callable[[str], None] = print) -> Path:
    """:func:`claim_folder` and :func:`lock_folder` ``folder`` for ``tool`` until this process ends (a
    notebook's run: its kernel holds its output folder)."""
    folder = lock_folder(claim_folder(folder, tool), log=log)
    if folder in _UNTIL_EXIT:
        unlock_folder(folder)  # held already: keep one hold
    else:
        _UNTIL_EXIT.add(folder)
        atexit.register(unlock_folder, folder)
    return folder
