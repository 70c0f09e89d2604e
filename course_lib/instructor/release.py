"""Student release: solutions out, signatures and docstrings kept, outputs cleared, a student README.

Exercise code is fenced inside function bodies by ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines,
in ``course_lib`` modules and in notebook code cells; written answers are markdown cells tagged
``solution``. :func:`make_release` writes a copy of the workbook (``course_lib/``, ``notebooks/``,
``tests/``, ``pyproject.toml``, ``environment.yml``) in which every fenced block becomes
``raise NotImplementedError(...)``, every answer cell a prompt to answer, notebook outputs are cleared
and no marker is left, with a ``README.md`` for students (:func:`student_readme`: what to implement,
in which order, and how to test one exercise). The instructor tools (``course_lib/instructor/`` and
their tests) are left out. Run it as ``python -m course_lib.instructor release [--dest DIR]``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
from pathlib import Path

from course_lib.core.exercises import (
    ANSWER_CELL_TAG,
    ANSWER_PROMPT,
    SOLUTION,
    Exercise,
    MarkerError,
    find_exercises,
    strip_solutions,
)

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("course_lib", "notebooks", "tests", "pyproject.toml", "environment.yml")
LEFT_OUT = ("course_lib/instructor", "tests/instructor", "tests/test_notebooks.py", "tests/*/hidden")
"""Instructor-only folders the release leaves out (glob patterns)."""
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def _release_module(path: Path) -> int:
    text, blocks = strip_solutions(path.read_text(encoding="utf-8"), str(path))
    if blocks:
        ast.parse(text, filename=str(path))  # the student module must still be valid Python
        path.write_text(text, encoding="utf-8")
    return blocks


ANSWER_TAG = "solution"
"""Cell tag of a markdown answer (e.g. to a theory question): the release replaces it by a prompt."""


COLAB = "https://colab.research.google.com/github"
START_CELL = "run = start_run("
"""The line that marks a notebook's first working cell (after ``parameters``)."""


def github_slug(repo_url: str) -> str:
    """``owner/name`` of a GitHub repository URL (``https://github.com/owner/name[.git]``), else a
    ``ValueError`` naming the URL."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo_url)
    if not match:
        raise ValueError(f"--repo-url {repo_url!r} is not valid; give https://github.com/OWNER/NAME")
    return f"{match[1]}/{match[2]}"


def colab_link(repo_url: str, notebook: str, branch: str = "main") -> str:
    """The "Open in Colab" address of ``notebook`` (a path such as ``notebooks/01_x.ipynb``)."""
    return f"{COLAB}/{github_slug(repo_url)}/blob/{branch}/{notebook}"


def colab_setup(repo_url: str) -> str:
    """Lines put before a release notebook's ``start_run``: on Colab only, install the library from
    ``repo_url`` (the run then fetches its data: ``download=None`` means on Colab)."""
    return ("import sys\n\n"
            "if \"google.colab\" in sys.modules:  # on Colab: install the library (start_run fetches data)\n"
            f"    %pip install -q \"course-lib @ git+{repo_url}\"\n\n")


def _add_colab(nb: dict, repo_url: str, notebook: str) -> None:
    """An "Open in Colab" badge first, and :func:`colab_setup` at the top of the ``start_run`` cell."""
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({colab_link(repo_url, notebook)})")
    nb["cells"].insert(0, {"cell_type": "markdown", "id": "open-in-colab", "metadata": {}, "source": badge})
    start = next(c for c in nb["cells"] if c["cell_type"] == "code" and START_CELL in "".join(c["source"]))
    start["source"] = colab_setup(repo_url) + "".join(start["source"])


def _release_notebook(path: Path, repo_url: str | None = None, notebook: str = "") -> int:
    nb = json.loads(path.read_text(encoding="utf-8"))
    blocks = 0
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown" and ANSWER_TAG in tags:
            cell["source"] = ANSWER_PROMPT
            cell["metadata"]["tags"] = [t for t in tags if t != ANSWER_TAG] + [ANSWER_CELL_TAG]
            blocks += 1
            continue
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        text, n = strip_solutions(source, f"{path}:cell")
        blocks += n
        cell["source"] = text
        cell["outputs"] = []
        cell["execution_count"] = None
        for key in ("papermill", "execution"):
            cell.get("metadata", {}).pop(key, None)
    nb["metadata"].pop("papermill", None)
    if repo_url is not None:
        _add_colab(nb, repo_url, notebook)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return blocks


def make_release(dest: str | os.PathLike = ROOT / "release", src: Path = ROOT,
                 repo_url: str | None = None) -> dict[str, int]:
    """Write the student release into ``dest`` (replaced whole, via a temporary sibling folder).

    ``repo_url``, the GitHub repository the release is published to, adds an "Open in Colab" badge and
    a Colab-only install line to every notebook and Colab links to the README.
    Returns {relative path: blocks replaced} for the files that had exercises.
    """
    if repo_url is not None:
        github_slug(repo_url)  # a bad URL fails before anything is written
    dest = Path(dest).resolve()
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    counts: dict[str, int] = {}
    try:
        for name in COPIED:
            source = src / name
            if source.is_dir():
                shutil.copytree(source, tmp / name, ignore=_IGNORED)
            elif source.exists():
                shutil.copy2(source, tmp / name)
        from course_lib.assignments import ASSIGNMENTS

        readme = student_readme(list(ASSIGNMENTS.values()), src, repo_url)
        (tmp / "README.md").write_text(readme, encoding="utf-8")
        for left_out in [path for name in LEFT_OUT for path in tmp.glob(name)]:
            if left_out.is_dir():
                shutil.rmtree(left_out)
            else:
                left_out.unlink(missing_ok=True)
        for path in sorted(tmp.rglob("*")):
            if path.suffix == ".py":
                n = _release_module(path)
            elif path.suffix == ".ipynb":
                n = _release_notebook(path, repo_url, path.relative_to(tmp).as_posix())
            else:
                continue
            if n:
                counts[str(path.relative_to(tmp))] = n
        # code only (the docs name the markers)
        leftover = [str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.suffix in {".py", ".ipynb"}
                    and any(marker in p.read_text(errors="ignore") for marker in SOLUTION)]
        if leftover:
            raise MarkerError(f"markers left in the release: {leftover}")
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.replace(dest, old)  # the previous release stays whole until the new one is in place
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts


def assignment_exercises(assignment, root: Path = ROOT) -> list[Exercise]:
    """``assignment``'s exercises in the order its notebook first names them (the rest in file order)."""
    folder = root / Path(*assignment.package.split("."))
    exercises = [e for path in sorted(folder.rglob("*.py")) for e in find_exercises(path, root)]
    notebook = (root / assignment.notebook).read_text(encoding="utf-8")

    def first_mention(e: Exercise) -> int:
        at = notebook.find(e.name.rpartition(".")[2] if "." in e.name else e.name)
        return at if at >= 0 else len(notebook)

    return sorted(exercises, key=first_mention)


def student_readme(assignments: list, root: Path = ROOT, repo_url: str | None = None) -> str:
    """The release's README: set-up, then per assignment its notebook (with its Colab link when
    ``repo_url`` is given), the functions to write in order, and the commands that test them."""
    lines = [
        "# Deep-learning course workbook: student version",
        "",
        "Five assignments, one notebook each. In every assignment you write the functions listed below",
        "(their bodies say `raise NotImplementedError`); the notebook calls them and shows what they do,",
        "and the tests say whether they are right.",
        "",
        "## Set up",
        "",
        "```bash",
        "python3 -m venv .venv && .venv/bin/python -m pip install -e '.[dev]'",
        ".venv/bin/jupyter lab notebooks/",
        "```",
        "",
        "The notebooks reload `course_lib` before every cell (`%autoreload 2`), so an edited function",
        "takes effect without restarting the kernel. Data: set `COURSE_DATA_DIR` to the folder your course",
        "gives you, or fetch it (sha256-checked) with `python -m course_lib data fetch --all`, or set",
        "`download = True` in a notebook's parameters cell.",
        "",
    ]
    if repo_url:
        lines += ["On Colab, open a notebook from the links below: its first cell installs the library and",
                  "the run fetches the data it needs.", ""]
    for a in assignments:
        exercises = assignment_exercises(a, root)
        notebook = a.notebook.as_posix()
        colab = f" ([open in Colab]({colab_link(repo_url, notebook)}))" if repo_url else ""
        lines += [f"## {a.id}. {a.title}", "", f"Notebook: `{notebook}`{colab}.", "",
                  "Write, in this order:", ""]
        lines += [f"{i}. `{e.name}` in `{e.path}`" for i, e in enumerate(exercises, start=1)]
        tests = " ".join(a.exercise_tests)
        example = exercises[0].name.rpartition(".")[2] if exercises else ""
        lines += ["", "Test them all, or only the tests that name one function:", "", "```bash",
                  f".venv/bin/python -m pytest {tests}",
                  f".venv/bin/python -m pytest {tests} -k {example}", "```", ""]
    return "\n".join(lines)
