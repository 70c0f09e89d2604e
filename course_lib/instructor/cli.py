"""Instructor commands: execute notebooks into ``build/``, sweep an experiment grid, refresh, release.

``python -m course_lib.instructor run [--profile P] [--only 02 03] [--device auto] [--param KEY=VALUE]
[--offline]``
    Executes each notebook with papermill into ``build/<NN_slug>/`` (executed notebook, figures,
    metrics.json, run_record.json), each notebook first fetching its missing data sets into the data
    root (``download=True``; ``--offline``: nothing is fetched, missing data fails the notebook with the
    command that fetches it); a failing notebook is recorded and the others still run. Then
    writes ``build/summary.md`` and ``build/index.html`` (``--screenshot PNG``: opened offline in headless
    Chromium, checked and photographed). Exits non-zero when a notebook failed or a metric fell outside
    the profile's expected range (each listed).
``python -m course_lib.instructor sweep NAME [--profile P] [--param KEY=VALUE]``
    Runs the named grid (e.g. ``lm``) into ``runs/<exp_id>/`` through the sweep engine: a configuration
    that finished with the same profile, settings, seed and code is skipped, a failed or damaged one is
    run again, a failing one is recorded and the others go on; then the comparison is built from the
    finished folders. Exits non-zero listing the failed configurations.
``run`` and ``sweep`` also take ``--executor local|slurm [--jobs N] [--slurm-partition P] [--gpus-per-job G]
[--cpus-per-job C] [--mem-gb M] [--time-min T]``: each notebook (run) or configuration (sweep) is then one
submitit job, at most N at once, its log in ``build/submitit/`` or ``runs/submitit/`` (see
:mod:`course_lib.instructor.executors`); without ``--executor`` they run here, one after another.
``python -m course_lib.instructor refresh NN [NN ...]``
    Re-executes committed notebooks in place (default parameters, smoke profile) for nbval.
``python -m course_lib.instructor grade NN SUBMISSIONS_DIR --out DIR [--unsafe] [--timeout S] ...``
    Grades every hand-in zip of the folder, each in a sandbox (see :mod:`course_lib.instructor.grading`):
    ``grades.csv``, ``lms.csv``, ``feedback/``, ``answers/``; with ``--executor`` one job per submission.
``python -m course_lib.instructor release [--dest DIR] [--repo-url https://github.com/OWNER/NAME --ref TAG]``
    Writes the student release (see :mod:`course_lib.instructor.release`); with the repository it is
    published to and the tag or commit students clone, every notebook gets an "Open in Colab" badge and
    a Colab setup cell (an editable clone of the release).

``--param`` names are checked against the notebook's parameters before anything runs. A name the command
has its own option for (``profile``: ``--profile``, ``device``, ``seed``, ``output_dir``: ``--build`` or
``--runs-dir``) is refused, naming the option, and so is, in ``sweep``, ``exp_id`` and any knob the sweep's
configurations set to different values; any other knob a configuration sets takes the ``--param`` value.
``--param KEY=null`` passes ``None`` (what the knob's doc says it means: off, all, the default).
Every chosen notebook is checked to be a valid notebook before anything runs. ``run``, ``sweep`` and
``release`` write only into a folder that is absent, empty or made by the same command (a
``.course_lib.json`` marker), and one process at a time (``.course_lib.lock``; see
:mod:`course_lib.core.folders`): any other folder is refused, naming it and what it holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from course_lib.assignments import ASSIGNMENTS, get_assignment
from course_lib.core.assignment import Assignment, Sweep
from course_lib.core.data.registry import data_checksums
from course_lib.core.device import DEVICES
from course_lib.core.digests import code_digest
from course_lib.core.folders import FolderError, break_lock, hold_until_exit
from course_lib.core.io import DiskFull, atomic_write_text
from course_lib.core.runs import check_parameters
from course_lib.core.settings import check_choice
from course_lib.core.sweep import Configuration, SweepOutcome, plan_sweep, run_sweep
from course_lib.instructor.executors import EXECUTORS, ExecutorOptions, run_jobs, run_sweep_as_jobs
from course_lib.instructor.grading.sandbox import Limits
from course_lib.instructor.notebooks import (
    ROOT,
    check_notebook,
    execute_notebook,
    refresh_notebook,
    run_notebook,
)
from course_lib.instructor.report import (
    NotebookResult,
    browse_report,
    out_of_range,
    summary_markdown,
    write_report,
)

RUN_OPTIONS = {"profile": "--profile", "device": "--device", "seed": "--seed", "output_dir": "--build"}
"""Notebook parameters ``run`` sets from its own options."""
SWEEP_OPTIONS = {**RUN_OPTIONS, "output_dir": "--runs-dir"}
"""Notebook parameters ``sweep`` sets from its own options."""


def check_params(a: Assignment, params: Mapping[str, Any], options: Mapping[str, str]) -> None:
    """Refuse ``--param`` names that ``a``'s notebook does not declare and those the command sets from its
    own ``options``, naming the option to use."""
    check_parameters(a, list(params))
    own = [n for n in params if n in options]
    if own:
        raise ValueError(f"--param {', '.join(own)}: the command sets {'it' if len(own) == 1 else 'them'} "
                         f"itself; use {', '.join(options[n] for n in own)} instead")


def check_distinct(sweep: Sweep, settings: Mapping[str, Mapping[str, Any]],
                   params: Mapping[str, Any]) -> None:
    """Refuse ``params`` that make two configurations of ``sweep`` the same run: ``settings`` are their
    settings by ``exp_id`` (``--param`` values applied)."""
    seen: dict[str, str] = {}
    for exp_id, values in settings.items():
        same = repr({k: v for k, v in values.items() if k != "exp_id"})
        if same in seen:
            given = ", ".join(f"{k}={v!r}" for k, v in params.items())
            raise ValueError(f"--param {given} makes configurations {seen[same]} and {exp_id} of sweep "
                             f"{sweep.name!r} the same run; leave out what the sweep varies")
        seen[same] = exp_id


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
    executor: ExecutorOptions | None = None,
    download: bool = True,
) -> list[NotebookResult]:
    """Execute the chosen notebooks into ``build``; then write summary.md and index.html.

    ``params`` are extra notebook parameters passed to every chosen notebook. ``executor``: each notebook
    is one submitit job (logs in ``build/submitit/``); ``None``: one after another in this process.
    ``download``: each notebook fetches its missing data sets first (its ``download`` parameter).
    Every notebook is checked before the first one runs; ``build`` must be absent, empty or a build
    folder, and is held by this process until it ends.
    """
    check_choice("device", device, DEVICES)
    chosen = [get_assignment(k) for k in only] if only else list(ASSIGNMENTS.values())
    for a in chosen:
        a.check_profile(profile)
        check_params(a, params or {}, RUN_OPTIONS)
        check_notebook(ROOT / a.notebook)
    hold_until_exit(build, "build")
    outs = {a.name: (build / a.name).resolve() for a in chosen}
    tasks = {a.name: partial(run_notebook, ROOT / a.notebook, outs[a.name] / f"{a.name}.ipynb",
                             {"download": download, **(params or {}), "profile": profile, "device": device,
                              "output_dir": str(outs[a.name]), "seed": seed})
             for a in chosen}
    if executor is None:
        results = []
        for a in chosen:
            started = time.perf_counter()
            print(f"[{a.name}] executing ({profile}) -> {outs[a.name]}", flush=True)
            error = tasks[a.name]()
            results.append(NotebookResult(a, outs[a.name], error is None, time.perf_counter() - started,
                                          error or ""))
            if error is not None:
                print(f"[{a.name}] FAILED: {error.splitlines()[0]}", flush=True)
            print(f"[{a.name}] done in {results[-1].seconds:.1f} s", flush=True)
    else:
        print(f"executing {len(tasks)} notebook(s) ({profile}) as {executor.kind} jobs -> {build}",
              flush=True)
        ends = run_jobs(executor, build / "submitit", tasks, name="run")
        for out in outs.values():
            break_lock(out)  # its job has ended: a lock its killed kernel left is stale
        results = [NotebookResult(a, outs[a.name], end.error is None, end.seconds,
                                  "" if end.error is None else f"{end.error}\n(job log: {end.log})")
                   for a, end in ((a, ends[a.name]) for a in chosen)]
    atomic_write_text(build / "summary.md", summary_markdown(results, profile))
    write_report(results, profile, build)
    return results


def sweep(name: str, profile: str = "full", device: str = "auto", runs_dir: Path = ROOT / "runs",
          seed: int = 0, params: Mapping[str, Any] | None = None,
          executor: ExecutorOptions | None = None) -> SweepOutcome:
    """Run every configuration of the sweep ``name`` through papermill into ``runs_dir/<exp_id>/``.

    ``params`` (e.g. ``{"split": "offline"}``) are knob values for every configuration (see
    :func:`check_params`). ``executor``:
    each configuration to run is one submitit job (logs in ``runs_dir/submitit/``, by id in
    ``outcome.logs``); ``None``: one after another in this process. Either way the engine's rules hold:
    what finished with the same key is skipped, a failed or killed run is recorded and runs again next
    time, and the comparison is built from the run folders once every run has ended. The key of a run
    holds the checksums of the assignment's data (:func:`~course_lib.core.data.registry.data_checksums`),
    so a run made from other data runs again. ``runs_dir`` must be absent, empty or a runs folder, and
    is held by this process until it ends (a second sweep into it is refused).
    """
    owners = [a for a in ASSIGNMENTS.values() if name in a.sweeps]
    if not owners:
        valid = sorted(s for a in ASSIGNMENTS.values() for s in a.sweeps)
        raise KeyError(f"unknown sweep {name!r}; choose one of {valid}")
    a = owners[0]
    a.check_profile(profile)
    check_choice("device", device, DEVICES)
    check_params(a, params or {}, SWEEP_OPTIONS)
    if "exp_id" in (params or {}):
        raise ValueError(f"--param exp_id: each configuration of sweep {name!r} has its own exp_id (its run "
                         "folder); leave it out")
    check_notebook(ROOT / a.notebook)
    knobs = {k: v for k, v in (params or {}).items() if k in a.knobs}

    def knob_values(config: Mapping[str, Any]) -> dict[str, Any]:
        return {**config, **knobs}

    code = code_digest(a.package, "course_lib.core")
    data = data_checksums(a.datasets, (params or {}).get("data_dir"))

    def key_of(config: Mapping[str, Any]) -> dict[str, Any]:
        return {"profile": profile, "seed": seed, "code": code, "data": data,
                "settings": a.settings(profile, knob_values(config)).to_dict()}

    def parameters(config: Mapping[str, Any], folder: Path) -> dict[str, Any]:
        return {**(params or {}), **knob_values(config), "profile": profile, "device": device,
                "output_dir": str(folder.resolve()), "seed": seed}

    # every configuration is checked before the first one runs
    check_distinct(a.sweeps[name], {c["exp_id"]: key_of(c)["settings"] for c in a.sweeps[name].configs},
                   params or {})
    hold_until_exit(runs_dir, "runs")
    if executor is None:
        return run_sweep(a.sweeps[name], runs_dir, lambda config, folder: execute(
            a, folder / f"{a.name}.ipynb", parameters(config, folder)), key_of)

    def notebook_job(configuration: Configuration) -> partial[None]:
        return partial(execute_notebook, ROOT / a.notebook, configuration.folder / f"{a.name}.ipynb",
                       parameters(configuration.values, configuration.folder))

    return run_sweep_as_jobs(plan_sweep(a.sweeps[name], runs_dir, key_of), notebook_job, executor)


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
    """The options ``run`` and ``sweep`` share: profile, device, seed, notebook parameters, executor."""
    parser.add_argument("--profile", default=profile)
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param", type=parse_param, action="append", default=[],
                        help=f"notebook parameter KEY=VALUE {param_help} (repeatable)")
    _job_options(parser, "notebook or configuration")


def _job_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """``--executor`` and the options of its jobs, one job per ``unit``."""
    jobs = parser.add_argument_group("jobs (submitit)", f"with --executor local or slurm: one job per {unit}")
    jobs.add_argument("--executor", default="none", choices=EXECUTORS,
                      help="none: one after another in this process (default)")
    jobs.add_argument("--jobs", type=int, help="at most this many jobs at once (default 1)")
    jobs.add_argument("--slurm-partition", help="Slurm partition")
    jobs.add_argument("--gpus-per-job", type=int,
                      help="GPUs per job (local: each job sees the first G GPUs; default none)")
    jobs.add_argument("--cpus-per-job", type=int, help="CPUs per job (Slurm)")
    jobs.add_argument("--mem-gb", type=float, help="memory per job in GB (Slurm)")
    jobs.add_argument("--time-min", type=int, help="time limit per job in minutes (default 240)")


EXECUTOR_OPTIONS = ("jobs", "slurm_partition", "gpus_per_job", "cpus_per_job", "mem_gb", "time_min")


def executor_options(args: argparse.Namespace) -> ExecutorOptions | None:
    """The ``--executor`` options given, ``None`` for ``--executor none`` (which takes none of them)."""
    given = {k: getattr(args, k) for k in EXECUTOR_OPTIONS if getattr(args, k) is not None}
    if args.executor == "none":
        if given:
            flags = [f"--{k.replace('_', '-')}" for k in given]
            raise ValueError(f"{flags} need --executor local or slurm")
        return None
    return ExecutorOptions(args.executor, **given)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.instructor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute notebooks into build/")
    _execution_options(p_run, profile="smoke", param_help="for every chosen notebook")
    p_run.add_argument("--only", nargs="+", help="notebook ids or names, e.g. 02 03")
    p_run.add_argument("--build", type=Path, default=ROOT / "build")
    p_run.add_argument("--offline", action="store_true",
                       help="fetch no data (default: each notebook fetches its missing data sets first)")
    p_run.add_argument("--screenshot", type=Path, default=None,
                       help="open the report in headless Chromium (offline) and save a PNG of it here")
    p_sweep = sub.add_parser("sweep", help="run an experiment grid into runs/")
    p_sweep.add_argument("name")
    _execution_options(p_sweep, profile="full", param_help="for every configuration, e.g. split=offline")
    p_sweep.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    p_refresh = sub.add_parser("refresh", help="re-execute committed notebooks in place")
    p_refresh.add_argument("keys", nargs="+")
    p_grade = sub.add_parser("grade", help="grade a folder of hand-in zips in a sandbox each")
    p_grade.add_argument("assignment", help="assignment id or name, e.g. 02")
    p_grade.add_argument("submissions", type=Path, help="folder of the zips (each name is a submission's id)")
    p_grade.add_argument("--out", type=Path, required=True, help="folder for grades, feedback and answers")
    defaults = Limits()
    p_grade.add_argument("--timeout", type=float, default=defaults.timeout_s,
                         help="seconds for one submission's tests in all (default %(default)s)")
    p_grade.add_argument("--test-timeout", type=float, default=defaults.test_timeout_s,
                         help="seconds for one test (default %(default)s)")
    p_grade.add_argument("--test-cpu", type=float, default=defaults.test_cpu_s,
                         help="CPU seconds for one test (default %(default)s)")
    p_grade.add_argument("--memory-gb", type=float, default=defaults.memory_gb,
                         help="memory of one submission's processes together (default %(default)s)")
    p_grade.add_argument("--processes", type=int, default=defaults.processes,
                         help="processes and threads of one submission (default %(default)s)")
    p_grade.add_argument("--unsafe", action="store_true",
                         help="grade without a sandbox where none can start (the code runs with your rights)")
    _job_options(p_grade, "submission; without --executor, --jobs N grades N at once in this process")
    p_release = sub.add_parser("release", help="write the student release")
    p_release.add_argument("--dest", type=Path, default=ROOT / "release")
    p_release.add_argument("--repo-url", default=None,
                           help="GitHub repository the release is published to (adds Colab links and the "
                                "Colab setup cell)")
    p_release.add_argument("--ref", default=None,
                           help="with --repo-url: the tag or commit of that repository students clone")
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except (KeyError, ValueError, TypeError, FileNotFoundError, FolderError, DiskFull) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        results = run_all(args.profile, args.only, args.device, args.build, args.seed, dict(args.param),
                          executor_options(args), download=not args.offline)
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
        outcome = sweep(args.name, args.profile, args.device, args.runs_dir, args.seed, dict(args.param),
                        executor_options(args))
        for exp_id, message in outcome.failed.items():
            log = f" (job log: {outcome.logs[exp_id]})" if exp_id in outcome.logs else ""
            last = message.splitlines()[-1] if message else ""
            print(f"error: {exp_id} failed: {last}{log}", file=sys.stderr)
        return 0 if outcome.ok else 1
    if args.command == "grade":
        from course_lib.instructor.grading import grade

        limits = Limits(timeout_s=args.timeout, test_timeout_s=args.test_timeout, test_cpu_s=args.test_cpu,
                        memory_gb=args.memory_gb, processes=args.processes)
        in_process = args.executor == "none" and args.jobs is not None  # --jobs alone: threads here
        jobs, args.jobs = (args.jobs, None) if in_process else (1, args.jobs)
        failed = grade(args.assignment, args.submissions, args.out, limits, unsafe=args.unsafe,
                       executor=executor_options(args), jobs=jobs)
        print(f"grades: {args.out / 'grades.csv'}, feedback: {args.out / 'feedback'}, "
              f"answers: {args.out / 'answers'}, for the LMS: {args.out / 'lms.csv'}")
        for name, error in failed.items():
            print(f"error: {name}: grading failed: {error.strip().splitlines()[-1]}", file=sys.stderr)
        return 1 if failed else 0
    if args.command == "release":
        from course_lib.instructor.release import make_release, unshipped_references

        counts = make_release(args.dest, repo_url=args.repo_url, ref=args.ref)
        for path, n in counts.items():
            print(f"{path}: {n} exercise(s)")
        print(f"student release written to {args.dest} ({sum(counts.values())} exercises)")
        for reference in unshipped_references(args.dest):
            print(f"warning: the release names what it does not ship: {reference}", file=sys.stderr)
        return 0
    notebooks = [check_notebook(ROOT / get_assignment(key).notebook) for key in args.keys]  # all first
    for notebook in notebooks:
        print(f"refreshed {refresh_notebook(notebook)}")
    return 0
