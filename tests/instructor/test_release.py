"""The student release: markers paired, solutions replaced, signatures and docstrings kept, and
both directions of the exercise tests (solutions pass; the student version fails them with
NotImplementedError rather than an import error)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core.exercises import STUDENT, MarkerError, is_stub, regions, strip_solutions
from course_lib.instructor.release import make_release

ROOT = Path(__file__).resolve().parents[2]
B, E = "### BEGIN " + "SOLUTION", "### END " + "SOLUTION"  # split so this file holds no marker


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
    assert not (dest / "course_lib" / "instructor").exists() and not (dest / "tests" / "instructor").exists()
    assert (ROOT / "tests/cnn/hidden").is_dir() and not list(dest.glob("tests/*/hidden")), "hidden tests"
    assert (dest / "course_lib" / "core").is_dir() and len(list((dest / "notebooks").glob("*.ipynb"))) == 5
    for nb in (dest / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), nb.name


def _run_pytest(tests: list[str], cwd: Path, junit: Path) -> ET.Element:
    """``python -m pytest`` from inside ``cwd`` (its course_lib comes first on the path), as the
    student README says."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TQDM_DISABLE": "1"}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *tests],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )
    return ET.parse(junit).getroot()


def test_student_version_fails_exercise_tests_with_not_implemented(release, tmp_path):
    dest, _ = release
    tests = sorted({t for a in ASSIGNMENTS.values() for t in a.exercise_tests})
    assert tests, "no assignment names its exercise tests"
    root = _run_pytest(tests, dest, tmp_path / "student.xml")
    by_file: dict[str, int] = {t: 0 for t in tests}
    for case in root.iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is None:
            continue
        text = (problem.get("message") or "") + (problem.text or "")
        assert "ImportError" not in text and "ModuleNotFoundError" not in text, text[:500]
        assert "NotImplementedError" in text, f"{case.get('name')}: {text[:500]}"
        module = case.get("classname", "").replace(".", "/")
        for t in tests:
            if module.startswith(t[: -len(".py")]):
                by_file[t] += 1
    assert all(n > 0 for n in by_file.values()), f"student version passed every test of: {by_file}"


def test_solutions_pass_exercise_tests(tmp_path):
    tests = sorted({t for a in ASSIGNMENTS.values() for t in a.exercise_tests})
    root = _run_pytest(tests, ROOT, tmp_path / "solution.xml")
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert int(suite.get("tests")) > 0
    assert int(suite.get("failures")) == 0 and int(suite.get("errors")) == 0


def test_student_readme_lists_every_exercise_and_runs_from_inside_the_release(release):
    from course_lib.instructor.release import assignment_exercises

    dest, counts = release
    readme = (dest / "README.md").read_text(encoding="utf-8")
    files = set()
    for a in ASSIGNMENTS.values():
        exercises = assignment_exercises(a)
        assert exercises, f"{a.name} has no fenced exercise"
        for e in exercises:
            assert f"`{e.name}` in `{e.path}`" in readme
        files |= {e.path for e in exercises}
        assert f"python -m pytest {' '.join(a.exercise_tests)}" in readme
    assert files == {path for path in counts if path.endswith(".py")}  # every fenced module is listed
    assert "instructor" not in readme and "SOLUTION" not in readme
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([sys.executable, "-c", "import course_lib; print(course_lib.__file__)"],
                           cwd=dest, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(dest)), where


def test_answer_cells_become_prompts(tmp_path):
    import nbformat

    from course_lib.instructor.release import ANSWER_PROMPT, _release_notebook

    nb = nbformat.v4.new_notebook()
    question = nbformat.v4.new_markdown_cell("**Question 1.** Why share parameters?")
    answer = nbformat.v4.new_markdown_cell("Because a feature detector is useful everywhere in the image.")
    answer.metadata["tags"] = ["solution"]
    nb.cells = [question, answer]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert _release_notebook(path) == 1
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].source == "**Question 1.** Why share parameters?"
    assert cells[1].source == ANSWER_PROMPT and cells[1].metadata["tags"] == ["answer"]


def test_released_notebooks_hold_no_answers(release):
    dest, _ = release
    for nb in (dest / "notebooks").glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            assert "solution" not in cell.get("metadata", {}).get("tags", []), nb.name


def test_colab_badge_and_install_line_with_a_repo_url(tmp_path):
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    from course_lib.instructor.release import _release_notebook, colab_link, student_readme

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# 01"), params,
                nbformat.v4.new_code_cell("%load_ext autoreload\nrun = start_run(x.ASSIGNMENT, globals())")]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    url = "https://github.com/course/workbook"
    _release_notebook(path, url, "notebooks/01_x.ipynb")
    cells = nbformat.read(path, as_version=4).cells
    link = "https://colab.research.google.com/github/course/workbook/blob/main/notebooks/01_x.ipynb"
    assert colab_link(url + ".git", "notebooks/01_x.ipynb") == link and link in cells[0].source
    setup = cells[3].source
    assert f'%pip install -q "course-lib @ git+{url}"' in setup and setup.index("google.colab") < setup.index(
        "start_run")
    python = TransformerManager().transform_cell(setup)  # the magic inside the if-block is valid IPython
    compile(python, "cell", "exec")
    assert "run_line_magic('pip'" in python
    readme = student_readme(list(ASSIGNMENTS.values()), repo_url=url)
    assert readme.count("open in Colab") == len(ASSIGNMENTS)
    with pytest.raises(ValueError, match="--repo-url 'gitlab.com/x' is not valid"):
        make_release(tmp_path / "rel", repo_url="gitlab.com/x")
    assert not (tmp_path / "rel").exists()
