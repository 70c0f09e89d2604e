"""Fixtures of the instructor-tool tests: a fake workbook of two notebooks (one fails) on the toy
assignment, with a formula and a figure so that the report has both."""

from __future__ import annotations

import nbformat
import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.instructor import cli, notebooks

from ..core.toy import toy_assignment


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'profile = "smoke"\ndevice = "auto"\ndata_dir = None\noutput_dir = None\nseed = 0\nepochs = None'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


OK_BODY = (
    "import json, pathlib\n"
    "import matplotlib\n"
    "matplotlib.use('Agg')\n"
    "import matplotlib.pyplot as plt\n"
    "out = pathlib.Path(output_dir); out.mkdir(parents=True, exist_ok=True)\n"
    "score = 0.9 if epochs is None else epochs / 10\n"
    "(out / 'metrics.json').write_text(json.dumps({'score': score, 'profile': profile}))\n"
    "fig, ax = plt.subplots(figsize=(2, 2)); ax.plot([1, 2, 3]); fig.savefig(out / 'curve.png')\n"
    "print('done')"
)
FORMULA = "Perplexity is $\\exp(H)$, where $$H = -\\frac{1}{N} \\sum_{i=1}^{N} \\log p(w_i)$$"


@pytest.fixture
def fake_workbook(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    ok = _notebook(nbformat.v4.new_markdown_cell(FORMULA), nbformat.v4.new_code_cell(OK_BODY))
    bad = _notebook(nbformat.v4.new_code_cell("raise ValueError('broken on purpose')"))
    nbformat.write(ok, tmp_path / "notebooks" / "91_toy.ipynb")
    nbformat.write(bad, tmp_path / "notebooks" / "92_bad.ipynb")
    monkeypatch.setitem(ASSIGNMENTS, "91", toy_assignment())
    monkeypatch.setitem(ASSIGNMENTS, "92", toy_assignment(id="92", slug="bad", title="Fails"))
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setattr(notebooks, "ROOT", tmp_path)
    return tmp_path
