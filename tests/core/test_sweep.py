"""core.sweep: skip only what finished with the same key, re-run damaged or changed runs, record
failures and go on, compare the finished folders."""

from __future__ import annotations

import pytest

from course_lib.core.io import atomic_write_json, read_json
from course_lib.core.sweep import STATUS_FILE, run_sweep

from .toy import SWEEP


def _runner(calls, fail=()):
    def run_one(config, folder):
        calls.append(config["exp_id"])
        if config["exp_id"] in fail:
            raise RuntimeError(f"{config['exp_id']} diverged")
        atomic_write_json(folder / "metrics.json", {"score": 1.0, **config})

    return run_one


@pytest.mark.fault("recovery")
def test_sweep_resumes_only_matching_runs(tmp_path):
    calls: list[str] = []
    key = {"profile": "smoke"}
    first = run_sweep(SWEEP, tmp_path, _runner(calls, fail={"b"}), lambda c: {**key, **c}, log=lambda m: None)
    assert calls == ["a", "b", "c"] and first.failed.keys() == {"b"} and "b diverged" in first.failed["b"]
    assert not first.ok and first.comparison == ["a", "c"]
    assert read_json(tmp_path / "b" / STATUS_FILE)["status"] == "failed"
    assert (tmp_path / "toy_comparison" / "table.txt").read_text() == "a c"

    (tmp_path / "c" / "metrics.json").write_text('{"score": ')  # damaged results are run again
    calls.clear()
    second = run_sweep(SWEEP, tmp_path, _runner(calls), lambda c: {**key, **c}, log=lambda m: None)
    assert calls == ["b", "c"] and second.skipped == ["a"] and second.ok
    assert second.comparison == ["a", "b", "c"]

    calls.clear()  # another profile: nothing is skipped
    run_sweep(SWEEP, tmp_path, _runner(calls), lambda c: {"profile": "full", **c}, log=lambda m: None)
    assert calls == ["a", "b", "c"]
