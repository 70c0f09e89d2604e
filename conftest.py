"""Loaded by every pytest run in this checkout (``tests/``, and nbval on ``notebooks/`` alone): the
notebook kernels started from here inherit the portable math kernels that ``refresh`` recorded the
committed outputs with (:func:`~course_lib.core.device.use_portable_math`), and the exercise tests'
marker and ``--exercise NAME`` come from :mod:`course_lib.core.exercise_marker`."""

from course_lib.core.device import use_portable_math

pytest_plugins = ("course_lib.core.exercise_marker",)  # @pytest.mark.exercise and --exercise NAME

use_portable_math()
