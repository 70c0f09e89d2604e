"""Assignment 03 comparison: the table, best runs, files and figures, read from run folders alone."""

from __future__ import annotations

import pytest

from course_lib.core.io import atomic_write_json
from course_lib.lm.compare import compare_runs, history_markdown


def _run_folder(root, exp_id, model, optimizer, layers, ppls, seconds):
    folder = root / exp_id
    history = [{"epoch": i + 1, "train_loss": 5.0, "train_ppl": 150.0, "valid_loss": 4.0, "valid_ppl": p,
                "epoch_time_s": seconds, "items_per_s": 1000.0, "peak_gpu_memory_mb": None,
                "wall_time_s": seconds * (i + 1)} for i, p in enumerate(ppls)]
    atomic_write_json(folder / "args.json", {"model": model, "optimizer": optimizer, "num_layers": layers,
                                             "learning_rate": 1e-3, "parameters": 1234})
    atomic_write_json(folder / "history.json", history)
    atomic_write_json(folder / "metrics.json", {
        "epochs": len(ppls), "valid_ppl": ppls[-1], "best_valid_ppl": min(ppls), "test_ppl": ppls[-1] + 5,
        "train_time_s": seconds * len(ppls), "tokens_per_s": 1000.0, "peak_gpu_memory_mb": None})
    return folder


def test_runs_are_compared_from_their_files(tmp_path):
    folders = [_run_folder(tmp_path, "lstm-sgd-L1", "lstm", "sgd", 1, [300.0, 200.0], 1.0),
               _run_folder(tmp_path, "gpt1-adamw-L1", "gpt1", "adamw", 1, [250.0, 260.0], 2.0)]
    comparison = compare_runs(folders, tmp_path / "cmp")
    assert list(comparison.table["exp_id"]) == ["gpt1-adamw-L1", "lstm-sgd-L1"]  # model, layers, optimizer
    assert comparison.best["best_valid_ppl_exp"] == comparison.best["fastest_exp"] == "lstm-sgd-L1"
    assert comparison.best["least_memory_exp"] is None  # CPU: no GPU memory measured
    for name in ("comparison.csv", "comparison.md", "best.json", "curves.png", "cost.png"):
        assert (tmp_path / "cmp" / name).exists(), name
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "tokens/s" in markdown and "| n/a |" in markdown
    assert set(comparison.figures) == {"curves", "cost"}


def test_missing_runs_or_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        compare_runs([], tmp_path / "none")
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match=r"lacks \['args.json'"):
        compare_runs([tmp_path / "half"], tmp_path / "none")


def test_history_markdown_has_units():
    table = history_markdown([{"epoch": 1, "train_loss": 5.0, "train_ppl": 148.4, "valid_loss": 4.5,
                               "valid_ppl": 90.0, "epoch_time_s": 1.25, "items_per_s": 1234.0,
                               "peak_gpu_memory_mb": None}])
    assert table.splitlines()[-1] == "| 1 | 5.000 | 148.4 | 4.500 | 90.0 | 1.2 s | 1234 tokens/s | n/a |"
