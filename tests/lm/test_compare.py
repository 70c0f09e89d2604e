"""Assignment 03 comparison: the table, best runs, files and figures, read from run folders alone."""

from __future__ import annotations

import pytest

from course_lib.core.io import atomic_write_json
from course_lib.lm.compare import compare_runs, history_markdown, plot_run, side_by_side_markdown


def _run_folder(root, exp_id, model, optimizer, layers, ppls, seconds):
    folder = root / exp_id
    history = [{"epoch": i + 1, "train_loss": 5.0, "train_ppl": 150.0, "valid_loss": 4.0, "valid_ppl": p,
                "epoch_time_s": seconds, "items_per_s": 1000.0, "peak_gpu_memory_mb": None,
                "wall_time_s": seconds * (i + 1)} for i, p in enumerate(ppls)]
    atomic_write_json(folder / "args.json", {"model": model, "optimizer": optimizer, "num_layers": layers,
                                             "learning_rate": 1e-3, "momentum": 0.9, "nesterov": False,
                                             "weight_decay": 5e-4, "batch_size": 16, "parameters": 1234})
    atomic_write_json(folder / "history.json", history)
    best = min(range(len(ppls)), key=ppls.__getitem__)
    atomic_write_json(folder / "metrics.json", {
        "epochs": len(ppls), "valid_ppl": ppls[-1], "best_valid_ppl": min(ppls), "best_epoch": best + 1,
        "train_ppl_at_best": 150.0, "test_ppl": ppls[-1] + 5,
        "valid_ppl_stateful": min(ppls) - 1 if model == "lstm" else None,
        "train_time_s": seconds * len(ppls), "tokens_per_s": 1000.0, "peak_gpu_memory_mb": None})
    return folder


def test_runs_are_compared_from_their_files(tmp_path):
    folders = [_run_folder(tmp_path, "lstm-sgd-L1", "lstm", "sgd", 1, [300.0, 200.0], 1.0),
               _run_folder(tmp_path, "gpt1-adamw-L1", "gpt1", "adamw", 1, [250.0, 260.0], 2.0),
               _run_folder(tmp_path, "gpt1-adamw-L2", "gpt1", "adamw", 2, [240.0, 230.0], 4.0)]
    comparison = compare_runs(folders, tmp_path / "cmp")
    table = comparison.table
    assert list(table["exp_id"]) == ["gpt1-adamw-L1", "gpt1-adamw-L2", "lstm-sgd-L1"]  # model, layers, opt.
    assert list(table["best_epoch"]) == [1, 2, 2] and list(table["train_ppl_at_best"]) == [150.0] * 3
    assert comparison.best["best_valid_ppl_exp"] == comparison.best["fastest_exp"] == "lstm-sgd-L1"
    assert comparison.best["least_memory_exp"] is None  # CPU: no GPU memory measured
    by_optimizer, by_depth = comparison.averages["optimizer"], comparison.averages["depth"]
    assert by_optimizer.to_dict("list") == {"optimizer": ["adamw", "sgd"], "runs": [1, 1],
                                            "best_valid_ppl": [250.0, 200.0], "train_time_s": [4.0, 2.0]}
    assert by_depth.to_dict("list") == {"layers": [1, 2], "runs": [1, 1], "best_valid_ppl": [250.0, 230.0],
                                        "train_time_s": [4.0, 8.0]}
    for name in ("comparison.csv", "comparison.md", "averages.md", "best.json", "curves.png", "cost.png",
                 "run_lstm-sgd-L1.png", "run_gpt1-adamw-L2.png"):
        assert (tmp_path / "cmp" / name).exists(), name
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "tokens/s" in markdown and "| n/a |" in markdown and "| 199.0 |" in markdown  # LSTM stateful
    assert "| 1 | 1 | 250.0 | 4.0 s |" in (tmp_path / "cmp" / "averages.md").read_text()  # ints stay ints
    assert set(comparison.figures) == {"curves", "cost"}
    assert set(comparison.histories) == {f.name for f in folders}


def test_a_run_has_six_panels_by_time_and_by_epoch():
    history = [{"epoch": e, "wall_time_s": 1.5 * e, "train_loss": 6.0 - e, "valid_loss": 5.5 - 0.5 * e,
                "train_ppl": 400.0 / e, "valid_ppl": 250.0 / e} for e in (1, 2, 3)]
    fig = plot_run(history, "lstm L1 adam")
    axes = fig.axes
    assert len(axes) == 6 and fig._suptitle.get_text() == "lstm L1 adam"
    assert [ax.get_xlabel() for ax in axes] == ["wall-clock training time (s)"] * 4 + ["epoch"] * 2
    assert list(axes[0].lines[0].get_xdata()) == [1.5, 3.0, 4.5]
    assert list(axes[3].lines[0].get_ydata()) == [250.0, 125.0, 250.0 / 3]  # validation perplexity by time
    assert [len(ax.lines) for ax in axes] == [1, 1, 1, 1, 2, 2]


def test_missing_runs_or_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        compare_runs([], tmp_path / "none")
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match=r"lacks \['args.json'"):
        compare_runs([tmp_path / "half"], tmp_path / "none")


def test_history_markdown_has_units():
    table = history_markdown([{"epoch": 1, "train_loss": 5.0, "train_ppl": 148.4, "valid_loss": 4.5,
                               "valid_ppl": 90.0, "lr": 0.25, "epoch_time_s": 1.25, "items_per_s": 1234.0,
                               "peak_gpu_memory_mb": None}])
    assert table.splitlines()[-1] == ("| 1 | 5.000 | 148.4 | 4.500 | 90.0 | 0.25 | 1.2 s | 1234 tokens/s | "
                                      "n/a |")


def test_side_by_side_has_units_and_na_for_the_gpt():
    lstm = {"parameters": 3412377, "valid_ppl": 250.0, "valid_ppl_stateful": 180.04, "test_ppl": 240.0,
            "test_ppl_stateful": 170.0, "tokens_per_s": 3700.4, "train_time_s": 300.0}
    table = side_by_side_markdown({"LSTM": lstm, "GPT": {**lstm, "valid_ppl_stateful": None,
                                                         "test_ppl_stateful": None}})
    assert table.splitlines()[2] == ("| LSTM | 3,412,377 | 250.0 | 180.0 | 240.0 | 170.0 | 3700 tokens/s | "
                                     "5.0 min |")
    assert table.splitlines()[3].count("n/a") == 2
