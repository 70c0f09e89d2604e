"""Assignment 03's settings, profiles, sweep and entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib.core.settings import Settings
from course_lib.core.training import count_parameters
from course_lib.lm.compare import compare_runs
from course_lib.lm.config import ASSIGNMENT, FULL, LAPTOP, SMOKE, LMSettings
from course_lib.lm.models import build_model, matching_gpt, model_options

ROOT = Path(__file__).resolve().parents[2]


def test_the_profiles_are_checked_instances_of_one_settings_class():
    assert set(ASSIGNMENT.profiles) == {"smoke", "laptop", "full"}
    for settings in (SMOKE, LAPTOP, FULL):
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
    (dict(model="gpt1", stateful_training=True), ValueError, r"stateful_training=True is not valid for "
                                                             r"model='gpt1'"),
    (dict(lr_plateau_factor=0.5), ValueError, r"lr_plateau_factor=0.5 is not valid; it must be >= 1.0"),
    (dict(lr_anneal_epochs=1), ValueError, r"lr_anneal_epochs=1 needs lr_plateau_factor > 1"),
    (dict(lr_anneal_epochs=5, lr_plateau_factor=4.0), ValueError,
     r"lr_anneal_epochs=5 is not valid; it must be below epochs=5"),
    (dict(grid_eval_tokens=16), ValueError, r"grid_eval_tokens=16 .*seq_len=32"),
])
def test_a_bad_value_is_refused_naming_the_knob(values, error, match):
    with pytest.raises(error, match=match):
        SMOKE.override(**values)


def test_override_returns_a_checked_copy_and_unset_keeps_the_value():
    gpt = SMOKE.override(model="gpt1", lr=..., epochs=3)
    assert (gpt.model, gpt.epochs, gpt.lr) == ("gpt1", 3, 3e-3) and SMOKE.model == "lstm"
    unclipped = SMOKE.override(grad_clip=None, lr=None)  # None: no clipping, the optimizer's learning rate
    assert (unclipped.grad_clip, unclipped.lr, unclipped.learning_rate) == (None, None, 1e-3)
    assert SMOKE.override(lr=1).lr == 1.0  # ints are accepted for floats
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['hiden'\]"):
        SMOKE.override(hiden=3)


def test_learning_rate_and_dropout_defaults_follow_optimizer_and_model():
    assert FULL.override(optimizer="sgd").learning_rate == 1.0
    assert SMOKE.override(lr=0.5).learning_rate == 0.5
    assert FULL.dropout_rate == 0.5 and FULL.override(model="gpt1").dropout_rate == 0.2
    assert SMOKE.dropout_rate == 0.1
    assert model_options(SMOKE) == dict(hidden=64, dropout=0.1, tie_weights=True)
    gpt = FULL.override(model="gpt1")
    assert model_options(gpt) == dict(d_model=256, n_heads=4, max_len=64, norm_first=False, dropout=0.2,
                                      tie_weights=False)
    assert not SMOKE.norm_first and not FULL.norm_first  # GPT-1's post-norm unless asked
    assert model_options(LAPTOP) == dict(hidden=200, dropout=LAPTOP.dropout, tie_weights=True, emb_dim=200)


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


@pytest.mark.parametrize("profile", ["smoke", "laptop", "full"])
def test_the_default_sweep_is_the_course_settings_in_every_profile(profile):
    for config in ASSIGNMENT.sweeps["lm"].configs:
        s = ASSIGNMENT.settings(profile, config)
        assert (s.learning_rate, s.momentum, s.nesterov, s.weight_decay, s.batch_size, s.epochs) == (
            1e-3, 0.9, False, 5e-4, 16, 10)
        assert (s.lr_plateau_factor, s.lr_anneal_epochs, s.stateful_training, s.grid, s.gpt_beside,
                s.reference_beside) == (1.0, 0, False, False, False, False)


def test_the_laptop_profile_is_the_reference_lstm_on_the_offline_split():
    s = LAPTOP
    assert (s.model, s.num_layers, s.hidden, s.epochs, s.batch_size, s.seq_len) == ("lstm", 2, 200, 5, 20, 35)
    assert (s.split, s.max_vocab, s.train_tokens, s.eval_tokens) == ("offline", None, None, None)
    assert s.stateful_training and s.lr_plateau_factor > 1 and s.gpt_beside and not s.grid
    assert s.reference_beside  # pytorch/examples' recipe on the same tokens, the ratios printed
    assert s.lr_anneal_epochs == 1  # the fifth epoch at lr / 4
    assert ASSIGNMENT.expected["laptop"]["valid_ppl_stateful"][1] <= 190.0


def test_a_grid_configuration_reads_the_grid_sizes():
    assert (LAPTOP.train_tokens_used, LAPTOP.eval_tokens_used) == (None, None)
    run = LAPTOP.override(exp_id="lstm-adam-L1")
    assert run.train_tokens_used == LAPTOP.grid_train_tokens
    assert run.eval_tokens_used == LAPTOP.grid_eval_tokens
    smoke = SMOKE.override(exp_id="lstm-adam-L1")
    assert (smoke.train_tokens_used, smoke.eval_tokens_used) == (8192, SMOKE.eval_tokens)
    # one rule for the notebook's grid and the sweep: what a grid configuration of this run reads
    assert SMOKE.tokens_used(grid=True) == (8192, SMOKE.eval_tokens) == smoke.tokens_used()
    assert [g.tokens_used() for g in SMOKE.grid_settings()] == [(8192, SMOKE.eval_tokens)] * 12
    assert LAPTOP.grid_settings() == () and FULL.tokens_used(grid=True) == (None, None)


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("values, message", [
    # 8,192 tokens make 255 windows of 32: not one batch of 512, so no optimizer step
    ({"batch_size": 512, "train_tokens": 8192}, r"batch_size=512 is not valid with train_tokens=8192: "
     r"8,192 tokens make 255 windows of seq_len=32, fewer than one batch.* lower batch_size to at most 255 "
     r"or train on at least 16,385 tokens"),
    ({"batch_size": 64, "eval_tokens": 40}, r"batch_size=64 is not valid with eval_tokens=40: the LSTM's "
     r"stateful evaluation reads batch_size lanes.*lower batch_size below 40 or give eval_tokens above 64"),
    ({"stateful_training": True, "batch_size": 200, "train_tokens": 150},
     r"batch_size=200 is not valid with train_tokens=150: stateful_training reads batch_size contiguous"),
    ({"grid_train_tokens": 100}, r"grid configuration lstm-adam-L1 \(grid_sweep='lm'\): batch_size=16 is not "
     r"valid with grid_train_tokens=100: 100 tokens make 3 windows"),
])
def test_batches_the_tokens_cannot_fill_are_refused_naming_both_knobs(values, message):
    with pytest.raises(ValueError, match=message):
        SMOKE.override(**values)


@pytest.mark.fault("clear_error")
def test_batches_the_data_cannot_fill_are_refused_once_its_size_is_known():
    """train_tokens=None (all): the bound is the data's, checked in the notebook's data cell."""
    LAPTOP.check_tokens(train=217_646, valid=120_297, test=125_272)  # the offline split fits
    with pytest.raises(ValueError, match=r"batch_size=20 is not valid with the 15 train tokens of the "
                                         r"'offline' split \(train_tokens=None\): stateful_training"):
        LAPTOP.check_tokens(train=15, valid=1000, test=1000)
    with pytest.raises(ValueError, match=r"the 12 test tokens of the 'offline' split.*eval_tokens above 20"):
        LAPTOP.check_tokens(train=10_000, valid=1000, test=12)
    SMOKE.check_tokens(train=217_646, valid=120_297, test=125_272)
    with pytest.raises(ValueError, match=r"batch_size=16 is not valid with the 400 train tokens"):
        SMOKE.override(train_tokens=None, grid=False).check_tokens(train=400, valid=5000, test=5000)


def test_the_gpt_beside_the_lstm_has_its_parameter_count():
    lstm = LAPTOP.override(hidden=24, emb_dim=24, n_heads=2)
    gpt = matching_gpt(lstm, 500)
    assert (gpt.model, gpt.optimizer, gpt.stateful_training) == ("gpt1", "adamw", False)
    assert gpt.d_model % gpt.n_heads == 0
    def size(s: LMSettings) -> int:
        return count_parameters(build_model(s.model, 500, s.num_layers, **model_options(s)))

    widths = (gpt.d_model - 2, gpt.d_model, gpt.d_model + 2)
    miss = {d: abs(size(gpt.override(d_model=d)) - size(lstm)) for d in widths}
    assert min(miss, key=miss.get) == gpt.d_model  # the nearest of the widths the heads allow


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
