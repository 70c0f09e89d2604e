"""The student's regions put in place of the instructor's solutions, every other line the instructor's.

:func:`splice` takes an instructor module (solutions fenced by ``### BEGIN/END SOLUTION``) and the
student's version of it (regions fenced by ``### YOUR CODE BEGINS/ENDS``) and pairs the k-th student
region of a function with the k-th solution block of the same function
(:func:`course_lib.core.exercises.regions`). A function whose regions do not pair up (markers removed,
added or moved to another function), or whose region does not parse in place, keeps the release's stub
(``raise NotImplementedError``) and gets a problem: zero for that exercise, with the reason. In a module
that does not parse, the regions are paired with the solutions by their order in the file (each checked
in place). A module that is missing, is not UTF-8, has unpaired marker lines, or does not parse and has
another number of regions gives every one of its exercises a problem. Lines the student changed outside
the regions are reported, and not used.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field

from course_lib.core.exercises import (
    SOLUTION,
    STUB,
    STUDENT,
    Region,
    fenced_regions,
    is_stub,
    regions,
    strip_solutions,
)


@dataclass
class Spliced:
    """The module to grade, the problem of each exercise that keeps the stub, the exercises whose
    region holds only the stub, and notes for the feedback."""

    text: str
    problems: dict[str, str] = field(default_factory=dict)
    stubs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _replace(source: str, blocks: list[tuple[Region, str]]) -> str:
    """``source`` with each region's lines replaced by its new text, and the instructor's fence lines by
    the student's (so that the lines are numbered as in the student's file)."""
    lines = source.splitlines(keepends=True)
    for region, text in sorted(blocks, key=lambda b: b[0].first, reverse=True):
        lines[region.first - 1: region.last] = [text if not text or text.endswith("\n") else text + "\n"]
        for at, fence in ((region.first - 2, 0), (region.first, 1)):
            if lines[at].strip() == SOLUTION[fence]:
                lines[at] = lines[at].replace(SOLUTION[fence], STUDENT[fence])
    return "".join(lines)


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _outside_changes(student: str, theirs: dict[str, list[Region]], instructor: str, where: str,
                     ) -> list[str]:
    """A note when the student's lines outside the regions differ from the release's, with the first one."""
    stubbed = _replace(student, [(r, f"{r.indent}{STUB}\n") for rs in theirs.values() for r in rs])
    released, _ = strip_solutions(instructor, where)
    if stubbed == released:
        return []
    lines = difflib.unified_diff(released.splitlines(), stubbed.splitlines(), lineterm="", n=0)
    diff = [line for line in lines if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    first = diff[0] if diff else ""
    return [f"{where}: lines outside your YOUR CODE regions differ from the release and were not used "
            f"(the release's lines were), e.g. {first[:120]!r}"]


def _student_regions(student: str, where: str, solutions: dict[str, list[Region]],
                     ) -> dict[str, list[Region]]:
    """The student's regions by exercise; in a module that does not parse, paired with the solutions
    by their order in the file when there are as many (each is then checked in place), else the
    ``SyntaxError``."""
    try:
        return regions(student, where, fence=STUDENT)
    except SyntaxError:
        blocks = fenced_regions(student, STUDENT, where)
        order = sorted((r.first, name) for name, rs in solutions.items() for r in rs)
        if len(blocks) != len(order):
            raise
        theirs: dict[str, list[Region]] = {}
        for (_, name), block in zip(order, blocks, strict=True):
            theirs.setdefault(name, []).append(block)
        return theirs


def splice(instructor: str, student: str | None, where: str, missing: str = "is not in the submission",
           ) -> Spliced:
    """The instructor module ``instructor`` with the regions of ``student`` (``None``: not usable, for
    the reason ``missing``)."""
    solutions = regions(instructor, where, fence=SOLUTION)
    stub_of = {name: [(r, f"{r.indent}{STUB}\n") for r in rs] for name, rs in solutions.items()}
    everything_stubbed = _replace(instructor, [b for bs in stub_of.values() for b in bs])
    if student is None:
        reason = f"{where} {missing}"
        return Spliced(everything_stubbed, {name: reason for name in solutions})
    try:
        theirs = _student_regions(student, where, solutions)
    except (SyntaxError, ValueError) as err:  # ValueError: null bytes, or marker lines that do not pair
        reason = (f"{where}:{err.lineno}: does not parse ({err.msg})" if isinstance(err, SyntaxError)
                  else str(err))
        return Spliced(everything_stubbed, {name: reason for name in solutions})
    result = Spliced("")
    blocks: list[tuple[Region, str]] = []
    for name, mine in solutions.items():
        given = theirs.get(name, [])
        if len(given) != len(mine):
            result.problems[name] = (f"{where}: {name} has {len(given)} {STUDENT[0]!r} region(s), the "
                                     f"release has {len(mine)}: the marker lines were removed, added or "
                                     "moved")
        elif not _parses(_replace(instructor, [b for other, bs in stub_of.items() if other != name
                                               for b in bs] + list(zip(mine, [g.text for g in given],
                                                                       strict=True)))):
            result.problems[name] = (f"{where}: the code of {name} does not parse in place (is it indented "
                                     "as the release's stub?)")
        else:
            blocks += [(s, g.text) for s, g in zip(mine, given, strict=True)]
            if all(is_stub(g) for g in given):
                result.stubs.append(name)
            continue
        blocks += stub_of[name]
    result.text = _replace(instructor, blocks)
    if not _parses(result.text):  # regions that parse one by one but not together: grade none of them
        return Spliced(everything_stubbed, {name: f"{where}: the regions do not parse together"
                                            for name in solutions})
    result.notes = _outside_changes(student, theirs, instructor, where)
    return result
