"""core.runs: start_run refuses unknown parameters, checks every value, seeds and records the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from course_lib.core import runs
from course_lib.core.assignment import read_metrics
from course_lib.core.folders import FolderInUse, NotOurFolder, read_marker
from course_lib.core.runs import PARAMETERS_HEADER, given_parameters, recorded_figures, start_run

from .holding import held_by_another_process
from .toy import SMOKE, toy_assignment


def test_start_run_checks_and_records(tmp_path):
    threads = torch.get_num_threads()
    run = start_run(toy_assignment(), {"profile": "smoke", "device": "cpu", "output_dir": str(tmp_path),
                                       "seed": 7, "epochs": 5, "lr": ..., "size": None, "cpu_threads": 2})
    assert torch.get_num_threads() == 2
    torch.set_num_threads(threads)
    assert run.settings == SMOKE.override(epochs=5, size=None, cpu_threads=2)  # ...: the profile's lr
    assert run.settings.lr == SMOKE.lr
    record = json.loads((tmp_path / "run_record.json").read_text())
    assert record["seed"] == 7 and record["profile"] == "smoke" and record["assignment"] == "91_toy"
    assert record["settings"]["epochs"] == 5 and record["settings"]["widths"] == [4, 8]
    assert record["settings"]["size"] is None  # None is recorded as asked (all examples)
    assert record["packages"]["torch"] == torch.__version__.split("+")[0]
    assert "device_name" in record and "git_commit" in record
    run.record_metrics(score=np.float32(0.5), n=3)
    run.record_metrics(extra=1.5)
    assert read_metrics(tmp_path) == {"score": 0.5, "n": 3, "extra": 1.5}


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("params, error, message", [
    ({"hidden": 8}, ValueError,
     r"91_toy: unknown parameter\(s\) \['hidden'\]; valid parameters: \['profile'"),
    ({"profile": "fast"}, ValueError, r"profile='fast' is not valid; choose one of \['smoke', 'full'\]"),
    ({"device": "tpu"}, ValueError, r"device='tpu' is not valid"),
    ({"seed": "1"}, TypeError, r"seed='1' is not valid"),
    ({"output_dir": 3}, TypeError, r"output_dir=3 has the wrong type"),
    ({"epochs": 0}, ValueError, r"epochs=0 is not valid; it must be >= 1"),
    ({"optimizer": "lbfgs"}, ValueError, r"optimizer='lbfgs' is not valid; choose one of"),
])
def test_start_run_refuses_bad_parameters(tmp_path, params, error, message):
    with pytest.raises(error, match=message):
        start_run(toy_assignment(), {"output_dir": str(tmp_path / "out"), **params})
    assert not (tmp_path / "out").exists()  # nothing is written before every value is checked


@pytest.mark.fault("clear_error")
def test_given_parameters_come_from_papermills_cell():
    namespace = {"_ih": ["", 'profile = "smoke"\nepochs = ...', "import os",
                         '# Parameters\nprofile = "full"\nhidden = 8\n'], "profile": "full", "os": None}
    assert given_parameters(namespace) == ["profile", "hidden"]
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['hidden'\]"):
        start_run(toy_assignment(), namespace)
    assert given_parameters({"_ih": ["", "x = 1"], "x": 1}) == []  # no parameters cell: nothing given


@pytest.mark.fault("clear_error")
def test_a_typo_in_the_notebooks_own_parameters_cell_is_refused(tmp_path):
    """As in JupyterLab or Colab: only the latest execution of the parameters cell counts, its typo is
    refused naming it, and the cell papermill injects is checked beside it."""
    cell = f'{PARAMETERS_HEADER}\nprofile = "smoke"\nepochs = ...\n'
    typo = cell + "hiden = 256\nwidths, lr = [4], 0.5\n"
    namespace = {"_ih": ["", typo, "x = 1"], "profile": "smoke", "hiden": 256, "output_dir": str(tmp_path)}
    assert given_parameters(namespace) == ["profile", "epochs", "hiden", "widths", "lr"]
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['hiden'\]; valid parameters: \['prof"):
        start_run(toy_assignment(), namespace)
    assert not (tmp_path / "run_record.json").exists()
    namespace["_ih"] += [cell, "# Parameters\nhidden = 8\n"]  # the typo fixed and run again; papermill's cell
    assert given_parameters(namespace) == ["profile", "epochs", "hidden"]


@pytest.mark.fault("clear_error")
def test_check_expected_prints_each_metric_and_raises_on_one_out_of_range(tmp_path, capsys):
    """The notebooks' last cell: one line per expected metric; a value outside its range, NaN or a missing
    metric raises naming the metric, its value and the range."""
    run = start_run(toy_assignment(), {"output_dir": str(tmp_path), "device": "cpu"})
    run.record_metrics(score=0.75)
    run.check_expected()
    assert capsys.readouterr().out.split() == ["score", "0.75", "expected", "[0.5,", "1]", "ok"]
    for value, recorded in ((0.25, "0.25"), (float("nan"), "None")):  # NaN is recorded as null
        run.record_metrics(score=value)
        with pytest.raises(ValueError, match=rf"91_toy \(smoke profile\): 1 metric\(s\) outside the expected "
                                             rf"ranges: score={recorded} not in \[0.5, 1\]"):
            run.check_expected()
        assert "OUT OF RANGE" in capsys.readouterr().out
    run.metrics.clear()
    with pytest.raises(ValueError, match=r"score=missing not in \[0.5, 1\]"):
        run.check_expected()


def _params(out, **extra):
    return {"profile": "smoke", "device": "cpu", "output_dir": str(out), **extra}


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    return fig


@pytest.mark.fault("clear_error")
def test_start_run_refuses_an_output_dir_it_did_not_make(tmp_path):
    (tmp_path / "thesis.tex").write_text("three years of work")
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(NotOurFolder) as err:
        start_run(toy_assignment(), _params(tmp_path))
    assert f"{tmp_path} is not empty and was not made by this tool" in str(err.value)
    assert "metrics.json, thesis.tex" in str(err.value) and "(output_dir)" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "thesis.tex"]
    assert (tmp_path / "metrics.json").read_text() == "{}"


@pytest.mark.fault("clear_error")
def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_process(tmp_path):
    out = tmp_path / "out"
    with held_by_another_process(out, "run") as kernel:
        with pytest.raises(FolderInUse, match=rf"{out} is in use by process {kernel.pid} on host .*shut its "
                                              "kernel down"):
            start_run(toy_assignment(), _params(out))
        assert not (out / "run_record.json").exists()


@pytest.mark.fault("recovery")
def test_a_run_after_a_killed_kernel_takes_the_folder_over(tmp_path, capsys):
    out = tmp_path / "out"
    with held_by_another_process(out, "run") as kernel:
        pass
    run = start_run(toy_assignment(), _params(out, seed=3))
    assert f"process {kernel.pid} on host" in capsys.readouterr().out
    assert json.loads((out / "run_record.json").read_text())["seed"] == 3 and run.output_dir == out


@pytest.mark.fault("recovery")
def test_a_rerun_leaves_nothing_of_the_previous_run_at_the_top_of_its_folder(tmp_path):
    out = tmp_path / "out"
    first = start_run(toy_assignment(), _params(out, epochs=5))
    first.save_figure(_figure(), "curves")
    first.save_figure(_figure(), "extra.png")
    first.record_metrics(score=0.5)
    (out / "history.json").write_text("[]")  # what a library call wrote into the run folder
    (out / "checkpoint.pt").write_bytes(b"keyed")  # keyed and validated on load: kept for resuming
    assert json.loads((out / "run_record.json").read_text())["figures"] == ["curves.png", "extra.png"]
    second = start_run(toy_assignment(), _params(out, epochs=3))
    second.save_figure(_figure(), "curves")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "checkpoint.pt", "curves.png", "run_record.json"]
    record = json.loads((out / "run_record.json").read_text())
    assert record["settings"]["epochs"] == 3 and record["figures"] == ["curves.png"]
    assert recorded_figures(out) == [out / "curves.png"]


def test_the_default_output_dir_claims_the_build_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "REPO_ROOT", tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    run = start_run(toy_assignment(), {"device": "cpu"})
    assert run.output_dir == tmp_path / "build" / "91_toy"
    assert read_marker(tmp_path / "build")["tool"] == "build" and read_marker(run.output_dir)["tool"] == "run"
