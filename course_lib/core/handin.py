"""Hand-in: one zip of an assignment's exercise modules, its notebook and a manifest, for the grader.

``python -m course_lib submit NN [--out FILE] [--notebook PATH]``, run in the student release, writes
``NN_slug-handin.zip`` in the current folder (or ``FILE``) holding

- the assignment's exercise modules: the files of its package that hold a ``### YOUR CODE BEGINS``
  region (only what is between the two marker lines is graded; the rest of the file is the release's),
- its notebook (the ``NN_*.ipynb`` in ``notebooks``, or ``--notebook``), with the written answers,
- ``manifest.json``: the assignment, the release version and the sha256 of every file.

It refuses, naming the file and line, what could not be graded: a module that is not UTF-8 or does not
parse, marker lines that do not pair up, an exercise whose marker lines were removed, a notebook that is
not valid JSON, a file over the grader's size limits. It warns about exercises that still hold only the
stub and questions not answered. The same work gives the same zip, byte for byte (fixed timestamps).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import io
import json
import stat
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.core.exercises import (
    SOLUTION,
    STUDENT,
    MarkerError,
    answer_cells,
    cell_text,
    is_stub,
    is_unanswered,
    question_before,
    regions,
)
from course_lib.core.io import atomic_write, read_json, read_text

MANIFEST = "manifest.json"
FORMAT = 1
"""Version of the hand-in layout, in the manifest."""
MAX_ARCHIVE_BYTES = 50 * 2**20
"""The grader's limits: the zip itself, any one file in it, all files together, and how many files."""
MAX_FILE_BYTES = 50 * 2**20
MAX_TOTAL_BYTES = 100 * 2**20
MAX_ENTRIES = 100
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class HandinError(ValueError):
    """What would not grade, one problem per line (each names its file)."""


@dataclass
class Handin:
    """The files of one hand-in (zip paths -> bytes, the manifest last) and the warnings about them."""

    assignment: str
    files: dict[str, bytes]
    warnings: list[str] = field(default_factory=list)


def release_version(root: Path) -> str:
    """The installed ``course-lib`` version, else the ``pyproject.toml`` beside ``course_lib``, else
    ``"unknown"``."""
    try:
        return importlib.metadata.version("course-lib")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        return str(tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _module(path: Path, rel: str, problems: list[str]) -> dict[str, list] | None:
    """The student regions of one module by exercise name, or ``None`` (with the problem recorded)."""
    try:
        text = read_text(path)
        ast.parse(text, filename=rel)
        if any(line.strip() == SOLUTION[0] for line in text.splitlines()):
            problems.append(f"{rel}: holds the instructor's solution fence; hand in from the student release")
            return None
        return regions(text, rel, fence=STUDENT)
    except SyntaxError as err:
        problems.append(f"{rel}:{err.lineno}: does not parse ({err.msg}); fix it so that Python imports it")
    except (ValueError, MarkerError) as err:  # not UTF-8, or marker lines that do not pair up
        problems.append(str(err))
    return None


def collect(assignment, root: Path, notebook: Path | None = None) -> Handin:
    """Check and gather ``assignment``'s hand-in from the release at ``root``; :class:`HandinError`
    listing every problem found."""
    problems: list[str] = []
    warnings: list[str] = []
    files: dict[str, bytes] = {}
    found: set[str] = set()
    folder = root / Path(*assignment.package.split("."))
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        if STUDENT[0].encode() not in data and SOLUTION[0].encode() not in data:
            continue
        blocks = _module(path, rel, problems)
        files[rel] = data
        for name, regs in (blocks or {}).items():
            found.add(name)
            if all(is_stub(r) for r in regs):
                warnings.append(f"{rel}:{regs[0].first}: {name} is not implemented (its region holds only "
                                "the stub)")
    if not problems:
        for name in (n for n in assignment.points if n not in found):
            problems.append(f"{folder.relative_to(root).as_posix()}/: exercise {name} has no "
                            f"{STUDENT[0]!r} / {STUDENT[1]!r} region; put the two marker lines back around "
                            "your code")
    notebook = notebook or root / assignment.notebook
    if not notebook.is_file():
        problems.append(f"{notebook}: notebook not found; give its path with --notebook")
    else:
        try:
            nb = read_json(notebook)
            if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
                raise ValueError(f"{notebook}: not a Jupyter notebook (no list of cells)")
            cells = nb["cells"]
            for cell in answer_cells(nb):
                if is_unanswered(cell_text(cell)):
                    title = (question_before(cells, cell) or "(untitled)").splitlines()[0].lstrip("# ")
                    warnings.append(f"{notebook.name}: question not answered: {title}")
            files[assignment.notebook.as_posix()] = notebook.read_bytes()
        except ValueError as err:
            problems.append(str(err))
    for rel, data in files.items():
        if len(data) > MAX_FILE_BYTES:
            problems.append(f"{rel}: {len(data) / 2**20:.1f} MB, over the grader's "
                            f"{MAX_FILE_BYTES // 2**20} MB per file (clear the notebook's outputs)")
    if problems:
        raise HandinError("\n".join(problems))
    manifest = {"format": FORMAT, "assignment": assignment.id, "release": release_version(root),
                "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}}
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return Handin(assignment.id, files, warnings)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """``files`` as a zip archive with fixed timestamps and permissions (the same files, the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    from course_lib.assignments import get_assignment

    parser = argparse.ArgumentParser(prog="python -m course_lib submit",
                                     description="Write the zip to hand in for one assignment.")
    parser.add_argument("assignment", help="assignment id or name, e.g. 02")
    parser.add_argument("--out", type=Path, help="zip to write (default: ./NN_slug-handin.zip)")
    parser.add_argument("--notebook", type=Path, help="your notebook, if not in notebooks/ of the release")
    args = parser.parse_args(argv)
    try:
        assignment = get_assignment(args.assignment)
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[2]
    try:
        handin = collect(assignment, root, args.notebook)
    except HandinError as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        print("nothing written: fix the files above and run submit again", file=sys.stderr)
        return 1
    data = zip_bytes(handin.files)
    if len(data) > MAX_ARCHIVE_BYTES:
        print(f"error: the zip would be {len(data) / 2**20:.1f} MB, over the grader's "
              f"{MAX_ARCHIVE_BYTES // 2**20} MB (clear the notebook's outputs)", file=sys.stderr)
        return 1
    out = args.out or Path.cwd() / f"{assignment.name}-handin.zip"
    atomic_write(out, lambda tmp: tmp.write_bytes(data))
    for line in handin.warnings:
        print(f"warning: {line}")
    print(f"wrote {out}: {len(handin.files) - 1} files and {MANIFEST} "
          f"({len(handin.warnings)} warning{'s' if len(handin.warnings) != 1 else ''})")
    return 0
