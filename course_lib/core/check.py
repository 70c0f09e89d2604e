"""``check("zero_pad")``: run one exercise's tests from a notebook and say which pass, and why not.

An exercise's tests are the tests of its assignment's ``exercise_tests`` files that carry
``@pytest.mark.exercise("zero_pad")`` (:mod:`course_lib.core.exercise_marker`). They run in a fresh
``python -m pytest`` started in the workbook's root (the folder holding ``course_lib/`` and ``tests/``:
the instructor's checkout, the student release, or its copy on Colab), so they test the code as it is
saved now, whatever the notebook's kernel imported before. The same tests from a terminal, in that
folder: ``python -m pytest tests/cnn/test_numpy_conv.py --exercise zero_pad``.

The printed lines hold no timings and no paths of this machine, so a recorded check compares equal
on any machine::

    ok    test_zero_pad_reference
    FAIL  test_pool_forward_reference[pool_forward]
            NotImplementedError: exercise: write your solution here
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from course_lib.core.assignment import Assignment
from course_lib.core.exercises import Exercise, find_exercises

ROOT = Path(__file__).resolve().parents[2]
"""The workbook's root: the folder that holds this ``course_lib`` package and, beside it, ``tests/``."""
MESSAGE_LINES = 8
"""At most this many lines of a failure's message are printed (pytest's ``E`` lines)."""
PLUGIN = "course_lib.core.exercise_marker"


@dataclass(frozen=True)
class Outcome:
    """One test's result: its name (with its parameters, e.g. ``test_pool_forward_reference[pool_forward]``),
    ``"passed"``, ``"failed"``, ``"error"`` or ``"skipped"``, and the message of a failure or skip."""

    name: str
    outcome: str
    message: str = ""


@dataclass(frozen=True)
class CheckResult:
    """The tests of one exercise. Its ``repr`` is the summary a notebook shows:
    ``zero_pad: 4 of 4 tests pass``."""

    exercise: str
    tests: tuple[Outcome, ...]

    @property
    def n_passed(self) -> int:
        return sum(t.outcome == "passed" for t in self.tests)

    @property
    def n_total(self) -> int:
        return len(self.tests)

    @property
    def passed(self) -> bool:
        """Whether at least one test passed and none failed (skipped tests neither pass nor fail)."""
        return self.n_passed > 0 and all(t.outcome in ("passed", "skipped") for t in self.tests)

    def __repr__(self) -> str:
        skipped = sum(t.outcome == "skipped" for t in self.tests)
        tail = f" ({skipped} skipped)" if skipped else ""
        return f"{self.exercise}: {self.n_passed} of {self.n_total} tests pass{tail}"

    def report(self) -> str:
        """One line per test, each failure followed by its message, indented."""
        label = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}
        lines = []
        for t in self.tests:
            lines.append(f"{label[t.outcome]:5s} {t.name}")
            lines += [f"        {line}" for line in t.message.splitlines()]
        return "\n".join(lines)


def assignment_exercises(assignment, root: Path = ROOT) -> list[Exercise]:
    """``assignment``'s exercises in the order its notebook first names them (the rest in file order)."""
    folder = root / Path(*assignment.package.split("."))
    exercises = [e for path in sorted(folder.rglob("*.py")) for e in find_exercises(path, root)]
    notebook = (root / assignment.notebook).read_text(encoding="utf-8")

    def first_mention(e: Exercise) -> int:
        at = notebook.find(e.name)
        return at if at >= 0 else len(notebook)

    return sorted(exercises, key=first_mention)


def exercises_by_name(root: Path = ROOT) -> dict[str, tuple[Assignment, Exercise]]:
    """Every exercise of the five assignments by name, with its assignment, in the assignments' order."""
    from course_lib.assignments import ASSIGNMENTS

    return {e.name: (a, e) for a in ASSIGNMENTS.values() for e in assignment_exercises(a, root)}


def _message(problem: ET.Element, root: Path) -> str:
    """pytest's ``E`` lines of a failure (the exception and the assertion's explanation), else its
    message attribute; paths under ``root`` made relative."""
    text = problem.text or ""
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if not lines:
        lines = (problem.get("message") or "").splitlines()
    lines = [line for line in lines if line.strip()]
    if len(lines) > MESSAGE_LINES:
        lines = lines[:MESSAGE_LINES] + ["..."]
    return "\n".join(lines).replace(f"{root}{os.sep}", "")


def _outcomes(junit: Path, root: Path) -> tuple[Outcome, ...]:
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for kind in ("failure", "error", "skipped"):
            problem = case.find(kind)
            if problem is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                message = problem.get("message", "") if kind == "skipped" else _message(problem, root)
                found.append(Outcome(case.get("name", ""), outcome, message))
                break
        else:
            found.append(Outcome(case.get("name", ""), "passed"))
    return tuple(found)


def run_exercise_tests(name: str, root: Path = ROOT, timeout: float = 900) -> CheckResult:
    """Run the tests of exercise ``name`` (see the module's docstring) in a fresh pytest in ``root``;
    ``ValueError`` listing the valid names when ``name`` is none, ``SyntaxError`` naming the file and
    line when a module of the exercises does not parse."""
    try:
        exercises = exercises_by_name(root)
    except SyntaxError as err:  # the student's module does not parse: say where, without a traceback
        where = Path(err.filename or "?").resolve()
        where = where.relative_to(root) if where.is_relative_to(root) else where
        raise SyntaxError(f"{where}:{err.lineno}: {err.msg}: {(err.text or '').strip()} "
                          "(fix it, then check again)") from None
    if name not in exercises:
        raise ValueError(f"unknown exercise {name!r}; choose one of {list(exercises)} (an exercise is "
                         "found by its ### YOUR CODE BEGINS / ### YOUR CODE ENDS lines: keep them)")
    assignment, _ = exercises[name]
    missing = [t for t in assignment.exercise_tests if not (root / t).is_file()]
    if missing:
        raise FileNotFoundError(f"the tests of {name!r} are not in {root}: {missing} missing; use the "
                                "workbook's own folder (installed with pip install -e .), which holds tests/")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        # nbval (the instructor's, when installed) is not needed here and takes seconds to import
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval",
                   "-p", PLUGIN, f"--junitxml={junit}", "--exercise", name, *assignment.exercise_tests]
        try:
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the tests of {name!r} ran longer than {timeout} s") from None
        tests = _outcomes(junit, root) if junit.is_file() else ()
    if not tests:
        output = (done.stdout + done.stderr).replace(f"{root}{os.sep}", "")
        raise RuntimeError(f"no test of {name!r} ran (pytest exit code {done.returncode}):\n"
                           + "\n".join(output.splitlines()[-20:]))
    return CheckResult(name, tests)


def check(name: str) -> CheckResult:
    """Run exercise ``name``'s tests (e.g. ``check("zero_pad")``), print one line per test with each
    failure's message, and return the result (shown as ``zero_pad: 4 of 4 tests pass``)."""
    result = run_exercise_tests(name)
    print(result.report())
    return result
