"""Instructor commands: execute notebooks into ``build/``, summarise, report, sweep, refresh.

``python -m course_lib.workbook run [--profile smoke|full] [--only 02 03] [--device auto]``
    Executes each notebook with papermill into ``build/<NN_slug>/`` (executed notebook, figures,
    metrics.json, run_record.json); a failing notebook is recorded and the others still run. Then
    writes ``build/summary.md`` (every notebook's headline metrics against the expected ranges) and
    ``build/index.html`` (the executed notebooks rendered, the summary, links to the figures).
``python -m course_lib.workbook sweep NAME``
    Runs the named experiment grid of an assignment (e.g. ``lm``) into ``runs/<exp_id>/``,
    skipping finished runs, then builds the sweep's comparison.
``python -m course_lib.workbook refresh NN``
    Re-executes a committed notebook in place with its default parameters (smoke profile), to
    update the outputs nbval compares against.
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_lib.assignments import ASSIGNMENTS, PROFILES, Assignment, get_assignment
from course_lib.recording import atomic_write_text, read_json
from course_lib.reproducibility import DEVICES
from course_lib.validation import check_choice

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class NotebookResult:
    """Outcome of one executed notebook."""

    assignment: Assignment
    output_dir: Path
    ok: bool
    seconds: float
    error: str = ""

    @property
    def metrics(self) -> dict[str, Any]:
        path = self.output_dir / "metrics.json"
        return read_json(path) if path.exists() else {}


def execute(
    assignment: Assignment,
    output_notebook: Path,
    parameters: dict[str, Any],
    *,
    progress: bool = False,
) -> None:
    """Run ``assignment``'s notebook with papermill, writing the executed copy to ``output_notebook``."""
    import papermill

    output_notebook.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(ROOT / assignment.notebook),
        str(output_notebook),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(ROOT / "notebooks"),
        progress_bar=progress,
    )


def run_all(
    profile: str = "smoke",
    only: list[str] | None = None,
    device: str = "auto",
    build: Path = ROOT / "build",
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> list[NotebookResult]:
    """Execute the chosen notebooks into ``build``; then write summary.md and index.html.

    ``params`` are extra notebook parameters passed to every chosen notebook.
    """
    check_choice("profile", profile, PROFILES)
    check_choice("device", device, DEVICES)
    chosen = [get_assignment(k) for k in only] if only else list(ASSIGNMENTS.values())
    results = []
    for a in chosen:
        out = (build / a.name).resolve()
        params = {**(params or {}), "profile": profile, "device": device, "output_dir": str(out),
                  "seed": seed}
        started = time.perf_counter()
        print(f"[{a.name}] executing ({profile}) -> {out}", flush=True)
        try:
            execute(a, out / f"{a.name}.ipynb", params)
            results.append(NotebookResult(a, out, True, time.perf_counter() - started))
        except Exception as exc:  # a failing notebook is reported; the others still run
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            results.append(NotebookResult(a, out, False, time.perf_counter() - started, message))
            print(f"[{a.name}] FAILED: {message.splitlines()[0] if message else exc!r}", flush=True)
        print(f"[{a.name}] done in {results[-1].seconds:.1f} s", flush=True)
    atomic_write_text(build / "summary.md", summary_markdown(results, profile))
    write_report(results, profile, build)
    return results


def _check(a: Assignment, profile: str, key: str, value: Any) -> str:
    lo_hi = a.expected.get(profile, {}).get(key)
    if lo_hi is None or not isinstance(value, int | float):
        return ""
    return "yes" if lo_hi[0] <= value <= lo_hi[1] else "NO"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary_rows(results: list[NotebookResult], profile: str) -> list[list[str]]:
    """Rows (notebook, status, metric, value, expected range, within range)."""
    rows = []
    for r in results:
        status = "ok" if r.ok else "FAILED"
        metrics = r.metrics
        keys = list(r.assignment.headline) or sorted(metrics)
        if not keys or not r.ok:
            rows.append([r.assignment.name, status, "", "", "", ""])
            continue
        for key in keys:
            lo_hi = r.assignment.expected.get(profile, {}).get(key)
            rows.append([
                r.assignment.name, status, key, _fmt(metrics.get(key, "missing")),
                f"[{lo_hi[0]}, {lo_hi[1]}]" if lo_hi else "",
                _check(r.assignment, profile, key, metrics.get(key)),
            ])
    return rows


HEADER = ["notebook", "status", "metric", "value", "expected", "within"]


def summary_markdown(results: list[NotebookResult], profile: str) -> str:
    """``build/summary.md``: one table of every notebook's headline metrics."""
    lines = [f"# Workbook summary ({profile} profile)", "", "| " + " | ".join(HEADER) + " |",
             "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(results, profile)]
    failed = [r for r in results if not r.ok]
    for r in failed:
        lines += ["", f"## {r.assignment.name} failed", "", "```", r.error, "```"]
    return "\n".join(lines) + "\n"


def write_report(results: list[NotebookResult], profile: str, build: Path) -> Path:
    """``build/index.html``: summary table, each notebook rendered to HTML, links to figures."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    sections = []
    for r in results:
        name = r.assignment.name
        executed = r.output_dir / f"{name}.ipynb"
        links = []
        if executed.exists():
            body, _ = exporter.from_filename(str(executed))
            atomic_write_text(r.output_dir / f"{name}.html", body)
            links.append(f'<a href="{name}/{name}.html">executed notebook</a>')
        figures = sorted(r.output_dir.glob("*.png"))
        links += [f'<a href="{name}/{f.name}">{html.escape(f.stem)}</a>' for f in figures]
        status = "ok" if r.ok else "FAILED"
        error = f"<pre class='error'>{html.escape(r.error)}</pre>" if r.error else ""
        sections.append(
            f"<section><h2>{html.escape(name)}: {html.escape(r.assignment.title)} "
            f"<span class='{status.lower()}'>{status}</span></h2>{error}"
            f"<p>{' &middot; '.join(links) or 'no outputs'}</p>"
            + "".join(f'<img src="{name}/{f.name}" alt="{html.escape(f.stem)}">' for f in figures)
            + "</section>"
        )
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in summary_rows(results, profile)
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Workbook report ({profile})</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}} td,th{{padding:2px 8px;
border-bottom:1px solid #ddd}} .failed{{color:#b00}} .ok{{color:#080}} img{{max-width:320px;
margin:4px;border:1px solid #eee}} pre.error{{background:#fee;padding:8px;white-space:pre-wrap}}
</style></head><body><h1>Workbook report ({profile} profile)</h1>
<table><tr>{"".join(f"<th>{h}</th>" for h in HEADER)}</tr>{rows}</table>
{"".join(sections)}</body></html>
"""
    return atomic_write_text(build / "index.html", page)


def sweep(name: str, profile: str = "full", device: str = "auto",
          runs_dir: Path = ROOT / "runs", seed: int = 0, params: dict[str, Any] | None = None) -> list[Path]:
    """Run every configuration of the sweep ``name``, skipping those with a metrics.json.

    ``params`` (e.g. ``{"split": "offline"}``) are passed to every configuration's notebook.
    """
    owners = [a for a in ASSIGNMENTS.values() if name in a.sweeps]
    if not owners:
        valid = sorted(s for a in ASSIGNMENTS.values() for s in a.sweeps)
        raise KeyError(f"unknown sweep {name!r}; choose one of {valid}")
    a = owners[0]
    spec = a.sweeps[name]
    done = []
    for config in spec["configs"]:
        exp_id = config["exp_id"]
        out = (runs_dir / exp_id).resolve()
        if (out / "metrics.json").exists():
            print(f"[{exp_id}] finished earlier, skipped", flush=True)
        else:
            print(f"[{exp_id}] running", flush=True)
            execute(a, out / f"{a.name}.ipynb", {**config, **(params or {}), "profile": profile,
                                                 "device": device, "output_dir": str(out), "seed": seed})
        done.append(out)
    module, func = spec["compare"].rsplit(".", 1)
    getattr(importlib.import_module(module), func)(runs_dir, runs_dir / f"{name}_comparison")
    return done


def refresh(key: str) -> Path:
    """Re-execute a committed notebook in place (default parameters), then strip run metadata."""
    a = get_assignment(key)
    path = ROOT / a.notebook
    os.environ.setdefault("TQDM_DISABLE", "1")
    execute(a, path, {})
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value), the value read as JSON when it parses (numbers, null, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected KEY=VALUE, e.g. epochs=3")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.workbook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute notebooks into build/")
    p_run.add_argument("--profile", default="smoke", choices=PROFILES)
    p_run.add_argument("--only", nargs="+", help="notebook ids or names, e.g. 02 03")
    p_run.add_argument("--device", default="auto", choices=DEVICES)
    p_run.add_argument("--build", type=Path, default=ROOT / "build")
    p_run.add_argument("--seed", type=int, default=0)
    p_run.add_argument("--param", type=parse_param, action="append", default=[],
                       help="extra notebook parameter KEY=VALUE (repeatable)")
    p_sweep = sub.add_parser("sweep", help="run an experiment grid into runs/")
    p_sweep.add_argument("name")
    p_sweep.add_argument("--profile", default="full", choices=PROFILES)
    p_sweep.add_argument("--device", default="auto", choices=DEVICES)
    p_sweep.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    p_sweep.add_argument("--param", type=parse_param, action="append", default=[],
                         help="notebook parameter for every configuration, e.g. split=offline")
    p_refresh = sub.add_parser("refresh", help="re-execute committed notebooks in place")
    p_refresh.add_argument("keys", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "run":
        results = run_all(args.profile, args.only, args.device, args.build, args.seed, dict(args.param))
        print((args.build / "summary.md").read_text(encoding="utf-8"))
        return 0 if all(r.ok for r in results) else 1
    if args.command == "sweep":
        sweep(args.name, args.profile, args.device, args.runs_dir, params=dict(args.param))
        return 0
    for key in args.keys:
        print(f"refreshed {refresh(key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
