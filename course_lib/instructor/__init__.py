"""Instructor tools, kept out of the student release: execute notebooks, report, sweep, refresh, release.

``python -m course_lib.instructor run|sweep|refresh|release ...`` (see :mod:`.cli`); the nox sessions
``run``, ``sweep`` and ``release`` call it.
"""
