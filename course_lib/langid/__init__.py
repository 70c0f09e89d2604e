"""Assignment 01: language identification with character n-grams and a skorch MLP.

:mod:`~course_lib.langid.config` declares the settings (:class:`LangIdSettings`), the profiles and
:data:`ASSIGNMENT`; :mod:`~course_lib.langid.data` loads texts with ISO 639-3 labels and splits them;
:mod:`~course_lib.langid.model` holds the configurable MLP, the seeded skorch classifier and the
pipeline; :mod:`~course_lib.langid.experiments` runs hand tuning, GridSearchCV and the strong model;
:mod:`~course_lib.langid.analysis` reports per-language scores, confusions and predictions.
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
from course_lib.langid.data import DEFAULT_LANGUAGES, LangIdData, load_langid, to_iso639_3
from course_lib.langid.experiments import (
    MANUAL_SETTINGS,
    GridResult,
    SettingResult,
    accuracy,
    fit_linear_model,
    fit_strong_model,
    grid_search,
    grid_size,
    grid_table,
    readable_params,
    run_settings,
    settings_frame,
    settings_table,
)
from course_lib.langid.model import (
    LangIdClassifier,
    LangIdMLP,
    make_net,
    make_pipeline,
    make_vectorizer,
    to_float32,
)

__all__ = [
    "ASSIGNMENT", "DEFAULT_LANGUAGES", "MANUAL_SETTINGS", "GridResult", "LangIdClassifier", "LangIdData",
    "LangIdMLP", "LangIdSettings", "SettingResult", "accuracy", "confused_examples", "fit_linear_model",
    "fit_strong_model", "grid_search", "grid_size", "grid_table", "load_langid", "make_net", "make_pipeline",
    "make_vectorizer", "most_confused_pairs", "per_language_report", "plot_comparison", "plot_per_language",
    "plot_settings", "predict_language", "readable_params", "run_settings", "settings_frame",
    "settings_table", "to_float32", "to_iso639_3",
]
