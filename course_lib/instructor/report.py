"""``build/summary.md`` and ``build/index.html``: every notebook's headline metrics against its expected
ranges."""

from __future__ import annotations

import html
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_lib.core.assignment import Assignment
from course_lib.core.io import atomic_write_text, read_json
from course_lib.core.runs import recorded_figures

HEADER = ["notebook", "status", "metric", "value", "expected", "within"]


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


def within(a: Assignment, profile: str, key: str, value: Any) -> bool | None:
    """Whether ``value`` lies in ``a``'s expected range for ``key`` (:meth:`Assignment.within`)."""
    return a.within(profile, key, value)


def out_of_range(results: list[NotebookResult], profile: str) -> list[str]:
    """``"NN_slug: metric=value not in [lo, hi]"`` for every expected metric a finished notebook missed."""
    problems = []
    for r in results:
        if not r.ok:
            continue
        metrics = r.metrics
        for key, (lo, hi) in r.assignment.expected.get(profile, {}).items():
            if not within(r.assignment, profile, key, metrics.get(key)):
                value = metrics.get(key, "missing")
                problems.append(f"{r.assignment.name}: {key}={value} not in [{lo}, {hi}]")
    return problems


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
            check = within(r.assignment, profile, key, metrics.get(key))
            rows.append([
                r.assignment.name, status, key, _fmt(metrics.get(key, "missing")),
                f"[{lo_hi[0]}, {lo_hi[1]}]" if lo_hi else "", {True: "yes", False: "NO", None: ""}[check],
            ])
    return rows


def summary_markdown(results: list[NotebookResult], profile: str) -> str:
    """``build/summary.md``: one table of every notebook's headline metrics."""
    lines = [f"# Workbook summary ({profile} profile)", "", "| " + " | ".join(HEADER) + " |",
             "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(results, profile)]
    for r in results:
        if not r.ok:
            lines += ["", f"## {r.assignment.name} failed", "", "```", r.error, "```"]
    return "\n".join(lines) + "\n"


MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
"""The MathJax 2 configuration bundled by ``jupyter-server-mathjax``."""


def bundle_mathjax(build: Path) -> Path:
    """Copy MathJax (from the ``jupyter-server-mathjax`` package) to ``build/mathjax``, once, so the
    report renders formulas offline; returns that folder."""
    import jupyter_server_mathjax

    target = build / "mathjax"
    if not (target / "MathJax.js").exists():
        source = Path(jupyter_server_mathjax.__file__).parent / "static"
        tmp = build / ".mathjax.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def write_report(results: list[NotebookResult], profile: str, build: Path) -> Path:
    """``build/index.html``: summary table, each notebook rendered to HTML (formulas by a local copy of
    MathJax, so the report reads offline), the figures its run recorded (``run_record.json``; a figure
    an earlier run left in the folder is not shown)."""
    from nbconvert import HTMLExporter

    mathjax = bundle_mathjax(build)
    sections = []
    for r in results:
        name = r.assignment.name
        executed = r.output_dir / f"{name}.ipynb"
        links = []
        if executed.exists():
            local = Path(os.path.relpath(mathjax, r.output_dir)).as_posix()
            exporter = HTMLExporter(mathjax_url=f"{local}/MathJax.js?config={MATHJAX_CONFIG}")
            body, _ = exporter.from_filename(str(executed))
            atomic_write_text(r.output_dir / f"{name}.html", body)
            links.append(f'<a href="{name}/{name}.html">executed notebook</a>')
        figures = recorded_figures(r.output_dir)
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


CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def browse_report(index: Path, *, chromium: str = "chromium", screenshot: Path | None = None,
                  timeout_ms: int = 60_000) -> dict[str, Any]:
    """Open ``index`` and every notebook page it links in headless Chromium (``chromium``: a path, or a
    command looked up on PATH) with every non-file request refused (offline); return what a reader
    sees: ``sections`` (notebook names listed), ``images`` (count) and ``images_loaded``, ``formulas``
    rendered and ``raw_tex`` (TeX left unrendered) per notebook page. ``screenshot`` saves a PNG of the
    index page."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which(chromium)
    if executable is None:
        raise FileNotFoundError(f"chromium={chromium!r} is neither a file nor a command on PATH; install "
                                "Chromium (Debian/Ubuntu: apt install chromium) or pass its path")

    facts: dict[str, Any] = {"pages": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS))
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                   else route.abort())
        page.goto(index.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
        facts["sections"] = page.eval_on_selector_all("section h2", "hs => hs.map(h => h.innerText)")
        facts["images"] = page.eval_on_selector_all("img", "xs => xs.length")
        facts["images_loaded"] = page.eval_on_selector_all(
            "img", "xs => xs.every(i => i.complete && i.naturalWidth > 0)")
        links = page.eval_on_selector_all("a", "xs => xs.map(a => a.href).filter(h => h.endsWith('.html'))")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=False)
        for link in links:
            page.goto(link, wait_until="load", timeout=timeout_ms)
            page.wait_for_function("() => !window.MathJax || (MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                                   "&& MathJax.Hub.queue.running === 0)", timeout=timeout_ms)
            facts["pages"][link.rsplit("/", 1)[-1]] = page.evaluate("""() => {
                const rendered = document.querySelectorAll('.MathJax, .MathJax_Display').length;
                const clone = document.body.cloneNode(true);
                clone.querySelectorAll('script, style, pre, code').forEach(n => n.remove());
                const text = clone.innerText;
                const raw = (text.match(/\\$[^$]+\\$|\\\\(frac|sum|log|exp)\\b/g) || []).length;
                return {formulas: rendered, raw_tex: raw, mathjax: !!window.MathJax};
            }""")
        browser.close()
    return facts
