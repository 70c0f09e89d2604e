"""Sweeps and notebook runs as submitit jobs (the local executor on the fake workbook): the same comparison
as the sequential run with at most N jobs at once, a killed job reported and re-run alone on the next
call, and the Slurm options mapped to submitit's parameters."""

from __future__ import annotations

import json
import sys

import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core import Sweep
from course_lib.core.folders import LOCK
from course_lib.core.io import read_json
from course_lib.core.sweep import STATUS_FILE
from course_lib.instructor import cli
from course_lib.instructor.executors import ExecutorOptions, make_executor, submitit_parameters

from ..core.toy import SWEEP, toy_assignment
from .conftest import metrics_table

LOCAL = ["--executor", "local", "--jobs", "2"]


def _sweep(runs, *extra):
    return cli.main(["sweep", "toy", "--profile", "smoke", "--device", "cpu", "--runs-dir", str(runs),
                     *extra])


def _most_at_once(intervals):
    return max(sum(start <= t < end for start, end in intervals) for t, _ in intervals)


def test_local_jobs_give_the_sequential_comparison_at_most_n_at_once(job_workbook):
    assert _sweep(job_workbook / "seq") == 0
    assert _sweep(job_workbook / "jobs", *LOCAL) == 0
    table = json.loads((job_workbook / "seq" / "toy_comparison" / "table.json").read_text())
    assert table == json.loads((job_workbook / "jobs" / "toy_comparison" / "table.json").read_text())
    assert {k: v["score"] for k, v in table.items()} == {"a": 1.0, "b": 1.2, "c": 0.3}
    intervals = [read_json(job_workbook / "jobs" / c / "times.json") for c in "abc"]
    assert _most_at_once(intervals) <= 2
    logs = sorted((job_workbook / "jobs" / "submitit").glob("*_log.out"))
    assert len(logs) == 3 and all("Job completed successfully" in p.read_text() for p in logs)
    assert not (job_workbook / "seq" / "submitit").exists()


@pytest.mark.fault("recovery")
def test_a_killed_job_is_reported_and_only_it_runs_again(job_workbook, monkeypatch, capsys):
    runs = job_workbook / "runs"
    two = Sweep("toy", SWEEP.configs[:2], metrics_table)  # a and b: enough to see that only b runs again
    monkeypatch.setitem(ASSIGNMENTS, "91", toy_assignment(sweeps={"toy": two}))
    monkeypatch.setenv("TOY_KILL_ONCE", "b")
    assert _sweep(runs, *LOCAL) == 1
    err = capsys.readouterr().err
    assert "error: b failed: job " in err and "ended without a result (killed" in err
    log = err.split("(job log: ")[1].split(")")[0]
    assert log.startswith(str(runs / "submitit")) and log.endswith("_log.out")
    status = read_json(runs / "b" / STATUS_FILE)
    assert status["status"] == "failed" and "killed" in status["error"]  # written by the sweep, not the job
    assert not (runs / "b" / "metrics.json").exists()
    assert not (runs / "b" / LOCK).exists()  # its job ended: the lock its killed kernel left is removed
    assert sorted(read_json(runs / "toy_comparison" / "table.json")) == ["a"]
    before = (runs / "a" / "times.json").read_text()

    outcome = cli.sweep("toy", "smoke", "cpu", runs, executor=ExecutorOptions("local", jobs=2))
    assert outcome.ok and outcome.skipped == ["a"] and list(outcome.logs) == ["b"]
    assert (runs / "a" / "times.json").read_text() == before
    assert read_json(runs / "b" / STATUS_FILE)["status"] == "ok"
    assert outcome.comparison == {"a": {"score": 1.0, "exp_id": "a"}, "b": {"score": 1.2, "exp_id": "b"}}


def test_run_as_jobs_reports_the_failing_notebook_with_its_log(fake_workbook):
    build = fake_workbook / "build"
    results = cli.run_all("smoke", ["92", "91"], "cpu", build, executor=ExecutorOptions("local", jobs=2))
    assert [r.ok for r in results] == [False, True]
    assert "broken on purpose" in results[0].error and f"(job log: {build / 'submitit'}" in results[0].error
    assert results[1].metrics == {"score": 0.9, "profile": "smoke"}
    assert "92_bad | FAILED" in (build / "summary.md").read_text()


def test_the_sequential_run_needs_no_submitit(fake_workbook, monkeypatch, capsys):
    def fake_execute(a, notebook, params):
        notebook.parent.mkdir(parents=True, exist_ok=True)
        (notebook.parent / "metrics.json").write_text(json.dumps({"score": 1.0}))

    monkeypatch.setattr(cli, "execute", fake_execute)
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` now fails
    assert _sweep(fake_workbook / "runs") == 0
    with pytest.raises(ModuleNotFoundError, match="pip install submitit"):
        _sweep(fake_workbook / "other", *LOCAL)
    assert _sweep(fake_workbook / "runs", "--jobs", "2") == 2  # refused before anything runs
    assert "['--jobs'] need --executor local or slurm" in capsys.readouterr().err


@pytest.mark.fault("clear_error")
def test_executor_options_are_checked():
    with pytest.raises(ValueError, match=r"\['slurm_partition'\] apply to the slurm executor only"):
        ExecutorOptions("local", slurm_partition="gpu")
    with pytest.raises(ValueError, match="jobs=0"):
        ExecutorOptions("slurm", jobs=0)
    with pytest.raises(ValueError, match="executor"):
        ExecutorOptions("kubernetes")


SLURM = ExecutorOptions("slurm", jobs=12, slurm_partition="gpu", gpus_per_job=1, cpus_per_job=8, mem_gb=32,
                        time_min=120)


def test_slurm_options_map_to_submitit_parameters(tmp_path, monkeypatch):
    assert submitit_parameters(SLURM, "sweep-lm") == {
        "name": "sweep-lm", "timeout_min": 120, "gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 32,
        "stderr_to_stdout": True, "slurm_partition": "gpu", "slurm_array_parallelism": 12}
    assert submitit_parameters(ExecutorOptions("local", jobs=2)) == {
        "name": "course", "timeout_min": 240, "stderr_to_stdout": True, "slurm_array_parallelism": 2}

    import submitit
    from submitit.slurm.slurm import _make_sbatch_string

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # no srun here
    executor = make_executor(SLURM, tmp_path, "sweep-lm")
    slurm = executor._executor.parameters
    assert slurm == {"job_name": "sweep-lm", "time": 120, "gpus_per_node": 1, "cpus_per_task": 8,
                     "mem": "32GB", "stderr_to_stdout": True, "partition": "gpu", "array_parallelism": 12}
    script = _make_sbatch_string(command="python -m job", folder=tmp_path, map_count=12, **slurm)
    for flag in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=32GB", "--time=120",
                 "--array=0-11%12", "--job-name=sweep-lm"):
        assert f"#SBATCH {flag}" in script
    assert "#SBATCH --error" not in script  # one log file per job

