"""Assignment 01's settings (data, hand tuning, grid search, strong model), its two profiles and its entry."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from course_lib.core.assignment import Assignment
from course_lib.core.settings import Settings, knob
from course_lib.langid.model import ANALYZERS, NONLINEARITIES, OPTIMIZERS

SOURCES = ("auto", "langid-sentences", "wili-2018")
"""Data layouts: ``auto`` prefers WiLI-2018 when present, else the langid-sentences folder."""

GRID_AXES = ("analyzer", "ngram_range", "max_features", "nonlinearity", "width", "inner_width",
             "inner_nonlinearity", "patience", "optimizer")
"""Keys a grid may hold: lists of values, and ``optimizer`` as ``{name: [learning rates]}``.

``patience`` turns on early stopping (on a 20% validation split inside each fold, as skorch's
default split did in the course); a grid without it trains every fit for its full epochs.
"""


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


GRID_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "analyzer": (lambda v: isinstance(v, str) and v in ANALYZERS, f"one of {list(ANALYZERS)}"),
    "ngram_range": (lambda v: isinstance(v, list | tuple) and len(v) == 2 and all(map(_positive_int, v))
                    and v[0] <= v[1], "[lo, hi] with 1 <= lo <= hi"),
    "max_features": (lambda v: v is None or _positive_int(v), "an int >= 1 or None"),
    "nonlinearity": (lambda v: isinstance(v, str) and v in NONLINEARITIES, f"one of {list(NONLINEARITIES)}"),
    "width": (_positive_int, "an int >= 1"),
    "inner_width": (_positive_int, "an int >= 1"),
    "inner_nonlinearity": (lambda v: isinstance(v, str) and v in NONLINEARITIES,
                           f"one of {list(NONLINEARITIES)}"),
    "patience": (_positive_int, "an int >= 1"),
    "lr": (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf,
           "a number > 0"),
}
"""Per grid axis (and each optimizer's learning rates, ``lr``): the test of one value and what is valid."""


def check_grid(grid: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless ``grid`` holds only :data:`GRID_AXES`, each with a non-empty list
    of valid values (:data:`GRID_VALUES`; ``optimizer``: a non-empty ``{name: [learning rates]}``)."""
    unknown = sorted(set(grid) - set(GRID_AXES))
    if unknown:
        raise ValueError(f"unknown grid keys {unknown}; valid: {sorted(GRID_AXES)}")
    for axis, values in grid.items():
        if axis == "optimizer":
            if not isinstance(values, Mapping) or not values:
                raise ValueError(f"grid['optimizer']={values!r} is not valid; give {{name: [lrs]}}")
            bad = sorted(set(values) - set(OPTIMIZERS))
            if bad:
                raise ValueError(f"unknown optimizers {bad} in grid['optimizer']; choose from "
                                 f"{list(OPTIMIZERS)}")
            lists = [(f"grid['optimizer'][{name!r}]", "lr", lrs) for name, lrs in values.items()]
        else:
            lists = [(f"grid[{axis!r}]", axis, values)]
        for where, kind, items in lists:
            if not isinstance(items, list | tuple) or not items:
                raise ValueError(f"{where}={items!r} is not valid; give a non-empty list of values")
            valid, what = GRID_VALUES[kind]
            for item in items:
                if not valid(item):
                    raise ValueError(f"{where} holds {item!r}, which is not valid; each value must be {what}")


COURSE_GRID: dict[str, Any] = {
    "analyzer": ["char"], "ngram_range": [[1, 1], [2, 2]], "max_features": [100],
    "nonlinearity": ["relu", "tanh"], "width": [300], "inner_width": [50], "inner_nonlinearity": ["relu"],
    "patience": [5], "optimizer": {"sgd": [0.1, 0.01], "adam": [0.1, 0.01]},
}
"""The course's GridSearchCV grid: 2 n-gram ranges x 2 nonlinearities x 2 optimizers x 2 learning
rates = 16 candidates; width 300 (then 50 ReLU units) and patience 5 are single values, so they
multiply by 1. Binary counts of the 100 most frequent n-grams, as in the baseline."""

EXTENDED_GRID: dict[str, Any] = {
    "analyzer": ["char", "char_wb"], "ngram_range": [[2, 2], [1, 3]], "max_features": [100, 1000],
    "nonlinearity": ["relu", "tanh"], "width": [64, 256], "optimizer": {"sgd": [0.1], "adam": [0.003]},
}
"""The workbook's wider grid (64 candidates): word-bounded n-grams, 1-3 grams and a 1000-feature
vocabulary besides the course's axes."""

GRIDS: dict[str, dict[str, Any]] = {"course": COURSE_GRID, "extended": EXTENDED_GRID}
"""Grids by name: a grid knob may hold one of these names instead of a dict."""

COURSE_GRID_EPOCHS = 20
"""Epochs of each fit in the course's grid search (before ``epoch_scale``)."""


def resolve_grid(grid: str | Mapping[str, Any], name: str = "grid") -> dict[str, Any]:
    """The grid itself: a dict is checked and returned, a string is looked up in :data:`GRIDS`."""
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"{name}={grid!r} is not valid; give a dict or one of the named grids "
                             f"{list(GRIDS)}")
        grid = GRIDS[grid]
    check_grid(grid)
    return dict(grid)


def scaled_epochs(epochs: int, scale: float) -> int:
    """``epochs`` times ``scale``, rounded, at least 1 (the course's epoch counts under ``epoch_scale``)."""
    return max(1, round(epochs * scale))


@dataclass(frozen=True)
class LangIdSettings(Settings):
    """Every knob of assignment 01: the data, the hand-tuned runs, GridSearchCV and the strong model."""

    source: str = knob(choices=SOURCES, doc="data layout (auto: WiLI-2018 when present)")
    languages: tuple[str, ...] | None = knob(doc="ISO 639-1 or 639-3 codes (None: the default 26)")
    max_per_language: int | None = knob(min=5, doc="cap on texts per language (None: all)")
    epoch_scale: float = knob(min=0.0, min_inclusive=False, max=1.0,
                              doc="multiplies the course's epochs (20; trial 3: 200)")
    batch_size: int = knob(min=1, doc="texts per mini-batch")
    course_grid: dict[str, Any] | str = knob(doc="the course's grid: a name in GRIDS or a dict")
    course_cv_folds: int = knob(min=2, doc="folds of the course's grid search")
    course_grid_max_train: int | None = knob(min=1, doc="course grid: CV on this many texts (None: all)")
    cv_folds: int = knob(min=2, doc="GridSearchCV folds of the extended grid")
    grid_epochs: int = knob(min=1, doc="epochs of each fit of the extended grid")
    grid_max_train: int | None = knob(min=1, doc="cross-validate on this many training texts (None: all)")
    n_jobs: int = knob(min=1, doc="parallel GridSearchCV fits")
    grid: dict[str, Any] | str = knob(doc="extended grid: {axis: [values]}, or a name in GRIDS")
    strong_features: int = knob(min=1, doc="TF-IDF vocabulary size of the strong model")
    strong_epochs: int = knob(min=1, doc="epochs of the strong model")
    cpu_threads: int | None = knob(min=1, doc="torch CPU threads (None: torch's default)")

    def check(self) -> None:
        resolve_grid(self.course_grid, "course_grid")
        resolve_grid(self.grid, "grid")


# languages=None: the default 26 (the course's six + 20); course_grid="course": COURSE_GRID
SMOKE = LangIdSettings(
    source="langid-sentences", languages=None, max_per_language=200, epoch_scale=0.5, batch_size=128,
    course_grid="course", course_cv_folds=3, course_grid_max_train=1560, cv_folds=2, grid_epochs=6,
    grid_max_train=None, n_jobs=1,
    grid={"analyzer": ["char", "char_wb"], "ngram_range": [[2, 2], [1, 3]], "max_features": [300],
          "nonlinearity": ["relu"], "width": [64], "optimizer": {"adam": [0.003]}},
    strong_features=20000, strong_epochs=4, cpu_threads=1,
)
FULL = LangIdSettings(
    source="langid-sentences", languages=None, max_per_language=None, epoch_scale=1.0, batch_size=128,
    course_grid="course", course_cv_folds=3, course_grid_max_train=None, cv_folds=2, grid_epochs=6,
    grid_max_train=6000, n_jobs=2, grid="extended", strong_features=30000, strong_epochs=5, cpu_threads=1,
)

FULL_EXPECTED = {
    "n_languages": (26, 26), "test_accuracy_majority": (0.0, 0.1), "test_accuracy_baseline": (0.4, 0.8),
    "test_accuracy_baseline_minus_majority": (0.3, 1.0), "test_accuracy_course_grid": (0.6, 0.95),
    "test_accuracy_course_grid_minus_majority": (0.5, 1.0), "test_accuracy_grid": (0.85, 1.0),
    "test_accuracy_best": (0.97, 1.0),
}

ASSIGNMENT = Assignment(
    id="01",
    slug="language_identification",
    title="Language identification with character n-grams and skorch",
    datasets=("langid-sentences",),
    # the full experiment already runs on a laptop CPU, so "laptop" is the same profile
    profiles={"smoke": SMOKE, "laptop": FULL, "full": FULL},
    expected={
        "smoke": {"n_languages": (26, 26), "test_accuracy_majority": (0.0, 0.1),
                  "test_accuracy_baseline": (0.25, 0.7), "test_accuracy_baseline_minus_majority": (0.2, 1.0),
                  "test_accuracy_course_grid": (0.5, 0.95),
                  "test_accuracy_course_grid_minus_majority": (0.4, 1.0),
                  "test_accuracy_grid": (0.45, 0.95), "test_accuracy_best": (0.95, 1.0)},
        "full": FULL_EXPECTED,
        "laptop": FULL_EXPECTED,
    },
    headline=("n_languages", "test_accuracy_majority", "test_accuracy_baseline", "test_accuracy_course_grid",
              "test_accuracy_grid", "test_accuracy_best"),
    exercise_tests=("tests/langid/test_model.py",),
    points={"make_vectorizer": 2, "to_float32": 1, "LangIdMLP.forward": 2},
)
