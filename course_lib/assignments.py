"""The five assignments, by id. Each is declared in its package's ``config`` module."""

from __future__ import annotations

from course_lib.cnn.config import ASSIGNMENT as CNN
from course_lib.core.assignment import Assignment
from course_lib.langid.config import ASSIGNMENT as LANGID
from course_lib.lm.config import ASSIGNMENT as LM
from course_lib.modularization.config import ASSIGNMENT as MODULARIZATION
from course_lib.qa.config import ASSIGNMENT as QA

ASSIGNMENTS: dict[str, Assignment] = {a.id: a for a in (LANGID, CNN, LM, QA, MODULARIZATION)}


def get_assignment(key: str) -> Assignment:
    """Look up an assignment by id (``"02"``), name (``"02_cnn"``) or slug; unknown keys list the valid."""
    for a in ASSIGNMENTS.values():
        if key in (a.id, a.name, a.slug):
            return a
    raise KeyError(f"unknown assignment {key!r}; choose one of {[a.name for a in ASSIGNMENTS.values()]}")
