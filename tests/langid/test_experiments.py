"""Assignment 01 experiments: the hand-tuning table, the grid, GridSearchCV, the strong and linear models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.langid import experiments
from course_lib.langid.config import SMOKE


def test_hand_tuning_table(small_real):
    trials = [experiments.MANUAL_SETTINGS[0], experiments.MANUAL_SETTINGS[4]]
    results = experiments.run_settings(small_real, SMOKE.override(epochs=2), trials)
    assert [len(r.history) for r in results][0] == 2
    assert 2 < len(results[1].history) <= 8  # 4x epochs, possibly stopped early
    table = experiments.settings_table(results)
    assert list(table.index) == ["baseline", "Adam lr=0.001 + early stop"]
    assert all(0.0 <= a <= 1.0 for a in table["test acc"])
    assert results[1].test_accuracy > 0.5  # Adam learns 4 languages from bigrams well above chance
    assert list(experiments.settings_frame(trials).index) == list(table.index)


def test_param_grid_splits_optimizers():
    grid = {"analyzer": ["char"], "ngram_range": [[1, 2]], "width": [8, 16],
            "optimizer": {"sgd": [0.1], "adam": [0.01, 0.001]}}
    pg = experiments.param_grid(grid)
    assert pg[0]["vectorizer__ngram_range"] == [(1, 2)] and pg[0]["net__optimizer"] == [torch.optim.SGD]
    assert pg[1]["net__lr"] == [0.01, 0.001]
    assert experiments.grid_size(grid) == 6
    with pytest.raises(ValueError, match=r"unknown grid keys \['depthh'\]"):
        experiments.param_grid({"depthh": [1]})
    with pytest.raises(ValueError, match=r"unknown optimizers \['lbfgs'\]"):
        experiments.param_grid({"optimizer": {"lbfgs": [1.0]}})


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
    assert len(strong.named_steps["vectorizer"].vocabulary_) == 500
    assert len(strong.named_steps["net"].history) == 2
    linear = experiments.fit_linear_model(small_real, settings)
    assert linear.named_steps["vectorizer"].ngram_range == experiments.STRONG_NGRAM_RANGE
    assert experiments.accuracy(linear, small_real.x_test, small_real.y_test) > 0.9
