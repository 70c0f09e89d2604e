"""The notebooks in the front end students use: JupyterLab, served on 127.0.0.1 from the test environment
and opened in headless Chromium (Debian's ``chromium`` through Playwright). Notebook 01 runs from its
parameters cell to its first exercise check, fetching its data set from a mirror on 127.0.0.1 into an
empty data root; the page must show no error output and the download's progress bars as widgets."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core.data import require
from course_lib.instructor.report import CHROMIUM_FLAGS
from tests.serve import serving

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ASSIGNMENTS["01"]
DATA_SET = "langid-sentences"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (see .ci/run)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return found


def first_exercise_check(nb: nbformat.NotebookNode) -> int:
    """Index of the code cell right after the markdown cell that announces Exercise 1."""
    announced = next(i for i, c in enumerate(nb.cells)
                     if c.cell_type == "markdown" and re.search(r"Exercise 1\b", c.source))
    return next(i for i in range(announced + 1, len(nb.cells)) if nb.cells[i].cell_type == "code")


@pytest.fixture
def mirror(data_root: Path) -> Iterator[str]:
    """The data root served on 127.0.0.1 as ``<data set>/<file>``, as ``COURSE_DATA_MIRROR`` expects."""
    require(DATA_SET, data_root)  # the data set to serve (without it the test is skipped: tests.data_gate)

    with serving(data_root) as url:
        yield url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path: Path, mirror: str) -> Iterator[tuple[str, str]]:
    """JupyterLab on 127.0.0.1 (token, no browser, nothing read from the user's Jupyter folders) serving
    ``tmp_path``; yields its URL and token. Its kernels fetch data from ``mirror``, with progress bars."""
    token, port = secrets.token_hex(16), _free_port()
    jupyter = tmp_path / "jupyter"
    env = {**os.environ, "COURSE_DATA_MIRROR": mirror, "COURSE_CACHE_DIR": str(tmp_path / "cache"),
           "JUPYTER_CONFIG_DIR": str(jupyter / "config"), "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(jupyter / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(jupyter / "workspaces")}
    env.pop("TQDM_DISABLE", None)  # the bars are what the page must show
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={tmp_path}", "--ServerApp.allow_root=True",
         "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


RUN_UP_TO = """async (last) => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.sessionContext.ready;
    panel.content.activeCellIndex = last + 1;
    await app.commands.execute('notebook:run-all-above');
}"""

FINISHED = """(last) => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = panel.content.widgets.slice(0, last + 1).filter(c => c.model.type === 'code');
    return kernel && kernel.status === 'idle' && cells.every(c => c.model.executionCount !== null);
}"""

PAGE_FACTS = """async (last) => {
    // each cell scrolled into view first, as a reader would: JupyterLab renders what is on screen
    const panel = window.jupyterapp.shell.currentWidget;
    const facts = {executed: [], errors: [], progress_widgets: 0, bar_texts: [], widget_text_fallbacks: 0,
                   text: ''};
    for (const cell of panel.content.widgets.slice(0, last + 1)) {
        await panel.content.scrollToCell(cell, 'start');
        await new Promise(done => setTimeout(done, 300));
        if (cell.model.type !== 'code') continue;
        facts.executed.push(cell.model.executionCount);
        const outputs = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output'));
        for (const o of outputs) {
            const text = o.textContent;
            facts.text += text + '\\n';
            const stderr = o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr';
            if (stderr && /Traceback|Error/.test(text)) facts.errors.push(text.slice(0, 500));
            if (/HBox\\(children=|Loading widget|Error displaying widget/.test(text))
                facts.widget_text_fallbacks += 1;
        }
        const bars = Array.from(cell.node.querySelectorAll('.widget-hprogress'));
        facts.progress_widgets += bars.length;
        for (const bar of bars)
            facts.bar_texts.push(bar.parentElement.textContent.replace(/\\s+/g, ' ').trim());
    }
    return facts;
}"""


@pytest.mark.notebook  # slow: starts JupyterLab, a kernel and a browser
def test_a_notebook_runs_to_its_first_exercise_check_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    url, token = lab
    nb = nbformat.read(ROOT / NOTEBOOK.notebook, as_version=4)
    last = first_exercise_check(nb)
    params = nb.cells[next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))]
    data_root, out = tmp_path / "data", tmp_path / "out"
    params.source += f"\ndata_dir = {str(data_root)!r}\ndownload = True\noutput_dir = {str(out)!r}\n"
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    name = Path(NOTEBOOK.notebook).name
    nbformat.write(nb, tmp_path / name)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", *CHROMIUM_FLAGS])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/lab/tree/{name}?token={token}", wait_until="load", timeout=120_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                               "&& window.jupyterapp.shell.currentWidget.content "
                               "&& window.jupyterapp.shell.currentWidget.content.widgets.length > 0",
                               timeout=120_000)
        page.evaluate(RUN_UP_TO, last)
        page.wait_for_function(FINISHED, arg=last, timeout=300_000, polling=500)
        facts = page.evaluate(PAGE_FACTS, last)
        page.screenshot(path=str(tmp_path / "lab.png"))
        browser.close()

    code_cells = sum(c.cell_type == "code" for c in nb.cells[: last + 1])
    assert len(facts["executed"]) == code_cells and all(facts["executed"]), facts["executed"]
    assert facts["errors"] == [], facts["errors"]
    fetched = sorted(p.name for p in (data_root / DATA_SET).glob("*.txt"))
    assert len(fetched) == len(json.loads((ROOT / "course_lib/core/data/langid_sentences.sha256.json")
                                          .read_text())) == 75
    # the fetch's bars are widgets (a progress bar beside a file name, complete), none left as text
    # (JupyterLab shows a cell's first 50 outputs: 50 of the 75 bars)
    assert facts["progress_widgets"] >= 1, f"no progress bar rendered as a widget: {facts['text'][-3000:]}"
    bars = facts["bar_texts"]
    assert {t.split(":")[0] for t in bars} <= set(fetched) and all(": 100%" in t for t in bars), bars[:5]
    assert facts["widget_text_fallbacks"] == 0, facts["text"][-3000:]
    assert "make_vectorizer" in nb.cells[last].source and "features:" in facts["text"]
    assert (out / "run_record.json").is_file()
