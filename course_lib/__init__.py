"""course_lib: the tested library behind the deep-learning course workbook.

Core modules (shared by every assignment): :mod:`course_lib.data`, :mod:`course_lib.reproducibility`,
:mod:`course_lib.training`, :mod:`course_lib.recording`, :mod:`course_lib.runs`,
:mod:`course_lib.assignments`, :mod:`course_lib.plots`.

Assignment modules (one per assignment, never importing each other): :mod:`course_lib.langid` (01),
:mod:`course_lib.numpy_cnn` and :mod:`course_lib.cifar` (02), :mod:`course_lib.lm` (03),
:mod:`course_lib.qa` (04), :mod:`course_lib.modularization` and :mod:`course_lib.similarity` (05).
"""

__version__ = "0.1.0"
