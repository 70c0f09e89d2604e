"""The ``full`` profiles on one CUDA GPU, each cut to a few steps or one short epoch, in about 8 minutes.

What runs, one task after another, each in its own process under a time limit (``benchmarks/gpu_check.sh``
calls this after checking that there is a CUDA GPU; ``--dry-run`` needs none):

* every notebook with ``profile="full"`` and ``device="cuda"`` through papermill, with the overrides of
  :data:`TASKS` (parameters every notebook has today: epochs, sizes, grids), into ``OUT/<task>/``;
* the course's twelve LM configurations (``sweep lm``, the ``full`` profile) for one epoch each on a
  slice of the tokens, each through papermill as ``nox -s sweep`` runs them;
* the CIFAR-10 ``full`` recipe's training step eager and under ``torch.compile`` (:func:`compile_check`):
  compile time, steps/s and images/s after warm-up, peak memory, the losses.

A task whose data is not under the data root (``COURSE_DATA_DIR``) is skipped and reported, and the others
run. While a task runs, ``nvidia-smi`` is sampled every 0.2 s (peak memory used on the GPU, mean utilisation).
Every task's outcome (ok or its error, seconds, peak memory, throughputs and the first metrics the
notebook recorded) goes into ``OUT/summary.json`` and ``OUT/summary.md``. WikiText-2's official train split
is used when the data root has it, else the offline split (the machine may have no network). Exit
status: 0 when every task ran, 1 when one failed or was skipped for lack of time, 2 for a bad plan or no
GPU (before anything runs).

    benchmarks/gpu_check.sh                          # on the GPU machine: COURSE_DATA_DIR=... first
    python benchmarks/gpu_check.py --dry-run         # anywhere: the plan, every override checked
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_lib.assignments import get_assignment  # noqa: E402
from course_lib.core.runs import check_parameters  # noqa: E402

BUDGET_S = 480
"""The whole check's time limit on one H100 (tasks that no longer fit are skipped and reported)."""

LANGID_GRID = {"analyzer": ["char_wb"], "ngram_range": [[1, 3]], "max_features": [1000],
               "nonlinearity": ["relu"], "width": [64], "optimizer": {"adam": [0.003]}}
"""Notebook 01's extended grid cut to one candidate (its full grid is 64 candidates)."""


@dataclass(frozen=True)
class Task:
    """One step of the check: a notebook (``kind="notebook"``, ``target`` its id), a sweep (``"sweep"``,
    ``target`` its name) or the compile check (``"compile"``), with knob overrides and a time limit."""

    name: str
    kind: str
    target: str
    overrides: dict[str, Any] = field(default_factory=dict)
    limit_s: int = 60


TASKS = (
    Task("02_full", "notebook", "02", {"epochs": 1, "vgg_epochs": 1, "train_size": 10000, "test_size": 2000},
         100),
    Task("02_full_compile", "compile", "02", {"train_size": 10000, "steps": 30, "warmup": 5}, 55),
    Task("03_full", "notebook", "03", {"epochs": 1}, 45),
    Task("lm_sweep_full", "sweep", "lm", {"epochs": 1, "grid_train_tokens": 32768, "grid_eval_tokens": 8192},
         120),
    Task("04_full", "notebook", "04", {"epochs": 1, "bilstm_epochs": 1}, 50),
    Task("05_full", "notebook", "05", {"epochs": 1, "num_samples": 8}, 60),
    Task("01_full", "notebook", "01", {"max_per_language": 200, "epoch_scale": 0.05, "course_cv_folds": 2,
                                        "cv_folds": 2, "grid_epochs": 1, "grid": LANGID_GRID,
                                        "strong_epochs": 1}, 50),
)
"""The plan; the limits add up to :data:`BUDGET_S`."""


def wikitext_split() -> str:
    """``"official"`` when the data root holds WikiText-2's official train split, else ``"offline"``."""
    from course_lib.core.data import MissingDataError, require
    from course_lib.lm.data import PARTS, find_files

    try:
        folder = require("wikitext-2")
    except MissingDataError:
        return "offline"
    return "official" if set(PARTS) <= find_files(folder).keys() else "offline"


def parameters(task: Task, split: str) -> dict[str, Any]:
    """The task's knob overrides as notebook parameters (03 and the LM sweep get ``split``)."""
    extra = {"split": split} if task.target in ("03", "lm") else {}
    return {**task.overrides, **extra}


def check_plan(tasks: tuple[Task, ...], split: str) -> list[str]:
    """Every override checked against its assignment's ``full`` settings (names and values), and every
    configuration of a sweep; returns one line per task describing it (raises on a bad override)."""
    from course_lib.assignments import ASSIGNMENTS

    lines = []
    for task in tasks:
        params = parameters(task, split)
        if task.kind == "notebook":
            a = get_assignment(task.target)
            check_parameters(a, list(params))
            settings = a.settings("full", params)
            what = f"notebook {a.notebook}, full profile, epochs {getattr(settings, 'epochs', '-')}"
        elif task.kind == "sweep":
            a = next(x for x in ASSIGNMENTS.values() if task.target in x.sweeps)
            check_parameters(a, list(params))
            configs = a.sweeps[task.target].configs
            for config in configs:
                a.settings("full", {**config, **params})
            what = f"sweep {task.target}: {len(configs)} configurations of the full profile"
        elif task.kind == "compile":
            unknown = sorted(set(params) - {"train_size", "steps", "warmup"})
            if unknown:
                raise ValueError(f"task {task.name}: unknown compile options {unknown}; valid: train_size, "
                                 "steps, warmup")
            get_assignment(task.target).settings("full", {"train_size": params["train_size"]})
            what = (f"CIFAR-10 full recipe on {params['train_size']} images, {params['warmup']} + "
                    f"{params['steps']} steps eager, then under torch.compile")
        else:
            raise ValueError(f"task {task.name}: unknown kind {task.kind!r}; valid: notebook, sweep, compile")
        lines.append(f"{task.name:16s} {task.limit_s:4d} s  {what}; overrides {json.dumps(params)}")
    return lines


# ---------------------------------------------------------------------------------------------------
# one task, in a child process


def run_notebook_task(task: Task, out: Path, split: str, profile: str, device: str) -> dict[str, Any]:
    """Execute the task's notebook with papermill (``profile``, ``device``, the task's overrides) into
    ``out/<NN_slug>/``; its outcome and the metrics it recorded."""
    from course_lib.core.runs import read_metrics
    from course_lib.instructor.notebooks import run_notebook

    a = get_assignment(task.target)
    params = parameters(task, split)
    check_parameters(a, list(params))
    folder = out / a.name
    contract = {"profile": profile, "device": device, "output_dir": str(folder), "seed": 0}
    error = run_notebook(ROOT / a.notebook, folder / f"{a.name}.ipynb", {**params, **contract})
    metrics = read_metrics(folder) if (folder / "metrics.json").exists() else {}
    return {"ok": error is None, "error": error or "", "metrics": metrics}


def run_sweep_task(task: Task, out: Path, split: str, profile: str, device: str) -> dict[str, Any]:
    from course_lib.instructor.cli import sweep

    outcome = sweep(task.target, profile, device, out, 0, parameters(task, split))
    return {"ok": outcome.ok, "error": "; ".join(f"{k}: {v.splitlines()[-1] if v else ''}"
                                                 for k, v in outcome.failed.items()),
            "metrics": recorded_metrics(task, out)}


def compile_check(train_size: int | None, steps: int, warmup: int) -> dict[str, Any]:
    """The CIFAR-10 ``full`` recipe's training step on CUDA on ``train_size`` images, eager then compiled:
    per mode the seconds of its first step (compilation included), steps/s and images/s over ``steps``
    steps after ``warmup``, the peak memory allocated and the first and last losses."""
    import torch

    from course_lib.cnn import FULL, load_cifar10

    device = torch.device("cuda")
    train = load_cifar10("train", size=train_size)
    figures: dict[str, Any] = {"batch_size": FULL.batch_size, "train_size": len(train),
                               "device_name": torch.cuda.get_device_name(device)}
    for mode in ("eager", "compiled"):
        figures[mode] = time_training_steps(FULL, train, device, compiled=mode == "compiled", steps=steps,
                                            warmup=warmup)
    figures["compiled_speedup"] = figures["compiled"]["steps_per_s"] / figures["eager"]["steps_per_s"]
    return {"ok": True, "error": "", "metrics": figures}


def time_training_steps(settings, train, device, *, compiled: bool, steps: int,
                        warmup: int) -> dict[str, float]:
    """One :func:`compile_check` mode: ``1 + warmup + steps`` training steps as ``train_cnn`` takes them."""
    import torch
    import torch.nn.functional as F

    from course_lib.cnn import DeviceBatches, build_model
    from course_lib.cnn.cifar import make_optimizer
    from course_lib.core.device import autocast, seed_everything

    seed_everything(0)
    model = build_model(settings, train).to(device=device, memory_format=torch.channels_last)
    loader = DeviceBatches(train, device, settings.batch_size, shuffle=True, augment=settings.augment,
                           crop_pad=settings.crop_pad, channels_last=True, drop_last=True,
                           alternate_flip_seed=0)
    optimizer, scheduler = make_optimizer(model, settings, len(loader))
    forward = torch.compile(model) if compiled else model
    batches = [batch for _ in range(-(-(1 + warmup + steps) // len(loader))) for batch in loader]
    torch.cuda.reset_peak_memory_stats(device)
    losses, marks = [], []
    for i, (x, y) in enumerate(batches[:1 + warmup + steps]):
        if i in (0, 1, 1 + warmup):
            torch.cuda.synchronize(device)
            marks.append(time.perf_counter())
        with autocast(device, settings.amp):
            loss = F.cross_entropy(forward(x), y, label_smoothing=settings.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:  # the learning rate of the next step
            scheduler.after_step()
        losses.append(loss.detach())
    torch.cuda.synchronize(device)
    seconds = time.perf_counter() - marks[2]
    return {"first_step_s": marks[1] - marks[0], "steps_per_s": steps / seconds,
            "images_per_s": steps * settings.batch_size / seconds,
            "peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            "first_loss": float(losses[0]), "last_loss": float(losses[-1])}


def run_task(task: Task, out: Path, split: str, rehearse: bool) -> dict[str, Any]:
    """Run ``task`` here (the child process), its outcome as a dict; ``rehearse``: the smoke profile on
    the CPU."""
    profile, device = ("smoke", "cpu") if rehearse else ("full", "cuda")
    if task.kind == "notebook":
        return run_notebook_task(task, out, split, profile, device)
    if task.kind == "sweep":
        return run_sweep_task(task, out, split, profile, device)
    if rehearse:
        return {"ok": False, "error": "the compile check needs CUDA; not rehearsed", "metrics": {}}
    return compile_check(**parameters(task, split))


# ---------------------------------------------------------------------------------------------------
# the parent: time limits, GPU sampling, the summary


class GpuSampler:
    """``nvidia-smi`` every 0.2 s in a thread while a task runs: the peak memory used and the mean
    utilisation of GPU 0 (``None`` without nvidia-smi)."""

    def __init__(self) -> None:
        self.memory: list[float] = []
        self.utilisation: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        command = ["nvidia-smi", "--query-gpu=memory.used,utilization.gpu", "--format=csv,noheader,nounits",
                   "--id=0"]
        while not self._stop.is_set():
            try:
                line = subprocess.run(command, capture_output=True, text=True, timeout=5).stdout.strip()
                memory, utilisation = (float(v) for v in line.split(","))
            except (OSError, ValueError, subprocess.SubprocessError):
                return
            self.memory.append(memory)
            self.utilisation.append(utilisation)
            self._stop.wait(0.2)

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def figures(self) -> dict[str, float | None]:
        mean = sum(self.utilisation) / len(self.utilisation) if self.utilisation else None
        peak = max(self.memory) if self.memory else None
        return {"peak_gpu_memory_mib": peak, "mean_gpu_utilisation": mean}


def throughputs(metrics: dict[str, Any]) -> dict[str, float]:
    """The rates and times among a task's metrics (keys with ``per_s`` or ending in ``time_s``), and
    notebook 02's images/s from its training time."""
    flat = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    rates = {k: v for k, v in flat.items() if "per_s" in k or k.endswith("time_s")}
    if {"train_time_s", "train_size", "epochs"} <= flat.keys() and flat["train_time_s"] > 0:
        rates["images_per_s"] = flat["train_size"] * flat["epochs"] / flat["train_time_s"]
    return rates


def summary_markdown(results: list[dict[str, Any]], device: str, split: str) -> str:
    lines = [f"GPU check on {device}; WikiText-2 split {split}", "",
             "| task | status | seconds | peak GPU memory (MiB) | mean GPU use (%) | throughput | "
             "first metrics |", "|---|---|---|---|---|---|---|"]
    for r in results:
        status = "ok" if r["ok"] else ("skipped" if r.get("skipped") else "FAILED")
        memory, use = r.get("peak_gpu_memory_mib"), r.get("mean_gpu_utilisation")
        rates = ", ".join(f"{k} {v:,.1f}" for k, v in r.get("throughput", {}).items())
        first = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in list(r.get("headline", {}).items())[:6])
        memory = "" if memory is None else f"{memory:,.0f}"
        use = "" if use is None else f"{use:.0f}"
        lines.append(f"| {r['task']} | {status} | {r.get('seconds', 0):.0f} | {memory} | {use} | {rates} | "
                     f"{first or r.get('error', '')[:200]} |")
    return "\n".join(lines) + "\n"


def headline(task: Task, metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics worth reading first: the assignment's headline metrics, or for a sweep each
    configuration's validation perplexity, or the compile check's speedup and memory."""
    if task.kind == "notebook":
        found = {k: metrics.get(k) for k in get_assignment(task.target).headline}
    elif task.kind == "sweep":
        found = {exp_id: m.get("valid_ppl") for exp_id, m in metrics.items()}
    else:
        found = {"compiled_speedup": metrics.get("compiled_speedup"),
                 "compile_first_step_s": metrics.get("compiled", {}).get("first_step_s"),
                 "peak_memory_mb": metrics.get("compiled", {}).get("peak_memory_mb")}
    return {k: v for k, v in found.items() if v is not None}


def missing_data(task: Task) -> str | None:
    """Why ``task`` cannot run for lack of data under the data root (``None`` when all is there): the
    machine may have no network, so nothing is downloaded."""
    from course_lib.assignments import ASSIGNMENTS
    from course_lib.core.data.registry import MissingDataError, require_any

    a = (get_assignment(task.target) if task.kind != "sweep"
         else next(x for x in ASSIGNMENTS.values() if task.target in x.sweeps))
    try:
        require_any(a.datasets, progress=False)
    except (MissingDataError, OSError, ValueError) as err:
        return f"data missing: {str(err).splitlines()[0]}"
    return None


def run_with_limit(command: list[str], env: dict[str, str], limit_s: float, log: Path) -> tuple[bool, Path]:
    """Run ``command`` in its own process group, its output into ``log``; after ``limit_s`` the whole
    group is killed (papermill's kernel with it). Returns ``(finished in time, log)``."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=limit_s)
            return True, log
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return False, log


def recorded_metrics(task: Task, folder: Path) -> dict[str, Any]:
    """What a task that ran out of time had recorded: a notebook's metrics.json so far, a sweep's finished
    configurations."""
    from course_lib.core.runs import read_metrics

    if task.kind == "notebook":
        found = [p.parent for p in folder.glob("*/metrics.json")]
        return read_metrics(found[0]) if found else {}
    if task.kind == "sweep":
        return {p.parent.name: read_metrics(p.parent) for p in sorted(folder.glob("*/metrics.json"))}
    return {}


def run_plan(tasks: tuple[Task, ...], out: Path, budget_s: float, split: str, rehearse: bool = False,
             limit_scale: float = 1.0) -> int:
    import torch

    device = "CPU (rehearsal: smoke profile)" if rehearse else torch.cuda.get_device_name(0)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TQDM_DISABLE": "1", "COURSE_CACHE_DIR": os.environ.get("COURSE_CACHE_DIR",
                                                                               str(out / "cache"))}
    started, results = time.perf_counter(), []
    for task in tasks:
        left = budget_s - (time.perf_counter() - started)
        limit = task.limit_s * limit_scale
        if left < 0.5 * limit:
            results.append({"task": task.name, "ok": False, "skipped": True,
                            "error": f"skipped: {left:.0f} s of the {budget_s:.0f} s budget left"})
            print(f"[{task.name}] skipped ({left:.0f} s left)", flush=True)
            continue
        missing = missing_data(task)
        if missing is not None:
            results.append({"task": task.name, "ok": False, "skipped": True, "error": f"skipped: {missing}"})
            print(f"[{task.name}] skipped ({missing})", flush=True)
            continue
        folder = out / task.name
        result_file = folder / "result.json"
        folder.mkdir(parents=True, exist_ok=True)
        print(f"[{task.name}] running (limit {min(limit, left):.0f} s) -> {folder}", flush=True)
        t0 = time.perf_counter()
        command = [sys.executable, __file__, "--task", task.name, "--out", str(folder), "--split", split,
                   *(["--rehearse"] if rehearse else [])]
        with GpuSampler() as sampler:
            finished, log = run_with_limit(command, env, min(limit, left), folder / "task.log")
        if not finished:
            outcome = {"ok": False, "error": f"timed out after {min(limit, left):.0f} s (log {log})",
                       "metrics": recorded_metrics(task, folder)}
        elif result_file.exists():
            outcome = json.loads(result_file.read_text())
        else:
            outcome = {"ok": False, "error": log.read_text(errors="replace")[-2000:], "metrics": {}}
        seconds = time.perf_counter() - t0
        metrics = outcome.get("metrics", {})
        flat = {"notebook": metrics, "compile": metrics.get("compiled", {})}.get(task.kind, {})
        result = {"task": task.name, "ok": outcome["ok"], "error": outcome.get("error", ""),
                  "seconds": seconds, **sampler.figures(), "throughput": throughputs(flat),
                  "headline": headline(task, metrics), "metrics": metrics,
                  "overrides": parameters(task, split)}
        results.append(result)
        print(f"[{task.name}] {'ok' if result['ok'] else 'FAILED'} in {seconds:.0f} s"
              + ("" if result["ok"] else f": {result['error'][-300:]}"), flush=True)
    summary = {"device": device, "split": split, "budget_s": budget_s,
               "total_s": time.perf_counter() - started, "tasks": results}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    markdown = summary_markdown(results, device, split)
    (out / "summary.md").write_text(markdown)
    print(markdown)
    return 0 if all(r["ok"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="print the plan, every override checked")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gpu_check")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S)
    parser.add_argument("--limit-scale", type=float, default=1.0,
                        help="multiply every task's time limit (a slower GPU than an H100: raise it and "
                             "--budget-s)")
    parser.add_argument("--only", nargs="+", help="task names (default: all)")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # a child: run this one task
    parser.add_argument("--split", help=argparse.SUPPRESS)
    parser.add_argument("--rehearse", action="store_true",
                        help="run the notebook and sweep tasks with the smoke profile on the CPU: the "
                             "machinery (time limits, summary), not the GPU")
    args = parser.parse_args(argv)
    by_name = {t.name: t for t in TASKS}
    if args.task is not None:
        result = run_task(by_name[args.task], args.out, args.split, args.rehearse)
        (args.out / "result.json").write_text(json.dumps(result, default=str))
        return 0
    unknown = sorted(set(args.only or ()) - set(by_name))
    if unknown:
        print(f"error: unknown tasks {unknown}; valid: {list(by_name)}", file=sys.stderr)
        return 2
    tasks = tuple(t for t in TASKS if not args.only or t.name in args.only)
    split = wikitext_split()
    try:
        plan = check_plan(tasks, split)
    except (KeyError, ValueError, TypeError) as err:
        print(f"error: the plan is not valid: {err}", file=sys.stderr)
        return 2
    print(f"plan ({sum(t.limit_s for t in tasks)} s of limits, budget {args.budget_s:.0f} s; "
          f"WikiText-2 split {split}):")
    print("\n".join("  " + line for line in plan))
    if args.dry_run:
        return 0
    if args.rehearse:
        return run_plan(tasks, args.out, args.budget_s, split, rehearse=True, limit_scale=args.limit_scale)
    import torch

    if not torch.cuda.is_available():
        print("error: torch sees no CUDA GPU (torch.cuda.is_available() is False); nothing was run",
              file=sys.stderr)
        return 2
    return run_plan(tasks, args.out, args.budget_s, split, limit_scale=args.limit_scale)


if __name__ == "__main__":
    sys.exit(main())
