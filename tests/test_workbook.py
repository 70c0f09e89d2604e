"""Instructor commands: a failing notebook is reported as failed and the others still run."""

from __future__ import annotations

import json

import nbformat
import pytest

from course_lib import workbook
from course_lib.assignments import ASSIGNMENTS, Assignment


def _notebook(body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'profile = "smoke"\ndevice = "auto"\ndata_dir = None\noutput_dir = None\nseed = 0'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def fake_workbook(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    ok = _notebook(
        "import json, pathlib\n"
        "out = pathlib.Path(output_dir); out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'metrics.json').write_text(json.dumps({'score': 0.9, 'profile': profile}))\n"
        "print('done')"
    )
    bad = _notebook("raise ValueError('broken on purpose')")
    nbformat.write(ok, tmp_path / "notebooks" / "91_ok.ipynb")
    nbformat.write(bad, tmp_path / "notebooks" / "92_bad.ipynb")
    entries = {
        "91": Assignment("91", "ok", "Works", (), {"smoke": {}, "full": {}},
                         {"smoke": {"score": (0.5, 1.0)}}, ("score",)),
        "92": Assignment("92", "bad", "Fails", (), {"smoke": {}, "full": {}},
                         {"smoke": {"score": (0.5, 1.0)}}, ("score",)),
    }
    for key, value in entries.items():
        monkeypatch.setitem(ASSIGNMENTS, key, value)
    monkeypatch.setattr(workbook, "ROOT", tmp_path)
    return tmp_path


def test_run_all_reports_failures_and_keeps_going(fake_workbook):
    build = fake_workbook / "build"
    results = workbook.run_all("smoke", ["92", "91"], "cpu", build)
    assert [r.ok for r in results] == [False, True]
    assert "broken on purpose" in results[0].error
    assert results[1].metrics == {"score": 0.9, "profile": "smoke"}
    summary = (build / "summary.md").read_text()
    assert "| 91_ok | ok | score | 0.9 | [0.5, 1.0] | yes |" in summary
    assert "92_bad | FAILED" in summary and "broken on purpose" in summary
    report = (build / "index.html").read_text()
    assert "92_bad: Fails <span class='failed'>FAILED</span>" in report
    assert "91_ok/91_ok.html" in report and (build / "91_ok" / "91_ok.html").exists()


def test_run_all_rejects_bad_profile(fake_workbook):
    with pytest.raises(ValueError, match=r"profile='huge'.*\['smoke', 'full'\]"):
        workbook.run_all("huge", ["91"], "cpu", fake_workbook / "build")


def test_sweep_skips_finished_runs_and_compares(fake_workbook, monkeypatch):
    params_seen = []
    monkeypatch.setattr(workbook, "execute", lambda a, nb, params: params_seen.append(params))
    entry = ASSIGNMENTS["91"]
    swept = Assignment(**{**entry.__dict__, "sweeps": {"toy": {
        "configs": [{"exp_id": "a", "lr": 1}, {"exp_id": "b", "lr": 2}],
        "compare": "toy_compare.compare",
    }}})
    monkeypatch.setitem(ASSIGNMENTS, "91", swept)
    runs = fake_workbook / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "metrics.json").write_text(json.dumps({"ppl": 1.0}))
    (fake_workbook / "toy_compare.py").write_text(
        "def compare(runs_dir, out_dir):\n"
        "    out_dir.mkdir()\n"
        "    done = sorted(p.parent.name for p in runs_dir.glob('*/metrics.json'))\n"
        "    (out_dir / 'table.txt').write_text(' '.join(done))\n"
    )
    monkeypatch.syspath_prepend(str(fake_workbook))
    workbook.sweep("toy", "smoke", "cpu", runs, params={"lr": 5})
    assert [p["exp_id"] for p in params_seen] == ["b"]
    assert params_seen[0]["lr"] == 5 and params_seen[0]["profile"] == "smoke"
    assert (runs / "toy_comparison" / "table.txt").read_text() == "a"
    with pytest.raises(KeyError, match="toy"):
        workbook.sweep("nope", "smoke", "cpu", runs)


def test_parse_param_reads_json_values():
    assert workbook.parse_param("epochs=3") == ("epochs", 3)
    assert workbook.parse_param("split=offline") == ("split", "offline")
    assert workbook.parse_param("lr=null") == ("lr", None)
    with pytest.raises(Exception, match="KEY=VALUE"):
        workbook.parse_param("epochs")
