"""Executing notebooks headlessly with papermill (also as a job's task), and refreshing a committed notebook
in place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from course_lib.core.io import atomic_write, atomic_write_text
from course_lib.core.sweep import error_message

ROOT = Path(__file__).resolve().parents[2]


def execute_notebook(notebook: Path, output_notebook: Path, parameters: dict[str, Any], *,
                     progress: bool = False) -> None:
    """Run ``notebook`` with papermill (cwd ``notebooks/``), writing the executed copy to ``output_notebook``.

    The executed copy is written atomically once the run ends (a failed run's copy, with the error,
    is kept for reading); papermill's own partial writes go to a temporary file beside it.
    """
    import papermill

    output_notebook = Path(output_notebook)
    output_notebook.parent.mkdir(parents=True, exist_ok=True)

    def run(tmp: Path) -> None:
        try:
            papermill.execute_notebook(str(notebook), str(tmp), parameters=parameters, kernel_name="python3",
                                       cwd=str(ROOT / "notebooks"), progress_bar=progress)
        except BaseException:
            if tmp.exists():
                os.replace(tmp, output_notebook)
            raise

    atomic_write(output_notebook, run)


def run_notebook(notebook: Path, output_notebook: Path, parameters: dict[str, Any]) -> str | None:
    """:func:`execute_notebook`, returning the error message when the notebook failed (else ``None``):
    a task of ``run`` in this process or as a job (this module imports little, so a job starts fast)."""
    try:
        execute_notebook(notebook, output_notebook, parameters)
    except Exception as exc:  # a failing notebook is reported; the others still run
        return error_message(exc)
    return None


def strip_run_metadata(nb: dict[str, Any]) -> dict[str, Any]:
    """Drop papermill's and the kernel's per-run metadata (timings), so a refresh diffs cleanly."""
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    return nb


def refresh_notebook(notebook: str | os.PathLike) -> Path:
    """Re-execute a committed notebook with its default parameters and replace it only when the run
    succeeded (an interrupted refresh leaves the committed notebook as it was)."""
    path = Path(notebook).resolve()
    os.environ.setdefault("TQDM_DISABLE", "1")
    with tempfile.TemporaryDirectory(prefix="refresh-") as scratch:
        executed = Path(scratch) / path.name
        execute_notebook(path, executed, {})
        nb = strip_run_metadata(json.loads(executed.read_text(encoding="utf-8")))
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path
