"""Assignment 03's in-process grid: each configuration trained once, resumed, compared; data fixed."""

from __future__ import annotations

import json

import pytest

from tests.lm.synthetic import GRID_CONFIGS, tiny_grid


def test_grid_trains_each_configuration_and_compares_them(cyclic, tmp_path):
    outcome, lines = tiny_grid(cyclic, tmp_path / "runs")
    assert outcome.ok and [f.name for f in outcome.finished] == ["lstm-sgd-L1", "gpt1-adamw-L1"]
    for folder in outcome.finished:
        args = json.loads((folder / "args.json").read_text())
        assert args["exp_id"] == folder.name and args["lr"] is None and args["epochs"] == 1
        assert json.loads((folder / "metrics.json").read_text())["epochs"] == 1
    assert args["learning_rate"] == 1e-3  # adamw's default
    assert list(outcome.comparison.table["exp_id"]) == ["gpt1-adamw-L1", "lstm-sgd-L1"]
    assert (tmp_path / "runs" / "lm_comparison" / "comparison.md").exists()
    assert lines == ["[lstm-sgd-L1] running", "[gpt1-adamw-L1] running"]

    again, lines = tiny_grid(cyclic, tmp_path / "runs")
    assert again.skipped == ["lstm-sgd-L1", "gpt1-adamw-L1"]
    assert again.comparison.table.equals(outcome.comparison.table)


def test_grid_refuses_a_configuration_that_changes_the_shared_corpus(cyclic, tmp_path):
    configs = (*GRID_CONFIGS, dict(exp_id="big", split="official"))
    with pytest.raises(ValueError, match=r"big: \['split'\] cannot change"):
        tiny_grid(cyclic, tmp_path / "runs", configs)
    assert not (tmp_path / "runs").exists()  # checked before the first run
