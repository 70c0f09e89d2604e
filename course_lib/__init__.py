"""course_lib: the tested library behind the deep-learning course workbook.

One package per assignment, each with the same shape (a ``config`` module declaring its settings,
profiles, expected ranges and sweeps; library modules; a package face its notebook imports from):

- :mod:`course_lib.langid` (01, language identification),
- :mod:`course_lib.cnn` (02, convolutions in numpy and a CNN on CIFAR-10),
- :mod:`course_lib.lm` (03, language models on WikiText-2),
- :mod:`course_lib.qa` (04, extractive question answering on SQuAD),
- :mod:`course_lib.modularization` (05, concern modularization of a BERT classifier).

:mod:`course_lib.core` holds what two or more assignments use; :mod:`course_lib.assignments` lists
the five. The instructor's tools are a subpackage of their own, which the student release leaves out.
Imports only point down: notebooks -> assignment packages -> core.

``from course_lib import check``; ``check("zero_pad")`` runs one exercise's tests
(:func:`course_lib.core.check.check`).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``check``, imported on first use (``import course_lib`` stays light)."""
    if name == "check":
        from course_lib.core.check import check

        return check
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
