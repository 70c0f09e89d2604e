"""Assignment 01 settings: both profiles are valid, bad values are refused naming the knob."""

from __future__ import annotations

import pytest

from course_lib.core.assignment import CONTRACT
from course_lib.langid.config import ASSIGNMENT, FULL, SMOKE, LangIdSettings


def test_profiles_are_valid_settings():
    assert ASSIGNMENT.profiles == {"smoke": SMOKE, "laptop": FULL, "full": FULL}
    for profile in (SMOKE, FULL):
        assert isinstance(profile, LangIdSettings)
        assert profile.cpu_threads == 1 and profile.source == "langid-sentences"
    assert SMOKE.max_per_language == 200 and FULL.max_per_language is None
    assert FULL.grid == "extended" and SMOKE.course_grid == FULL.course_grid == "course"
    assert SMOKE.course_cv_folds == FULL.course_cv_folds == 3 and FULL.epoch_scale == 1.0
    assert not set(CONTRACT) & set(ASSIGNMENT.knobs)
    assert ASSIGNMENT.knobs[0] == "source" and ASSIGNMENT.knobs[-1] == "cpu_threads"
    assert set(ASSIGNMENT.headline) <= set(ASSIGNMENT.expected["smoke"])
    assert ASSIGNMENT.exercise_tests == ("tests/langid/test_model.py",)


@pytest.mark.parametrize(("values", "error", "message"), [
    ({"epoch_scale": 0}, ValueError, r"epoch_scale=0.0 is not valid; it must be > 0"),
    ({"epoch_scale": 2}, ValueError, r"epoch_scale=2.0 is not valid; it must be <= 1"),
    ({"course_grid": "coarse"}, ValueError, r"course_grid='coarse' is not valid; give a dict or one of"),
    ({"cv_folds": 1}, ValueError, r"cv_folds=1 is not valid; it must be >= 2"),
    ({"max_per_language": 3}, ValueError, r"max_per_language=3 is not valid"),
    ({"source": "web"}, ValueError, r"source='web' is not valid; choose one of \['auto'"),
    ({"batch_size": "128"}, TypeError, r"batch_size='128' has the wrong type"),
    ({"languages": "eng"}, TypeError, r"languages='eng' has the wrong type"),
    ({"grid": [1, 2]}, TypeError, r"grid=\[1, 2\] has the wrong type; expected dict"),
    ({"grid": {"depth": [1, 2]}}, ValueError, r"unknown grid keys \['depth'\]"),
    ({"grid": {"width": []}}, ValueError, r"grid\['width'\]=\[\] is not valid"),
    ({"grid": {"optimizer": [0.1]}}, ValueError, r"grid\['optimizer'\]=\[0.1\] is not valid"),
    ({"cpu_threads": 0}, ValueError, r"cpu_threads=0 is not valid"),
    ({"epoch": 3}, ValueError, r"unknown setting\(s\) \['epoch'\]"),
])
def test_bad_values_are_refused_naming_the_knob(values, error, message):
    with pytest.raises(error, match=message):
        SMOKE.override(**values)


def test_override_returns_a_checked_copy():
    changed = SMOKE.override(epoch_scale=0.25, languages=["eng", "deu"], grid_max_train=...,
                             max_per_language=None)
    assert changed.epoch_scale == 0.25 and changed.languages == ("eng", "deu")
    assert changed.grid_max_train is SMOKE.grid_max_train and changed.batch_size == SMOKE.batch_size
    assert changed.max_per_language is None  # None: all
    assert SMOKE.epoch_scale == 0.5  # the profile itself is unchanged
    assert ASSIGNMENT.settings("full", {"epoch_scale": ..., "n_jobs": 1}).n_jobs == 1
