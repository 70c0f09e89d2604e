"""A student at work in a release: writing an exercise (the instructor's solution, put where the student
writes), and the release published as a git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from course_lib.core.exercises import Exercise, regions

ROOT = Path(__file__).resolve().parents[2]


def solved_text(release: Path, exercise: Exercise) -> str:
    """The release's module of ``exercise`` with the instructor's solution written into its student
    region(s), between the student's fence lines, as a student would write it."""
    solutions = regions((ROOT / exercise.path).read_text(encoding="utf-8"))[exercise.name]
    text = (release / exercise.path).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    for solution, region in reversed(list(zip(solutions, regions(text)[exercise.name], strict=True))):
        lines[region.first - 1: region.last] = solution.text.splitlines(keepends=True)
    return "".join(lines)


def solve(release: Path, exercise: Exercise) -> None:
    """Write ``exercise`` in the release (see :func:`solved_text`)."""
    (release / exercise.path).write_text(solved_text(release, exercise), encoding="utf-8")


def publish(folder: Path, tag: str) -> str:
    """Make ``folder`` a git repository with one commit tagged ``tag``; returns the commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=course", "-c", "user.email=course@example.org",
                               "-c", "init.defaultBranch=main", *args], cwd=folder, check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "release")
    git("tag", tag)
    return git("rev-parse", "HEAD")
