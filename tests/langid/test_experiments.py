"""Assignment 01 experiments: the hand-tuning table, the grid, GridSearchCV, the strong and linear models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.langid import experiments
from course_lib.langid.config import SMOKE
from course_lib.langid.grids import COURSE_GRID


def test_course_trials_are_the_course_settings():
    frame = experiments.settings_frame()
    assert list(frame["width"]) == [200, 300, 300, 300, 300]
    assert list(frame["nonlinearity"]) == ["relu", "tanh", "tanh", "tanh", "sigmoid"]
    assert list(frame["optimizer"]) == ["sgd", "adam", "adam", "sgd", "adam"]
    assert list(frame["lr"]) == [0.1, 0.01, 0.005, 0.005, 0.01]
    assert list(frame["epochs"]) == [20, 20, 20, 200, 20] and list(frame["patience"]) == ["", "", 5, 20, ""]
    assert experiments.BASELINE["inner_width"] == 50 and experiments.BASELINE["inner_nonlinearity"] == "relu"


def test_hand_tuning_table(small_real):
    trials = [experiments.MANUAL_SETTINGS[0], experiments.MANUAL_SETTINGS[2]]
    results = experiments.run_settings(small_real, SMOKE.override(epoch_scale=0.2), trials)
    assert len(results[0].history) == 4  # 20 epochs x 0.2
    assert 1 <= len(results[1].history) <= 4  # possibly stopped early
    assert results[0].n_fit + results[0].n_valid == len(small_real.y_train)
    assert abs(results[0].n_valid - 0.2 * len(small_real.y_train)) <= len(small_real.languages)
    assert all(len(e["batch_loss"]) == -(-results[0].n_fit // SMOKE.batch_size) for e in results[0].history)
    table = experiments.settings_table(results)
    assert list(table.index) == ["baseline", "2: Adam 0.005, early stop"]
    assert all(0.0 <= a <= 1.0 for a in table["test acc"]) and "train acc" in table
    assert results[1].test_accuracy > 0.5  # Adam learns 4 languages from bigrams well above chance
    assert list(experiments.settings_frame(trials).index) == list(table.index)


def test_trivial_baselines(small_real):
    base = experiments.trivial_baselines(small_real)
    assert base["chance"] == 0.25 and base["majority"] == 0.25  # four balanced languages


def test_param_grid_splits_optimizers():
    grid = {"analyzer": ["char"], "ngram_range": [[1, 2]], "width": [8, 16],
            "optimizer": {"sgd": [0.1], "adam": [0.01, 0.001]}}
    pg = experiments.param_grid(grid)
    assert pg[0]["vect__ngram_range"] == [(1, 2)] and pg[0]["net__optimizer"] == [torch.optim.SGD]
    assert pg[1]["net__lr"] == [0.01, 0.001]
    assert experiments.grid_size(grid) == 6
    with pytest.raises(ValueError, match=r"unknown grid keys \['depthh'\]"):
        experiments.param_grid({"depthh": [1]})
    with pytest.raises(ValueError, match=r"unknown optimizers \['lbfgs'\]"):
        experiments.param_grid({"optimizer": {"lbfgs": [1.0]}})


def test_course_grid_has_16_candidates_and_early_stopping():
    assert experiments.grid_size("course") == 16 and experiments.grid_size(COURSE_GRID) == 16
    pg = experiments.param_grid("course")
    assert pg[0]["net__callbacks__EarlyStopping__patience"] == [5]
    assert pg[0]["vect__ngram_range"] == [(1, 1), (2, 2)] and pg[1]["net__lr"] == [0.1, 0.01]
    with pytest.raises(ValueError, match=r"grid='coarse' is not valid; .* named grids \['course'"):
        experiments.param_grid("coarse")


def test_course_grid_search_stops_early(small_real):
    grid = {**COURSE_GRID, "ngram_range": [[1, 1]], "nonlinearity": ["relu"], "optimizer": {"adam": [0.01]}}
    settings = SMOKE.override(course_grid=grid, course_grid_max_train=160, epoch_scale=0.2)
    result = experiments.course_grid_search(small_real, settings)
    assert result.n_cv_texts == 160 and len(result.search.cv_results_["params"]) == 1
    assert result.best_params["patience"] == 5 and result.best_params["width"] == 300
    net = result.best.named_steps["net"]
    assert len(net.history) <= 4 and "valid_loss" in net.history[-1]


@pytest.mark.fault("clear_error")
def test_splits_the_training_texts_cannot_fill_are_refused_before_training(small_real):
    """Four languages, 64 training texts each: the splits of the smoke profile fit; too few CV texts for
    the folds (or for each fold's validation split, the course's grid stopping early) are refused naming
    the knobs, as sklearn would only say deep inside the grid search."""
    experiments.check_splits(small_real, SMOKE)
    with pytest.raises(ValueError, match=r"course_cv_folds=3 is not valid with course_grid_max_train=16: .*"
                                         r"every one of the 4 languages in every fold.*raise course_grid"):
        experiments.check_splits(small_real, SMOKE.override(course_grid_max_train=16))
    with pytest.raises(ValueError, match=r"cv_folds=9 is not valid with grid_max_train=20: .*the least "
                                         r"frequent language has 5 of them"):
        experiments.check_splits(small_real, SMOKE.override(cv_folds=9, grid_max_train=20))


def test_grid_search_is_seeded(small_real):
    settings = SMOKE.override(grid={"max_features": [50, 300], "optimizer": {"adam": [0.01]}}, cv_folds=2,
                              grid_epochs=3, grid_max_train=120)
    results = [experiments.grid_search(small_real, settings) for _ in range(2)]
    np.testing.assert_array_equal(results[0].search.cv_results_["mean_test_score"],
                                  results[1].search.cv_results_["mean_test_score"])
    assert results[0].n_cv_texts == 120
    assert list(results[0].best_params) == ["max_features", "optimizer", "lr"]
    best = results[0].best_params
    assert best["optimizer"] == "adam" and best["max_features"] in (50, 300)
    assert experiments.grid_table(results[0].search).shape[0] == 2
    # the winner is refitted on all training texts, not only on the CV subset
    n_batches = len(results[0].best.named_steps["net"].history[-1]["batches"])
    assert n_batches == -(-len(small_real.x_train) // settings.batch_size)
    assert experiments.accuracy(results[0].best, small_real.x_test, small_real.y_test) > 0.5


def test_strong_and_linear_models_read_the_settings(small_real):
    settings = SMOKE.override(strong_features=500, strong_epochs=2)
    strong = experiments.fit_strong_model(small_real, settings, width=16)
    chars, words = (v for _, v in strong.named_steps["vect"].transformer_list)
    assert len(chars.vocabulary_) == 500 and chars.ngram_range == experiments.STRONG_NGRAM_RANGE
    assert 0 < len(words.vocabulary_) <= 500 and words.analyzer == "word"
    assert strong.named_steps["net"].module_.hidden[0].in_features == 500 + len(words.vocabulary_)
    assert len(strong.named_steps["net"].history) == 2
    linear = experiments.fit_linear_model(small_real, settings)
    assert [name for name, _ in linear.named_steps["vect"].transformer_list] == ["chars", "words"]
    assert experiments.accuracy(linear, small_real.x_test, small_real.y_test) > 0.9
