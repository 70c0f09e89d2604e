"""Comparing finished language-model runs from their files alone.

A run folder holds ``args.json``, ``history.json`` and ``metrics.json``; :func:`compare_runs` reads
only those, so it serves the notebook's in-process grid and a sweep of separate notebook runs alike (the
sweep's ``compare`` hook). It writes the table (best validation perplexity, its epoch, the train perplexity
there, test perplexity, time, memory), the averages per optimizer and per depth, the best and the
fastest configuration, the overlaid curves and each run's six panels (:func:`plot_run`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from course_lib.core.io import atomic_save_figure, atomic_write_json, atomic_write_text, read_json
from course_lib.core.plots import plot_curves

NUMBER, COUNT, TEXT, FLAG = "a number or null", "a whole number", "text", "true or false"
"""What a run file's field holds (a number is null when it was not finite or not measured)."""
RUN_FILES = {  # file -> the fields the comparison reads (history.json: of every epoch record) and their kinds
    "args.json": {"model": TEXT, "num_layers": COUNT, "optimizer": TEXT, "learning_rate": NUMBER,
                  "momentum": NUMBER, "nesterov": FLAG, "weight_decay": NUMBER, "batch_size": COUNT,
                  "parameters": COUNT},
    "metrics.json": {"epochs": COUNT, "valid_ppl": NUMBER, "best_valid_ppl": NUMBER, "best_epoch": COUNT,
                     "train_ppl_at_best": NUMBER, "test_ppl": NUMBER, "valid_ppl_stateful": NUMBER,
                     "train_time_s": NUMBER, "tokens_per_s": NUMBER, "peak_gpu_memory_mb": NUMBER},
    "history.json": {"epoch": COUNT, "train_loss": NUMBER, "train_ppl": NUMBER, "valid_loss": NUMBER,
                     "valid_ppl": NUMBER, "wall_time_s": NUMBER},
}


@dataclass
class RunFiles:
    """One finished run read back from its folder."""

    exp_id: str
    args: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def _holds(kind: str, value: Any) -> bool:
    if kind == TEXT:
        return isinstance(value, str)
    if kind == FLAG:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (kind == NUMBER and (value is None or isinstance(value, float)))


def _check_fields(path: Path, record: Any, where: str = "") -> None:
    if not isinstance(record, dict):
        raise ValueError(f"{path}{where}: expected a JSON object, found {type(record).__name__}")
    fields = RUN_FILES[path.name]
    missing = [f for f in fields if f not in record]
    if missing:
        raise ValueError(f"{path}{where}: missing field(s) {missing}")
    for name, kind in fields.items():
        if not _holds(kind, record[name]):
            raise ValueError(f"{path}{where}: field {name!r} holds {record[name]!r}, expected {kind}; the "
                             "file was edited or damaged: restore it, or delete its run folder to run it "
                             "again")


def read_run_file(path: Path) -> Any:
    """One run file, checked to hold the fields the comparison reads; raises ``ValueError`` naming it."""
    data = read_json(path)
    if path.name != "history.json":
        _check_fields(path, data)
        return data
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty list of epoch records")
    for number, record in enumerate(data, start=1):
        _check_fields(path, record, f" (epoch record {number})")
    return data


def load_runs(run_folders: list[Path]) -> list[RunFiles]:
    """Each folder's args.json, metrics.json and history.json; a missing file raises ``FileNotFoundError``,
    a malformed one (or one lacking a field) ``ValueError`` naming the file."""
    runs = []
    for folder in map(Path, run_folders):
        missing = [n for n in RUN_FILES if not (folder / n).exists()]
        if missing:
            raise FileNotFoundError(f"run folder {folder} lacks {missing}")
        args, metrics, history = (read_run_file(folder / n) for n in RUN_FILES)
        runs.append(RunFiles(folder.name, args, metrics, history))
    return runs


def load_run(folder: Path) -> RunFiles:
    """One finished run folder (``Sweep.load`` of the LM sweeps: all three files must load)."""
    return load_runs([folder])[0]


def comparison_table(runs: list[RunFiles]) -> pd.DataFrame:
    """One row per run, sorted by architecture, layers, optimizer: the best validation perplexity, the
    epoch it was reached (``best_epoch``), the train perplexity at that epoch, the LSTM's stateful
    validation perplexity (``n/a`` for the GPT), test perplexity, training time, throughput, GPU memory."""
    rows = [{
        "exp_id": r.exp_id, "model": r.args["model"], "layers": r.args["num_layers"],
        "optimizer": r.args["optimizer"], "lr": r.args["learning_rate"], "parameters": r.args["parameters"],
        "best_valid_ppl": r.metrics["best_valid_ppl"], "best_epoch": r.metrics["best_epoch"],
        "train_ppl_at_best": r.metrics["train_ppl_at_best"],
        "valid_ppl_stateful": r.metrics["valid_ppl_stateful"], "test_ppl": r.metrics["test_ppl"],
        "train_time_s": r.metrics["train_time_s"], "tokens_per_s": r.metrics["tokens_per_s"],
        "peak_gpu_memory_mb": r.metrics["peak_gpu_memory_mb"],
    } for r in runs]
    return pd.DataFrame(rows).sort_values(["model", "layers", "optimizer"], ignore_index=True)


def averages(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Mean best validation perplexity and training time per optimizer (over the one-layer runs of both
    models) and per depth (over the adamw runs), each with its number of runs."""
    def mean_of(rows: pd.DataFrame, by: str) -> pd.DataFrame:
        grouped = rows.groupby(by, sort=True)
        return pd.DataFrame({"runs": grouped.size(), "best_valid_ppl": grouped["best_valid_ppl"].mean(),
                             "train_time_s": grouped["train_time_s"].mean()}).reset_index()

    return {"optimizer": mean_of(table[table["layers"] == 1], "optimizer"),
            "depth": mean_of(table[table["optimizer"] == "adamw"], "layers")}


def best_configurations(table: pd.DataFrame) -> dict[str, Any]:
    """The best-generalising run (lowest best validation perplexity), the fastest (least training time),
    and the lightest on GPU memory."""
    best = {"best_valid_ppl_exp": table.loc[table["best_valid_ppl"].idxmin(), "exp_id"],
            "fastest_exp": table.loc[table["train_time_s"].idxmin(), "exp_id"]}
    memory = table["peak_gpu_memory_mb"].dropna()
    best["least_memory_exp"] = table.loc[memory.idxmin(), "exp_id"] if len(memory) else None
    return best


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if column == "train_time_s":
        return f"{value:.1f} s"
    if column == "tokens_per_s":
        return f"{value:.0f} tokens/s"
    if column == "peak_gpu_memory_mb":
        return f"{value:.0f} MB"
    if column == "lr":
        return f"{value:g}"
    if column == "best_epoch":
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


HISTORY_COLUMNS = {"epoch": "epoch", "train_loss": "train loss", "train_ppl": "train ppl",
                   "valid_loss": "valid loss", "valid_ppl": "valid ppl", "lr": "lr", "epoch_time_s": "time",
                   "items_per_s": "throughput", "peak_gpu_memory_mb": "peak GPU memory"}


def history_markdown(history: list[dict[str, Any]]) -> str:
    """Per-epoch records as a Markdown table (losses to 3 decimals, perplexities to 1, units on times)."""
    units = {"epoch_time_s": "train_time_s", "items_per_s": "tokens_per_s"}
    lines = ["| " + " | ".join(HISTORY_COLUMNS.values()) + " |", "|" + "---|" * len(HISTORY_COLUMNS)]
    for record in history:
        cells = [f"{record[k]:.3f}" if k.endswith("_loss") else _cell(units.get(k, k), record[k])
                 for k in HISTORY_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


SIDE_BY_SIDE = {"parameters": "parameters", "valid_ppl": "valid ppl (windowed)",
                "valid_ppl_stateful": "valid ppl (state carried)", "test_ppl": "test ppl (windowed)",
                "test_ppl_stateful": "test ppl (state carried)", "tokens_per_s": "training throughput",
                "train_time_s": "training time"}


def side_by_side_markdown(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """Runs' metrics (name -> a run's flat metrics) as a Markdown table, one row per run: parameters,
    windowed and state-carried validation and test perplexities (n/a for a GPT), tokens/s, minutes."""
    lines = ["| model | " + " | ".join(SIDE_BY_SIDE.values()) + " |", "|" + "---|" * (len(SIDE_BY_SIDE) + 1)]
    for name, metrics in runs.items():
        cells = [f"{metrics[k]:,}" if k == "parameters" else f"{metrics[k] / 60:.1f} min"
                 if k == "train_time_s" else _cell(k, metrics[k]) for k in SIDE_BY_SIDE]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(table: pd.DataFrame) -> str:
    """A table (the comparison, or one of :func:`averages`) as Markdown with units (times as '1.2 s',
    rates as '123 tokens/s', 'n/a' for none); ``exp_id`` is left out."""
    columns = [c for c in table.columns if c != "exp_id"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    rows = table[columns].to_dict("records")  # keeps each column's type (iterrows would turn ints to floats)
    lines += ["| " + " | ".join(_cell(c, row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def plot_run(history: list[dict[str, Any]], title: str = ""):
    """The six panels of one run: train and validation loss, and perplexity, against wall-clock training
    time (rows 1-2) and train with validation against epoch (row 3). ``history``: its epoch records."""
    column = {k: [e[k] for e in history] for k in ("epoch", "wall_time_s", "train_loss", "valid_loss",
                                                     "train_ppl", "valid_ppl")}
    fig, axes = plt.subplots(3, 2, figsize=(10, 9))
    time_label = "wall-clock training time (s)"
    for row, (measure, label) in enumerate((("loss", "loss (nats/token)"), ("ppl", "perplexity"))):
        for col, part in enumerate(("train", "valid")):
            name = "train" if part == "train" else "validation"
            plot_curves({name: column[f"{part}_{measure}"]}, x=column["wall_time_s"], xlabel=time_label,
                        ylabel=label, title=f"{name} {label.split(' ')[0]} by time", ax=axes[row, col])
        plot_curves({"train": column[f"train_{measure}"], "validation": column[f"valid_{measure}"]},
                    x=column["epoch"], ylabel=label, title=f"{label.split(' ')[0]} by epoch", ax=axes[2, row])
    for ax in (axes[1, 0], axes[1, 1], axes[2, 1]):
        ax.set_yscale("log")
    for ax in axes[2]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_comparison(runs: list[RunFiles]):
    """Validation loss and perplexity against epoch and against wall-clock time, one line per run."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharey="row")
    ordered = sorted(runs, key=lambda r: (r.args["model"], r.args["num_layers"], r.args["optimizer"]))
    colors = matplotlib.color_sequences["tab20"]
    for i, r in enumerate(ordered):
        lstm = r.args["model"] == "lstm"
        style = dict(ls="-" if lstm else "--", marker="o" if lstm else "s", ms=4, color=colors[i % 20],
                     label=r.exp_id)
        epochs = [e["epoch"] for e in r.history]
        wall = [e["wall_time_s"] for e in r.history]
        for row, key in enumerate(("valid_loss", "valid_ppl")):
            values = [e[key] for e in r.history]
            axes[row, 0].plot(epochs, values, **style)
            axes[row, 1].plot(wall, values, **style)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    for row, label in enumerate(("validation loss (nats/token)", "validation perplexity")):
        axes[row, 0].set_ylabel(label)
    axes[1, 0].set_yscale("log")
    axes[1, 0].set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes[1, 1].set_xlabel("wall-clock training time (s)")
    axes[0, 1].legend(fontsize=7, ncol=2)
    fig.suptitle("Validation curves (LSTM: solid, circles; GPT: dashed, squares)")
    fig.tight_layout()
    return fig


def plot_cost(table: pd.DataFrame):
    """Best validation perplexity against training time (and tokens/s as a bar chart)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for model, marker in (("lstm", "o"), ("gpt1", "s")):
        part = table[table["model"] == model]
        ax1.scatter(part["train_time_s"], part["best_valid_ppl"], marker=marker, label=model)
        for _, row in part.iterrows():
            ax1.annotate(f"{row['optimizer']} L{row['layers']}", (row["train_time_s"], row["best_valid_ppl"]),
                         fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax1.set(xlabel="training time (s)", ylabel="best validation perplexity", yscale="log",
            title="quality against cost")
    ax1.legend()
    ax1.grid(alpha=0.3)
    colors = ["C0" if m == "lstm" else "C1" for m in table["model"]]
    ax2.barh(table["exp_id"], table["tokens_per_s"], color=colors)
    ax2.set(xlabel="training tokens/s", title="throughput")
    ax2.invert_yaxis()
    fig.tight_layout()
    return fig


@dataclass
class Comparison:
    """The outcome of :func:`compare_runs`: the sorted table, the averages per optimizer and per depth,
    the best runs, the comparison figures and the runs' histories (by exp_id)."""

    table: pd.DataFrame
    averages: dict[str, pd.DataFrame]
    best: dict[str, Any]
    figures: dict[str, Any]
    histories: dict[str, list[dict[str, Any]]]


def compare_runs(run_folders: list[Path], out_dir: Path) -> Comparison:
    """Compare the finished runs in ``run_folders`` (one folder per run, named by its exp_id): write
    comparison.csv / .md, averages.md, best.json, the figures (curves.png, cost.png) and each run's six
    panels (run_<exp_id>.png) into ``out_dir``."""
    runs = load_runs(run_folders)
    if not runs:
        raise FileNotFoundError("no finished runs to compare")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = comparison_table(runs)
    means = averages(table)
    best = best_configurations(table)
    atomic_write_text(out_dir / "comparison.csv", table.to_csv(index=False))
    atomic_write_text(out_dir / "comparison.md", markdown_table(table) + "\n")
    atomic_write_text(out_dir / "averages.md", "".join(f"by {name}\n\n{markdown_table(frame)}\n\n"
                                                       for name, frame in means.items()))
    atomic_write_json(out_dir / "best.json", best)
    figures = {"curves": plot_comparison(runs), "cost": plot_cost(table)}
    for name, fig in figures.items():
        atomic_save_figure(fig, out_dir / f"{name}.png")
        plt.close(fig)  # closed to pyplot (a notebook would show it twice), still drawable and savable
    for r in runs:
        fig = plot_run(r.history, run_title(r.args))
        atomic_save_figure(fig, out_dir / f"run_{r.exp_id}.png", dpi=70)
        plt.close(fig)
    return Comparison(table, means, best, figures, {r.exp_id: r.history for r in runs})


def run_title(args: dict[str, Any]) -> str:
    """A run's caption from its args.json: model, layers, optimizer and its hyperparameters."""
    return (f"{args['model']} L{args['num_layers']} {args['optimizer']}, lr {args['learning_rate']:g}, "
            f"momentum {args['momentum']:g}{' (Nesterov)' if args['nesterov'] else ''}, "
            f"weight decay {args['weight_decay']:g}, batch {args['batch_size']}")
