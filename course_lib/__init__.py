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


def _version() -> str:
    """The version declared once, in pyproject.toml: the checkout's file when this package lives in one
    (installed editable, or not at all), else the installed distribution's metadata."""
    import importlib.metadata
    import pathlib
    import tomllib

    pyproject = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    return importlib.metadata.version("course-lib")


__version__ = _version()


def __getattr__(name: str):
    """``check``, imported on first use (``import course_lib`` stays light)."""
    if name == "check":
        from course_lib.core.check import check

        return check
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
