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


def _loop_sums(x, mask):
    """Row 0: sum of squares over the positives' real tokens, row 1 the negatives', row 2 the products of
    paired real tokens, written as loops."""
    b = x.shape[0] // 2
    out = torch.zeros(3, x.shape[2], dtype=torch.float64)
    for i in range(b):
        for t in range(x.shape[1]):
            p, n = x[i, t].double(), x[b + i, t].double()
            if mask[i, t]:
                out[0] += p**2
            if mask[b + i, t]:
                out[1] += n**2
            if mask[i, t] and mask[b + i, t]:
                out[2] += p * n
    return out


@pytest.mark.exercise("feature_sums")
def test_feature_sums_of_three_pairs():
    from course_lib.modularization.activations import feature_sums

    g = torch.Generator().manual_seed(31)
    x = torch.randn(6, 5, 3, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0],
                         [1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    x[mask == 0] = 100.0  # padding carries large values that must not count
    got = feature_sums(x, mask)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, _loop_sums(x, mask))


class _Lookup(torch.nn.Module):
    """ids -> a 3-d table vector -> ``square`` (3 -> 3) -> relu -> ``head`` (3 -> 1)."""

    def __init__(self, fail: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(32)
        self.register_buffer("table", torch.rand(7, 3, generator=g) + 0.1)
        self.square, self.head = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
        with torch.no_grad():  # weights of the generator's, whatever the global random state
            for layer in (self.square, self.head):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=g))
        self.fail = fail

    def forward(self, input_ids, attention_mask):
        if self.fail and input_ids.shape[1] > 2:
            raise ValueError("no long batches")
        return self.head(torch.relu(self.square(self.table[input_ids])))


@pytest.mark.exercise("activation_stats")
def test_activation_stats_of_two_layers_over_three_batches(monkeypatch):
    from course_lib.modularization import activations

    # only the hooks are graded here: the sums of a batch come from the loops above
    monkeypatch.setattr(activations, "feature_sums", lambda x, mask: _loop_sums(x, mask))
    model = _Lookup().eval()
    batches = [
        (torch.tensor([[1, 2], [3, 6]]), torch.tensor([[1, 1], [1, 0]])),
        (torch.tensor([[4, 5, 6], [1, 6, 6], [2, 3, 1], [5, 4, 6]]),
         torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]])),
        (torch.tensor([[3], [2]]), torch.tensor([[1], [1]])),
    ]
    before = {n: set(m._forward_hooks) for n, m in model.named_modules()}
    stats = activations.activation_stats(model, iter(batches), {"square": model.square, "head": model.head})
    assert {n: set(m._forward_hooks) for n, m in model.named_modules()} == before
    with torch.no_grad():
        inputs = {"square": lambda ids: model.table[ids],
                  "head": lambda ids: torch.relu(model.square(model.table[ids]))}
        for name, layer_input in inputs.items():
            total = sum(_loop_sums(layer_input(ids), mask) for ids, mask in batches)
            norm_pos, norm_neg = total[0].sqrt(), total[1].sqrt()
            torch.testing.assert_close(stats[name].pos_norm, norm_pos.float())
            torch.testing.assert_close(stats[name].neg_norm, norm_neg.float())
            cosine = total[2] / (norm_pos * norm_neg).clamp(min=activations.EPS)  # 0 where a side is silent
            torch.testing.assert_close(stats[name].cosine, cosine.float())
            assert (stats[name].pos_tokens, stats[name].neg_tokens) == (2 + 3 + 1, 1 + 5 + 1)  # per batch
    failing = _Lookup(fail=True)
    with pytest.raises(ValueError, match="no long batches"):
        activations.activation_stats(failing, iter(batches), {"square": failing.square})
    assert not failing.square._forward_hooks


@pytest.mark.exercise("apply_masks")
def test_apply_masks_on_nested_rectangular_layers():
    from course_lib.modularization.masks import apply_masks

    model = torch.nn.Sequential()
    block = torch.nn.ModuleDict({"up": torch.nn.Linear(2, 4), "down": torch.nn.Linear(4, 2)})
    model.add_module("block", block)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.arange(1.0, p.numel() + 1).reshape(p.shape))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    up = torch.tensor([[True, True], [False, False], [True, False], [False, False]])  # rows 1 and 3 dead
    down = torch.tensor([True, False, True, False])  # their columns in the next layer
    module = apply_masks(model, {"block.up": up, "block.down": down})
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    state = module.state_dict()
    torch.testing.assert_close(state["block.up.weight"], torch.tensor([[1.0, 2.0], [0, 0], [5.0, 0], [0, 0]]))
    torch.testing.assert_close(state["block.up.bias"], torch.tensor([1.0, 0.0, 3.0, 0.0]))
    torch.testing.assert_close(state["block.down.weight"], torch.tensor([[1.0, 0, 3.0, 0], [5.0, 0, 7.0, 0]]))
    torch.testing.assert_close(state["block.down.bias"], torch.tensor([1.0, 2.0]))
    with torch.no_grad():
        module.block["down"].weight.fill_(-1.0)  # the copy shares no storage with the original
    assert torch.equal(model.block["down"].weight, before["block.down.weight"])


@pytest.mark.exercise("overall_sparsity")
def test_overall_sparsity_counts_linear_weights_and_biases_only():
    from course_lib.modularization.masks import overall_sparsity

    model = torch.nn.Module()
    model.layers = torch.nn.ModuleList([torch.nn.Linear(5, 4), torch.nn.Linear(4, 4, bias=False)])
    model.conv = torch.nn.Conv1d(2, 2, 3)  # not linear: does not count
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[0.0, 1, 0, 1, 0]] * 4))  # 12 zeros of 20
        model.layers[0].bias.copy_(torch.tensor([0.0, 0, 0, 1]))  # 3 of 4
        model.layers[1].weight.copy_(torch.eye(4))  # 12 of 16
        model.conv.weight.zero_()
    assert overall_sparsity(model) == pytest.approx((12 + 3 + 12) / (20 + 4 + 16))
