"""The core every assignment builds on (each module here is used by two or more assignments).

- :mod:`.settings`: :class:`Settings` (frozen, checked knobs), :func:`knob`, :func:`check_choice`.
- :mod:`.assignment`: :class:`Assignment` (profiles, expected ranges, sweeps) and :class:`Sweep`.
- :mod:`.runs`: :func:`start_run`, the first cell of every notebook, and :class:`Run`.
- :mod:`.sweep`: the one sweep engine (:func:`run_sweep`).
- :mod:`.folders`: which folders a tool may write into (its marker) and one process at a time (a lock).
- :mod:`.data`: data root, registry, downloads, caches, GloVe.
- :mod:`.training`: the one training loop (:func:`fit`), checkpoints, :func:`count_parameters`,
  :func:`accuracy`.
- :mod:`.device`: seeding, device, CPU threads, autocast, the environment record.
- :mod:`.io`: atomic writes, JSON, digests.
- :mod:`.plots`: training curves, confusion matrices.
- :mod:`.exercises`: the solution and student fences; :mod:`.check`: ``check("name")``, one exercise's
  tests from a notebook (:mod:`.exercise_marker`: the pytest marker that says which tests those are).
"""

from course_lib.core.assignment import CONTRACT, Assignment, Sweep
from course_lib.core.plots import plot_confusion_matrix, plot_curves
from course_lib.core.runs import Run, start_run
from course_lib.core.settings import Settings, check_choice, knob
from course_lib.core.sweep import SweepOutcome, run_sweep
from course_lib.core.training import History, accuracy, count_parameters, fit

__all__ = [
    "CONTRACT", "Assignment", "History", "Run", "Settings", "Sweep", "SweepOutcome", "accuracy",
    "check_choice", "count_parameters", "fit", "knob", "plot_confusion_matrix", "plot_curves", "run_sweep",
    "start_run",
]
