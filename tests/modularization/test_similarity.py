"""course_lib.modularization.similarity: CKA and CCA invariances, bounds, ~0 for independent data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from course_lib.core.exercise_marker import by_exercise
from course_lib.modularization.similarity import cca_similarity, kernel_cka, linear_cka

from .checks import check_cca_similarity, check_kernel_cka, check_linear_cka

FUNCTIONS = (linear_cka, kernel_cka, cca_similarity)
MEASURES = by_exercise(*FUNCTIONS)  # each case marked with its exercise
CHECKS = {linear_cka: check_linear_cka, kernel_cka: check_kernel_cka, cca_similarity: check_cca_similarity}


@pytest.mark.parametrize("measure", MEASURES)
def test_value_of_a_hand_made_pair(measure):
    CHECKS[measure](measure)


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))  # correlated features


@pytest.mark.parametrize("measure", MEASURES)
def test_identical_representations_score_one(measure, X):
    assert measure(X, X) == pytest.approx(1.0, abs=1e-4)  # CCA: the ridge costs a little


@pytest.mark.parametrize("measure", by_exercise(linear_cka, kernel_cka))
def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling(measure, X):
    Q = ortho_group.rvs(X.shape[1], random_state=1)
    assert measure(X, 3.7 * X @ Q) == pytest.approx(1.0, abs=1e-6)
    Y = X[:, :6] + 0.5 * np.random.default_rng(2).normal(size=(len(X), 6))  # partly related
    assert measure(X, Y) == pytest.approx(measure(2.5 * X @ Q, Y), abs=1e-9)


@pytest.mark.exercise("cca_similarity")
def test_cca_invariant_to_invertible_linear_maps(X):
    rng = np.random.default_rng(3)
    A = rng.normal(size=(12, 12)) + 3 * np.eye(12)  # invertible, not orthogonal
    assert cca_similarity(X, X @ A) == pytest.approx(1.0, abs=1e-4)
    Y = X[:, :6] + rng.normal(size=(len(X), 6))
    assert cca_similarity(X @ A, Y) == pytest.approx(cca_similarity(X, Y), abs=1e-4)


@pytest.mark.exercise("linear_cka")
def test_linear_cka_is_not_invariant_to_general_linear_maps(X):
    A = np.diag(np.r_[np.full(6, 10.0), np.full(6, 0.1)])  # anisotropic scaling changes CKA
    assert linear_cka(X, X @ A) < 0.95


@pytest.mark.parametrize("measure", MEASURES)
def test_independent_data_scores_near_zero(measure):
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(2000, 5)), rng.normal(size=(2000, 5))
    assert measure(X, Y) < 0.08


@pytest.mark.parametrize("measure", MEASURES)
def test_values_lie_in_unit_interval_and_are_symmetric(measure):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 8))
    Y = np.tanh(X @ rng.normal(size=(8, 4))) + 0.3 * rng.normal(size=(100, 4))
    value = measure(X, Y)
    assert 0.0 <= value <= 1.0
    assert measure(Y, X) == pytest.approx(value, abs=1e-6)
    assert 0.2 < value < 0.99  # related but not the same


@pytest.mark.exercise("kernel_cka")
def test_kernel_cka_explicit_sigma_and_torch_input(X):
    assert kernel_cka(torch.as_tensor(X), X, sigma=5.0) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        kernel_cka(X, X, sigma=-1.0)


@pytest.mark.exercise("cca_similarity")
def test_cca_with_more_features_than_samples_needs_components():
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(50, 40)), rng.normal(size=(50, 40))
    assert cca_similarity(X, Y) > 0.6  # spurious correlations when p is close to n
    assert cca_similarity(X, Y, n_components=3) < 0.4


@pytest.mark.exercise("cca_similarity")
def test_float32_input_is_stable():
    rng = np.random.default_rng(7)
    X = (1e3 * rng.normal(size=(300, 10))).astype(np.float32)
    for measure in FUNCTIONS:
        assert measure(X, X) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("measure", FUNCTIONS)
def test_bad_input_names_the_problem(measure):
    with pytest.raises(ValueError, match="same number of rows"):
        measure(np.zeros((5, 2)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="2-D"):
        measure(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        measure(np.full((5, 2), np.nan), np.zeros((5, 2)))
