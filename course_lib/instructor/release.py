"""Student release: solutions out, signatures and docstrings kept, outputs cleared, a student README.

Exercise code is fenced inside function bodies by ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines
(:mod:`course_lib.core.exercises`). Questions are markdown cells with a ``Question N`` label
(:data:`QUESTION`); the instructor's answer is the first markdown cell after the question, tagged
``solution``, and code the student writes for it is a code cell tagged ``solution`` between the two.
:func:`make_release` writes a self-contained copy of the workbook (:data:`COPIED`, less
:data:`INSTRUCTOR_ONLY`) in which every fenced block becomes ``raise NotImplementedError(...)``, every
``solution`` cell an answer cell tagged ``answer`` holding a prompt, notebook outputs are cleared,
``pyproject.toml`` offers only the ``student`` extra and a ``README.md`` for students is written
(:func:`student_readme`). With a published repository and a tag or commit, each notebook also gets an
"Open in Colab" badge and a Colab setup cell (:func:`colab_setup`). :func:`unshipped_references` lists
what a release names but does not ship. Run it as
``python -m course_lib.instructor release [--dest DIR] [--repo-url URL --ref TAG_OR_COMMIT]``.

The release writes only into a folder that is absent, empty, or a release it wrote before: its marker
(``.course_lib.json``) lists every file it wrote with its sha256. Any other folder is refused, naming it
and what it holds; so is a release in which files were added or edited since (a student's work, notes,
a clone's ``.git``), listing them: the release never deletes what it did not write. Move them out, or
release into another folder, and release again.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from course_lib.core.check import assignment_exercises
from course_lib.core.exercises import (
    ANSWER_CELL_TAG,
    ANSWER_PROMPT,
    CODE_PROMPT,
    SOLUTION,
    SOLUTION_CELL_TAG,
    MarkerError,
    strip_solutions,
)
from course_lib.core.folders import SHOWN, NotOurFolder, check_folder, foreign_files, mark_folder, tree_files

__all__ = [
    "assignment_exercises", "check_release_dest", "make_release", "student_readme", "unshipped_references",
]

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("course_lib", "notebooks", "tests", "conftest.py", "pyproject.toml", "environment.yml", "LICENSE")
INSTRUCTOR_ONLY = (
    "course_lib/instructor",
    "tests/instructor",
    "tests/test_notebooks.py",  # executes notebooks with papermill and nbval
    "tests/test_quickstart.py",  # the instructor's bootstrap, workbook.py
    "tests/test_benchmarks.py",  # benchmarks/
    "tests/test_packaging.py",  # builds the wheel
    "tests/test_jupyterlab.py",  # drives JupyterLab in Chromium with Playwright
    "tests/*/hidden",  # the grader's hidden tests
)
"""What the release leaves out of :data:`COPIED`: the instructor's tools, the tests of them and the hidden
tests (glob patterns relative to the root, declared here once)."""
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")

QUESTION = re.compile(r"^(?:#{1,6}[ \t]*|\*\*)Question[ \t]+\d+", re.MULTILINE)
"""A question cell: a markdown cell with a line that starts with ``**Question N`` or a heading
``### Question N``."""
STUDENT_EXTRA = "student"
SHARED_EXTRAS = ("peers",)
"""Extras the release keeps beside the student's: optional for everyone (the programs notebook 01 compares
with), so a student may install them too."""
STUDENT_TOOLS = ("pytest", "ipykernel", "jupyterlab")
"""The student's tools among a ``dev`` extra's (a pyproject without a ``student`` extra)."""

COLAB = "https://colab.research.google.com/github"
START_CELL = "run = start_run("
"""The line that marks a notebook's first working cell (after ``parameters``)."""
COLAB_HOME = "/content"
"""Where Colab keeps a runtime's files (its Google Drive is mounted under it)."""


def _release_module(path: Path) -> int:
    text, blocks = strip_solutions(path.read_text(encoding="utf-8"), str(path))
    if blocks:
        ast.parse(text, filename=str(path))  # the student module must still be valid Python
        path.write_text(text, encoding="utf-8")
    return blocks


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def question_answers(cells: list[dict]) -> list[tuple[int, int | None]]:
    """(index of each question cell, index of its answer cell or ``None``). A question's answer cell is
    the first markdown cell after it (code cells may come between) when that cell is tagged ``solution``
    (the instructor's notebook) or ``answer`` (the release)."""
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown" or not QUESTION.search(_source(cell)):
            continue
        after = next((j for j in range(i + 1, len(cells)) if cells[j]["cell_type"] == "markdown"), None)
        answered = after is not None and {SOLUTION_CELL_TAG, ANSWER_CELL_TAG} & set(_tags(cells[after]))
        found.append((i, after if answered else None))
    return found


def unanswered_solutions(cells: list[dict]) -> list[int]:
    """Indices of ``solution`` cells that belong to no question (a question's own cells run from the
    question to its answer cell)."""
    answered = [(i, answer) for i, answer in question_answers(cells) if answer is not None]
    owned = {j for i, answer in answered for j in range(i + 1, answer + 1)}
    return [i for i, c in enumerate(cells) if SOLUTION_CELL_TAG in _tags(c) and i not in owned]


def github_slug(repo_url: str) -> str:
    """``owner/name`` of a GitHub repository URL (``https://github.com/owner/name[.git]``), else a
    ``ValueError`` naming the URL."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo_url)
    if not match:
        raise ValueError(f"--repo-url {repo_url!r} is not valid; give https://github.com/OWNER/NAME")
    return f"{match[1]}/{match[2]}"


def check_ref(ref: str | None) -> str:
    """``ref`` if it can name a git tag or commit (letters, digits, ``._/-``, not starting with ``-``),
    else a ``ValueError`` naming it (it is written into a shell command of the Colab cell)."""
    if ref is None:
        raise ValueError("--repo-url needs --ref TAG_OR_COMMIT: the tag or commit students clone")
    if not re.fullmatch(r"[A-Za-z0-9][\w./-]*", ref) or ".." in ref:
        raise ValueError(f"--ref {ref!r} is not valid; give the tag or commit the release is published at, "
                         "e.g. --ref v1.0")
    return ref


def colab_link(repo_url: str, notebook: str, ref: str) -> str:
    """The "Open in Colab" address of ``notebook`` (a path such as ``notebooks/01_x.ipynb``) at ``ref``."""
    return f"{COLAB}/{github_slug(repo_url)}/blob/{ref}/{notebook}"


def colab_folder(repo_url: str) -> str:
    """The folder a release's Colab cell clones into, under Colab's home or Google Drive."""
    return github_slug(repo_url).rpartition("/")[2]


def colab_setup(repo_url: str, ref: str) -> str:
    """The release's Colab setup cell. On Colab only: clone the release at ``ref`` (once; into Google
    Drive with ``on_drive = True``), install it editable with the student extra (once per runtime),
    change into it and import from it, so the student edits its files and ``check`` runs its tests."""
    return (
        "# On Colab: a copy of this workbook that you edit (its course_lib, tests and notebooks),\n"
        "# installed with pip install -e: the exercises are its files, check(...) runs their tests.\n"
        "# Elsewhere this cell does nothing.\n"
        "import sys\n\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import importlib.metadata\n"
        "    import os\n\n"
        "    on_drive = False  # True: keep the copy in your Google Drive, so your work survives a reset\n"
        f"    home = \"{COLAB_HOME}\"\n"
        "    if on_drive:\n"
        "        from google.colab import drive\n\n"
        "        drive.mount(f\"{home}/drive\")\n"
        "        home = f\"{home}/drive/MyDrive\"\n"
        f"    workbook = f\"{{home}}/{colab_folder(repo_url)}\"\n"
        "    if not os.path.isdir(f\"{workbook}/.git\"):  # the first time only\n"
        f"        !git clone -q {repo_url} \"{{workbook}}\" && "
        f"git -C \"{{workbook}}\" -c advice.detachedHead=false checkout -q {ref}\n"
        "    try:  # where the installed course_lib comes from (pip records it)\n"
        "        installed = importlib.metadata.distribution(\"course-lib\").read_text(\"direct_url.json\")\n"
        "    except importlib.metadata.PackageNotFoundError:\n"
        "        installed = \"\"\n"
        "    if f\"file://{workbook}\" not in (installed or \"\"):  # once per runtime: this copy, editable\n"
        f"        %pip install -q -e \"{{workbook}}[{STUDENT_EXTRA}]\"\n"
        "    %cd {workbook}\n"
        "    if workbook not in sys.path:\n"
        "        sys.path.insert(0, workbook)\n"
    )


def _add_colab(nb: dict, repo_url: str, ref: str, notebook: str) -> None:
    """An "Open in Colab" badge first, and the :func:`colab_setup` cell just before the ``start_run``
    cell (after the parameters)."""
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({colab_link(repo_url, notebook, ref)})")
    cells = nb["cells"]
    start = next(i for i, c in enumerate(cells) if c["cell_type"] == "code" and START_CELL in _source(c))
    cells.insert(start, {"cell_type": "code", "id": "colab-setup", "metadata": {}, "execution_count": None,
                         "outputs": [], "source": colab_setup(repo_url, ref)})
    cells.insert(0, {"cell_type": "markdown", "id": "open-in-colab", "metadata": {}, "source": badge})


def _answer_cell(cell: dict) -> None:
    """A ``solution`` cell made the student's answer cell: a prompt, tagged ``answer``."""
    cell["source"] = ANSWER_PROMPT if cell["cell_type"] == "markdown" else CODE_PROMPT
    cell["metadata"]["tags"] = [t for t in _tags(cell) if t != SOLUTION_CELL_TAG] + [ANSWER_CELL_TAG]


def _release_notebook(path: Path, repo_url: str | None = None, ref: str = "", notebook: str = "") -> int:
    nb = json.loads(path.read_text(encoding="utf-8"))
    blocks = 0
    for cell in nb["cells"]:
        if SOLUTION_CELL_TAG in _tags(cell):
            _answer_cell(cell)
            blocks += 1
        elif cell["cell_type"] == "code":
            cell["source"], n = strip_solutions(_source(cell), f"{path}:cell")
            blocks += n
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            for key in ("papermill", "execution"):
                cell.get("metadata", {}).pop(key, None)
    nb["metadata"].pop("papermill", None)
    if repo_url is not None:
        _add_colab(nb, repo_url, ref, notebook)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return blocks


def check_release_dest(dest: Path, src: Path = ROOT) -> Path:
    """``dest`` (absolute) when the release may replace it: absent, empty, or a release that holds only the
    files the last release wrote, as it wrote them. Else raises
    :class:`~course_lib.core.folders.NotOurFolder` naming the folder and what is in it (the files added or
    edited since the last release), or ``ValueError`` when ``dest`` lies inside a folder the release
    copies."""
    dest = check_folder(dest, "release")
    inside = [src / n for n in COPIED if dest.is_relative_to((src / n).resolve())]
    if inside or dest == src.resolve():
        raise ValueError(f"--dest {dest} lies inside {inside[0] if inside else src}, which the release "
                         "copies; choose a folder outside it")
    changed = foreign_files(dest) if dest.is_dir() else {}
    if changed:
        lines = []
        for kind in ("edited", "added"):
            paths = [p for p, k in changed.items() if k == kind]
            more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
            lines += [f"{kind} since the last release: {', '.join(paths[:SHOWN])}{more}"] if paths else []
        raise NotOurFolder(
            f"{dest} holds work the release did not write ({'; '.join(lines)}). The release replaces the "
            "whole folder and deletes nothing it did not write: move these files out (or release into "
            "another folder with --dest), then release again.")
    return dest


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def student_requirements(pyproject: dict) -> tuple[list[str], set[str]]:
    """(the ``student`` extra, the names of the packages only the instructor's extras hold: not the
    student's, not :data:`SHARED_EXTRAS`) of a parsed ``pyproject.toml``; a ``dev`` extra alone gives
    its :data:`STUDENT_TOOLS` to the student."""
    extras = pyproject["project"].get("optional-dependencies", {})
    if STUDENT_EXTRA in extras:
        student = list(extras[STUDENT_EXTRA])
    else:
        student = [r for r in extras.get("dev", []) if _requirement_name(r) in STUDENT_TOOLS]
    names = {_requirement_name(r) for key in SHARED_EXTRAS for r in extras.get(key, [])}
    names |= {_requirement_name(r) for r in student}
    others = {_requirement_name(r) for key, rs in extras.items() if key != STUDENT_EXTRA for r in rs}
    return student, others - names - {"course-lib"}


def _tables(text: str) -> list[tuple[str, str]]:
    """A TOML text cut into (header, text) pieces at every ``[table]`` line (the first header is "")."""
    pieces: list[tuple[str, str]] = [("", "")]
    for line in text.splitlines(keepends=True):
        if re.match(r"\[[^\[]", line):
            pieces.append((line.strip(), ""))
        header, body = pieces[-1]
        pieces[-1] = (header, body + line)
    return pieces


def release_pyproject(text: str, root: Path) -> str:
    """The release's ``pyproject.toml``: the ``student`` extra and :data:`SHARED_EXTRAS` as the only ones,
    the linter's tables and comment lines that name top-level files the release in ``root`` lacks dropped."""
    parsed = tomllib.loads(text)
    student, _ = student_requirements(parsed)
    extras = parsed["project"].get("optional-dependencies", {})
    kept = {STUDENT_EXTRA: student, **{key: extras[key] for key in SHARED_EXTRAS if key in extras}}
    extra = "[project.optional-dependencies]\n" + "".join(
        f"{key} = [\n" + "".join(f"    \"{r}\",\n" for r in requirements) + "]\n"
        for key, requirements in kept.items()) + "\n"
    out = []
    for header, body in _tables(text):
        if header == "[project.optional-dependencies]":
            out.append(extra)
        elif not header.startswith("[tool.ruff"):
            out.append("".join(line for line in body.splitlines(keepends=True)
                               if not (line.lstrip().startswith("#") and _missing_files(line, root))))
    released = "".join(out).rstrip("\n") + "\n"
    tomllib.loads(released)  # still valid
    return released


def release_environment(text: str, instructor_packages: set[str], root: Path) -> str:
    """``environment.yml`` without the lines that install an instructor-only package and without the
    comments that name a top-level file ``root`` (the release) lacks."""
    def left_out(line: str) -> bool:
        if line.lstrip().startswith("#"):
            return bool(_missing_files(line, root))
        match = re.match(r"\s*-\s+([A-Za-z0-9_.-]+)", line)
        return match is not None and match[1].lower() in instructor_packages

    return "".join(line for line in text.splitlines(keepends=True) if not left_out(line))


def _write_release(tmp: Path, src: Path, repo_url: str | None, ref: str) -> dict[str, int]:
    """Fill the empty folder ``tmp`` with the release; {relative path: blocks replaced}."""
    counts: dict[str, int] = {}
    for name in COPIED:
        source = src / name
        if source.is_dir():
            shutil.copytree(source, tmp / name, ignore=_IGNORED)
        elif source.exists():
            shutil.copy2(source, tmp / name)
    for left_out in [path for name in INSTRUCTOR_ONLY for path in tmp.glob(name)]:
        if left_out.is_dir():
            shutil.rmtree(left_out)
        else:
            left_out.unlink(missing_ok=True)
    pyproject = (src / "pyproject.toml").read_text(encoding="utf-8")
    (tmp / "pyproject.toml").write_text(release_pyproject(pyproject, tmp), encoding="utf-8")
    if (tmp / "environment.yml").exists():
        _, instructor_packages = student_requirements(tomllib.loads(pyproject))
        env = release_environment((tmp / "environment.yml").read_text(encoding="utf-8"), instructor_packages,
                                  tmp)
        (tmp / "environment.yml").write_text(env, encoding="utf-8")
    for path in sorted(tmp.rglob("*")):
        if path.suffix == ".py":
            n = _release_module(path)
        elif path.suffix == ".ipynb":
            n = _release_notebook(path, repo_url, ref, path.relative_to(tmp).as_posix())
        else:
            continue
        if n:
            counts[str(path.relative_to(tmp))] = n
    from course_lib.assignments import ASSIGNMENTS

    (tmp / "README.md").write_text(student_readme(list(ASSIGNMENTS.values()), tmp, repo_url, ref),
                                   encoding="utf-8")
    return counts


def make_release(dest: str | os.PathLike = ROOT / "release", src: Path = ROOT,
                 repo_url: str | None = None, ref: str | None = None) -> dict[str, int]:
    """Write the student release into ``dest``, replaced whole (built in a temporary sibling folder, then
    swapped in). ``dest`` must be absent, empty or a release left as it was written
    (:func:`check_release_dest`, which names what is in the way), checked before anything is built.

    ``repo_url``, the GitHub repository the release is published to, and ``ref``, the tag or commit
    students clone, add an "Open in Colab" badge and the Colab setup cell to every notebook and Colab
    links to the README. Returns {relative path: blocks replaced} for the files that had exercises.
    """
    if repo_url is not None:  # a bad URL or ref fails before anything is written
        github_slug(repo_url)
        check_ref(ref)
    dest = check_release_dest(Path(dest).resolve(), src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    try:
        counts = _write_release(tmp, src, repo_url, ref or "")
        # code only (the docs name the markers)
        leftover = [str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.suffix in {".py", ".ipynb"}
                    and any(marker in p.read_text(errors="ignore") for marker in SOLUTION)]
        if leftover:
            raise MarkerError(f"markers left in the release: {leftover}")
        mark_folder(tmp, "release", files=tree_files(tmp))
        check_release_dest(dest, src)  # nothing was added there while the release was built
        if dest.exists():
            os.replace(dest, aside / dest.name)  # the previous release stays whole until the new one is in
        try:
            os.replace(tmp, dest)
        except OSError:
            if (aside / dest.name).exists():
                os.replace(aside / dest.name, dest)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(aside, ignore_errors=True)
    return counts


# What a release must not name without shipping it.
_TOP_FILES = r"workbook\.py|noxfile\.py|constraints\.txt|CONTRIBUTING\.md|CITATION\.cff|environment\.yml|" \
             r"pyproject\.toml|LICENSE|conftest\.py"
_TOP_FILE = re.compile(rf"(?<![\w/.-])(?:{_TOP_FILES})(?![\w.-])")
_REPO_PATH = re.compile(r"(?<![\w/.-])(?:course_lib|tests|notebooks|benchmarks|docs|\.ci|\.github)/"
                        r"[\w./-]*[\w/]")
_TOOL = re.compile(r"(?<![\w.-])(?:nox|\.nox)(?![\w-])|course_lib[./]instructor")
_MODULE = re.compile(r"python3? -m (course_lib[\w.]*)")


LOOKED_FOR = {("course_lib/core/data/root.py", "workbook.py")}
"""(file, name) pairs the scan lets pass: code that looks for the file and does without it."""


def _missing_files(line: str, root: Path) -> list[str]:
    """The top-level files of the repository that ``line`` names and ``root`` lacks."""
    return [m[0] for m in _TOP_FILE.finditer(line) if not (root / m[0]).exists()]


@dataclass(frozen=True)
class Reference:
    """Something a release file names that the release does not ship: the file, where in it (``line N``
    or ``cell N (id ...)``), what is named and the line that names it."""

    path: str
    where: str
    name: str
    line: str

    def __str__(self) -> str:
        return f"{self.path} {self.where}: {self.name!r} in: {self.line}"


def _named(text: str, root: Path, tools: re.Pattern, paths: bool) -> list[tuple[int, str, str]]:
    """(line number, name, line) of each unshipped thing ``text`` names (:func:`unshipped_references`)."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        names = [m[0] for m in tools.finditer(line)]
        names += _missing_files(line, root)
        if paths:
            names += [m[0] for m in _REPO_PATH.finditer(line) if not (root / m[0].rstrip("./")).exists()]
        for module in _MODULE.findall(line):
            parts = module.rstrip(".").split(".")
            folder = root.joinpath(*parts)
            if not (folder.with_suffix(".py").is_file() or (folder / "__main__.py").is_file()):
                names.append(f"python -m {module}")
        found += [(number, name, line.strip()[:160]) for name in dict.fromkeys(names)]
    return found


def unshipped_references(root: Path, instructor_packages: Iterable[str] | None = None) -> list[Reference]:
    """Everything a release in ``root`` names but does not ship: nox and the instructor's package or
    commands anywhere; the repository's top-level files (``workbook.py``, ``constraints.txt``) that the
    release lacks, and, outside the tests, its other paths (``benchmarks/...``, ``course_lib/...``) that
    the release lacks; ``python -m course_lib...`` modules it lacks; and, in notebooks and the README,
    the names of ``instructor_packages`` (tools a student does not get; by default those of the
    instructor's ``pyproject.toml``). Scanned: the notebooks (every cell), ``README.md``, ``tests/``,
    ``course_lib/`` and the top-level files."""
    if instructor_packages is None:
        _, instructor_packages = student_requirements(tomllib.loads((ROOT / "pyproject.toml").read_text()))
    packages = "|".join(re.escape(p) for p in sorted(instructor_packages))
    for_students = re.compile(_TOOL.pattern + (rf"|(?<![\w.-])(?:{packages})(?![\w-])" if packages else ""))
    found: list[Reference] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".ipynb":
            for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
                where = f"cell {index} (id {cell.get('id', '?')}, {cell['cell_type']})"
                found += [Reference(rel, where, name, line)
                          for _, name, line in _named(_source(cell), root, for_students, paths=True)]
        elif path.suffix in {".py", ".md", ".toml", ".yml"}:
            tools = for_students if rel == "README.md" else _TOOL
            text = path.read_text(encoding="utf-8")
            paths = not rel.startswith("tests/")  # tests name made-up paths of their own
            found += [Reference(rel, f"line {n}", name, line)
                      for n, name, line in _named(text, root, tools, paths) if (rel, name) not in LOOKED_FOR]
    return found


def _readme_questions(root: Path, notebook: str) -> int:
    cells = json.loads((root / notebook).read_text(encoding="utf-8"))["cells"]
    return len(question_answers(cells))


def student_readme(assignments: list, root: Path = ROOT, repo_url: str | None = None, ref: str = "") -> str:
    """The release's README: set-up (on a computer, and on Colab when ``repo_url`` is given), how to
    check an exercise from a notebook and from a terminal, how to hand in, then per assignment its
    notebook, the functions to write in order (each with its check), its tests and its questions.
    ``root`` is the release (or a checkout) whose exercises and notebooks it describes."""
    all_exercises = {a.id: assignment_exercises(a, root) for a in assignments}
    first = next((a, es[0]) for a in assignments for es in [all_exercises[a.id]] if es)
    example_a, example = first
    tests = " ".join(example_a.exercise_tests)
    lines = [
        "# Deep-learning course workbook: student version",
        "",
        "Five assignments, one notebook each. In every assignment you write functions of `course_lib`,",
        "the library the notebook runs on: their bodies say `raise NotImplementedError` between the lines",
        "`### YOUR CODE BEGINS` and `### YOUR CODE ENDS`, and you write between those two lines. The",
        "notebook calls what you wrote and shows what it does, `check(...)` runs its tests, and every",
        "question in the notebook has a cell for your answer (**Your answer:**).",
        "",
        "## Set up",
        "",
        "In this folder, with Python 3.11 or newer:",
        "",
        "```bash",
        f"python3 -m venv .venv && .venv/bin/python -m pip install -e '.[{STUDENT_EXTRA}]'",
        "source .venv/bin/activate",
        "jupyter lab notebooks/",
        "```",
        "",
        "The install is editable (`-e`): the notebooks and the tests use the files of this folder, so what",
        "you write takes effect where you write it. The notebooks reload `course_lib` before every cell",
        "(`%autoreload 2`), so an edited function is used without restarting the kernel. Data: set",
        "`COURSE_DATA_DIR` to the folder your course gives you, or fetch it (sha256-checked) with",
        "`python -m course_lib data fetch --all`, or set `download = True` in a notebook's parameters cell.",
        "",
    ]
    if repo_url:
        folder = colab_folder(repo_url)
        lines += [
            "## On Colab",
            "",
            "Open a notebook from its link below and run its cells in order. The cell before the",
            f"assignment's first code clones this workbook (at `{ref}`) into `{COLAB_HOME}/{folder}`,",
            "installs it with `pip install -e`, and changes into it: the functions you write are the files",
            f"under `{COLAB_HOME}/{folder}/course_lib/` (open them from Colab's file browser, on the left,",
            "and save them before you check), and `check(...)` runs their tests there. A runtime reset",
            f"deletes `{COLAB_HOME}`: set `on_drive = True` in that cell to keep the copy in your Google",
            f"Drive (`MyDrive/{folder}`) instead. Running the cell again clones and installs nothing twice.",
            "The notebook fetches the data it needs.",
            "",
        ]
    lines += [
        "## Checking your work",
        "",
        "In a notebook, after an exercise:",
        "",
        "```python",
        "from course_lib import check",
        "",
        f"check(\"{example.name}\")",
        "```",
        "",
        "runs that function's tests in a fresh Python, on the files as they are saved, prints one line per",
        "test (`ok`, or `FAIL` with what was expected) and ends with a summary such as",
        f"`{example.name}: 2 of 3 tests pass`. A name it does not know makes it list the valid ones.",
        "",
        "The same tests from a terminal, in this folder" + (" (on Colab: in a cell, after `!`):" if repo_url
                                                            else ":"),
        "",
        "```bash",
        f"python -m pytest {tests} --exercise {example.name}   # one function",
        f"python -m pytest {tests}   # all of the assignment's",
        "```",
        "",
        "## Handing in",
        "",
        "When an assignment is done, hand it in from this folder with `python -m course_lib submit NN`,",
        "`NN` being the assignment's number (`python -m course_lib submit 01`"
        + (", or `!python -m course_lib submit 01` in a cell on Colab" if repo_url else "") + "): it gathers",
        "the functions you wrote and your answers.",
        "",
    ]
    for a in assignments:
        exercises = all_exercises[a.id]
        notebook = a.notebook.as_posix()
        colab = f" ([open in Colab]({colab_link(repo_url, notebook, ref)}))" if repo_url else ""
        lines += [f"## {a.id}. {a.title}", "", f"Notebook: `{notebook}`{colab}.", "",
                  "Write, in this order (each line ends with its check):", ""]
        lines += [f"{i}. `{e.name}` in `{e.path}`: `check(\"{e.name}\")`"
                  for i, e in enumerate(exercises, start=1)]
        lines += ["", f"All of its tests: `python -m pytest {' '.join(a.exercise_tests)}`.", ""]
        questions = _readme_questions(root, notebook)
        if questions:
            lines += [f"Answer its {questions} questions in the cells that say **Your answer**.", ""]
    return "\n".join(lines)
