"""Assignment 03's settings, profiles, sweep and entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib.core.settings import Settings
from course_lib.lm.compare import compare_runs
from course_lib.lm.config import ASSIGNMENT, FULL, SMOKE, LMSettings

ROOT = Path(__file__).resolve().parents[2]


def test_both_profiles_are_checked_instances_of_one_settings_class():
    assert set(ASSIGNMENT.profiles) == {"smoke", "full"}
    for settings in (SMOKE, FULL):
        assert isinstance(settings, LMSettings) and isinstance(settings, Settings)
        assert type(settings)(**settings.to_dict()) == settings
    assert ASSIGNMENT.settings_class is LMSettings and ASSIGNMENT.knobs == LMSettings.names()
    assert SMOKE.grid and not FULL.grid and SMOKE.cpu_threads == 1 and FULL.cpu_threads is None


@pytest.mark.parametrize(("values", "error", "match"), [
    (dict(epochs=0), ValueError, r"epochs=0 is not valid; it must be >= 1"),
    (dict(optimizer="rmsprop"), ValueError, r"optimizer='rmsprop'.*'momentum'"),
    (dict(model="rnn"), ValueError, r"model='rnn'.*\['lstm', 'gpt1'\]"),
    (dict(split="train"), ValueError, r"split='train'.*\['official', 'offline'\]"),
    (dict(lr=0.0), ValueError, r"lr=0.0 is not valid; it must be > 0"),
    (dict(dropout=1.0), ValueError, r"dropout=1.0 is not valid; it must be < 1"),
    (dict(momentum=1.0), ValueError, r"momentum=1.0 is not valid; it must be < 1"),
    (dict(grid_sweep="course"), ValueError, r"grid_sweep='course'.*\['lm', 'lm_tuned'\]"),
    (dict(grid_train_tokens=16), ValueError, r"grid_train_tokens=16 .*seq_len=32"),
    (dict(norm_first="yes"), TypeError, r"norm_first='yes' has the wrong type"),
    (dict(embeddings="word2vec"), ValueError, r"embeddings='word2vec'"),
    (dict(model="gpt1", d_model=30, n_heads=4), ValueError, r"d_model=30 .*n_heads=4"),
    (dict(train_tokens=32), ValueError, r"train_tokens=32 .*seq_len=32"),
    (dict(num_layers="2"), TypeError, r"num_layers='2' has the wrong type"),
    (dict(tie_weights=1), TypeError, r"tie_weights=1 has the wrong type"),
])
def test_a_bad_value_is_refused_naming_the_knob(values, error, match):
    with pytest.raises(error, match=match):
        SMOKE.override(**values)


def test_override_returns_a_checked_copy_and_none_keeps_the_value():
    gpt = SMOKE.override(model="gpt1", lr=None, epochs=3)
    assert (gpt.model, gpt.epochs, gpt.lr) == ("gpt1", 3, 3e-3) and SMOKE.model == "lstm"
    assert SMOKE.override(lr=1).lr == 1.0  # ints are accepted for floats
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['hiden'\]"):
        SMOKE.override(hiden=3)


def test_learning_rate_and_dropout_defaults_follow_optimizer_and_model():
    assert FULL.override(optimizer="sgd").learning_rate == 1.0
    assert SMOKE.override(lr=0.5).learning_rate == 0.5
    assert FULL.dropout_rate == 0.5 and FULL.override(model="gpt1").dropout_rate == 0.2
    assert SMOKE.dropout_rate == 0.1
    assert SMOKE.model_options() == dict(hidden=64, dropout=0.1, tie_weights=True)
    gpt = FULL.override(model="gpt1")
    assert gpt.model_options() == dict(d_model=256, n_heads=4, max_len=64, norm_first=False, dropout=0.2,
                                       tie_weights=False)
    assert not SMOKE.norm_first and not FULL.norm_first  # GPT-1's post-norm unless asked


COURSE_ORDER = [("lstm", o, 1) for o in ("adam", "adamw", "sgd", "momentum")] + [
    ("gpt1", o, 1) for o in ("adam", "adamw", "sgd", "momentum")] + [
    ("lstm", "adamw", 2), ("lstm", "adamw", 4), ("gpt1", "adamw", 2), ("gpt1", "adamw", 4)]


@pytest.mark.parametrize("name", ["lm", "lm_tuned"])
def test_each_sweep_has_the_twelve_configurations_in_the_course_order(name):
    sweep = ASSIGNMENT.sweeps[name]
    assert sweep.name == name and sweep.compare is compare_runs
    assert [(c["model"], c["optimizer"], c["num_layers"]) for c in sweep.configs] == COURSE_ORDER
    assert len({c["exp_id"] for c in sweep.configs}) == 12 and not any(c["grid"] for c in sweep.configs)
    for profile in ASSIGNMENT.profiles:
        for config in sweep.configs:
            ASSIGNMENT.settings(profile, config)  # every configuration is valid in both profiles


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_the_default_sweep_is_the_course_settings_in_every_profile(profile):
    for config in ASSIGNMENT.sweeps["lm"].configs:
        s = ASSIGNMENT.settings(profile, config)
        assert (s.learning_rate, s.momentum, s.nesterov, s.weight_decay, s.batch_size, s.epochs) == (
            1e-3, 0.9, False, 5e-4, 16, 10)


def test_the_tuned_sweep_gives_each_optimizer_its_own_rate():
    rates = {c["optimizer"]: SMOKE.override(**c).learning_rate for c in ASSIGNMENT.sweeps["lm_tuned"].configs}
    assert rates == {"adam": 1e-3, "adamw": 1e-3, "sgd": 1.0, "momentum": 0.1}
    assert not set(c["exp_id"] for c in ASSIGNMENT.sweeps["lm"].configs) & set(
        c["exp_id"] for c in ASSIGNMENT.sweeps["lm_tuned"].configs)  # the two sweeps never share a folder


def test_entry_names_existing_exercise_tests_and_smoke_ranges():
    assert ASSIGNMENT.name == "03_language_models" and (ROOT / ASSIGNMENT.notebook).exists()
    assert all((ROOT / t).exists() for t in ASSIGNMENT.exercise_tests)
    assert set(ASSIGNMENT.headline) <= set(ASSIGNMENT.expected["smoke"])
    assert ASSIGNMENT.expected["smoke"]["unigram_minus_valid_ppl"][0] > 0  # the smoke run beats the baseline
