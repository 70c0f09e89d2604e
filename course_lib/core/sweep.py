"""The one sweep engine: run a :class:`~course_lib.core.assignment.Sweep`'s configurations one folder each,
resume what finished with the same key, record failures and go on, then compare the finished runs.

Used by ``nox -s sweep`` (each configuration executes the notebook through papermill) and by notebook
03's in-notebook grid (each configuration trains in the notebook's process). A run folder is taken as
finished only when its ``sweep_status.json`` says ``ok`` for the same key (profile, settings, seed:
whatever the caller says determines the run) and its results load (``Sweep.load``).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from course_lib.core.assignment import Sweep
from course_lib.core.io import atomic_write_json, jsonable, read_json
from course_lib.core.training import progress_enabled

STATUS_FILE = "sweep_status.json"


@dataclass
class SweepOutcome:
    """What a sweep did: folders of finished runs (in config order), skipped ids, failures by id."""

    finished: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    comparison: Any = None

    @property
    def ok(self) -> bool:
        return not self.failed


def finished_earlier(sweep: Sweep, folder: Path, key: Mapping[str, Any],
                     notice: Callable[[str], None] = print) -> bool:
    """True when ``folder`` holds a run that ended ``ok`` for ``key`` and whose results load
    (``sweep.load``); a finished run whose results are damaged gets a one-line ``notice``."""
    try:
        status = read_json(folder / STATUS_FILE)
    except (OSError, ValueError):
        return False
    if status.get("status") != "ok" or status.get("key") != jsonable(key):
        return False
    try:
        sweep.load(folder)
    except (OSError, ValueError) as err:
        notice(f"[{folder.name}] {str(err).splitlines()[0]}; running it again")
        return False
    return True


def run_sweep(
    sweep: Sweep,
    runs_dir: str | os.PathLike,
    run_one: Callable[[Mapping[str, Any], Path], None],
    key_of: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    *,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> SweepOutcome:
    """Run every configuration of ``sweep`` into ``runs_dir/<exp_id>/`` with ``run_one(config, folder)``.

    ``key_of(config)`` says what determines a run; a folder that finished with an equal key is skipped,
    any other (missing, failed, damaged, other settings) is run again. A configuration that raises is
    recorded as failed and the sweep goes on. Then ``sweep.compare`` builds the comparison from the
    finished folders into ``runs_dir/<name>_comparison``.
    """
    runs_dir = Path(runs_dir)
    outcome = SweepOutcome()
    bar = tqdm(sweep.configs, desc=f"sweep {sweep.name}", disable=not progress_enabled(progress))
    for config in bar:
        exp_id = str(config["exp_id"])
        folder = runs_dir / exp_id
        key = key_of(config)
        if finished_earlier(sweep, folder, key):
            log(f"[{exp_id}] finished earlier with the same settings, skipped")
            outcome.skipped.append(exp_id)
            outcome.finished.append(folder)
            continue
        (folder / STATUS_FILE).unlink(missing_ok=True)
        log(f"[{exp_id}] running")
        try:
            run_one(config, folder)
            sweep.load(folder)
        except Exception as exc:  # a failing configuration is recorded; the others still run
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            atomic_write_json(folder / STATUS_FILE, {"status": "failed", "key": key, "error": message})
            outcome.failed[exp_id] = message
            log(f"[{exp_id}] FAILED: {message.splitlines()[0] if message else repr(exc)}")
            continue
        atomic_write_json(folder / STATUS_FILE, {"status": "ok", "key": key})
        outcome.finished.append(folder)
    bar.close()
    if outcome.finished:
        outcome.comparison = sweep.compare(outcome.finished, runs_dir / f"{sweep.name}_comparison")
    return outcome
