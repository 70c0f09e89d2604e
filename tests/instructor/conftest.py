"""Fixtures of the instructor-tool tests: a fake workbook of two notebooks (one fails) on the toy
assignment, with a formula and figures (saved through its run) so that the report has both; and a variant
for the jobs tests."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core import Sweep
from course_lib.instructor import cli, notebooks

from ..core.toy import SWEEP, toy_assignment

ROOT = Path(__file__).resolve().parents[2]


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'profile = "smoke"\ndevice = "auto"\ndata_dir = None\noutput_dir = None\nseed = 0\nepochs = ...'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


OK_BODY = (
    "import sys\n"
    f"sys.path.insert(0, {str(ROOT)!r})\n"
    "import matplotlib\n"
    "matplotlib.use('Agg')\n"
    "import matplotlib.pyplot as plt\n"
    "from course_lib.core.runs import start_run\n"
    "from tests.core.toy import toy_assignment\n"
    "run = start_run(toy_assignment(), globals())\n"
    "run.record_metrics(score=0.9 if epochs is ... else epochs / 10, profile=profile)\n"
    "fig, ax = plt.subplots(figsize=(2, 2)); ax.plot([1, 2, 3]); run.save_figure(fig, 'curve')\n"
    "if epochs is ...:  # the default run draws one figure more\n"
    "    fig, ax = plt.subplots(figsize=(2, 2)); ax.plot([3, 2, 1]); run.save_figure(fig, 'extra')\n"
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


JOB_BODY = (
    "import json, os, pathlib, signal, time\n"
    "out = pathlib.Path(output_dir); out.mkdir(parents=True, exist_ok=True)\n"
    "started = time.time()\n"
    "if os.environ.get('TOY_KILL_ONCE') == exp_id and not (out / 'killed_once').exists():\n"
    "    (out / 'killed_once').write_text('')\n"
    "    lock = {'pid': 4242, 'host': 'node-17', 'started': 'earlier', 'command': 'its kernel'}\n"
    "    (out / '.course_lib.lock').write_text(json.dumps(lock))  # held by a kernel on a cluster node\n"
    "    os.kill(os.getppid(), signal.SIGKILL)  # this kernel's parent: the job's process dies midway\n"
    "    os._exit(1)\n"
    "time.sleep(0.5)\n"
    "g = globals()\n"
    "score = g.get('lr', 0.1) * (2 if epochs is ... else epochs) + (g.get('optimizer') == 'sgd')\n"
    "(out / 'metrics.json').write_text(json.dumps({'score': round(score, 6), 'exp_id': exp_id}))\n"
    "(out / 'times.json').write_text(json.dumps([started, time.time()]))"
)


def metrics_table(folders, out_dir):
    """A comparison of the toy runs: each run's metrics by exp_id, also written to ``out_dir/table.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = {f.name: json.loads((f / "metrics.json").read_text()) for f in folders}
    (out_dir / "table.json").write_text(json.dumps(table, sort_keys=True))
    return table


@pytest.fixture
def job_workbook(fake_workbook, monkeypatch):
    """The fake workbook whose toy notebook records config-dependent metrics and its start and end times,
    and kills its own job once when ``TOY_KILL_ONCE`` names its configuration (leaving the lock of a
    kernel on another host in its folder); its sweep ``toy`` compares the runs' metrics."""
    notebook = _notebook(nbformat.v4.new_code_cell(JOB_BODY))
    nbformat.write(notebook, fake_workbook / "notebooks" / "91_toy.ipynb")
    sweep = Sweep("toy", SWEEP.configs, metrics_table)
    monkeypatch.setitem(ASSIGNMENTS, "91", toy_assignment(sweeps={"toy": sweep}))
    return fake_workbook
