"""Instructor commands: failures are reported and the others still run; metrics out of range and
unknown parameters make the command fail; the sweep goes through the one sweep engine."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import nbformat
import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core.data.registry import DATASETS, DatasetSpec
from course_lib.instructor import cli, notebooks
from course_lib.instructor.report import summary_rows

from ..core.holding import held_by_another_process


def test_run_all_reports_failures_and_keeps_going(fake_workbook):
    build = fake_workbook / "build"
    results = cli.run_all("smoke", ["92", "91"], "cpu", build)
    assert [r.ok for r in results] == [False, True]
    assert "broken on purpose" in results[0].error
    assert results[1].metrics == {"score": 0.9, "profile": "smoke"}
    summary = (build / "summary.md").read_text()
    assert "| 91_toy | ok | score | 0.9 | [0.5, 1.0] | yes |" in summary
    assert "92_bad | FAILED" in summary and "broken on purpose" in summary
    report = (build / "index.html").read_text()
    assert "92_bad: Fails <span class='failed'>FAILED</span>" in report
    assert "91_toy/91_toy.html" in report and (build / "91_toy" / "91_toy.html").exists()
    assert (build / "92_bad" / "92_bad.ipynb").exists()  # the failed run's notebook is kept for reading


@pytest.mark.fault("clear_error")
def test_run_exits_non_zero_when_a_metric_is_out_of_range(fake_workbook, capsys):
    build = fake_workbook / "build"
    assert cli.main(["run", "--only", "91", "--device", "cpu", "--build", str(build)]) == 0
    code = cli.main(["run", "--only", "91", "--device", "cpu", "--build", str(build), "--param", "epochs=2"])
    assert code == 1
    assert "91_toy: score=0.2 not in [0.5, 1.0]" in capsys.readouterr().err
    rows = summary_rows(cli.run_all("smoke", ["91"], "cpu", build, params={"epochs": 2}), "smoke")
    assert rows[0][-1] == "NO"


@pytest.mark.fault("clear_error")
def test_run_refuses_unknown_parameters_and_profiles_before_running(fake_workbook, capsys):
    build = fake_workbook / "build"
    assert cli.main(["run", "--only", "91", "--build", str(build), "--param", "hidden=8"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter(s) ['hidden']" in err and "'epochs'" in err
    assert cli.main(["run", "--only", "91", "--build", str(build), "--profile", "huge"]) == 2
    assert "profile='huge'" in capsys.readouterr().err
    assert not build.exists()


@pytest.mark.fault("recovery")
def test_sweep_skips_matching_runs_and_reports_failures(fake_workbook, monkeypatch, capsys):
    seen = []

    def fake_execute(a, notebook, params):
        seen.append(params)
        if params["exp_id"] == "b" and params.get("lr") != 0.2:
            raise RuntimeError("diverged")
        out = notebook.parent
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({"score": 1.0}))

    monkeypatch.setattr(cli, "execute", fake_execute)
    runs = fake_workbook / "runs"
    assert cli.main(["sweep", "toy", "--profile", "smoke", "--runs-dir", str(runs)]) == 1
    assert "b failed" in capsys.readouterr().err
    assert [p["exp_id"] for p in seen] == ["a", "b", "c"] and seen[0]["profile"] == "smoke"
    seen.clear()
    outcome = cli.sweep("toy", "smoke", "cpu", runs)
    assert [p["exp_id"] for p in seen] == ["b"] and outcome.skipped == ["a", "c"]
    seen.clear()
    outcome = cli.sweep("toy", "smoke", "cpu", runs, params={"lr": 0.2})  # other settings: all run again
    assert [p["exp_id"] for p in seen] == ["a", "b", "c"] and outcome.ok
    assert (runs / "toy_comparison" / "table.txt").read_text() == "a b c"
    with pytest.raises(KeyError, match="toy"):
        cli.sweep("nope", "smoke", "cpu", runs)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['hidden'\]"):
        cli.sweep("toy", "smoke", "cpu", runs, params={"hidden": 3})


@pytest.mark.fault("clear_error")
def test_param_for_a_name_the_command_has_an_option_for_is_refused(fake_workbook, capsys):
    """``--param seed=5 --param profile=laptop`` once ran with the command's own seed 0 and profile smoke;
    now it is refused, naming the options to use."""
    build = fake_workbook / "build"
    assert cli.main(["run", "--only", "91", "--build", str(build), "--param", "seed=5",
                     "--param", "profile=full"]) == 2
    err = capsys.readouterr().err
    assert "--param seed, profile: the command sets them itself; use --seed, --profile instead" in err
    assert cli.main(["run", "--only", "91", "--build", str(build), "--param", "output_dir=x"]) == 2
    assert "use --build instead" in capsys.readouterr().err
    assert not build.exists()
    runs = fake_workbook / "runs"
    assert cli.main(["sweep", "toy", "--runs-dir", str(runs), "--param", "device=cpu"]) == 2
    assert "--param device: the command sets it itself; use --device instead" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"--param output_dir: .* use --runs-dir instead"):
        cli.sweep("toy", "smoke", "cpu", runs, params={"output_dir": "x"})
    with pytest.raises(ValueError, match=r"--param exp_id: each configuration of sweep 'toy' has its own"):
        cli.sweep("toy", "smoke", "cpu", runs, params={"exp_id": "x"})
    with pytest.raises(ValueError, match=r"--param optimizer='sgd', epochs=3 makes configurations b and c of "
                                         r"sweep 'toy' the same run"):
        cli.sweep("toy", "smoke", "cpu", runs, params={"optimizer": "sgd", "epochs": 3})
    assert not runs.exists()


def test_param_null_reaches_every_configuration_as_none(fake_workbook, monkeypatch):
    """``--param size=null``: None, what the knob's doc says (all examples), in the key and the notebook."""
    seen = []
    monkeypatch.setattr(cli, "execute", lambda a, notebook, params: seen.append(params))
    key, value = cli.parse_param("size=null")
    cli.sweep("toy", "smoke", "cpu", fake_workbook / "runs", params={key: value})
    assert [p["size"] for p in seen] == [None, None, None]
    status = json.loads((fake_workbook / "runs" / "a" / "sweep_status.json").read_text())
    assert status["key"]["settings"]["size"] is None


def test_parse_param_reads_json_values():
    assert cli.parse_param("epochs=3") == ("epochs", 3)
    assert cli.parse_param("split=offline") == ("split", "offline")
    assert cli.parse_param("lr=null") == ("lr", None)
    with pytest.raises(Exception, match="KEY=VALUE"):
        cli.parse_param("epochs")


@pytest.fixture
def recording_execute(monkeypatch):
    seen: list[str] = []

    def fake_execute(a, notebook, params):
        seen.append(params["exp_id"])
        notebook.parent.mkdir(parents=True, exist_ok=True)
        metrics = {"score": 1.0, "profile": params["profile"]}
        (notebook.parent / "metrics.json").write_text(json.dumps(metrics))

    monkeypatch.setattr(cli, "execute", fake_execute)
    return seen


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("change", ["profile", "truncated_metrics", "code"])
def test_sweep_never_skips_into_other_results(fake_workbook, recording_execute, monkeypatch, change):
    """A smoke sweep, then the full one into the same runs/: nothing is skipped; likewise after a
    truncated metrics.json or a change of the assignment's code."""
    runs = fake_workbook / "runs"
    cli.sweep("toy", "smoke", "cpu", runs)
    recording_execute.clear()
    profile = "smoke"
    if change == "profile":
        profile = "full"
    elif change == "truncated_metrics":
        (runs / "b" / "metrics.json").write_text('{"score": 1.')
    else:
        monkeypatch.setattr(cli, "code_digest", lambda *names: "edited")
    outcome = cli.sweep("toy", profile, "cpu", runs)
    expected = ["b"] if change == "truncated_metrics" else ["a", "b", "c"]
    assert recording_execute == expected and outcome.ok
    assert json.loads((runs / "a" / "metrics.json").read_text())["profile"] == profile


@pytest.mark.fault("recovery")
def test_a_killed_refresh_leaves_the_committed_notebook_as_it_was(fake_workbook, monkeypatch):
    committed = fake_workbook / "notebooks" / "91_toy.ipynb"
    before = committed.read_bytes()

    def killed(notebook, output, parameters, **kwargs):
        output.write_text('{"cells": [')  # papermill had written half a notebook
        raise KeyboardInterrupt

    monkeypatch.setattr(notebooks, "execute_notebook", killed)
    with pytest.raises(KeyboardInterrupt):
        notebooks.refresh_notebook(committed)
    assert committed.read_bytes() == before
    assert sorted(p.name for p in committed.parent.iterdir()) == ["91_toy.ipynb", "92_bad.ipynb"]


# --- folders: only into what the command made, one process at a time ---------------------------------------


@pytest.mark.fault("clear_error")
def test_run_refuses_a_build_folder_it_did_not_make(fake_workbook, capsys):
    checkout = fake_workbook / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "notes.md").write_text("uncommitted notes")
    assert cli.main(["run", "--only", "91", "--device", "cpu", "--build", str(checkout)]) == 2
    err = capsys.readouterr().err
    assert f"error: {checkout} is not empty and was not made by this tool" in err
    assert ".git/, notes.md" in err and "(--build)" in err
    assert sorted(p.name for p in checkout.iterdir()) == [".git", "notes.md"]


@pytest.mark.fault("clear_error")
def test_a_second_run_into_a_build_folder_in_use_is_refused(fake_workbook, capsys):
    build = fake_workbook / "build"
    with held_by_another_process(build, "build") as first:
        assert cli.main(["run", "--only", "91", "--device", "cpu", "--build", str(build)]) == 2
    assert f"{build} is in use by process {first.pid}" in capsys.readouterr().err
    assert not (build / "91_toy").exists()


@pytest.mark.fault("clear_error")
def test_two_sweeps_at_once_on_one_runs_folder_the_second_is_refused(fake_workbook, recording_execute,
                                                                     capsys):
    runs = fake_workbook / "runs"
    with held_by_another_process(runs, "runs") as first:
        assert cli.main(["sweep", "toy", "--profile", "smoke", "--runs-dir", str(runs)]) == 2
        assert f"{runs} is in use by process {first.pid} on host" in capsys.readouterr().err
        assert recording_execute == []
    outcome = cli.sweep("toy", "smoke", "cpu", runs)  # once the first has ended (killed), it runs
    assert recording_execute == ["a", "b", "c"] and outcome.ok


@pytest.mark.fault("recovery")
def test_the_report_shows_only_the_figures_of_this_run(fake_workbook):
    build = fake_workbook / "build"
    cli.run_all("smoke", ["91"], "cpu", build)
    assert {"curve.png", "extra.png"} <= {p.name for p in (build / "91_toy").iterdir()}
    assert "91_toy/extra.png" in (build / "index.html").read_text()
    cli.run_all("smoke", ["91"], "cpu", build, params={"epochs": 6})  # this run draws no extra figure
    report = (build / "index.html").read_text()
    assert "91_toy/curve.png" in report and "extra" not in report
    assert not (build / "91_toy" / "extra.png").exists()
    assert json.loads((build / "91_toy" / "metrics.json").read_text())["score"] == 0.6


@pytest.mark.fault("recovery")
def test_a_notebook_that_failed_before_its_run_shows_nothing_of_the_previous_one(fake_workbook):
    build = fake_workbook / "build"
    cli.run_all("smoke", ["91"], "cpu", build)
    notebook = fake_workbook / "notebooks" / "91_toy.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[-1].source = "raise RuntimeError('broken before start_run')\n" + nb.cells[-1].source
    nbformat.write(nb, notebook)
    result = cli.run_all("smoke", ["91"], "cpu", build)[0]
    assert not result.ok and result.metrics == {}
    assert not (build / "91_toy" / "curve.png").exists() and "curve" not in (build / "index.html").read_text()


# --- notebooks that are not notebooks -------------------------------------------------------------------


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("text, message", [
    ("", r"92_bad.ipynb:1:1: malformed JSON \(Expecting value\): not a notebook; restore it \(git checkout"),
    ("[]", r"92_bad.ipynb: not a notebook \(JSON without the 'nbformat' field\)"),
    ('{"cells": [], "nbformat": 4, "nbformat_minor": 5}',
     r"92_bad.ipynb: not a valid notebook \('metadata' is a required property\)"),
])
def test_a_notebook_that_is_not_valid_stops_run_and_refresh_before_any_runs(fake_workbook, capsys, text,
                                                                           message):
    (fake_workbook / "notebooks" / "92_bad.ipynb").write_text(text)
    build = fake_workbook / "build"
    assert cli.main(["run", "--only", "91", "92", "--device", "cpu", "--build", str(build)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not build.exists()  # 91 did not run first
    before = (fake_workbook / "notebooks" / "91_toy.ipynb").read_bytes()
    assert cli.main(["refresh", "91", "92"]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert (fake_workbook / "notebooks" / "91_toy.ipynb").read_bytes() == before
    with pytest.raises(ValueError, match=message):
        notebooks.execute_notebook(fake_workbook / "notebooks" / "92_bad.ipynb", build / "x.ipynb", {})
    assert not build.exists()  # no empty executed notebook is left


@pytest.mark.fault("clear_error")
def test_a_failed_notebook_keeps_the_usual_permissions(fake_workbook):
    build = fake_workbook / "build"
    cli.run_all("smoke", ["92"], "cpu", build)
    umask = os.umask(0)
    os.umask(umask)
    executed = build / "92_bad" / "92_bad.ipynb"
    assert executed.stat().st_mode & 0o777 == 0o666 & ~umask and executed.stat().st_size > 0


# --- the data in a sweep's key ----------------------------------------------------------------------------


@pytest.mark.fault("recovery")
def test_a_sweep_runs_again_when_its_data_was_replaced(fake_workbook, recording_execute, monkeypatch,
                                                       tmp_path):
    monkeypatch.setitem(DATASETS, "toyset", DatasetSpec("toyset", "toy text", ("train.txt",)))
    assignment = ASSIGNMENTS["91"]
    monkeypatch.setitem(ASSIGNMENTS, "91", dataclasses.replace(assignment, datasets=("toyset",)))
    root = tmp_path / "data"
    (root / "toyset").mkdir(parents=True)
    (root / "toyset" / "train.txt").write_text("<html><title>Maintenance</title></html>")
    runs, params = fake_workbook / "runs", {"data_dir": str(root)}
    cli.sweep("toy", "smoke", "cpu", runs, params=params)
    recording_execute.clear()
    assert cli.sweep("toy", "smoke", "cpu", runs, params=params).skipped == ["a", "b", "c"]
    (root / "toyset" / "train.txt").write_text("the real text , with its tokens\n" * 3)
    outcome = cli.sweep("toy", "smoke", "cpu", runs, params=params)
    assert recording_execute == ["a", "b", "c"] and outcome.skipped == [] and outcome.ok
