"""The student release: markers paired, solutions replaced, signatures and docstrings kept, both
directions of the exercise tests (solutions pass; the student version fails them with
NotImplementedError rather than an import error), every exercise test marked with its exercise, the
exercises checkable in order, and a self-contained release (its LICENSE, only the student extra, tests
that run inside it, nothing named that it does not ship)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core.check import exercises_by_name
from course_lib.core.exercises import STUDENT, MarkerError, is_stub, regions, strip_solutions
from course_lib.core.folders import NotOurFolder, foreign_files
from course_lib.instructor import cli
from course_lib.instructor.release import (
    INSTRUCTOR_ONLY,
    STUDENT_EXTRA,
    assignment_exercises,
    make_release,
    release_pyproject,
    student_requirements,
    unshipped_references,
)

from .student import solve

ROOT = Path(__file__).resolve().parents[2]
B, E = "### BEGIN " + "SOLUTION", "### END " + "SOLUTION"  # split so this file holds no marker
EXERCISE_TESTS = sorted({t for a in ASSIGNMENTS.values() for t in a.exercise_tests})


def test_strip_solutions_keeps_signature_and_docstring():
    src = f'def f(x):\n    """Doc (N, D)."""\n    {B}\n    y = x + 1\n    return y\n    {E}\n'
    text, n = strip_solutions(src)
    assert n == 1
    assert text.splitlines() == [
        "def f(x):",
        '    """Doc (N, D)."""',
        f"    {STUDENT[0]}",
        '    raise NotImplementedError("exercise: write your solution here")',
        f"    {STUDENT[1]}",
    ]
    (region,) = regions(text)["f"]
    assert is_stub(region)
    namespace: dict = {}
    exec(text, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


@pytest.mark.parametrize("src, message", [
    (f"{B}\nx = 1\n", "never closed"),
    (f"x = 1\n{E}\n", "without"),
    (f"{B}\n{B}\n{E}\n", "inside the block"),
])
def test_unpaired_markers_name_the_line(src, message):
    with pytest.raises(MarkerError, match=message):
        strip_solutions(src, "mod.py")


def _functions(path: Path) -> dict[str, str | None]:
    """Signature -> docstring of module-level functions and methods (helpers nested in a solution
    may go with it)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    nodes = body + [n for c in body if isinstance(c, ast.ClassDef) for n in c.body]
    return {
        f"{node.name}({ast.unparse(node.args)})": ast.get_docstring(node)
        for node in nodes if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    dest = tmp_path_factory.mktemp("rel") / "release"
    return dest, make_release(dest)


def test_release_tree(release):
    dest, counts = release
    assert counts, "no exercise was fenced anywhere"
    for a in ASSIGNMENTS.values():
        assert a.exercise_tests, f"{a.name} names no exercise tests"
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".ipynb"}:
            text = path.read_text(encoding="utf-8")
            assert B not in text and E not in text, path
    for rel in counts:
        if rel.endswith(".py"):
            assert _functions(ROOT / rel) == _functions(dest / rel), f"{rel}: signatures/docstrings"
            assert "NotImplementedError" in (dest / rel).read_text()
    assert not [name for name in INSTRUCTOR_ONLY if list(dest.glob(name))]
    assert (dest / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert (dest / "conftest.py").is_file() and (dest / "course_lib" / "core" / "check.py").is_file()
    assert (ROOT / "tests/cnn/hidden").is_dir() and not list(dest.glob("tests/*/hidden")), "hidden tests"
    assert (dest / "course_lib" / "core").is_dir() and len(list((dest / "notebooks").glob("*.ipynb"))) == 5
    for nb in (dest / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), nb.name


def _python_env() -> dict[str, str]:
    """The environment of a student's shell: no PYTHONPATH (the folder's own course_lib is used)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TQDM_DISABLE": "1"}


def _run_pytest(tests: list[str], cwd: Path, junit: Path) -> ET.Element:
    """``python -m pytest`` from inside ``cwd`` (its course_lib comes first on the path), as the
    student README says."""
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval",
         f"--junitxml={junit}", *tests],
        cwd=cwd, env=_python_env(), capture_output=True, text=True, timeout=900,
    )
    return ET.parse(junit).getroot()


COLLECT = '''
import json, sys
import pytest
from course_lib.core.exercise_marker import marked_exercises

class Collector:
    def pytest_collection_modifyitems(self, items):
        self.marked = {item.nodeid: sorted(marked_exercises(item)) for item in items}

collector = Collector()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[2:]], plugins=[collector])
open(sys.argv[1], "w").write(json.dumps(collector.marked))
sys.exit(code)
'''


def _marked(cwd: Path, tests: list[str], out: Path) -> dict[str, list[str]]:
    """{test id: the exercises it is marked with} of ``tests``, collected inside ``cwd``."""
    done = subprocess.run([sys.executable, "-c", COLLECT, str(out), *tests], cwd=cwd, env=_python_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def _node_id(case: ET.Element) -> str:
    """The pytest id of a JUnit test case of a module-level test function."""
    return f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"


def test_every_exercise_has_tests_marked_with_it_and_every_mark_names_one(tmp_path):
    marked = _marked(ROOT, EXERCISE_TESTS, tmp_path / "marked.json")
    for a in ASSIGNMENTS.values():
        names = {e.name for e in assignment_exercises(a)}
        in_files = [(test, set(exercises)) for test, exercises in marked.items()
                    if test.split("::")[0] in a.exercise_tests]
        unknown = {test: sorted(exercises - names) for test, exercises in in_files if exercises - names}
        assert not unknown, f"{a.name}: tests marked with no exercise of the assignment: {unknown}"
        untested = names - set().union(*(exercises for _, exercises in in_files))
        assert not untested, f"{a.name}: no test is marked @pytest.mark.exercise({sorted(untested)})"


def test_student_version_fails_exercise_tests_with_not_implemented(release, tmp_path):
    dest, _ = release
    assert EXERCISE_TESTS, "no assignment names its exercise tests"
    root = _run_pytest(EXERCISE_TESTS, dest, tmp_path / "student.xml")
    marked = _marked(dest, EXERCISE_TESTS, tmp_path / "marked.json")
    by_file: dict[str, int] = {t: 0 for t in EXERCISE_TESTS}
    unmarked = []
    for case in root.iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is None:
            continue
        text = (problem.get("message") or "") + (problem.text or "")
        assert "ImportError" not in text and "ModuleNotFoundError" not in text, text[:500]
        assert "NotImplementedError" in text, f"{case.get('name')}: {text[:500]}"
        node = _node_id(case)
        assert node in marked, node
        if not marked[node]:
            unmarked.append(node)  # check(name) would never run it
        by_file[node.split("::")[0]] += 1
    assert all(n > 0 for n in by_file.values()), f"student version passed every test of: {by_file}"
    assert not unmarked, f"tests that need an exercise but are marked with none: {unmarked}"


def test_solutions_pass_exercise_tests(tmp_path):
    root = _run_pytest(EXERCISE_TESTS, ROOT, tmp_path / "solution.xml")
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert int(suite.get("tests")) > 0
    assert int(suite.get("failures")) == 0 and int(suite.get("errors")) == 0


IN_ORDER = """
import contextlib, io, json, sys
from pathlib import Path

import pytest

steps, tests = json.loads(Path(sys.argv[1]).read_text()), sys.argv[2:]
failed = {}
for name, path, text in steps:  # write exercise k, then run the tests marked with it
    Path(path).write_text(text)
    for module in [m for m in sys.modules if m.split(".")[0] in ("course_lib", "tests", "conftest")]:
        del sys.modules[module]  # the next run imports what is written now
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = pytest.main(["-q", "--tb=line", "-rfE", "-p", "no:cacheprovider", "--exercise", name, *tests])
    if code != 0:
        failed[name] = out.getvalue()[-1500:]
Path(sys.argv[1]).write_text(json.dumps(failed))
"""


@pytest.mark.notebook  # slow: one pytest session per exercise (one Python per assignment)
def test_each_exercise_passes_its_check_once_it_and_those_before_it_are_written(release, tmp_path):
    """In the order the student README gives, exercise k's tests pass with exercises 1..k written (a
    test marked with k needs no later exercise)."""
    dest, _ = release
    failures = {}
    for a in ASSIGNMENTS.values():
        scratch, copy = tmp_path / f"{a.name}-scratch", tmp_path / a.name
        shutil.copytree(dest, scratch)
        shutil.copytree(dest, copy)
        steps = []
        for exercise in assignment_exercises(a, scratch):
            solve(scratch, exercise)  # the module's text with exercises 1..k written
            steps.append((exercise.name, exercise.path, (scratch / exercise.path).read_text()))
        plan = tmp_path / f"{a.name}.json"
        plan.write_text(json.dumps(steps))
        done = subprocess.run([sys.executable, "-c", IN_ORDER, str(plan), *a.exercise_tests], cwd=copy,
                              env=_python_env(), capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        failures |= {f"{a.name}: {name}": output for name, output in json.loads(plan.read_text()).items()}
    assert not failures, "tests that fail with the exercises up to theirs written:\n" + "\n".join(
        f"{step}\n{output}" for step, output in failures.items())


def test_shipped_tests_collect_inside_the_release(release):
    dest, _ = release
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "-p", "no:nbval"],
                          cwd=dest, env=_python_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and " error" not in done.stdout.splitlines()[-1], done.stdout[-3000:]
    assert "workbook.py" not in done.stdout and "test_notebooks.py" not in done.stdout


SCANNED = ["README.md", "tests/", "course_lib/", "top-level files",
           *(a.notebook.as_posix() for a in ASSIGNMENTS.values())]


@pytest.fixture(scope="module")
def unshipped(release) -> list:
    dest, _ = release
    return unshipped_references(dest)


@pytest.mark.parametrize("group", SCANNED)
def test_release_names_nothing_it_does_not_ship(unshipped, group):
    def in_group(path: str) -> bool:
        if group == "top-level files":
            return "/" not in path and path != "README.md"
        return path.startswith(group) if group.endswith("/") else path == group

    found = [str(r) for r in unshipped if in_group(r.path)]
    assert not found, "the release names what it does not ship:\n" + "\n".join(found)


def test_the_scan_finds_tools_files_paths_and_modules(tmp_path):
    (tmp_path / "course_lib").mkdir()
    (tmp_path / "course_lib" / "__main__.py").write_text("")
    (tmp_path / "notebooks").mkdir()
    cells = [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": "Run `nox -s sweep -- lm`."},
             {"cell_type": "code", "id": "b", "metadata": {}, "source": "# see benchmarks/lm_reference.py\n"
              "# python -m course_lib data list\n# python -m course_lib.instructor run\n# papermill x"}]
    (tmp_path / "notebooks" / "n.ipynb").write_text(json.dumps({"cells": cells}))
    (tmp_path / "README.md").write_text("python3 workbook.py -s run\nsee https://pytorch.org/docs/stable\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text('PATH = "notebooks/91_toy.ipynb"  # a made-up path\n')
    found = {(r.path, r.where, r.name) for r in unshipped_references(tmp_path, {"papermill"})}
    assert found == {
        ("notebooks/n.ipynb", "cell 0 (id a, markdown)", "nox"),
        ("notebooks/n.ipynb", "cell 1 (id b, code)", "benchmarks/lm_reference.py"),
        ("notebooks/n.ipynb", "cell 1 (id b, code)", "course_lib.instructor"),
        ("notebooks/n.ipynb", "cell 1 (id b, code)", "python -m course_lib.instructor"),
        ("notebooks/n.ipynb", "cell 1 (id b, code)", "papermill"),
        ("README.md", "line 1", "workbook.py"),
    }


DEV_ONLY = '''[project]
name = "course-lib"
version = "0.1.0"
license-files = ["LICENSE"]
# Ranges: constraints.txt holds the exact versions.
# LICENSE says the terms.
dependencies = ["torch>=2.2"]

[project.optional-dependencies]
dev = ["pytest>=8", "nbval>=0.11", "ipykernel>=6.29", "jupyterlab>=4.1", "nox>=2024.10.9", "ruff>=0.6"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 110

[tool.ruff.lint]
select = ["E"]
'''
SPLIT = DEV_ONLY.replace(
    'dev = ["pytest>=8", "nbval>=0.11", "ipykernel>=6.29", "jupyterlab>=4.1", "nox>=2024.10.9", "ruff>=0.6"]',
    'student = [\n    "pytest>=8",\n    "jupyterlab>=4.1",\n    "nbformat>=5.10",\n]\n'
    'instructor = ["nbval>=0.11", "nox>=2024.10.9", "papermill>=2.6"]')


@pytest.mark.parametrize("source, student, instructor", [
    (DEV_ONLY, ["pytest>=8", "ipykernel>=6.29", "jupyterlab>=4.1"], {"nbval", "nox", "ruff"}),
    (SPLIT, ["pytest>=8", "jupyterlab>=4.1", "nbformat>=5.10"], {"nbval", "nox", "papermill"}),
])
def test_release_pyproject_offers_only_the_student_extra(tmp_path, source, student, instructor):
    (tmp_path / "LICENSE").write_text("MIT")
    assert student_requirements(tomllib.loads(source)) == (student, instructor)
    released = release_pyproject(source, tmp_path)
    parsed = tomllib.loads(released)
    assert parsed["project"]["optional-dependencies"] == {"student": student}
    assert "ruff" not in parsed["tool"] and parsed["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    assert "constraints.txt" not in released and "# LICENSE says the terms." in released


def test_released_pyproject_and_environment(release):
    dest, _ = release
    pyproject = tomllib.loads((dest / "pyproject.toml").read_text())
    assert list(pyproject["project"]["optional-dependencies"]) == ["student", "peers"]
    _, instructor = student_requirements(tomllib.loads((ROOT / "pyproject.toml").read_text()))
    environment = (dest / "environment.yml").read_text()
    assert instructor and not [p for p in instructor if f"- {p}" in environment]
    assert f"-e .[{STUDENT_EXTRA}]" in environment and "constraints.txt" not in environment  # not shipped


def test_student_readme_lists_every_exercise_with_its_check_and_runs_from_inside_the_release(release):
    dest, counts = release
    readme = (dest / "README.md").read_text(encoding="utf-8")
    files = set()
    for a in ASSIGNMENTS.values():
        exercises = assignment_exercises(a)
        assert exercises, f"{a.name} has no fenced exercise"
        for e in exercises:
            assert f"`{e.name}` in `{e.path}`: `check(\"{e.name}\")`" in readme
        files |= {e.path for e in exercises}
        assert f"python -m pytest {' '.join(a.exercise_tests)}" in readme
    assert files == {path for path in counts if path.endswith(".py")}  # every fenced module is listed
    assert "from course_lib import check" in readme and "--exercise make_vectorizer" in readme
    assert "python -m course_lib submit" in readme and "[student]" in readme
    assert "instructor" not in readme and "SOLUTION" not in readme and "Colab" not in readme
    assert "Answer its 6 questions" in readme  # 02's
    where = subprocess.run([sys.executable, "-c", "import course_lib; print(course_lib.__file__)"],
                           cwd=dest, env=_python_env(), capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(dest)), where


def test_released_notebooks_hold_no_answers(release):
    dest, _ = release
    for a in ASSIGNMENTS.values():
        source = json.loads((ROOT / a.notebook).read_text())["cells"]
        cells = json.loads((dest / a.notebook).read_text())["cells"]
        assert [c["id"] for c in cells] == [c["id"] for c in source]
        for before, after in zip(source, cells, strict=True):
            tags = after.get("metadata", {}).get("tags", [])
            assert "solution" not in tags, a.name
            assert ("answer" in tags) == ("solution" in before.get("metadata", {}).get("tags", [])), a.name


def test_answer_cells_become_prompts(tmp_path):
    import nbformat

    from course_lib.core.exercises import ANSWER_PROMPT, CODE_PROMPT
    from course_lib.instructor.release import _release_notebook

    nb = nbformat.v4.new_notebook()
    question = nbformat.v4.new_markdown_cell("**Question 1.** Why share parameters? Plot the filters.")
    code = nbformat.v4.new_code_cell("plot_filters(model)")
    code.metadata["tags"] = ["solution"]
    code.outputs = [nbformat.v4.new_output("stream", text="a figure")]
    answer = nbformat.v4.new_markdown_cell("Because a feature detector is useful everywhere in the image.")
    answer.metadata["tags"] = ["solution"]
    nb.cells = [question, code, answer]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert _release_notebook(path) == 2
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].source == question.source
    assert cells[1].source == CODE_PROMPT and not cells[1].outputs and cells[1].metadata["tags"] == ["answer"]
    assert cells[2].source == ANSWER_PROMPT and cells[2].metadata["tags"] == ["answer"]


def test_colab_badge_and_setup_cell_with_a_repo_url_and_ref(tmp_path):
    import nbformat

    from course_lib.instructor.release import _release_notebook, colab_link, student_readme

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# 01"), params,
                nbformat.v4.new_code_cell("%load_ext autoreload\nrun = start_run(x.ASSIGNMENT, globals())")]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    url = "https://github.com/course/workbook"
    _release_notebook(path, url, "v1.0", "notebooks/01_x.ipynb")
    cells = nbformat.read(path, as_version=4).cells
    link = "https://colab.research.google.com/github/course/workbook/blob/v1.0/notebooks/01_x.ipynb"
    assert colab_link(url + ".git", "notebooks/01_x.ipynb", "v1.0") == link and link in cells[0].source
    assert [c.get("id") for c in cells[:1] + cells[3:4]] == ["open-in-colab", "colab-setup"]
    setup = cells[3].source
    assert f"!git clone -q {url} " in setup and "checkout -q v1.0" in setup
    assert '%pip install -q -e "{workbook}[student]"' in setup and "%cd {workbook}" in setup
    assert "start_run" in cells[4].source and cells[2].metadata["tags"] == ["parameters"]
    readme = student_readme(list(ASSIGNMENTS.values()), repo_url=url, ref="v1.0")
    assert readme.count("open in Colab") == len(ASSIGNMENTS) and "/blob/v1.0/" in readme
    assert "on_drive = True" in readme and "/content/workbook" in readme
    with pytest.raises(ValueError, match="--repo-url 'gitlab.com/x' is not valid"):
        make_release(tmp_path / "rel", repo_url="gitlab.com/x", ref="v1")
    with pytest.raises(ValueError, match="--repo-url needs --ref TAG_OR_COMMIT"):
        make_release(tmp_path / "rel", repo_url=url)
    with pytest.raises(ValueError, match="--ref '-x; rm' is not valid"):
        make_release(tmp_path / "rel", repo_url=url, ref="-x; rm")
    assert not (tmp_path / "rel").exists()


def test_exercise_names_are_unique_across_assignments():
    names = [e.name for a in ASSIGNMENTS.values() for e in assignment_exercises(a)]
    assert len(names) == len(set(names)) == len(exercises_by_name())


def test_the_release_command_needs_a_ref_with_a_repo_url(tmp_path, capsys):
    from course_lib.instructor import cli

    url = "https://github.com/course/workbook"
    assert cli.main(["release", "--dest", str(tmp_path / "rel"), "--repo-url", url]) == 2
    assert "--repo-url needs --ref TAG_OR_COMMIT" in capsys.readouterr().err
    assert not (tmp_path / "rel").exists()


# --- where the release writes ------------------------------------------------------------------------------


@pytest.mark.fault("clear_error")
def test_release_into_a_checkout_is_refused_and_deletes_nothing(tmp_path, capsys):
    checkout = tmp_path / "checkout"
    for name in (".git/HEAD", "noxfile.py", "course_lib/instructor/cli.py", "NOTES.md"):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(f"{name} stays")
    before = sorted(p.relative_to(checkout) for p in checkout.rglob("*"))
    assert cli.main(["release", "--dest", str(checkout)]) == 2
    err = capsys.readouterr().err
    assert f"{checkout} is not empty and was not made by this tool" in err
    assert ".git/, NOTES.md, course_lib/, noxfile.py" in err and "(--dest)" in err
    assert sorted(p.relative_to(checkout) for p in checkout.rglob("*")) == before
    assert (checkout / "NOTES.md").read_text() == "NOTES.md stays"
    assert [p.name for p in tmp_path.iterdir()] == ["checkout"]  # no temporary folder left beside it


@pytest.mark.fault("clear_error")
def test_release_into_a_clone_of_the_published_repository_is_refused(tmp_path, capsys):
    clone = tmp_path / "published"
    for name in (".git/config", "LICENSE", ".github/workflows/ci.yml"):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text("kept")
    url = "https://github.com/teacher/dl-course"
    assert cli.main(["release", "--dest", str(clone), "--repo-url", url, "--ref", "v1"]) == 2
    assert ".git/, .github/, LICENSE" in capsys.readouterr().err
    assert (clone / "LICENSE").read_text() == "kept" and (clone / ".git" / "config").exists()


@pytest.mark.fault("clear_error")
def test_release_inside_a_folder_it_copies_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"lies inside .*course_lib, which the release copies"):
        make_release(ROOT / "course_lib" / "release-here")
    assert not (ROOT / "course_lib" / "release-here").exists()


@pytest.mark.fault("clear_error")
def test_a_rerelease_over_student_work_is_refused_then_replaces_a_clean_release(release, tmp_path):
    first, _ = release
    dest = tmp_path / "release"
    shutil.copytree(first, dest)  # the release as it was written (its marker lists every file)
    notebook = dest / "notebooks" / "03_language_models.ipynb"
    answer = notebook.read_text() + " "
    notebook.write_text(answer)  # a student's edit
    (dest / "my_notes.md").write_text("notes")
    (dest / "course_lib" / "__pycache__").mkdir(exist_ok=True)  # from running the tests: not work
    (dest / "course_lib" / "__pycache__" / "x.pyc").write_bytes(b"0")
    with pytest.raises(NotOurFolder) as err:
        make_release(dest)
    text = str(err.value)
    assert "edited since the last release: notebooks/03_language_models.ipynb" in text
    assert "added since the last release: my_notes.md" in text and "pyc" not in text
    assert notebook.read_text() == answer and (dest / "my_notes.md").exists()
    (dest / "my_notes.md").unlink()  # the student's work moved out: the release replaces the folder
    shutil.copy2(first / "notebooks" / "03_language_models.ipynb", notebook)
    make_release(dest)
    assert foreign_files(dest) == {} and not (dest / "course_lib" / "__pycache__").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]
