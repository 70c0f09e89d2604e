"""Loaded by every pytest run in this checkout (``tests/``, and nbval on ``notebooks/`` alone): the
notebook kernels started from here inherit the portable math kernels that ``refresh`` recorded the
committed outputs with (:func:`~course_lib.core.device.use_portable_math`)."""

from course_lib.core.device import use_portable_math

use_portable_math()
