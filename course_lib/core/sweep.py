"""The one sweep engine: run a :class:`~course_lib.core.assignment.Sweep`'s configurations one folder each,
resume what finished with the same key, record failures and go on, then compare the finished runs.

Used by the instructor's ``sweep`` command (each configuration executes the notebook through papermill, in
this process or as a cluster job) and by notebook 03's in-notebook grid (each configuration trains in the
notebook's process). A run folder is taken as finished only when its ``sweep_status.json`` says ``ok`` for
the same key (profile, settings, seed: whatever the caller says determines the run) and its results load
(``Sweep.load``).

:func:`run_sweep` runs the configurations one after another. The parts it is made of serve any other way
of running them (the instructor's executors submit each as a job): :func:`plan_sweep` says which
configurations need running, :func:`run_config` runs one and records its outcome where it runs,
:func:`record_lost` records one that ended without recording its outcome (a killed job), and :func:`conclude`
builds the outcome and the comparison from the run folders alone.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from course_lib.core.assignment import Sweep
from course_lib.core.folders import hold_folder
from course_lib.core.io import atomic_write_json, jsonable, read_json
from course_lib.core.training import progress_enabled

STATUS_FILE = "sweep_status.json"
SKIPPED = "finished earlier with the same settings, skipped"
"""The line logged for a configuration that is not run again."""


@dataclass
class SweepOutcome:
    """What a sweep did: folders of finished runs (in config order), skipped ids, failures by id, and the
    log file of each configuration that ran as a job."""

    finished: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    comparison: Any = None
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class Configuration:
    """One configuration of a sweep as planned: its id, knob ``values``, the folder its run writes, its
    key (what determines the run) and whether it finished earlier with that key (``skip``: not run
    again)."""

    exp_id: str
    values: Mapping[str, Any]
    folder: Path
    key: Mapping[str, Any]
    skip: bool


@dataclass(frozen=True)
class SweepPlan:
    """Every configuration of ``sweep`` as a :class:`Configuration`, in order, under ``runs_dir``."""

    sweep: Sweep
    runs_dir: Path
    configurations: tuple[Configuration, ...]

    @property
    def todo(self) -> list[Configuration]:
        """The configurations to run now."""
        return [c for c in self.configurations if not c.skip]


def error_message(exc: BaseException) -> str:
    """What an exception says (its type and message, a papermill error's cell traceback included)."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _status(folder: Path) -> dict[str, Any]:
    """The folder's recorded status (``{}`` when there is none or it does not read)."""
    try:
        status = read_json(folder / STATUS_FILE)
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def _ok(status: Mapping[str, Any], key: Mapping[str, Any]) -> bool:
    return status.get("status") == "ok" and status.get("key") == jsonable(key)


def finished_earlier(sweep: Sweep, folder: Path, key: Mapping[str, Any],
                     notice: Callable[[str], None] = print) -> bool:
    """True when ``folder`` holds a run that ended ``ok`` for ``key`` and whose results load
    (``sweep.load``); a finished run whose results are damaged gets a one-line ``notice``."""
    if not _ok(_status(folder), key):
        return False
    try:
        sweep.load(folder)
    except (OSError, ValueError) as err:
        notice(f"[{folder.name}] {str(err).splitlines()[0]}; running it again")
        return False
    return True


def plan_sweep(sweep: Sweep, runs_dir: str | os.PathLike,
               key_of: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> SweepPlan:
    """Which configurations of ``sweep`` need running into ``runs_dir/<exp_id>/``: those that did not
    finish earlier with the key ``key_of(config)``. The status file of each of them is removed now, so
    that whatever happens to its run (killed, never started) no earlier ``ok`` stands for it."""
    runs_dir = Path(runs_dir)
    configurations = []
    for values in sweep.configs:
        folder = runs_dir / str(values["exp_id"])
        key = key_of(values)
        skip = finished_earlier(sweep, folder, key)
        if not skip:
            (folder / STATUS_FILE).unlink(missing_ok=True)
        configurations.append(Configuration(str(values["exp_id"]), values, folder, key, skip))
    return SweepPlan(sweep, runs_dir, tuple(configurations))


def _record_failure(configuration: Configuration, message: str) -> None:
    atomic_write_json(configuration.folder / STATUS_FILE,
                      {"status": "failed", "key": configuration.key, "error": message})


def run_config(configuration: Configuration, work: Callable[[], Any],
               load: Callable[[Path], Any]) -> str | None:
    """Run one configuration, ``work()``, check that its results load (``load(configuration.folder)``)
    and record the outcome in its status file: ``ok`` with the key, or ``failed`` with the error.
    Returns the error (``None`` when it finished). Called where the configuration runs: the sweep's
    process or its job, so one killed before it ends records nothing (see :func:`record_lost`)."""
    try:
        work()
        load(configuration.folder)
    except Exception as exc:  # a failing configuration is recorded; the others still run
        message = error_message(exc)
        _record_failure(configuration, message)
        return message
    atomic_write_json(configuration.folder / STATUS_FILE, {"status": "ok", "key": configuration.key})
    return None


def record_lost(configuration: Configuration, message: str) -> None:
    """Record ``configuration`` as failed with ``message`` when it ended without recording its outcome
    (its job was killed, ran out of time or memory, or never started); a recorded outcome stays."""
    if not (configuration.folder / STATUS_FILE).exists():
        _record_failure(configuration, message)


def conclude(plan: SweepPlan) -> SweepOutcome:
    """The sweep's outcome from its run folders alone, once every configuration has ended: one is
    finished when it was skipped or its status says ``ok`` for its key, else failed with the recorded
    error. Then ``sweep.compare`` builds the comparison from the finished folders into
    ``runs_dir/<name>_comparison``."""
    outcome = SweepOutcome(skipped=[c.exp_id for c in plan.configurations if c.skip])
    for c in plan.configurations:
        status = {} if c.skip else _status(c.folder)
        if c.skip or _ok(status, c.key):
            outcome.finished.append(c.folder)
        else:
            outcome.failed[c.exp_id] = status.get("error", "ended without recording an outcome")
    if outcome.finished:
        out_dir = plan.runs_dir / f"{plan.sweep.name}_comparison"
        outcome.comparison = plan.sweep.compare(outcome.finished, out_dir)
    return outcome


def run_sweep(
    sweep: Sweep,
    runs_dir: str | os.PathLike,
    work: Callable[[Mapping[str, Any], Path], None],
    key_of: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    *,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> SweepOutcome:
    """Run every configuration of ``sweep`` into ``runs_dir/<exp_id>/`` with ``work(values, folder)``
    (``values``: the configuration's knob values), one after another in this process.

    ``key_of(values)`` says what determines a run; a folder that finished with an equal key is skipped,
    any other (missing, failed, damaged, other settings) is run again. A configuration that raises is
    recorded as failed and the sweep goes on. Then ``sweep.compare`` builds the comparison from the
    finished folders into ``runs_dir/<name>_comparison``. ``runs_dir`` must be absent, empty or a runs
    folder, and no other process's sweep may be using it
    (:class:`~course_lib.core.folders.FolderError` otherwise, naming the folder and what holds it).
    """
    with hold_folder(runs_dir, "runs", log=log):
        plan = plan_sweep(sweep, runs_dir, key_of)
        for c in tqdm(plan.configurations, desc=f"sweep {sweep.name}",
                      disable=not progress_enabled(progress)):
            if c.skip:
                log(f"[{c.exp_id}] {SKIPPED}")
                continue
            log(f"[{c.exp_id}] running")
            error = run_config(c, partial(work, c.values, c.folder), sweep.load)
            if error is not None:
                log(f"[{c.exp_id}] FAILED: {error.splitlines()[0]}")
        return conclude(plan)
