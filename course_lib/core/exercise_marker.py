"""The ``exercise`` pytest marker: which tests check which exercise (a pytest plugin).

A test of an assignment's exercise tests names the exercise(s) it checks, by the names that
:func:`course_lib.core.exercises.regions` gives them (``"zero_pad"``, ``"HighwayMaxout.forward"``)::

    @pytest.mark.exercise("zero_pad")
    def test_zero_pad_reference(): ...

    @pytest.mark.parametrize("measure", by_exercise(linear_cka, kernel_cka))  # one marked case each
    def test_identical_representations_score_one(measure): ...

``python -m pytest FILES --exercise zero_pad`` then runs only the tests marked with ``zero_pad``, as the
in-notebook :func:`course_lib.check` does. A test that needs several exercises is marked with the last
of them in the notebook's order, so that it runs once the student has reached that one. The workbook's
top-level ``conftest.py`` loads this plugin; ``-p course_lib.core.exercise_marker`` loads it anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MARKER = "exercise"
OPTION = "--exercise"


def pytest_addoption(parser: Any) -> None:
    parser.addoption(OPTION, action="append", default=[], metavar="NAME",
                     help="run only the tests marked @pytest.mark.exercise(NAME) (repeat for several)")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*names): the exercises this test checks "
                                       f"(check(name) and {OPTION} NAME run it)")


def marked_exercises(item: Any) -> set[str]:
    """The exercise names of every ``exercise`` marker on a collected test ``item``."""
    return {name for mark in item.iter_markers(MARKER) for name in mark.args}


def pytest_collection_modifyitems(config: Any, items: list) -> None:
    wanted = set(config.getoption(OPTION.lstrip("-")))
    if not wanted:
        return
    kept = [item for item in items if marked_exercises(item) & wanted]
    if not kept:
        import pytest

        marked = sorted(set().union(*(marked_exercises(item) for item in items)))
        raise pytest.UsageError(f"no test here is marked exercise({sorted(wanted)}); marked: {marked}")
    config.hook.pytest_deselected(items=[item for item in items if not marked_exercises(item) & wanted])
    items[:] = kept


def by_exercise(*functions: Callable) -> list:
    """``pytest.param`` cases for a test parametrized over exercise functions: each case carries the
    function, its name as id, and the ``exercise`` marker of its qualified name."""
    import pytest

    return [pytest.param(f, id=f.__name__, marks=getattr(pytest.mark, MARKER)(f.__qualname__))
            for f in functions]
