"""Questions and their answer cells. A question is a markdown cell with a ``**Question N`` line or a
``### Question N`` heading; its answer is the first markdown cell after it, tagged ``solution`` (code
cells may come between, tagged ``solution`` when the student writes them). Every notebook that asks
questions answers each; every notebook asks at least :data:`MIN_QUESTIONS`; no ``solution`` cell
stands outside a question; code the student writes for an answer defines nothing that later cells read
(the release replaces it by a prompt); the release turns every answer into an ``answer`` cell.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from course_lib.assignments import ASSIGNMENTS
from course_lib.core.exercises import SOLUTION_CELL_TAG
from course_lib.instructor.release import make_release, question_answers, unanswered_solutions

ROOT = Path(__file__).resolve().parents[2]
MIN_QUESTIONS = 3
"""Questions each notebook asks at least (the course's own where it had them, inline questions elsewhere)."""


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _md(source: str, *tags: str) -> dict:
    return {"cell_type": "markdown", "metadata": {"tags": list(tags)}, "source": source}


def _code(source: str, *tags: str) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source}


def test_questions_and_their_answers():
    cells = [
        _md("# Title"),
        _md("### Question 1 · Why?\nSay why."), _md("Because.", "solution"),
        _md("Some text.\n\n**Question 2.** Plot it."), _code("x = 1"), _code("plot(x)", "solution"),
        _md("It rises.", "solution"),
        _md("**Question 3.** Unanswered."), _md("More text."),
        _md("## Questions\n\n1. Not a labelled question."),
        _md("A conclusion.", "solution"),
    ]
    assert question_answers(cells) == [(1, 2), (3, 6), (7, None)]
    assert unanswered_solutions(cells) == [10]


def _names(cell: dict, ctx: type) -> set[str]:
    tree = ast.parse(TransformerManager().transform_cell(_source(cell)))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}
    if ctx is ast.Store:
        names |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        names |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    return names


@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_every_question_has_an_answer_cell(key):
    a = ASSIGNMENTS[key]
    cells = _cells(ROOT / a.notebook)
    questions = question_answers(cells)
    assert len(questions) >= MIN_QUESTIONS, (f"{a.name} asks {len(questions)} questions; a notebook asks at "
                                            f"least {MIN_QUESTIONS}, each where its own results answer it")
    unanswered = [i for i, answer in questions if answer is None]
    assert not unanswered, f"{a.name}: questions in cells {unanswered} have no answer cell tagged solution"
    stray = unanswered_solutions(cells)
    assert not stray, f"{a.name}: cells {stray} are tagged solution but answer no question"
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and SOLUTION_CELL_TAG in cell["metadata"].get("tags", []):
            defined = _names(cell, ast.Store)
            later = set().union(*(_names(c, ast.Load) for c in cells[i + 1:] if c["cell_type"] == "code"))
            assert not defined & later, (f"{a.name}: cell {i} is the student's to write, but later cells "
                                         f"read {sorted(defined & later)} from it")


def test_the_release_gives_every_question_an_answer_cell(tmp_path):
    make_release(tmp_path / "release")
    for a in ASSIGNMENTS.values():
        cells = _cells(tmp_path / "release" / a.notebook)
        questions = question_answers(cells)
        assert len(questions) == len(question_answers(_cells(ROOT / a.notebook)))
        assert all(cells[answer]["metadata"]["tags"] == ["answer"] for _, answer in questions), a.name
