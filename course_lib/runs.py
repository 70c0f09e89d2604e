"""One path for a run: parameters -> ``output_dir`` -> metrics.json + figures + run record.

Every notebook starts with :func:`start_run`, which checks the notebook contract's parameters
(``profile``, ``device``, ``data_dir``, ``output_dir``, ``seed``), seeds everything, picks the device,
and returns a :class:`Run` that writes results atomically into ``output_dir``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from course_lib.assignments import Assignment, check_profile, get_assignment
from course_lib.data.root import resolve_data_root
from course_lib.recording import atomic_save_figure, atomic_write_json, flat_metrics, read_json
from course_lib.reproducibility import environment_record, seed_everything, select_device

METRICS_FILE = "metrics.json"
RECORD_FILE = "run_record.json"
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_output_dir(assignment: Assignment) -> Path:
    """``<repo>/build/<NN_slug>`` inside a checkout, else ``./build/<NN_slug>``."""
    base = REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else Path.cwd()
    return base / "build" / assignment.name


@dataclass
class Run:
    """An assignment run: its settings, device and output folder."""

    assignment: Assignment
    profile: str
    config: dict[str, Any]
    device: torch.device
    data_dir: Path
    output_dir: Path
    seed: int
    metrics: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """A path inside ``output_dir``."""
        return self.output_dir / name

    def show_figure(self, fig, name: str, *, dpi: int = 110) -> None:
        """Save ``fig`` like :meth:`save_figure`, display the PNG in the notebook and close ``fig``.

        Displaying the saved file shows the same image under any matplotlib backend (also Agg).
        Returns nothing, so a cell ending with it prints no (machine-specific) path.
        """
        from IPython.display import Image, display

        path = self.save_figure(fig, name, dpi=dpi)
        plt.close(fig)
        display(Image(filename=str(path)))

    def save_figure(self, fig, name: str, *, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``output_dir/<name>.png`` (atomically) and return the path."""
        return atomic_save_figure(fig, self.path(name if name.endswith(".png") else f"{name}.png"), dpi=dpi)

    def record_metrics(self, **metrics: Any) -> dict[str, Any]:
        """Add headline numbers to ``output_dir/metrics.json`` (flat JSON, written atomically)."""
        self.metrics.update(flat_metrics(metrics))
        atomic_write_json(self.path(METRICS_FILE), self.metrics)
        return dict(self.metrics)


def start_run(
    assignment: str,
    *,
    profile: str = "smoke",
    device: str = "auto",
    data_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Run:
    """Validate the notebook parameters, seed, choose the device and prepare ``output_dir``.

    ``overrides`` are notebook parameters that replace the profile's values when not ``None``.
    Writes ``run_record.json`` (package versions, device name, seed, git commit, settings). A
    profile setting ``cpu_threads`` sets torch's intra-op thread count for the run on the CPU.
    Raises ``ValueError`` naming the valid values for a bad ``profile`` or ``device``.
    """
    spec = get_assignment(assignment)
    check_profile(profile)
    dev = select_device(device)
    seed_everything(seed)
    out = Path(output_dir) if output_dir is not None else default_output_dir(spec)
    out.mkdir(parents=True, exist_ok=True)
    config = spec.settings(profile, overrides)
    if dev.type == "cpu" and config.get("cpu_threads"):
        torch.set_num_threads(int(config["cpu_threads"]))
    run = Run(spec, profile, config, dev, resolve_data_root(data_dir), out.resolve(), seed)
    stale = run.path(METRICS_FILE)
    if stale.exists():  # a re-run starts its metrics afresh; caches in output_dir are kept
        stale.unlink()
    record = environment_record(dev, seed)
    record.update(assignment=spec.name, profile=profile, settings=config)
    atomic_write_json(run.path(RECORD_FILE), record)
    return run


def read_metrics(output_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``metrics.json`` a run wrote into ``output_dir``."""
    return read_json(Path(output_dir) / METRICS_FILE)
