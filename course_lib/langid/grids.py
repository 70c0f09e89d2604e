"""The grids of assignment 01's grid searches: the course's and the workbook's, by name, and the check of a
grid a knob gives (its axes and each value)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from course_lib.langid.model import ANALYZERS, NONLINEARITIES, OPTIMIZERS

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


def resolve_grid(grid: str | Mapping[str, Any], name: str = "grid") -> dict[str, Any]:
    """The grid itself: a dict is checked and returned, a string is looked up in :data:`GRIDS`."""
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"{name}={grid!r} is not valid; give a dict or one of the named grids "
                             f"{list(GRIDS)}")
        grid = GRIDS[grid]
    check_grid(grid)
    return dict(grid)
