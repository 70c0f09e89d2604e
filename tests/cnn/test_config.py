"""course_lib.cnn.config: the settings class, both profiles, checked values and the assignment entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib.cnn.config import ASSIGNMENT, FULL, LAPTOP, SMOKE, CNNSettings

ROOT = Path(__file__).resolve().parents[2]


def test_profiles_are_checked_settings_instances():
    assert ASSIGNMENT.profiles == {"smoke": SMOKE, "laptop": LAPTOP, "full": FULL}
    for profile in (SMOKE, LAPTOP, FULL):
        assert isinstance(profile, CNNSettings)
        assert CNNSettings(**profile.to_dict()) == profile
    assert SMOKE.widths == (16, 32, 64) and SMOKE.cpu_threads == 1 and SMOKE.stem is None
    assert FULL.train_size is None and FULL.residual and FULL.stem == 64
    assert LAPTOP.train_size is None and LAPTOP.architecture == "airbench" and LAPTOP.tta
    assert (LAPTOP.optimizer, LAPTOP.epochs, LAPTOP.batch_size) == ("muon", 8, 2000)  # airbench94_muon's
    assert not LAPTOP.course_recipe().lookahead
    assert ASSIGNMENT.knobs[:2] == ("train_size", "test_size") and "momentum" in ASSIGNMENT.knobs
    assert set(ASSIGNMENT.expected["smoke"]) == set(ASSIGNMENT.headline)
    assert all((ROOT / path).is_file() for path in ASSIGNMENT.exercise_tests)


@pytest.mark.parametrize(("values", "error", "message"), [
    (dict(epochs=0), ValueError, r"epochs=0 is not valid; it must be >= 1"),
    (dict(lr=0.0), ValueError, r"lr=0.0 is not valid; it must be > 0"),
    (dict(widths=()), ValueError, r"widths=\(\) is not valid"),
    (dict(widths=(16, 0)), ValueError, r"widths=\(16, 0\) is not valid"),
    (dict(dropout=1.0), ValueError, r"dropout=1.0 is not valid; it must be < 1"),
    (dict(stem=0), ValueError, r"stem=0 is not valid"),
    (dict(train_size=0), ValueError, r"train_size=0 is not valid"),
    (dict(train_size=60_000), ValueError, r"train_size=60000 is not valid; it must be <= 50000"),
    (dict(test_size=10_001), ValueError, r"test_size=10001 is not valid; it must be <= 10000"),
    (dict(residual="yes"), TypeError, r"residual='yes' has the wrong type"),
    (dict(batch_size=32.0), TypeError, r"batch_size=32.0 has the wrong type"),
    (dict(widths=(16, "a")), TypeError, r"widths\[1\]='a' has the wrong type"),
    (dict(optimizer="muon", lookahead=True), ValueError,
     r"lookahead=True works with optimizer='sgd_one_cycle' only, not optimizer='muon'"),
    (dict(optimizer="lion"), ValueError, r"optimizer='lion' is not valid.*'muon'"),
])
def test_bad_values_are_refused_naming_the_knob(values, error, message):
    with pytest.raises(error, match=message):
        SMOKE.override(**values)


def test_override_checks_coerces_and_keeps_unset_values():
    changed = SMOKE.override(epochs=5, widths=[8, 16], lr=1, amp=..., train_size=None)
    assert changed.epochs == 5 and changed.widths == (8, 16) and changed.lr == 1.0
    assert changed.amp is SMOKE.amp and SMOKE.epochs == 2  # the profile itself is unchanged
    assert changed.train_size is None  # None: all 50,000
    assert ASSIGNMENT.settings("full", {"epochs": 1}) == FULL.override(epochs=1)
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['epoch'\]"):
        SMOKE.override(epoch=3)


def test_the_smoke_headline_is_a_margin_over_chance():
    for profile in ("smoke", "laptop", "full"):
        lo, _ = ASSIGNMENT.expected[profile]["test_accuracy_minus_chance"]
        assert lo > 0 and ASSIGNMENT.expected[profile]["vgg_test_accuracy_minus_chance"][0] > 0
    assert SMOKE.architecture == FULL.architecture == "fast" and FULL.vgg_width == 1.0
