"""Shared test fixtures: the data root, one torch thread for the tiny models of the unit tests; the tally
of the fault-injection trials (tests marked ``fault``) at the end of the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_lib.core.data import resolve_data_root
from course_lib.core.device import cpu_threads
from tests.data_gate import DataGate

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

if "COURSE_DATA_DIR" not in os.environ and SHARED.is_dir():
    os.environ["COURSE_DATA_DIR"] = str(SHARED)
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The resolved data root (``COURSE_DATA_DIR``, defaulting to ../shared/data in a checkout)."""
    return resolve_data_root()


@pytest.fixture(scope="session", autouse=True)
def one_cpu_thread():
    """Tiny models run fastest on one thread (and do not wait on busy cores); results no longer
    depend on the machine's core count."""
    with cpu_threads(1):
        yield


def pytest_configure(config):
    """Tests that need a missing data set are skipped, with one line at the end (:mod:`tests.data_gate`)."""
    if not config.pluginmanager.has_plugin("data_gate"):
        config.pluginmanager.register(DataGate(), "data_gate")


FAULT_KINDS = ("clear_error", "recovery")


def pytest_collection_modifyitems(items):
    for item in items:
        mark = item.get_closest_marker("fault")
        if mark is not None and (len(mark.args) != 1 or mark.args[0] not in FAULT_KINDS):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.fault takes one of {FAULT_KINDS}")


def pytest_terminal_summary(terminalreporter):
    """One line: fault trials run, and how many ended as clear errors, recoveries, or failed."""
    tally = {kind: 0 for kind in FAULT_KINDS}
    failed = 0
    for status in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(status, []):
            kind = getattr(report, "fault_kind", None)
            if kind is None or report.when != "call" and status == "passed":
                continue
            if status == "passed":
                tally[kind] += 1
            else:
                failed += 1
    total = sum(tally.values()) + failed
    if total:
        terminalreporter.write_line(
            f"fault trials: {total} (clear errors {tally['clear_error']}, recoveries {tally['recovery']}, "
            f"not handled {failed})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    mark = item.get_closest_marker("fault")
    if mark is not None:
        outcome.get_result().fault_kind = mark.args[0]
