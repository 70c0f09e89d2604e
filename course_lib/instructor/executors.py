"""Running tasks as submitit jobs, locally or on a Slurm cluster, at most ``jobs`` at once.

``sweep`` and ``run`` (``--executor local|slurm``) turn each configuration or notebook into one task: a
picklable callable that returns its error message (``None`` when it succeeded). :func:`run_jobs` submits
each as one job and waits for all of them; the jobs' logs (stdout and stderr in one file per job) go to
the folder it is given. submitit is imported only here, and only when jobs are run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from course_lib.core.folders import break_lock
from course_lib.core.settings import check_choice
from course_lib.core.sweep import (
    SKIPPED,
    Configuration,
    SweepOutcome,
    SweepPlan,
    conclude,
    record_lost,
    run_config,
)

EXECUTORS = ("none", "local", "slurm")
"""``--executor`` choices; ``none`` runs in this process, one after another."""
SLURM_ONLY = ("slurm_partition", "cpus_per_job", "mem_gb")
POLL_S = 0.25
"""Seconds between two looks at the running jobs."""

Task = Callable[[], "str | None"]


def say(line: str) -> None:
    """Print ``line`` at once (the command's output may go to a file while the jobs run)."""
    print(line, flush=True)


@dataclass(frozen=True)
class ExecutorOptions:
    """Where jobs run (``kind``: ``"local"`` or ``"slurm"``), how many at once (``jobs``) and what each
    gets: a Slurm partition, GPUs (local: the first ``gpus_per_job`` GPUs are visible to each job, none
    by default), CPUs, memory in GB and a time limit in minutes (the job is stopped after it)."""

    kind: str
    jobs: int = 1
    slurm_partition: str | None = None
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    time_min: int = 240

    def __post_init__(self) -> None:
        check_choice("executor", self.kind, EXECUTORS[1:])
        values = {n: getattr(self, n) for n in ("jobs", "time_min", "cpus_per_job", "mem_gb", "gpus_per_job")}
        bad = [f"{n}={v!r}" for n, v in values.items()
               if v is not None and (v < 0 if n == "gpus_per_job" else v <= 0)]
        if bad:
            raise ValueError(f"{', '.join(bad)}: not valid; jobs, time, CPUs and memory must be > 0, "
                             "GPUs >= 0")
        given = [name for name in SLURM_ONLY if getattr(self, name) is not None]
        if self.kind != "slurm" and given:
            raise ValueError(f"{given} apply to the slurm executor only")


def submitit_parameters(options: ExecutorOptions, name: str = "course") -> dict[str, Any]:
    """``options`` as the parameters of submitit's ``AutoExecutor.update_parameters``: the job ``name``,
    ``timeout_min``, ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_partition`` and
    ``slurm_array_parallelism`` (at most ``jobs`` of the array run at once), one log file per job
    (``stderr_to_stdout``). Options left unset are left out; the ``slurm_`` ones apply on Slurm only."""
    parameters = {
        "name": name, "timeout_min": options.time_min, "gpus_per_node": options.gpus_per_job,
        "cpus_per_task": options.cpus_per_job, "mem_gb": options.mem_gb, "stderr_to_stdout": True,
        "slurm_partition": options.slurm_partition, "slurm_array_parallelism": options.jobs,
    }
    return {k: v for k, v in parameters.items() if v is not None}


def make_executor(options: ExecutorOptions, folder: Path, name: str = "course") -> Any:
    """A submitit ``AutoExecutor`` for ``options`` that keeps its files and the jobs' logs in ``folder``."""
    try:
        import submitit
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"--executor {options.kind} needs submitit: pip install submitit (it is in "
                                  "the instructor extra)") from err
    executor = submitit.AutoExecutor(folder=folder, cluster=options.kind)
    executor.update_parameters(**submitit_parameters(options, name))
    return executor


@dataclass(frozen=True)
class JobEnd:
    """How a job ended: its id, its log file, its error (``None``: the task succeeded) and the seconds
    from its submission to its end (queueing included)."""

    job_id: str
    log: Path
    error: str | None
    seconds: float


def _job_error(job: Any, kind: str) -> str | None:
    """The task's returned error, or why the job gave no result."""
    # A local job writes its result before its process ends, so a missing result means it was killed;
    # on a cluster the file may show late, and submitit waits for it.
    if kind == "local" and not job.paths.result_pickle.exists():
        return f"job {job.job_id} ended without a result (killed, or out of time or memory)"
    exc = job.exception()
    if exc is None:
        return job.result()
    return f"job {job.job_id} failed: {str(exc).strip()}"


def run_jobs(options: ExecutorOptions, folder: Path, tasks: Mapping[str, Task], *, name: str = "course",
             log: Callable[[str], None] = say) -> dict[str, JobEnd]:
    """Run each task of ``tasks`` (by name) as one job, at most ``options.jobs`` at once, and wait until
    every job has ended; how each ended, by name in the order of ``tasks``.

    On Slurm the tasks form one job array whose ``slurm_array_parallelism`` bounds how many run at once;
    locally (submitit's ``LocalExecutor`` has no such bound) a job is submitted whenever fewer than
    ``jobs`` are running.
    """
    if not tasks:
        return {}
    executor = make_executor(options, folder, name)
    waiting = list(tasks.items())
    running: dict[str, tuple[Any, float]] = {}

    def started(n: str, job: Any) -> None:
        running[n] = (job, time.monotonic())
        log(f"[{n}] submitted as job {job.job_id} (log {job.paths.stdout})")

    if options.kind == "slurm":
        with executor.batch():
            jobs = [executor.submit(task) for _, task in waiting]
        for (n, _), job in zip(waiting, jobs, strict=True):
            started(n, job)
        waiting = []
    ends: dict[str, JobEnd] = {}
    while waiting or running:
        while waiting and len(running) < options.jobs:
            n, task = waiting.pop(0)
            started(n, executor.submit(task))
        for n, (job, since) in list(running.items()):
            if job.done():
                del running[n]
                ends[n] = JobEnd(str(job.job_id), Path(job.paths.stdout), _job_error(job, options.kind),
                                 time.monotonic() - since)
                log(f"[{n}] job {job.job_id} {'done' if ends[n].error is None else 'FAILED'} "
                    f"in {ends[n].seconds:.1f} s")
        if running:
            time.sleep(POLL_S)
    return {n: ends[n] for n in tasks}


def run_sweep_as_jobs(plan: SweepPlan, work_of: Callable[[Configuration], Callable[[], Any]],
                      options: ExecutorOptions, *, log: Callable[[str], None] = say) -> SweepOutcome:
    """The job counterpart of :func:`~course_lib.core.sweep.run_sweep`: each configuration of ``plan``
    still to do is one job that does ``work_of(configuration)`` (a picklable callable) and records its
    outcome itself
    (:func:`~course_lib.core.sweep.run_config`); a job that ended without recording one (killed, out of
    time or memory) is recorded as failed here, and a lock its killed kernel left in its run folder is
    removed (the next sweep runs it again). Once every job has ended, the outcome and the comparison
    come from the run folders (:func:`~course_lib.core.sweep.conclude`); ``outcome.logs`` has each job's
    log file. The jobs' files go to ``runs_dir/submitit/``."""
    for c in plan.configurations:
        if c.skip:
            log(f"[{c.exp_id}] {SKIPPED}")
    tasks = {c.exp_id: partial(run_config, c, work_of(c), plan.sweep.load) for c in plan.todo}
    ends = run_jobs(options, plan.runs_dir / "submitit", tasks, name=f"sweep-{plan.sweep.name}", log=log)
    for c in plan.todo:
        break_lock(c.folder)  # its job has ended
        record_lost(c, ends[c.exp_id].error or f"job {ends[c.exp_id].job_id} recorded no outcome")
    outcome = conclude(plan)
    outcome.logs = {exp_id: end.log for exp_id, end in ends.items()}
    return outcome
