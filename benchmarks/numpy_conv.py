"""Time the course's numpy convolution and pooling (loops and vectorised) against PyTorch, interleaved.

float64, batch 16, 32x32 images, 16 -> 32 channels (numpy NHWC, torch NCHW): a 3x3 convolution, pad 1,
stride 1, against ``torch.nn.functional.conv2d``, and 2x2 max and average pooling, stride 2, of the
same input against ``max_pool2d`` / ``avg_pool2d``. numpy's BLAS (through threadpoolctl) and torch run
with the same ``--threads``.

The machine may be shared, so every figure is a ratio to torch measured in the same run, and one run's
ratio is not the answer: it is repeated in ``--runs`` independent runs, each in a fresh process (its own
thread pools), and the range of the per-run medians (min / median / max) is reported. Two call patterns:

* ``blocks``: each round times every candidate of every operation once (alternating the order), each
  time as a block of calls (about ``--sample-ms``) after one untimed call, and only once the previous
  candidate's worker threads have gone idle (OpenBLAS's and OpenMP's idle workers spin-wait for a while
  after a call and would otherwise slow down the other library's). The steady throughput of each.
* ``alternate``: single calls, numpy and torch one after the other with no pause, as a notebook cell that
  times one call of each sees them: each call then runs while the other library's workers still spin,
  so it measures the pair's interference as much as the kernels.

Per run: the min and the median over the rounds, and the median of the per-round ratios (each candidate
against torch in the same round). The slow loop versions run in the first ``--loop-rounds`` rounds of
the block pattern only. Targets (block pattern): fast/torch <= 1 for the three operations in every run
(the largest per-run median), and fast >= 200x faster than the loops.

    python benchmarks/numpy_conv.py                          # 5 runs of 50 rounds, 2 threads
    python benchmarks/numpy_conv.py --threads 1 --runs 10
    python benchmarks/numpy_conv.py --batch 2 --size 8 --rounds 3 --loop-rounds 1 --runs 1   # a quick check

:func:`main` returns the figures (see its docstring) so that a test can run it at a tiny size.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_info, threadpool_limits

from course_lib.cnn import conv_forward, conv_forward_fast, pool_forward, pool_forward_fast
from course_lib.core.device import cpu_model, cpu_threads

CANDIDATES = ("torch", "fast", "loop")
PATTERNS = ("blocks", "alternate")
LABELS = {"conv": "conv 3x3 -> 32 channels, pad 1, stride 1", "max pool": "max pool 2x2, stride 2",
          "average pool": "average pool 2x2, stride 2"}
MAX_RATIO_TO_TORCH = 1.0  # target: median fast / torch
MIN_SPEEDUP_OVER_LOOPS = 200.0  # target: median loop / fast


def settle(timeout: float = 0.5) -> None:
    """Wait (at most ``timeout`` s) until this process uses under 10% of a core: worker threads idle."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(0.002)
        if time.process_time() - cpu < 0.1 * (time.perf_counter() - wall):
            return


def block_time(fn: Callable[[], object], number: int) -> float:
    """Seconds per call of ``fn`` over ``number`` calls, after one untimed call (which wakes thread pools)."""
    settle()
    fn()
    started = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - started) / number


def operations(batch: int, size: int) -> dict[str, dict[str, Callable[[], np.ndarray]]]:
    """Per operation, the candidates' calls on the same random data; each returns an NHWC array."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((batch, size, size, 16))
    W = rng.standard_normal((3, 3, 16, 32))
    b = rng.standard_normal((1, 1, 1, 32))
    conv_hp, pool_hp = {"pad": 1, "stride": 1}, {"f": 2, "stride": 2}
    A_t = torch.from_numpy(A).permute(0, 3, 1, 2).contiguous()  # torch gets its own layout, NCHW
    W_t = torch.from_numpy(W).permute(3, 2, 0, 1).contiguous()
    b_t = torch.from_numpy(b.ravel())

    def nhwc(t: torch.Tensor) -> np.ndarray:
        return t.permute(0, 2, 3, 1).numpy()

    return {
        "conv": {"torch": lambda: nhwc(F.conv2d(A_t, W_t, b_t, padding=1)),
                 "fast": lambda: conv_forward_fast(A, W, b, conv_hp)[0],
                 "loop": lambda: conv_forward(A, W, b, conv_hp)[0]},
        "max pool": {"torch": lambda: nhwc(F.max_pool2d(A_t, 2, 2)),
                     "fast": lambda: pool_forward_fast(A, pool_hp, "max")[0],
                     "loop": lambda: pool_forward(A, pool_hp, "max")[0]},
        "average pool": {"torch": lambda: nhwc(F.avg_pool2d(A_t, 2, 2)),
                         "fast": lambda: pool_forward_fast(A, pool_hp, "average")[0],
                         "loop": lambda: pool_forward(A, pool_hp, "average")[0]},
    }


def measure(ops: dict[str, dict[str, Callable[[], np.ndarray]]], rounds: int, loop_rounds: int,
            sample_s: float) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, float]]]:
    """Interleaved timings: per operation and candidate, the seconds per call of every round, and the
    max |candidate - torch| of the outputs."""
    errors: dict[str, dict[str, float]] = {}
    numbers: dict[tuple[str, str], int] = {}
    for op, calls in ops.items():  # the check doubles as warm-up and sizes each block of calls
        outputs = {}
        for name, fn in calls.items():
            started = time.perf_counter()
            outputs[name] = fn()
            numbers[op, name] = max(1, math.ceil(sample_s / (time.perf_counter() - started)))
        errors[op] = {name: float(np.max(np.abs(out - outputs["torch"])))
                      for name, out in outputs.items() if name != "torch"}
    times: dict[str, dict[str, list[float]]] = {op: {name: [] for name in calls} for op, calls in ops.items()}
    for r in range(rounds):
        order = CANDIDATES if r % 2 == 0 else CANDIDATES[::-1]
        for op, calls in ops.items():
            for name in order:
                if name != "loop" or r < loop_rounds:
                    times[op][name].append(block_time(calls[name], numbers[op, name]))
    return times, errors


def measure_alternating(ops: dict[str, dict[str, Callable[[], np.ndarray]]],
                        rounds: int) -> dict[str, dict[str, list[float]]]:
    """Single calls of ``fast`` and ``torch`` back to back, no pause between them (which one first
    alternates round by round): per operation and candidate, the seconds of each call."""
    times: dict[str, dict[str, list[float]]] = {op: {"torch": [], "fast": []} for op in ops}
    for r in range(rounds):
        order = ("fast", "torch") if r % 2 == 0 else ("torch", "fast")
        for op, calls in ops.items():
            for name in order:
                started = time.perf_counter()
                calls[name]()
                times[op][name].append(time.perf_counter() - started)
    return times


def summarize(times: dict[str, list[float]], errors: dict[str, float] | None = None) -> dict[str, Any]:
    """Min and median seconds of each candidate, their ratios to torch's (and the median of the ratios
    round by round); with the loops timed, their speedup, the ``errors`` and whether the target is met."""
    torch_min, torch_median = min(times["torch"]), statistics.median(times["torch"])
    out: dict[str, Any] = {}
    for name, seconds in times.items():
        lo, mid = min(seconds), statistics.median(seconds)
        # the loops ran in the first rounds only: pair them with torch's first rounds
        paired = statistics.median(s / t for s, t in zip(seconds, times["torch"], strict=False))
        out[name] = {"min_s": lo, "median_s": mid, "rounds": len(seconds), "min_ratio": lo / torch_min,
                     "median_ratio": mid / torch_median, "paired_ratio": paired}
    if "loop" in times:
        out["fast_vs_loop"] = out["loop"]["median_s"] / out["fast"]["median_s"]
        out["max_abs_error"] = errors
        out["target_met"] = (out["fast"]["median_ratio"] <= MAX_RATIO_TO_TORCH
                             and out["fast_vs_loop"] >= MIN_SPEEDUP_OVER_LOOPS)
    return out


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One run in this process: ``{"threads", "machine", "blocks": {op: summary}, "alternate": {op:
    summary}}`` (see :func:`summarize`)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, {cpu_model()}, "
               f"1-minute load average {load:.2f} before the run")
    with threadpool_limits(limits=args.threads, user_api="blas"), cpu_threads(args.threads):
        blas = [f"{lib['internal_api']} {lib['num_threads']}" for lib in threadpool_info()
                if lib["user_api"] == "blas"]
        ops = operations(args.batch, args.size)
        times, errors = measure(ops, args.rounds, args.loop_rounds, args.sample_ms / 1e3)
        alternating = measure_alternating(ops, args.rounds)
        figures: dict[str, Any] = {
            "threads": {"requested": args.threads, "torch": torch.get_num_threads(), "blas": blas},
            "machine": machine}
    figures["blocks"] = {op: summarize(times[op], errors[op]) for op in LABELS}
    figures["alternate"] = {op: summarize(alternating[op]) for op in LABELS}
    return figures


def print_run(figures: dict[str, Any]) -> None:
    """One run's table: both patterns, every operation and candidate."""
    print(f"{'':14s}{'min ms':>10s}{'median ms':>11s}{'min/torch':>11s}{'median/torch':>14s}"
          f"{'per round':>11s}")
    for pattern in PATTERNS:
        print(f"[{pattern}]")
        for op, label in LABELS.items():
            result = figures[pattern][op]
            error = result.get("max_abs_error")
            print(label + (f" (max |fast - torch| {error['fast']:.1e}, |loop - torch| {error['loop']:.1e})"
                           if error else ""))
            for name in CANDIDATES:
                if name not in result:
                    continue
                r = result[name]
                print(f"  {name:12s}{r['min_s'] * 1e3:10.3f}{r['median_s'] * 1e3:11.3f}{r['min_ratio']:11.2f}"
                      f"{r['median_ratio']:14.2f}{r['paired_ratio']:11.2f}")
            if "fast_vs_loop" in result:
                print(f"  fast is {result['fast_vs_loop']:.0f}x faster than the loops (medians)")


def spread(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per pattern and operation, min / median / max over ``runs`` of the per-run median fast/torch."""
    return {pattern: {op: {stat: fn([run[pattern][op]["fast"]["median_ratio"] for run in runs])
                           for stat, fn in (("min", min), ("median", statistics.median), ("max", max))}
                      for op in LABELS} for pattern in PATTERNS}


def run_in_fresh_processes(argv: list[str], runs: int) -> list[dict[str, Any]]:
    """``runs`` runs of this script, each in a new interpreter with ``--runs 1``, their figures."""
    results = []
    with tempfile.TemporaryDirectory(prefix="numpy-conv-") as tmp:
        for i in range(runs):
            out = Path(tmp) / f"run{i}.json"
            subprocess.run([sys.executable, __file__, *argv, "--runs", "1", "--json", str(out), "--quiet"],
                           check=True)
            results.append(json.loads(out.read_text()))
            conv = {pattern: results[-1][pattern]["conv"]["fast"]["median_ratio"] for pattern in PATTERNS}
            print(f"run {i + 1}/{runs}: conv fast/torch {conv['blocks']:.2f} (blocks), "
                  f"{conv['alternate']:.2f} (alternate)", flush=True)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print it; return the figures.

    ``{"threads": {"requested", "torch", "blas"}, "machine": str, "runs": [one run's figures],
    "range": {"blocks" | "alternate": {op: {"min", "median", "max"}}}, "targets_met": bool}`` where a
    run's figures are ``{"blocks" | "alternate": {"conv" | "max pool" | "average pool": {"torch" |
    "fast" (| "loop" in blocks): {"min_s", "median_s", "rounds", "min_ratio", "median_ratio",
    "paired_ratio"} (blocks also: "fast_vs_loop", "max_abs_error": {"fast", "loop"}, "target_met")}}}``;
    ratios are to torch's min and median in the same run, ``paired_ratio`` the median of the per-round
    ratios; ``range`` spans the runs' median fast/torch. The targets are met when every run met them.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--loop-rounds", type=int, default=3, help="rounds that also time the loops")
    parser.add_argument("--sample-ms", type=float, default=20.0, help="length of one timed block of calls")
    parser.add_argument("--threads", type=int, default=2, help="numpy BLAS and torch intra-op threads")
    parser.add_argument("--runs", type=int, default=5,
                        help="independent runs, each in a fresh process (1: in this process)")
    parser.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)  # a child run's output
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.batch, args.size, args.rounds, args.loop_rounds, args.threads, args.runs) < 1:
        parser.error("--batch, --size, --rounds, --loop-rounds, --threads and --runs must be >= 1")
    if not args.quiet:
        print(f"numpy (NHWC) vs torch (NCHW), float64, batch {args.batch}, {args.size}x{args.size}, "
              f"16 channels; {args.runs} run(s) of {args.rounds} rounds, loops in "
              f"{min(args.loop_rounds, args.rounds)}", flush=True)
    if args.runs == 1:
        runs = [run_once(args)]
        if args.json is not None:
            args.json.write_text(json.dumps(runs[0]))
        if args.quiet:
            return runs[0]
        print_run(runs[0])
    else:
        child = [a for a in argv if a not in ("--quiet",)]
        child = [a for i, a in enumerate(child) if a != "--runs" and (i == 0 or child[i - 1] != "--runs")]
        runs = run_in_fresh_processes(child, args.runs)
    first = runs[0]
    figures: dict[str, Any] = {"threads": first["threads"], "machine": first["machine"], "runs": runs,
                               "range": spread(runs)}
    print(f"machine: {first['machine']}")
    blas = ", ".join(first["threads"]["blas"]) or "none found"
    print(f"threads: torch {first['threads']['torch']}, numpy BLAS {blas}")
    print(f"fast / torch, median of each run; over {len(runs)} run(s): min / median / max")
    for pattern in PATTERNS:
        for op in LABELS:
            r = figures["range"][pattern][op]
            print(f"  {pattern:9s} {op:13s} {r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f}")
    loops = {op: min(run["blocks"][op]["fast_vs_loop"] for run in runs) for op in LABELS}
    met = {op: all(run["blocks"][op]["target_met"] for run in runs) for op in LABELS}
    figures["targets_met"] = all(met.values())
    print(f"targets (blocks: fast/torch <= {MAX_RATIO_TO_TORCH:g} in every run, "
          f"fast >= {MIN_SPEEDUP_OVER_LOOPS:g}x the loops):")
    for op in LABELS:
        print(f"  {op:13s} largest fast/torch {figures['range']['blocks'][op]['max']:.2f}, at least "
              f"{loops[op]:.0f}x the loops: {'met' if met[op] else 'NOT met'}")
    print("all targets:", "met" if figures["targets_met"] else "NOT met")
    return figures


if __name__ == "__main__":
    main()
