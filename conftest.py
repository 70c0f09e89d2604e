"""Loaded by every pytest run in this checkout and in the student release: the exercise tests' marker
(``@pytest.mark.exercise("name")``) and ``--exercise NAME`` come from
:mod:`course_lib.core.exercise_marker`."""

pytest_plugins = ("course_lib.core.exercise_marker",)  # @pytest.mark.exercise and --exercise NAME
