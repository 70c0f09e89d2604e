"""Every notebook: its parameters cell declares exactly the contract and its assignment's knobs, it runs
headlessly with papermill (smoke profile, CPU) and records metrics in the expected ranges, and an
unknown parameter fails in its first code cell, naming the parameter.

(nbval, in the same pytest run, re-executes the committed notebooks and compares their outputs, under
the portable math kernels they were recorded with. The smoke run here uses the CPU's own kernels, as a
student's run does: its metrics must fall in the expected ranges whatever kernels compute them.)
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core.assignment import read_metrics
from course_lib.core.device import PORTABLE_MATH_ENV
from course_lib.instructor.cli import execute
from course_lib.instructor.notebooks import ROOT, execute_notebook
from course_lib.instructor.release import assignment_exercises


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
    tree = ast.parse(_source(cells[0]))
    names = [node.targets[0].id for node in tree.body if isinstance(node, ast.Assign)]
    assert names == list(a.parameters), f"{a.name}: parameters cell {names} != {list(a.parameters)}"
    knobs = {node.targets[0].id: node.value for node in tree.body if isinstance(node, ast.Assign)}
    assert all(isinstance(knobs[k], ast.Constant) and knobs[k].value is None for k in a.knobs), (
        f"{a.name}: every knob defaults to None (the profile's value)")
    assert f"start_run({a.package.rpartition('.')[2]}.ASSIGNMENT, globals())" in _source(cells[1])


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


@pytest.mark.notebook
@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_unknown_parameter_fails_in_the_first_code_cell(key, tmp_path):
    a = ASSIGNMENTS[key]
    out = tmp_path / "out.ipynb"
    with pytest.raises(Exception, match=r"unknown parameter\(s\) \['hiden'\]"):
        execute_notebook(ROOT / a.notebook, out, {"hiden": 8, "output_dir": str(tmp_path)})
    executed = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
    failed = [i for i, c in enumerate(executed) if any(o.get("output_type") == "error" for o in c["outputs"])]
    assert failed == [2], f"{a.name}: expected the error in the cell after the parameters, got cells {failed}"
    assert not (tmp_path / "run_record.json").exists()


@pytest.mark.notebook
@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_notebook_smoke_metrics(key, tmp_path, monkeypatch):
    for name in PORTABLE_MATH_ENV:
        monkeypatch.delenv(name, raising=False)
    a = ASSIGNMENTS[key]
    out = tmp_path / a.name
    params = {"profile": "smoke", "device": "cpu", "output_dir": str(out), "seed": 0}
    execute(a, out / f"{a.name}.ipynb", params)
    metrics = read_metrics(out)
    expected = a.expected["smoke"]
    assert expected, f"{a.name} declares no expected smoke metrics"
    for name, (lo, hi) in expected.items():
        assert name in metrics, f"{a.name}: metrics.json lacks {name!r}; has {sorted(metrics)}"
        assert lo <= metrics[name] <= hi, f"{a.name}: {name}={metrics[name]} not in [{lo}, {hi}]"
    record = json.loads((out / "run_record.json").read_text())
    assert record["settings"] == json.loads(json.dumps(a.profiles["smoke"].to_dict()))
    assert list(Path(out).glob("*.png")), f"{a.name} saved no figure"
