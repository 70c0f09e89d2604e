"""Grading a folder of hand-ins: one sandboxed working copy per submission, points, feedback, gradebook.

:func:`grade` reads every ``*.zip`` of the submissions folder (the name without ``.zip`` is the
submission's id in every output) and writes into the output folder:

- ``results/<id>.json``: everything found about one submission (:func:`grade_submission`);
- ``feedback/<id>.md``: its points per exercise, every graded test passed or failed with the failure's
  message, the public tests that carry no points, and notes (hand this file back to the student);
- ``grades.csv``, ``lms.csv``, ``answers/*.md`` (:mod:`.reports`), from all the records;
- ``logs/<id>.log``: what the test runs printed (for the instructor).

Each submission is graded in a fresh working copy (``.grading/work/<id>/``, removed afterwards) of a base
built once per batch: the release's ``course_lib`` (the instructor's code with every solution replaced
by the stub; ``course_lib/instructor`` left out) in which the assignment's exercise modules are the
instructor's modules with the student's regions spliced in (:mod:`.splice`), and the assignment's test
folder with its hidden tests. The exercise tests and the hidden tests run there, in the sandbox
(:mod:`.sandbox`); a run the watchdog stops, or that dies, is started again without the tests already
reported and the one it stopped on (that one fails with the reason), at most :data:`MAX_RUNS` times.
A submission whose zip and tests (the base's files, the points, the limits and this code) are those of
its record is not graded again, so a stopped batch resumes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from course_lib.core.data import resolve_data_root
from course_lib.core.digests import code_digest
from course_lib.core.exercises import (
    SOLUTION,
    SOLUTION_CELL_TAG,
    answer_cells,
    cell_text,
    is_unanswered,
    package_exercises,
    question_before,
    strip_solutions,
)
from course_lib.core.handin import MANIFEST
from course_lib.core.io import atomic_write_json, atomic_write_text, read_json
from course_lib.instructor.grading.archive import ArchiveRejected, read_submission
from course_lib.instructor.grading.reports import feedback_markdown, write_reports
from course_lib.instructor.grading.sandbox import RUNNER, Limits, Sandbox, check_sandbox, run_tests
from course_lib.instructor.grading.splice import splice

ROOT = Path(__file__).resolve().parents[3]
MAX_RUNS = 5
"""Test runs per submission at most (the first and the restarts after a stopped or dead run)."""
FIRST_UID = 100_000
"""A root sandbox runs submission k of the batch as user ``FIRST_UID + k``."""


class SandboxUnavailable(ValueError):
    """No sandbox can start here (the message says why and how to go on)."""


@dataclass(frozen=True)
class Question:
    """A written question: the id of its answer cell (the same in the release), its title and text, and
    the model answer."""

    id: str
    title: str
    text: str
    model: str


@dataclass(frozen=True)
class Batch:
    """What every submission of one grading shares (picklable, for the jobs)."""

    assignment: str
    out: Path
    base: Path
    modules: dict[str, str]
    """Exercise module (path in the checkout) -> the instructor's text."""
    notebook: str
    tests: tuple[tuple[str, str | None], ...]
    """(node id, exercise or None) of every test to run, as collected on the base."""
    points: dict[str, float]
    questions: tuple[Question, ...]
    limits: Limits
    digest: str
    sandbox: Sandbox | None
    data_dir: Path | None
    """The data root the tests may read (``COURSE_DATA_DIR``), if there is one."""


def safe_name(name: str) -> str:
    """A file name for a submission id: letters, digits and ``._@-`` kept, the rest ``_``."""
    return re.sub(r"[^A-Za-z0-9._@-]", "_", name).lstrip(".") or "_"


def build_base(assignment, base: Path, root: Path = ROOT) -> dict[str, str]:
    """Write the base working copy into ``base`` (replaced whole); returns its exercise modules
    (path -> the instructor's text)."""
    shutil.rmtree(base, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(root / "course_lib", base / "course_lib", ignore=ignore)
    shutil.rmtree(base / "course_lib" / "instructor")
    for path in (base / "course_lib").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if any(line.strip() == SOLUTION[0] for line in text.splitlines()):
            path.write_text(strip_solutions(text, str(path))[0], encoding="utf-8")
    for folder in {Path(t).parent for t in assignment.exercise_tests} | {hidden_folder(assignment)}:
        if (root / folder).is_dir():
            shutil.copytree(root / folder, base / folder, ignore=ignore, dirs_exist_ok=True)
        for parent in folder.parents:
            if (root / parent / "__init__.py").exists():
                shutil.copy2(root / parent / "__init__.py", base / parent / "__init__.py")
    helpers = [p.relative_to(root) for p in (root / "tests").glob("*.py") if not p.name.startswith("test_")]
    for name in (Path("conftest.py"), Path("pyproject.toml"), *helpers):  # pytest settings, fixtures
        if (root / name).exists():
            shutil.copy2(root / name, base / name)
    shutil.copy2(Path(__file__).with_name("runner.py"), base / RUNNER)
    exercises = package_exercises(root / Path(*assignment.package.split(".")), root)
    return {p: (root / p).read_text(encoding="utf-8") for p in sorted({e.path for e in exercises})}


def hidden_folder(assignment) -> Path:
    """``tests/<package>/hidden``: the assignment's instructor-only tests."""
    return Path("tests") / assignment.package.rpartition(".")[2] / "hidden"


def graded_tests(assignment, root: Path = ROOT) -> list[str]:
    """The test files and folders to run: the exercise tests and the hidden folder."""
    hidden = hidden_folder(assignment)
    return list(assignment.exercise_tests) + ([hidden.as_posix()] if (root / hidden).is_dir() else [])


def collect_tests(assignment, base: Path, limits: Limits, log: Path, data_dir: Path | None = None,
                  ) -> list[tuple[str, str | None]]:
    """(node id, exercise) of the graded tests, collected on the base (no student code: not sandboxed);
    ``ValueError`` on a collection error, a test marked for an unknown exercise, or an exercise with
    points and no marked test."""
    end = run_tests(base, graded_tests(assignment), limits, None, log, collect_only=True, data_dir=data_dir)
    errors = [f"{e.get('nodeid')}: {e.get('message', '')[-500:]}" for e in end.events
              if e.get("event") == "collect_error"]
    collected = next((e["tests"] for e in end.events if e.get("event") == "collected"), None)
    if errors or collected is None:
        why = errors or log.read_text(encoding="utf-8", errors="replace")[-800:]
        raise ValueError(f"the graded tests of {assignment.name} do not collect: {why}")
    tests = [(t["nodeid"], t["exercise"]) for t in collected]
    unknown = sorted({e for _, e in tests if e is not None and e not in assignment.points})
    unmarked = [name for name in assignment.points if all(e != name for _, e in tests)]
    if unknown or unmarked:
        raise ValueError(f"{assignment.name}: tests marked for unknown exercises {unknown}; exercises with "
                         f"points but no test marked @pytest.mark.exercise(name): {unmarked}")
    return tests


def notebook_questions(path: Path) -> list[Question]:
    """The written questions of an instructor notebook: each markdown cell tagged ``solution``."""
    notebook = read_json(path)
    found: list[Question] = []
    for cell in answer_cells(notebook, SOLUTION_CELL_TAG):
        text = question_before(notebook["cells"], cell)
        title = (text.splitlines()[0].lstrip("# ").strip() if text else "") or f"question {len(found) + 1}"
        found.append(Question(str(cell.get("id", len(found))), title, text, cell_text(cell)))
    return found


def tree_digest(folder: Path) -> str:
    """sha256 of every file of ``folder`` (relative paths and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _answers(notebook: bytes | None, questions: tuple[Question, ...],
             ) -> tuple[dict[str, str | None], list[str]]:
    """Each question's answer in a submitted notebook (``None``: unanswered or not found), and notes. An
    answer cell is matched by its id, else by its place when the notebook has as many answer cells."""
    if notebook is None:
        return {q.id: None for q in questions}, ["the notebook is not in the submission: no written answers"]
    try:
        cells = answer_cells(json.loads(notebook.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as err:
        return {q.id: None for q in questions}, [f"the notebook is not valid JSON ({err}): no written "
                                                 "answers"]
    by_id = {c.get("id"): c for c in cells}
    answers = {}
    for k, q in enumerate(questions):
        cell = by_id.get(q.id) or (cells[k] if len(cells) == len(questions) else None)
        text = cell_text(cell) if cell is not None else ""
        answers[q.id] = None if is_unanswered(text) else text
    return answers, []


def _manifest_notes(files: dict[str, bytes], assignment_id: str) -> list[str]:
    """What the manifest says that the instructor should know (no manifest is not an error)."""
    if MANIFEST not in files:
        return [f"no {MANIFEST}: the zip was not made by `python -m course_lib submit`"]
    try:
        manifest = json.loads(files[MANIFEST])
        hashes = manifest["files"]
        notes = [] if manifest["assignment"] == assignment_id else [
            f"{MANIFEST} names assignment {manifest['assignment']!r}, not {assignment_id!r}"]
    except (ValueError, KeyError, TypeError):
        return [f"{MANIFEST} is not readable"]
    for rel, data in files.items():
        if rel != MANIFEST and rel in hashes and hashes[rel] != hashlib.sha256(data).hexdigest():
            notes.append(f"{rel} changed after the hand-in (its sha256 is not the manifest's)")
    return notes


def _run_all(work: Path, batch: Batch, log: Path, uid: int | None) -> tuple[dict[str, dict], int]:
    """Run every test of ``batch``, starting again after a run that was stopped or died; the result of
    each test (outcome, message) by node id, and how many runs it took. ``RuntimeError`` when a run did
    not get as far as collecting the tests (no student code runs before: the grader's failure)."""
    todo = [nodeid for nodeid, _ in batch.tests]
    results: dict[str, dict] = {}
    collect_errors: list[str] = []
    deadline = time.monotonic() + batch.limits.timeout_s
    runs, finished = 0, False
    while todo and runs < MAX_RUNS and time.monotonic() < deadline and not finished:
        runs += 1
        end = run_tests(work, todo, batch.limits, batch.sandbox, log, timeout_s=deadline - time.monotonic(),
                        uid=uid, data_dir=batch.data_dir)
        kinds = {e.get("event") for e in end.events}
        if "collected" not in kinds:
            output = log.read_text(encoding="utf-8", errors="replace")[-1500:]
            raise RuntimeError(f"the test run did not start ({end.stopped or end.returncode}): {output}")
        collect_errors += [str(e.get("message", ""))[-800:] for e in end.events
                           if e.get("event") == "collect_error"]
        for event in end.events:
            nodeid = event.get("nodeid")
            if event.get("event") != "report" or nodeid not in todo:
                continue
            outcome = event.get("outcome")
            message = str(event.get("message", ""))
            if outcome == "skipped":
                outcome, message = "failed", f"skipped: {message}"
            if outcome != "passed" or nodeid not in results:
                results[nodeid] = {"outcome": "passed" if outcome == "passed" else "failed",
                                   "message": message}
        if end.current in todo and end.current not in results:
            why = end.stopped or f"the test process ended during this test (exit status {end.returncode})"
            results[end.current] = {"outcome": "failed", "message": why}
        todo = [n for n in todo if n not in results]
        finished = "finish" in kinds  # pytest ended its session: what it did not report, it did not run
    if collect_errors:
        reason = f"not run: its test file could not be collected:\n{collect_errors[-1]}"
    elif finished:
        reason = "not run: the test session ended before it (pytest.exit or KeyboardInterrupt in the code)"
    else:
        reason = f"not run: the test runs were stopped ({runs} runs, {batch.limits.timeout_s:g} s in all)"
    for nodeid in todo:
        results[nodeid] = {"outcome": "failed", "message": reason}
    return results, runs


def score(results: dict[str, dict], batch: Batch, problems: dict[str, str]) -> dict[str, dict]:
    """Points of each exercise: its points times the share of its marked tests passed; zero with the
    reason for an exercise whose region could not be used."""
    exercises = {}
    for name, points in batch.points.items():
        tests = [n for n, e in batch.tests if e == name]
        passed = sum(results[n]["outcome"] == "passed" for n in tests)
        earned = 0.0 if name in problems else round(points * passed / len(tests), 2)
        exercises[name] = {"points": earned, "max": points, "passed": passed, "tests": len(tests),
                           "problem": problems.get(name)}
    return exercises


def grade_submission(zip_path: Path, batch: Batch, uid: int | None = None) -> str | None:
    """Grade one submission into ``batch.out`` (record, feedback); its error (``None``: graded or
    rejected). Never raises for what is in the zip."""
    name = zip_path.stem
    safe = safe_name(name)
    started = time.monotonic()
    record: dict[str, Any] = {"submission": name, "zip": zip_path.name, "assignment": batch.assignment,
                              "zip_sha256": _sha256(zip_path),
                              "tests_digest": batch.digest, "notes": [], "tests": {}, "answers": {},
                              "sandbox": "bubblewrap" if batch.sandbox else "none (--unsafe)"}
    work = batch.out / ".grading" / "work" / safe
    log = batch.out / "logs" / f"{safe}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")
    error = None
    try:
        files, others = read_submission(zip_path, {*batch.modules, batch.notebook, MANIFEST})
        record["notes"] += _manifest_notes(files, batch.assignment)
        record["notes"] += [f"ignored (not graded): {', '.join(others[:10])}"] if others else []
        problems: dict[str, str] = {}
        spliced: dict[str, str] = {}
        stubs: list[str] = []
        for rel, instructor in batch.modules.items():
            try:
                result = splice(instructor, files[rel].decode("utf-8") if rel in files else None, rel)
            except UnicodeDecodeError as err:
                result = splice(instructor, None, rel, missing=f"is not UTF-8 text ({err.reason})")
            spliced[rel], stubs = result.text, stubs + result.stubs
            problems.update(result.problems)
            record["notes"] += result.notes
        record["answers"], notes = _answers(files.get(batch.notebook), batch.questions)
        record["notes"] += notes + [f"not implemented: {n} (its region holds only the stub)" for n in stubs]
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(batch.base, work)
        for rel, text in spliced.items():
            (work / rel).write_text(text, encoding="utf-8")
        _readable(work)
        results, record["runs"] = _run_all(work, batch, log, uid)
        record["tests"] = results
        record["exercises"] = score(results, batch, problems)
        record["status"] = "graded"
    except ArchiveRejected as err:
        record.update(status="rejected", reason=f"rejected archive: {err}",
                      exercises=score({n: {"outcome": "failed"} for n, _ in batch.tests}, batch,
                                      dict.fromkeys(batch.points, "the archive was rejected")))
    except Exception:  # the grader's own failure: recorded, graded again next time
        error = traceback.format_exc()
        record.update(status="error", reason=error.strip().splitlines()[-1], exercises={})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record["total"] = round(sum(e["points"] for e in record["exercises"].values()), 2)
    record["max_total"] = sum(batch.points.values())
    record["seconds"] = round(time.monotonic() - started, 2)
    atomic_write_json(batch.out / "results" / f"{safe}.json", record)
    if record["status"] != "error":
        atomic_write_text(batch.out / "feedback" / f"{safe}.md", feedback_markdown(record, batch.tests))
    return error


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _readable(folder: Path) -> None:
    """Every file and folder of ``folder`` readable by anyone (a root sandbox runs as another user)."""
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
                   | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0))


def _up_to_date(record_path: Path, zip_path: Path, digest: str) -> bool:
    try:
        record = read_json(record_path)
    except (OSError, ValueError):
        return False
    return (record.get("status") in ("graded", "rejected") and record.get("tests_digest") == digest
            and record.get("zip_sha256") == _sha256(zip_path))


def prepare(key: str, submissions: Path, out: Path, limits: Limits, unsafe: bool = False,
            root: Path = ROOT) -> tuple[Batch, list[Path]]:
    """Check everything before a submission runs: the points against the exercises, the sandbox, the
    tests (collected on the base); return the batch and the submissions' zips."""
    from course_lib.assignments import get_assignment

    assignment = get_assignment(key)
    if not submissions.is_dir():
        raise FileNotFoundError(f"submissions folder {submissions} does not exist")
    exercises = package_exercises(root / Path(*assignment.package.split(".")), root)
    assignment.check_points([e.name for e in exercises])
    out = out.resolve()
    data_root = resolve_data_root()
    data_dir = data_root if data_root.is_dir() else None
    sandbox = None
    if not unsafe:
        try:
            sandbox = Sandbox.for_environment([root, submissions.resolve(), out], data_dir)
            check_sandbox(sandbox, out / ".grading" / "check")
        except ValueError as err:
            raise SandboxUnavailable(f"no sandbox for the submissions' code: {err}. Grading runs untrusted "
                                     "code; only with --unsafe does it run without a sandbox, with your "
                                     "rights and your files in its reach") from None
    base = out / ".grading" / "base"
    modules = build_base(assignment, base, root)
    _readable(base)
    files = tree_digest(base)
    tests = collect_tests(assignment, base, limits, out / ".grading" / "collect.log", data_dir)
    questions = tuple(notebook_questions(root / assignment.notebook))
    digest = hashlib.sha256(json.dumps([files, assignment.points, asdict(limits),
                                        [asdict(q) for q in questions], sandbox is not None,
                                        code_digest("course_lib.instructor.grading")]).encode()).hexdigest()
    batch = Batch(assignment.id, out, base, modules, assignment.notebook.as_posix(), tuple(tests),
                  dict(assignment.points), questions, limits, digest, sandbox, data_dir)
    zips = sorted(p for p in submissions.iterdir() if p.suffix == ".zip" and p.is_file())
    return batch, zips


def grade(key: str, submissions: Path, out: Path, limits: Limits | None = None, *, unsafe: bool = False,
          executor=None, jobs: int = 1, log: Callable[[str], None] = print, root: Path = ROOT,
          ) -> dict[str, str]:
    """Grade every zip of ``submissions`` into ``out`` (see the module's docstring); the submissions
    whose grading failed, with the error (the batch goes on without them). ``executor``
    (:class:`~course_lib.instructor.executors.ExecutorOptions`): one submitit job per submission;
    ``None``: ``jobs`` submissions at once in this process (each still in its own sandbox)."""
    from course_lib.instructor.executors import run_jobs

    batch, zips = prepare(key, submissions, out, limits or Limits(), unsafe, root)
    if unsafe:
        log("warning: grading WITHOUT a sandbox (--unsafe): the submissions' code runs with your rights")
    names = [safe_name(z.stem) for z in zips]
    clashes = {n for n in names if names.count(n) > 1}
    if clashes:
        raise ValueError(f"submissions {sorted(clashes)} share a file name once made safe; rename them")
    tasks = {}
    for k, zip_path in enumerate(zips):
        if _up_to_date(batch.out / "results" / f"{names[k]}.json", zip_path, batch.digest):
            log(f"[{zip_path.stem}] graded before with the same zip and tests: skipped")
            continue
        uid = FIRST_UID + k if batch.sandbox is not None and batch.sandbox.as_root else None
        tasks[zip_path.stem] = partial(grade_submission, zip_path, batch, uid)
    if executor is None:
        failed = {}
        with ThreadPoolExecutor(jobs) as pool:
            for name, error in zip(tasks, pool.map(lambda task: task(), tasks.values()), strict=True):
                if error:
                    failed[name] = error
                log(f"[{name}] {'FAILED: ' + error.strip().splitlines()[-1] if error else 'graded'}")
    else:
        ends = run_jobs(executor, batch.out / ".grading" / "submitit", tasks, name="grade", log=log)
        failed = {name: end.error for name, end in ends.items() if end.error}
    write_reports(batch.out, [read_json(batch.out / "results" / f"{n}.json") for n in names
                              if (batch.out / "results" / f"{n}.json").exists()], batch)
    shutil.rmtree(batch.out / ".grading" / "work", ignore_errors=True)
    return failed
