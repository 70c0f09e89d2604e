"""Assignment 01's settings (data, hand tuning, grid search, strong model) with their defaults (the ``full``
profile), its profiles and its entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from course_lib.core.assignment import Assignment
from course_lib.core.settings import Settings, knob
from course_lib.langid.grids import resolve_grid

SOURCES = ("auto", "langid-sentences", "wili-2018")
"""Data layouts: ``auto`` prefers WiLI-2018 when present, else the langid-sentences folder."""


@dataclass(frozen=True)
class LangIdSettings(Settings):
    """Every knob of assignment 01: the data, the hand-tuned runs, GridSearchCV and the strong model."""

    source: str = knob(default="langid-sentences", choices=SOURCES,
                       doc="data layout (auto: WiLI-2018 when present)")
    languages: tuple[str, ...] | None = knob(default=None, doc="ISO 639-1 or 639-3 codes (None: the default "
                                                               "26: the course's six and 20 more)")
    max_per_language: int | None = knob(default=None, min=5, doc="cap on texts per language (None: all)")
    epoch_scale: float = knob(default=1.0, min=0.0, min_inclusive=False, max=1.0,
                              doc="multiplies the course's epochs (20; trial 3: 200)")
    batch_size: int = knob(default=128, min=1, doc="texts per mini-batch")
    course_grid: dict[str, Any] | str = knob(default="course",
                                             doc="the course's grid: a name in GRIDS or a dict")
    course_cv_folds: int = knob(default=3, min=2, doc="folds of the course's grid search")
    course_grid_max_train: int | None = knob(default=None, min=1,
                                             doc="course grid: CV on this many texts (None: all)")
    cv_folds: int = knob(default=2, min=2, doc="GridSearchCV folds of the extended grid")
    grid_epochs: int = knob(default=6, min=1, doc="epochs of each fit of the extended grid")
    grid_max_train: int | None = knob(default=6000, min=1,
                                      doc="cross-validate on this many training texts (None: all)")
    n_jobs: int = knob(default=2, min=1, doc="parallel GridSearchCV fits")
    grid: dict[str, Any] | str = knob(default="extended",
                                      doc="extended grid: {axis: [values]}, or a name in GRIDS")
    strong_features: int = knob(default=30000, min=1, doc="TF-IDF vocabulary size of the strong model")
    strong_epochs: int = knob(default=5, min=1, doc="epochs of the strong model")
    cpu_threads: int | None = knob(default=1, min=1, doc="torch CPU threads (None: torch's default)")

    def check(self) -> None:
        resolve_grid(self.course_grid, "course_grid")
        resolve_grid(self.grid, "grid")


# the defaults: every text of the default 26 languages, the course's epochs; the extended grid
# cross-validated on 6,000 texts
FULL = LangIdSettings()
# 200 texts per language, half the course's epochs, the course's grid on 1,560 texts and a 4-candidate
# grid in place of the extended one (about 2 minutes on one CPU thread)
SMOKE = LangIdSettings(
    max_per_language=200, epoch_scale=0.5, course_grid_max_train=1560, grid_max_train=None, n_jobs=1,
    grid={"analyzer": ["char", "char_wb"], "ngram_range": [[2, 2], [1, 3]], "max_features": [300],
          "nonlinearity": ["relu"], "width": [64], "optimizer": {"adam": [0.003]}},
    strong_features=20000, strong_epochs=4,
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
    points={"make_vectorizer": 2, "to_float32": 1, "LangIdMLP.forward": 2, "make_net": 3, "make_pipeline": 2,
            "param_grid": 3},
)
