"""Another process that holds a folder, as a second sweep or a notebook kernel would."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def held_by_another_process(folder: Path, tool: str) -> Iterator[subprocess.Popen]:
    """A Python process that claims and locks ``folder`` for ``tool`` until the block ends; then it is
    killed (SIGKILL: no exit handler runs, so its lock stays behind, stale)."""
    code = ("import sys\nfrom course_lib.core.folders import hold_until_exit\n"
            f"hold_until_exit({str(folder)!r}, {tool!r})\nprint('held', flush=True)\nsys.stdin.read()")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=env)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()
