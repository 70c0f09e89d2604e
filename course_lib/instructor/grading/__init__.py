"""Grading hand-ins: hidden tests, points per exercise, a sandbox per submission, feedback and gradebook.

``python -m course_lib.instructor grade NN SUBMISSIONS_DIR --out DIR`` grades every zip that students
wrote with ``python -m course_lib submit NN`` (:mod:`course_lib.core.handin`); see :mod:`.grade` for the
outputs, :mod:`.sandbox` for what a submission may do, :mod:`.archive` for the archives refused.

How to write hidden tests and points (for every new exercise)
-------------------------------------------------------------
1. **Points**: in the assignment's ``config.py``, ``points=`` on its ``Assignment`` maps every exercise
   (a fenced function, named as ``regions`` names it: ``"zero_pad"``, ``"HighwayMaxout.forward"``) to a
   number > 0. Every exercise needs points and every name must be an exercise: the tests
   (``tests/instructor/test_grading.py``) and ``grade`` check both.
2. **Hidden tests**: ``tests/<package>/hidden/test_*.py`` (with an ``__init__.py``), e.g.
   ``tests/cnn/hidden/test_numpy_conv.py``. They are left out of the student release and run, with the
   assignment's ``exercise_tests``, against every submission; they also run in the instructor's test
   suite against the solutions, which must pass them.
3. **Marking**: a test earns points only when marked with the exercise it checks, on the function
   (``@pytest.mark.exercise("zero_pad")``) or for a whole file (``pytestmark =
   pytest.mark.exercise("zero_pad")``); one exercise per test. An exercise's points are shared equally
   among its marked tests (each parametrized case counts as one test): 3 of 4 passed earn 3/4 of them.
   Unmarked tests (today the public exercise tests) run and are reported in the feedback, for no points.
   Every exercise with points needs at least one marked test.
4. **What a hidden test should do**: check the exercise on other inputs than the public tests (other
   shapes, strides, dtypes, edge cases), against values computed independently in the test (numpy by
   hand, torch, a formula), so that a wrong but runnable answer cannot reach them; call only the
   exercise it is marked with (build caches and inputs in the test rather than through other
   exercises), so that one wrong exercise does not cost the points of another; stay fast (the whole
   hidden file in a second or two), seeded, without network, and without writing outside ``tmp_path``.
   Prefer synthetic inputs; the data root (``COURSE_DATA_DIR``) is readable in the sandbox, nothing else
   of the instructor's files is. A test is stopped after ``--test-timeout`` seconds (120 by default) or
   ``--test-cpu`` seconds of CPU time (30), and fails with the reason.
"""

from course_lib.instructor.grading.grade import SandboxUnavailable, grade
from course_lib.instructor.grading.sandbox import Limits

__all__ = ["Limits", "SandboxUnavailable", "grade"]
