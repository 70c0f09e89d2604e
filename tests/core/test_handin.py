"""The hand-in zip (``python -m course_lib submit NN``): what it holds, that it is the same for the same
work, what it refuses (naming the file and line) and what it warns about."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from course_lib.assignments import get_assignment
from course_lib.core.exercises import (
    ANSWER_CELL_TAG,
    ANSWER_PROMPT,
    STUB,
    STUDENT,
    package_exercises,
    strip_solutions,
)
from course_lib.core.handin import MANIFEST, HandinError, collect, main, zip_bytes

ROOT = Path(__file__).resolve().parents[2]
MODULE = "course_lib/cnn/numpy_conv.py"
MODULES = sorted({e.path for e in package_exercises(ROOT / "course_lib" / "cnn", ROOT)})
"""Assignment 02's exercise modules (MODULE among them): what a hand-in holds."""
NOTEBOOK = "notebooks/02_cnn.ipynb"


def _notebook(answers: list[str]) -> dict:
    cells = []
    for k, answer in enumerate(answers):
        cells.append({"cell_type": "markdown", "id": f"q{k}", "metadata": {},
                      "source": f"### Question {k}\nWhy?"})
        cells.append({"cell_type": "markdown", "id": f"a{k}", "metadata": {"tags": [ANSWER_CELL_TAG]},
                      "source": answer})
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def release(tmp_path) -> Path:
    """Assignment 02's student files: the released modules (the first region of MODULE answered) and a
    notebook with two questions."""
    (tmp_path / "course_lib/cnn").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    for path in MODULES:
        text, _ = strip_solutions((ROOT / path).read_text(encoding="utf-8"))
        (tmp_path / path).write_text(text.replace(STUB, "return 1", 1) if path == MODULE else text,
                                     encoding="utf-8")
    (tmp_path / NOTEBOOK).write_text(json.dumps(_notebook(["Because.", ANSWER_PROMPT])), encoding="utf-8")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_handin_holds_the_modules_the_notebook_and_a_manifest(release):
    handin = collect(get_assignment("02"), release)
    assert list(handin.files) == [*MODULES, NOTEBOOK, MANIFEST]
    manifest = json.loads(handin.files[MANIFEST])
    assert manifest["assignment"] == "02" and manifest["release"] == "0.1.0"
    assert manifest["files"] == {p: hashlib.sha256((release / p).read_bytes()).hexdigest()
                                 for p in (*MODULES, NOTEBOOK)}
    unimplemented = [w for w in handin.warnings if "is not implemented" in w]
    assert len(unimplemented) == len(get_assignment("02").points) - 1  # one region answers `return 1`
    assert "conv_param_count" not in " ".join(unimplemented)
    unanswered = [w for w in handin.warnings if "not answered" in w]
    assert unanswered == ["02_cnn.ipynb: question not answered: Question 1"]
    data = zip_bytes(handin.files)
    assert data == zip_bytes(collect(get_assignment("02"), release).files)  # byte for byte
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read(MODULE) == (release / MODULE).read_bytes()


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / MODULE).write_text("def f(:\n" + (r / MODULE).read_text()),
     r"numpy_conv.py:1: does not parse"),
    (lambda r: (r / MODULE).write_text((r / MODULE).read_text().replace(STUDENT[1], "", 1)),
     r"numpy_conv.py:88: ### YOUR CODE BEGINS inside the block opened at line 81"),
    (lambda r: (r / MODULE).write_bytes(b"x = '\xff'\n" + (r / MODULE).read_bytes()), "not UTF-8"),
    (lambda r: (r / NOTEBOOK).write_text('{"cells": [\n'), r"02_cnn.ipynb:2:1: malformed JSON"),
    (lambda r: (r / NOTEBOOK).unlink(), "notebook not found"),
])
def test_handin_refuses_what_would_not_grade(release, damage, message):
    damage(release)
    with pytest.raises(HandinError, match=message):
        collect(get_assignment("02"), release)


def test_handin_refuses_an_exercise_whose_markers_were_removed(release):
    text = (release / MODULE).read_text()
    start = text.index("def zero_pad")
    body = text[start:].split(STUDENT[1], 1)[0] + STUDENT[1]
    (release / MODULE).write_text(text.replace(body, body.replace(STUDENT[0], "").replace(STUDENT[1], "")))
    with pytest.raises(HandinError, match="exercise zero_pad has no '### YOUR CODE BEGINS'"):
        collect(get_assignment("02"), release)


def test_submit_command_refuses_the_instructors_copy(tmp_path, capsys):
    out = tmp_path / "h.zip"
    assert main(["02", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{MODULE}: holds the instructor's solution fence" in err and "nothing written" in err
    assert not out.exists()
    assert main(["99"]) == 2
