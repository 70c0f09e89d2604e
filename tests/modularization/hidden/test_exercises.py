"""Hidden tests of assignment 05's exercises: similarity values computed by hand, the concern
coefficient and scores on other inputs, masks with ties and whole rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.modularization.pruning import ci_coefficient, keep_mask, wanda_scores
from course_lib.modularization.similarity import cca_similarity, kernel_cka, linear_cka


def _centred(X):
    return X - X.mean(axis=0)


@pytest.mark.exercise("linear_cka")
def test_linear_cka_by_hand():
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 6))
    Y[:, 0] += 2 * X[:, 1]
    Xc, Yc = _centred(X), _centred(Y)
    expected = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert linear_cka(X, Y) == pytest.approx(expected, rel=1e-10)
    assert linear_cka(X + 5.0, 3.0 * Y) == pytest.approx(expected, rel=1e-10)


@pytest.mark.exercise("kernel_cka")
def test_kernel_cka_by_hand_with_a_given_bandwidth():
    rng = np.random.default_rng(13)
    X, Y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
    Y[:, 0] = X[:, 0] + 0.1 * Y[:, 0]

    def gram(A):
        d2 = ((A[:, None] - A[None]) ** 2).sum(-1)
        K = np.exp(-d2 / (2 * 1.5**2))
        H = np.eye(len(A)) - 1 / len(A)
        return H @ K @ H

    K, L = gram(X), gram(Y)
    expected = np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))
    assert kernel_cka(X, Y, sigma=1.5) == pytest.approx(expected, rel=1e-10)


@pytest.mark.exercise("cca_similarity")
def test_cca_of_a_partly_shared_signal():
    rng = np.random.default_rng(14)
    n = 4000
    shared, noise = rng.standard_normal(n), rng.standard_normal((n, 3))
    X = np.column_stack([shared, noise[:, 0]])
    Y = np.column_stack([shared + noise[:, 1], noise[:, 2]])
    # canonical correlations: corr(shared, shared + noise) = 1/sqrt(2) and 0
    assert cca_similarity(X, Y) == pytest.approx((1 / np.sqrt(2) + 0.0) / 2, abs=0.03)


@pytest.mark.exercise("cca_similarity")
def test_cca_of_an_invertible_map_is_one():
    rng = np.random.default_rng(15)
    X = rng.standard_normal((200, 3))
    A = np.array([[2.0, 0.5, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, 3.0]])
    assert cca_similarity(X, X @ A + 1.0) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.exercise("ci_coefficient")
def test_ci_coefficient_values():
    pos = torch.tensor([3.0, 0.0, 1.0, 2.0])
    neg = torch.tensor([4.0, 0.0, 1.0, 0.0])
    cos = torch.tensor([0.0, 0.0, 1.0, 0.6])
    expected = torch.tensor([3.0 + 1.0 * 7.0 / 5.0, 0.0, 1.0 + 0.0, 2.0 + 0.8 * 2.0 / 2.0])
    torch.testing.assert_close(ci_coefficient(pos, neg, cos), expected)


@pytest.mark.exercise("wanda_scores")
def test_wanda_scores_other_negative_weight():
    weight = torch.tensor([[1.0, -2.0, 0.5], [-3.0, 0.0, 4.0]])
    rms_pos, rms_neg = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([2.0, 1.0, 1.0])
    expected = weight.abs() * torch.tensor([1.0 - 0.25 * 2.0, 2.0 - 0.25, -0.25])
    torch.testing.assert_close(wanda_scores(weight, rms_pos, rms_neg, negative_weight=0.25), expected)


@pytest.mark.exercise("keep_mask")
def test_unstructured_mask_breaks_ties_by_column():
    scores = torch.tensor([[1.0, 1.0, 1.0, 0.5], [2.0, 0.0, 2.0, 2.0]])
    mask = keep_mask(scores, 0.5, "unstructured")
    assert mask.tolist() == [[False, True, True, False], [False, False, True, True]]


@pytest.mark.exercise("keep_mask")
def test_structured_mask_ignores_negative_scores():
    scores = torch.tensor([[-9.0, -9.0], [1.0, 0.0], [0.5, 0.5], [3.0, -1.0]])
    mask = keep_mask(scores, 0.5, "structured")
    assert mask.tolist() == [[False, False], [True, True], [False, False], [True, True]]
