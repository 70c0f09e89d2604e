"""Executing notebooks headlessly with papermill (also as a job's task), and refreshing a committed notebook
in place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from course_lib.core.folders import hold_folder
from course_lib.core.io import atomic_write, atomic_write_text, read_json, usual_mode
from course_lib.core.runs import clear_results
from course_lib.core.sweep import error_message

ROOT = Path(__file__).resolve().parents[2]


def check_notebook(notebook: str | os.PathLike) -> Path:
    """``notebook`` when it is a valid notebook, else a ``ValueError`` naming the file (and the line and
    column of a JSON error) and how to restore it."""
    import nbformat

    notebook = Path(notebook)
    fix = f"restore it (git checkout -- {notebook}) or repair it in an editor"
    try:
        nb = read_json(notebook)
    except ValueError as err:
        raise ValueError(f"{err}: not a notebook; {fix}") from err
    if not isinstance(nb, dict) or "nbformat" not in nb:
        raise ValueError(f"{notebook}: not a notebook (JSON without the 'nbformat' field); {fix}")
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        raise ValueError(f"{notebook}: not a valid notebook ({err.message}); {fix}") from err
    return notebook


def execute_notebook(notebook: Path, output_notebook: Path, parameters: dict[str, Any], *,
                     progress: bool = False) -> None:
    """Run ``notebook`` with papermill (cwd ``notebooks/``), writing the executed copy to ``output_notebook``.

    ``notebook`` is checked first (:func:`check_notebook`). The ``output_dir`` parameter's folder must be
    absent, empty or a run folder, and in use by no other process; the previous run's results there are
    removed (:func:`~course_lib.core.runs.clear_results`) before the notebook starts. The executed copy is
    written atomically once the run ends (a failed run's copy, with the error, is kept for reading, with
    the usual permissions); papermill's own partial writes go to a temporary file beside it.
    """
    import papermill

    check_notebook(notebook)
    if parameters.get("output_dir") is not None:
        with hold_folder(parameters["output_dir"], "run") as out:
            clear_results(out)
    output_notebook = Path(output_notebook)
    output_notebook.parent.mkdir(parents=True, exist_ok=True)

    def run(tmp: Path) -> None:
        try:
            papermill.execute_notebook(str(notebook), str(tmp), parameters=parameters, kernel_name="python3",
                                       cwd=str(ROOT / "notebooks"), progress_bar=progress)
        except BaseException:
            if tmp.exists() and tmp.stat().st_size:  # the failed run's notebook, for reading
                usual_mode(tmp)
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
    path = check_notebook(Path(notebook).resolve())
    os.environ.setdefault("TQDM_DISABLE", "1")
    with tempfile.TemporaryDirectory(prefix="refresh-") as scratch:
        executed = Path(scratch) / path.name
        execute_notebook(path, executed, {})
        nb = strip_run_metadata(json.loads(executed.read_text(encoding="utf-8")))
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path
