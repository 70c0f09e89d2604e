"""Exercises: functions whose solution is fenced, in the instructor's library and in the student's.

In the instructor's ``course_lib`` an exercise is a function (or method) whose body holds a block fenced
by the two :data:`SOLUTION` lines. The student release (:func:`strip_solutions`)
replaces each fenced block by a student region, the same fence under other names around one line that
raises ``NotImplementedError``::

    def zero_pad(x, pad):
        \"\"\"Docstring with the contract (shapes, layouts).\"\"\"
        ### YOUR CODE BEGINS
        raise NotImplementedError("exercise: write your solution here")
        ### YOUR CODE ENDS

The student writes between the two lines. The k-th student region of a function corresponds to the
k-th fenced block of the instructor's function, so a grader can put what the student wrote in place of
the instructor's solution and keep every other line the instructor's (:func:`regions`).

Written answers (theory questions) live in notebook markdown cells: the instructor's model answer in a
cell tagged :data:`SOLUTION_CELL_TAG`, which the release turns into a cell tagged
:data:`ANSWER_CELL_TAG` holding :data:`ANSWER_PROMPT`, the cell the student answers in (same cell id).
This module is shipped in the student release: the in-notebook check and the hand-in use it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SOLUTION = ("### BEGIN " + "SOLUTION", "### END " + "SOLUTION")
"""The instructor's fence around a solution (spelled in two parts so that this file, which the release
ships, holds neither line)."""
STUDENT = ("### YOUR CODE BEGINS", "### YOUR CODE ENDS")
"""The student release's fence around what the student writes."""
STUB = 'raise NotImplementedError("exercise: write your solution here")'
"""The one line inside a student region before the student writes anything."""
SOLUTION_CELL_TAG = "solution"
"""Cell tag of the instructor's model answer: a markdown cell after its question, or a code cell the student
writes for it."""
ANSWER_CELL_TAG = "answer"
"""Cell tag of the release's answer cell, where the student writes (it keeps the solution cell's id)."""
ANSWER_PROMPT = "**Your answer:** _write it here._"
"""What an answer cell holds until the student writes in it."""
CODE_PROMPT = "# Your code: write here what the question above asks for."
"""What a code answer cell holds before the student writes it."""


class MarkerError(ValueError):
    """Fence lines that do not pair up (the message names the file and line)."""


@dataclass(frozen=True)
class Exercise:
    """A function (or method) with a fenced block: ``path`` as given to :func:`find_exercises` (relative
    to its ``root``), ``name`` such as ``"zero_pad"`` or ``"HighwayMaxout.forward"``, and the line of its
    ``def``."""

    path: str
    name: str
    line: int


@dataclass(frozen=True)
class Region:
    """One fenced block: the lines strictly between its two fence lines (1-based, ``first`` to ``last``
    inclusive; ``last == first - 1`` for an empty block), their text, and the fence's indentation."""

    first: int
    last: int
    text: str
    indent: str


def fenced_regions(source: str, fence: tuple[str, str], where: str = "<source>") -> list[Region]:
    """Every block of ``source`` fenced by ``fence`` (begin, end), in order; :class:`MarkerError` naming
    ``where`` and the line when the fence lines do not pair up."""
    begin, end = fence
    lines = source.splitlines(keepends=True)
    found: list[Region] = []
    opened: tuple[int, str] | None = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped == begin:
            if opened is not None:
                raise MarkerError(f"{where}:{number}: {begin} inside the block opened at line {opened[0]}")
            opened = (number, line[: len(line) - len(line.lstrip())])
        elif stripped == end:
            if opened is None:
                raise MarkerError(f"{where}:{number}: {end} without {begin}")
            start, indent = opened
            found.append(Region(start + 1, number - 1, "".join(lines[start:number - 1]), indent))
            opened = None
    if opened is not None:
        raise MarkerError(f"{where}:{opened[0]}: {begin} is never closed")
    return found


def _functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Module-level functions and methods (of classes at any depth, not functions nested in functions),
    with their dotted names."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.ClassDef):
            found += _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append((f"{prefix}{child.name}", child))
    return found


def regions(source: str, where: str = "<source>", fence: tuple[str, str] | None = None,
            ) -> dict[str, list[Region]]:
    """The fenced blocks of a module's text by exercise name (``"f"``, ``"Class.method"``), in file
    order. The fence is ``fence``, or by default the instructor's (:data:`SOLUTION`) when the text has
    its opening line, else the student's (:data:`STUDENT`); a block outside any function raises
    :class:`MarkerError`."""
    if fence is None:
        fence = SOLUTION if any(line.strip() == SOLUTION[0] for line in source.splitlines()) else STUDENT
    blocks = fenced_regions(source, fence, where)
    spans = [(name, node.lineno, node.end_lineno or node.lineno) for name, node in _functions(
        ast.parse(source, filename=where))]
    found: dict[str, list[Region]] = {}
    for block in blocks:  # functions and methods do not nest here, so one span holds the opening line
        owner = next((name for name, start, stop in spans if start < block.first - 1 <= stop), None)
        if owner is None:
            raise MarkerError(f"{where}:{block.first - 1}: a fenced block outside any function or method")
        found.setdefault(owner, []).append(block)
    return found


def find_exercises(path: Path, root: Path) -> list[Exercise]:
    """The exercises of one module (instructor's or student's), in file order."""
    text = path.read_text(encoding="utf-8")
    lines = {name: node.lineno for name, node in _functions(ast.parse(text, filename=str(path)))}
    rel = str(path.relative_to(root))
    found = [Exercise(rel, name, lines[name]) for name in regions(text, str(path))]
    return sorted(found, key=lambda e: e.line)


def package_exercises(folder: Path, root: Path) -> list[Exercise]:
    """The exercises of every module under ``folder`` (a package), by path and then file order."""
    return [e for path in sorted(folder.rglob("*.py")) for e in find_exercises(path, root)]


def strip_solutions(source: str, where: str = "<source>") -> tuple[str, int]:
    """The student version of ``source``: each :data:`SOLUTION` block replaced by a :data:`STUDENT`
    region holding :data:`STUB`. Returns (text, blocks replaced)."""
    out = source.splitlines(keepends=True)
    blocks = fenced_regions(source, SOLUTION, where)
    for block in reversed(blocks):  # from the end, so earlier line numbers stay valid
        i = block.indent
        out[block.first - 2: block.last + 1] = [f"{i}{STUDENT[0]}\n", f"{i}{STUB}\n", f"{i}{STUDENT[1]}\n"]
    return "".join(out), len(blocks)


def is_stub(region: Region) -> bool:
    """Whether a student region still holds only the :data:`STUB` line (nothing written)."""
    return [line.strip() for line in region.text.splitlines() if line.strip()] == [STUB]


def is_unanswered(text: str) -> bool:
    """Whether an answer cell's text is still empty or one of the release's prompts."""
    return text.strip() in ("", ANSWER_PROMPT, CODE_PROMPT)


def cell_text(cell: dict) -> str:
    """A notebook cell's source as one string (nbformat stores a string or a list of lines)."""
    source = cell.get("source", "")
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def answer_cells(notebook: dict, tag: str = ANSWER_CELL_TAG) -> list[dict]:
    """The markdown cells of a notebook (its JSON, perhaps malformed) tagged ``tag``, in order."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    found = []
    for cell in cells if isinstance(cells, list) else []:
        metadata = cell.get("metadata") if isinstance(cell, dict) else None
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
        if isinstance(tags, list) and tag in tags and cell.get("cell_type") == "markdown":
            found.append(cell)
    return found


def question_before(cells: list, answer: dict) -> str:
    """The question an answer cell (one of ``cells``, by identity) answers: the nearest markdown cell
    above it that has a heading, from its last heading line on (``"### Question 4 · Why ...?"``), or
    the nearest markdown cell above it; other answer cells are passed over; ``""`` when there is none."""
    index = next(i for i, c in enumerate(cells) if c is answer)
    answers = {id(c) for tag in (SOLUTION_CELL_TAG, ANSWER_CELL_TAG)
               for c in answer_cells({"cells": cells}, tag)}
    nearest = ""
    for cell in reversed(cells[:index]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown" or id(cell) in answers:
            continue
        lines = cell_text(cell).splitlines()
        headings = [i for i, line in enumerate(lines) if line.startswith("#")]
        if headings:
            return "\n".join(lines[headings[-1]:]).strip()
        nearest = nearest or "\n".join(lines).strip()
    return nearest
