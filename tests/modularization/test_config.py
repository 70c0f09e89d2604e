"""course_lib.modularization.config: the profiles are valid settings; bad values name their knob."""

from __future__ import annotations

import pytest

from course_lib.core.assignment import CONTRACT
from course_lib.modularization import ASSIGNMENT, ModularizationSettings
from course_lib.modularization.config import FULL, LAPTOP, SMOKE


def test_profiles_are_checked_settings_instances():
    assert ASSIGNMENT.profiles == {"smoke": SMOKE, "laptop": LAPTOP, "full": FULL}
    for settings in (SMOKE, LAPTOP, FULL):
        assert isinstance(settings, ModularizationSettings)
        assert ModularizationSettings(**settings.to_dict()) == settings
    assert ASSIGNMENT.parameters == CONTRACT + ModularizationSettings.names()
    for profile in ASSIGNMENT.profiles:
        assert set(ASSIGNMENT.headline) <= set(ASSIGNMENT.expected[profile])


def test_laptop_is_the_whole_sample_every_concern_at_the_course_ratio():
    assert LAPTOP.train_per_class is None and LAPTOP.concerns is None
    assert (LAPTOP.sparsity_ratio, LAPTOP.num_samples, LAPTOP.score) == (0.5, 16, "ci")
    assert LAPTOP.methods == ("unstructured", "structured")
    assert ASSIGNMENT.expected["laptop"]["original_accuracy"][0] >= 0.62
    # the smoke profile keeps its constant rate and plain shuffle
    assert (SMOKE.lr_schedule, SMOKE.warmup_ratio, SMOKE.length_pool) == ("constant", 0.0, 0)
    assert all(t.startswith("tests/modularization/") for t in ASSIGNMENT.exercise_tests)


@pytest.mark.parametrize("knob, value, error, message", [
    ("epochs", 0, ValueError, "epochs=0"),
    ("lr", 0.0, ValueError, "lr=0.0"),
    ("max_length", "32", TypeError, "max_length='32'"),
    ("dataset", "imdb", ValueError, "dataset='imdb'"),
    ("methods", ("unstructured", "magnitude"), ValueError, "methods='magnitude'"),
    ("methods", (), ValueError, "methods=()"),
    ("sparsity_ratio", 1.0, ValueError, "sparsity_ratio=1.0"),
    ("negative_weight", -0.5, ValueError, "negative_weight=-0.5"),
    ("score", "magnitude", ValueError, "score='magnitude'"),
    ("num_samples", 0, ValueError, "num_samples=0"),
    ("concerns", "sports", TypeError, "concerns='sports'"),
    ("include", ("dense(",), ValueError, "include pattern 'dense\\('"),
    ("freeze_layers", True, TypeError, "freeze_layers=True"),
    ("lr_schedule", "cosine", ValueError, "lr_schedule='cosine'"),
    ("warmup_ratio", 1.0, ValueError, "warmup_ratio=1.0"),
    ("length_pool", -1, ValueError, "length_pool=-1"),
])
def test_a_bad_value_names_its_knob(knob, value, error, message):
    with pytest.raises(error, match=message):
        SMOKE.override(**{knob: value})


def test_override_returns_a_checked_copy():
    changed = SMOKE.override(epochs=3, concerns=["sports", 2], methods=["structured"], sparsity_ratio=...)
    assert (changed.epochs, changed.concerns, changed.methods) == (3, ("sports", 2), ("structured",))
    assert changed.sparsity_ratio == SMOKE.sparsity_ratio and SMOKE.epochs == 2
    assert SMOKE.override(concerns=None, num_samples=None).concerns is None  # None: every class, all samples
    with pytest.raises(ValueError, match="unknown setting"):
        SMOKE.override(hidden=3)
