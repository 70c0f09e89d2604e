"""Instructor commands: execute notebooks into ``build/``, sweep an experiment grid, refresh, release.

``python -m course_lib.instructor run [--profile P] [--only 02 03] [--device auto] [--param KEY=VALUE]``
    Executes each notebook with papermill into ``build/<NN_slug>/`` (executed notebook, figures,
    metrics.json, run_record.json); a failing notebook is recorded and the others still run. Then
    writes ``build/summary.md`` and ``build/index.html`` (``--screenshot PNG``: opened offline in headless
    Chromium, checked and photographed). Exits non-zero when a notebook failed or a metric fell outside
    the profile's expected range (each listed).
``python -m course_lib.instructor sweep NAME [--profile P] [--param KEY=VALUE]``
    Runs the named grid (e.g. ``lm``) into ``runs/<exp_id>/`` through the sweep engine: a configuration
    that finished with the same profile, settings, seed and code is skipped, a failed or damaged one is
    run again, a failing one is recorded and the others go on; then the comparison is built from the
    finished folders. Exits non-zero listing the failed configurations.
``python -m course_lib.instructor refresh NN [NN ...]``
    Re-executes committed notebooks in place (default parameters, smoke profile) for nbval.
``python -m course_lib.instructor release [--dest DIR]``
    Writes the student release (see :mod:`course_lib.instructor.release`).

``--param`` names are checked against the notebook's parameters before anything runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from course_lib.assignments import ASSIGNMENTS, get_assignment
from course_lib.core.assignment import Assignment
from course_lib.core.device import DEVICES
from course_lib.core.io import atomic_write_text, code_digest
from course_lib.core.runs import check_parameters
from course_lib.core.settings import check_choice
from course_lib.core.sweep import SweepOutcome, run_sweep
from course_lib.instructor.notebooks import ROOT, execute_notebook, refresh_notebook
from course_lib.instructor.report import (
    NotebookResult,
    browse_report,
    out_of_range,
    summary_markdown,
    write_report,
)


def execute(a: Assignment, output_notebook: Path, parameters: Mapping[str, Any]) -> None:
    """Run ``a``'s notebook with ``parameters`` (checked against its declared ones first)."""
    check_parameters(a, list(parameters))
    execute_notebook(ROOT / a.notebook, output_notebook, dict(parameters))


def run_all(
    profile: str = "smoke",
    only: list[str] | None = None,
    device: str = "auto",
    build: Path = ROOT / "build",
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> list[NotebookResult]:
    """Execute the chosen notebooks into ``build``; then write summary.md and index.html.

    ``params`` are extra notebook parameters passed to every chosen notebook.
    """
    check_choice("device", device, DEVICES)
    chosen = [get_assignment(k) for k in only] if only else list(ASSIGNMENTS.values())
    for a in chosen:
        a.check_profile(profile)
        check_parameters(a, list(params or {}))
    results = []
    for a in chosen:
        out = (build / a.name).resolve()
        values = {**(params or {}), "profile": profile, "device": device, "output_dir": str(out),
                  "seed": seed}
        started = time.perf_counter()
        print(f"[{a.name}] executing ({profile}) -> {out}", flush=True)
        try:
            execute(a, out / f"{a.name}.ipynb", values)
            results.append(NotebookResult(a, out, True, time.perf_counter() - started))
        except Exception as exc:  # a failing notebook is reported; the others still run
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            results.append(NotebookResult(a, out, False, time.perf_counter() - started, message))
            print(f"[{a.name}] FAILED: {message.splitlines()[0] if message else exc!r}", flush=True)
        print(f"[{a.name}] done in {results[-1].seconds:.1f} s", flush=True)
    atomic_write_text(build / "summary.md", summary_markdown(results, profile))
    write_report(results, profile, build)
    return results


def sweep(name: str, profile: str = "full", device: str = "auto", runs_dir: Path = ROOT / "runs",
          seed: int = 0, params: Mapping[str, Any] | None = None) -> SweepOutcome:
    """Run every configuration of the sweep ``name`` through papermill into ``runs_dir/<exp_id>/``.

    ``params`` (e.g. ``{"split": "offline"}``) are knob values for every configuration.
    """
    owners = [a for a in ASSIGNMENTS.values() if name in a.sweeps]
    if not owners:
        valid = sorted(s for a in ASSIGNMENTS.values() for s in a.sweeps)
        raise KeyError(f"unknown sweep {name!r}; choose one of {valid}")
    a = owners[0]
    a.check_profile(profile)
    check_choice("device", device, DEVICES)
    check_parameters(a, list(params or {}))
    knobs = {k: v for k, v in (params or {}).items() if k in a.knobs}

    def knob_values(config: Mapping[str, Any]) -> dict[str, Any]:
        return {**config, **knobs}

    code = code_digest(a.package, "course_lib.core")

    def key_of(config: Mapping[str, Any]) -> dict[str, Any]:
        return {"profile": profile, "seed": seed, "code": code,
                "settings": a.settings(profile, knob_values(config)).to_dict()}

    def run_one(config: Mapping[str, Any], folder: Path) -> None:
        execute(a, folder / f"{a.name}.ipynb", {**(params or {}), **knob_values(config), "profile": profile,
                                                 "device": device, "output_dir": str(folder.resolve()),
                                                 "seed": seed})

    for config in a.sweeps[name].configs:  # every configuration is checked before the first one runs
        key_of(config)
    return run_sweep(a.sweeps[name], runs_dir, run_one, key_of)


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value), the value read as JSON when it parses (numbers, null, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected KEY=VALUE, e.g. epochs=3")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _execution_options(parser: argparse.ArgumentParser, *, profile: str, param_help: str) -> None:
    """The options ``run`` and ``sweep`` share: profile, device, seed and notebook parameters."""
    parser.add_argument("--profile", default=profile)
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param", type=parse_param, action="append", default=[],
                        help=f"notebook parameter KEY=VALUE {param_help} (repeatable)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.instructor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute notebooks into build/")
    _execution_options(p_run, profile="smoke", param_help="for every chosen notebook")
    p_run.add_argument("--only", nargs="+", help="notebook ids or names, e.g. 02 03")
    p_run.add_argument("--build", type=Path, default=ROOT / "build")
    p_run.add_argument("--screenshot", type=Path, default=None,
                       help="open the report in headless Chromium (offline) and save a PNG of it here")
    p_sweep = sub.add_parser("sweep", help="run an experiment grid into runs/")
    p_sweep.add_argument("name")
    _execution_options(p_sweep, profile="full", param_help="for every configuration, e.g. split=offline")
    p_sweep.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    p_refresh = sub.add_parser("refresh", help="re-execute committed notebooks in place")
    p_refresh.add_argument("keys", nargs="+")
    p_release = sub.add_parser("release", help="write the student release")
    p_release.add_argument("--dest", type=Path, default=ROOT / "release")
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except (KeyError, ValueError, TypeError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        results = run_all(args.profile, args.only, args.device, args.build, args.seed, dict(args.param))
        print((args.build / "summary.md").read_text(encoding="utf-8"))
        problems = [f"{r.assignment.name}: FAILED" for r in results if not r.ok]
        problems += out_of_range(results, args.profile)
        if args.screenshot is not None:
            facts = browse_report(args.build / "index.html", screenshot=args.screenshot)
            print(f"report: {len(facts['sections'])} notebooks, {facts['images']} figures "
                  f"(all loaded: {facts['images_loaded']}), formulas rendered per page: "
                  f"{ {k: v['formulas'] for k, v in facts['pages'].items()} }; screenshot {args.screenshot}")
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return 1 if problems else 0
    if args.command == "sweep":
        outcome = sweep(args.name, args.profile, args.device, args.runs_dir, args.seed, dict(args.param))
        for exp_id, message in outcome.failed.items():
            print(f"error: {exp_id} failed: {message.splitlines()[-1] if message else ''}", file=sys.stderr)
        return 0 if outcome.ok else 1
    if args.command == "release":
        from course_lib.instructor.release import make_release

        counts = make_release(args.dest)
        for path, n in counts.items():
            print(f"{path}: {n} exercise(s)")
        print(f"student release written to {args.dest} ({sum(counts.values())} exercises)")
        return 0
    for key in args.keys:
        print(f"refreshed {refresh_notebook(ROOT / get_assignment(key).notebook)}")
    return 0
