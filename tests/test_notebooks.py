"""Every notebook: its parameters cell declares exactly the contract and its assignment's knobs (each left at
``...``, the profile's value), a parameter the notebook does not declare is refused in its first code cell
whether papermill injects it or it is typed into the parameters cell, ``None`` from papermill is recorded as
asked, and the notebook ends by checking its metrics against the profile's expected ranges.

The notebooks run once per test run: nbval (``pytest --nbval notebooks/``) executes the committed ones,
compares the outputs that are right by construction and leaves the digits of trained numbers and timings
alone (cells tagged ``nbval-ignore-output``); their last cell raises when a metric is out of range. The
tests here stop in the first cells.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core.runs import PARAMETERS_HEADER
from course_lib.instructor.notebooks import ROOT, execute_notebook
from course_lib.instructor.release import assignment_exercises

IGNORE_OUTPUT = "nbval-ignore-output"


def _code_cells(key: str) -> list[dict]:
    nb = json.loads((ROOT / ASSIGNMENTS[key].notebook).read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_parameters_cell_declares_contract_and_knobs(key):
    a = ASSIGNMENTS[key]
    cells = _code_cells(key)
    assert "parameters" in cells[0]["metadata"].get("tags", []), f"{a.name}: the first code cell is untagged"
    source = _source(cells[0])
    assert source.startswith(PARAMETERS_HEADER), f"{a.name}: the parameters cell must open with its header"
    tree = ast.parse(source)
    names = [node.targets[0].id for node in tree.body if isinstance(node, ast.Assign)]
    assert names == list(a.parameters), f"{a.name}: parameters cell {names} != {list(a.parameters)}"
    values = {node.targets[0].id: node.value for node in tree.body if isinstance(node, ast.Assign)}
    assert all(isinstance(values[k], ast.Constant) and values[k].value is Ellipsis for k in a.knobs), (
        f"{a.name}: every knob is left at ... (the profile's value)")
    assert f"start_run({a.package.rpartition('.')[2]}.ASSIGNMENT, globals())" in _source(cells[1])


@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_the_notebook_ends_by_checking_the_expected_ranges(key):
    """Its last code cell checks the recorded metrics (it raises on one out of range, and nbval fails on
    it); only nbval's ignore-output tag is used, never a skip."""
    cells = _code_cells(key)
    assert _source(cells[-1]).strip() == "run.check_expected()"
    assert ASSIGNMENTS[key].expected["smoke"], f"{key} declares no expected smoke metrics"
    tags = {t for c in cells for t in c["metadata"].get("tags", []) if t.startswith("nbval")}
    assert tags == {IGNORE_OUTPUT}, f"{key}: nbval tags {tags}"
    assert IGNORE_OUTPUT in cells[-1]["metadata"]["tags"]


@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_every_exercise_is_announced_in_its_notebook(key):
    """Each fenced function is named in a markdown cell of its notebook, with the test command, and the
    notebook reloads edited code (``%autoreload 2``)."""
    a = ASSIGNMENTS[key]
    nb = json.loads((ROOT / a.notebook).read_text(encoding="utf-8"))
    markdown = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    exercises = assignment_exercises(a)
    assert exercises, f"{a.name} has no fenced exercise"
    unnamed = [e.name for e in exercises if e.name not in markdown]
    assert not unnamed, f"{a.name}: the notebook's text never names {unnamed}"
    untested = [t for t in a.exercise_tests if t not in markdown]
    assert not untested, f"{a.name}: the notebook never gives the test command of {untested}"
    assert "%autoreload 2" in _source(_code_cells(key)[1]), f"{a.name}: no %autoreload 2 before start_run"


def _failed_cells(notebook: Path) -> list[int]:
    executed = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    return [i for i, c in enumerate(executed) if any(o.get("output_type") == "error" for o in c["outputs"])]


@pytest.mark.notebook
@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_unknown_parameter_fails_in_the_first_code_cell(key, tmp_path):
    a = ASSIGNMENTS[key]
    out = tmp_path / "out.ipynb"
    with pytest.raises(Exception, match=r"unknown parameter\(s\) \['hiden'\]"):
        execute_notebook(ROOT / a.notebook, out, {"hiden": 8, "output_dir": str(tmp_path)})
    assert _failed_cells(out) == [2], f"{a.name}: expected the error in the cell after the parameters"
    assert not (tmp_path / "run_record.json").exists()


@pytest.mark.notebook
def test_a_typo_in_the_parameters_cell_itself_fails_in_the_first_code_cell(tmp_path):
    """As in JupyterLab, Colab or nbconvert (no papermill): ``hiden = 256`` typed into 03's parameters cell
    is refused by ``start_run``, naming it and listing the valid names. (Every notebook's parameters cell
    opens with the header ``start_run`` finds it by, checked above.)"""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    a = ASSIGNMENTS["03"]
    nb = nbformat.read(ROOT / a.notebook, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += f"\nhiden = 256\noutput_dir = {str(tmp_path)!r}\n"
    with pytest.raises(CellExecutionError, match=r"unknown parameter\(s\) \['hiden'\]; valid parameters: "
                                                 r"\['profile', 'device'"):
        NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}},
                       timeout=600).execute()
    assert not (tmp_path / "run_record.json").exists()


@pytest.mark.notebook
def test_none_from_papermill_is_recorded_as_none(tmp_path):
    """``-p grad_clip None`` (no clipping) reaches 03's settings and its run record as null; the notebook
    is cut after its ``start_run`` cell, which writes the record."""
    a = ASSIGNMENTS["03"]
    nb = nbformat.read(ROOT / a.notebook, as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if "start_run(" in c.source)
    nb.cells = nb.cells[: start + 1]
    short = tmp_path / "first_cells.ipynb"
    nbformat.write(nb, short)
    out = tmp_path / "out"
    execute_notebook(short, out / "out.ipynb", {"grad_clip": None, "lr": None, "device": "cpu",
                                                "output_dir": str(out)})
    record = json.loads((out / "run_record.json").read_text())
    assert record["settings"]["grad_clip"] is None and record["settings"]["lr"] is None
    assert record["settings"]["epochs"] == a.profiles["smoke"].epochs  # ...: the profile's value
