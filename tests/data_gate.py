"""Tests that need a data set the data root lacks are skipped, with one line at the end of the run that
says which data sets, where they were looked for, and the command that fetches them. The tests never
download (that is the ``run`` and ``data`` sessions' work).

A test counts as needing data when it failed with :class:`~course_lib.core.data.MissingDataError` (in
the test, a fixture, or a notebook's kernel) naming a data set that is missing under the data root;
any other failure stays a failure. After a notebook cell of nbval stopped at missing data, the later
cells of that notebook, which depend on it, are skipped too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from course_lib.core.data import DATASETS, MissingDataError, resolve_data_root
from course_lib.core.data.root import fetch_command

NAMED = re.compile(r"Data set '([\w.-]+)'")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def missing_data_sets(error: BaseException) -> list[str]:
    """The data sets ``error`` reports missing that are indeed missing under the data root; empty when
    ``error`` is not a missing-data error (raised here, or by a notebook's kernel)."""
    texts = []
    for e in _chain(error):
        kernel_side = "MissingDataError" in str(e) + str(getattr(e, "inner_traceback", "") or "")
        if isinstance(e, MissingDataError) or kernel_side:
            texts.append(str(e) + str(getattr(e, "inner_traceback", "") or ""))
    root = resolve_data_root()
    named = dict.fromkeys(n for text in texts for n in NAMED.findall(text))
    return [n for n in named if n in DATASETS and DATASETS[n].missing(root / n)]


class DataGate:
    """The pytest plugin: turns missing-data failures into skips and reports them in one line."""

    def __init__(self) -> None:
        self.skipped: dict[str, list[str]] = {}  # test id -> data sets it lacked
        self.stopped: set[str] = set()  # notebooks (nbval) whose run stopped at missing data

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        if not report.failed or call.excinfo is None:
            return
        notebook = item.parent.nodeid if item.parent is not None and item.path.suffix == ".ipynb" else None
        lacking = missing_data_sets(call.excinfo.value)
        if not lacking and notebook not in self.stopped:
            return
        if notebook is not None:
            self.stopped.add(notebook)
        self.skipped[item.nodeid] = lacking
        report.outcome = "skipped"
        reason = f"needs {', '.join(lacking)}" if lacking else "its notebook stopped at missing data"
        where = f"data root {resolve_data_root()}"
        report.longrepr = (str(item.path), item.location[1], f"Skipped: {reason} ({where})")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.skipped:
            return
        names = sorted({n for lacking in self.skipped.values() for n in lacking})
        root = resolve_data_root()
        terminalreporter.write_line(
            f"data: {len(self.skipped)} tests skipped, they need data sets missing under {root} "
            f"({', '.join(names)}); fetch them with: {fetch_command('--all', root)}")
