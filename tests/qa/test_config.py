"""QASettings: the three profiles are valid, bad values are refused naming the knob, override works."""

from __future__ import annotations

import dataclasses

import pytest

from course_lib.qa.config import ASSIGNMENT, FULL, LAPTOP, SMOKE, QASettings


def test_profiles_are_checked_instances_of_one_class():
    assert ASSIGNMENT.profiles == {"smoke": SMOKE, "laptop": LAPTOP, "full": FULL}
    for profile in (SMOKE, LAPTOP, FULL):
        assert isinstance(profile, QASettings)
        assert QASettings(**profile.to_dict()) == profile
    assert ASSIGNMENT.knobs == (
        "train_articles", "val_articles", "test_articles", "hidden", "epochs", "bilstm_epochs",
        "batch_size", "lr", "patience", "train_window", "max_iters", "train_iters", "dcn_encoder", "dropout",
        "question_match", "max_answer_len", "cpu_threads", "amp")
    for profile in ("smoke", "laptop"):
        assert set(ASSIGNMENT.expected[profile]) <= set(ASSIGNMENT.headline)
    # the laptop profile: whole paragraphs, the same features and early stopping for both readers
    assert LAPTOP.train_window is None and LAPTOP.question_match and LAPTOP.patience is not None
    assert LAPTOP.epochs == LAPTOP.bilstm_epochs


@pytest.mark.parametrize(("values", "error", "message"), [
    ({"epochs": 0}, ValueError, r"epochs=0 is not valid; it must be >= 1"),
    ({"bilstm_epochs": -1}, ValueError, r"bilstm_epochs=-1 is not valid"),
    ({"lr": 0.0}, ValueError, r"lr=0.0 is not valid; it must be > 0"),
    ({"dropout": 1.0}, ValueError, r"dropout=1.0 is not valid; it must be < 1"),
    ({"dropout": -0.1}, ValueError, r"dropout=-0.1 is not valid"),
    ({"train_window": 0}, ValueError, r"train_window=0 is not valid"),
    ({"hidden": "32"}, TypeError, r"hidden='32' has the wrong type"),
    ({"batch_size": 3.5}, TypeError, r"batch_size=3.5 has the wrong type"),
    ({"amp": 1}, TypeError, r"amp=1 has the wrong type"),
    ({"cpu_threads": 0}, ValueError, r"cpu_threads=0 is not valid"),
    ({"val_articles": 0}, ValueError, r"val_articles=0 is not valid"),
    ({"patience": 0}, ValueError, r"patience=0 is not valid; it must be >= 1"),
    ({"train_iters": 5}, ValueError, r"train_iters=5 is not valid; it must be <= max_iters \(4\)"),
    ({"question_match": "yes"}, TypeError, r"question_match='yes' has the wrong type"),
    ({"dcn_encoder": "gru"}, ValueError, r"dcn_encoder='gru' is not valid; choose one of"),
])
def test_bad_values_are_refused_naming_the_knob(values, error, message):
    with pytest.raises(error, match=message):
        SMOKE.override(**values)


def test_override_keeps_none_coerces_and_refuses_unknown_names():
    changed = SMOKE.override(epochs=3, lr=1, train_window=..., patience=None)
    assert changed.epochs == 3 and changed.lr == 1.0 and isinstance(changed.lr, float)
    assert changed.train_window == SMOKE.train_window  # ... keeps the profile's value
    assert changed.patience is None and SMOKE.override(train_window=None).train_window is None
    assert dataclasses.replace(SMOKE, train_window=None).train_window is None
    assert SMOKE.epochs == 2  # the profile itself is untouched
    with pytest.raises(ValueError, match="hiden"):
        SMOKE.override(hiden=3)


def test_training_rounds_default_to_max_iters():
    assert SMOKE.override(max_iters=3).training_rounds == 3
    assert SMOKE.override(max_iters=3, train_iters=2).training_rounds == 2


def test_epochs_for_each_reader():
    settings = SMOKE.override(epochs=2, bilstm_epochs=5)
    assert (settings.epochs_for("dcn"), settings.epochs_for("bilstm")) == (2, 5)
    with pytest.raises(ValueError, match="reader='lstm'"):
        settings.epochs_for("lstm")
