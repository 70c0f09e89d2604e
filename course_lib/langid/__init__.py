"""Assignment 01: language identification with character n-grams and a skorch MLP.

:mod:`~course_lib.langid.config` declares the settings (:class:`LangIdSettings`), the profiles and
:data:`ASSIGNMENT`; :mod:`~course_lib.langid.grids` the grids of the grid searches and their check;
:mod:`~course_lib.langid.data` loads texts with ISO 639-3 labels and splits them;
:mod:`~course_lib.langid.model` holds the configurable MLP, the seeded skorch classifier and the
pipeline; :mod:`~course_lib.langid.experiments` runs hand tuning, GridSearchCV and the strong model;
:mod:`~course_lib.langid.analysis` reports per-language scores, confusions and predictions;
:mod:`~course_lib.langid.peers` scores the identifiers a user would install instead on the same sentences.
"""

from course_lib.langid.analysis import (
    confused_examples,
    most_confused_pairs,
    per_language_report,
    plot_comparison,
    plot_per_language,
    plot_settings,
    predict_language,
)
from course_lib.langid.config import ASSIGNMENT, LangIdSettings
from course_lib.langid.data import (
    COURSE_ADDITIONAL,
    DEFAULT_LANGUAGES,
    SUBSTITUTES,
    LangIdData,
    course_languages_table,
    load_langid,
    to_iso639_3,
)
from course_lib.langid.experiments import (
    BASELINE,
    COURSE_GRID_EPOCHS,
    COURSE_NET,
    MANUAL_SETTINGS,
    GridResult,
    SettingResult,
    accuracy,
    check_splits,
    course_grid_search,
    fit_linear_model,
    fit_strong_model,
    grid_search,
    grid_size,
    grid_table,
    param_grid,
    readable_params,
    run_settings,
    scaled_epochs,
    settings_frame,
    settings_table,
    trivial_baselines,
)
from course_lib.langid.grids import COURSE_GRID, EXTENDED_GRID, GRIDS
from course_lib.langid.model import (
    PIPELINE_STEPS,
    VALIDATION_SHARE,
    LangIdClassifier,
    LangIdMLP,
    describe_net,
    make_net,
    make_pipeline,
    make_vectorizer,
    to_float32,
)
from course_lib.langid.peers import PEERS, PeerMissing, compare_with_peers, comparison_lines

__all__ = [
    "ASSIGNMENT", "BASELINE", "COURSE_ADDITIONAL", "COURSE_GRID", "COURSE_GRID_EPOCHS", "COURSE_NET",
    "DEFAULT_LANGUAGES", "EXTENDED_GRID", "GRIDS", "GridResult", "LangIdClassifier", "LangIdData",
    "LangIdMLP", "LangIdSettings", "MANUAL_SETTINGS", "PEERS", "PIPELINE_STEPS", "PeerMissing", "SUBSTITUTES",
    "SettingResult", "VALIDATION_SHARE", "accuracy", "check_splits", "compare_with_peers", "comparison_lines",
    "confused_examples", "course_grid_search", "course_languages_table", "describe_net", "fit_linear_model",
    "fit_strong_model", "grid_search", "grid_size", "grid_table", "load_langid", "make_net", "make_pipeline",
    "make_vectorizer", "most_confused_pairs", "param_grid", "per_language_report", "plot_comparison",
    "plot_per_language", "plot_settings", "predict_language", "readable_params", "run_settings",
    "scaled_epochs", "settings_frame", "settings_table", "to_float32", "to_iso639_3", "trivial_baselines",
]
