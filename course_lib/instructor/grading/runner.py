"""The test run inside a grading sandbox: limits itself, then runs pytest and reports every test on a pipe.

This file is copied into each working copy (``_grading_runner.py``) and started there as
``python _grading_runner.py CONFIG_JSON``; it needs only the standard library and pytest. ``CONFIG_JSON``
holds ``fd`` (the pipe's write end), ``tests`` (node ids to run), ``rlimits`` (resource name -> value,
e.g. ``{"RLIMIT_AS": 2**33}``, set as soft and hard limits), ``uid`` (started as root: the user id to
switch to first, its group too; else ``null``), ``test_cpu_s`` (CPU seconds a test may use before it is
stopped with :class:`CPUTimeExceeded`) and ``collect_only``.

Events, one JSON object per line: ``{"event": "collected", "tests": [{"nodeid", "exercise"}]}`` (the
exercise named by the test's ``@pytest.mark.exercise`` marker, or ``null``), ``{"event": "start",
"nodeid"}`` before each test, ``{"event": "report", "nodeid", "when", "outcome", "message"}`` after each
failed phase and after each call, ``{"event": "collect_error", "nodeid", "message"}`` and
``{"event": "finish", "exitstatus"}``. Only the process that started pytest writes events: a forked copy
of it that comes back into pytest is ended at its next hook.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys


def limit_self(rlimits: dict[str, int], uid: int | None) -> None:
    """Set each resource limit (soft and hard), then, started as root, become ``uid`` (no groups)."""
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


if __name__ == "__main__":  # limited, and no longer root, before anything else is imported
    CONFIG = json.loads(sys.argv[1])
    limit_self(CONFIG["rlimits"], CONFIG["uid"])

import pytest  # noqa: E402

MESSAGE_CHARS = 2000
"""A failure's message is cut to its last this many characters."""


class CPUTimeExceeded(BaseException):
    """Raised in a test that used more CPU time than allowed (a ``BaseException``, so that
    ``except Exception`` in the tested code does not swallow it)."""


class Reporter:
    """The pytest plugin that writes the events."""

    def __init__(self, fd: int, test_cpu_s: float | None):
        self.out = os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")
        self.pid = os.getpid()
        self.test_cpu_s = test_cpu_s

    def emit(self, **event) -> None:
        self._end_if_forked()
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    def _end_if_forked(self) -> None:
        if os.getpid() != self.pid:
            os._exit(70)

    def pytest_collection_finish(self, session) -> None:
        tests = []
        for item in session.items:
            mark = item.get_closest_marker("exercise")
            exercise = mark.args[0] if mark is not None and len(mark.args) == 1 else None
            tests.append({"nodeid": item.nodeid, "exercise": exercise})
        self.emit(event="collected", tests=tests)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.emit(event="collect_error", nodeid=report.nodeid, message=_message(report))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.emit(event="start", nodeid=item.nodeid)
        if self.test_cpu_s:
            signal.setitimer(signal.ITIMER_PROF, self.test_cpu_s, self.test_cpu_s)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed or report.when == "call" or report.skipped:
            self.emit(event="report", nodeid=report.nodeid, when=report.when, outcome=report.outcome,
                      message=_message(report) if not report.passed else "")

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        self.emit(event="finish", exitstatus=int(exitstatus))


def _message(report) -> str:
    """The end of a failed report's text: the assertion or exception, where pytest shows it."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])[-MESSAGE_CHARS:]
    return str(report.longreprtext or "")[-MESSAGE_CHARS:]


def main(config: dict) -> int:
    def stop_test(signum, frame):
        raise CPUTimeExceeded(f"the test used the {config['test_cpu_s']:g} s of CPU time allowed")

    signal.signal(signal.SIGPROF, stop_test)
    # nbval is not needed to grade and takes seconds to import (its JSON-schema formats)
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:nbval", "--color=no", "--tb=short", "-o", "addopts=",
            *(["--collect-only"] if config["collect_only"] else []), "--", *config["tests"]]
    return int(pytest.main(args, plugins=[Reporter(config["fd"], config["test_cpu_s"])]))


if __name__ == "__main__":
    sys.exit(main(CONFIG))
