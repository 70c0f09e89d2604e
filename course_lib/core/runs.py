"""One path for a run: notebook parameters -> checked settings -> ``output_dir`` -> metrics, figures, record.

Every notebook's first cell after ``parameters`` is ``run = start_run(<package>.ASSIGNMENT, globals())``.
:func:`start_run` refuses a parameter the notebook does not declare (naming it and listing the valid
ones), checks the contract parameters and every knob value, seeds everything, picks the device, sets
the CPU threads, and returns a :class:`Run` that writes results atomically into ``output_dir``. The
names it checks are those assigned by the latest execution of the notebook's own parameters cell (its
first line is :data:`PARAMETERS_HEADER`; JupyterLab, Colab, nbconvert and papermill all keep it in
IPython's input history) and by the cell papermill injects after it (:data:`PAPERMILL_HEADER`). The
notebook's last cell, :meth:`Run.check_expected`, checks the recorded metrics against the profile's
expected ranges.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from course_lib.core.assignment import METRICS_FILE, Assignment
from course_lib.core.data.registry import require_any
from course_lib.core.data.root import resolve_data_root
from course_lib.core.device import environment_record, seed_everything, select_device, set_cpu_threads
from course_lib.core.folders import claim_folder, hold_until_exit
from course_lib.core.io import atomic_save_figure, atomic_write_json, flat_metrics, read_json
from course_lib.core.settings import UNSET, Settings

RECORD_FILE = "run_record.json"
RESULTS = (METRICS_FILE, "history.json", "args.json")
"""The files at the top of a run folder that describe one run (besides its record and the figures the
record lists): a new run removes the previous run's. Checkpoints and caches stay: they are keyed by what
made them and checked on load."""
REPO_ROOT = Path(__file__).resolve().parents[2]
PAPERMILL_HEADER = "# Parameters"
"""First line of the cell papermill injects after the ``parameters`` cell."""
PARAMETERS_HEADER = "# Notebook parameters"
"""First line of every notebook's own ``parameters`` cell, by which :func:`start_run` finds it."""


def default_output_dir(assignment: Assignment) -> Path:
    """``<repo>/build/<NN_slug>`` inside a checkout, else ``./build/<NN_slug>``."""
    base = REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else Path.cwd()
    return base / "build" / assignment.name


@dataclass
class Run:
    """An assignment run: its checked settings, device and output folder."""

    assignment: Assignment
    profile: str
    settings: Settings
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
        """Save a matplotlib figure as ``output_dir/<name>.png`` (atomically), list it among the run's
        ``figures`` in ``run_record.json`` and return the path."""
        path = atomic_save_figure(fig, self.path(name if name.endswith(".png") else f"{name}.png"), dpi=dpi)
        record = read_json(self.path(RECORD_FILE))
        if path.name not in record.setdefault("figures", []):
            record["figures"].append(path.name)
            atomic_write_json(self.path(RECORD_FILE), record)
        return path

    def record_metrics(self, **metrics: Any) -> dict[str, Any]:
        """Add headline numbers to ``output_dir/metrics.json`` (flat JSON, written atomically)."""
        self.metrics.update(flat_metrics(metrics))
        atomic_write_json(self.path(METRICS_FILE), self.metrics)
        return dict(self.metrics)

    def check_expected(self) -> None:
        """Print each metric the profile expects, its recorded value and its range, one line each; then
        raise ``ValueError`` naming every metric that is missing or outside its range (with its value and
        the range)."""
        expected = self.assignment.expected.get(self.profile, {})
        problems = []
        for key, (lo, hi) in expected.items():
            value = self.metrics.get(key, "missing")
            ok = self.assignment.within(self.profile, key, value)
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            print(f"{key:42s} {shown:>10s}  expected [{lo:g}, {hi:g}]  {'ok' if ok else 'OUT OF RANGE'}")
            if not ok:
                problems.append(f"{key}={value} not in [{lo:g}, {hi:g}]")
        if problems:
            raise ValueError(f"{self.assignment.name} ({self.profile} profile): {len(problems)} metric(s) "
                             f"outside the expected ranges: {'; '.join(problems)}")


def assigned_names(source: str) -> list[str]:
    """The names a cell's top-level statements assign (``x = ...``, ``x: int = ...``, ``x += ...``,
    ``a, b = ...``), in order; none for a cell that does not parse."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    names: list[str] = []
    for node in body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            for name in ast.walk(target) if target is not None else ():
                if isinstance(name, ast.Name) and name.id not in names:
                    names.append(name.id)
    return names


def given_parameters(namespace: Mapping[str, Any]) -> list[str]:
    """The parameters set in this kernel: the names assigned by the latest execution of the notebook's
    parameters cell (first line :data:`PARAMETERS_HEADER`) and of papermill's injected cell
    (:data:`PAPERMILL_HEADER`), read from IPython's input history (``_ih``); for a plain mapping (no
    history), every key of ``namespace``."""
    history = namespace.get("_ih")
    if history is None:
        return list(namespace)
    latest: dict[str, str] = {}
    for source in history:
        if isinstance(source, str):
            for header in (PARAMETERS_HEADER, PAPERMILL_HEADER):
                if source.lstrip().startswith(header):
                    latest[header] = source
    names: list[str] = []
    for source in latest.values():
        names += [n for n in assigned_names(source) if n not in names]
    return names


def check_parameters(assignment: Assignment, names: list[str]) -> None:
    """Refuse parameters ``assignment``'s notebook does not declare, naming them and the valid ones."""
    unknown = [n for n in names if n not in assignment.parameters]
    if unknown:
        raise ValueError(
            f"{assignment.name}: unknown parameter(s) {unknown}; "
            f"valid parameters: {list(assignment.parameters)}"
        )


def _path_or_none(name: str, value: Any) -> Path | None:
    if value is None or isinstance(value, str | os.PathLike):
        return None if value is None else Path(value)
    raise TypeError(f"{name}={value!r} has the wrong type; expected a path (string) or None")


def on_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def start_run(assignment: Assignment, namespace: Mapping[str, Any]) -> Run:
    """Check the notebook's parameters, seed, choose the device and prepare ``output_dir``.

    ``namespace`` is the notebook's ``globals()`` (or a plain dict of parameters): the contract
    parameters (``profile``, ``device``, ``data_dir``, ``download``, ``output_dir``, ``seed``) and the
    assignment's knobs are read from it by name; a knob left at ``...`` (or absent) takes the profile's
    value, and ``None`` means what the knob's doc says (off, all, the default).
    ``download=True`` fetches the assignment's missing data sets into the data root first (sha256
    checked, resumed; ``None``: only on Colab). Raises
    ``ValueError``/``TypeError`` naming the parameter for an unknown parameter, a bad profile or device,
    or a knob value of the wrong type or out of range. Sets torch's CPU threads to the settings'
    ``cpu_threads`` (when the assignment has that knob), seeds python/numpy/torch, and writes
    ``run_record.json`` (package versions, device name, seed, git commit, profile, settings).
    """
    check_parameters(assignment, given_parameters(namespace))
    profile = assignment.check_profile(namespace.get("profile", "smoke"))
    seed = namespace.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise TypeError(f"seed={seed!r} is not valid; expected an int >= 0")
    data_dir = _path_or_none("data_dir", namespace.get("data_dir"))
    download = namespace.get("download")
    if download is not None and not isinstance(download, bool):
        raise TypeError(f"download={download!r} has the wrong type; expected True, False or None "
                        "(None: only on Colab)")
    output_dir = _path_or_none("output_dir", namespace.get("output_dir"))
    settings = assignment.settings(profile, {k: namespace.get(k, UNSET) for k in assignment.knobs})
    dev = select_device(namespace.get("device", "auto"))
    if download or (download is None and on_colab()):
        require_any(assignment.datasets, data_dir, download_missing=True)
    set_cpu_threads(getattr(settings, "cpu_threads", None), dev)
    seed_everything(seed)
    out = claim_output_dir(output_dir if output_dir is not None else default_output_dir(assignment),
                           in_build=output_dir is None)
    run = Run(assignment, profile, settings, dev, resolve_data_root(data_dir), out, seed)
    record = environment_record(dev, seed)
    record.update(assignment=assignment.name, profile=profile, settings=settings.to_dict(), figures=[])
    atomic_write_json(run.path(RECORD_FILE), record)
    return run


def claim_output_dir(output_dir: Path, *, in_build: bool = False) -> Path:
    """Make ``output_dir`` this run's (resolved): absent, empty or a run folder (else
    :class:`~course_lib.core.folders.NotOurFolder` naming it and what it holds), held by this process
    until it ends (a second process is refused, naming this one), and cleared of the previous run's
    results (:func:`clear_results`), so that everything at its top describes this run. ``in_build``:
    the default folder, whose parent ``build/`` is claimed as the notebooks' build folder too."""
    out = output_dir.resolve()
    if in_build:
        claim_folder(out.parent, "build")
    hold_until_exit(out, "run")
    clear_results(out)
    return out


def clear_results(output_dir: Path) -> None:
    """Remove the previous run's record, :data:`RESULTS` and recorded figures from ``output_dir``."""
    for path in [*recorded_figures(output_dir), *(output_dir / name for name in (RECORD_FILE, *RESULTS))]:
        path.unlink(missing_ok=True)


def recorded_figures(output_dir: str | os.PathLike) -> list[Path]:
    """The figures the run in ``output_dir`` saved (listed in its ``run_record.json``) that are there."""
    path = Path(output_dir) / RECORD_FILE
    try:
        names = read_json(path).get("figures", []) if path.exists() else []
    except (ValueError, AttributeError):
        return []
    if not isinstance(names, list):
        return []
    names = [n for n in names if isinstance(n, str) and n == Path(n).name and n.endswith(".png")]  # no paths
    return [Path(output_dir) / n for n in names if (Path(output_dir) / n).is_file()]

